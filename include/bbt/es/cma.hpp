#pragma once
// CMA-ES (Hansen's tutorial defaults) with full or diagonal (sep-CMA) covariance, driven by
// ask/tell, deterministic bit for bit for a seed, and resumable bit-identically from a CmaState.
// By default as pycma runs it: the active covariance update (negative weights for the worst
// candidates) and pycma's stopping rules, checked after every tell().
#include <Eigen/Dense>
#include <cstdint>
#include <future>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bbt/common/rng.hpp"

namespace bbt::es {

enum class Covariance { full, diagonal };

// "full" / "diagonal"; parse_covariance throws UsageError for anything else.
std::string to_string(Covariance covariance);
Covariance parse_covariance(const std::string& name);

// Which stopping rules end a run (besides max_evaluations / max_generations, always on):
// pycma: pycma's default termination criteria (tolfun, tolfunhist, tolflatfitness, tolx,
//   tolfacupx, tolupsigma, tolstagnation, tolconditioncov, noeffectaxis, noeffectcoord);
// budget: none (the run spends its whole budget);
// legacy: the rules of bbt before the active update (tolfun once a full history is flat, tolx,
//   tolconditioncov); a run file written before `cma.active` existed resumes with them.
enum class StopRules { pycma = 0, budget = 1, legacy = 2 };
std::string to_string(StopRules rules);
StopRules parse_stop_rules(const std::string& name);  // "pycma" | "budget"; UsageError otherwise

// The default population size, 4 + floor(3 ln dim) (pycma's and the tutorial's).
int default_popsize(int dim);

// What the user chooses. Zero / empty values mean "the default".
struct CmaOptions {
  int dim = 0;
  int popsize = 0;  // <= 0: default_popsize(dim)
  double sigma0 = 1.0;
  Eigen::VectorXd x0;  // empty = zeros
  std::uint64_t seed = 42;
  // Box bounds on every coordinate; none by default. ask() hands out candidates mirrored into the
  // box (periodic reflection, in the spirit of pycma's BoundTransform); the update uses the
  // unrepaired samples, so the distribution itself is never distorted by the repair.
  double lower = -std::numeric_limits<double>::infinity();
  double upper = std::numeric_limits<double>::infinity();
  long max_evaluations = 0;  // 0 = no limit
  int max_generations = 0;   // 0 = no limit
  // Active CMA-ES (Hansen's 2016 tutorial, pycma's CMA_active): the worst lambda - mu candidates get
  // negative recombination weights in the covariance update. false: positive weights only.
  bool active = true;
  StopRules stop = StopRules::pycma;
  // pycma's defaults. tolstagnation <= 0 means pycma's int(100 + 100 dim^1.5 / lambda).
  double tolfun = 1e-11;
  double tolfunhist = 1e-12;
  double tolx = 1e-11;
  double tolfacupx = 1e3;
  double tolupsigma = 1e20;
  double tolconditioncov = 1e14;
  int tolflatfitness = 1;
  int tolstagnation = 0;
  Covariance covariance = Covariance::full;
  // Threads of the background eigendecomposition (full covariance): 0 = two where the machine has
  // two cores, else one. The results are the same bits for any value.
  int threads = 0;
};

// The strategy constants derived from (dim, popsize, covariance); exposed for tests and logs.
struct CmaParameters {
  int dim = 0;
  int lambda = 0;
  int mu = 0;
  bool active = false;
  Eigen::VectorXd weights;  // mu positive weights summing to 1
  // Active: the lambda - mu weights of the worse candidates (best first), <= 0, summing to
  // -min(alpha_mu-, alpha_mueff-, alpha_posdef-) (tutorial eq. 53); empty when not active.
  Eigen::VectorXd negative_weights;
  double mueff = 0, c1 = 0, cmu = 0, cc = 0, csigma = 0, dsigma = 0, chin = 0;
  // Generations between eigendecompositions: floor(1 / (10 n (c1 + cmu))) + 1 for full, as the
  // tutorial's code does; 1 for diagonal.
  int eigen_gap = 1;
  // Generations of best-f history checked by tolfun: pycma's floor(10 + 30 n / lambda); legacy
  // rules: 10 + ceil(30 n / lambda).
  int tolfun_history = 0;

  // Active: cmu is pycma's min(1 - c1, 2 (1/4 + mueff + 1/mueff - 2) / ((n + 2)^2 + mueff)) for
  // full covariance (the tutorial's, without the 1/4, when not active); sep-CMA's rates either way.
  static CmaParameters make(int dim, int popsize, Covariance covariance, bool active = false,
                            StopRules stop = StopRules::legacy);
};

// Everything needed to continue a run bit-identically. A plain struct: the run-file writer stores
// it through arrays()/from_arrays() without knowing its fields.
struct CmaState {
  int dim = 0;
  int popsize = 0;
  Covariance covariance = Covariance::full;
  Eigen::VectorXd mean;
  double sigma = 0;
  Eigen::MatrixXd cov;  // full: dim x dim (lower triangle authoritative); diagonal: dim x 1
  Eigen::MatrixXd B;    // full: dim x dim eigenvectors; diagonal: 1 x 1 (unused)
  Eigen::VectorXd D;    // square roots of the eigenvalues (diagonal: of cov)
  Eigen::VectorXd pc, ps;
  double ps_decay = 1;  // (1 - csigma)^(2 g), kept as a running product for portability
  int generation = 0;
  long evaluations = 0;
  long nonfinite = 0;
  Eigen::VectorXd best_x;  // evaluated (repaired) point; zeros until a finite value is seen
  double best_f = std::numeric_limits<double>::infinity();
  Rng::State rng{};
  // Lazy eigendecomposition: B, D belong to cov as it was after `eigen_generation` tells; a
  // decomposition of cov after `pending_generation` tells may be in flight (its result here).
  int eigen_generation = 0;
  bool has_pending = false;
  int pending_generation = 0;
  Eigen::MatrixXd pending_B;  // as B (zeros when none)
  Eigen::VectorXd pending_D;  // dim (zeros when none)
  // The sample handed out by ask() and not yet told (zeros when none).
  bool has_sample = false;
  Eigen::MatrixXd Z, Y;  // dim x popsize: standard normal z and y = B D z
  // tolfun: ring buffer of each generation's best f.
  Eigen::VectorXd best_history;
  int history_count = 0;
  int stop_code = 0;  // 0 = running, else index into the stop reasons
  // Format 2 (bbt with cma.active): the variant below and pycma's stopping state. A state without
  // them (format 1, written before) is the positive-weights update with the legacy stop rules.
  int format = 2;
  bool active = true;
  StopRules stop = StopRules::pycma;
  int flat_generations = 0;     // generations whose best f equalled the mu-th best (tolflatfitness)
  // tolstagnation: the best and median f of every 5th generation (pycma's histbest/histmedian),
  // a ring of the last kStagnationCapacity entries, stagnation_count written so far.
  Eigen::VectorXd stagnation_best, stagnation_median;
  long stagnation_count = 0;
  static constexpr int kStagnationCapacity = 20000;  // pycma keeps 2e4

  // Every field as a named double matrix (integers exactly, 64-bit RNG words as two 32-bit halves).
  std::vector<std::pair<std::string, Eigen::MatrixXd>> arrays() const;
  // Inverse of arrays(); throws bbt::Error naming a missing or misshaped field.
  static CmaState from_arrays(const std::vector<std::pair<std::string, Eigen::MatrixXd>>& arrays);
};

// The optimiser. Minimises. ask() -> evaluate every column -> tell(fitness), repeated.
class Cma {
 public:
  explicit Cma(const CmaOptions& options);
  Cma(Cma&&) noexcept;
  Cma& operator=(Cma&&) noexcept;
  ~Cma();

  // dim x popsize; column j is candidate j (contiguous), mirrored into the bounds if any are set.
  // Calling ask() again before tell() returns the same sample.
  const Eigen::MatrixXd& ask();
  // popsize values for the last ask(); NaN/inf are ranked worst and counted.
  void tell(const Eigen::VectorXd& fitness);

  bool stopped() const { return state_.stop_code != 0; }
  // "" while running, else "max_evaluations", "max_generations" or the pycma criterion's name
  // ("tolfun", "tolx", "tolconditioncov", "tolflatfitness", "tolfunhist", "tolupsigma",
  // "tolstagnation", "noeffectaxis", "noeffectcoord", "tolfacupx").
  std::string stop_reason() const;
  // Every name stop_reason() can return, "" first, in a fixed order (their codes).
  static const std::vector<std::string>& stop_reason_names();

  int generation() const { return state_.generation; }
  long evaluations() const { return state_.evaluations; }
  long nonfinite_count() const { return state_.nonfinite; }
  double sigma() const { return state_.sigma; }
  const Eigen::VectorXd& mean() const { return state_.mean; }
  int popsize() const { return params_.lambda; }
  int dim() const { return params_.dim; }
  const CmaParameters& parameters() const { return params_; }
  int eigen_threads() const { return eigen_threads_; }
  const Eigen::VectorXd& best_x() const { return state_.best_x; }
  double best_f() const { return state_.best_f; }
  // Axis-parallel standard deviations sigma * sqrt(diag C) of the current distribution.
  Eigen::VectorXd stds() const;

  // Waits for an in-flight eigendecomposition (its result goes into the state).
  CmaState state() const;
  // Continues exactly where `state` left off; throws if it does not fit the options.
  static Cma restore(const CmaOptions& options, const CmaState& state);

 private:
  // What the background decomposition reads and writes; on the heap so that its address survives
  // a move of the Cma, and kept so that its memory is reused from one decomposition to the next.
  struct EigenWork;
  static void decompose_into(EigenWork& work, int threads);
  const EigenWork& pending_result() const;  // waits for the decomposition in flight
  void make_candidates();
  void update_eigen_after_tell();
  void check_stop();          // legacy rules
  void check_pycma_stop(const std::vector<double>& sorted_f, int n_finite);
  double repair(double x) const;

  CmaOptions options_;
  CmaParameters params_;
  CmaState state_;  // pending_B/pending_D live in work_ while a decomposition is pending
  Rng rng_;
  std::unique_ptr<EigenWork> work_;  // declared before pending_: outlives the task using it
  std::shared_future<void> pending_;
  Eigen::MatrixXd X_;        // sampled candidates, dim x lambda
  Eigen::MatrixXd X_eval_;   // clipped candidates (== X_ without bounds)
  Eigen::MatrixXd rank_mu_;  // scratch for the rank-mu product, dim x dim
  bool bounded_ = false;
  int eigen_threads_ = 1;
};

}  // namespace bbt::es

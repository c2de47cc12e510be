#include "bbt/es/cma.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <numeric>
#include <thread>

#include "bbt/common/error.hpp"
#include "bbt/common/portable_math.hpp"
#include "bbt/common/rng.hpp"
#include "bbt/es/dense.hpp"
#include "bbt/es/symmetric_eigen.hpp"

namespace bbt::es {
namespace {

// Codes are stored in checkpoints: append only.
enum StopCode {
  kRunning = 0,
  kMaxEvaluations,
  kMaxGenerations,
  kTolFun,
  kTolX,
  kTolConditionCov,
  kTolFlatFitness,
  kTolFunHist,
  kTolUpSigma,
  kTolStagnation,
  kNoEffectAxis,
  kNoEffectCoord,
  kTolFacUpX,
  kStopCodeCount
};

double median_of(std::vector<double> v) {
  const std::size_t n = v.size(), h = n / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(h), v.end());
  const double upper = v[h];
  if (n % 2) return upper;
  const double lower = *std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(h));
  return (lower + upper) / 2;
}

}  // namespace

const std::vector<std::string>& Cma::stop_reason_names() {
  static const std::vector<std::string> names = {
      "",          "max_evaluations", "max_generations", "tolfun",        "tolx",
      "tolconditioncov", "tolflatfitness", "tolfunhist", "tolupsigma",   "tolstagnation",
      "noeffectaxis", "noeffectcoord", "tolfacupx"};
  return names;
}

std::string to_string(StopRules rules) {
  switch (rules) {
    case StopRules::pycma: return "pycma";
    case StopRules::budget: return "budget";
    case StopRules::legacy: return "legacy";
  }
  return "?";
}

StopRules parse_stop_rules(const std::string& name) {
  if (name == "pycma") return StopRules::pycma;
  if (name == "budget") return StopRules::budget;
  throw UsageError("stop rules: expected pycma or budget, got '" + name + "'");
}

int default_popsize(int dim) {
  return 4 + static_cast<int>(std::floor(3.0 * portable_log(static_cast<double>(std::max(dim, 1)))));
}

std::string to_string(Covariance covariance) { return covariance == Covariance::full ? "full" : "diagonal"; }

Covariance parse_covariance(const std::string& name) {
  if (name == "full") return Covariance::full;
  if (name == "diagonal" || name == "diag" || name == "sep") return Covariance::diagonal;
  throw UsageError("covariance: expected full or diagonal, got '" + name + "'");
}

CmaParameters CmaParameters::make(int dim, int popsize, Covariance covariance, bool active, StopRules stop) {
  if (dim < 1) throw UsageError("cma: dim must be >= 1, got " + std::to_string(dim));
  CmaParameters p;
  const double n = dim;
  p.dim = dim;
  p.active = active;
  p.lambda = popsize > 0 ? popsize : default_popsize(dim);
  if (p.lambda < 2) throw UsageError("cma: popsize must be >= 2, got " + std::to_string(p.lambda));
  p.mu = p.lambda / 2;
  p.weights.resize(p.mu);
  const double log_half = portable_log((p.lambda + 1) / 2.0);
  for (int i = 0; i < p.mu; ++i) p.weights[i] = log_half - portable_log(i + 1.0);
  p.weights /= p.weights.sum();
  p.mueff = 1.0 / p.weights.squaredNorm();
  const double mueff = p.mueff;
  if (covariance == Covariance::full) {
    p.c1 = 2.0 / ((n + 1.3) * (n + 1.3) + mueff);
    if (active)  // pycma's rank-mu rate: the tutorial's with 1/4 added to mueff - 2 + 1/mueff
      p.cmu = std::min(1.0 - p.c1, 2.0 * (0.25 + mueff - 2.0 + 1.0 / mueff) / ((n + 2.0) * (n + 2.0) + mueff));
    else
      p.cmu = std::min(1.0 - p.c1, 2.0 * (mueff - 2.0 + 1.0 / mueff) / ((n + 2.0) * (n + 2.0) + mueff));
    p.cc = (4.0 + mueff / n) / (n + 4.0 + 2.0 * mueff / n);
  } else {
    // sep-CMA (Ros & Hansen 2008) with pycma's learning rates.
    const double sqrt_n = std::sqrt(n);
    p.c1 = 1.0 / (n + 2.0 * sqrt_n + mueff / n);
    p.cmu = std::min(1.0 - p.c1, (0.25 + mueff + 1.0 / mueff - 2.0) / (n + 4.0 * sqrt_n + mueff / 2.0));
    p.cc = (1.0 + 1.0 / n + mueff / n) / (sqrt_n + 1.0 / n + 2.0 * mueff / n);
  }
  p.csigma = (mueff + 2.0) / (n + mueff + 5.0);
  p.dsigma = 1.0 + 2.0 * std::max(0.0, std::sqrt((mueff - 1.0) / (n + 1.0)) - 1.0) + p.csigma;
  p.chin = std::sqrt(n) * (1.0 - 1.0 / (4.0 * n) + 1.0 / (21.0 * n * n));
  // The tutorial's code decomposes once counteval - eigeneval > lambda / ((c1 + cmu) n 10), i.e.
  // after the smallest whole number of generations above 1 / (10 n (c1 + cmu)).
  p.eigen_gap = 1;
  if (covariance == Covariance::full)
    p.eigen_gap = static_cast<int>(std::floor(1.0 / (10.0 * n * (p.c1 + p.cmu)))) + 1;
  if (stop == StopRules::legacy)
    p.tolfun_history = 10 + static_cast<int>(std::ceil(30.0 * n / p.lambda));
  else  // pycma keeps fit.hist at most 10 + 30 n / lambda entries long
    p.tolfun_history = static_cast<int>(std::floor(10.0 + 30.0 * n / p.lambda));
  if (active) {
    // Tutorial eq. 49-53: w'_i = ln((lambda+1)/2) - ln i for the worse half too, their sum scaled to
    // -min(alpha_mu-, alpha_mueff-, alpha_posdef-) (pycma's RecombinationWeights does the same).
    const int k = p.lambda - p.mu;
    Eigen::VectorXd raw(k);
    for (int i = 0; i < k; ++i) raw[i] = log_half - portable_log(p.mu + i + 1.0);
    const double neg_sum = -raw.sum();  // > 0 (or 0 for lambda = 2 ... never: the last is < 0)
    const double mueff_minus = neg_sum > 0 ? neg_sum * neg_sum / raw.squaredNorm() : 0.0;
    const double alpha_mu = 1.0 + p.c1 / p.cmu;
    const double alpha_mueff = 1.0 + 2.0 * mueff_minus / (mueff + 2.0);
    const double alpha_posdef = (1.0 - p.c1 - p.cmu) / (n * p.cmu);
    const double scale = std::min(alpha_mu, std::min(alpha_mueff, alpha_posdef));
    p.negative_weights = neg_sum > 0 ? Eigen::VectorXd(raw * (scale / neg_sum)) : Eigen::VectorXd::Zero(k);
  }
  return p;
}

// ---------------------------------------------------------------------------------------------
// State <-> named arrays

std::vector<std::pair<std::string, Eigen::MatrixXd>> CmaState::arrays() const {
  std::vector<std::pair<std::string, Eigen::MatrixXd>> out;
  auto scalar = [&](const char* name, double v) {
    out.emplace_back(name, Eigen::MatrixXd::Constant(1, 1, v));
  };
  auto matrix = [&](const char* name, const Eigen::MatrixXd& m) { out.emplace_back(name, m); };
  scalar("dim", dim);
  scalar("popsize", popsize);
  scalar("covariance", covariance == Covariance::full ? 0 : 1);
  matrix("mean", mean);
  scalar("sigma", sigma);
  matrix("cov", cov);
  matrix("B", B);
  matrix("D", D);
  matrix("pc", pc);
  matrix("ps", ps);
  scalar("ps_decay", ps_decay);
  scalar("generation", generation);
  scalar("evaluations", static_cast<double>(evaluations));
  scalar("nonfinite", static_cast<double>(nonfinite));
  matrix("best_x", best_x);
  scalar("best_f", best_f);
  Eigen::MatrixXd words(8, 1);  // xoshiro words as (low, high) 32-bit halves: exact in a double
  for (int i = 0; i < 4; ++i) {
    words(2 * i, 0) = static_cast<double>(rng.s[i] & 0xffffffffULL);
    words(2 * i + 1, 0) = static_cast<double>(rng.s[i] >> 32);
  }
  matrix("rng_words", words);
  scalar("rng_spare", rng.spare);
  scalar("rng_has_spare", rng.has_spare ? 1 : 0);
  scalar("eigen_generation", eigen_generation);
  scalar("has_pending", has_pending ? 1 : 0);
  scalar("pending_generation", pending_generation);
  matrix("pending_B", pending_B);
  matrix("pending_D", pending_D);
  scalar("has_sample", has_sample ? 1 : 0);
  matrix("Z", Z);
  matrix("Y", Y);
  matrix("best_history", best_history);
  scalar("history_count", history_count);
  scalar("stop_code", stop_code);
  if (format >= 2) {  // a format-1 state (resumed from an old run file) keeps that file's layout
    scalar("format", format);
    scalar("active", active ? 1 : 0);
    scalar("stop_rules", static_cast<int>(stop));
    scalar("flat_generations", flat_generations);
    matrix("stagnation_best", stagnation_best);
    matrix("stagnation_median", stagnation_median);
    scalar("stagnation_count", static_cast<double>(stagnation_count));
  }
  return out;
}

CmaState CmaState::from_arrays(const std::vector<std::pair<std::string, Eigen::MatrixXd>>& arrays) {
  std::map<std::string, const Eigen::MatrixXd*> by_name;
  for (const auto& [name, m] : arrays) by_name[name] = &m;
  auto get = [&](const char* name) -> const Eigen::MatrixXd& {
    auto it = by_name.find(name);
    if (it == by_name.end()) throw Error(std::string("CMA-ES state: missing array '") + name + "'");
    return *it->second;
  };
  auto scalar = [&](const char* name) {
    const auto& m = get(name);
    if (m.rows() != 1 || m.cols() != 1)
      throw Error(std::string("CMA-ES state: array '") + name + "' must be 1 x 1");
    return m(0, 0);
  };
  auto integer = [&](const char* name) {
    const double v = scalar(name);
    if (!(v == std::floor(v)) || std::abs(v) > 9007199254740992.0)
      throw Error(std::string("CMA-ES state: array '") + name + "' must hold an integer");
    return static_cast<long long>(v);
  };
  auto vector = [&](const char* name) -> Eigen::VectorXd {
    const auto& m = get(name);
    if (m.cols() != 1) throw Error(std::string("CMA-ES state: array '") + name + "' must be a column");
    return m.col(0);
  };
  CmaState s;
  s.dim = static_cast<int>(integer("dim"));
  s.popsize = static_cast<int>(integer("popsize"));
  s.covariance = integer("covariance") == 0 ? Covariance::full : Covariance::diagonal;
  s.mean = vector("mean");
  s.sigma = scalar("sigma");
  s.cov = get("cov");
  s.B = get("B");
  s.D = vector("D");
  s.pc = vector("pc");
  s.ps = vector("ps");
  s.ps_decay = scalar("ps_decay");
  s.generation = static_cast<int>(integer("generation"));
  s.evaluations = static_cast<long>(integer("evaluations"));
  s.nonfinite = static_cast<long>(integer("nonfinite"));
  s.best_x = vector("best_x");
  s.best_f = scalar("best_f");
  const Eigen::VectorXd words = vector("rng_words");
  if (words.size() != 8) throw Error("CMA-ES state: array 'rng_words' must have 8 entries");
  for (int i = 0; i < 4; ++i) {
    const double lo = words[2 * i], hi = words[2 * i + 1];
    if (!(lo >= 0 && lo < 4294967296.0 && lo == std::floor(lo) && hi >= 0 && hi < 4294967296.0 &&
          hi == std::floor(hi)))
      throw Error("CMA-ES state: array 'rng_words' must hold 32-bit integers");
    s.rng.s[i] = (static_cast<std::uint64_t>(hi) << 32) | static_cast<std::uint64_t>(lo);
  }
  s.rng.spare = scalar("rng_spare");
  s.rng.has_spare = integer("rng_has_spare") != 0;
  s.eigen_generation = static_cast<int>(integer("eigen_generation"));
  s.has_pending = integer("has_pending") != 0;
  s.pending_generation = static_cast<int>(integer("pending_generation"));
  s.pending_B = get("pending_B");
  s.pending_D = vector("pending_D");
  s.has_sample = integer("has_sample") != 0;
  s.Z = get("Z");
  s.Y = get("Y");
  s.best_history = vector("best_history");
  s.history_count = static_cast<int>(integer("history_count"));
  s.stop_code = static_cast<int>(integer("stop_code"));
  if (by_name.count("format") == 0) {
    // Written before the active update existed: the positive-weights update, the legacy stops.
    s.format = 1;
    s.active = false;
    s.stop = StopRules::legacy;
    return s;
  }
  s.format = static_cast<int>(integer("format"));
  if (s.format != 2) throw Error("CMA-ES state: unknown format " + std::to_string(s.format));
  s.active = integer("active") != 0;
  const long long rules = integer("stop_rules");
  if (rules < 0 || rules > 2) throw Error("CMA-ES state: array 'stop_rules' out of range");
  s.stop = static_cast<StopRules>(rules);
  s.flat_generations = static_cast<int>(integer("flat_generations"));
  s.stagnation_best = vector("stagnation_best");
  s.stagnation_median = vector("stagnation_median");
  s.stagnation_count = static_cast<long>(integer("stagnation_count"));
  return s;
}

// ---------------------------------------------------------------------------------------------
// The optimiser

struct Cma::EigenWork {
  dense::Scratch scratch;
  Eigen::MatrixXd cov;    // snapshot of C being decomposed
  SymmetricEigen result;  // its eigenpairs
  Eigen::MatrixXd B;      // eigenvectors (swapped with the state's B on adoption)
  Eigen::VectorXd D;      // square roots of the eigenvalues
};

Cma::Cma(Cma&&) noexcept = default;
Cma& Cma::operator=(Cma&&) noexcept = default;
Cma::~Cma() = default;

Cma::Cma(const CmaOptions& options)
    : options_(options),
      params_(CmaParameters::make(options.dim, options.popsize, options.covariance, options.active, options.stop)) {
  // Eigen's own threading would make the sums' order depend on the thread count.
  Eigen::setNbThreads(1);
  const int n = params_.dim, lambda = params_.lambda;
  if (!(options.sigma0 > 0) || !std::isfinite(options.sigma0))
    throw UsageError("cma: sigma0 must be a positive number");
  if (options.x0.size() != 0 && options.x0.size() != n)
    throw UsageError("cma: x0 has " + std::to_string(options.x0.size()) + " entries, dim is " +
                     std::to_string(n));
  if (!(options.lower < options.upper)) throw UsageError("cma: lower bound must be below upper bound");
  if (options.max_evaluations < 0 || options.max_generations < 0)
    throw UsageError("cma: max_evaluations and max_generations must be >= 0");
  bounded_ = std::isfinite(options.lower) || std::isfinite(options.upper);
  const bool full = options.covariance == Covariance::full;

  CmaState& s = state_;
  s.dim = n;
  s.popsize = lambda;
  s.covariance = options.covariance;
  s.mean = options.x0.size() ? Eigen::VectorXd(options.x0) : Eigen::VectorXd::Zero(n);
  if (!s.mean.allFinite()) throw UsageError("cma: x0 must be finite");
  s.sigma = options.sigma0;
  s.cov = full ? Eigen::MatrixXd(Eigen::MatrixXd::Identity(n, n)) : Eigen::MatrixXd::Ones(n, 1);
  s.B = full ? Eigen::MatrixXd(Eigen::MatrixXd::Identity(n, n)) : Eigen::MatrixXd::Ones(1, 1);
  s.D = Eigen::VectorXd::Ones(n);
  s.pc = Eigen::VectorXd::Zero(n);
  s.ps = Eigen::VectorXd::Zero(n);
  s.best_x = Eigen::VectorXd::Zero(n);
  s.Z = Eigen::MatrixXd::Zero(n, lambda);
  s.Y = Eigen::MatrixXd::Zero(n, lambda);
  s.best_history =
      Eigen::VectorXd::Constant(params_.tolfun_history, std::numeric_limits<double>::quiet_NaN());
  s.active = options.active;
  s.stop = options.stop;
  s.format = options.stop == StopRules::legacy && !options.active ? 1 : 2;
  if (s.format == 2) {
    s.stagnation_best = Eigen::VectorXd::Zero(CmaState::kStagnationCapacity);
    s.stagnation_median = Eigen::VectorXd::Zero(CmaState::kStagnationCapacity);
  }
  rng_ = Rng(options.seed);
  work_ = std::make_unique<EigenWork>();
  if (options.threads < 0) throw UsageError("cma: threads must be >= 0");
  eigen_threads_ = options.threads > 0 ? options.threads : (std::thread::hardware_concurrency() >= 2 ? 2 : 1);
}

std::string Cma::stop_reason() const { return stop_reason_names()[state_.stop_code]; }

double Cma::repair(double x) const {
  const double lo = options_.lower, hi = options_.upper;
  if (x >= lo && x <= hi) return x;  // inside: untouched, bit for bit
  if (!std::isfinite(lo)) return 2.0 * hi - x;
  if (!std::isfinite(hi)) return 2.0 * lo - x;
  // Periodic reflection: period 2 (hi - lo), so every point outside maps to a distinct-ish point
  // inside and the outside region is never flat (plain clipping makes it flat, and the mean then
  // random-walks away from the box).
  const double width = hi - lo;
  double t = (x - lo) / width;
  t -= 2.0 * std::floor(t / 2.0);  // [0, 2)
  const double y = t <= 1.0 ? lo + t * width : lo + (2.0 - t) * width;
  return std::min(hi, std::max(lo, y));
}

Eigen::VectorXd Cma::stds() const {
  const Eigen::VectorXd diag = state_.covariance == Covariance::full ? Eigen::VectorXd(state_.cov.diagonal())
                                                                     : Eigen::VectorXd(state_.cov.col(0));
  return state_.sigma * diag.cwiseSqrt();
}

const Eigen::MatrixXd& Cma::ask() {
  CmaState& s = state_;
  if (!s.has_sample) {
    // Column-major: candidate j gets the j-th block of the normal stream.
    fill_normals(rng_, s.Z.data(), static_cast<std::size_t>(s.Z.size()));
    if (s.covariance == Covariance::full) {
      const Eigen::MatrixXd dz = s.D.asDiagonal() * s.Z;  // [n, lambda]
      const int n = params_.dim;
      dense::gemm(n, params_.lambda, n, s.B.data(), n, dz.data(), n, s.Y.data(), n);  // Y = B D Z
    } else {
      s.Y.noalias() = s.D.asDiagonal() * s.Z;
    }
    s.has_sample = true;
    make_candidates();
  }
  return bounded_ ? X_eval_ : X_;
}

void Cma::make_candidates() {
  // Always around the current mean, whatever the age of B and D.
  X_ = (state_.sigma * state_.Y).colwise() + state_.mean;  // [n, lambda]
  if (bounded_) X_eval_ = X_.unaryExpr([this](double x) { return repair(x); });
}

void Cma::tell(const Eigen::VectorXd& fitness) {
  CmaState& s = state_;
  const int n = params_.dim, lambda = params_.lambda, mu = params_.mu;
  if (!s.has_sample) throw Error("cma: tell() called without a pending ask()");
  if (fitness.size() != lambda)
    throw Error("cma: tell() got " + std::to_string(fitness.size()) + " fitness values, popsize is " +
                std::to_string(lambda));
  const Eigen::MatrixXd& evaluated = bounded_ ? X_eval_ : X_;

  // Rank: finite values first, ascending, ties by index; non-finite values last, in index order.
  std::vector<int> order(lambda);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    const bool fa = std::isfinite(fitness[a]), fb = std::isfinite(fitness[b]);
    if (fa != fb) return fa;
    return fa && fitness[a] < fitness[b];
  });
  int n_finite = 0;
  double worst_finite = -std::numeric_limits<double>::infinity();
  for (int j = 0; j < lambda; ++j) {
    if (std::isfinite(fitness[j])) {
      ++n_finite;
      worst_finite = std::max(worst_finite, fitness[j]);
    }
  }
  s.evaluations += lambda;
  s.nonfinite += lambda - n_finite;
  const double gen_best = n_finite ? fitness[order[0]] : std::numeric_limits<double>::quiet_NaN();
  if (n_finite && gen_best < s.best_f) {
    s.best_f = gen_best;
    s.best_x = evaluated.col(order[0]);
  }

  // Sorted values (non-finite as +inf) for pycma's flat-fitness, tolfun and stagnation rules.
  std::vector<double> sorted_f(lambda);
  for (int i = 0; i < lambda; ++i)
    sorted_f[i] = std::isfinite(fitness[order[i]]) ? fitness[order[i]] : std::numeric_limits<double>::infinity();
  // pycma's flat fitness (_CMAStopDict): the best not better than the value at rank
  // floor(0.75 lambda), counted in a row. Only finite values count: a generation of non-finite
  // losses is the loop's error to report (app/train.cpp), not a plateau.
  const int flat_rank = static_cast<int>(0.75 * lambda);
  const bool flat = s.format >= 2 && n_finite > flat_rank && !(sorted_f[0] < sorted_f[flat_rank]);

  // With no finite value there is nothing to learn: keep the distribution as it is.
  if (n_finite > 0) {
    const auto& w = params_.weights;
    // The steps of the covariance update and their weights: the mu best (positive weights), then,
    // active, the worse ones with nonzero negative weights, each scaled by n / |C^-1/2 y_i|^2 =
    // n / |z_i|^2 (z as sampled: y = B D z with the B, D of this sample) as in the tutorial's eq. 46.
    std::vector<int> cols;
    std::vector<double> cw;
    double weight_sum = 1.0;  // the sum of all recombination weights (unscaled), as in eq. 47
    for (int i = 0; i < mu; ++i) {
      cols.push_back(order[i]);
      cw.push_back(w[i]);
    }
    if (params_.active) {
      const auto& nw = params_.negative_weights;
      for (int i = 0; i < nw.size(); ++i) {
        weight_sum += nw[i];
        if (nw[i] == 0) continue;
        const int j = order[mu + i];
        const double zz = dense::dot(s.Z.col(j).data(), s.Z.col(j).data(), n);
        if (!(zz > 0)) continue;
        cols.push_back(j);
        cw.push_back(nw[i] * (n / zz));
      }
    }
    const int k = static_cast<int>(cols.size());
    Eigen::MatrixXd y_sel(n, k);  // [n, k] selected steps
    Eigen::VectorXd y_w = Eigen::VectorXd::Zero(n), z_w = Eigen::VectorXd::Zero(n);
    for (int i = 0; i < k; ++i) {
      const int j = cols[i];
      if (i < mu) {
        y_w += w[i] * s.Y.col(j);
        z_w += w[i] * s.Z.col(j);
      }
      y_sel.col(i) = s.Y.col(j);
    }
    const Eigen::Map<const Eigen::VectorXd> wk(cw.data(), k);
    s.mean += s.sigma * y_w;

    const double cs = params_.csigma, cc = params_.cc, c1 = params_.c1, cmu = params_.cmu;
    // C^{-1/2} y_w = B D^{-1} B^T B D z_w = B z_w with the B, D the sample was drawn with.
    const double ps_scale = std::sqrt(cs * (2.0 - cs) * params_.mueff);
    if (s.covariance == Covariance::full) {
      Eigen::VectorXd bz(n);
      dense::gemm(n, 1, n, s.B.data(), n, z_w.data(), n, bz.data(), n);
      s.ps = (1.0 - cs) * s.ps + ps_scale * bz;
    } else {
      s.ps = (1.0 - cs) * s.ps + ps_scale * z_w;
    }
    s.ps_decay *= (1.0 - cs) * (1.0 - cs);
    const double ps_norm = s.ps.norm();
    const bool hsig = ps_norm / std::sqrt(1.0 - s.ps_decay) < (1.4 + 2.0 / (n + 1.0)) * params_.chin;
    s.pc = (1.0 - cc) * s.pc;
    if (hsig) s.pc += std::sqrt(cc * (2.0 - cc) * params_.mueff) * y_w;

    // Passive: weight_sum is 1 and this is exactly 1 - c1 - cmu + ...
    const double keep = params_.active ? 1.0 - c1 - cmu * weight_sum + (hsig ? 0.0 : c1 * cc * (2.0 - cc))
                                       : 1.0 - c1 - cmu + (hsig ? 0.0 : c1 * cc * (2.0 - cc));
    if (s.covariance == Covariance::full) {
      // keep C + c1 pc pc^T + cmu sum_i w_i y_i y_i^T, the sum as one product; the lower triangle
      // is authoritative (and all the eigensolver reads).
      const Eigen::MatrixXd y_sel_t = wk.asDiagonal() * y_sel.transpose();  // [k, n] weighted
      rank_mu_.resize(n, n);
      dense::gemm(n, n, k, y_sel.data(), n, y_sel_t.data(), k, rank_mu_.data(), n);
      for (int j = 0; j < n; ++j) {
        double* cj = s.cov.col(j).data();
        const double* gj = rank_mu_.col(j).data();
        const double pcj = c1 * s.pc[j];
        for (int i = j; i < n; ++i) cj[i] = (keep * cj[i] + pcj * s.pc[i]) + cmu * gj[i];
      }
    } else {
      for (int r = 0; r < n; ++r) {
        double sum_wy2 = 0;  // sum_i w_i y_ri^2
        for (int i = 0; i < k; ++i) sum_wy2 += wk[i] * (y_sel(r, i) * y_sel(r, i));
        s.cov(r, 0) = (keep * s.cov(r, 0) + c1 * (s.pc[r] * s.pc[r])) + cmu * sum_wy2;
      }
      s.D = s.cov.col(0).cwiseMax(0.0).cwiseSqrt();
    }
    s.sigma *= portable_exp((cs / params_.dsigma) * (ps_norm / params_.chin - 1.0));
  }
  // pycma leaves sigma alone on a flat fitness (its sigma increase is switched off in the code).
  s.flat_generations = flat ? s.flat_generations + 1 : 0;

  s.generation += 1;
  s.has_sample = false;
  s.best_history[s.history_count % params_.tolfun_history] = gen_best;
  s.history_count += 1;
  if (s.format >= 2 && s.generation % 5 == 0) {  // pycma's histbest / histmedian, every 5th
    const int slot = static_cast<int>(s.stagnation_count % CmaState::kStagnationCapacity);
    s.stagnation_best[slot] = sorted_f[0];
    s.stagnation_median[slot] = lambda % 2 ? sorted_f[lambda / 2]
                                            : (sorted_f[lambda / 2 - 1] + sorted_f[lambda / 2]) / 2;
    s.stagnation_count += 1;
  }
  if (s.covariance == Covariance::full && n_finite > 0) update_eigen_after_tell();
  if (s.stop != StopRules::legacy) {
    if (!stopped()) check_pycma_stop(sorted_f, n_finite);
    return;
  }

  const double range_now =
      n_finite == lambda ? worst_finite - gen_best : std::numeric_limits<double>::infinity();
  if (!stopped()) {
    check_stop();
    if (!stopped() && s.history_count >= params_.tolfun_history && range_now < options_.tolfun) {
      const double hi = std::max(s.best_history.maxCoeff(), worst_finite);
      const double lo = std::min(s.best_history.minCoeff(), gen_best);
      if (s.best_history.allFinite() && hi - lo < options_.tolfun) s.stop_code = kTolFun;
    }
  }
}

void Cma::decompose_into(EigenWork& work, int threads) {
  symmetric_eigen(work.cov, work.result, threads, &work.scratch);  // reads the lower triangle
  work.B.swap(work.result.vectors);
  work.D = work.result.values.cwiseMax(0.0).cwiseSqrt();
}

const Cma::EigenWork& Cma::pending_result() const {
  pending_.get();  // rethrows the decomposition's error, if any
  return *work_;
}

void Cma::update_eigen_after_tell() {
  CmaState& s = state_;
  const int gap = params_.eigen_gap;
  if (gap == 1) {  // small n: cheap, do it now
    work_->cov = s.cov;
    decompose_into(*work_, eigen_threads_);
    s.B.swap(work_->B);
    s.D = work_->D;
    s.eigen_generation = s.generation;
    return;
  }
  // Every `gap` generations: adopt the decomposition launched `gap` generations ago (waiting if
  // it is not ready: the outcome never depends on timing) and launch one of the current C.
  const int last_launch = s.has_pending ? s.pending_generation : s.eigen_generation;
  if (s.generation - last_launch < gap) return;
  if (s.has_pending) {
    pending_result();
    s.B.swap(work_->B);
    s.D = work_->D;
    s.eigen_generation = s.pending_generation;
    pending_ = {};
    s.has_pending = false;
  }
  work_->cov = s.cov;  // same size every time: no new memory
  EigenWork* work = work_.get();
  pending_ = std::async(std::launch::async, [work, threads = eigen_threads_]() {
               decompose_into(*work, threads);
             }).share();
  s.has_pending = true;
  s.pending_generation = s.generation;
}

void Cma::check_stop() {
  CmaState& s = state_;
  if (options_.max_evaluations > 0 && s.evaluations >= options_.max_evaluations) {
    s.stop_code = kMaxEvaluations;
  } else if (options_.max_generations > 0 && s.generation >= options_.max_generations) {
    s.stop_code = kMaxGenerations;
  } else if ((s.sigma * s.pc.cwiseAbs()).maxCoeff() < options_.tolx && stds().maxCoeff() < options_.tolx) {
    s.stop_code = kTolX;
  } else {
    const double dmax = s.D.maxCoeff(), dmin = s.D.minCoeff();
    if (!(dmin > 0) || (dmax / dmin) * (dmax / dmin) > options_.tolconditioncov)
      s.stop_code = kTolConditionCov;
  }
}

void Cma::check_pycma_stop(const std::vector<double>& sorted_f, int n_finite) {
  CmaState& s = state_;
  const CmaOptions& o = options_;
  const int n = params_.dim, lambda = params_.lambda;
  auto stop = [&](int code) { s.stop_code = code; };
  if (o.max_evaluations > 0 && s.evaluations >= o.max_evaluations) return stop(kMaxEvaluations);
  if (o.max_generations > 0 && s.generation >= o.max_generations) return stop(kMaxGenerations);
  if (s.stop == StopRules::budget) return;
  const Eigen::VectorXd stds = this->stds();
  if ((stds.array() > options_.sigma0 * o.tolfacupx).any()) return stop(kTolFacUpX);
  // pycma compares sigma * pc (signed) with tolx.
  if ((stds.array() < o.tolx).all() && ((s.sigma * s.pc).array() < o.tolx).all()) return stop(kTolX);
  // The best f of the last min(generations, tolfun_history) generations, this one included.
  const int h = std::min(s.history_count, params_.tolfun_history);
  double hist_lo = std::numeric_limits<double>::infinity(), hist_hi = -hist_lo;
  bool hist_finite = true;
  for (int i = 0; i < h; ++i) {
    const double v = s.best_history[(s.history_count - 1 - i) % params_.tolfun_history];
    if (!std::isfinite(v)) hist_finite = false;
    hist_lo = std::min(hist_lo, v);
    hist_hi = std::max(hist_hi, v);
  }
  if (n_finite == lambda && sorted_f[lambda - 1] - sorted_f[0] < o.tolfun && hist_finite &&
      hist_hi - hist_lo < o.tolfun)
    return stop(kTolFun);
  if (h > 9 && hist_finite && hist_hi - hist_lo < o.tolfunhist) return stop(kTolFunHist);
  // tolstagnation: the medians of the newest l and the l before them of the every-5th-generation
  // best and median f; neither improved.
  const double tolstagnation =
      o.tolstagnation > 0 ? o.tolstagnation
                          : std::floor(100.0 + 100.0 * std::pow(static_cast<double>(n), 1.5) / lambda);
  const long len = std::min<long>(s.stagnation_count, CmaState::kStagnationCapacity);
  const double l_real = std::max(tolstagnation / 5.0 / 2.0, len / 10.0);
  if (l_real <= s.generation && s.generation > n * (5.0 + 100.0 / lambda) && len > 100) {
    const long l = static_cast<long>(l_real);
    if (2 * l < len) {
      auto window = [&](const Eigen::VectorXd& ring, long from) {  // newest first
        std::vector<double> v;
        for (long i = from; i < from + l; ++i)
          v.push_back(ring[(s.stagnation_count - 1 - i) % CmaState::kStagnationCapacity]);
        return median_of(std::move(v));
      };
      if (window(s.stagnation_median, 0) >= window(s.stagnation_median, l) &&
          window(s.stagnation_best, 0) >= window(s.stagnation_best, l))
        return stop(kTolStagnation);
    }
  }
  if (s.sigma / s.D.maxCoeff() > options_.sigma0 * o.tolupsigma) return stop(kTolUpSigma);
  for (int i = 0; i < n; ++i) {
    const double c_ii = s.covariance == Covariance::full ? s.cov(i, i) : s.cov(i, 0);
    if (s.mean[i] == s.mean[i] + 0.2 * s.sigma * std::sqrt(c_ii)) return stop(kNoEffectCoord);
  }
  if (s.covariance == Covariance::full) {
    const int axis = s.generation % n;
    bool none = true;
    for (int i = 0; i < n && none; ++i)
      none = s.mean[i] == s.mean[i] + 0.1 * s.sigma * s.D[axis] * s.B(i, axis);
    if (none) return stop(kNoEffectAxis);
  }
  const double dmax = s.D.maxCoeff(), dmin = s.D.minCoeff();
  if (!(dmin > 0) || (dmax / dmin) * (dmax / dmin) > o.tolconditioncov) return stop(kTolConditionCov);
  // Last, as pycma checks it: the reason named when several hold.
  if (o.tolflatfitness > 0 && s.flat_generations > o.tolflatfitness) return stop(kTolFlatFitness);
}

CmaState Cma::state() const {
  CmaState s = state_;
  s.rng = rng_.state();
  if (s.has_pending) {
    const EigenWork& w = pending_result();
    s.pending_B = w.B;
    s.pending_D = w.D;
  } else {
    s.pending_B = Eigen::MatrixXd::Zero(s.B.rows(), s.B.cols());
    s.pending_D = Eigen::VectorXd::Zero(s.dim);
  }
  if (s.covariance == Covariance::full) {
    s.cov.triangularView<Eigen::StrictlyUpper>() = s.cov.transpose();  // export the symmetric matrix
  }
  return s;
}

Cma Cma::restore(const CmaOptions& requested, const CmaState& state) {
  // A run continues with the update it started with: a format-1 state (an old run file) with the
  // positive-weights update and the legacy stop rules, a format-2 one with its own `active`.
  CmaOptions options = requested;
  options.active = state.active;
  if (state.format < 2) options.stop = StopRules::legacy;
  Cma cma(options);
  const CmaState& init = cma.state_;
  const int n = init.dim, lambda = init.popsize;
  auto fail = [](const std::string& what) { throw Error("cma: cannot restore state: " + what); };
  if (state.dim != n) fail("dim " + std::to_string(state.dim) + " != " + std::to_string(n));
  if (state.popsize != lambda)
    fail("popsize " + std::to_string(state.popsize) + " != " + std::to_string(lambda));
  if (state.covariance != options.covariance) fail("covariance " + to_string(state.covariance));
  auto shape = [&](const char* name, const Eigen::MatrixXd& m, const Eigen::MatrixXd& like) {
    if (m.rows() != like.rows() || m.cols() != like.cols())
      fail(std::string("array '") + name + "' has the wrong shape");
  };
  shape("mean", state.mean, init.mean);
  shape("cov", state.cov, init.cov);
  shape("B", state.B, init.B);
  shape("D", state.D, init.D);
  shape("pc", state.pc, init.pc);
  shape("ps", state.ps, init.ps);
  shape("best_x", state.best_x, init.best_x);
  shape("Z", state.Z, init.Z);
  shape("Y", state.Y, init.Y);
  shape("best_history", state.best_history, init.best_history);
  if (state.has_pending) {
    shape("pending_B", state.pending_B, init.B);
    shape("pending_D", state.pending_D, init.D);
  }
  if (state.format >= 2) {
    shape("stagnation_best", state.stagnation_best, init.stagnation_best);
    shape("stagnation_median", state.stagnation_median, init.stagnation_median);
  }
  if (state.stop_code < 0 || state.stop_code >= kStopCodeCount) fail("unknown stop code");
  // Values: finite where a running strategy has them finite, a symmetric covariance with a positive
  // diagonal and correlations within [-1, 1], and counters that agree with each other.
  auto finite = [&](const char* name, const Eigen::MatrixXd& m) {
    const Eigen::Index bad = m.size() - m.array().isFinite().count();
    if (bad > 0) fail(std::string("'") + name + "' holds " + std::to_string(bad) + " non-finite value(s)");
  };
  finite("mean", state.mean);
  finite("cov", state.cov);
  finite("B", state.B);
  finite("D", state.D);
  finite("pc", state.pc);
  finite("ps", state.ps);
  finite("best_x", state.best_x);
  finite("Z", state.Z);
  finite("Y", state.Y);
  if (state.has_pending) {
    finite("pending_B", state.pending_B);
    finite("pending_D", state.pending_D);
  }
  if (!(std::isfinite(state.sigma) && state.sigma > 0)) fail("sigma is " + std::to_string(state.sigma));
  if (!(std::isfinite(state.ps_decay) && state.ps_decay >= 0 && state.ps_decay <= 1)) fail("ps_decay out of range");
  if ((state.D.array() < 0).any()) fail("'D' holds negative values");
  if (state.covariance == Covariance::full) {
    for (Eigen::Index j = 0; j < n; ++j) {
      if (!(state.cov(j, j) > 0)) fail("the covariance's diagonal is not positive");
      for (Eigen::Index i = j + 1; i < n; ++i) {
        const double c = state.cov(i, j);
        if (c != state.cov(j, i)) fail("the covariance is not symmetric");
        if (c * c > state.cov(i, i) * state.cov(j, j) * (1 + 1e-9)) fail("the covariance is not positive");
      }
    }
  } else if (!(state.cov.array() > 0).all()) {
    fail("the diagonal covariance is not positive");
  }
  if (state.generation < 0 || state.evaluations != static_cast<long>(state.generation) * lambda ||
      state.nonfinite < 0 || state.nonfinite > state.evaluations || state.history_count != state.generation ||
      state.eigen_generation < 0 || state.eigen_generation > state.generation ||
      (state.has_pending && (state.pending_generation < 0 || state.pending_generation > state.generation)))
    fail("its counters disagree (generation " + std::to_string(state.generation) + ", evaluations " +
         std::to_string(state.evaluations) + ")");

  cma.state_ = state;
  cma.state_.stop = options.stop;  // the stop rules may be chosen anew on resume
  cma.rng_.set_state(state.rng);
  if (state.has_pending) {
    cma.work_->B = state.pending_B;
    cma.work_->D = state.pending_D;
    std::promise<void> ready;
    ready.set_value();
    cma.pending_ = ready.get_future().share();
  }
  cma.state_.pending_B.resize(0, 0);
  cma.state_.pending_D.resize(0);
  // A budget may have been raised for the continuation: re-judge budget stops by the new options.
  if (state.stop_code == kMaxEvaluations || state.stop_code == kMaxGenerations) {
    cma.state_.stop_code = kRunning;
    if (options.max_evaluations > 0 && state.evaluations >= options.max_evaluations)
      cma.state_.stop_code = kMaxEvaluations;
    else if (options.max_generations > 0 && state.generation >= options.max_generations)
      cma.state_.stop_code = kMaxGenerations;
  }
  if (state.has_sample) cma.make_candidates();
  return cma;
}

}  // namespace bbt::es

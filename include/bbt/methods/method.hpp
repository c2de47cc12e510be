#pragma once
// A training method: what the job's loop (app/train) asks of it each step. The loop owns the
// run (steps, dev selection, checkpoints, signals, progress, the test pass, the run record); a
// method proposes prompts, has them evaluated through the cluster, updates itself, and names its
// own per-step series and checkpoint state. It never sees the run file or the configuration.
#include <Eigen/Core>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "bbt/cluster/cluster.hpp"
#include "bbt/core/scorer.hpp"

namespace bbt::methods {

// One of a method's own per-step series (stored under /train/): one row per step.
struct SeriesSpec {
  std::string name;
  std::size_t width = 0;  // 0: a scalar per step
  bool integer = false;   // stored as int64 (counts)
};

// A fixed int64 array a method writes once (under /method/<name>; indices, counts), its shape
// known when the run starts.
struct ArraySpec {
  std::string name;
  std::vector<std::size_t> shape;
};

// What a method that takes no steps did in fit(): its own training (if any) and its records.
struct Fit {
  std::vector<std::vector<std::vector<double>>> rows;               // per epoch: one row per series()
  std::vector<std::pair<std::string, std::vector<std::int64_t>>> arrays;  // values of arrays(), by name
  std::int64_t api_calls = 0;  // queries spent (a query = one forward over the train set)
  double bytes_up = 0, bytes_down = 0;  // per query, over all ranks: token ids out, outputs back
  double user_bytes = 0;                // rank 0's own model: classifier, optimiser state, features
  std::int64_t tuned_parameters = 0;    // trained weights (0: none, as the manual prompt and ICL)
  std::string summary;                  // one line for the log
  std::vector<double> prompt;           // a gradient method's kept parameters, dense (/best/prompt)
  Eigen::VectorXd z;                    // a subspace method's kept z (/best/z; empty: none)
  bool stopped = false;                 // FitProgress::step_done asked it to stop (state checkpointed)
};

// What a fit that trains step by step tells the job's loop after each step: its row of series()
// (which the loop records at once, instead of Fit::rows) and the steps done. The loop may
// checkpoint the method's state() there; step_done returns true when the fit must return now with
// Fit::stopped (a stop signal: the state is checkpointed, a resume continues the fit from it). The
// base class records nothing and never stops (bbt eval's refit).
class FitProgress {
 public:
  virtual ~FitProgress() = default;
  virtual bool step_done(const std::vector<std::vector<double>>& /*row*/, std::int64_t /*steps*/) { return false; }
};

// A method's checkpoint state as named matrices (no field names leak into the loop).
using StateArrays = std::vector<std::pair<std::string, Eigen::MatrixXd>>;

// What one step did. Candidates are the prompts the step scored on the train split.
struct Step {
  std::vector<double> losses, accuracies;  // per candidate
  std::size_t best = 0;                    // index of the step's best candidate (lowest loss)
  Eigen::VectorXd best_prompt;             // what dev selection scores (eval.select = best)
  Eigen::MatrixXd candidates;              // every candidate, a column each, in call order
                                           // (eval.select = call scores the one at the call)
  std::int64_t api_calls = 0;              // black-box calls the step spent
  cluster::EvalCosts costs;                // of its train evaluation
  std::vector<std::vector<double>> own;    // one row per series(), in that order
  std::string note;                        // the method's part of the progress line ("sigma 0.5012")

  double mean_loss() const;  // over the candidates (NaN if any loss is NaN)
};

class Method {
 public:
  virtual ~Method() = default;

  // Candidates scored per step (width of /train/loss) and the length of a prompt vector. A method
  // that tunes no prompt (the baselines) has 0 of both and takes no steps: the loop calls fit()
  // once instead, then scores dev and test through split_logits().
  virtual int candidates_per_step() const = 0;
  virtual int prompt_dim() const = 0;
  virtual std::vector<SeriesSpec> series() const = 0;

  // Rank 0: one step through the cluster; train losses come from `scorer`.
  virtual Step step(cluster::Cluster& cluster, const core::Scorer& scorer) = 0;
  // Non-empty when the method stopped by its own criteria (checked before each step).
  virtual std::string stop_reason() const = 0;
  // The prompt kept when dev selection never ran.
  virtual Eigen::VectorXd final_prompt() const = 0;

  // The no-step methods' phase: all their training, once (the loop records what it returns); a
  // resumed one continues from the restored state().
  virtual Fit fit(cluster::Cluster& /*cluster*/, const core::Scorer& /*scorer*/, FitProgress& /*progress*/) {
    return {};
  }
  virtual std::vector<ArraySpec> arrays() const { return {}; }
  // Logits [split size x K] of the kept prompt (a prompt method) or of the fitted method.
  virtual std::vector<float> split_logits(cluster::Cluster& cluster, cluster::Split split,
                                          const Eigen::VectorXd& kept) {
    return cluster.evaluate(split, kept);
  }

  // Checkpoint state under /checkpoint/slotN/<state_group()>/; restore() takes what state() gave.
  virtual std::string state_group() const = 0;
  virtual StateArrays state() const = 0;
  virtual void restore(const StateArrays& arrays) = 0;
  // State too large for float64 matrices, held in float32 (model tuning's weights and AdamW's
  // moments, on every rank), beside state() in the same group: names and lengths (fixed when the run
  // starts); rank 0's values of one (empty: nothing to keep, as at the start); and, after restore(),
  // restoring what the method needs through `read` (on every rank).
  virtual std::vector<std::pair<std::string, std::size_t>> float_state_sizes() const { return {}; }
  virtual std::vector<float> float_state(const std::string& /*name*/) const { return {}; }
  virtual void restore_float_state(const std::function<std::vector<float>(const std::string&)>& /*read*/) {}
};

// The shape every method that tunes no prompt shares: no steps, no prompt, and (unless it says
// otherwise: the gradient-based methods) no state kept across a resume (a resumed run fits again
// from the start: the same inputs give the same bits).
class NoStepMethod : public Method {
 public:
  int candidates_per_step() const override { return 0; }
  int prompt_dim() const override { return 0; }
  std::vector<SeriesSpec> series() const override { return {}; }
  Step step(cluster::Cluster& cluster, const core::Scorer& scorer) override;  // throws: never called
  std::string stop_reason() const override { return {}; }
  Eigen::VectorXd final_prompt() const override { return {}; }
  std::string state_group() const override { return "baseline"; }
  StateArrays state() const override { return {}; }
  void restore(const StateArrays& /*arrays*/) override {}
};

// Index of the lowest loss; NaN counts as worst (the first NaN-free minimum wins ties).
std::size_t best_index(const std::vector<double>& losses);

}  // namespace bbt::methods

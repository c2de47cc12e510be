#pragma once
// A training method: what the job's loop (app/train) asks of it each step. The loop owns the
// run (steps, dev selection, checkpoints, signals, progress, the test pass, the run record); a
// method proposes prompts, has them evaluated through the cluster, updates itself, and names its
// own per-step series and checkpoint state. It never sees the run file or the configuration.
#include <Eigen/Core>
#include <cstddef>
#include <cstdint>
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

  // Candidates scored per step (width of /train/loss) and the length of a prompt vector.
  virtual int candidates_per_step() const = 0;
  virtual int prompt_dim() const = 0;
  virtual std::vector<SeriesSpec> series() const = 0;

  // Rank 0: one step through the cluster; train losses come from `scorer`.
  virtual Step step(cluster::Cluster& cluster, const core::Scorer& scorer) = 0;
  // Non-empty when the method stopped by its own criteria (checked before each step).
  virtual std::string stop_reason() const = 0;
  // The prompt kept when dev selection never ran.
  virtual Eigen::VectorXd final_prompt() const = 0;

  // Checkpoint state under /checkpoint/slotN/<state_group()>/; restore() takes what state() gave.
  virtual std::string state_group() const = 0;
  virtual StateArrays state() const = 0;
  virtual void restore(const StateArrays& arrays) = 0;
};

// Index of the lowest loss; NaN counts as worst (the first NaN-free minimum wins ties).
std::size_t best_index(const std::vector<double>& losses);

}  // namespace bbt::methods

#pragma once
// Scores one candidate's logits on a split: the black-box loss, the task metric and accuracy,
// with the loss settings resolved once (not per candidate).
#include <cstddef>
#include <vector>

#include "bbt/core/evaluator.hpp"
#include "bbt/core/losses.hpp"
#include "bbt/data/task.hpp"

namespace bbt::core {

struct Scores {
  double loss = 0, metric = 0, accuracy = 0;
};

struct LossSettings {
  LossType type = LossType::ce;
  double margin = 2, logit_scale = 1;
};

class Scorer {
 public:
  Scorer(LossSettings loss, data::Metric metric, int f1_positive, std::size_t num_labels);

  // Candidate c of `logits` (candidate-major [C x n x K], as the cluster returns them) on `split`.
  Scores score(const std::vector<float>& logits, std::size_t candidate, const EncodedSplit& split) const;
  // Every candidate's scores.
  std::vector<Scores> score_all(const std::vector<float>& logits, std::size_t candidates,
                                const EncodedSplit& split) const;

 private:
  LossSettings loss_;
  data::Metric metric_;
  int f1_positive_;
  std::size_t k_;
};

}  // namespace bbt::core

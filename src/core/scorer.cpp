#include "bbt/core/scorer.hpp"

#include "bbt/common/error.hpp"

namespace bbt::core {

Scorer::Scorer(LossSettings loss, data::Metric metric, int f1_positive, std::size_t num_labels)
    : loss_(loss), metric_(metric), f1_positive_(f1_positive), k_(num_labels) {}

Scores Scorer::score(const std::vector<float>& logits, std::size_t candidate,
                     const EncodedSplit& split) const {
  const std::size_t n = static_cast<std::size_t>(split.size());
  if ((candidate + 1) * n * k_ > logits.size())
    throw Error("scorer: " + std::to_string(logits.size()) + " logits hold no candidate " +
                std::to_string(candidate) + " of " + std::to_string(n) + " examples");
  const LogitMatrix m = logits_from(logits.data() + candidate * n * k_, n, k_);
  const std::vector<int> labels(split.labels.begin(), split.labels.end());
  Scores s;
  s.loss = loss(loss_.type, m, labels, loss_.margin, loss_.logit_scale, metric_, f1_positive_);
  s.metric = metric(m, labels, metric_, f1_positive_);
  s.accuracy = accuracy(m, labels);
  return s;
}

std::vector<Scores> Scorer::score_all(const std::vector<float>& logits, std::size_t candidates,
                                      const EncodedSplit& split) const {
  std::vector<Scores> out;
  out.reserve(candidates);
  for (std::size_t c = 0; c < candidates; ++c) out.push_back(score(logits, c, split));
  return out;
}

}  // namespace bbt::core

#pragma once
// Manual prompt (the paper's zero-shot baseline): the task's template and verbalizer alone, no
// prompt tokens at all; nothing is trained. Dev and test are scored with one query each.
#include "bbt/methods/method.hpp"

namespace bbt::methods {

class Manual final : public NoStepMethod {
 public:
  Fit fit(cluster::Cluster& cluster, const core::Scorer& scorer, FitProgress& progress) override;
  std::vector<float> split_logits(cluster::Cluster& cluster, cluster::Split split,
                                  const Eigen::VectorXd& kept) override;
};

}  // namespace bbt::methods

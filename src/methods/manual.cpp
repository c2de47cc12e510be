#include "bbt/methods/manual.hpp"

#include <tuple>

namespace bbt::methods {

Fit Manual::fit(cluster::Cluster& cluster, const core::Scorer& /*scorer*/, FitProgress& /*progress*/) {
  // Nothing to train: no query spent. The cost columns say what one over the train set moves.
  Fit out;
  std::tie(out.bytes_up, out.bytes_down) =
      cluster.query_bytes(core::RowQuery::kMaskLogits, cluster.split(cluster::Split::kTrain));
  out.summary = "manual prompt: the template and verbalizer alone, nothing trained";
  return out;
}

std::vector<float> Manual::split_logits(cluster::Cluster& cluster, cluster::Split split,
                                        const Eigen::VectorXd& /*kept*/) {
  return cluster.query(core::RowQuery::kMaskLogits, cluster.split(split));
}

}  // namespace bbt::methods

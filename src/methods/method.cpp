#include "bbt/methods/method.hpp"

#include <algorithm>
#include <cmath>

#include "bbt/common/error.hpp"

namespace bbt::methods {

Step NoStepMethod::step(cluster::Cluster& /*cluster*/, const core::Scorer& /*scorer*/) {
  throw Error("internal: a method that takes no steps was asked for one");
}

double Step::mean_loss() const {
  double mean = 0;
  for (double l : losses) mean += l;
  return mean / static_cast<double>(losses.size());
}

std::size_t best_index(const std::vector<double>& losses) {
  return static_cast<std::size_t>(std::min_element(losses.begin(), losses.end(),
                                                   [](double a, double b) {
                                                     if (std::isnan(a)) return false;
                                                     if (std::isnan(b)) return true;
                                                     return a < b;
                                                   }) -
                                  losses.begin());
}

}  // namespace bbt::methods

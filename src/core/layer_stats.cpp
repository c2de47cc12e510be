#include "bbt/core/layer_stats.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

namespace bbt::core {

std::vector<double> sum_rows_in_order(const std::vector<double>& rows, std::int64_t layers) {
  std::vector<double> total(static_cast<std::size_t>(3 * layers), 0.0);
  const std::size_t n_rows = layers > 0 ? rows.size() / static_cast<std::size_t>(3 * layers) : 0;
  for (std::size_t r = 0; r < n_rows; ++r)
    for (std::size_t i = 0; i < total.size(); ++i) total[i] += rows[r * total.size() + i];
  return total;
}

std::vector<LayerStats> clipped_layer_stats(const std::vector<torch::Tensor>& inputs, std::int64_t layers,
                                            const RowSumReducer& reduce) {
  std::vector<LayerStats> stats(static_cast<std::size_t>(layers));
  std::vector<std::vector<std::pair<double, double>>> clips(static_cast<std::size_t>(layers));
  // Round 0 measures the raw inputs; rounds 1..5 clip to the last mean +- 3 std (on top of the
  // earlier clips, as np.clip on the clipped array does), then measure again.
  for (int round = 0; round <= 5; ++round) {
    if (round > 0)
      for (std::int64_t l = 0; l < layers; ++l) {
        const LayerStats& s = stats[static_cast<std::size_t>(l)];
        clips[static_cast<std::size_t>(l)].emplace_back(s.mean - 3 * s.stddev, s.mean + 3 * s.stddev);
      }
    // Per row and layer: count, sum and sum of squares of (x - shift), shift = the last mean.
    std::vector<double> local;
    for (const torch::Tensor& x : inputs) {
      const float* p = x.data_ptr<float>();
      const std::int64_t per = x.size(1) * x.size(2);
      for (std::int64_t l = 0; l < layers; ++l) {
        const auto& bounds = clips[static_cast<std::size_t>(l)];
        const double shift = stats[static_cast<std::size_t>(l)].mean;  // 0 in round 0
        double s1 = 0, s2 = 0;
        for (std::int64_t i = 0; i < per; ++i) {
          double v = p[l * per + i];
          for (const auto& [lo, hi] : bounds) v = std::min(std::max(v, lo), hi);
          v -= shift;
          s1 += v;
          s2 += v * v;
        }
        local.insert(local.end(), {static_cast<double>(per), s1, s2});
      }
    }
    const std::vector<double> total = reduce(local);
    for (std::int64_t l = 0; l < layers; ++l) {
      const double n = total[static_cast<std::size_t>(3 * l)];
      const double m = n > 0 ? total[static_cast<std::size_t>(3 * l + 1)] / n : 0.0;
      const double var = n > 0 ? total[static_cast<std::size_t>(3 * l + 2)] / n - m * m : 0.0;
      LayerStats& s = stats[static_cast<std::size_t>(l)];
      s = {s.mean + m, std::sqrt(std::max(0.0, var))};
    }
  }
  return stats;
}

std::vector<LayerStats> layer_stats_local(const model::Roberta& model, const EncodedSplit& split) {
  std::vector<torch::Tensor> inputs;
  for (const auto& ids : split.ids) inputs.push_back(model.layer_inputs(ids).contiguous());
  const std::int64_t layers = std::max<std::int64_t>(0, model.config().num_hidden_layers - 1);
  return clipped_layer_stats(
      inputs, layers, [layers](const std::vector<double>& rows) { return sum_rows_in_order(rows, layers); });
}

}  // namespace bbt::core

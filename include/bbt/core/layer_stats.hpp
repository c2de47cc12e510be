#pragma once
// BBTv2's scale of each layer's projection: mean and standard deviation of the hidden states
// entering layers 1..L-1 (no prompt; every position of every example, no padding), clipped to
// mean +- 3 std and re-measured five times, as the reference's first API call does.
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "bbt/core/evaluator.hpp"

namespace bbt::core {

struct LayerStats {
  double mean = 0, stddev = 0;  // population standard deviation
};

// Adds per-row partial sums: `rows` holds (count, sum, sum of squares) per row and layer
// (row-major [rows, layers, 3]) for this process's rows; returns the totals [layers, 3] over all
// rows, added in row order (the same bits wherever the rows were computed).
using RowSumReducer = std::function<std::vector<double>(const std::vector<double>& rows)>;

// inputs: model.layer_inputs of this process's rows ([L-1, len, H] each). Each row's sums are
// taken in one fixed order in double; `reduce` combines rows (locally: sum_rows_in_order).
std::vector<LayerStats> clipped_layer_stats(const std::vector<torch::Tensor>& inputs, std::int64_t layers,
                                            const RowSumReducer& reduce);
// The reducer of a single process: every row is here.
std::vector<double> sum_rows_in_order(const std::vector<double>& rows, std::int64_t layers);

// Statistics of `split` on one process (the planted deep task, tests).
std::vector<LayerStats> layer_stats_local(const model::Roberta& model, const EncodedSplit& split);

}  // namespace bbt::core

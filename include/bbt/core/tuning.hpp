#pragma once
// The gradient-based methods' work on one rank (prompt tuning, P-tuning v2): what a flat parameter
// vector is for the model, one chunk's cross-entropy loss and gradient, and logits of a tuned
// parameter. Every chunk is one forward (and backward) pass over the same rows whatever the rank
// count, so the bits of each chunk's result never depend on it.
#include <cstdint>
#include <vector>

#include "bbt/core/evaluator.hpp"
#include "bbt/model/roberta.hpp"

namespace bbt::core {

// What the flat parameters are (travels in the cluster's request header).
enum class Tuned : std::int64_t {
  kPrompt = 0,  // cat-mode input prompt [n, H]
  kPrefix = 1,  // P-tuning v2 prefix keys and values [L, 2, m, H]
};

// The tensor `flat` (float64) is for `model`, in the model's compute dtype on its device:
// [size/H, H] or [L, 2, size/(2 L H), H]. Throws when the size does not divide.
torch::Tensor tuned_tensor(const model::Roberta& model, Tuned kind, const std::vector<double>& flat);

// One chunk's results: the sum of the rows' cross-entropy losses, the rows predicted right, and
// the gradient of the loss sum with respect to the flat parameters (float32 values, as float64).
struct ChunkGradient {
  double loss_sum = 0;
  std::int64_t correct = 0;
  std::vector<double> grad;
};

// The rows `rows` of `split` as one forward and backward pass.
ChunkGradient chunk_gradient(const model::Roberta& model, Tuned kind, const std::vector<double>& flat,
                             const EncodedSplit& split, const std::vector<std::int64_t>& rows,
                             const std::vector<std::int64_t>& label_ids);

// Logits [end - begin, K] row-major (float32) of rows begin..end-1 of `split` under the tuned
// parameters, in chunks of chunk_rows rows counted from `begin` (no gradient).
std::vector<float> tuned_logits(const model::Roberta& model, Tuned kind, const std::vector<double>& flat,
                                const EncodedSplit& split, std::int64_t begin, std::int64_t end,
                                std::int64_t chunk_rows, const std::vector<std::int64_t>& label_ids);

}  // namespace bbt::core

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
  kSubspace = 2,  // BBT-Adam: z [d]; the prompt is BBT's A z (+ p0) in the evaluator's mode
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

// The rows `rows` of `split` as one forward and backward pass. The loss is the cross-entropy of
// logits x logit_scale (the Scorer's ce), summed over the rows.
ChunkGradient chunk_gradient(const model::Roberta& model, Tuned kind, const std::vector<double>& flat,
                             const EncodedSplit& split, const std::vector<std::int64_t>& rows,
                             const std::vector<std::int64_t>& label_ids, double logit_scale = 1.0);

// BBT's prompt of z [d] as Evaluator::pair_logits forms it, [n, H]: A z (z rounded to float32 first,
// unless A is float64) plus p0 when the evaluator has one. The same bits as BBT's candidate prompt.
torch::Tensor subspace_prompt(const Evaluator& evaluator, const std::vector<double>& z);

// As chunk_gradient for z [d] (Tuned::kSubspace): the forward and backward pass under the prompt
// p = subspace_prompt(z) in the evaluator's mode (add or cat), and grad_z = A^T grad_p (in float32,
// float64 for a float64 A).
ChunkGradient subspace_chunk_gradient(const Evaluator& evaluator, const std::vector<double>& z,
                                      const EncodedSplit& split, const std::vector<std::int64_t>& rows,
                                      double logit_scale = 1.0);

// Logits [end - begin, K] row-major (float32) of rows begin..end-1 of `split` under the tuned
// parameters, in chunks of chunk_rows rows counted from `begin` (no gradient). Not for kSubspace
// (its logits are the evaluator's: Evaluator::pair_logits of z).
std::vector<float> tuned_logits(const model::Roberta& model, Tuned kind, const std::vector<double>& flat,
                                const EncodedSplit& split, std::int64_t begin, std::int64_t end,
                                std::int64_t chunk_rows, const std::vector<std::int64_t>& label_ids);

}  // namespace bbt::core

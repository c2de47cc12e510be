#pragma once
// The gradient-based methods' work on one rank (prompt tuning, P-tuning v2, model tuning): what a
// flat parameter vector is for the model, one chunk's cross-entropy loss and gradient, logits of a
// tuned parameter, AdamW's update, and model tuning's trainable copy of the weights (WeightTuner).
// Every chunk is one forward (and backward) pass over the same rows whatever the rank count, so the
// bits of each chunk's result never depend on it.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "bbt/core/evaluator.hpp"
#include "bbt/model/roberta.hpp"

namespace bbt::core {

// What the flat parameters are (travels in the cluster's request header).
enum class Tuned : std::int64_t {
  kPrompt = 0,  // cat-mode input prompt [n, H]
  kPrefix = 1,  // P-tuning v2 prefix keys and values [L, 2, m, H]
  kSubspace = 2,  // BBT-Adam: z [d]; the prompt is BBT's A z (+ p0) in the evaluator's mode
  kWeights = 3,   // model tuning: every weight, held by each rank (WeightTuner), never travels
};

// One AdamW step (decoupled weight decay, bias-corrected moments; t is the 0-based step).
struct AdamW {
  double lr = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  long t = 0;
};

// AdamW on n entries: g (times scale) is the gradient; p, m, v are updated in place, the arithmetic
// in double whatever P is (float32 weights and moments: model tuning; double: rank 0's prompt).
// decay scales a.weight_decay for these entries (0: none, as biases and LayerNorm weights).
template <class P, class G>
void adamw_update(P* p, P* m, P* v, const G* g, double scale, std::size_t n, const AdamW& a, double decay) {
  const double c1 = 1.0 - std::pow(a.beta1, static_cast<double>(a.t + 1));
  const double c2 = 1.0 - std::pow(a.beta2, static_cast<double>(a.t + 1));
  const double wd = a.weight_decay * decay;
  for (std::size_t i = 0; i < n; ++i) {
    const double gi = static_cast<double>(g[i]) * scale;
    m[i] = static_cast<P>(a.beta1 * static_cast<double>(m[i]) + (1 - a.beta1) * gi);
    v[i] = static_cast<P>(a.beta2 * static_cast<double>(v[i]) + (1 - a.beta2) * gi * gi);
    const double pi = static_cast<double>(p[i]);
    p[i] = static_cast<P>(pi - a.lr * (wd * pi + (static_cast<double>(m[i]) / c1) /
                                                     (std::sqrt(static_cast<double>(v[i]) / c2) + a.eps)));
  }
}

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

// Model tuning on one rank: a trainable copy of the model (every weight, Roberta::trainable_copy),
// AdamW's two moments (float32, as the weights) and the weights dev kept (a second copy: memory x2
// of the weights, plus the moments: 4 x the weights on every rank). Every rank applies the same
// update to the same weights, so the copies stay identical (fingerprint() checks it). The weights
// must be float32.
class WeightTuner {
 public:
  explicit WeightTuner(const model::Roberta& base);
  ~WeightTuner();
  WeightTuner(const WeightTuner&) = delete;
  WeightTuner& operator=(const WeightTuner&) = delete;

  // Trainable entries (the tied decoder counted once, as the word embeddings); size_of(base) is the
  // same count without making the copy.
  std::int64_t size() const { return size_; }
  static std::int64_t size_of(const model::Roberta& base);
  // The rows `rows` of `split` as one forward and backward pass: loss sum, correct count and the
  // gradient of the loss sum, flattened in named_parameters order (float32).
  double chunk_gradient(const EncodedSplit& split, const std::vector<std::int64_t>& rows,
                        const std::vector<std::int64_t>& label_ids, std::int64_t& correct, std::vector<float>& grad);
  // AdamW with the step's gradient g (flattened as above); no weight decay on biases and LayerNorm
  // weights (the usual fine-tuning split: Hugging Face's Trainer, LM-BFF).
  void update(const std::vector<float>& g, const AdamW& a);
  // The kept weights become the current ones.
  void keep();
  // Logits [end - begin, K] (float32) of rows begin..end-1 of `split` under the current (or kept)
  // weights, in chunks of chunk_rows rows counted from `begin` (no gradient).
  std::vector<float> logits(const EncodedSplit& split, std::int64_t begin, std::int64_t end, std::int64_t chunk_rows,
                            const std::vector<std::int64_t>& label_ids, bool kept) const;
  // hash_bytes over every weight's float32 values in named_parameters order (current or kept).
  std::uint64_t fingerprint(bool kept) const;
  // A checkpoint's parts, each size() values flattened as the gradient: kPartWeights (current),
  // kPartKept, kPartMoment1 and kPartMoment2 (AdamW's m and v). set_state throws on a wrong size.
  static constexpr int kPartWeights = 0, kPartKept = 1, kPartMoment1 = 2, kPartMoment2 = 3, kParts = 4;
  std::vector<float> state(int part) const;
  void set_state(int part, const std::vector<float>& values);

 private:
  std::unique_ptr<model::Roberta> model_, kept_;
  std::vector<torch::Tensor> params_, m_, v_;  // m_, v_: float32 on the CPU
  std::vector<double> decay_;                  // 1, or 0 for biases and LayerNorm weights
  std::int64_t size_ = 0;

  std::vector<torch::Tensor> part(int part) const;  // the tensors of a state part, in order
};

}  // namespace bbt::core

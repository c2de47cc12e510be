#pragma once
// The fixed random projection A: z (d) -> prompt (n x H), bit-identical on every machine because
// it is drawn from bbt::Rng on the host in a fixed order.
#include <torch/torch.h>

#include <cstdint>

#include "bbt/model/prompt_kinds.hpp"

namespace bbt::model {

class Projection {
 public:
  // normal: entries N(0, sigma); uniform: U(-1/sqrt(d), 1/sqrt(d)) (sigma unused).
  // A is [n*H, d], drawn row-major in double from bbt::Rng(seed), cast to dtype, moved to device.
  Projection(std::int64_t d, std::int64_t n_tokens, std::int64_t hidden, ProjectionKind kind, double sigma,
             std::uint64_t seed, torch::Device device = torch::kCPU,
             torch::ScalarType dtype = torch::kFloat32);

  // z [C, d] (any float dtype, any device) -> prompts [C, n, H] on the projection's device and dtype.
  // Row c of the result depends on z[c] alone, bit for bit (whatever C, and whatever the thread
  // count on CPU): the rank-count independence of the job rests on it.
  torch::Tensor project(const torch::Tensor& z) const;

  const torch::Tensor& matrix() const { return a_; }  // [n*H, d]
  std::int64_t dim() const { return d_; }
  std::int64_t n_tokens() const { return n_; }
  std::int64_t hidden() const { return hidden_; }

 private:
  std::int64_t d_, n_, hidden_;
  torch::Tensor a_;
};

}  // namespace bbt::model

#pragma once
// Scaled dot-product attention across libtorch versions: the fused kernel on 2.x, plain softmax
// attention (softmax accumulated in float32) on 1.13.
#include <torch/torch.h>
#include <torch/version.h>

#include <cmath>

namespace bbt::model {

// q, k, v [B, A, T, D]; additive mask [B, 1, 1, T] in q's dtype. Returns [B, A, T, D].
inline torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& mask) {
#if TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(q, k, v, mask, 0.0, false);
#else
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  auto scores = torch::matmul(q, k.transpose(-2, -1)).mul_(scale).add_(mask);  // [B, A, T, T]
  // float64 (gradient checks) stays float64.
  const auto acc = q.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  auto probs = torch::softmax(scores, -1, acc).to(q.scalar_type());  // [B, A, T, T]
  return torch::matmul(probs, v);                                    // [B, A, T, D]
#endif
}

}  // namespace bbt::model

// Random projection from the intrinsic space to prompt embeddings.
#include "bbt/model/projection.hpp"

#include <cmath>

#include "bbt/common/error.hpp"
#include "bbt/common/rng.hpp"

namespace bbt::model {

Projection::Projection(std::int64_t d, std::int64_t n_tokens, std::int64_t hidden, ProjectionKind kind,
                       double sigma, std::uint64_t seed, torch::Device device, torch::ScalarType dtype)
    : d_(d), n_(n_tokens), hidden_(hidden) {
  if (d < 1 || n_tokens < 1 || hidden < 1) throw UsageError("projection sizes must be positive");
  if (kind == ProjectionKind::kNormal && !(sigma > 0 && std::isfinite(sigma)))
    throw UsageError("projection sigma must be positive and finite");
  const std::int64_t rows = n_tokens * hidden;
  // Host generation in float32 storage (values drawn in double, then rounded): the sequence of
  // Rng calls is fixed (row-major over [n*H, d]) so every machine gets the same matrix.
  auto host = torch::empty({rows, d}, torch::kFloat32);  // [n*H, d]
  float* p = host.data_ptr<float>();
  Rng rng(seed);
  const std::int64_t total = rows * d;
  if (kind == ProjectionKind::kNormal) {
    for (std::int64_t i = 0; i < total; ++i) p[i] = static_cast<float>(sigma * rng.normal());
  } else {
    const double bound = 1.0 / std::sqrt(static_cast<double>(d));
    for (std::int64_t i = 0; i < total; ++i) p[i] = static_cast<float>(bound * (2.0 * rng.uniform() - 1.0));
  }
  a_ = host.to(device, dtype);
}

torch::Tensor Projection::project(const torch::Tensor& z) const {
  if (!z.defined() || z.dim() != 2 || z.size(1) != d_)
    throw Error("projection: z must be [C, " + std::to_string(d_) + "]");
  torch::NoGradGuard no_grad;
  const auto zz = z.to(a_.device(), a_.scalar_type());  // [C, d]
  // One matrix-vector product per candidate, never one [C, d] x [d, n*H] product: BLAS rounds a
  // row of a matrix product differently for different C (OpenBLAS's sgemm does, under every
  // kernel set), so a candidate's prompt would depend on how many candidates share the call, and
  // with it on the rank count. gemv's result depends on the vector alone (also for any thread
  // count); reading A once per candidate costs little beside the forward passes.
  auto out = torch::empty({z.size(0), n_ * hidden_}, a_.options());  // [C, n*H]
  for (std::int64_t c = 0; c < z.size(0); ++c) {
    torch::Tensor row = out[c];  // [n*H], a view into out
    torch::mv_out(row, a_, zz[c]);
  }
  return out.view({z.size(0), n_, hidden_});  // [C, n, H]
}

}  // namespace bbt::model

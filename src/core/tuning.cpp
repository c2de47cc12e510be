#include "bbt/core/tuning.hpp"

#include <algorithm>
#include <tuple>
#include <utility>
#include <functional>

#include "bbt/common/error.hpp"
#include "bbt/common/hash.hpp"

namespace bbt::core {
namespace {

model::MaskBatch batch_of(const EncodedSplit& split, const std::vector<std::int64_t>& rows) {
  model::MaskBatch b;
  for (auto r : rows) {
    if (r < 0 || r >= split.size()) throw Error("tuning: row " + std::to_string(r) + " outside the split");
    b.ids.push_back(split.ids[static_cast<std::size_t>(r)]);
    b.mask_pos.push_back(split.mask_pos[static_cast<std::size_t>(r)]);
  }
  return b;
}

torch::Tensor logits_of(const model::Roberta& model, Tuned kind, const torch::Tensor& p,
                        const model::MaskBatch& batch, const torch::Tensor& labels) {
  return kind == Tuned::kPrompt ? model.mask_logits_grad(batch, p, torch::Tensor(), labels)
                                : model.mask_logits_grad(batch, torch::Tensor(), p, labels);
}

// The rows' cross-entropy sum of logits x scale, the rows predicted right, after backward().
// Float32 (float64 logits, a float64 model, stay float64).
std::pair<double, std::int64_t> ce_backward(const torch::Tensor& raw, const EncodedSplit& split,
                                            const std::vector<std::int64_t>& rows, double logit_scale) {
  auto logits = raw.scalar_type() == torch::kFloat64 ? raw : raw.to(torch::kFloat32);  // [B, K]
  if (logit_scale != 1.0) logits = logits * logit_scale;
  std::vector<std::int64_t> y;
  for (auto r : rows) y.push_back(split.labels[static_cast<std::size_t>(r)]);
  const auto target = torch::tensor(y, torch::kLong).to(logits.device());
  const auto loss = torch::nn::functional::cross_entropy(
      logits, target, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
  loss.backward();
  return {loss.item<double>(), logits.argmax(1).eq(target).sum().item<std::int64_t>()};
}

std::vector<double> host_doubles(const torch::Tensor& t) {
  const auto g = t.to(torch::kCPU, torch::kFloat64).contiguous().view(-1);
  return std::vector<double>(g.data_ptr<double>(), g.data_ptr<double>() + g.numel());
}

// Logits [end - begin, K] float32 of rows begin..end-1 in chunks of chunk_rows, `run` giving one
// chunk's logits, with no gradient.
std::vector<float> chunked_logits(const EncodedSplit& split, std::int64_t begin, std::int64_t end,
                                  std::int64_t chunk_rows,
                                  const std::function<torch::Tensor(const model::MaskBatch&)>& run) {
  torch::NoGradGuard no_grad;
  std::vector<float> out;
  for (std::int64_t r0 = begin; r0 < end; r0 += chunk_rows) {
    std::vector<std::int64_t> rows;
    for (std::int64_t r = r0; r < std::min(end, r0 + chunk_rows); ++r) rows.push_back(r);
    const auto logits = run(batch_of(split, rows)).to(torch::kCPU, torch::kFloat32).contiguous();
    out.insert(out.end(), logits.data_ptr<float>(), logits.data_ptr<float>() + logits.numel());
  }
  return out;
}

}  // namespace

torch::Tensor tuned_tensor(const model::Roberta& model, Tuned kind, const std::vector<double>& flat) {
  const auto& c = model.config();
  const std::int64_t H = c.hidden_size, L = c.num_hidden_layers, size = static_cast<std::int64_t>(flat.size());
  const std::int64_t unit = kind == Tuned::kPrompt ? H : 2 * L * H;
  if (size == 0 || size % unit != 0)
    throw Error("tuning: " + std::to_string(size) + " parameters are not a whole number of " +
                (kind == Tuned::kPrompt ? "prompt rows" : "prefix positions"));
  auto t = torch::from_blob(const_cast<double*>(flat.data()), {size}, torch::kFloat64)
               .to(model.options().device, model.options().dtype);
  return kind == Tuned::kPrompt ? t.view({size / H, H}) : t.view({L, 2, size / unit, H});
}

ChunkGradient chunk_gradient(const model::Roberta& model, Tuned kind, const std::vector<double>& flat,
                             const EncodedSplit& split, const std::vector<std::int64_t>& rows,
                             const std::vector<std::int64_t>& label_ids, double logit_scale) {
  if (kind == Tuned::kSubspace) throw Error("internal: chunk_gradient of a subspace vector needs the evaluator");
  ChunkGradient out;
  auto p = tuned_tensor(model, kind, flat).detach().set_requires_grad(true);
  const auto batch = batch_of(split, rows);
  const auto labels = torch::tensor(label_ids, torch::kLong);
  std::tie(out.loss_sum, out.correct) = ce_backward(logits_of(model, kind, p, batch, labels), split, rows, logit_scale);
  out.grad = host_doubles(p.grad());
  return out;
}

torch::Tensor subspace_prompt(const Evaluator& evaluator, const std::vector<double>& z) {
  const model::Projection& a = evaluator.projection();
  if (static_cast<std::int64_t>(z.size()) != a.dim())
    throw Error("tuning: z has " + std::to_string(z.size()) + " values, the projection takes " +
                std::to_string(a.dim()));
  const auto zt = torch::from_blob(const_cast<double*>(z.data()), {1, a.dim()}, torch::kFloat64);
  const bool wide = a.matrix().scalar_type() == torch::kFloat64;
  torch::Tensor p = a.project(zt.to(wide ? torch::kFloat64 : torch::kFloat32));  // [1, n, H]
  if (evaluator.p0().defined()) p = p + evaluator.p0().unsqueeze(0);
  return p[0];
}

ChunkGradient subspace_chunk_gradient(const Evaluator& evaluator, const std::vector<double>& z,
                                      const EncodedSplit& split, const std::vector<std::int64_t>& rows,
                                      double logit_scale) {
  ChunkGradient out;
  const auto p = subspace_prompt(evaluator, z).detach().set_requires_grad(true);  // [n, H]
  const auto labels = torch::tensor(evaluator.label_ids(), torch::kLong);
  const auto logits = evaluator.model().mask_logits_grad(batch_of(split, rows), p, torch::Tensor(), labels,
                                                         evaluator.mode());
  std::tie(out.loss_sum, out.correct) = ce_backward(logits, split, rows, logit_scale);
  torch::NoGradGuard no_grad;
  const torch::Tensor& a = evaluator.projection().matrix();  // [n*H, d]
  const auto ct = a.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  out.grad = host_doubles(torch::mv(a.t().to(ct), p.grad().reshape({-1}).to(a.device(), ct)));  // [d]
  return out;
}

std::vector<float> tuned_logits(const model::Roberta& model, Tuned kind, const std::vector<double>& flat,
                                const EncodedSplit& split, std::int64_t begin, std::int64_t end,
                                std::int64_t chunk_rows, const std::vector<std::int64_t>& label_ids) {
  torch::NoGradGuard no_grad;
  if (end <= begin) return {};
  const auto p = tuned_tensor(model, kind, flat);
  const auto labels = torch::tensor(label_ids, torch::kLong);
  return chunked_logits(split, begin, end, chunk_rows,
                        [&](const model::MaskBatch& b) { return logits_of(model, kind, p, b, labels); });
}

// ---- Model tuning ----

WeightTuner::WeightTuner(const model::Roberta& base)
    : model_(std::make_unique<model::Roberta>(base.trainable_copy())) {
  if (base.options().dtype != torch::kFloat32)
    throw Error("model tuning trains float32 weights: the model is loaded as " +
                std::string(c10::toString(base.options().dtype)) + " (set model.dtype = float32)");
  for (const auto& [name, t] : model_->named_parameters()) {
    params_.push_back(t);
    m_.push_back(torch::zeros({t.numel()}, torch::kFloat32));
    v_.push_back(torch::zeros({t.numel()}, torch::kFloat32));
    const bool no_decay = name.size() >= 5 && (name.compare(name.size() - 5, 5, ".bias") == 0 ||
                                               name.find("layer_norm") != std::string::npos);
    decay_.push_back(no_decay ? 0.0 : 1.0);
    size_ += t.numel();
  }
  kept_ = std::make_unique<model::Roberta>(model_->trainable_copy());
}

WeightTuner::~WeightTuner() = default;

std::int64_t WeightTuner::size_of(const model::Roberta& base) {
  std::int64_t n = 0;
  for (const auto& [name, t] : base.named_parameters()) n += t.numel();
  return n;
}

double WeightTuner::chunk_gradient(const EncodedSplit& split, const std::vector<std::int64_t>& rows,
                                   const std::vector<std::int64_t>& label_ids, std::int64_t& correct,
                                   std::vector<float>& grad) {
  for (auto& t : params_) t.mutable_grad() = torch::Tensor();
  const auto labels = torch::tensor(label_ids, torch::kLong);
  const auto [loss, right] =
      ce_backward(model_->mask_logits_grad(batch_of(split, rows), torch::Tensor(), torch::Tensor(), labels), split,
                  rows, 1.0);
  correct = right;
  grad.resize(static_cast<std::size_t>(size_));
  float* at = grad.data();
  for (auto& t : params_) {
    if (t.grad().defined()) {
      const auto g = t.grad().to(torch::kCPU, torch::kFloat32).contiguous();
      std::copy(g.data_ptr<float>(), g.data_ptr<float>() + g.numel(), at);
    } else {
      std::fill(at, at + t.numel(), 0.0f);  // a weight this chunk does not reach
    }
    at += t.numel();
    t.mutable_grad() = torch::Tensor();
  }
  return loss;
}

void WeightTuner::update(const std::vector<float>& g, const AdamW& a) {
  if (static_cast<std::int64_t>(g.size()) != size_)
    throw Error("model tuning: a gradient of " + std::to_string(g.size()) + " entries for " + std::to_string(size_) +
                " weights");
  torch::NoGradGuard no_grad;
  const float* at = g.data();
  for (std::size_t k = 0; k < params_.size(); ++k) {
    auto& t = params_[k];
    torch::Tensor w = t.detach();
    const bool cpu = w.device().is_cpu() && w.is_contiguous();
    if (!cpu) w = w.to(torch::kCPU).contiguous();
    const auto n = static_cast<std::size_t>(w.numel());
    // Each entry's update is its own arithmetic: shared over the intra-op threads, the bits are
    // those of one thread.
    float *pw = w.data_ptr<float>(), *pm = m_[k].data_ptr<float>(), *pv = v_[k].data_ptr<float>();
    at::parallel_for(0, static_cast<std::int64_t>(n), std::int64_t{1} << 15, [&](std::int64_t b, std::int64_t e) {
      adamw_update(pw + b, pm + b, pv + b, at + b, 1.0, static_cast<std::size_t>(e - b), a, decay_[k]);
    });
    if (!cpu) t.detach().copy_(w.to(t.device()).view_as(t));
    at += n;
  }
}

void WeightTuner::keep() {
  torch::NoGradGuard no_grad;
  const auto from = model_->named_parameters();
  const auto to = kept_->named_parameters();
  for (std::size_t k = 0; k < from.size(); ++k) to[k].second.detach().copy_(from[k].second.detach());
}

std::vector<float> WeightTuner::logits(const EncodedSplit& split, std::int64_t begin, std::int64_t end,
                                       std::int64_t chunk_rows, const std::vector<std::int64_t>& label_ids,
                                       bool kept) const {
  if (end <= begin) return {};
  const model::Roberta& m = kept ? *kept_ : *model_;
  const auto labels = torch::tensor(label_ids, torch::kLong);
  return chunked_logits(split, begin, end, chunk_rows, [&](const model::MaskBatch& b) {
    return m.mask_logits_grad(b, torch::Tensor(), torch::Tensor(), labels);
  });
}

std::uint64_t WeightTuner::fingerprint(bool kept) const {
  std::uint64_t h = 0;
  for (const auto& [name, t] : (kept ? *kept_ : *model_).named_parameters()) {
    const auto c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    h = hash_bytes(c.data_ptr<float>(), sizeof(float) * static_cast<std::size_t>(c.numel()), h);
  }
  return h;
}

std::vector<torch::Tensor> WeightTuner::part(int which) const {
  switch (which) {
    case kPartWeights:
      return params_;
    case kPartKept: {
      std::vector<torch::Tensor> out;
      for (const auto& [name, t] : kept_->named_parameters()) out.push_back(t);
      return out;
    }
    case kPartMoment1:
      return m_;
    case kPartMoment2:
      return v_;
    default:
      throw Error("model tuning: no checkpoint part " + std::to_string(which));
  }
}

std::vector<float> WeightTuner::state(int which) const {
  std::vector<float> out(static_cast<std::size_t>(size_));
  float* at = out.data();
  for (const auto& t : part(which)) {
    const auto c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    std::copy(c.data_ptr<float>(), c.data_ptr<float>() + c.numel(), at);
    at += c.numel();
  }
  return out;
}

void WeightTuner::set_state(int which, const std::vector<float>& values) {
  if (static_cast<std::int64_t>(values.size()) != size_)
    throw Error("model tuning: a checkpoint part of " + std::to_string(values.size()) + " values for " +
                std::to_string(size_) + " weights");
  torch::NoGradGuard no_grad;
  const float* at = values.data();
  for (auto& t : part(which)) {
    const auto src = torch::from_blob(const_cast<float*>(at), t.sizes(), torch::kFloat32);
    t.detach().copy_(src.to(t.device()));
    at += t.numel();
  }
}

}  // namespace bbt::core

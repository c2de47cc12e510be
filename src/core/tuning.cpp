#include "bbt/core/tuning.hpp"

#include <algorithm>

#include "bbt/common/error.hpp"

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
                             const std::vector<std::int64_t>& label_ids) {
  ChunkGradient out;
  auto p = tuned_tensor(model, kind, flat).detach().set_requires_grad(true);
  const auto batch = batch_of(split, rows);
  const auto labels = torch::tensor(label_ids, torch::kLong);
  const auto logits = logits_of(model, kind, p, batch, labels).to(torch::kFloat32);  // [B, K]
  std::vector<std::int64_t> y;
  for (auto r : rows) y.push_back(split.labels[static_cast<std::size_t>(r)]);
  const auto target = torch::tensor(y, torch::kLong).to(logits.device());
  const auto loss = torch::nn::functional::cross_entropy(
      logits, target, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
  loss.backward();
  out.loss_sum = loss.item<double>();
  out.correct = logits.argmax(1).eq(target).sum().item<std::int64_t>();
  const auto g = p.grad().to(torch::kCPU, torch::kFloat64).contiguous().view(-1);
  out.grad.assign(g.data_ptr<double>(), g.data_ptr<double>() + g.numel());
  return out;
}

std::vector<float> tuned_logits(const model::Roberta& model, Tuned kind, const std::vector<double>& flat,
                                const EncodedSplit& split, std::int64_t begin, std::int64_t end,
                                std::int64_t chunk_rows, const std::vector<std::int64_t>& label_ids) {
  torch::NoGradGuard no_grad;
  std::vector<float> out;
  if (end <= begin) return out;
  const auto p = tuned_tensor(model, kind, flat);
  const auto labels = torch::tensor(label_ids, torch::kLong);
  for (std::int64_t r0 = begin; r0 < end; r0 += chunk_rows) {
    std::vector<std::int64_t> rows;
    for (std::int64_t r = r0; r < std::min(end, r0 + chunk_rows); ++r) rows.push_back(r);
    const auto logits = logits_of(model, kind, p, batch_of(split, rows), labels).to(torch::kCPU, torch::kFloat32).contiguous();
    out.insert(out.end(), logits.data_ptr<float>(), logits.data_ptr<float>() + logits.numel());
  }
  return out;
}

}  // namespace bbt::core

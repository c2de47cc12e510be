#include "bbt/core/evaluator.hpp"

#include "bbt/common/error.hpp"

namespace bbt::core {

std::vector<std::int64_t> EncodedSplit::pack() const {
  // [n, then per example: length, mask_pos, label, ids...]
  std::vector<std::int64_t> out;
  out.push_back(size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    out.push_back(static_cast<std::int64_t>(ids[i].size()));
    out.push_back(mask_pos[i]);
    out.push_back(labels[i]);
    out.insert(out.end(), ids[i].begin(), ids[i].end());
  }
  return out;
}

EncodedSplit EncodedSplit::unpack(const std::vector<std::int64_t>& packed) {
  EncodedSplit s;
  std::size_t at = 0;
  auto next = [&]() {
    if (at >= packed.size()) throw Error("corrupt token buffer received from rank 0");
    return packed[at++];
  };
  const std::int64_t n = next();
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t len = next();
    s.mask_pos.push_back(next());
    s.labels.push_back(next());
    if (len < 0 || at + static_cast<std::size_t>(len) > packed.size())
      throw Error("corrupt token buffer received from rank 0");
    s.ids.emplace_back(packed.begin() + static_cast<std::ptrdiff_t>(at),
                       packed.begin() + static_cast<std::ptrdiff_t>(at + len));
    at += static_cast<std::size_t>(len);
  }
  return s;
}

EncodedSplit EncodedSplit::subset(const std::vector<std::size_t>& index) const {
  EncodedSplit s;
  for (std::size_t i : index) {
    s.ids.push_back(ids.at(i));
    s.mask_pos.push_back(mask_pos.at(i));
    s.labels.push_back(labels.at(i));
  }
  return s;
}

Evaluator::Evaluator(const model::Roberta& model, model::Projection projection, torch::Tensor p0,
                     std::vector<std::int64_t> label_ids, model::PromptMode mode, std::int64_t chunk_rows)
    : model_(model),
      projection_(std::move(projection)),
      p0_(std::move(p0)),
      label_ids_(std::move(label_ids)),
      mode_(mode),
      chunk_rows_(chunk_rows) {
  label_tensor_ = torch::tensor(label_ids_, torch::kInt64);
  if (p0_.defined()) p0_ = p0_.to(model_.options().device, model_.options().dtype);
}

std::vector<float> Evaluator::pair_logits(const Eigen::MatrixXd& z, const EncodedSplit& split,
                                          std::int64_t begin, std::int64_t end) const {
  const std::int64_t n = split.size();
  const std::int64_t k = num_labels();
  if (begin >= end || n == 0) return {};
  if (deep()) {
    const std::int64_t c_lo = begin / n, cands = (end - 1) / n - c_lo + 1;
    const std::int64_t d = projection_.dim();
    if (z.rows() != deep_layers() * d)
      throw Error("deep prompt vectors have " + std::to_string(deep_layers() * d) + " rows, got " +
                  std::to_string(z.rows()));
    std::vector<torch::Tensor> layers;
    for (std::int64_t l = 0; l < deep_layers(); ++l) {
      Eigen::MatrixXd block = z.block(l * d, c_lo, d, cands);  // [d, C'] contiguous
      torch::Tensor zt = torch::from_blob(block.data(), {cands, d}, torch::kFloat64);
      layers.push_back(deep_[static_cast<std::size_t>(l)].project(zt.to(torch::kFloat32)));  // [C', n, H]
    }
    return deep_logits(layers, split, c_lo, begin, end);
  }
  const std::int64_t c_lo = begin / n, c_hi = (end - 1) / n;  // candidates touched
  // Prompts of the touched candidates, one matrix product on the model's device.
  const std::int64_t d = z.rows(), cands = c_hi - c_lo + 1;
  torch::Tensor zt = torch::from_blob(const_cast<double*>(z.data()) + c_lo * d, {cands, d}, torch::kFloat64);
  torch::Tensor prompts = projection_.project(zt.to(torch::kFloat32));  // [C', n_tokens, H]
  if (p0_.defined()) prompts = prompts + p0_.unsqueeze(0);

  model::MaskBatch batch;
  std::vector<std::int64_t> prompt_index;
  batch.ids.reserve(static_cast<std::size_t>(end - begin));
  for (std::int64_t p = begin; p < end; ++p) {
    const std::int64_t e = p % n;
    batch.ids.push_back(split.ids[static_cast<std::size_t>(e)]);
    batch.mask_pos.push_back(split.mask_pos[static_cast<std::size_t>(e)]);
    prompt_index.push_back(p / n - c_lo);
  }
  torch::Tensor logits = model_.mask_logits(batch, prompts, torch::tensor(prompt_index, torch::kInt64), mode_,
                                            label_tensor_);  // [rows, K] float32 CPU
  logits = logits.contiguous();
  const float* ptr = logits.data_ptr<float>();
  return std::vector<float>(ptr, ptr + (end - begin) * k);
}

void Evaluator::set_deep(std::vector<model::Projection> layers) {
  if (static_cast<std::int64_t>(layers.size()) != model_.config().num_hidden_layers)
    throw Error("set_deep: " + std::to_string(layers.size()) + " projections for a model of " +
                std::to_string(model_.config().num_hidden_layers) + " layers");
  deep_ = std::move(layers);
  base_.clear();
  for (const auto& a : deep_)
    base_.push_back(
        torch::zeros({1, a.n_tokens(), a.hidden()},
                     torch::TensorOptions().device(model_.options().device).dtype(model_.options().dtype)));
}

void Evaluator::set_base_layer(std::int64_t layer, const Eigen::VectorXd& z) {
  const auto& a = deep_.at(static_cast<std::size_t>(layer));
  if (z.size() != a.dim()) throw Error("set_base_layer: z has " + std::to_string(z.size()) + " entries");
  torch::Tensor zt = torch::from_blob(const_cast<double*>(z.data()), {1, a.dim()}, torch::kFloat64);
  base_[static_cast<std::size_t>(layer)] = a.project(zt.to(torch::kFloat32));  // [1, n, H]
}

std::vector<float> Evaluator::pair_logits_layer(std::int64_t layer, const Eigen::MatrixXd& z,
                                                const EncodedSplit& split, std::int64_t begin,
                                                std::int64_t end) const {
  const std::int64_t n = split.size();
  if (begin >= end || n == 0) return {};
  if (!deep() || layer < 0 || layer >= deep_layers())
    throw Error("pair_logits_layer: layer " + std::to_string(layer) + " of a model without it");
  const auto& a = deep_[static_cast<std::size_t>(layer)];
  if (z.rows() != a.dim()) throw Error("pair_logits_layer: z has " + std::to_string(z.rows()) + " rows");
  const std::int64_t c_lo = begin / n, cands = (end - 1) / n - c_lo + 1;
  torch::Tensor zt =
      torch::from_blob(const_cast<double*>(z.data()) + c_lo * a.dim(), {cands, a.dim()}, torch::kFloat64);
  std::vector<torch::Tensor> layers = base_;
  layers[static_cast<std::size_t>(layer)] = a.project(zt.to(torch::kFloat32));  // [C', n, H]
  return deep_logits(layers, split, c_lo, begin, end);
}

std::vector<float> Evaluator::deep_logits(const std::vector<torch::Tensor>& layers, const EncodedSplit& split,
                                          std::int64_t c_lo, std::int64_t begin, std::int64_t end) const {
  const std::int64_t n = split.size();
  model::MaskBatch batch;
  std::vector<std::int64_t> prompt_index;
  for (std::int64_t p = begin; p < end; ++p) {
    const std::int64_t e = p % n;
    batch.ids.push_back(split.ids[static_cast<std::size_t>(e)]);
    batch.mask_pos.push_back(split.mask_pos[static_cast<std::size_t>(e)]);
    prompt_index.push_back(p / n - c_lo);
  }
  torch::Tensor logits =
      model_.mask_logits_deep(batch, layers, torch::tensor(prompt_index, torch::kInt64), label_tensor_)
          .contiguous();  // [rows, K] float32 CPU
  const float* ptr = logits.data_ptr<float>();
  return std::vector<float>(ptr, ptr + (end - begin) * num_labels());
}

torch::Tensor Evaluator::deep_prompt(const Eigen::VectorXd& z) const {
  std::vector<torch::Tensor> out;
  const std::int64_t d = projection_.dim();
  if (!deep() || z.size() != deep_layers() * d) throw Error("deep_prompt: not a deep prompt vector");
  for (std::int64_t l = 0; l < deep_layers(); ++l) {
    Eigen::VectorXd block = z.segment(l * d, d);
    torch::Tensor zt = torch::from_blob(block.data(), {1, d}, torch::kFloat64);
    out.push_back(deep_[static_cast<std::size_t>(l)].project(zt.to(torch::kFloat32))[0].to(torch::kCPU,
                                                                                           torch::kFloat32));
  }
  return torch::stack(out);  // [L, n, H]
}

std::vector<float> Evaluator::row_outputs(RowQuery query, const EncodedSplit& inputs, std::int64_t begin,
                                          std::int64_t end) const {
  if (begin >= end) return {};
  const auto first = inputs.ids.begin() + static_cast<std::ptrdiff_t>(begin);
  const auto last = inputs.ids.begin() + static_cast<std::ptrdiff_t>(end);
  torch::Tensor out;
  if (query == RowQuery::kMaskLogits) {
    model::MaskBatch batch;
    batch.ids.assign(first, last);
    batch.mask_pos.assign(inputs.mask_pos.begin() + static_cast<std::ptrdiff_t>(begin),
                          inputs.mask_pos.begin() + static_cast<std::ptrdiff_t>(end));
    out = model_.mask_logits(batch, torch::Tensor(), torch::Tensor(), mode_, label_tensor_);  // [rows, K]
  } else {
    out = model_.hidden_states(std::vector<std::vector<std::int64_t>>(first, last),
                               query == RowQuery::kFirstState);  // [rows or tokens, H]
  }
  out = out.contiguous();
  const float* ptr = out.data_ptr<float>();
  return std::vector<float>(ptr, ptr + out.numel());
}

std::int64_t Evaluator::row_width(RowQuery query, const EncodedSplit& inputs, std::int64_t i) const {
  const std::int64_t h = model_.config().hidden_size;
  if (query == RowQuery::kMaskLogits) return num_labels();
  if (query == RowQuery::kFirstState) return h;
  return h * static_cast<std::int64_t>(inputs.ids.at(static_cast<std::size_t>(i)).size());
}

}  // namespace bbt::core

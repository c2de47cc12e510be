// RoBERTa masked-LM inference restricted to what BBT needs: <mask> rows, verbalizer columns.
#include "bbt/model/roberta.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <sstream>

#include "attention_shim.hpp"
#include "bbt/common/error.hpp"
#include "bbt/common/hash.hpp"
#include "bbt/model/safetensors.hpp"

namespace bbt::model {

namespace {

std::string shape_str(const std::vector<std::int64_t>& s) {
  std::ostringstream o;
  o << '[';
  for (std::size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << ']';
  return o.str();
}

#ifdef MADV_POPULATE_WRITE
constexpr int kPopulateWrite = MADV_POPULATE_WRITE;
#else
constexpr int kPopulateWrite = 23;  // Linux 5.14
#endif

// Additive attention-mask value: large enough that exp() underflows to exactly 0, finite so
// that no -inf - -inf NaN can appear.
double mask_value(torch::ScalarType dtype) { return dtype == torch::kFloat16 ? -3.0e4 : -1.0e9; }

// Checks names and shapes of everything needed before any tensor data is read, so that one error
// lists every missing or mis-shaped tensor.
class WeightStore {
 public:
  explicit WeightStore(const SafetensorsFile& file) : file_(file) {}
  void require(const std::string& name, std::vector<std::int64_t> shape) {
    if (!file_.contains(name)) {
      problems_.push_back("missing tensor '" + name + "'");
    } else if (file_.info(name).shape != shape) {
      problems_.push_back("tensor '" + name + "' has shape " + shape_str(file_.info(name).shape) +
                          ", expected " + shape_str(shape));
    }
  }
  void check() const {
    if (problems_.empty()) return;
    std::string msg = "checkpoint '" + file_.path() + "': ";
    for (std::size_t i = 0; i < problems_.size(); ++i) msg += (i ? "; " : "") + problems_[i];
    throw Error(msg);
  }

 private:
  const SafetensorsFile& file_;
  std::vector<std::string> problems_;
};

}  // namespace

Roberta Roberta::load(const std::string& dir, const LoadOptions& options) {
  // float64 is for gradient checks (tests), on the CPU.
  if (options.dtype != torch::kFloat32 && options.dtype != torch::kBFloat16 &&
      options.dtype != torch::kFloat16 && options.dtype != torch::kFloat64)
    throw UsageError("model dtype must be float32, bfloat16 or float16");
  if (options.dtype != torch::kFloat32 && options.dtype != torch::kFloat64 && options.device.is_cpu())
    throw UsageError("reduced-precision model dtypes are for CUDA; use float32 on CPU");
  if (options.max_batch < 1) throw UsageError("model max_batch must be >= 1");
  Roberta m;
  m.dir_ = dir;
  m.options_ = options;
  m.config_ = read_config(dir + "/config.json");
  const auto& c = m.config_;
  const auto st = SafetensorsFile::open(dir + "/model.safetensors");
  const std::int64_t H = c.hidden_size, F = c.intermediate_size, V = c.vocab_size;

  WeightStore ws(st);
  const std::string e = "roberta.embeddings.";
  ws.require(e + "word_embeddings.weight", {V, H});
  ws.require(e + "position_embeddings.weight", {c.max_position_embeddings, H});
  ws.require(e + "token_type_embeddings.weight", {c.type_vocab_size, H});
  ws.require(e + "LayerNorm.weight", {H});
  ws.require(e + "LayerNorm.bias", {H});
  for (std::int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "roberta.encoder.layer." + std::to_string(l) + ".";
    for (const char* s : {"query", "key", "value"}) {
      ws.require(p + "attention.self." + s + ".weight", {H, H});
      ws.require(p + "attention.self." + s + ".bias", {H});
    }
    ws.require(p + "attention.output.dense.weight", {H, H});
    ws.require(p + "attention.output.dense.bias", {H});
    ws.require(p + "attention.output.LayerNorm.weight", {H});
    ws.require(p + "attention.output.LayerNorm.bias", {H});
    ws.require(p + "intermediate.dense.weight", {F, H});
    ws.require(p + "intermediate.dense.bias", {F});
    ws.require(p + "output.dense.weight", {H, F});
    ws.require(p + "output.dense.bias", {H});
    ws.require(p + "output.LayerNorm.weight", {H});
    ws.require(p + "output.LayerNorm.bias", {H});
  }
  ws.require("lm_head.dense.weight", {H, H});
  ws.require("lm_head.dense.bias", {H});
  ws.require("lm_head.layer_norm.weight", {H});
  ws.require("lm_head.layer_norm.bias", {H});
  const bool tied = !st.contains("lm_head.decoder.weight");
  if (!tied) ws.require("lm_head.decoder.weight", {V, H});
  const std::string bias_name = st.contains("lm_head.bias") ? "lm_head.bias" : "lm_head.decoder.bias";
  ws.require(bias_name, {V});
  ws.check();

  const auto dev = options.device;
  const auto dt = options.dtype;
  // Every tensor read is checked for NaN / Inf here: a broken checkpoint would otherwise run to the
  // end with meaningless losses (or fail much later with misleading advice).
  // The fingerprint: config.json's numbers, then every tensor's name and float32 values in the order
  // read, so that ranks (and a resumed run) can check that they hold the same model.
  const std::int64_t numbers[] = {c.vocab_size,          c.hidden_size,       c.num_hidden_layers,
                                  c.num_attention_heads, c.intermediate_size, c.max_position_embeddings,
                                  c.type_vocab_size,     c.pad_token_id,      c.bos_token_id,
                                  c.eos_token_id};
  std::uint64_t fingerprint = hash_bytes(numbers, sizeof numbers);
  fingerprint = hash_bytes(&c.layer_norm_eps, sizeof c.layer_norm_eps, fingerprint);

  // Every weight as one piece: its slot, its shape and the tensors it is read from, in order (the
  // fused QKV, built once here for one matmul per layer, from three). LayerNorm parameters stay
  // float32 in reduced precision (float64 models: float64).
  struct Piece {
    torch::Tensor* slot;
    std::vector<std::int64_t> shape;
    std::vector<std::string> sources;
    bool ln;
    std::int64_t numel() const {
      std::int64_t n = 1;
      for (auto d : shape) n *= d;
      return n;
    }
  };
  std::vector<Piece> pieces;
  auto add = [&](torch::Tensor* slot, std::vector<std::string> sources, bool ln = false) {
    std::vector<std::int64_t> shape = st.info(sources.front()).shape;
    shape[0] *= static_cast<std::int64_t>(sources.size());
    pieces.push_back({slot, std::move(shape), std::move(sources), ln});
  };
  torch::Tensor type_emb;  // [types, H]: the model keeps row 0
  add(&m.word_emb_, {e + "word_embeddings.weight"});  // [V, H]
  add(&m.pos_emb_, {e + "position_embeddings.weight"});  // [P, H]
  add(&type_emb, {e + "token_type_embeddings.weight"});
  add(&m.emb_ln_w_, {e + "LayerNorm.weight"}, true);
  add(&m.emb_ln_b_, {e + "LayerNorm.bias"}, true);
  m.layers_.resize(static_cast<std::size_t>(c.num_hidden_layers));
  for (std::int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "roberta.encoder.layer." + std::to_string(l) + ".";
    const std::string a = p + "attention.self.";
    Layer& ly = m.layers_[static_cast<std::size_t>(l)];
    add(&ly.qkv_w, {a + "query.weight", a + "key.weight", a + "value.weight"});  // [3H, H]
    add(&ly.qkv_b, {a + "query.bias", a + "key.bias", a + "value.bias"});        // [3H]
    add(&ly.attn_out_w, {p + "attention.output.dense.weight"});
    add(&ly.attn_out_b, {p + "attention.output.dense.bias"});
    add(&ly.attn_ln_w, {p + "attention.output.LayerNorm.weight"}, true);
    add(&ly.attn_ln_b, {p + "attention.output.LayerNorm.bias"}, true);
    add(&ly.inter_w, {p + "intermediate.dense.weight"});
    add(&ly.inter_b, {p + "intermediate.dense.bias"});
    add(&ly.out_w, {p + "output.dense.weight"});
    add(&ly.out_b, {p + "output.dense.bias"});
    add(&ly.out_ln_w, {p + "output.LayerNorm.weight"}, true);
    add(&ly.out_ln_b, {p + "output.LayerNorm.bias"}, true);
  }
  add(&m.head_dense_w_, {"lm_head.dense.weight"});
  add(&m.head_dense_b_, {"lm_head.dense.bias"});
  add(&m.head_ln_w_, {"lm_head.layer_norm.weight"}, true);
  add(&m.head_ln_b_, {"lm_head.layer_norm.bias"}, true);
  if (!tied) add(&m.decoder_w_, {"lm_head.decoder.weight"});  // [V, H]
  add(&m.decoder_b_, {bias_name});                            // [V]

  // One piece's float32 values into dst: straight from the mapped file, checked and hashed.
  auto read_piece = [&](const Piece& piece, float* dst) {
    for (const auto& name : piece.sources) {
      const TensorInfo& ti = st.info(name);
      st.read_into(name, dst);
      // NaN / Inf: exponent bits all set. One pass over the bits (torch::isfinite would allocate a
      // mask as large as the tensor); finite_or_throw words the error.
      const auto* bits = reinterpret_cast<const std::uint32_t*>(dst);
      std::uint32_t bad = 0;
      const std::int64_t n = ti.numel();
      for (std::int64_t i = 0; i < n; ++i) bad |= static_cast<std::uint32_t>((bits[i] & 0x7f800000u) == 0x7f800000u);
      if (bad != 0) finite_or_throw(torch::from_blob(dst, ti.shape, torch::kFloat32), st.path(), name);
      fingerprint = hash_bytes(name.data(), name.size(), fingerprint);
      fingerprint = hash_bytes(dst, static_cast<std::size_t>(n) * sizeof(float), fingerprint);
      dst += n;
    }
  };
  auto word_std = [](const torch::Tensor& word) { return word.std().item<double>(); };

  if (!dev.is_cpu() || dt != torch::kFloat32) {
    // Another device or dtype: each piece through a host buffer, released as soon as the piece is
    // on the device (on CUDA no host copy of the weights stays behind).
    const auto ln_dtype = dt == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
    for (const Piece& piece : pieces) {
      torch::Tensor host = torch::empty(piece.shape, torch::kFloat32);
      read_piece(piece, host.data_ptr<float>());
      if (piece.slot == &m.word_emb_) m.word_embedding_std_ = word_std(host);
      *piece.slot = host.to(dev, piece.ln ? ln_dtype : dt);
    }
    m.fingerprint_ = hex64(fingerprint);
  } else {
    // CPU float32: every weight in one block (the pieces 64-byte aligned, as torch's allocator
    // aligns), behind a small header that carries the filler's fingerprint and word-embedding std
    // to the processes that share the block. The tensors wrap the block without a copy.
    constexpr std::size_t kAlign = 64;
    struct Header {
      std::uint64_t fingerprint;
      double word_std;
    };
    std::vector<std::size_t> offsets;
    std::size_t total = kAlign;  // the header
    for (const Piece& piece : pieces) {
      offsets.push_back(total);
      total += (static_cast<std::size_t>(piece.numel()) * sizeof(float) + kAlign - 1) / kAlign * kAlign;
    }
    WeightBlock block;
    const SharedWeights* shared = options.shared.get();
    if (shared != nullptr) block = shared->allocate(total);
    if (block.data == nullptr) shared = nullptr;  // no sharing: this process's own block
    torch::Tensor own;
    if (shared == nullptr) {
      own = torch::empty({static_cast<std::int64_t>(total)}, torch::kUInt8);
      block = {static_cast<char*>(own.data_ptr()), true};
      // Its pages in one call rather than one fault per page as they are written (ignored where
      // the kernel cannot: Linux < 5.14).
      const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
      const auto from = (reinterpret_cast<std::uintptr_t>(block.data) + page - 1) / page * page;
      const auto to = (reinterpret_cast<std::uintptr_t>(block.data) + total) / page * page;
      if (to > from) ::madvise(reinterpret_cast<void*>(from), to - from, kPopulateWrite);
    }
    if (block.fill) {
      try {
        for (std::size_t i = 0; i < pieces.size(); ++i)
          read_piece(pieces[i], reinterpret_cast<float*>(block.data + offsets[i]));
        const Header h{fingerprint,
                       word_std(torch::from_blob(block.data + offsets[0], pieces[0].shape, torch::kFloat32))};
        std::memcpy(block.data, &h, sizeof h);
      } catch (...) {
        if (shared != nullptr) shared->published(false);
        throw;
      }
    }
    if (shared != nullptr && !shared->published(true))
      throw Error("checkpoint '" + st.path() +
                  "': the node's first rank failed to load it into the weights it shares (its error says why)");
    Header h{};
    std::memcpy(&h, block.data, sizeof h);
    m.fingerprint_ = hex64(h.fingerprint);
    m.word_embedding_std_ = h.word_std;
    m.shares_weights_ = shared != nullptr;
    // Own block: every tensor keeps it alive. Shared block: the cluster layer keeps it mapped until
    // MPI_Finalize.
    for (std::size_t i = 0; i < pieces.size(); ++i)
      *pieces[i].slot = torch::from_blob(
          block.data + offsets[i], pieces[i].shape, [own](void*) {}, torch::kFloat32);
  }
  m.type_emb0_ = type_emb.select(0, 0);  // [H]
  if (tied) m.decoder_w_ = m.word_emb_;
  return m;
}

torch::Tensor Roberta::layer_norm(const torch::Tensor& x, const torch::Tensor& w,
                                  const torch::Tensor& b) const {
  const std::vector<std::int64_t> shape{config_.hidden_size};
  if (x.scalar_type() == torch::kFloat32 || x.scalar_type() == torch::kFloat64)
    return torch::layer_norm(x, shape, w, b, config_.layer_norm_eps);
  // Reduced precision: normalise in float32, store back in the compute dtype.
  return torch::layer_norm(x.to(torch::kFloat32), shape, w, b, config_.layer_norm_eps).to(x.scalar_type());
}

void Roberta::check_inputs(const MaskBatch& batch, std::int64_t n, std::int64_t C,
                           const torch::Tensor& prompt_index, PromptMode mode,
                           const torch::Tensor& label_ids) const {
  const auto& c = config_;
  const std::size_t rows = batch.ids.size();
  if (batch.mask_pos.size() != rows)
    throw Error("mask_logits: " + std::to_string(rows) + " rows but " +
                std::to_string(batch.mask_pos.size()) + " mask positions");
  if (!label_ids.defined() || label_ids.dim() != 1 || label_ids.scalar_type() != torch::kLong)
    throw Error("mask_logits: label_ids must be a 1-D int64 tensor");
  const auto labels_cpu = label_ids.to(torch::kCPU);
  for (std::int64_t k = 0; k < labels_cpu.size(0); ++k) {
    const auto id = labels_cpu.data_ptr<std::int64_t>()[k];
    if (id < 0 || id >= c.vocab_size)
      throw Error("mask_logits: label id " + std::to_string(id) + " outside the vocabulary");
  }
  if (C > 0) {
    if (!prompt_index.defined() || prompt_index.dim() != 1 || prompt_index.scalar_type() != torch::kLong ||
        !prompt_index.device().is_cpu() || static_cast<std::size_t>(prompt_index.size(0)) != rows)
      throw Error("mask_logits: prompt_index must be a CPU int64 tensor with one entry per row");
    const auto pic = prompt_index.contiguous();
    const auto* pi = pic.data_ptr<std::int64_t>();
    for (std::size_t r = 0; r < rows; ++r)
      if (pi[r] < 0 || pi[r] >= C)
        throw Error("mask_logits: prompt_index[" + std::to_string(r) + "] = " + std::to_string(pi[r]) +
                    " outside [0, " + std::to_string(C) + ")");
  }
  // Text positions run from padding_idx + 1; they must stay inside the position table.
  const std::int64_t max_len = c.max_position_embeddings - c.pad_token_id - 1;
  for (std::size_t r = 0; r < rows; ++r) {
    const auto len = static_cast<std::int64_t>(batch.ids[r].size());
    if (len < 1) throw Error("mask_logits: row " + std::to_string(r) + " has no tokens");
    if (len > max_len)
      throw Error("mask_logits: row " + std::to_string(r) + " has " + std::to_string(len) +
                  " tokens, more than the " + std::to_string(max_len) + " that model " + dir_ +
                  " allows (max_position_embeddings " + std::to_string(c.max_position_embeddings) +
                  " in its config.json, less padding_idx + 1); use a model with max_position_embeddings >= " +
                  std::to_string(len + c.pad_token_id + 1) + ", or shorter inputs or fewer prompt tokens");
    if (mode == PromptMode::kAdd && len < n + 1)
      throw Error("mask_logits: row " + std::to_string(r) + " is shorter than <s> + " + std::to_string(n) +
                  " prompt placeholders");
    if (batch.mask_pos[r] < 0 || batch.mask_pos[r] >= len)
      throw Error("mask_logits: row " + std::to_string(r) + " mask position " +
                  std::to_string(batch.mask_pos[r]) + " outside the row");
    for (auto id : batch.ids[r])
      if (id < 0 || id >= c.vocab_size)
        throw Error("mask_logits: row " + std::to_string(r) + " has token id " + std::to_string(id) +
                    " outside the vocabulary");
  }
}

torch::Tensor Roberta::mask_logits(const MaskBatch& batch, const torch::Tensor& prompts,
                                   const torch::Tensor& prompt_index, PromptMode mode,
                                   const torch::Tensor& label_ids) const {
  std::int64_t n = 0, C = 0;
  if (prompts.defined()) {
    if (prompts.dim() != 3 || prompts.size(2) != config_.hidden_size)
      throw Error("mask_logits: prompts must be [C, n, " + std::to_string(config_.hidden_size) + "]");
    n = prompts.size(1);
    C = prompts.size(0);
  }
  check_inputs(batch, n, C, prompt_index, mode, label_ids);
  torch::NoGradGuard no_grad;
  torch::Tensor prompts_dev;
  if (prompts.defined()) prompts_dev = prompts.to(options_.device, options_.dtype);
  return run_chunks(batch, prompts_dev, prompts.defined() ? prompt_index.contiguous() : torch::Tensor(), mode,
                    label_ids, nullptr);
}

torch::Tensor Roberta::mask_logits_deep(const MaskBatch& batch, const std::vector<torch::Tensor>& layers,
                                        const torch::Tensor& prompt_index,
                                        const torch::Tensor& label_ids) const {
  const auto& c = config_;
  if (static_cast<std::int64_t>(layers.size()) != c.num_hidden_layers)
    throw Error("mask_logits_deep: " + std::to_string(layers.size()) + " prompt layers for a model of " +
                std::to_string(c.num_hidden_layers) + " layers");
  if (layers.empty())
    return mask_logits(batch, torch::Tensor(), torch::Tensor(), PromptMode::kAdd, label_ids);
  const std::int64_t n = layers[0].defined() ? layers[0].size(1) : -1;
  std::int64_t C = 1;
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const auto& p = layers[l];
    if (!p.defined() || p.dim() != 3 || p.size(1) != n || p.size(2) != c.hidden_size || p.size(0) < 1)
      throw Error("mask_logits_deep: layer " + std::to_string(l) + "'s prompt must be [1 or C, " +
                  std::to_string(n) + ", " + std::to_string(c.hidden_size) + "]");
    if (p.size(0) > 1) {
      if (C > 1 && p.size(0) != C)
        throw Error("mask_logits_deep: layer " + std::to_string(l) + " has " + std::to_string(p.size(0)) +
                    " prompts, another layer " + std::to_string(C));
      C = p.size(0);
    }
  }
  torch::Tensor index = prompt_index;
  if (!index.defined()) index = torch::zeros({static_cast<std::int64_t>(batch.ids.size())}, torch::kLong);
  check_inputs(batch, n, C, index, PromptMode::kAdd, label_ids);
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> dev;
  for (const auto& p : layers) dev.push_back(p.to(options_.device, options_.dtype));
  return run_chunks(batch, torch::Tensor(), index.contiguous(), PromptMode::kAdd, label_ids, &dev);
}

torch::Tensor Roberta::run_chunks(const MaskBatch& batch, const torch::Tensor& prompts_dev,
                                  const torch::Tensor& pindex, PromptMode mode,
                                  const torch::Tensor& label_ids,
                                  const std::vector<torch::Tensor>* deep) const {
  const std::size_t rows = batch.ids.size();
  const auto labels = label_ids.to(options_.device);
  // Chunks of max_batch rows (the caller's unit of bit-reproducibility); inside a chunk, rows
  // of similar length run together to cut padding, a grouping that depends on the chunk alone.
  const bool cuda = options_.device.is_cuda();
  const std::size_t min_group = cuda ? 64 : 8;
  const std::int64_t group_cost = cuda ? 4096 : 64;
  const auto K = label_ids.size(0);
  std::vector<torch::Tensor> parts;
  for (std::size_t r0 = 0; r0 < rows; r0 += static_cast<std::size_t>(options_.max_batch)) {
    const auto count = std::min<std::size_t>(options_.max_batch, rows - r0);
    std::vector<std::vector<std::size_t>> groups;
    if (options_.length_groups) {
      groups = length_groups(batch, r0, count, min_group, group_cost);
    } else {
      groups.emplace_back(count);
      for (std::size_t i = 0; i < count; ++i) groups[0][i] = r0 + i;
    }
    if (groups.size() == 1 && std::is_sorted(groups[0].begin(), groups[0].end())) {
      parts.push_back(forward_chunk(batch, groups[0], prompts_dev, pindex, mode, labels, deep));
      continue;
    }
    auto out = torch::empty({static_cast<std::int64_t>(count), K},
                            torch::TensorOptions().device(options_.device).dtype(options_.dtype));
    for (const auto& g : groups) {
      std::vector<std::int64_t> at(g.size());
      for (std::size_t i = 0; i < g.size(); ++i) at[i] = static_cast<std::int64_t>(g[i] - r0);
      out.index_copy_(0, torch::tensor(at, torch::kLong).to(options_.device),
                      forward_chunk(batch, g, prompts_dev, pindex, mode, labels, deep));
    }
    parts.push_back(out);
  }
  if (parts.empty()) return torch::empty({0, K}, torch::kFloat32);
  return (parts.size() == 1 ? parts[0] : torch::cat(parts)).to(torch::kCPU, torch::kFloat32);  // [rows, K]
}

std::vector<std::vector<std::size_t>> Roberta::length_groups(const MaskBatch& batch, std::size_t row0,
                                                             std::size_t rows, std::size_t min_group,
                                                             std::int64_t group_cost) {
  std::vector<std::size_t> order(rows);
  for (std::size_t i = 0; i < rows; ++i) order[i] = row0 + i;
  auto len = [&](std::size_t r) { return static_cast<std::int64_t>(batch.ids[r].size()); };
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return len(a) < len(b); });
  // Optimal split of the sorted rows into runs of >= min_group rows: minimises padded tokens
  // plus group_cost per extra forward pass (dynamic programming over the split points).
  const std::size_t m = std::min(min_group, rows);
  std::vector<std::int64_t> best(rows + 1, -1);
  std::vector<std::size_t> from(rows + 1, 0);
  best[0] = 0;
  for (std::size_t j = m; j <= rows; ++j) {
    const std::int64_t width = len(order[j - 1]);
    for (std::size_t i = 0; i + m <= j; ++i) {
      if (best[i] < 0) continue;
      const std::int64_t cost = best[i] + static_cast<std::int64_t>(j - i) * width + group_cost;
      if (best[j] < 0 || cost < best[j]) {
        best[j] = cost;
        from[j] = i;
      }
    }
  }
  std::vector<std::vector<std::size_t>> groups;
  for (std::size_t j = rows; j > 0; j = from[j])
    groups.emplace(groups.begin(), order.begin() + static_cast<std::ptrdiff_t>(from[j]),
                   order.begin() + static_cast<std::ptrdiff_t>(j));
  return groups;
}

Roberta::ChunkInputs Roberta::chunk_inputs(const MaskBatch& batch, const std::vector<std::size_t>& row_ids,
                                           std::int64_t shift) const {
  const auto& c = config_;
  const auto dev = options_.device;
  const auto dt = options_.dtype;
  ChunkInputs in;
  in.B = static_cast<std::int64_t>(row_ids.size());
  const std::int64_t B = in.B;
  std::int64_t L = 0;
  for (std::size_t r : row_ids) L = std::max<std::int64_t>(L, batch.ids[r].size());
  in.L = L;
  const std::int64_t T = in.T = L + shift;

  // Host-side index tensors for the whole chunk, copied to the device once.
  auto ids = torch::full({B, L}, c.pad_token_id, torch::kLong);      // [B, L]
  auto pos = torch::full({B, L}, c.pad_token_id, torch::kLong);      // [B, L] padding gets padding_idx
  auto keep = torch::full({B, T}, mask_value(dt), torch::kFloat32);  // [B, T]
  auto mpos = torch::empty({B}, torch::kLong);                       // [B]
  auto* ids_p = ids.data_ptr<std::int64_t>();
  auto* pos_p = pos.data_ptr<std::int64_t>();
  auto* keep_p = keep.data_ptr<float>();
  auto* mpos_p = mpos.data_ptr<std::int64_t>();
  for (std::int64_t r = 0; r < B; ++r) {
    const auto& row = batch.ids[row_ids[r]];
    const auto len = static_cast<std::int64_t>(row.size());
    for (std::int64_t i = 0; i < len; ++i) {
      ids_p[r * L + i] = row[i];
      pos_p[r * L + i] = c.pad_token_id + 1 + i;
    }
    for (std::int64_t i = 0; i < shift + len; ++i) keep_p[r * T + i] = 0.0f;
    mpos_p[r] = batch.mask_pos.empty() ? 0 : batch.mask_pos[row_ids[r]] + shift;
  }
  in.ids = ids.to(dev);
  in.pos = pos.to(dev);
  in.mpos = mpos.to(dev);
  in.mask = keep.to(dev, dt).view({B, 1, 1, T});  // [B, 1, 1, T]
  return in;
}

torch::Tensor Roberta::embed(const ChunkInputs& in) const {
  const std::int64_t B = in.B, L = in.L, H = config_.hidden_size;
  // Embeddings: (word + type) + position, then LayerNorm, as Hugging Face sums them.
  auto h = word_emb_.index_select(0, in.ids.view(-1)).view({B, L, H});  // [B, L, H]
  h.add_(type_emb0_).add_(pos_emb_.index_select(0, in.pos.view(-1)).view({B, L, H}));
  return layer_norm(h, emb_ln_w_, emb_ln_b_);  // [B, L, H]
}

torch::Tensor Roberta::encoder(torch::Tensor h, const ChunkInputs& in, bool mask_rows_only,
                               const std::function<void(std::int64_t, torch::Tensor&)>& before_layer,
                               const torch::Tensor& prefix) const {
  const auto n_layers = static_cast<std::int64_t>(layers_.size());
  torch::Tensor mask = in.mask;  // [B, 1, 1, T]
  if (prefix.defined())          // prefix keys are open to every row: [B, 1, 1, m + T]
    mask = torch::cat({torch::zeros({in.B, 1, 1, prefix.size(2)}, mask.options()), mask}, 3);
  for (std::int64_t l = 0; l < n_layers; ++l) {
    if (before_layer) before_layer(l, h);
    const bool last = mask_rows_only && l == n_layers - 1;
    h = layer_forward(layers_[l], h, mask, last ? in.mpos : torch::Tensor(),
                      prefix.defined() ? prefix[l] : torch::Tensor());
  }
  return h;
}

torch::Tensor Roberta::forward_chunk(const MaskBatch& batch, const std::vector<std::size_t>& row_ids,
                                     const torch::Tensor& prompts, const torch::Tensor& prompt_index,
                                     PromptMode mode, const torch::Tensor& labels,
                                     const std::vector<torch::Tensor>* deep) const {
  const auto dev = options_.device;
  const std::int64_t n = deep ? (*deep)[0].size(1) : prompts.defined() ? prompts.size(1) : 0;
  const std::int64_t shift = mode == PromptMode::kCat ? n : 0;
  const ChunkInputs in = chunk_inputs(batch, row_ids, shift);
  const std::int64_t B = in.B;

  auto h = embed(in);  // [B, L, H]
  torch::Tensor idx;   // [B] each row's prompt, on the device
  if (n > 0) {
    auto sel = torch::empty({B}, torch::kLong);
    const auto* pi = prompt_index.data_ptr<std::int64_t>();
    for (std::int64_t r = 0; r < B; ++r) sel.data_ptr<std::int64_t>()[r] = pi[row_ids[r]];
    idx = sel.to(dev);
  }
  // Deep prompt: layer l's part is added to the hidden states entering layer l (layer 0's to the
  // embedding output, as add mode).
  std::function<void(std::int64_t, torch::Tensor&)> add_deep;
  if (n > 0 && deep) {
    add_deep = [&](std::int64_t l, torch::Tensor& x) {
      const torch::Tensor& p = (*deep)[static_cast<std::size_t>(l)];  // [1 or C, n, H]
      if (p.size(0) == 1)
        x.narrow(1, 1, n).add_(p);
      else
        x.narrow(1, 1, n).add_(p.index_select(0, idx));  // [B, n, H]
    };
  } else if (n > 0) {
    const auto p = prompts.index_select(0, idx);  // [B, n, H]
    if (mode == PromptMode::kAdd) {
      h.narrow(1, 1, n).add_(p);
    } else {
      h = torch::cat({p, h}, 1);  // [B, T, H] prompt in front, no position embedding
    }
  }
  h = encoder(h, in, /*mask_rows_only=*/true, add_deep);

  return mask_head(h, in, labels);
}

torch::Tensor Roberta::mask_head(const torch::Tensor& h, const ChunkInputs& in,
                                 const torch::Tensor& labels) const {
  const std::int64_t B = in.B, H = config_.hidden_size;
  torch::Tensor x;  // [B, H] hidden state at <mask>
  if (!layers_.empty()) {
    x = h.view({B, H});
  } else {
    x = h.gather(1, in.mpos.view({B, 1, 1}).expand({B, 1, H})).view({B, H});
  }
  x = torch::gelu(torch::linear(x, head_dense_w_, head_dense_b_));                                  // [B, H]
  x = layer_norm(x, head_ln_w_, head_ln_b_);                                                        // [B, H]
  return torch::linear(x, decoder_w_.index_select(0, labels), decoder_b_.index_select(0, labels));  // [B, K]
}

torch::Tensor Roberta::layer_forward(const Layer& ly, const torch::Tensor& h, const torch::Tensor& mask,
                                     const torch::Tensor& mpos, const torch::Tensor& prefix) const {
  const std::int64_t B = h.size(0), T = h.size(1), H = config_.hidden_size;
  const std::int64_t A = config_.num_attention_heads, D = H / A;
  auto qkv =
      torch::linear(h, ly.qkv_w, ly.qkv_b).view({B, T, 3, A, D}).permute({2, 0, 3, 1, 4});  // [3,B,A,T,D]
  auto q = qkv[0];
  auto k = qkv[1], v = qkv[2];
  if (prefix.defined()) {  // P-tuning v2: m prefix keys and values in front, [B, A, m + T, D]
    const std::int64_t m = prefix.size(1);
    const auto kv = prefix.view({2, 1, m, A, D}).permute({0, 1, 3, 2, 4}).expand({2, B, A, m, D});
    k = torch::cat({kv[0], k}, 2);
    v = torch::cat({kv[1], v}, 2);
  }
  auto residual = h;
  std::int64_t Tq = T;
  if (mpos.defined()) {
    // Queries, residual and FFN at the <mask> rows only.
    q = q.gather(2, mpos.view({B, 1, 1, 1}).expand({B, A, 1, D}));   // [B, A, 1, D]
    residual = h.gather(1, mpos.view({B, 1, 1}).expand({B, 1, H}));  // [B, 1, H]
    Tq = 1;
  }
  auto ctx = attention(q, k, v, mask).transpose(1, 2).reshape({B, Tq, H});  // [B, Tq, H]
  auto a = layer_norm(torch::linear(ctx, ly.attn_out_w, ly.attn_out_b).add_(residual), ly.attn_ln_w,
                      ly.attn_ln_b);                                                          // [B, Tq, H]
  auto f = torch::gelu(torch::linear(a, ly.inter_w, ly.inter_b));                             // [B, Tq, F]
  return layer_norm(torch::linear(f, ly.out_w, ly.out_b).add_(a), ly.out_ln_w, ly.out_ln_b);  // [B, Tq, H]
}

torch::Tensor Roberta::layer_inputs(const std::vector<std::int64_t>& ids) const {
  const auto& c = config_;
  const std::int64_t len = static_cast<std::int64_t>(ids.size()), H = c.hidden_size;
  const auto n_layers = static_cast<std::int64_t>(layers_.size());
  MaskBatch one{{ids}, {0}};
  check_inputs(one, 0, 0, torch::Tensor(), PromptMode::kAdd, torch::zeros({0}, torch::kLong));
  if (n_layers < 2) return torch::empty({0, len, H}, torch::kFloat32);
  torch::NoGradGuard no_grad;
  const ChunkInputs in = chunk_inputs(one, {0}, 0);
  auto h = embed(in);  // [1, len, H]
  std::vector<torch::Tensor> out;
  for (std::int64_t l = 0; l + 1 < n_layers; ++l) {
    h = layer_forward(layers_[l], h, in.mask, torch::Tensor());
    out.push_back(h.view({len, H}).to(torch::kCPU, torch::kFloat32));
  }
  return torch::stack(out);  // [L-1, len, H]
}

torch::Tensor Roberta::hidden_states(const std::vector<std::vector<std::int64_t>>& rows,
                                     bool first_only) const {
  const auto& c = config_;
  const std::int64_t max_len = c.max_position_embeddings - c.pad_token_id - 1;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const auto len = static_cast<std::int64_t>(rows[r].size());
    if (len < 1 || len > max_len)
      throw Error("hidden_states: row " + std::to_string(r) + " has " + std::to_string(len) +
                  " tokens; model " + dir_ + " takes 1.." + std::to_string(max_len));
    for (auto id : rows[r])
      if (id < 0 || id >= c.vocab_size)
        throw Error("hidden_states: row " + std::to_string(r) + " has token id " + std::to_string(id) +
                    " outside the vocabulary");
  }
  torch::NoGradGuard no_grad;
  MaskBatch batch;
  batch.ids = rows;
  std::vector<torch::Tensor> parts;
  // Chunks of max_batch rows in order: each chunk one forward pass, whatever the caller's split.
  for (std::size_t r0 = 0; r0 < rows.size(); r0 += static_cast<std::size_t>(options_.max_batch)) {
    const auto count = std::min<std::size_t>(options_.max_batch, rows.size() - r0);
    std::vector<std::size_t> ids(count);
    for (std::size_t i = 0; i < count; ++i) ids[i] = r0 + i;
    const ChunkInputs in = chunk_inputs(batch, ids, 0);
    const auto h =
        encoder(embed(in), in, /*mask_rows_only=*/false).to(torch::kCPU, torch::kFloat32);  // [B, L, H]
    for (std::size_t i = 0; i < count; ++i) {
      const auto len = first_only ? 1 : static_cast<std::int64_t>(rows[r0 + i].size());
      parts.push_back(h[static_cast<std::int64_t>(i)].narrow(0, 0, len));  // [len, H]
    }
  }
  if (parts.empty()) return torch::empty({0, c.hidden_size}, torch::kFloat32);
  return torch::cat(parts).contiguous();  // [rows or sum of lengths, H]
}

torch::Tensor Roberta::mask_logits_grad(const MaskBatch& batch, const torch::Tensor& prompt,
                                        const torch::Tensor& prefix, const torch::Tensor& label_ids,
                                        PromptMode mode) const {
  const auto& c = config_;
  const std::int64_t H = c.hidden_size, L = c.num_hidden_layers;
  std::int64_t n = 0;
  if (prompt.defined()) {
    if (prompt.dim() != 2 || prompt.size(1) != H)
      throw Error("mask_logits_grad: the prompt must be [n, " + std::to_string(H) + "]");
    n = prompt.size(0);
  }
  if (prefix.defined() &&
      (prefix.dim() != 4 || prefix.size(0) != L || prefix.size(1) != 2 || prefix.size(3) != H))
    throw Error("mask_logits_grad: the prefix must be [" + std::to_string(L) + ", 2, m, " +
                std::to_string(H) + "]");
  const bool add = mode == PromptMode::kAdd;
  if (add && prefix.defined()) throw Error("mask_logits_grad: an add-mode prompt takes no prefix");
  check_inputs(batch, n, 0, torch::Tensor(), mode, label_ids);
  const auto K = label_ids.size(0);
  if (batch.ids.empty())
    return torch::empty({0, K}, torch::TensorOptions().device(options_.device).dtype(options_.dtype));
  std::vector<std::size_t> rows(batch.ids.size());
  for (std::size_t r = 0; r < rows.size(); ++r) rows[r] = r;
  const ChunkInputs in = chunk_inputs(batch, rows, add ? 0 : n);
  auto h = embed(in);  // [B, L, H]
  if (n > 0 && add) {
    // The placeholders' embeddings plus the prompt (the same sums as mask_logits' in-place add).
    const auto p = prompt.to(options_.device, options_.dtype).unsqueeze(0).expand({in.B, n, H});
    h = torch::cat({h.narrow(1, 0, 1), h.narrow(1, 1, n) + p, h.narrow(1, n + 1, h.size(1) - n - 1)}, 1);
  } else if (n > 0) {
    h = torch::cat({prompt.to(options_.device, options_.dtype).unsqueeze(0).expand({in.B, n, H}), h}, 1);
  }
  torch::Tensor pre;  // [L, 2, m, H] on the device
  if (prefix.defined() && prefix.size(2) > 0) pre = prefix.to(options_.device, options_.dtype);
  h = encoder(h, in, /*mask_rows_only=*/true, {}, pre);    // [B, 1, H]
  return mask_head(h, in, label_ids.to(options_.device));  // [B, K]
}

std::vector<std::pair<std::string, torch::Tensor*>> Roberta::weight_slots() {
  std::vector<std::pair<std::string, torch::Tensor*>> s = {{"embeddings.word.weight", &word_emb_},
                                                           {"embeddings.position.weight", &pos_emb_},
                                                           {"embeddings.token_type0.weight", &type_emb0_},
                                                           {"embeddings.layer_norm.weight", &emb_ln_w_},
                                                           {"embeddings.layer_norm.bias", &emb_ln_b_}};
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    auto& ly = layers_[l];
    const std::string p = "layer." + std::to_string(l) + ".";
    for (auto [name, t] : std::initializer_list<std::pair<const char*, torch::Tensor*>>{
             {"qkv.weight", &ly.qkv_w},
             {"qkv.bias", &ly.qkv_b},
             {"attention_out.weight", &ly.attn_out_w},
             {"attention_out.bias", &ly.attn_out_b},
             {"attention_layer_norm.weight", &ly.attn_ln_w},
             {"attention_layer_norm.bias", &ly.attn_ln_b},
             {"intermediate.weight", &ly.inter_w},
             {"intermediate.bias", &ly.inter_b},
             {"output.weight", &ly.out_w},
             {"output.bias", &ly.out_b},
             {"output_layer_norm.weight", &ly.out_ln_w},
             {"output_layer_norm.bias", &ly.out_ln_b}})
      s.emplace_back(p + name, t);
  }
  for (auto [name, t] :
       std::initializer_list<std::pair<const char*, torch::Tensor*>>{{"head.dense.weight", &head_dense_w_},
                                                                     {"head.dense.bias", &head_dense_b_},
                                                                     {"head.layer_norm.weight", &head_ln_w_},
                                                                     {"head.layer_norm.bias", &head_ln_b_}})
    s.emplace_back(name, t);
  if (!decoder_w_.is_same(word_emb_)) s.emplace_back("head.decoder.weight", &decoder_w_);
  s.emplace_back("head.decoder.bias", &decoder_b_);
  return s;
}

torch::Tensor Roberta::token_rows(const std::vector<std::int64_t>& ids) const {
  torch::NoGradGuard no_grad;
  for (auto id : ids)
    if (id < 0 || id >= config_.vocab_size) throw Error("token_rows: token id " + std::to_string(id) + " outside the vocabulary");
  const auto idx = torch::tensor(ids, torch::kLong).to(options_.device);
  const auto h = word_emb_.index_select(0, idx) + type_emb0_;                     // [n, H]
  return layer_norm(h, emb_ln_w_, emb_ln_b_).to(torch::kCPU, torch::kFloat32);  // [n, H]
}

Roberta Roberta::trainable_copy() const {
  Roberta m = *this;
  const bool tied = decoder_w_.is_same(word_emb_);
  for (auto& [name, t] : m.weight_slots()) *t = t->detach().clone().set_requires_grad(true);
  if (tied) m.decoder_w_ = m.word_emb_;
  return m;
}

std::vector<std::pair<std::string, torch::Tensor>> Roberta::named_parameters() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (auto& [name, t] : const_cast<Roberta*>(this)->weight_slots()) out.emplace_back(name, *t);
  return out;
}

std::int64_t Roberta::parameter_bytes() const {
  // Every weight once: a decoder tied to the word embeddings is the same memory.
  std::int64_t total = 0;
  for (const auto& [name, t] : named_parameters())
    if (t.defined()) total += t.numel() * static_cast<std::int64_t>(t.element_size());
  return total;
}

}  // namespace bbt::model

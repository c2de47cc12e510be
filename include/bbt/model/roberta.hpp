#pragma once
// RoBERTa (Hugging Face RobertaForMaskedLM) inference for BBT: verbalizer logits at <mask>, with
// continuous prompts added to (add) or placed in front of (cat) the embedding output, or (BBTv2)
// a deep prompt added to the hidden states entering every layer.
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bbt/model/config.hpp"
#include "bbt/model/prompt_kinds.hpp"

namespace bbt::model {

// Memory for the weights that several processes share: one converted copy per node, read by all of
// its ranks (the cluster layer provides it: an MPI shared-memory window over the node's ranks).
struct WeightBlock {
  char* data = nullptr;  // nullptr: no shared memory (every process converts its own copy)
  bool fill = false;     // this process converts the weights into it; the others wait
};
struct SharedWeights {
  // Called once by every sharing process with the same byte count (collective). A block without
  // data means sharing failed: every process then loads its own copy.
  std::function<WeightBlock(std::size_t bytes)> allocate;
  // Called once by every sharing process when the filler is done (collective): ok is the filler's
  // verdict (the others pass true); returns the filler's. From then on the block is read-only.
  std::function<bool(bool ok)> published;
};

struct LoadOptions {
  torch::Device device = torch::kCPU;
  // float32 on CPU; bfloat16 or float16 on CUDA (LayerNorm and softmax accumulate in float32).
  torch::ScalarType dtype = torch::kFloat32;
  // Rows per forward pass: bounds activation memory.
  std::int64_t max_batch = 64;
  // Inside each chunk of max_batch rows, run rows of similar length together (less padding).
  bool length_groups = true;
  // CPU float32 only: where the converted weights live (undefined: in this process's own memory).
  // The tensors wrap that memory without a copy and never write to it; trainable_copy() copies.
  std::shared_ptr<const SharedWeights> shared;
};

// Token rows (each <s> ... </s>; in add mode with placeholders at positions 1..n) and the
// <mask> position in each row.
struct MaskBatch {
  std::vector<std::vector<std::int64_t>> ids;
  std::vector<std::int64_t> mask_pos;
};

class Roberta {
 public:
  // Reads DIR/config.json and DIR/model.safetensors (Hub tensor names).
  static Roberta load(const std::string& dir, const LoadOptions& options = {});

  const RobertaConfig& config() const { return config_; }
  const LoadOptions& options() const { return options_; }
  // Standard deviation (unbiased) of all entries of the word-embedding matrix.
  double word_embedding_std() const { return word_embedding_std_; }
  // 16 hex digits hashing config.json's numbers and every tensor read (names, float32 values):
  // equal for two copies of one model, different for other weights of the same shapes.
  const std::string& fingerprint() const { return fingerprint_; }

  // Logits [rows, K] (float32, CPU) of the verbalizer tokens label_ids [K] at each row's <mask>.
  // prompts [C, n, H] (undefined = no prompt), prompt_index [rows] int64 (CPU) picks the prompt of
  // each row.
  torch::Tensor mask_logits(const MaskBatch& batch, const torch::Tensor& prompts,
                            const torch::Tensor& prompt_index, PromptMode mode,
                            const torch::Tensor& label_ids) const;

  // Deep prompt (BBTv2): layers[l] ([1, n, H] shared by every row, or [C, n, H] picked per row by
  // prompt_index) is added at positions 1..n to the hidden states entering layer l (layer 0: the
  // embedding output after its LayerNorm, as add mode); one entry per layer. Rows carry the n
  // placeholders as in add mode. No matrix products beyond the unprompted forward.
  torch::Tensor mask_logits_deep(const MaskBatch& batch, const std::vector<torch::Tensor>& layers,
                                 const torch::Tensor& prompt_index, const torch::Tensor& label_ids) const;

  // The hidden states entering layers 1..L-1 for one row with no prompt, unpadded: [L-1, len, H]
  // float32 on the CPU (BBTv2 scales its projections by their statistics).
  torch::Tensor layer_inputs(const std::vector<std::int64_t>& ids) const;
  // Last-layer hidden states (no prompt), float32 CPU, in chunks of max_batch rows as mask_logits:
  // every token of every row concatenated, [sum of row lengths, H], or with first_only each row's
  // <s> alone, [rows, H]. The features of the feature-classifier baselines.
  torch::Tensor hidden_states(const std::vector<std::vector<std::int64_t>>& rows, bool first_only) const;
  // The gradient-based methods' forward: logits [rows, K] in the compute dtype on the device, all
  // rows in ONE forward pass (the caller chunks), with autograd on: whatever requires grad among
  // `prompt` [n, H] (cat mode: in front of every row, no position embedding; undefined = none),
  // `prefix` [L, 2, m, H] (P-tuning v2: layer l's m keys prefix[l][0] and values prefix[l][1],
  // after the key/value projections, in front of that layer's own, open to every row; undefined =
  // none) and the weights (of a trainable_copy()) gets gradients. Rows as mask_logits' cat mode.
  // mode = kAdd (no prefix): `prompt` is added at positions 1..n after the embedding LayerNorm and
  // rows carry the n placeholders, as mask_logits' add mode (BBT-Adam in an add-mode subspace).
  torch::Tensor mask_logits_grad(const MaskBatch& batch, const torch::Tensor& prompt,
                                 const torch::Tensor& prefix, const torch::Tensor& label_ids,
                                 PromptMode mode = PromptMode::kCat) const;
  // The embedding layer's output for tokens `ids` with no position (LayerNorm(word + type)): [n, H]
  // float32 on the CPU. Prompt tuning's initial prompt from sampled vocabulary rows.
  torch::Tensor token_rows(const std::vector<std::int64_t>& ids) const;
  // A copy whose weights are fresh leaves that require grad (model tuning); a tied decoder stays
  // tied to the word embeddings. The original is untouched.
  Roberta trainable_copy() const;
  // Every distinct weight tensor in one fixed order, with its Hub-like name ("layer.3.qkv.weight"):
  // handles to the model's own storage (an optimiser updates them in place under NoGradGuard).
  std::vector<std::pair<std::string, torch::Tensor>> named_parameters() const;
  // Bytes held by the weights (the "server" side of one replica); a tied decoder counts once.
  std::int64_t parameter_bytes() const;
  // Whether the weights live in memory shared with other processes (LoadOptions::shared).
  bool shares_weights() const { return shares_weights_; }
  // The address of the weights' first byte (CPU float32 loads: all weights lie in one block).
  const void* weights_address() const { return word_emb_.data_ptr(); }

 private:
  struct Layer {
    torch::Tensor qkv_w, qkv_b;  // fused [3H, H], [3H]
    torch::Tensor attn_out_w, attn_out_b, attn_ln_w, attn_ln_b;
    torch::Tensor inter_w, inter_b, out_w, out_b, out_ln_w, out_ln_b;
  };
  Roberta() = default;
  // One chunk's index tensors on the device: ids and positions [B, L], the additive attention mask
  // [B, 1, 1, T] (T = L + shift prompt rows in front) and each row's <mask> position [B] (+ shift).
  struct ChunkInputs {
    torch::Tensor ids, pos, mask, mpos;
    std::int64_t B = 0, L = 0, T = 0;
  };
  ChunkInputs chunk_inputs(const MaskBatch& batch, const std::vector<std::size_t>& row_ids,
                           std::int64_t shift) const;
  torch::Tensor embed(const ChunkInputs& in) const;  // [B, L, H]
  // The layers on h [B, T, H]; with mask_rows_only the last layer runs at the <mask> rows alone
  // ([B, 1, H] out). before_layer (if set) may change the hidden states entering layer l.
  // prefix: undefined, or [L, 2, m, H] (see mask_logits_grad).
  torch::Tensor encoder(torch::Tensor h, const ChunkInputs& in, bool mask_rows_only,
                        const std::function<void(std::int64_t, torch::Tensor&)>& before_layer = {},
                        const torch::Tensor& prefix = {}) const;
  // The MLM head at the <mask> rows of the encoder's output h: [B, K] for the verbalizer labels.
  torch::Tensor mask_head(const torch::Tensor& h, const ChunkInputs& in, const torch::Tensor& labels) const;
  // One forward pass over the rows row_ids of batch: [rows, K] in the compute dtype on the device.
  // deep: nullptr, or one [1 or C, n, H] tensor per layer (then prompts is undefined).
  torch::Tensor forward_chunk(const MaskBatch& batch, const std::vector<std::size_t>& row_ids,
                              const torch::Tensor& prompts, const torch::Tensor& prompt_index,
                              PromptMode mode, const torch::Tensor& label_ids,
                              const std::vector<torch::Tensor>* deep) const;
  // Checks rows, label ids and prompt indices (C prompts of n tokens; C = 0: none).
  void check_inputs(const MaskBatch& batch, std::int64_t n, std::int64_t C, const torch::Tensor& prompt_index,
                    PromptMode mode, const torch::Tensor& label_ids) const;
  // Chunks of max_batch rows, each run as length groups through forward_chunk: [rows, K] float32 CPU.
  torch::Tensor run_chunks(const MaskBatch& batch, const torch::Tensor& prompts,
                           const torch::Tensor& prompt_index, PromptMode mode, const torch::Tensor& label_ids,
                           const std::vector<torch::Tensor>* deep) const;
  // One encoder layer on h [B, T, H]; when mpos is defined only the <mask> rows leave it ([B, 1, H]).
  // prefix [2, m, H] (undefined = none): keys and values in front; mask then covers m + T columns.
  torch::Tensor layer_forward(const Layer& ly, const torch::Tensor& h, const torch::Tensor& mask,
                              const torch::Tensor& mpos, const torch::Tensor& prefix = {}) const;
  // Every weight slot, named, in one fixed order (the tied decoder once, as the word embeddings).
  std::vector<std::pair<std::string, torch::Tensor*>> weight_slots();
  // Rows row0..row0+rows-1 sorted by length and split into runs of >= min_group rows that
  // minimise padded tokens + group_cost tokens per run.
  static std::vector<std::vector<std::size_t>> length_groups(const MaskBatch& batch, std::size_t row0,
                                                             std::size_t rows, std::size_t min_group,
                                                             std::int64_t group_cost);
  torch::Tensor layer_norm(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) const;

  std::string dir_;  // where it was loaded from, for errors
  RobertaConfig config_;
  LoadOptions options_;
  double word_embedding_std_ = 0.0;
  std::string fingerprint_;
  bool shares_weights_ = false;
  torch::Tensor word_emb_, pos_emb_, type_emb0_, emb_ln_w_, emb_ln_b_;
  std::vector<Layer> layers_;
  torch::Tensor head_dense_w_, head_dense_b_, head_ln_w_, head_ln_b_, decoder_w_, decoder_b_;
};

}  // namespace bbt::model

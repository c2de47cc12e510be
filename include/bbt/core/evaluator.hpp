#pragma once
// One rank's share of the black-box calls: turns candidate z's and tokenized examples into
// verbalizer logits with the rank's model replica. Work is split in (candidate, example) pairs.
#include <Eigen/Core>
#include <cstdint>
#include <vector>

#include "bbt/model/projection.hpp"
#include "bbt/model/roberta.hpp"

namespace bbt::core {

// Tokenized examples of one split, as the model takes them; packs into one int64 buffer for MPI.
struct EncodedSplit {
  std::vector<std::vector<std::int64_t>> ids;  // <s> ... </s>
  std::vector<std::int64_t> mask_pos;
  std::vector<std::int64_t> labels;

  std::int64_t size() const { return static_cast<std::int64_t>(ids.size()); }
  std::vector<std::int64_t> pack() const;
  static EncodedSplit unpack(const std::vector<std::int64_t>& packed);
  EncodedSplit subset(const std::vector<std::size_t>& index) const;
};

// What a query without a prompt asks of each input row (the baselines' service).
enum class RowQuery : std::int64_t {
  kMaskLogits = 0,   // verbalizer logits at <mask>, [K] per row
  kFirstState = 1,   // last-layer hidden state of <s>, [H] per row
  kTokenStates = 2,  // last-layer hidden states of every token, [length x H] per row
};

class Evaluator {
 public:
  // p0 [n, H] float32 (cat mode's initial prompt; undefined = zero). chunk_rows: rows per forward.
  Evaluator(const model::Roberta& model, model::Projection projection, torch::Tensor p0,
            std::vector<std::int64_t> label_ids, model::PromptMode mode, std::int64_t chunk_rows);

  // Logits [end - begin, K] row-major for pairs begin..end-1, where pair p is candidate
  // p / split.size() (a column of Z, d x C) with example p % split.size().
  std::vector<float> pair_logits(const Eigen::MatrixXd& z, const EncodedSplit& split, std::int64_t begin,
                                 std::int64_t end) const;

  // BBTv2's deep prompt: one projection A_l per layer (all of one d). From then on a prompt vector
  // is the L z's end to end ([L*d]): layer l's prompt is A_l z_l, added to that layer's input.
  void set_deep(std::vector<model::Projection> layers);
  bool deep() const { return !deep_.empty(); }
  std::int64_t deep_layers() const { return static_cast<std::int64_t>(deep_.size()); }
  // The rank's copy of the current best deep prompt: its layer `layer` becomes A_layer z (z: d).
  void set_base_layer(std::int64_t layer, const Eigen::VectorXd& z);
  // As pair_logits, with candidate c the best deep prompt whose layer `layer` is A_layer z.col(c).
  std::vector<float> pair_logits_layer(std::int64_t layer, const Eigen::MatrixXd& z,
                                       const EncodedSplit& split, std::int64_t begin, std::int64_t end) const;
  // The dense deep prompt [L, n, H] (float32, CPU) of a prompt vector [L*d].
  torch::Tensor deep_prompt(const Eigen::VectorXd& z) const;
  // Outputs of `query` for rows begin..end-1 of `inputs` (no prompt), float32, row after row;
  // the model runs chunks of chunk_rows() rows counted from `begin`.
  std::vector<float> row_outputs(RowQuery query, const EncodedSplit& inputs, std::int64_t begin,
                                 std::int64_t end) const;
  // Floats row_outputs gives for row i of `inputs`.
  std::int64_t row_width(RowQuery query, const EncodedSplit& inputs, std::int64_t i) const;

  std::int64_t num_labels() const { return static_cast<std::int64_t>(label_ids_.size()); }
  const std::vector<std::int64_t>& label_ids() const { return label_ids_; }
  std::int64_t chunk_rows() const { return chunk_rows_; }
  const model::Roberta& model() const { return model_; }
  const model::Projection& projection() const { return projection_; }
  model::PromptMode mode() const { return mode_; }
  // Cat mode's p0 in the compute dtype on the device (undefined: none).
  const torch::Tensor& p0() const { return p0_; }

 private:
  // Logits of pairs begin..end-1 whose candidates' deep prompts are `layers` (one [C' or 1, n, H]
  // per layer, C' candidates from c_lo).
  std::vector<float> deep_logits(const std::vector<torch::Tensor>& layers, const EncodedSplit& split,
                                 std::int64_t c_lo, std::int64_t begin, std::int64_t end) const;

  const model::Roberta& model_;
  model::Projection projection_;
  torch::Tensor p0_;
  std::vector<std::int64_t> label_ids_;
  torch::Tensor label_tensor_;
  model::PromptMode mode_;
  std::int64_t chunk_rows_;
  std::vector<model::Projection> deep_;  // BBTv2: A_l per layer
  std::vector<torch::Tensor> base_;      // [1, n, H] per layer: the rank's best deep prompt
};

}  // namespace bbt::core

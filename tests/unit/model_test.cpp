// bbt::model: parity of the RoBERTa mask-logit forward against an independent float64
// re-implementation (separate Q/K/V, full-vocabulary logits, manual LayerNorm and GELU),
// invariances, projection, checkpoint errors and the make-tiny-model command.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>

#include "bbt/common/error.hpp"
#include "bbt/common/rng.hpp"
#include "bbt/model/config.hpp"
#include "bbt/model/npy.hpp"
#include "bbt/model/projection.hpp"
#include "bbt/model/roberta.hpp"
#include "bbt/model/safetensors.hpp"
#include "bbt/model/tiny_model.hpp"
#include "tiny_fixture.hpp"

namespace fs = std::filesystem;
using bbt::model::MaskBatch;
using bbt::model::PromptMode;
using bbt::model::Roberta;

namespace {

constexpr std::int64_t kVocab = 1100;
constexpr std::int64_t kHidden = 32;
constexpr std::int64_t kPrompt = 4;  // placeholder ids 1000..1003

std::string scratch() { return bbt_test::scratch("bbt_model_test"); }

// A vocabulary with the RoBERTa specials (ids 0..3 and <mask> last) and filler tokens.
std::string vocab_dir() { return bbt_test::write_vocab(scratch() + "/vocab", kVocab); }

std::string tiny_model(const std::string& name, bool tied, std::int64_t layers = 2) {
  bbt::model::TinyModelOptions o;
  o.out_dir = scratch() + "/" + name;
  o.layers = layers;
  o.hidden = kHidden;
  o.heads = 4;
  o.intermediate = 64;
  o.seed = tied ? 11 : 12;
  o.init_std = 0.1;  // larger than BERT's 0.02 so that every path moves the logits visibly
  o.vocab_from = vocab_dir();
  o.tie_decoder = tied;
  o.max_positions = 40;
  return bbt_test::tiny_model(o);
}

// ---- The float64 reference: a direct transcription of Hugging Face's RobertaForMaskedLM. ----

struct Reference {
  std::map<std::string, torch::Tensor> w;  // float64
  bbt::model::RobertaConfig c;

  explicit Reference(const std::string& dir) {
    c = bbt::model::read_config(dir + "/config.json");
    auto st = bbt::model::SafetensorsFile::open(dir + "/model.safetensors");
    for (const auto& name : st.names()) w[name] = st.tensor(name).to(torch::kFloat64);
  }
  torch::Tensor ln(const torch::Tensor& x, const std::string& p) const {
    auto mean = x.mean(-1, true);
    auto var = (x - mean).pow(2).mean(-1, true);
    return (x - mean) / (var + c.layer_norm_eps).sqrt() * w.at(p + ".weight") + w.at(p + ".bias");
  }
  static torch::Tensor gelu(const torch::Tensor& x) {
    return 0.5 * x * (1.0 + torch::erf(x / std::sqrt(2.0)));
  }
  torch::Tensor lin(const torch::Tensor& x, const std::string& p) const {
    return torch::matmul(x, w.at(p + ".weight").t()) + w.at(p + ".bias");
  }
  // Encoder layer l on x [T, H] (one unpadded row).
  torch::Tensor layer(const torch::Tensor& x, std::int64_t l) const {
    const std::int64_t T = x.size(0), H = c.hidden_size, A = c.num_attention_heads, D = H / A;
    const std::string p = "roberta.encoder.layer." + std::to_string(l) + ".";
    auto q = lin(x, p + "attention.self.query").view({T, A, D}).transpose(0, 1);  // [A, T, D]
    auto k = lin(x, p + "attention.self.key").view({T, A, D}).transpose(0, 1);
    auto v = lin(x, p + "attention.self.value").view({T, A, D}).transpose(0, 1);
    auto s = torch::matmul(q, k.transpose(1, 2)) / std::sqrt(static_cast<double>(D));
    auto e = (s - std::get<0>(s.max(-1, true))).exp();
    auto probs = e / e.sum(-1, true);
    auto ctx = torch::matmul(probs, v).transpose(0, 1).reshape({T, H});
    auto a = ln(lin(ctx, p + "attention.output.dense") + x, p + "attention.output.LayerNorm");
    auto f = gelu(lin(a, p + "intermediate.dense"));
    return ln(lin(f, p + "output.dense") + a, p + "output.LayerNorm");
  }
  // Full-vocabulary logits [V] at the mask of one unpadded row; prompt [n, H] (float) or undefined;
  // deep [L, n, H] (undefined = none): added at positions 1..n to every layer's input.
  torch::Tensor full_logits(const std::vector<std::int64_t>& ids, std::int64_t mask_pos,
                            const torch::Tensor& prompt, PromptMode mode,
                            const torch::Tensor& deep = torch::Tensor()) const {
    std::int64_t shift = 0;
    auto h = states(ids, prompt, mode, shift, deep)[mask_pos + shift];
    h = ln(gelu(lin(h, "lm_head.dense")), "lm_head.layer_norm");
    const auto dec = w.count("lm_head.decoder.weight") ? w.at("lm_head.decoder.weight")
                                                       : w.at("roberta.embeddings.word_embeddings.weight");
    const auto bias = w.count("lm_head.bias") ? w.at("lm_head.bias") : w.at("lm_head.decoder.bias");
    return torch::matmul(dec, h) + bias;  // [V]
  }
  // Last-layer hidden states [T, H] of one unpadded row (T = L + shift prompt rows in front).
  torch::Tensor states(const std::vector<std::int64_t>& ids, const torch::Tensor& prompt, PromptMode mode,
                       std::int64_t& shift, const torch::Tensor& deep = torch::Tensor()) const {
    const std::int64_t L = ids.size();
    auto id = torch::tensor(ids, torch::kLong);
    auto pos = torch::arange(c.pad_token_id + 1, c.pad_token_id + 1 + L, torch::kLong);
    auto x = w.at("roberta.embeddings.word_embeddings.weight").index_select(0, id) +
             w.at("roberta.embeddings.token_type_embeddings.weight")[0] +
             w.at("roberta.embeddings.position_embeddings.weight").index_select(0, pos);  // [L, H]
    x = ln(x, "roberta.embeddings.LayerNorm");
    shift = 0;
    if (prompt.defined()) {
      auto p = prompt.to(torch::kFloat64);
      if (mode == PromptMode::kAdd) {
        x = torch::cat({x.narrow(0, 0, 1), x.narrow(0, 1, p.size(0)) + p,
                        x.narrow(0, 1 + p.size(0), L - 1 - p.size(0))});
      } else {
        x = torch::cat({p, x});
        shift = p.size(0);
      }
    }
    const std::int64_t T = x.size(0);
    for (std::int64_t l = 0; l < c.num_hidden_layers; ++l) {
      if (deep.defined()) {
        const auto d = deep[l].to(torch::kFloat64);  // [n, H]
        x = torch::cat({x.narrow(0, 0, 1), x.narrow(0, 1, d.size(0)) + d,
                        x.narrow(0, 1 + d.size(0), T - 1 - d.size(0))});
      }
      x = layer(x, l);
    }
    return x;  // [T, H]
  }
};

// Rows <s> [placeholders] text... <mask> ... </s> of different lengths.
MaskBatch make_batch(bool placeholders) {
  MaskBatch b;
  const std::vector<std::vector<std::int64_t>> texts = {
      {17, 230, 45, 9}, {300, 301, 302, 303, 304, 305, 306, 307, 308, 309, 310}, {88}, {5, 6, 7, 8, 9, 10}};
  for (std::size_t r = 0; r < texts.size(); ++r) {
    std::vector<std::int64_t> row{0};
    if (placeholders)
      for (std::int64_t i = 0; i < kPrompt; ++i) row.push_back(1000 + i);
    row.insert(row.end(), texts[r].begin(), texts[r].end());
    const auto mask = static_cast<std::int64_t>(row.size()) - (r % 2);  // <mask> last or second to last
    row.insert(row.begin() + mask, kVocab - 1);
    row.push_back(2);
    b.ids.push_back(row);
    b.mask_pos.push_back(mask);
  }
  return b;
}

torch::Tensor random_prompts(std::int64_t C, std::uint64_t seed) {
  torch::manual_seed(seed);
  return torch::randn({C, kPrompt, kHidden}) * 0.5;
}

const torch::Tensor kLabels =
    torch::tensor(std::vector<std::int64_t>{5, 17, kVocab - 1, 42, 1000}, torch::kLong);

double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

void expect_parity(const std::string& dir, PromptMode mode, bool with_prompt) {
  auto model = Roberta::load(dir);
  Reference ref(dir);
  const auto batch = make_batch(mode == PromptMode::kAdd);
  const auto prompts = with_prompt ? random_prompts(2, 3) : torch::Tensor();
  const auto index = torch::tensor(std::vector<std::int64_t>{1, 0, 0, 1}, torch::kLong);
  const auto got = model.mask_logits(batch, prompts, index, mode, kLabels);
  ASSERT_EQ(got.sizes(), (std::vector<std::int64_t>{4, kLabels.size(0)}));
  EXPECT_EQ(got.scalar_type(), torch::kFloat32);
  double worst = 0;
  for (std::size_t r = 0; r < batch.ids.size(); ++r) {
    const auto p = with_prompt ? prompts[index[r].item<std::int64_t>()] : torch::Tensor();
    const auto full = ref.full_logits(batch.ids[r], batch.mask_pos[r], p, mode);
    worst = std::max(worst, max_diff(got[r], full.index_select(0, kLabels)));
  }
  EXPECT_LE(worst, 1e-4);
  std::printf("max |ours - float64 reference| = %.3g\n", worst);
  // The logits must be far from trivial for this to mean anything.
  EXPECT_GT(got.abs().max().item<double>(), 0.1);
}

// Deep prompts: C = 2 deep prompts [L, n, H]; layer 1 shared ([1, n, H]), the others per row.
void expect_deep_parity(const std::string& dir, double tolerance) {
  auto model = Roberta::load(dir);
  Reference ref(dir);
  const std::int64_t L = ref.c.num_hidden_layers;
  const auto batch = make_batch(true);
  torch::manual_seed(21);
  const auto deep = torch::randn({2, L, kPrompt, kHidden}) * 0.5;  // [C, L, n, H]
  deep.select(1, std::min<std::int64_t>(1, L - 1))[1].copy_(
      deep.select(1, std::min<std::int64_t>(1, L - 1))[0]);
  std::vector<torch::Tensor> layers;
  for (std::int64_t l = 0; l < L; ++l)
    layers.push_back(l == 1 ? deep.select(1, l).narrow(0, 0, 1) : deep.select(1, l));  // [1 or C, n, H]
  const auto index = torch::tensor(std::vector<std::int64_t>{1, 0, 0, 1}, torch::kLong);
  const auto got = model.mask_logits_deep(batch, layers, index, kLabels);
  double worst = 0, worst_input = 0;
  for (std::size_t r = 0; r < batch.ids.size(); ++r) {
    const auto c = index[r].item<std::int64_t>();
    const auto full =
        ref.full_logits(batch.ids[r], batch.mask_pos[r], torch::Tensor(), PromptMode::kAdd, deep[c]);
    worst = std::max(worst, max_diff(got[r], full.index_select(0, kLabels)));
    // The deep prompt is not the input prompt alone: layers >= 1 move the logits.
    const auto input_only = ref.full_logits(batch.ids[r], batch.mask_pos[r], deep[c][0], PromptMode::kAdd)
                                .index_select(0, kLabels);
    worst_input = std::max(worst_input, max_diff(got[r], input_only));
  }
  std::printf("deep: max |ours - float64 reference| = %.3g\n", worst);
  EXPECT_LE(worst, tolerance);
  if (L > 1) {
    EXPECT_GT(worst_input, 1e-3);
  }
  EXPECT_GT(got.abs().max().item<double>(), 0.1);
  // Layer 0 alone equals the input prompt in add mode, bit for bit.
  std::vector<torch::Tensor> first(L, torch::zeros({1, kPrompt, kHidden}));
  first[0] = deep.select(1, 0);
  EXPECT_TRUE(torch::equal(model.mask_logits_deep(batch, first, index, kLabels),
                           model.mask_logits(batch, deep.select(1, 0), index, PromptMode::kAdd, kLabels)));
}

}  // namespace

TEST(ModelParity, DeepPromptTied) { expect_deep_parity(tiny_model("tied", true), 1e-6); }
TEST(ModelParity, DeepPromptUntiedOneLayer) {
  expect_deep_parity(tiny_model("untied", false), 1e-6);
  expect_deep_parity(tiny_model("one_layer", true, 1), 1e-6);
}

TEST(Model, DeepPromptBadShapesAreRejected) {
  auto model = Roberta::load(tiny_model("tied", true));
  const auto batch = make_batch(true);
  std::vector<torch::Tensor> layers(2, torch::zeros({1, kPrompt, kHidden}));
  EXPECT_THROW(model.mask_logits_deep(batch, {layers[0]}, torch::Tensor(), kLabels), bbt::Error);
  layers[1] = torch::zeros({1, kPrompt + 1, kHidden});
  EXPECT_THROW(model.mask_logits_deep(batch, layers, torch::Tensor(), kLabels), bbt::Error);
  layers[0] = torch::zeros({2, kPrompt, kHidden});
  layers[1] = torch::zeros({3, kPrompt, kHidden});
  EXPECT_THROW(model.mask_logits_deep(batch, layers, torch::zeros({4}, torch::kLong), kLabels), bbt::Error);
}

TEST(Model, LayerInputsMatchTheReference) {
  const auto dir = tiny_model("three_layers", true, 3);
  auto model = Roberta::load(dir);
  Reference ref(dir);
  const auto batch = make_batch(true);
  const auto got = model.layer_inputs(batch.ids[1]);  // [L-1, len, H]
  const std::int64_t len = static_cast<std::int64_t>(batch.ids[1].size());
  ASSERT_EQ(got.sizes(), (std::vector<std::int64_t>{2, len, kHidden}));
  // The reference's hidden states entering layers 1 and 2.
  auto x =
      ref.w.at("roberta.embeddings.word_embeddings.weight")
          .index_select(0, torch::tensor(batch.ids[1], torch::kLong)) +
      ref.w.at("roberta.embeddings.token_type_embeddings.weight")[0] +
      ref.w.at("roberta.embeddings.position_embeddings.weight")
          .index_select(0, torch::arange(ref.c.pad_token_id + 1, ref.c.pad_token_id + 1 + len, torch::kLong));
  x = ref.ln(x, "roberta.embeddings.LayerNorm");
  for (std::int64_t l = 0; l < 2; ++l) {
    x = ref.layer(x, l);
    EXPECT_LE(max_diff(got[l], x), 1e-5) << "layer " << l + 1;
  }
}

TEST(ModelParity, AddModeWithPromptsTied) { expect_parity(tiny_model("tied", true), PromptMode::kAdd, true); }
TEST(ModelParity, AddModeNoPromptTied) { expect_parity(tiny_model("tied", true), PromptMode::kAdd, false); }
TEST(ModelParity, CatModeWithPromptsTied) { expect_parity(tiny_model("tied", true), PromptMode::kCat, true); }
TEST(ModelParity, AddModeUntied) { expect_parity(tiny_model("untied", false), PromptMode::kAdd, true); }
TEST(ModelParity, CatModeUntied) { expect_parity(tiny_model("untied", false), PromptMode::kCat, true); }
TEST(ModelParity, OneLayerAndZeroLayers) {
  expect_parity(tiny_model("one_layer", true, 1), PromptMode::kAdd, true);
  expect_parity(tiny_model("zero_layers", true, 0), PromptMode::kCat, true);
}

// The feature baselines' features: every token's last-layer state, and <s>'s alone, against the
// float64 reference, in chunks smaller than the batch (rows of different lengths, padded).
TEST(ModelFeatures, HiddenStatesMatchFloat64Reference) {
  const std::string dir = tiny_model("tied", true);
  bbt::model::LoadOptions o;
  o.max_batch = 3;  // the four rows in two chunks
  const auto model = Roberta::load(dir, o);
  Reference ref(dir);
  const auto batch = make_batch(false);
  const auto all = model.hidden_states(batch.ids, false);  // [sum of lengths, H]
  const auto first = model.hidden_states(batch.ids, true);  // [rows, H]
  ASSERT_EQ(first.sizes(), (std::vector<std::int64_t>{4, kHidden}));
  double worst = 0;
  std::int64_t at = 0;
  for (std::size_t r = 0; r < batch.ids.size(); ++r) {
    std::int64_t shift = 0;
    const auto want = ref.states(batch.ids[r], torch::Tensor(), PromptMode::kAdd, shift);  // [L, H]
    const auto len = static_cast<std::int64_t>(batch.ids[r].size());
    worst = std::max(worst, max_diff(all.narrow(0, at, len), want));
    worst = std::max(worst, max_diff(first[static_cast<std::int64_t>(r)], want[0]));
    EXPECT_EQ(max_diff(first[static_cast<std::int64_t>(r)], all[at]), 0.0);  // the same <s> row
    at += len;
  }
  EXPECT_EQ(all.size(0), at);
  EXPECT_LE(worst, 1e-4);
  std::printf("hidden states: max |ours - float64 reference| = %.3g\n", worst);
  EXPECT_GT(all.abs().max().item<double>(), 0.1);
  // One word-embedding matrix (the tied decoder is the same memory) plus the rest.
  EXPECT_GT(model.parameter_bytes(), 4 * kVocab * kHidden);
  EXPECT_LT(model.parameter_bytes(), 2 * 4 * kVocab * kHidden);
}

TEST(Model, ZeroPromptEqualsNoPromptInAddMode) {
  auto model = Roberta::load(tiny_model("tied", true));
  const auto batch = make_batch(true);
  const auto index = torch::zeros({4}, torch::kLong);
  const auto none = model.mask_logits(batch, torch::Tensor(), torch::Tensor(), PromptMode::kAdd, kLabels);
  const auto zero =
      model.mask_logits(batch, torch::zeros({1, kPrompt, kHidden}), index, PromptMode::kAdd, kLabels);
  EXPECT_TRUE(torch::equal(none, zero));
  const auto some = model.mask_logits(batch, random_prompts(1, 5), index, PromptMode::kAdd, kLabels);
  EXPECT_GT(max_diff(none, some), 1e-3);  // and a non-zero prompt does change them
}

TEST(Model, PaddingAndBatchCompositionInvariance) {
  const auto dir = tiny_model("tied", true);
  auto model = Roberta::load(dir);
  bbt::model::LoadOptions small;
  small.max_batch = 1;
  auto chunked = Roberta::load(dir, small);
  for (auto mode : {PromptMode::kAdd, PromptMode::kCat}) {
    const auto batch = make_batch(mode == PromptMode::kAdd);
    const auto prompts = random_prompts(2, 9);
    const auto index = torch::tensor(std::vector<std::int64_t>{0, 1, 1, 0}, torch::kLong);
    const auto all = model.mask_logits(batch, prompts, index, mode, kLabels);
    EXPECT_LE(max_diff(all, chunked.mask_logits(batch, prompts, index, mode, kLabels)), 1e-5);
    for (std::size_t r = 0; r < batch.ids.size(); ++r) {
      MaskBatch one{{batch.ids[r]}, {batch.mask_pos[r]}};
      const auto alone = model.mask_logits(one, prompts, index.narrow(0, r, 1), mode, kLabels);
      EXPECT_LE(max_diff(alone[0], all[r]), 1e-5) << "row " << r;
    }
    // Reordered batch: row 2 (the shortest) first.
    MaskBatch re{{batch.ids[2], batch.ids[1]}, {batch.mask_pos[2], batch.mask_pos[1]}};
    const auto idx2 = torch::tensor(
        std::vector<std::int64_t>{index[2].item<std::int64_t>(), index[1].item<std::int64_t>()});
    const auto r2 = model.mask_logits(re, prompts, idx2, mode, kLabels);
    EXPECT_LE(max_diff(r2[0], all[2]), 1e-5);
    EXPECT_LE(max_diff(r2[1], all[1]), 1e-5);
  }
}

TEST(Model, LengthGroupsMatchOnePaddedPassAndAreDeterministic) {
  // 40 rows of 1..30 text tokens in chunks of 32: length grouping splits each chunk into several
  // passes; logits must match one padded pass per chunk, row for row, and repeat bit for bit.
  const auto dir = tiny_model("tied", true);
  bbt::model::LoadOptions grouped, padded;
  grouped.max_batch = padded.max_batch = 32;
  padded.length_groups = false;
  auto a = Roberta::load(dir, grouped);
  auto b = Roberta::load(dir, padded);
  bbt::Rng rng(3);
  MaskBatch batch;
  std::vector<std::int64_t> which;
  for (int r = 0; r < 40; ++r) {
    std::vector<std::int64_t> row{0};
    for (std::int64_t i = 0; i < kPrompt; ++i) row.push_back(1000 + i);
    const int text = 1 + static_cast<int>(rng.uniform() * 30);
    for (int i = 0; i < text; ++i) row.push_back(10 + static_cast<std::int64_t>(rng.uniform() * 500));
    batch.mask_pos.push_back(static_cast<std::int64_t>(row.size()) - 1);
    row.push_back(2);
    batch.ids.push_back(row);
    which.push_back(r % 3);
  }
  const auto prompts = random_prompts(3, 11);
  const auto index = torch::tensor(which, torch::kLong);
  const auto got = a.mask_logits(batch, prompts, index, PromptMode::kAdd, kLabels);
  EXPECT_LE(max_diff(got, b.mask_logits(batch, prompts, index, PromptMode::kAdd, kLabels)), 1e-5);
  EXPECT_TRUE(torch::equal(got, a.mask_logits(batch, prompts, index, PromptMode::kAdd, kLabels)));
}

TEST(Model, VerbalizerHeadEqualsFullVocabularyGather) {
  const auto dir = tiny_model("untied", false);
  auto model = Roberta::load(dir);
  Reference ref(dir);
  const auto batch = make_batch(true);
  const auto prompts = random_prompts(1, 4);
  const auto index = torch::zeros({4}, torch::kLong);
  const auto all_ids = torch::arange(kVocab, torch::kLong);
  const auto full = model.mask_logits(batch, prompts, index, PromptMode::kAdd, all_ids);  // [4, V]
  const auto some = model.mask_logits(batch, prompts, index, PromptMode::kAdd, kLabels);
  EXPECT_LE(max_diff(full.index_select(1, kLabels), some), 1e-6);
  for (std::size_t r = 0; r < 4; ++r)
    EXPECT_LE(
        max_diff(full[r], ref.full_logits(batch.ids[r], batch.mask_pos[r], prompts[0], PromptMode::kAdd)),
        1e-4);
}

TEST(Model, DecoderBiasUnderEitherName) {
  const auto dir = tiny_model("tied", true);
  const auto renamed = scratch() + "/renamed_bias";
  fs::create_directories(renamed);
  fs::copy_file(dir + "/config.json", renamed + "/config.json", fs::copy_options::overwrite_existing);
  auto st = bbt::model::SafetensorsFile::open(dir + "/model.safetensors");
  std::vector<std::pair<std::string, torch::Tensor>> w;
  for (const auto& n : st.names())
    w.emplace_back(n == "lm_head.bias" ? "lm_head.decoder.bias" : n, st.tensor(n));
  w.emplace_back("roberta.pooler.dense.weight", torch::zeros({kHidden, kHidden}));  // extra: ignored
  bbt::model::write_safetensors(renamed + "/model.safetensors", w);
  const auto batch = make_batch(true);
  const auto a = Roberta::load(dir).mask_logits(batch, {}, {}, PromptMode::kAdd, kLabels);
  const auto b = Roberta::load(renamed).mask_logits(batch, {}, {}, PromptMode::kAdd, kLabels);
  EXPECT_TRUE(torch::equal(a, b));
}

TEST(Model, WordEmbeddingStd) {
  const auto dir = tiny_model("tied", true);
  auto st = bbt::model::SafetensorsFile::open(dir + "/model.safetensors");
  const double want =
      st.tensor("roberta.embeddings.word_embeddings.weight").to(torch::kFloat64).std().item<double>();
  EXPECT_NEAR(Roberta::load(dir).word_embedding_std(), want, 1e-6);
  EXPECT_NEAR(want, 0.1, 0.005);  // the init std
}

namespace {

// Copies a model with one tensor dropped or replaced, and returns the load error.
std::string load_error_after(const std::string& name, const torch::Tensor& replacement) {
  const auto dir = tiny_model("tied", true);
  const auto bad = scratch() + "/broken";
  fs::remove_all(bad);
  fs::create_directories(bad);
  fs::copy_file(dir + "/config.json", bad + "/config.json");
  auto st = bbt::model::SafetensorsFile::open(dir + "/model.safetensors");
  std::vector<std::pair<std::string, torch::Tensor>> w;
  for (const auto& n : st.names()) {
    if (n != name) {
      w.emplace_back(n, st.tensor(n));
    } else if (replacement.defined()) {
      w.emplace_back(n, replacement);
    }
  }
  bbt::model::write_safetensors(bad + "/model.safetensors", w);
  try {
    Roberta::load(bad);
  } catch (const bbt::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(ModelLoad, MissingTensorIsNamed) {
  const std::string name = "roberta.encoder.layer.1.output.dense.bias";
  const auto msg = load_error_after(name, torch::Tensor());
  EXPECT_NE(msg.find("missing tensor '" + name + "'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
}

TEST(ModelLoad, MisShapedTensorIsNamed) {
  const std::string name = "roberta.encoder.layer.0.intermediate.dense.weight";
  const auto msg = load_error_after(name, torch::zeros({64, kHidden + 1}));
  EXPECT_NE(msg.find("tensor '" + name + "' has shape [64, 33], expected [64, 32]"), std::string::npos)
      << msg;
}

TEST(ModelLoad, MissingBiasIsNamed) {
  const auto msg = load_error_after("lm_head.bias", torch::Tensor());
  EXPECT_NE(msg.find("lm_head.decoder.bias"), std::string::npos) << msg;
}

TEST(ModelLoad, NonFiniteWeightsAreRefusedNamingFileAndTensor) {
  const std::string name = "roberta.encoder.layer.1.attention.self.key.weight";
  torch::Tensor w = torch::randn({kHidden, kHidden});
  w[3][4] = std::numeric_limits<float>::quiet_NaN();
  auto msg = load_error_after(name, w);
  EXPECT_NE(msg.find("broken/model.safetensors: tensor '" + name +
                     "' holds 1 non-finite value (NaN or Inf) of 1024"),
            std::string::npos)
      << msg;
  const std::string ln = "roberta.embeddings.LayerNorm.bias";
  msg = load_error_after(ln, torch::full({kHidden}, std::numeric_limits<float>::infinity()));
  EXPECT_NE(msg.find("tensor '" + ln + "' holds 32 non-finite values"), std::string::npos) << msg;
}

TEST(ModelLoad, NonFinitePromptFilesAreRefusedNamingFileAndTensor) {
  torch::Tensor p = torch::randn({5, kHidden});
  p[0][0] = std::numeric_limits<float>::quiet_NaN();
  const std::string npy = scratch() + "/nan_prompt.npy";
  bbt::model::write_npy(npy, p);
  try {
    bbt::model::read_prompt_file(npy, 5, kHidden);
    ADD_FAILURE() << "no error";
  } catch (const bbt::Error& e) {
    EXPECT_EQ(std::string(e.what()), npy + ": tensor 'prompt' holds 1 non-finite value (NaN or Inf) of 160");
  }
  const std::string st = scratch() + "/inf_prompt.safetensors";
  p[0][0] = -std::numeric_limits<float>::infinity();
  bbt::model::write_safetensors(st, {{"init", p}});
  try {
    bbt::model::read_prompt_file(st, 5, kHidden);
    ADD_FAILURE() << "no error";
  } catch (const bbt::Error& e) {
    EXPECT_EQ(std::string(e.what()), st + ": tensor 'init' holds 1 non-finite value (NaN or Inf) of 160");
  }
  p[0][0] = 0.5f;
  bbt::model::write_npy(npy, p);
  EXPECT_TRUE(torch::equal(bbt::model::read_prompt_file(npy, 5, kHidden), p));
}

TEST(ModelLoad, ConfigErrorsNameFileAndKey) {
  const auto dir = scratch() + "/badcfg";
  fs::create_directories(dir);
  std::ofstream(dir + "/config.json") << R"({"vocab_size": 1100, "hidden_size": 32})";
  try {
    bbt::model::read_config(dir + "/config.json");
    FAIL() << "no error";
  } catch (const bbt::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("badcfg/config.json"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'num_hidden_layers'"), std::string::npos) << msg;
  }
  std::ofstream(dir + "/config.json") << R"({"vocab_size": "big"})";
  try {
    bbt::model::read_config(dir + "/config.json");
    FAIL() << "no error";
  } catch (const bbt::Error& e) {
    EXPECT_NE(std::string(e.what()).find("'vocab_size' is not an integer"), std::string::npos) << e.what();
  }
}

TEST(ModelInput, BadInputsAreRejected) {
  auto model = Roberta::load(tiny_model("tied", true));
  auto batch = make_batch(true);
  batch.mask_pos[1] = 100;
  EXPECT_THROW(model.mask_logits(batch, {}, {}, PromptMode::kAdd, kLabels), bbt::Error);
  batch = make_batch(true);
  batch.ids[0][3] = kVocab;
  EXPECT_THROW(model.mask_logits(batch, {}, {}, PromptMode::kAdd, kLabels), bbt::Error);
  batch = make_batch(true);
  EXPECT_THROW(model.mask_logits(batch, random_prompts(2, 1), torch::full({4}, 2, torch::kLong),
                                 PromptMode::kAdd, kLabels),
               bbt::Error);
  // Longer than the position table allows (max_positions 40 - padding_idx 1 - 1 = 38 tokens): the
  // error names the model, its max_position_embeddings and what would fit.
  batch.ids[0].resize(39, 5);
  try {
    model.mask_logits(batch, {}, {}, PromptMode::kAdd, kLabels);
    ADD_FAILURE() << "no error";
  } catch (const bbt::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("row 0 has 39 tokens, more than the 38 that model " + tiny_model("tied", true) +
                       " allows (max_position_embeddings 40 in its config.json"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("use a model with max_position_embeddings >= 41"), std::string::npos) << msg;
  }
}

TEST(Projection, DeterministicPinnedValues) {
  using bbt::model::Projection;
  using bbt::model::ProjectionKind;
  Projection a(10, 3, 8, ProjectionKind::kNormal, 0.5, 42);
  Projection b(10, 3, 8, ProjectionKind::kNormal, 0.5, 42);
  Projection c(10, 3, 8, ProjectionKind::kNormal, 0.5, 43);
  EXPECT_TRUE(torch::equal(a.matrix(), b.matrix()));
  EXPECT_FALSE(torch::equal(a.matrix(), c.matrix()));
  ASSERT_EQ(a.matrix().sizes(), (std::vector<std::int64_t>{24, 10}));
  // Pinned: a change here changes every run's prompts.
  const float* p = a.matrix().data_ptr<float>();
  EXPECT_FLOAT_EQ(p[0], -0.363109559f);
  EXPECT_FLOAT_EQ(p[1], -0.105598457f);
  EXPECT_FLOAT_EQ(p[2], 0.110811353f);
  Projection u(10, 3, 8, ProjectionKind::kUniform, 0.0, 42);
  const float* q = u.matrix().data_ptr<float>();
  EXPECT_FLOAT_EQ(q[0], -0.263188154f);
  EXPECT_FLOAT_EQ(q[1], -0.0765396133f);
  EXPECT_FLOAT_EQ(q[2], 0.113869451f);
}

TEST(Projection, StdAndProject) {
  using bbt::model::Projection;
  using bbt::model::ProjectionKind;
  Projection a(50, 4, 32, ProjectionKind::kNormal, 0.25, 7);
  EXPECT_NEAR(a.matrix().std().item<double>(), 0.25, 0.25 * 0.02);
  EXPECT_NEAR(a.matrix().mean().item<double>(), 0.0, 0.01);
  Projection u(50, 4, 32, ProjectionKind::kUniform, 0.0, 7);
  const double bound = 1.0 / std::sqrt(50.0);
  EXPECT_LE(u.matrix().abs().max().item<double>(), bound);
  EXPECT_NEAR(u.matrix().std().item<double>(), bound / std::sqrt(3.0), bound * 0.02);
  torch::manual_seed(1);
  const auto z = torch::randn({3, 50});
  const auto p = a.project(z);  // [3, 4, 32]
  ASSERT_EQ(p.sizes(), (std::vector<std::int64_t>{3, 4, 32}));
  for (int i = 0; i < 3; ++i)
    EXPECT_LE(
        max_diff(p[i].reshape({-1}), torch::mv(a.matrix().to(torch::kFloat64), z[i].to(torch::kFloat64))),
        1e-5);
  EXPECT_THROW(a.project(torch::zeros({3, 49})), bbt::Error);
}

// A candidate's prompt is the same bits whichever candidates share the call and whatever the
// thread count: the job's rank-count independence rests on it (BLAS rounds a row of a matrix
// product differently for different row counts, under every OpenBLAS kernel set).
TEST(Projection, RowsIndependentOfCandidateCountAndThreads) {
  using bbt::model::Projection;
  using bbt::model::ProjectionKind;
  Projection a(500, 10, 64, ProjectionKind::kNormal, 0.05, 11);  // A [640, 500]
  torch::manual_seed(2);
  const auto z = torch::randn({20, 500}, torch::kFloat64);
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const auto all = a.project(z);  // [20, 10, 64]
  for (int t : {1, 2}) {
    at::set_num_threads(t);
    for (std::int64_t count : {1, 2, 3, 7, 13, 20})
      for (std::int64_t lo = 0; lo + count <= 20; lo += count)
        EXPECT_TRUE(torch::equal(a.project(z.narrow(0, lo, count)), all.narrow(0, lo, count)))
            << "candidates " << lo << ".." << lo + count - 1 << ", " << t << " thread(s)";
  }
  at::set_num_threads(threads);
}


// ---- The differentiable forward (gradient-based methods) ----

namespace {

// A float64 copy of a tiny model with every weight trainable, a prompt [n, H] and a prefix
// [L, 2, m, H] that require grad, and a fixed random linear functional of the logits as the loss.
struct GradSetup {
  Roberta model;
  torch::Tensor prompt, prefix, weights;
  MaskBatch batch = make_batch(false);
  GradSetup(const std::string& dir, std::int64_t layers)
      : model([&] {
          bbt::model::LoadOptions o;
          o.dtype = torch::kFloat64;
          return Roberta::load(dir, o).trainable_copy();
        }()) {
    torch::manual_seed(31);
    prompt = (torch::randn({3, kHidden}, torch::kFloat64) * 0.5).set_requires_grad(true);
    prefix = (torch::randn({layers, 2, 2, kHidden}, torch::kFloat64) * 0.5).set_requires_grad(true);
    weights = torch::randn({static_cast<std::int64_t>(batch.ids.size()), kLabels.size(0)}, torch::kFloat64);
  }
  torch::Tensor loss() const { return (model.mask_logits_grad(batch, prompt, prefix, kLabels) * weights).sum(); }
};

// Central differences at entry i of t (a leaf of s) against the autograd gradient g; returns the
// relative error.
double check_entry(GradSetup& s, const torch::Tensor& t, const torch::Tensor& g, std::int64_t i) {
  const double eps = 1e-6;
  auto flat = t.detach().view(-1);
  const double x = flat[i].item<double>();
  torch::NoGradGuard no_grad;
  flat[i] = x + eps;
  const double up = s.loss().item<double>();
  flat[i] = x - eps;
  const double down = s.loss().item<double>();
  flat[i] = x;
  const double fd = (up - down) / (2 * eps), ad = g.reshape(-1)[i].item<double>();
  return std::abs(fd - ad) / std::max({std::abs(fd), std::abs(ad), 1e-6});
}

}  // namespace

TEST(ModelGrad, AutogradMatchesCentralDifferencesInFloat64) {
  GradSetup s(tiny_model("untied", false), 2);
  const auto params = s.model.named_parameters();
  s.loss().backward();
  double worst = 0;
  std::int64_t checked = 0;
  auto check = [&](const std::string& what, const torch::Tensor& t) {
    ASSERT_TRUE(t.grad().defined()) << what;
    const auto g = t.grad().clone();
    EXPECT_GT(g.abs().max().item<double>(), 1e-8) << what << ": no gradient reaches it";
    // Three entries: the largest gradient and two fixed ones.
    for (std::int64_t i : {g.abs().reshape(-1).argmax().item<std::int64_t>(), t.numel() / 3, t.numel() - 1}) {
      const double rel = check_entry(s, t, g, i);
      EXPECT_LE(rel, 1e-5) << what << " entry " << i;
      worst = std::max(worst, rel);
      ++checked;
    }
  };
  check("prompt", s.prompt);
  check("prefix", s.prefix);
  // Every weight tensor model tuning trains (each kind of every layer, the embeddings and the head).
  for (const auto& [name, t] : params) check(name, t);
  EXPECT_EQ(params.size(), 5u + 12u * 2 + 6u);  // untied: the decoder weight is its own tensor
  std::printf("gradient check: %lld entries, worst relative error %.3g\n", static_cast<long long>(checked), worst);
}

TEST(ModelGrad, TrainableCopyKeepsTyingAndLeavesTheOriginalAlone) {
  const auto dir = tiny_model("tied", true);
  const auto model = Roberta::load(dir);
  auto copy = model.trainable_copy();
  const auto params = copy.named_parameters();
  for (const auto& [name, t] : params) {
    EXPECT_TRUE(t.requires_grad()) << name;
    EXPECT_NE(name, "head.decoder.weight");  // tied: trained once, as the word embeddings
  }
  // 5 embedding tensors, 12 per layer, 4 head + decoder bias.
  EXPECT_EQ(params.size(), 5u + 12u * 2 + 5u);
  const auto batch = make_batch(false);
  const auto before = model.mask_logits(batch, random_prompts(1, 4), torch::zeros({4}, torch::kLong),
                                        PromptMode::kCat, kLabels);
  {
    torch::NoGradGuard no_grad;
    params[0].second.add_(torch::randn_like(params[0].second) * 0.5);  // the word embeddings, and the tied decoder
  }
  const auto moved = copy.mask_logits(batch, random_prompts(1, 4), torch::zeros({4}, torch::kLong),
                                      PromptMode::kCat, kLabels);
  EXPECT_GT(max_diff(before, moved), 1e-3);
  EXPECT_TRUE(torch::equal(before, model.mask_logits(batch, random_prompts(1, 4), torch::zeros({4}, torch::kLong),
                                                     PromptMode::kCat, kLabels)));
}

TEST(ModelGrad, ForwardMatchesInferenceAndAOneLayerPrefixEqualsTheCatPrompt) {
  const auto dir = tiny_model("one_layer", true, 1);
  const auto model = Roberta::load(dir);
  const auto batch = make_batch(false);
  const auto p = random_prompts(1, 6);  // [1, n, H]
  const auto want = model.mask_logits(batch, p, torch::zeros({4}, torch::kLong), PromptMode::kCat, kLabels);
  const auto got = model.mask_logits_grad(batch, p[0], torch::Tensor(), kLabels);
  EXPECT_LE(max_diff(got, want), 1e-5);
  // One layer: the mask row sees the prompt rows only as keys and values, so the prefix
  // (W_k p + b_k, W_v p + b_v) gives the same logits with no prompt rows at all.
  const auto params = model.named_parameters();
  const auto w = params[5].second, b = params[6].second;  // layer.0.qkv
  ASSERT_EQ(params[5].first, "layer.0.qkv.weight");
  const auto kv = torch::linear(p[0], w, b).view({kPrompt, 3, kHidden});  // [n, 3, H]
  const auto prefix = torch::stack({kv.select(1, 1), kv.select(1, 2)}).unsqueeze(0);  // [1, 2, n, H]
  EXPECT_LE(max_diff(model.mask_logits_grad(batch, torch::Tensor(), prefix, kLabels), want), 1e-5);
  EXPECT_GT(max_diff(model.mask_logits_grad(batch, torch::Tensor(), torch::Tensor(), kLabels), want), 1e-3);
  EXPECT_THROW(model.mask_logits_grad(batch, torch::zeros({2, kHidden + 1}), torch::Tensor(), kLabels),
               bbt::Error);
  EXPECT_THROW(model.mask_logits_grad(batch, torch::Tensor(), torch::zeros({2, 2, 2, kHidden}), kLabels),
               bbt::Error);
}

// Weights in memory shared between processes (one copy per node, model::LoadOptions::shared), two
// "ranks" in one process: the first converts the checkpoint into an mmap()ed block, the second
// wraps the same bytes; after publishing the block is read-only (PROT_READ), as the cluster layer
// maps it. Both give the logits, fingerprint and std of an ordinary load bit for bit, and a
// trainable_copy() of a sharing model is its own memory (an in-place update of it would fault).
TEST(ModelLoad, SharedWeightsAreWrappedNotCopiedAndStayReadOnly) {
  const auto dir = tiny_model("untied", false);
  const auto plain = Roberta::load(dir);
  struct Block {
    char* data = nullptr;
    std::size_t bytes = 0, asked = 0, published = 0;
  };
  auto block = std::make_shared<Block>();
  auto sharing = [&](bool fill) {
    auto s = std::make_shared<bbt::model::SharedWeights>();
    s->allocate = [block, fill](std::size_t bytes) -> bbt::model::WeightBlock {
      ++block->asked;
      if (block->data == nullptr) {
        block->bytes = bytes;
        void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        EXPECT_NE(p, MAP_FAILED);
        block->data = static_cast<char*>(p);
      }
      EXPECT_EQ(bytes, block->bytes);
      return {block->data, fill};
    };
    s->published = [block](bool ok) {
      ++block->published;
      EXPECT_TRUE(ok);
      EXPECT_EQ(mprotect(block->data, block->bytes, PROT_READ), 0);
      return ok;
    };
    bbt::model::LoadOptions o;
    o.shared = s;
    return o;
  };
  const auto first = Roberta::load(dir, sharing(true));
  const auto second = Roberta::load(dir, sharing(false));
  EXPECT_EQ(block->asked, 2u);
  EXPECT_EQ(block->published, 2u);
  EXPECT_FALSE(plain.shares_weights());
  EXPECT_TRUE(first.shares_weights() && second.shares_weights());
  EXPECT_EQ(first.weights_address(), second.weights_address());  // one copy
  EXPECT_GE(static_cast<const char*>(first.weights_address()), block->data);
  EXPECT_LT(static_cast<const char*>(first.weights_address()), block->data + block->bytes);
  EXPECT_EQ(second.fingerprint(), plain.fingerprint());
  EXPECT_EQ(second.word_embedding_std(), plain.word_embedding_std());
  const auto batch = make_batch(true);
  const auto index = torch::tensor({0, 1, 0, 1}, torch::kLong);
  const auto prompts = random_prompts(2, 7);
  const auto want = plain.mask_logits(batch, prompts, index, PromptMode::kAdd, kLabels);
  EXPECT_TRUE(torch::equal(first.mask_logits(batch, prompts, index, PromptMode::kAdd, kLabels), want));
  EXPECT_TRUE(torch::equal(second.mask_logits(batch, prompts, index, PromptMode::kAdd, kLabels), want));
  // Model tuning writes into its trainable copy: never the shared (read-only) block.
  auto copy = second.trainable_copy();
  for (const auto& [name, t] : copy.named_parameters()) {
    const auto* p = static_cast<const char*>(t.data_ptr());
    EXPECT_TRUE(p < block->data || p >= block->data + block->bytes) << name;
    torch::NoGradGuard no_grad;
    t.add_(1e-3);
  }
  EXPECT_TRUE(torch::equal(second.mask_logits(batch, prompts, index, PromptMode::kAdd, kLabels), want));
}

// A filler that fails (a NaN in the checkpoint) publishes its failure; the others then fail too.
TEST(ModelLoad, SharedWeightsFillerFailureReachesTheOthers) {
  const auto dir = tiny_model("untied", false);
  auto nan_dir = scratch() + "/shared_nan";
  fs::remove_all(nan_dir);
  fs::create_directories(nan_dir);
  fs::copy(dir, nan_dir, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  {
    auto st = bbt::model::SafetensorsFile::open(dir + "/model.safetensors");
    std::vector<std::pair<std::string, torch::Tensor>> ts;
    for (const auto& name : st.names()) {
      auto t = st.tensor(name);
      if (name == "lm_head.dense.bias") t[0] = std::numeric_limits<float>::quiet_NaN();
      ts.emplace_back(name, t);
    }
    bbt::model::write_safetensors(nan_dir + "/model.safetensors", ts);
  }
  std::vector<char> memory(1 << 22);
  std::vector<int> verdicts;
  auto options = [&](bool fill) {
    auto s = std::make_shared<bbt::model::SharedWeights>();
    s->allocate = [&memory, fill](std::size_t bytes) -> bbt::model::WeightBlock {
      EXPECT_LE(bytes + 64, memory.size());
      auto at = reinterpret_cast<std::uintptr_t>(memory.data());
      return {memory.data() + (64 - at % 64) % 64, fill};
    };
    s->published = [&verdicts, fill](bool ok) {
      if (fill) verdicts.push_back(ok ? 1 : 0);
      return verdicts.empty() ? true : verdicts.back() != 0;
    };
    bbt::model::LoadOptions o;
    o.shared = s;
    return o;
  };
  try {
    Roberta::load(nan_dir, options(true));
    FAIL() << "the filler loaded NaN weights";
  } catch (const bbt::Error& e) {
    EXPECT_NE(std::string(e.what()).find("lm_head.dense.bias' holds 1 non-finite value"), std::string::npos) << e.what();
  }
  ASSERT_EQ(verdicts, std::vector<int>{0});
  try {
    Roberta::load(nan_dir, options(false));
    FAIL() << "a sharer went on after the filler failed";
  } catch (const bbt::Error& e) {
    EXPECT_NE(std::string(e.what()).find("the node's first rank failed to load it"), std::string::npos) << e.what();
  }
}

// bbt::core::Evaluator and the share split: the logits of a (candidate, example) pair are the
// same bits whichever rank computes them, i.e. whatever the rank count, in both prompt modes.
// `-np 1/2/3` giving the same run rests on it; the MPI tests check that end to end, this test at
// its source, under every BLAS kernel set CTest forces (OPENBLAS_CORETYPE).
#include "bbt/core/evaluator.hpp"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <Eigen/Core>
#include <cstring>
#include <vector>

#include "bbt/cluster/mpi.hpp"
#include "bbt/common/error.hpp"
#include "bbt/common/rng.hpp"
#include "bbt/core/layer_stats.hpp"
#include "bbt/core/losses.hpp"
#include "bbt/core/tuning.hpp"
#include "bbt/model/projection.hpp"
#include "bbt/model/roberta.hpp"
#include "tiny_fixture.hpp"

namespace {

using bbt::core::EncodedSplit;
using bbt::core::Evaluator;
using bbt::model::PromptMode;

constexpr std::int64_t kVocab = 1100, kHidden = 64, kPrompt = 5, kDim = 40, kChunk = 8;

const bbt::model::Roberta& tiny() {
  static const bbt::model::Roberta model = [] {
    bbt::model::TinyModelOptions o;
    o.out_dir = bbt_test::scratch("bbt_evaluator_test") + "/model";
    o.layers = 2;
    o.hidden = kHidden;
    o.heads = 4;
    o.intermediate = 128;
    o.seed = 5;
    o.init_std = 0.1;
    o.vocab_from = bbt_test::write_vocab(bbt_test::scratch("bbt_evaluator_test") + "/vocab", kVocab);
    bbt::model::LoadOptions lo;
    lo.max_batch = kChunk;
    return bbt::model::Roberta::load(bbt_test::tiny_model(o), lo);
  }();
  return model;
}

// n examples of 8..30 words: <s>, placeholders 1000.. (add mode), random words, <mask>, </s>.
EncodedSplit examples(std::int64_t n, PromptMode mode, std::uint64_t seed) {
  bbt::Rng rng(seed);
  EncodedSplit s;
  for (std::int64_t i = 0; i < n; ++i) {
    std::vector<std::int64_t> ids{0};
    if (mode == PromptMode::kAdd)
      for (std::int64_t p = 0; p < kPrompt; ++p) ids.push_back(1000 + p);
    const auto words = 8 + static_cast<std::int64_t>(rng.uniform() * 22);
    for (std::int64_t w = 0; w < words; ++w)
      ids.push_back(4 + static_cast<std::int64_t>(rng.uniform() * 190));
    s.mask_pos.push_back(static_cast<std::int64_t>(ids.size()));
    ids.push_back(kVocab - 1);
    ids.push_back(2);
    s.ids.push_back(ids);
    s.labels.push_back(i % 2);
  }
  return s;
}

Eigen::MatrixXd candidates(int count, std::uint64_t seed) {
  bbt::Rng rng(seed);
  Eigen::MatrixXd z(kDim, count);
  for (Eigen::Index i = 0; i < z.size(); ++i) z.data()[i] = rng.normal();
  return z;
}

Evaluator evaluator(PromptMode mode) {
  const double sigma = 100 * tiny().word_embedding_std() / std::sqrt(double(kDim));
  bbt::model::Projection a(kDim, kPrompt, kHidden, bbt::model::ProjectionKind::kNormal, sigma, 9);
  return Evaluator(tiny(), std::move(a), {}, {10, 11, 12}, mode, kChunk);
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

class EvaluatorShares : public ::testing::TestWithParam<PromptMode> {};

// Every rank count from 1 to 5 (more ranks than chunks included): the concatenated shares equal
// the one-rank logits bit for bit, at 1 and at 2 threads per rank. (Between thread counts the bits
// may differ: OpenBLAS's AVX2/AVX-512 sgemm rounds differently for different thread counts.)
TEST_P(EvaluatorShares, RankCountDoesNotChangeABit) {
  const PromptMode mode = GetParam();
  const Evaluator ev = evaluator(mode);
  const EncodedSplit split = examples(13, mode, 3);
  const Eigen::MatrixXd z = candidates(7, 4);
  const std::int64_t pairs = z.cols() * split.size();  // 91 pairs in 12 chunks
  const int threads = at::get_num_threads();
  for (int t : {1, 2}) {
    at::set_num_threads(t);
    const std::vector<float> whole = ev.pair_logits(z, split, 0, pairs);
    ASSERT_EQ(whole.size(), static_cast<std::size_t>(pairs * ev.num_labels()));
    for (int ranks = 2; ranks <= 5; ++ranks) {
      std::vector<float> joined;
      for (int r = 0; r < ranks; ++r) {
        const bbt::cluster::Range mine = bbt::cluster::chunked_share(pairs, kChunk, r, ranks);
        const std::vector<float> part = ev.pair_logits(z, split, mine.begin, mine.end);
        joined.insert(joined.end(), part.begin(), part.end());
      }
      EXPECT_TRUE(same_bits(joined, whole)) << ranks << " ranks, " << t << " thread(s)";
    }
  }
  at::set_num_threads(threads);
}

// The prompt does reach the logits (the test above would pass trivially otherwise).
TEST_P(EvaluatorShares, CandidatesGiveDifferentLogits) {
  const PromptMode mode = GetParam();
  const Evaluator ev = evaluator(mode);
  const EncodedSplit split = examples(4, mode, 3);
  const std::vector<float> l = ev.pair_logits(candidates(2, 4), split, 0, 8);
  const std::size_t half = l.size() / 2;
  EXPECT_FALSE(std::equal(l.begin(), l.begin() + half, l.begin() + half));
}

INSTANTIATE_TEST_SUITE_P(Modes, EvaluatorShares, ::testing::Values(PromptMode::kAdd, PromptMode::kCat),
                         [](const auto& info) { return info.param == PromptMode::kAdd ? "add" : "cat"; });

// ---- BBT-Adam: the gradient with respect to z through BBT's prompt p = A z (+ p0) ----

// The tiny model, the projection and p0 in float64: central differences need the precision.
Evaluator evaluator64(PromptMode mode) {
  tiny();  // writes the model directory
  static const bbt::model::Roberta model = [] {
    bbt::model::LoadOptions lo;
    lo.max_batch = kChunk;
    lo.dtype = torch::kFloat64;
    return bbt::model::Roberta::load(bbt_test::scratch("bbt_evaluator_test") + "/model", lo);
  }();
  const double sigma = 100 * model.word_embedding_std() / std::sqrt(double(kDim));
  bbt::model::Projection a(kDim, kPrompt, kHidden, bbt::model::ProjectionKind::kNormal, sigma, 9, torch::kCPU,
                           torch::kFloat64);
  torch::Tensor p0;
  if (mode == PromptMode::kCat) {
    torch::manual_seed(3);
    p0 = torch::randn({kPrompt, kHidden}, torch::kFloat64) * 0.3;
  }
  return Evaluator(model, std::move(a), p0, {10, 11, 12}, mode, kChunk);
}

std::vector<double> z_vector(std::uint64_t seed, double scale) {
  const Eigen::MatrixXd z = candidates(1, seed) * scale;
  return std::vector<double>(z.data(), z.data() + z.size());
}

class SubspaceGradient : public ::testing::TestWithParam<PromptMode> {};

// grad_z = A^T grad_p against central differences of the loss sum with respect to z, in float64,
// with a logit scale (the demo's loss.logit_scale = 10 is a temperature inside the loss).
TEST_P(SubspaceGradient, MatchesCentralDifferencesInFloat64) {
  const PromptMode mode = GetParam();
  const Evaluator ev = evaluator64(mode);
  const EncodedSplit split = examples(7, mode, 3);
  const std::vector<std::int64_t> rows{6, 0, 3, 4, 1};
  const double scale = 2.5;
  std::vector<double> z = z_vector(4, 0.5);
  const auto g = bbt::core::subspace_chunk_gradient(ev, z, split, rows, scale);
  ASSERT_EQ(g.grad.size(), static_cast<std::size_t>(kDim));
  double largest = 0;
  std::size_t top = 0;
  for (std::size_t i = 0; i < g.grad.size(); ++i)
    if (std::abs(g.grad[i]) > largest) largest = std::abs(g.grad[i]), top = i;
  EXPECT_GT(largest, 1e-4) << "no gradient reaches z";
  double worst = 0;
  for (std::size_t i : {top, std::size_t{0}, std::size_t{kDim / 2}, std::size_t{kDim - 1}}) {
    const double eps = 1e-6, x = z[i];
    z[i] = x + eps;
    const double up = bbt::core::subspace_chunk_gradient(ev, z, split, rows, scale).loss_sum;
    z[i] = x - eps;
    const double down = bbt::core::subspace_chunk_gradient(ev, z, split, rows, scale).loss_sum;
    z[i] = x;
    const double fd = (up - down) / (2 * eps), ad = g.grad[i];
    const double rel = std::abs(fd - ad) / std::max({std::abs(fd), std::abs(ad), 1e-6});
    EXPECT_LE(rel, 1e-6) << "z entry " << i << ": autograd " << ad << ", central difference " << fd;
    worst = std::max(worst, rel);
  }
  std::printf("subspace gradient check (%s): worst relative error %.3g\n", mode == PromptMode::kAdd ? "add" : "cat",
              worst);
}

// In the float32 model BBT runs, the gradient pass's loss is the one CMA-ES is told: the Scorer's
// ce of BBT's own forward (pair_logits) for the same z, and the prompt is BBT's, bit for bit.
TEST_P(SubspaceGradient, LossIsBbtsLossOfTheSamePrompt) {
  const PromptMode mode = GetParam();
  const Evaluator ev = evaluator(mode);
  const EncodedSplit split = examples(9, mode, 5);
  const std::vector<double> z = z_vector(8, 1.0);
  std::vector<std::int64_t> rows;
  std::vector<int> labels;
  for (std::int64_t r = 0; r < split.size(); ++r) rows.push_back(r), labels.push_back(static_cast<int>(split.labels[r]));
  const double scale = 10;
  const auto g = bbt::core::subspace_chunk_gradient(ev, z, split, rows, scale);
  const Eigen::Map<const Eigen::VectorXd> zm(z.data(), kDim);
  const std::vector<float> logits = ev.pair_logits(zm, split, 0, split.size());
  const auto m = bbt::core::logits_from(logits.data(), static_cast<std::size_t>(split.size()), 3);
  const double bbt_loss = bbt::core::loss(bbt::core::LossType::ce, m, labels, 2, scale);
  EXPECT_NEAR(g.loss_sum / static_cast<double>(split.size()), bbt_loss, 1e-4 * std::max(1.0, bbt_loss));
  const torch::Tensor want = ev.projection().project(torch::from_blob(const_cast<double*>(z.data()), {1, kDim},
                                                                      torch::kFloat64).to(torch::kFloat32))[0];
  EXPECT_TRUE(torch::equal(bbt::core::subspace_prompt(ev, z), want));
}

INSTANTIATE_TEST_SUITE_P(Modes, SubspaceGradient, ::testing::Values(PromptMode::kAdd, PromptMode::kCat),
                         [](const auto& info) { return info.param == PromptMode::kAdd ? "add" : "cat"; });

// BBTv2: one projection per layer (layer 1 at ten times layer 0's scale, as the hidden states are).
Evaluator deep_evaluator() {
  Evaluator ev = evaluator(PromptMode::kAdd);
  std::vector<bbt::model::Projection> layers{ev.projection()};
  layers.emplace_back(kDim, kPrompt, kHidden, bbt::model::ProjectionKind::kNormal,
                      10 / std::sqrt(double(kDim)), 19);
  ev.set_deep(std::move(layers));
  return ev;
}

// A training step's candidates (one layer replaced in the rank's best deep prompt) give the same bits
// whatever the rank count, and the same bits as the whole deep prompts scored as dev scores them.
TEST(DeepEvaluator, LayerCandidatesAreRankCountFreeAndMatchWholeDeepPrompts) {
  Evaluator ev = deep_evaluator();
  const EncodedSplit split = examples(13, PromptMode::kAdd, 3);
  const Eigen::MatrixXd base = candidates(2, 8);  // column l: the best z of layer l
  for (std::int64_t l = 0; l < 2; ++l) ev.set_base_layer(l, base.col(l));
  const Eigen::MatrixXd z = candidates(7, 4);
  const std::int64_t pairs = z.cols() * split.size();
  for (std::int64_t layer : {0, 1}) {
    const std::vector<float> whole = ev.pair_logits_layer(layer, z, split, 0, pairs);
    for (int ranks = 2; ranks <= 5; ++ranks) {
      std::vector<float> joined;
      for (int r = 0; r < ranks; ++r) {
        const bbt::cluster::Range mine = bbt::cluster::chunked_share(pairs, kChunk, r, ranks);
        const std::vector<float> part = ev.pair_logits_layer(layer, z, split, mine.begin, mine.end);
        joined.insert(joined.end(), part.begin(), part.end());
      }
      EXPECT_TRUE(same_bits(joined, whole)) << "layer " << layer << ", " << ranks << " ranks";
    }
    Eigen::MatrixXd full(2 * kDim, z.cols());  // the same candidates as whole deep prompts [L*d]
    for (Eigen::Index c = 0; c < z.cols(); ++c) {
      full.col(c).head(kDim) = layer == 0 ? Eigen::VectorXd(z.col(c)) : Eigen::VectorXd(base.col(0));
      full.col(c).tail(kDim) = layer == 1 ? Eigen::VectorXd(z.col(c)) : Eigen::VectorXd(base.col(1));
    }
    EXPECT_TRUE(same_bits(ev.pair_logits(full, split, 0, pairs), whole)) << "layer " << layer;
  }
  // Both layers move the logits.
  const std::vector<float> zero = ev.pair_logits(Eigen::MatrixXd::Zero(2 * kDim, 1), split, 0, split.size());
  for (std::int64_t layer : {0, 1}) {
    Eigen::MatrixXd one = Eigen::MatrixXd::Zero(2 * kDim, 1);
    one.block(layer * kDim, 0, kDim, 1) = base.col(layer);
    EXPECT_FALSE(same_bits(ev.pair_logits(one, split, 0, split.size()), zero)) << "layer " << layer;
  }
  // The dense kept prompt is A_l z_l per layer.
  Eigen::VectorXd kept(2 * kDim);
  kept << base.col(0), base.col(1);
  const torch::Tensor dense = ev.deep_prompt(kept);
  ASSERT_EQ(dense.sizes(), (std::vector<std::int64_t>{2, kPrompt, kHidden}));
}

// The clipped layer statistics have the values of a direct float64 computation (np.clip rounds,
// np.mean, np.std). That any rank count gives the same bits is checked under mpirun
// (tests/mpi/bbtv2_ranks_agree.sh): each row's sums depend on that row alone.
TEST(LayerStats, AsTheReferenceComputesThem) {
  const EncodedSplit split = examples(9, PromptMode::kAdd, 5);
  const auto stats = bbt::core::layer_stats_local(tiny(), split);
  ASSERT_EQ(stats.size(), 1u);
  std::vector<torch::Tensor> rows;
  for (const auto& ids : split.ids)
    rows.push_back(tiny().layer_inputs(ids)[0].reshape({-1}).to(torch::kFloat64));
  torch::Tensor h = torch::cat(rows);
  double mu = h.mean().item<double>(), sd = h.std(/*unbiased=*/false).item<double>();
  const double raw_sd = sd;
  for (int round = 0; round < 5; ++round) {
    h = h.clamp(mu - 3 * sd, mu + 3 * sd);
    mu = h.mean().item<double>();
    sd = h.std(false).item<double>();
  }
  EXPECT_NEAR(stats[0].mean, mu, 1e-12 * std::max(1.0, std::abs(mu)));
  EXPECT_NEAR(stats[0].stddev, sd, 1e-10 * sd);
  EXPECT_GT(sd, 0.1);
  EXPECT_LE(sd, raw_sd);
  // The same bits again (no dependence on anything but the rows).
  const auto again = bbt::core::layer_stats_local(tiny(), split);
  EXPECT_EQ(std::memcmp(&again[0], &stats[0], sizeof(stats[0])), 0);
}

TEST(ChunkedShare, WholeChunksCoverEveryPairOnce) {
  for (std::int64_t total : {0, 1, 7, 8, 9, 91, 640}) {
    for (int size = 1; size <= 6; ++size) {
      std::int64_t next = 0;
      for (int r = 0; r < size; ++r) {
        const bbt::cluster::Range m = bbt::cluster::chunked_share(total, kChunk, r, size);
        EXPECT_EQ(m.begin, next) << total << " pairs, rank " << r << " of " << size;
        EXPECT_LE(m.begin, m.end);
        // Every share starts on a chunk boundary, so chunks never depend on the rank count.
        EXPECT_EQ(m.begin % kChunk, 0);
        next = m.end;
      }
      EXPECT_EQ(next, total);
    }
  }
  // Chunks are dealt evenly: 12 chunks over 5 ranks -> 2, 2, 3, 2, 3.
  EXPECT_EQ(bbt::cluster::chunked_share(91, kChunk, 0, 5).size(), 16);
  EXPECT_EQ(bbt::cluster::chunked_share(91, kChunk, 4, 5).size(), 19);
}

}  // namespace

// ---- Model tuning: AdamW over every weight, split over threads ----

// WeightTuner::update shares its entries over the intra-op threads; each entry's arithmetic is its
// own, so 1, 2 and 3 threads give the same weights and moments bit for bit (and a checkpoint's
// parts set back give the same next step).
TEST(WeightTuner, UpdateBitsDoNotDependOnTheThreadCount) {
  const bbt::model::Roberta& model = tiny();
  const int threads_before = at::get_num_threads();
  std::vector<std::vector<std::vector<float>>> results;
  for (int threads : {1, 2, 3}) {
    at::set_num_threads(threads);
    bbt::core::WeightTuner tuner(model);
    bbt::Rng rng(5);
    std::vector<float> g(static_cast<std::size_t>(tuner.size()));
    bbt::core::AdamW a;
    a.lr = 1e-3;
    a.weight_decay = 0.01;
    for (a.t = 0; a.t < 3; ++a.t) {
      for (float& x : g) x = static_cast<float>(rng.normal());
      tuner.update(g, a);
    }
    std::vector<std::vector<float>> parts;
    for (int k = 0; k < bbt::core::WeightTuner::kParts; ++k) parts.push_back(tuner.state(k));
    results.push_back(parts);
  }
  at::set_num_threads(threads_before);
  for (std::size_t r = 1; r < results.size(); ++r)
    for (int k = 0; k < bbt::core::WeightTuner::kParts; ++k)
      EXPECT_EQ(std::memcmp(results[r][k].data(), results[0][k].data(), sizeof(float) * results[0][k].size()), 0)
          << (r + 1) << " threads, part " << k;
  // The update moved the weights; the kept copy (never kept) is the start.
  bbt::core::WeightTuner fresh(model);
  EXPECT_NE(results[0][bbt::core::WeightTuner::kPartWeights], fresh.state(bbt::core::WeightTuner::kPartWeights));
  EXPECT_EQ(results[0][bbt::core::WeightTuner::kPartKept], fresh.state(bbt::core::WeightTuner::kPartKept));
  // set_state of every part reproduces the tuner: one more step from either gives the same bits.
  for (int k = 0; k < bbt::core::WeightTuner::kParts; ++k) fresh.set_state(k, results[0][k]);
  for (int k = 0; k < bbt::core::WeightTuner::kParts; ++k) EXPECT_EQ(fresh.state(k), results[0][k]);
  EXPECT_THROW(fresh.set_state(0, std::vector<float>(3)), bbt::Error);
}

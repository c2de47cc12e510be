#pragma once
// In-context learning (the paper's baseline after GPT-3): each input is preceded by up to m train
// examples drawn at random (seeded per input), each filled into the task's template with its label
// word in place of <mask>; the model scores the input's own <mask>. Nothing is trained.
#include <cstdint>
#include <vector>

#include "bbt/methods/method.hpp"

namespace bbt::methods {

// Inputs with their demonstrations, and which train examples each used.
struct IclInputs {
  core::EncodedSplit inputs;
  std::vector<std::vector<std::int64_t>> demos;  // per input: train positions, in input order
};

// For each row of `split`: draw min(m, train size) distinct train positions with Rng(derive_seed(
// derive_seed(seed, stream), row)) (a partial Fisher-Yates shuffle), then drop the LAST drawn ones
// until <s> + demonstrations + the row's own template + </s> fits max_len; the row is never cut.
// A demonstration is a train row without <s> and </s>, its <mask> replaced by label_ids[label].
IclInputs icl_inputs(const core::EncodedSplit& split, const core::EncodedSplit& train,
                     const std::vector<std::int64_t>& label_ids, int m, std::uint64_t seed,
                     std::uint64_t stream, std::size_t max_len);

class Icl final : public NoStepMethod {
 public:
  // max_len: positions the model takes (512 for RoBERTa).
  Icl(int demonstrations, std::uint64_t seed, std::vector<std::int64_t> label_ids, std::size_t max_len,
      std::int64_t n_dev, std::int64_t n_test);

  std::vector<ArraySpec> arrays() const override;
  Fit fit(cluster::Cluster& cluster, const core::Scorer& scorer, FitProgress& progress) override;
  std::vector<float> split_logits(cluster::Cluster& cluster, cluster::Split split,
                                  const Eigen::VectorXd& kept) override;

 private:
  const IclInputs& inputs_for(const cluster::Cluster& cluster, cluster::Split split);

  int m_;
  std::uint64_t seed_;
  std::vector<std::int64_t> label_ids_;
  std::size_t max_len_;
  std::int64_t n_dev_, n_test_;
  IclInputs dev_, test_;
  bool built_ = false;
};

}  // namespace bbt::methods

#pragma once
// The paper's feature baselines: the frozen model is queried once per split for last-layer hidden
// states (computed by every rank on whole chunks, gathered on rank 0), and rank 0 trains a small
// classifier on the k-shot train features with full-batch Adam, keeping the epoch with the best dev
// metric (early stopping). Feature-MLP: <s>'s state -> Linear -> ReLU -> Linear. Feature-BiLSTM:
// every token's state -> bidirectional LSTM -> both final states -> Linear.
#include <torch/torch.h>

#include <cstdint>
#include <memory>

#include "bbt/methods/method.hpp"

namespace bbt::methods {

enum class FeatureHead { kMlp, kBilstm };

struct ClassifierOptions {
  FeatureHead head = FeatureHead::kMlp;
  int hidden = 128, epochs = 200, patience = 20;
  double lr = 1e-3, weight_decay = 0;
  std::uint64_t seed = 42;
  std::int64_t hidden_size = 0;  // the language model's H
  std::int64_t num_labels = 2;
};

class FeatureClassifier final : public NoStepMethod {
 public:
  explicit FeatureClassifier(const ClassifierOptions& options);
  ~FeatureClassifier() override;

  // Per epoch: train loss (cross-entropy), train accuracy, dev metric, dev loss.
  std::vector<SeriesSpec> series() const override;
  Fit fit(cluster::Cluster& cluster, const core::Scorer& scorer, FitProgress& progress) override;
  std::vector<float> split_logits(cluster::Cluster& cluster, cluster::Split split,
                                  const Eigen::VectorXd& kept) override;

 private:
  struct Net;
  core::RowQuery query() const;
  // Rows of a split as the head takes them: [n, H] (MLP) or padded [n, L, H] with lengths.
  struct Features {
    torch::Tensor x, lengths;
  };
  Features features(cluster::Cluster& cluster, const core::EncodedSplit& split, cluster::EvalCosts* costs);
  torch::Tensor logits(const Features& f);  // [n, K] float32

  ClassifierOptions options_;
  std::unique_ptr<Net> net_;
  Features dev_features_;  // queried once: early stopping and the dev score read them
};

}  // namespace bbt::methods

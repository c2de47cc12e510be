#pragma once
// The cluster as rank 0 sees it: `evaluate(split, z)` returns the verbalizer logits of every
// (candidate, example) pair, computed by all ranks, each on an equal share of whole chunks; the
// other ranks `serve()` until rank 0 says stop. The transport (command headers, broadcasts,
// gathers) never shows to callers.
#include <Eigen/Core>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "bbt/cluster/mpi.hpp"
#include "bbt/core/evaluator.hpp"
#include "bbt/core/layer_stats.hpp"
#include "bbt/core/tuning.hpp"

namespace bbt::cluster {

enum class Split { kTrain, kDev, kTest };

// The tokenized examples every rank holds (rank 0 reads them and broadcasts).
struct Splits {
  core::EncodedSplit train, dev, test;
  const core::EncodedSplit& operator[](Split s) const {
    return s == Split::kTrain ? train : s == Split::kDev ? dev : test;
  }
};

// What one evaluation cost, as rank 0 records it. Bytes are the logical payload (z's out,
// logits back) per rank; the clocks are each rank's forward and in-MPI seconds since its last
// report, reported after every training evaluation ([forward, comm] per rank).
struct EvalCosts {
  double forward = 0, comm = 0;  // rank 0's own forward and gather seconds
  std::vector<double> bytes_sent, bytes_received;
  std::vector<double> rank_forward, rank_comm;
};

// What one gradient request gave rank 0: sums over the step's rows (chunk sums added in chunk
// order, so any rank count gives the same bits).
struct Gradient {
  double loss_sum = 0;
  std::int64_t correct = 0;
  std::vector<double> grad;
};

// Test-only hooks on the serving ranks; production jobs leave them empty.
struct ServeHooks {
  std::function<void(int rank, Split split)> after_evaluate;
};

class Cluster {
 public:
  // Collective: broadcasts rank 0's splits to every rank. dim: rows of every z matrix.
  Cluster(MpiSession& mpi, core::Evaluator& evaluator, Splits splits, int dim);

  bool is_root() const { return mpi_.rank() == 0; }
  int size() const { return mpi_.size(); }
  const core::EncodedSplit& split(Split s) const { return splits_[s]; }
  const core::Evaluator& evaluator() const { return evaluator_; }

  // Rank 0: logits [z.cols() x split size x K] row-major (candidate-major), float32.
  std::vector<float> evaluate(Split split, const Eigen::MatrixXd& z, EvalCosts* costs = nullptr);
  // Rank 0, BBTv2: logits as evaluate(kTrain, ...) of candidates that are the best deep prompt
  // `base` (the L z's end to end) with layer `layer` replaced by A_layer z.col(c) (z: d x C). Only
  // the base layers that changed since the last call travel (as z's), never a dense prompt.
  std::vector<float> evaluate_layer(int layer, const Eigen::MatrixXd& z, const Eigen::VectorXd& base,
                                    EvalCosts* costs = nullptr);
  // Collective (every rank, before serve()): core::clipped_layer_stats of the train split. Rows
  // are shared over ranks; each row's sums are taken in one fixed order and rank 0 adds them in
  // row order, so any rank count gives the same bits. Every rank gets the result.
  std::vector<core::LayerStats> layer_input_stats();
  // Rank 0: the outputs of `query` for every row of `inputs` (sent to every rank), rows in order;
  // each rank computes its share of whole chunks, so the bits never depend on the rank count.
  // Costs: bytes as above (token ids out, outputs back).
  std::vector<float> query(core::RowQuery query, const core::EncodedSplit& inputs, EvalCosts* costs = nullptr);
  // What query() moves for `inputs` over all ranks: {token-id bytes out, output bytes back}.
  std::pair<double, double> query_bytes(core::RowQuery query, const core::EncodedSplit& inputs) const;
  // Rank 0: every rank's peak host RSS, peak device memory and current PSS (bytes), as
  // {rss, device, pss} per rank in rank order (3 x ranks values).
  std::vector<double> peak_memory();
  // Rank 0, gradient-based methods: the cross-entropy loss sum, correct count and gradient sum of
  // the train rows `rows` under the tuned parameters `params` (every rank gets them), computed in
  // chunks of chunk_rows consecutive entries of `rows`, whole chunks per rank; rank 0 adds the
  // chunks' results in chunk order. Costs: parameters and row ids out, chunk results back. The loss
  // is the cross-entropy of logits x logit_scale. kind = kSubspace: params is z [d], the prompt is
  // each rank's A z (+ p0) in its evaluator's mode, the gradient is with respect to z.
  Gradient gradient(core::Tuned kind, const std::vector<double>& params, const std::vector<std::int64_t>& rows,
                    std::int64_t chunk_rows, EvalCosts* costs = nullptr, double logit_scale = 1.0);
  // Rank 0: logits [split size x K] of the tuned parameters, rows shared as evaluate's (kSubspace:
  // evaluate(split, z), the same bits).
  std::vector<float> tuned_logits(Split split, core::Tuned kind, const std::vector<double>& params);
  // Model tuning (every weight trained; core::WeightTuner). The weights never travel: every rank
  // holds its trainable copy and applies the same update, so the copies stay identical.
  // Rank 0: every rank starts from a fresh trainable copy of its model (moments zero), unless a
  // checkpoint set its state already (weights_set_state); returns the number of trainable entries.
  std::int64_t weights_start();
  // Model tuning's checkpoint (core::WeightTuner::state parts). Rank 0's own copy of a part (every
  // rank holds the same), no communication; and, collective, every rank's part set to rank 0's values.
  std::vector<float> weights_state(int part);
  void weights_set_state(int part, const std::vector<float>& values);
  // Rank 0: as gradient(), over every rank's current weights: each rank's chunks' gradients
  // (float32) are gathered on rank 0 and added in chunk order in float64. Costs: row ids out, chunk
  // results back, and the update's gradient out (weights_update).
  Gradient weights_gradient(const std::vector<std::int64_t>& rows, std::int64_t chunk_rows, EvalCosts* costs = nullptr);
  // Rank 0: every rank applies AdamW step `a` with gradient g (rounded to float32 once, on rank 0).
  void weights_update(const std::vector<double>& g, const core::AdamW& a);
  // Rank 0: every rank keeps its current weights (the kept copy dev selects).
  void weights_keep();
  // Rank 0: logits [split size x K] under the current (or kept) weights, rows shared as evaluate's.
  std::vector<float> weights_logits(Split split, bool kept);
  // Rank 0: every rank's fingerprints of its {current, kept} weights, in rank order.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> weights_fingerprints();
  // Rank 0: whether any rank received a stop signal (SIGTERM, SIGUSR1) since the job began.
  bool stop_requested();
  // Rank 0: tells the serving ranks to return `code` from serve().
  void finish(int code);
  // Ranks other than 0: serve rank 0's requests until finish(); returns its code.
  int serve(const ServeHooks& hooks = {});

 private:
  // layer >= 0: BBTv2's candidates for that layer (z: d x C) around the base prompt.
  std::vector<float> evaluate_share(Split split, const Eigen::MatrixXd& z, EvalCosts* costs, int layer = -1);
  // Every rank: the base layers named in `layers` become A_l of the matching d-blocks of `zs`.
  void set_base_layers(const std::vector<std::int64_t>& layers, const double* zs);
  std::vector<float> train_clock_report(std::vector<float> logits, EvalCosts* costs);
  std::vector<double> report_clocks();
  std::vector<double> gather_memory();
  void serve_layer(std::int64_t cols);
  Gradient gradient_share(core::Tuned kind, const std::vector<double>& params, const std::vector<std::int64_t>& rows,
                          std::int64_t chunk_rows, double logit_scale);
  std::vector<float> tuned_logits_share(Split split, core::Tuned kind, const std::vector<double>& params);
  std::vector<float> query_share(core::RowQuery query, const core::EncodedSplit& inputs, EvalCosts* costs);
  void serve_weights(std::int64_t what);
  core::WeightTuner& tuner();
  Gradient weights_gradient_share(const std::vector<std::int64_t>& rows, std::int64_t chunk_rows);
  std::vector<float> weights_logits_share(Split split, bool kept);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> weights_fingerprints_share();

  MpiSession& mpi_;
  core::Evaluator& evaluator_;
  Splits splits_;
  int dim_;
  std::unique_ptr<core::WeightTuner> tuner_;  // model tuning: this rank's trainable copy
  Eigen::VectorXd sent_base_;  // rank 0, BBTv2: the base z's the other ranks hold
  // This rank's seconds in forward passes and inside MPI calls since it last reported them.
  double clock_forward_ = 0, clock_comm_ = 0;
};

// SIGTERM and SIGUSR1 set a flag the cluster's stop check reads (a signal handler can only set a
// flag); install once per process, before the job starts.
void install_stop_signals();

}  // namespace bbt::cluster

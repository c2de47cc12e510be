#include "bbt/cluster/cluster.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>

#include "bbt/common/error.hpp"
#include "bbt/common/memory.hpp"
#include "bbt/model/device_memory.hpp"

namespace bbt::cluster {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

volatile std::sig_atomic_t g_stop_signal = 0;
extern "C" void on_stop_signal(int sig) { g_stop_signal = sig; }

// The first word of every request rank 0 broadcasts: what all ranks do next.
enum Command : std::int64_t {
  kStop = 0,
  kTrain = 1,
  kDev = 2,
  kTest = 3,
  kSync = 4,
  kTrainLayer = 5,
  kQuery = 6,
  kGradient = 7,
  kTunedLogits = 8,
  kMemory = 9,
  kWeights = 10  // model tuning; the header's second word is a WeightsOp
};

// What a kWeights request asks of every rank's trainable copy.
enum WeightsOp : std::int64_t {
  kStart = 0,
  kGrad = 1,
  kUpdate = 2,
  kKeep = 3,
  kLogits = 4,
  kFingerprints = 5,
  kSetState = 6
};

// The evaluation commands and their splits, both ways.
constexpr std::pair<Command, Split> kEvaluations[] = {
    {kTrain, Split::kTrain}, {kDev, Split::kDev}, {kTest, Split::kTest}};

Command command_of(Split s) {
  for (auto [command, split] : kEvaluations)
    if (split == s) return command;
  throw Error("internal: no command for the split");
}

// The split an evaluation command asks for; false for other commands.
bool split_of(std::int64_t command, Split& out) {
  for (auto [c, split] : kEvaluations)
    if (c == command) {
      out = split;
      return true;
    }
  return false;
}

}  // namespace

void install_stop_signals() {
  std::signal(SIGTERM, on_stop_signal);
  std::signal(SIGUSR1, on_stop_signal);
}

Cluster::Cluster(MpiSession& mpi, core::Evaluator& evaluator, Splits splits, int dim)
    : mpi_(mpi), evaluator_(evaluator), dim_(dim) {
  for (auto [from, to] : {std::pair{&splits.train, &splits_.train},
                          {&splits.dev, &splits_.dev},
                          {&splits.test, &splits_.test}}) {
    std::vector<std::int64_t> packed = from->pack();
    broadcast(packed, 0);
    *to = core::EncodedSplit::unpack(packed);
  }
}

// Collective: every rank evaluates its share of Z's columns on the split; rank 0 gets the logits.
std::vector<float> Cluster::evaluate_share(Split split, const Eigen::MatrixXd& z, EvalCosts* costs,
                                           int layer) {
  const core::EncodedSplit& examples = splits_[split];
  const std::int64_t pairs = z.cols() * examples.size();
  const Range mine = chunked_share(pairs, evaluator_.chunk_rows(), mpi_.rank(), mpi_.size());
  const auto t0 = Clock::now();
  const std::vector<float> local =
      layer >= 0 ? evaluator_.pair_logits_layer(layer, z, examples, mine.begin, mine.end)
                 : evaluator_.pair_logits(z, examples, mine.begin, mine.end);
  const auto t1 = Clock::now();
  std::vector<float> all = gather(local, 0);
  const double forward_s = std::chrono::duration<double>(t1 - t0).count(), gather_s = seconds_since(t1);
  clock_forward_ += forward_s;
  clock_comm_ += gather_s;
  if (costs) {
    costs->forward += forward_s;
    costs->comm += gather_s;
    const double k = static_cast<double>(evaluator_.num_labels());
    const double z_bytes = 8.0 * static_cast<double>(z.size() + 3);  // header + size + payload
    costs->bytes_sent.assign(mpi_.size(), 0.0);
    costs->bytes_received.assign(mpi_.size(), 0.0);
    for (int r = 1; r < mpi_.size(); ++r) {
      const double logit_bytes =
          4.0 * k * static_cast<double>(chunked_share(pairs, evaluator_.chunk_rows(), r, mpi_.size()).size());
      costs->bytes_sent[r] = logit_bytes;
      costs->bytes_received[r] = z_bytes;
      costs->bytes_sent[0] += z_bytes;
      costs->bytes_received[0] += logit_bytes;
    }
  }
  return all;
}

// Collective, after every training evaluation: each rank's clocks to rank 0 as [forward, comm]
// per rank (rank 0 gets 2 x ranks values, the others none); the clocks restart.
std::vector<double> Cluster::report_clocks() {
  const std::vector<double> mine{clock_forward_, clock_comm_};
  clock_forward_ = clock_comm_ = 0;
  return gather_fixed(mine, 0);
}

std::vector<float> Cluster::evaluate(Split split, const Eigen::MatrixXd& z, EvalCosts* costs) {
  const auto t0 = Clock::now();
  std::vector<std::int64_t> header{command_of(split), z.cols()};
  broadcast(header, 0);
  std::vector<double> flat(z.data(), z.data() + z.size());
  broadcast(flat, 0);
  clock_comm_ += seconds_since(t0);
  std::vector<float> logits = evaluate_share(split, z, costs);
  if (split == Split::kTrain) return train_clock_report(std::move(logits), costs);
  return logits;
}

std::vector<float> Cluster::train_clock_report(std::vector<float> logits, EvalCosts* costs) {
  const std::vector<double> clocks = report_clocks();
  if (costs) {
    costs->rank_forward.assign(mpi_.size(), 0.0);
    costs->rank_comm.assign(mpi_.size(), 0.0);
    for (std::size_t r = 0; r < costs->rank_forward.size(); ++r) {
      costs->rank_forward[r] = clocks[2 * r];
      costs->rank_comm[r] = clocks[2 * r + 1];
    }
  }
  return logits;
}

void Cluster::set_base_layers(const std::vector<std::int64_t>& layers, const double* zs) {
  const std::int64_t d = evaluator_.projection().dim();
  for (std::size_t i = 0; i < layers.size(); ++i)
    evaluator_.set_base_layer(layers[i],
                              Eigen::Map<const Eigen::VectorXd>(zs + static_cast<std::int64_t>(i) * d, d));
}

std::vector<float> Cluster::evaluate_layer(int layer, const Eigen::MatrixXd& z, const Eigen::VectorXd& base,
                                           EvalCosts* costs) {
  const auto t0 = Clock::now();
  const std::int64_t d = evaluator_.projection().dim(), L = evaluator_.deep_layers();
  if (!evaluator_.deep() || z.rows() != d || base.size() != L * d || layer < 0 || layer >= L)
    throw Error("evaluate_layer: needs a deep evaluator, z of d rows and a base of L*d");
  if (sent_base_.size() != base.size()) sent_base_ = Eigen::VectorXd::Zero(base.size());
  // Header: command, candidates; then the layer and the changed base layers; then their z's and Z.
  std::vector<std::int64_t> header{kTrainLayer, z.cols()};
  broadcast(header, 0);
  std::vector<std::int64_t> layers{layer};
  std::vector<double> flat;
  for (std::int64_t l = 0; l < L; ++l) {
    const double* now = base.data() + l * d;
    if (std::memcmp(now, sent_base_.data() + l * d, sizeof(double) * static_cast<std::size_t>(d)) == 0)
      continue;
    layers.push_back(l);
    flat.insert(flat.end(), now, now + d);
  }
  flat.insert(flat.end(), z.data(), z.data() + z.size());
  broadcast(layers, 0);
  broadcast(flat, 0);
  clock_comm_ += seconds_since(t0);
  set_base_layers(std::vector<std::int64_t>(layers.begin() + 1, layers.end()), flat.data());
  sent_base_ = base;
  const std::size_t changed = layers.size() - 1;
  const Eigen::Map<const Eigen::MatrixXd> zm(flat.data() + changed * d, d, z.cols());
  std::vector<float> logits = evaluate_share(Split::kTrain, zm, costs, layer);
  if (costs) {  // the header, the layer list and the changed base z's travel too
    const double extra = 8.0 * static_cast<double>(layers.size() + 1 + changed * d);
    for (int r = 1; r < mpi_.size(); ++r) {
      costs->bytes_received[r] += extra;
      costs->bytes_sent[0] += extra;
    }
  }
  return train_clock_report(std::move(logits), costs);
}

std::vector<core::LayerStats> Cluster::layer_input_stats() {
  const core::EncodedSplit& train = splits_.train;
  const Range mine = chunked_share(train.size(), 1, mpi_.rank(), mpi_.size());
  std::vector<torch::Tensor> inputs;  // this rank's rows: [L-1, len, H] float32 each
  for (std::int64_t r = mine.begin; r < mine.end; ++r)
    inputs.push_back(evaluator_.model().layer_inputs(train.ids[static_cast<std::size_t>(r)]).contiguous());
  const std::int64_t layers = std::max<std::int64_t>(0, evaluator_.model().config().num_hidden_layers - 1);
  // Ranks hold consecutive rows, so rank order is row order: rank 0 adds them in that order.
  return core::clipped_layer_stats(inputs, layers, [&](const std::vector<double>& rows) {
    std::vector<double> total = core::sum_rows_in_order(gather(rows, 0), layers);
    broadcast(total, 0);
    return total;
  });
}

// Collective: every rank runs its chunks of the inputs' rows; rank 0 gets all outputs in row order.
std::vector<float> Cluster::query_share(core::RowQuery query, const core::EncodedSplit& inputs, EvalCosts* costs) {
  const Range mine = chunked_share(inputs.size(), evaluator_.chunk_rows(), mpi_.rank(), mpi_.size());
  const auto t0 = Clock::now();
  const std::vector<float> local = evaluator_.row_outputs(query, inputs, mine.begin, mine.end);
  const auto t1 = Clock::now();
  std::vector<float> all = gather(local, 0);
  const double forward_s = std::chrono::duration<double>(t1 - t0).count(), gather_s = seconds_since(t1);
  clock_forward_ += forward_s;
  clock_comm_ += gather_s;
  if (costs) {
    costs->forward += forward_s;
    costs->comm += gather_s;
    costs->bytes_sent.assign(mpi_.size(), 0.0);
    costs->bytes_received.assign(mpi_.size(), 0.0);
    for (int r = 0; r < mpi_.size(); ++r) {
      const Range share = chunked_share(inputs.size(), evaluator_.chunk_rows(), r, mpi_.size());
      double out_bytes = 0, in_bytes = 0;
      for (std::int64_t i = share.begin; i < share.end; ++i) {
        out_bytes += 4.0 * static_cast<double>(evaluator_.row_width(query, inputs, i));
        in_bytes += 8.0 * static_cast<double>(inputs.ids[static_cast<std::size_t>(i)].size() + 3);
      }
      // What the query moves: token ids to the rank that runs a row, its outputs back to rank 0
      // (rank 0's own rows count too: a query is the service's unit, wherever it runs).
      costs->bytes_received[r] = in_bytes;
      costs->bytes_sent[r] = out_bytes;
    }
  }
  return all;
}

std::pair<double, double> Cluster::query_bytes(core::RowQuery query, const core::EncodedSplit& inputs) const {
  double up = 0, down = 0;
  for (std::int64_t i = 0; i < inputs.size(); ++i) {
    up += 8.0 * static_cast<double>(inputs.ids[static_cast<std::size_t>(i)].size() + 3);
    down += 4.0 * static_cast<double>(evaluator_.row_width(query, inputs, i));
  }
  return {up, down};
}

std::vector<float> Cluster::query(core::RowQuery query, const core::EncodedSplit& inputs, EvalCosts* costs) {
  const auto t0 = Clock::now();
  std::vector<std::int64_t> header{kQuery, static_cast<std::int64_t>(query)};
  broadcast(header, 0);
  std::vector<std::int64_t> packed = inputs.pack();
  broadcast(packed, 0);
  clock_comm_ += seconds_since(t0);
  return query_share(query, inputs, costs);
}

// Collective: every rank runs its whole chunks of `rows`; rank 0 gets [loss, correct, grad...] per
// chunk in chunk order and adds them in that order.
Gradient Cluster::gradient_share(core::Tuned kind, const std::vector<double>& params,
                                 const std::vector<std::int64_t>& rows, std::int64_t chunk_rows, double logit_scale) {
  const auto total = static_cast<std::int64_t>(rows.size());
  const Range mine = chunked_share(total, chunk_rows, mpi_.rank(), mpi_.size());
  const auto t0 = Clock::now();
  std::vector<double> local;
  for (std::int64_t r0 = mine.begin; r0 < mine.end; r0 += chunk_rows) {
    const std::vector<std::int64_t> chunk(rows.begin() + r0, rows.begin() + std::min(mine.end, r0 + chunk_rows));
    const core::ChunkGradient g =
        kind == core::Tuned::kSubspace
            ? core::subspace_chunk_gradient(evaluator_, params, splits_.train, chunk, logit_scale)
            : core::chunk_gradient(evaluator_.model(), kind, params, splits_.train, chunk, evaluator_.label_ids(),
                                   logit_scale);
    local.push_back(g.loss_sum);
    local.push_back(static_cast<double>(g.correct));
    local.insert(local.end(), g.grad.begin(), g.grad.end());
  }
  const auto t1 = Clock::now();
  std::vector<double> all = gather(local, 0);
  clock_forward_ += std::chrono::duration<double>(t1 - t0).count();
  clock_comm_ += seconds_since(t1);
  Gradient out;
  if (!is_root()) return out;
  const std::size_t width = params.size() + 2;
  if (all.size() % width != 0) throw Error("protocol error: gradient results of a wrong size");
  out.grad.assign(params.size(), 0.0);
  for (std::size_t at = 0; at < all.size(); at += width) {
    out.loss_sum += all[at];
    out.correct += static_cast<std::int64_t>(all[at + 1]);
    for (std::size_t i = 0; i < params.size(); ++i) out.grad[i] += all[at + 2 + i];
  }
  return out;
}

Gradient Cluster::gradient(core::Tuned kind, const std::vector<double>& params,
                           const std::vector<std::int64_t>& rows, std::int64_t chunk_rows, EvalCosts* costs,
                           double logit_scale) {
  if (chunk_rows < 1) throw Error("gradient: chunk_rows must be >= 1");
  const auto t0 = Clock::now();
  std::vector<std::int64_t> header{kGradient, static_cast<std::int64_t>(kind)};
  broadcast(header, 0);
  std::vector<double> p = params;
  p.push_back(logit_scale);  // travels as the last value
  broadcast(p, 0);
  std::vector<std::int64_t> r{chunk_rows};
  r.insert(r.end(), rows.begin(), rows.end());
  broadcast(r, 0);
  clock_comm_ += seconds_since(t0);
  const auto t1 = Clock::now();
  Gradient g = gradient_share(kind, params, rows, chunk_rows, logit_scale);
  if (costs) {
    costs->forward += seconds_since(t1);
    costs->bytes_sent.assign(mpi_.size(), 0.0);
    costs->bytes_received.assign(mpi_.size(), 0.0);
    const auto total = static_cast<std::int64_t>(rows.size());
    for (int k = 1; k < mpi_.size(); ++k) {
      const Range share = chunked_share(total, chunk_rows, k, mpi_.size());
      const double chunks = static_cast<double>((share.size() + chunk_rows - 1) / chunk_rows);
      const double out = 8.0 * static_cast<double>(params.size() + rows.size() + 4);
      const double back = 8.0 * chunks * static_cast<double>(params.size() + 2);
      costs->bytes_received[k] = out;
      costs->bytes_sent[k] = back;
      costs->bytes_sent[0] += out;
      costs->bytes_received[0] += back;
    }
  }
  return g;
}

std::vector<float> Cluster::tuned_logits_share(Split split, core::Tuned kind, const std::vector<double>& params) {
  const core::EncodedSplit& examples = splits_[split];
  const Range mine = chunked_share(examples.size(), evaluator_.chunk_rows(), mpi_.rank(), mpi_.size());
  const auto t0 = Clock::now();
  const std::vector<float> local = core::tuned_logits(evaluator_.model(), kind, params, examples, mine.begin, mine.end,
                                                      evaluator_.chunk_rows(), evaluator_.label_ids());
  const auto t1 = Clock::now();
  std::vector<float> all = gather(local, 0);
  clock_forward_ += std::chrono::duration<double>(t1 - t0).count();
  clock_comm_ += seconds_since(t1);
  return all;
}

std::vector<float> Cluster::tuned_logits(Split split, core::Tuned kind, const std::vector<double>& params) {
  if (kind == core::Tuned::kSubspace)
    return evaluate(split, Eigen::Map<const Eigen::VectorXd>(params.data(), static_cast<Eigen::Index>(params.size())));
  const auto t0 = Clock::now();
  std::vector<std::int64_t> header{kTunedLogits, static_cast<std::int64_t>(kind)};
  broadcast(header, 0);
  std::vector<std::int64_t> which{command_of(split)};
  broadcast(which, 0);
  std::vector<double> p = params;
  broadcast(p, 0);
  clock_comm_ += seconds_since(t0);
  return tuned_logits_share(split, kind, params);
}

// ---- Model tuning ----

core::WeightTuner& Cluster::tuner() {
  if (!tuner_) throw Error("protocol error: a model-tuning request before its start");
  return *tuner_;
}

std::int64_t Cluster::weights_start() {
  std::vector<std::int64_t> header{kWeights, kStart};
  broadcast(header, 0);
  if (!tuner_) tuner_ = std::make_unique<core::WeightTuner>(evaluator_.model());  // else restored
  return tuner_->size();
}

std::vector<float> Cluster::weights_state(int part) {
  if (!tuner_) tuner_ = std::make_unique<core::WeightTuner>(evaluator_.model());
  return tuner_->state(part);
}

void Cluster::weights_set_state(int part, const std::vector<float>& values) {
  const auto t0 = Clock::now();
  std::vector<std::int64_t> header{kWeights, kSetState};
  broadcast(header, 0);
  std::vector<std::int64_t> which{part};
  broadcast(which, 0);
  std::vector<float> v = values;
  broadcast(v, 0);
  clock_comm_ += seconds_since(t0);
  if (!tuner_) tuner_ = std::make_unique<core::WeightTuner>(evaluator_.model());
  tuner_->set_state(part, v);
}

// Collective: every rank runs its whole chunks of `rows`; rank 0 gets [loss, correct] and the
// float32 gradient of every chunk in chunk order and adds them in that order in float64.
Gradient Cluster::weights_gradient_share(const std::vector<std::int64_t>& rows, std::int64_t chunk_rows) {
  core::WeightTuner& w = tuner();
  const auto total = static_cast<std::int64_t>(rows.size());
  const Range mine = chunked_share(total, chunk_rows, mpi_.rank(), mpi_.size());
  const auto t0 = Clock::now();
  std::vector<double> sums;
  std::vector<float> grads, g;
  for (std::int64_t r0 = mine.begin; r0 < mine.end; r0 += chunk_rows) {
    const std::vector<std::int64_t> chunk(rows.begin() + r0, rows.begin() + std::min(mine.end, r0 + chunk_rows));
    std::int64_t correct = 0;
    sums.push_back(w.chunk_gradient(splits_.train, chunk, evaluator_.label_ids(), correct, g));
    sums.push_back(static_cast<double>(correct));
    grads.insert(grads.end(), g.begin(), g.end());
  }
  const auto t1 = Clock::now();
  const std::vector<double> all_sums = gather(sums, 0);
  const std::vector<float> all = gather(grads, 0);
  clock_forward_ += std::chrono::duration<double>(t1 - t0).count();
  clock_comm_ += seconds_since(t1);
  Gradient out;
  if (!is_root()) return out;
  const auto n = static_cast<std::size_t>(w.size());
  const std::size_t chunks = all_sums.size() / 2;
  if (all_sums.size() % 2 != 0 || all.size() != chunks * n)
    throw Error("protocol error: model-tuning gradients of a wrong size");
  out.grad.assign(n, 0.0);
  for (std::size_t c = 0; c < chunks; ++c) {
    out.loss_sum += all_sums[2 * c];
    out.correct += static_cast<std::int64_t>(all_sums[2 * c + 1]);
  }
  // Each entry sums its chunks in chunk order: shared over the threads, the bits are one thread's.
  double* sum = out.grad.data();
  at::parallel_for(0, static_cast<std::int64_t>(n), std::int64_t{1} << 15, [&](std::int64_t b, std::int64_t e) {
    for (std::size_t c = 0; c < chunks; ++c) {
      const float* gc = all.data() + c * n;
      for (std::int64_t i = b; i < e; ++i) sum[i] += static_cast<double>(gc[i]);
    }
  });
  return out;
}

Gradient Cluster::weights_gradient(const std::vector<std::int64_t>& rows, std::int64_t chunk_rows, EvalCosts* costs) {
  if (chunk_rows < 1) throw Error("gradient: chunk_rows must be >= 1");
  const auto t0 = Clock::now();
  std::vector<std::int64_t> header{kWeights, kGrad};
  broadcast(header, 0);
  std::vector<std::int64_t> r{chunk_rows};
  r.insert(r.end(), rows.begin(), rows.end());
  broadcast(r, 0);
  clock_comm_ += seconds_since(t0);
  const auto t1 = Clock::now();
  Gradient g = weights_gradient_share(rows, chunk_rows);
  if (costs) {
    costs->forward += seconds_since(t1);
    costs->bytes_sent.assign(mpi_.size(), 0.0);
    costs->bytes_received.assign(mpi_.size(), 0.0);
    const auto total = static_cast<std::int64_t>(rows.size());
    const auto n = static_cast<double>(tuner().size());
    for (int k = 1; k < mpi_.size(); ++k) {
      const Range share = chunked_share(total, chunk_rows, k, mpi_.size());
      const double chunks = static_cast<double>((share.size() + chunk_rows - 1) / chunk_rows);
      // Row ids out, then the update (float32 gradient and AdamW's six numbers); chunk results back.
      const double out = 8.0 * static_cast<double>(rows.size() + 3) + 4.0 * n + 8.0 * 8;
      const double back = chunks * (16.0 + 4.0 * n);
      costs->bytes_received[k] = out;
      costs->bytes_sent[k] = back;
      costs->bytes_sent[0] += out;
      costs->bytes_received[0] += back;
    }
  }
  return g;
}

void Cluster::weights_update(const std::vector<double>& g, const core::AdamW& a) {
  const auto t0 = Clock::now();
  std::vector<std::int64_t> header{kWeights, kUpdate};
  broadcast(header, 0);
  std::vector<float> gf(g.begin(), g.end());
  broadcast(gf, 0);
  std::vector<double> settings{a.lr, a.beta1, a.beta2, a.eps, a.weight_decay, static_cast<double>(a.t)};
  broadcast(settings, 0);
  clock_comm_ += seconds_since(t0);
  tuner().update(gf, a);
}

void Cluster::weights_keep() {
  std::vector<std::int64_t> header{kWeights, kKeep};
  broadcast(header, 0);
  tuner().keep();
}

std::vector<float> Cluster::weights_logits_share(Split split, bool kept) {
  const core::EncodedSplit& examples = splits_[split];
  const Range mine = chunked_share(examples.size(), evaluator_.chunk_rows(), mpi_.rank(), mpi_.size());
  const auto t0 = Clock::now();
  const std::vector<float> local =
      tuner().logits(examples, mine.begin, mine.end, evaluator_.chunk_rows(), evaluator_.label_ids(), kept);
  const auto t1 = Clock::now();
  std::vector<float> all = gather(local, 0);
  clock_forward_ += std::chrono::duration<double>(t1 - t0).count();
  clock_comm_ += seconds_since(t1);
  return all;
}

std::vector<float> Cluster::weights_logits(Split split, bool kept) {
  const auto t0 = Clock::now();
  std::vector<std::int64_t> header{kWeights, kLogits};
  broadcast(header, 0);
  std::vector<std::int64_t> which{command_of(split), kept ? 1 : 0};
  broadcast(which, 0);
  clock_comm_ += seconds_since(t0);
  return weights_logits_share(split, kept);
}

// Each fingerprint travels as two exact 32-bit halves in doubles.
std::vector<std::pair<std::uint64_t, std::uint64_t>> Cluster::weights_fingerprints_share() {
  const core::WeightTuner& w = tuner();
  std::vector<double> mine;
  for (bool kept : {false, true}) {
    const std::uint64_t h = w.fingerprint(kept);
    mine.push_back(static_cast<double>(h >> 32));
    mine.push_back(static_cast<double>(h & 0xffffffffu));
  }
  const std::vector<double> all = gather_fixed(mine, 0);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
  if (!is_root()) return out;
  auto word = [&](std::size_t i) {
    return (static_cast<std::uint64_t>(all[i]) << 32) | static_cast<std::uint64_t>(all[i + 1]);
  };
  for (std::size_t i = 0; i + 3 < all.size(); i += 4) out.emplace_back(word(i), word(i + 2));
  return out;
}

std::vector<std::pair<std::uint64_t, std::uint64_t>> Cluster::weights_fingerprints() {
  std::vector<std::int64_t> header{kWeights, kFingerprints};
  broadcast(header, 0);
  return weights_fingerprints_share();
}

void Cluster::serve_weights(std::int64_t what) {
  const auto t0 = Clock::now();
  switch (what) {
    case kStart:
      if (!tuner_) tuner_ = std::make_unique<core::WeightTuner>(evaluator_.model());  // else restored
      return;
    case kSetState: {
      std::vector<std::int64_t> which;
      std::vector<float> values;
      broadcast(which, 0);
      broadcast(values, 0);
      clock_comm_ += seconds_since(t0);
      if (which.size() != 1) throw Error("protocol error: bad model-tuning state from rank 0");
      if (!tuner_) tuner_ = std::make_unique<core::WeightTuner>(evaluator_.model());
      tuner_->set_state(static_cast<int>(which[0]), values);
      return;
    }
    case kGrad: {
      std::vector<std::int64_t> rows;
      broadcast(rows, 0);
      clock_comm_ += seconds_since(t0);
      if (rows.empty() || rows[0] < 1) throw Error("protocol error: bad model-tuning gradient request from rank 0");
      weights_gradient_share(std::vector<std::int64_t>(rows.begin() + 1, rows.end()), rows[0]);
      return;
    }
    case kUpdate: {
      std::vector<float> g;
      std::vector<double> s;
      broadcast(g, 0);
      broadcast(s, 0);
      clock_comm_ += seconds_since(t0);
      if (s.size() != 6) throw Error("protocol error: bad model-tuning update from rank 0");
      core::AdamW a;
      a.lr = s[0];
      a.beta1 = s[1];
      a.beta2 = s[2];
      a.eps = s[3];
      a.weight_decay = s[4];
      a.t = static_cast<long>(s[5]);
      tuner().update(g, a);
      return;
    }
    case kKeep:
      tuner().keep();
      return;
    case kLogits: {
      std::vector<std::int64_t> which;
      broadcast(which, 0);
      clock_comm_ += seconds_since(t0);
      Split split;
      if (which.size() != 2 || !split_of(which[0], split)) throw Error("protocol error: bad split from rank 0");
      weights_logits_share(split, which[1] != 0);
      return;
    }
    case kFingerprints:
      weights_fingerprints_share();
      return;
    default:
      throw Error("protocol error: unknown model-tuning request " + std::to_string(what) + " from rank 0");
  }
}

bool Cluster::stop_requested() {
  const auto t0 = Clock::now();
  std::vector<std::int64_t> header{kSync, 0};
  broadcast(header, 0);
  const int flag = allreduce_max(static_cast<int>(g_stop_signal));
  clock_comm_ += seconds_since(t0);
  return flag != 0;
}

// This rank's {peak host RSS, peak device memory, PSS now}, gathered on rank 0.
std::vector<double> Cluster::gather_memory() {
  const std::vector<double> mine{static_cast<double>(peak_rss_bytes()),
                                 static_cast<double>(model::peak_device_bytes(evaluator_.model().options().device)),
                                 static_cast<double>(pss_bytes())};
  return gather_fixed(mine, 0);
}

std::vector<double> Cluster::peak_memory() {
  std::vector<std::int64_t> header{kMemory, 0};
  broadcast(header, 0);
  return gather_memory();
}

void Cluster::finish(int code) {
  std::vector<std::int64_t> header{kStop, code};
  broadcast(header, 0);
}

void Cluster::serve_layer(std::int64_t cols) {
  const auto t0 = Clock::now();
  std::vector<std::int64_t> layers;
  std::vector<double> flat;
  broadcast(layers, 0);
  broadcast(flat, 0);
  clock_comm_ += seconds_since(t0);
  const std::int64_t d = evaluator_.projection().dim();
  if (layers.empty() || !evaluator_.deep() ||
      flat.size() != static_cast<std::size_t>(d) * (layers.size() - 1 + static_cast<std::size_t>(cols)))
    throw Error("protocol error: bad deep-prompt request from rank 0");
  set_base_layers(std::vector<std::int64_t>(layers.begin() + 1, layers.end()), flat.data());
  const Eigen::Map<const Eigen::MatrixXd> z(flat.data() + (layers.size() - 1) * d, d, cols);
  evaluate_share(Split::kTrain, z, nullptr, static_cast<int>(layers[0]));
  report_clocks();
}

int Cluster::serve(const ServeHooks& hooks) {
  for (;;) {
    const auto t0 = Clock::now();
    std::vector<std::int64_t> header;
    broadcast(header, 0);
    if (header.size() != 2) throw Error("protocol error: bad command header from rank 0");
    if (header[0] == kStop) return static_cast<int>(header[1]);
    if (header[0] == kSync) {
      allreduce_max(static_cast<int>(g_stop_signal));
      clock_comm_ += seconds_since(t0);
      continue;
    }
    if (header[0] == kMemory) {
      gather_memory();
      continue;
    }
    if (header[0] == kWeights) {
      serve_weights(header[1]);
      continue;
    }
    if (header[0] == kTrainLayer) {
      serve_layer(header[1]);
      if (hooks.after_evaluate) hooks.after_evaluate(mpi_.rank(), Split::kTrain);
      continue;
    }
    if (header[0] == kQuery) {
      const auto query = static_cast<core::RowQuery>(header[1]);
      if (query != core::RowQuery::kMaskLogits && query != core::RowQuery::kFirstState &&
          query != core::RowQuery::kTokenStates)
        throw Error("protocol error: unknown query " + std::to_string(header[1]) + " from rank 0");
      std::vector<std::int64_t> packed;
      broadcast(packed, 0);
      clock_comm_ += seconds_since(t0);
      query_share(query, core::EncodedSplit::unpack(packed), nullptr);
      continue;
    }
    if (header[0] == kGradient || header[0] == kTunedLogits) {
      if (header[1] != static_cast<std::int64_t>(core::Tuned::kPrompt) &&
          header[1] != static_cast<std::int64_t>(core::Tuned::kPrefix) &&
          (header[0] != kGradient || header[1] != static_cast<std::int64_t>(core::Tuned::kSubspace)))
        throw Error("protocol error: unknown tuned kind " + std::to_string(header[1]) + " from rank 0");
      const auto kind = static_cast<core::Tuned>(header[1]);
      if (header[0] == kGradient) {
        std::vector<double> params;
        std::vector<std::int64_t> rows;
        broadcast(params, 0);
        broadcast(rows, 0);
        clock_comm_ += seconds_since(t0);
        if (rows.empty() || rows[0] < 1 || params.empty())
          throw Error("protocol error: bad gradient request from rank 0");
        const double logit_scale = params.back();
        params.pop_back();
        gradient_share(kind, params, std::vector<std::int64_t>(rows.begin() + 1, rows.end()), rows[0], logit_scale);
      } else {
        std::vector<std::int64_t> which;
        std::vector<double> params;
        broadcast(which, 0);
        broadcast(params, 0);
        clock_comm_ += seconds_since(t0);
        Split s;
        if (which.size() != 1 || !split_of(which[0], s)) throw Error("protocol error: bad split from rank 0");
        tuned_logits_share(s, kind, params);
      }
      continue;
    }
    Split split;
    if (!split_of(header[0], split))
      throw Error("protocol error: unknown command " + std::to_string(header[0]) + " from rank 0");
    std::vector<double> flat;
    broadcast(flat, 0);
    clock_comm_ += seconds_since(t0);
    const Eigen::Map<const Eigen::MatrixXd> z(flat.data(), dim_, header[1]);
    evaluate_share(split, z, nullptr);
    if (split == Split::kTrain) report_clocks();
    if (hooks.after_evaluate) hooks.after_evaluate(mpi_.rank(), split);
  }
}

}  // namespace bbt::cluster

#include "bbt/methods/prompt_tuning.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "bbt/common/error.hpp"
#include "bbt/common/hash.hpp"
#include "bbt/common/rng.hpp"

namespace bbt::methods {
namespace {

// Fisher-Yates with the portable generator: the same order on every machine.
void shuffle(std::vector<std::int64_t>& v, Rng& rng) {
  for (std::size_t i = v.size(); i > 1; --i) {
    const auto j = static_cast<std::size_t>(rng.next_u64() % i);
    std::swap(v[i - 1], v[j]);
  }
}

}  // namespace

PromptTuning::PromptTuning(TuningOptions options, cluster::Cluster* weights)
    : o_(std::move(options)), weights_(weights), p_(o_.init), m_(p_.size(), 0.0), v_(p_.size(), 0.0), kept_(o_.init) {
  const bool w = o_.kind == core::Tuned::kWeights;
  if (o_.init.empty() != w)
    throw Error("internal: initial parameters are for prompt tuning, P-tuning v2 and BBT-Adam only");
  if (w != (weights_ != nullptr && o_.weights_size > 0))
    throw Error("internal: model tuning needs its cluster and the number of weights");
}

std::vector<ArraySpec> PromptTuning::arrays() const {
  if (o_.kind != core::Tuned::kWeights) return {};
  return {{"weights_fingerprint", {2}}};
}

int PromptTuning::prompt_dim() const {
  return o_.kind == core::Tuned::kSubspace ? static_cast<int>(o_.init.size()) : 0;
}

Eigen::VectorXd PromptTuning::final_prompt() const {
  if (o_.kind != core::Tuned::kSubspace) return {};
  return Eigen::Map<const Eigen::VectorXd>(kept_.data(), static_cast<Eigen::Index>(kept_.size()));
}

std::vector<SeriesSpec> PromptTuning::series() const {
  return {{"tuning_loss", 0, false}, {"tuning_accuracy", 0, false}, {"tuning_grad_norm", 0, false},
          {"tuning_lr", 0, false},   {"tuning_dev_metric", 0, false}};
}

double PromptTuning::learning_rate(long t) const {
  if (o_.warmup_steps > 0 && t < o_.warmup_steps)
    return o_.lr * static_cast<double>(t + 1) / static_cast<double>(o_.warmup_steps);
  const long rest = o_.steps - o_.warmup_steps;
  if (rest <= 0) return o_.lr;
  return o_.lr * static_cast<double>(o_.steps - t) / static_cast<double>(rest);
}

Fit PromptTuning::fit(cluster::Cluster& cluster, const core::Scorer& scorer, FitProgress& progress) {
  Fit out;
  const core::EncodedSplit& train = cluster.split(cluster::Split::kTrain);
  const core::EncodedSplit& dev = cluster.split(cluster::Split::kDev);
  const std::int64_t n_train = train.size();
  if (n_train == 0) throw Error(name() + ": the train split is empty");
  if (at_ > n_train)
    throw Error(name() + ": the checkpoint's position " + std::to_string(at_) + " is past the train split's " +
                std::to_string(n_train) + " rows");
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const bool weights = o_.kind == core::Tuned::kWeights;  // model tuning: the weights stay on the ranks
  const std::int64_t n_params = weights ? cluster.weights_start() : static_cast<std::int64_t>(p_.size());
  // The epochs' order: every shuffle so far replayed from the seed (a resumed fit continues it).
  std::vector<std::int64_t> order(static_cast<std::size_t>(n_train));
  for (std::int64_t i = 0; i < n_train; ++i) order[static_cast<std::size_t>(i)] = i;
  Rng rng(o_.seed);
  for (std::int64_t k = 0; k < shuffles_; ++k) shuffle(order, rng);
  const std::int64_t bs = std::min(o_.batch_size, n_train);
  while (t_ < o_.steps && !patience_out_) {
    std::vector<std::int64_t> rows;
    while (static_cast<std::int64_t>(rows.size()) < bs) {
      if (shuffles_ == 0 || at_ == n_train) {
        shuffle(order, rng);
        ++shuffles_;
        at_ = 0;
      }
      rows.push_back(order[static_cast<std::size_t>(at_++)]);
    }
    cluster::EvalCosts costs;
    cluster::Gradient g = weights ? cluster.weights_gradient(rows, o_.chunk_rows, &costs)
                                  : cluster.gradient(o_.kind, p_, rows, o_.chunk_rows, &costs, o_.logit_scale);
    if (t_ == 0) {
      for (double b : costs.bytes_sent) bytes_up_ += b;
      for (double b : costs.bytes_received) bytes_down_ += b;
    }
    const double inv = 1.0 / static_cast<double>(rows.size());
    double norm2 = 0;
    for (double& x : g.grad) {
      x *= inv;
      norm2 += x * x;
    }
    const double norm = std::sqrt(norm2);
    if (!std::isfinite(norm)) throw Error(name() + ": non-finite gradient at step " + std::to_string(t_));
    const double clip = o_.max_grad_norm > 0 && norm > o_.max_grad_norm ? o_.max_grad_norm / norm : 1.0;
    // AdamW (decoupled weight decay), bias-corrected moments: rank 0's parameters here, or every
    // rank's weights (each applies the same update to the same weights).
    const double lr = learning_rate(t_);
    core::AdamW a;
    a.lr = lr;
    a.beta1 = o_.beta1;
    a.beta2 = o_.beta2;
    a.eps = o_.eps;
    a.weight_decay = o_.weight_decay;
    a.t = t_;
    if (weights) {
      for (double& x : g.grad) x *= clip;
      cluster.weights_update(g.grad, a);
    } else {
      core::adamw_update(p_.data(), m_.data(), v_.data(), g.grad.data(), clip, p_.size(), a, 1.0);
    }
    double dev_metric = nan;
    const bool eval = (t_ + 1) % o_.eval_every == 0 || t_ + 1 == o_.steps;
    if (eval && dev.size() > 0) {
      dev_metric = scorer
                       .score(weights ? cluster.weights_logits(cluster::Split::kDev, false)
                                      : cluster.tuned_logits(cluster::Split::kDev, o_.kind, p_),
                              0, dev)
                       .metric;
      if (o_.count_dev_calls) api_calls_ += 1;
    }
    api_calls_ += 1;
    if (eval) {
      if (dev.size() == 0 || dev_metric > (has_best_ ? best_dev_ : -std::numeric_limits<double>::infinity())) {
        has_best_ = true;
        best_dev_ = dev_metric;
        best_step_ = t_;
        if (weights)
          cluster.weights_keep();
        else
          kept_ = p_;
        since_best_ = 0;
      } else if (o_.patience > 0 && ++since_best_ >= o_.patience) {
        patience_out_ = true;
      }
    }
    ++t_;
    if (progress.step_done({{g.loss_sum * inv}, {static_cast<double>(g.correct) * inv}, {norm}, {lr}, {dev_metric}},
                           t_)) {
      out.stopped = true;
      return out;
    }
  }
  std::ostringstream s;
  s << name() << ": " << n_params << (weights ? " weights, " : " parameters, ") << t_ << " steps, kept step "
    << best_step_ << " (dev " << (has_best_ ? best_dev_ : -std::numeric_limits<double>::infinity()) << ")";
  out.api_calls = api_calls_;
  out.bytes_up = bytes_up_;
  out.bytes_down = bytes_down_;
  out.tuned_parameters = n_params;
  if (weights) {
    // Every rank must hold the same weights (current and kept): the run's bits depend on it.
    const auto prints = cluster.weights_fingerprints();
    for (std::size_t r = 1; r < prints.size(); ++r)
      if (prints[r] != prints[0])
        throw Error("model tuning: rank " + std::to_string(r) + "'s weights (fingerprint " + hex64(prints[r].first) +
                    ") differ from rank 0's (" + hex64(prints[0].first) + ")");
    out.arrays = {{"weights_fingerprint",
                   {static_cast<std::int64_t>(prints[0].second), static_cast<std::int64_t>(prints[0].first)}}};
    s << ", kept weights " << hex64(prints[0].second) << " on all " << prints.size() << " rank(s)";
    // Each rank's own: current and kept weights, AdamW's two moments (float32); rank 0 also the
    // summed gradient (float64).
    out.user_bytes = (4.0 * 4.0 + 8.0) * static_cast<double>(n_params);
  } else {
    out.prompt = kept_;
    if (o_.kind == core::Tuned::kSubspace) {
      out.z = Eigen::Map<const Eigen::VectorXd>(kept_.data(), static_cast<Eigen::Index>(kept_.size()));
      const torch::Tensor dense =
          core::subspace_prompt(cluster.evaluator(), kept_).to(torch::kCPU, torch::kFloat64).contiguous();  // [n, H]
      out.prompt.assign(dense.data_ptr<double>(), dense.data_ptr<double>() + dense.numel());
    }
    // Rank 0's parameters, AdamW's two moments and the gradient.
    out.user_bytes = 8.0 * 4.0 * static_cast<double>(p_.size());
  }
  out.summary = s.str();
  return out;
}

namespace {

constexpr const char* kWeightParts[core::WeightTuner::kParts] = {"weights", "kept_weights", "adam_m", "adam_v"};

int weight_part(const std::string& name) {
  for (int k = 0; k < core::WeightTuner::kParts; ++k)
    if (name == kWeightParts[k]) return k;
  throw Error("model tuning: no checkpoint array " + name);
}

}  // namespace

StateArrays PromptTuning::state() const {
  Eigen::MatrixXd loop(1, 11);
  loop << static_cast<double>(t_), static_cast<double>(at_), static_cast<double>(shuffles_),
      static_cast<double>(best_step_), static_cast<double>(since_best_), has_best_ ? 1.0 : 0.0,
      has_best_ ? best_dev_ : 0.0, static_cast<double>(api_calls_), bytes_up_, bytes_down_, patience_out_ ? 1.0 : 0.0;
  StateArrays out{{"loop", loop}};
  if (o_.kind == core::Tuned::kWeights) return out;
  const auto n = static_cast<Eigen::Index>(p_.size());
  Eigen::MatrixXd params(4, n);
  params.row(0) = Eigen::Map<const Eigen::RowVectorXd>(p_.data(), n);
  params.row(1) = Eigen::Map<const Eigen::RowVectorXd>(m_.data(), n);
  params.row(2) = Eigen::Map<const Eigen::RowVectorXd>(v_.data(), n);
  params.row(3) = Eigen::Map<const Eigen::RowVectorXd>(kept_.data(), n);
  out.emplace_back("parameters", std::move(params));
  return out;
}

void PromptTuning::restore(const StateArrays& arrays) {
  const Eigen::MatrixXd* loop = nullptr;
  const Eigen::MatrixXd* params = nullptr;
  for (const auto& [name, m] : arrays) {
    if (name == "loop") loop = &m;
    if (name == "parameters") params = &m;
  }
  const bool weights = o_.kind == core::Tuned::kWeights;
  if (!loop || loop->rows() != 1 || loop->cols() != 11) throw Error(name() + ": the checkpoint has no loop [1, 11]");
  const auto P = static_cast<Eigen::Index>(o_.init.size());
  if (!weights && (!params || params->rows() != 4 || params->cols() != P))
    throw Error(name() + ": the checkpoint has no parameters [4, " + std::to_string(P) + "]");
  if (!loop->allFinite() || (params && !params->allFinite()))
    throw Error(name() + ": the checkpoint holds non-finite values");
  const Eigen::RowVectorXd l = loop->row(0);
  for (Eigen::Index i : {0, 1, 2, 3, 4, 7})
    if (l[i] != std::floor(l[i]) || l[i] < (i == 3 ? -1 : 0))
      throw Error(name() + ": the checkpoint's loop counter " + std::to_string(i) + " is not a count");
  if (l[0] > static_cast<double>(o_.steps) || l[3] >= std::max(l[0], 1.0))
    throw Error(name() + ": the checkpoint's step " + std::to_string(static_cast<long>(l[0])) + " (kept step " +
                std::to_string(static_cast<long>(l[3])) + ") is outside the run's " + std::to_string(o_.steps) +
                " steps");
  t_ = static_cast<long>(l[0]);
  at_ = static_cast<std::int64_t>(l[1]);
  shuffles_ = static_cast<std::int64_t>(l[2]);
  best_step_ = static_cast<long>(l[3]);
  since_best_ = static_cast<long>(l[4]);
  has_best_ = l[5] != 0;
  best_dev_ = l[6];
  api_calls_ = static_cast<std::int64_t>(l[7]);
  bytes_up_ = l[8];
  bytes_down_ = l[9];
  patience_out_ = l[10] != 0;
  if (weights) return;
  auto row = [&](Eigen::Index r) {
    std::vector<double> v(static_cast<std::size_t>(P));
    Eigen::Map<Eigen::RowVectorXd>(v.data(), P) = params->row(r);
    return v;
  };
  p_ = row(0);
  m_ = row(1);
  v_ = row(2);
  kept_ = row(3);
}

std::vector<std::pair<std::string, std::size_t>> PromptTuning::float_state_sizes() const {
  if (o_.kind != core::Tuned::kWeights) return {};
  std::vector<std::pair<std::string, std::size_t>> out;
  for (const char* name : kWeightParts) out.emplace_back(name, static_cast<std::size_t>(o_.weights_size));
  return out;
}

std::vector<float> PromptTuning::float_state(const std::string& name) const {
  if (o_.kind != core::Tuned::kWeights || t_ == 0) return {};
  return weights_->weights_state(weight_part(name));
}

void PromptTuning::restore_float_state(const std::function<std::vector<float>(const std::string&)>& read) {
  if (o_.kind != core::Tuned::kWeights || t_ == 0) return;
  for (const char* name : kWeightParts) {
    const std::vector<float> values = read(name);
    if (static_cast<std::int64_t>(values.size()) != o_.weights_size)
      throw Error("model tuning: the checkpoint's " + std::string(name) + " holds " + std::to_string(values.size()) +
                  " values, not " + std::to_string(o_.weights_size));
    if (!std::all_of(values.begin(), values.end(), [](float x) { return std::isfinite(x); }))
      throw Error("model tuning: the checkpoint's " + std::string(name) + " holds non-finite values");
    weights_->weights_set_state(weight_part(name), values);
  }
}

std::string PromptTuning::name() const {
  switch (o_.kind) {
    case core::Tuned::kPrompt:
      return "prompt tuning";
    case core::Tuned::kPrefix:
      return "P-tuning v2";
    case core::Tuned::kSubspace:
      return "BBT-Adam";
    case core::Tuned::kWeights:
      break;
  }
  return "model tuning";
}

std::vector<float> PromptTuning::split_logits(cluster::Cluster& cluster, cluster::Split split,
                                              const Eigen::VectorXd& /*kept*/) {
  if (o_.kind == core::Tuned::kWeights) return cluster.weights_logits(split, true);
  return cluster.tuned_logits(split, o_.kind, kept_);
}

}  // namespace bbt::methods

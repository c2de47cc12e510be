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

PromptTuning::PromptTuning(TuningOptions options) : o_(std::move(options)), kept_(o_.init) {
  if (o_.init.empty() != (o_.kind == core::Tuned::kWeights))
    throw Error("internal: initial parameters are for prompt tuning, P-tuning v2 and BBT-Adam only");
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

Fit PromptTuning::fit(cluster::Cluster& cluster, const core::Scorer& scorer) {
  Fit out;
  const core::EncodedSplit& train = cluster.split(cluster::Split::kTrain);
  const core::EncodedSplit& dev = cluster.split(cluster::Split::kDev);
  const std::int64_t n_train = train.size();
  if (n_train == 0) throw Error(name() + ": the train split is empty");
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const bool weights = o_.kind == core::Tuned::kWeights;  // model tuning: the weights stay on the ranks
  const std::int64_t n_params = weights ? cluster.weights_start() : static_cast<std::int64_t>(o_.init.size());
  std::vector<double> p = o_.init, m(p.size(), 0.0), v(p.size(), 0.0);
  std::vector<std::int64_t> order(static_cast<std::size_t>(n_train));
  for (std::int64_t i = 0; i < n_train; ++i) order[static_cast<std::size_t>(i)] = i;
  Rng rng(o_.seed);
  const std::int64_t bs = std::min(o_.batch_size, n_train);
  std::int64_t at = n_train;  // position in the current epoch's order
  double best_dev = -std::numeric_limits<double>::infinity();
  long best_step = -1, since_best = 0, t = 0;
  for (; t < o_.steps; ++t) {
    std::vector<std::int64_t> rows;
    while (static_cast<std::int64_t>(rows.size()) < bs) {
      if (at == n_train) {
        shuffle(order, rng);
        at = 0;
      }
      rows.push_back(order[static_cast<std::size_t>(at++)]);
    }
    cluster::EvalCosts costs;
    cluster::Gradient g = weights ? cluster.weights_gradient(rows, o_.chunk_rows, &costs)
                                  : cluster.gradient(o_.kind, p, rows, o_.chunk_rows, &costs, o_.logit_scale);
    if (t == 0) {
      for (double b : costs.bytes_sent) out.bytes_up += b;
      for (double b : costs.bytes_received) out.bytes_down += b;
    }
    const double inv = 1.0 / static_cast<double>(rows.size());
    double norm2 = 0;
    for (double& x : g.grad) {
      x *= inv;
      norm2 += x * x;
    }
    const double norm = std::sqrt(norm2);
    if (!std::isfinite(norm)) throw Error(name() + ": non-finite gradient at step " + std::to_string(t));
    const double clip = o_.max_grad_norm > 0 && norm > o_.max_grad_norm ? o_.max_grad_norm / norm : 1.0;
    // AdamW (decoupled weight decay), bias-corrected moments: rank 0's parameters here, or every
    // rank's weights (each applies the same update to the same weights).
    const double lr = learning_rate(t);
    core::AdamW a;
    a.lr = lr;
    a.beta1 = o_.beta1;
    a.beta2 = o_.beta2;
    a.eps = o_.eps;
    a.weight_decay = o_.weight_decay;
    a.t = t;
    if (weights) {
      for (double& x : g.grad) x *= clip;
      cluster.weights_update(g.grad, a);
    } else {
      core::adamw_update(p.data(), m.data(), v.data(), g.grad.data(), clip, p.size(), a, 1.0);
    }
    double dev_metric = nan;
    const bool eval = (t + 1) % o_.eval_every == 0 || t + 1 == o_.steps;
    if (eval && dev.size() > 0) {
      dev_metric = scorer
                       .score(weights ? cluster.weights_logits(cluster::Split::kDev, false)
                                      : cluster.tuned_logits(cluster::Split::kDev, o_.kind, p),
                              0, dev)
                       .metric;
      if (o_.count_dev_calls) out.api_calls += 1;
    }
    out.rows.push_back({{g.loss_sum * inv},
                        {static_cast<double>(g.correct) * inv},
                        {norm},
                        {lr},
                        {dev_metric}});
    out.api_calls += 1;
    if (eval) {
      if (dev.size() == 0 || dev_metric > best_dev) {
        best_dev = dev_metric;
        best_step = t;
        if (weights)
          cluster.weights_keep();
        else
          kept_ = p;
        since_best = 0;
      } else if (o_.patience > 0 && ++since_best >= o_.patience) {
        ++t;
        break;
      }
    }
  }
  std::ostringstream s;
  s << name() << ": " << n_params << (weights ? " weights, " : " parameters, ") << t << " steps, kept step "
    << best_step << " (dev " << best_dev << ")";
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
    out.user_bytes = 8.0 * 4.0 * static_cast<double>(p.size());
  }
  out.summary = s.str();
  return out;
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

#include "bbt/methods/prompt_tuning.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "bbt/common/error.hpp"
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
  if (o_.init.empty()) throw Error("internal: prompt tuning without initial parameters");
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
  if (n_train == 0) throw Error("prompt tuning: the train split is empty");
  const double nan = std::numeric_limits<double>::quiet_NaN();
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
    cluster::Gradient g = cluster.gradient(o_.kind, p, rows, o_.chunk_rows, &costs, o_.logit_scale);
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
    if (!std::isfinite(norm)) throw Error("prompt tuning: non-finite gradient at step " + std::to_string(t));
    const double clip = o_.max_grad_norm > 0 && norm > o_.max_grad_norm ? o_.max_grad_norm / norm : 1.0;
    // AdamW (decoupled weight decay), bias-corrected moments.
    const double lr = learning_rate(t);
    const double c1 = 1.0 - std::pow(o_.beta1, static_cast<double>(t + 1));
    const double c2 = 1.0 - std::pow(o_.beta2, static_cast<double>(t + 1));
    for (std::size_t i = 0; i < p.size(); ++i) {
      const double gi = g.grad[i] * clip;
      m[i] = o_.beta1 * m[i] + (1 - o_.beta1) * gi;
      v[i] = o_.beta2 * v[i] + (1 - o_.beta2) * gi * gi;
      p[i] -= lr * (o_.weight_decay * p[i] + (m[i] / c1) / (std::sqrt(v[i] / c2) + o_.eps));
    }
    double dev_metric = nan;
    const bool eval = (t + 1) % o_.eval_every == 0 || t + 1 == o_.steps;
    if (eval && dev.size() > 0) {
      dev_metric = scorer.score(cluster.tuned_logits(cluster::Split::kDev, o_.kind, p), 0, dev).metric;
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
        kept_ = p;
        since_best = 0;
      } else if (o_.patience > 0 && ++since_best >= o_.patience) {
        ++t;
        break;
      }
    }
  }
  out.prompt = kept_;
  if (o_.kind == core::Tuned::kSubspace) {
    out.z = Eigen::Map<const Eigen::VectorXd>(kept_.data(), static_cast<Eigen::Index>(kept_.size()));
    const torch::Tensor dense =
        core::subspace_prompt(cluster.evaluator(), kept_).to(torch::kCPU, torch::kFloat64).contiguous();  // [n, H]
    out.prompt.assign(dense.data_ptr<double>(), dense.data_ptr<double>() + dense.numel());
  }
  // Rank 0's parameters, AdamW's two moments and the gradient.
  out.user_bytes = 8.0 * 4.0 * static_cast<double>(p.size());
  out.tuned_parameters = static_cast<std::int64_t>(p.size());
  std::ostringstream s;
  s << (o_.kind == core::Tuned::kPrompt ? "prompt tuning" : o_.kind == core::Tuned::kPrefix ? "P-tuning v2" : "BBT-Adam")
    << ": " << p.size() << " parameters, " << t << " steps, kept step " << best_step << " (dev " << best_dev << ")";
  out.summary = s.str();
  return out;
}

std::vector<float> PromptTuning::split_logits(cluster::Cluster& cluster, cluster::Split split,
                                              const Eigen::VectorXd& /*kept*/) {
  return cluster.tuned_logits(split, o_.kind, kept_);
}

}  // namespace bbt::methods

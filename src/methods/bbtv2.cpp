#include "bbt/methods/bbtv2.hpp"

#include <chrono>
#include <cstdio>
#include <iomanip>
#include <sstream>

#include "bbt/common/error.hpp"
#include "bbt/common/rng.hpp"

namespace bbt::methods {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string layer_prefix(int layer) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "l%02d_", layer);
  return buf;
}

}  // namespace

Bbtv2::Bbtv2(const es::CmaOptions& options, int layers, long rounds)
    : options_(options), layers_(layers), rounds_(rounds) {
  if (layers < 1) throw UsageError("method.name = bbtv2 needs a model with at least one layer");
  for (int l = 0; l < layers_; ++l) cmas_.emplace_back(layer_options(l));
}

es::CmaOptions Bbtv2::layer_options(int layer) const {
  es::CmaOptions o = options_;
  o.seed = derive_seed(options_.seed, 2000 + static_cast<std::uint64_t>(layer));
  return o;
}

std::vector<SeriesSpec> Bbtv2::series() const {
  const auto L = static_cast<std::size_t>(layers_);
  return {{"layer", 0, true},        {"sigma", 0, false},
          {"layer_sigma", L, false}, {"layer_best_loss", L, false},
          {"seconds_cma", 0, false}, {"nonfinite", 0, true}};
}

Eigen::VectorXd Bbtv2::best_prompt() const {
  const Eigen::Index d = options_.dim;
  Eigen::VectorXd z(d * layers_);
  for (int l = 0; l < layers_; ++l) z.segment(l * d, d) = cmas_[static_cast<std::size_t>(l)].best_x();
  return z;
}

Step Bbtv2::step(cluster::Cluster& cluster, const core::Scorer& scorer) {
  const int layer = layer_of_next_step();
  es::Cma& cma = cmas_[static_cast<std::size_t>(layer)];
  const Eigen::VectorXd base = best_prompt();
  const auto t_ask = Clock::now();
  const Eigen::MatrixXd& z = cma.ask();
  const double ask_s = seconds_since(t_ask);
  Step out;
  const std::vector<float> logits = cluster.evaluate_layer(layer, z, base, &out.costs);
  const std::size_t lambda = static_cast<std::size_t>(z.cols());
  for (const core::Scores& s : scorer.score_all(logits, lambda, cluster.split(cluster::Split::kTrain))) {
    out.losses.push_back(s.loss);
    out.accuracies.push_back(s.accuracy);
  }
  out.best = best_index(out.losses);
  out.best_prompt = base;
  out.best_prompt.segment(static_cast<Eigen::Index>(layer) * options_.dim, options_.dim) =
      z.col(static_cast<Eigen::Index>(out.best));  // before tell() changes the sample
  const auto t_tell = Clock::now();
  cma.tell(Eigen::Map<const Eigen::VectorXd>(out.losses.data(), static_cast<Eigen::Index>(lambda)));
  const double cma_s = ask_s + seconds_since(t_tell);
  ++steps_;
  out.api_calls = static_cast<std::int64_t>(lambda);
  std::vector<double> sigmas, best_losses;
  for (const es::Cma& c : cmas_) {
    sigmas.push_back(c.sigma());
    best_losses.push_back(c.best_f());
  }
  std::ostringstream note;
  note << std::fixed << std::setprecision(4) << "layer " << layer << " sigma " << cma.sigma();
  out.note = note.str();
  out.own = {{static_cast<double>(layer)},
             {cma.sigma()},
             sigmas,
             best_losses,
             {cma_s},
             {static_cast<double>(cma.nonfinite_count())}};
  return out;
}

std::string Bbtv2::stop_reason() const { return steps_ >= rounds_ * layers_ ? "budget" : std::string(); }

StateArrays Bbtv2::state() const {
  StateArrays out;
  for (int l = 0; l < layers_; ++l)
    for (auto& [name, m] : cmas_[static_cast<std::size_t>(l)].state().arrays())
      out.emplace_back(layer_prefix(l) + name, std::move(m));
  out.emplace_back("steps", Eigen::MatrixXd::Constant(1, 1, static_cast<double>(steps_)));
  return out;
}

void Bbtv2::restore(const StateArrays& arrays) {
  std::vector<StateArrays> per_layer(static_cast<std::size_t>(layers_));
  bool have_steps = false;
  for (const auto& [name, m] : arrays) {
    if (name == "steps") {
      steps_ = static_cast<long>(m(0, 0));
      have_steps = true;
      continue;
    }
    int l = -1;
    char rest[2];
    if (std::sscanf(name.c_str(), "l%2d_%1c", &l, rest) != 2 || l < 0 || l >= layers_)
      throw Error("bbtv2 checkpoint: unexpected array '" + name + "'");
    per_layer[static_cast<std::size_t>(l)].emplace_back(name.substr(4), m);
  }
  if (!have_steps) throw Error("bbtv2 checkpoint: no 'steps'");
  std::vector<es::Cma> restored;
  for (int l = 0; l < layers_; ++l)
    restored.push_back(es::Cma::restore(layer_options(l),
                                        es::CmaState::from_arrays(per_layer[static_cast<std::size_t>(l)])));
  cmas_ = std::move(restored);
}

}  // namespace bbt::methods

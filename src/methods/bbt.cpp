#include "bbt/methods/bbt.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iomanip>
#include <sstream>

namespace bbt::methods {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

Bbt::Bbt(const es::CmaOptions& options) : options_(options), cma_(std::make_unique<es::Cma>(options)) {}

std::vector<SeriesSpec> Bbt::series() const {
  return {{"sigma", 0, false}, {"seconds_cma", 0, false}, {"nonfinite", 0, true}};
}

Step Bbt::step(cluster::Cluster& cluster, const core::Scorer& scorer) {
  const auto t_ask = Clock::now();
  const Eigen::MatrixXd& z = cma_->ask();
  const double ask_s = seconds_since(t_ask);
  Step out;
  const std::vector<float> logits = cluster.evaluate(cluster::Split::kTrain, z, &out.costs);
  const std::size_t lambda = static_cast<std::size_t>(z.cols());
  for (const core::Scores& s : scorer.score_all(logits, lambda, cluster.split(cluster::Split::kTrain))) {
    out.losses.push_back(s.loss);
    out.accuracies.push_back(s.accuracy);
  }
  out.best = best_index(out.losses);
  out.best_prompt = z.col(static_cast<Eigen::Index>(out.best));  // a copy: tell() may change the sample
  const auto t_tell = Clock::now();
  cma_->tell(Eigen::Map<const Eigen::VectorXd>(out.losses.data(), static_cast<Eigen::Index>(lambda)));
  const double cma_s = ask_s + seconds_since(t_tell);
  out.api_calls = static_cast<std::int64_t>(lambda);
  out.own = {{cma_->sigma()}, {cma_s}, {static_cast<double>(cma_->nonfinite_count())}};
  std::ostringstream note;
  note << std::fixed << std::setprecision(4) << "sigma " << cma_->sigma();
  out.note = note.str();
  return out;
}

std::string Bbt::stop_reason() const { return cma_->stopped() ? cma_->stop_reason() : std::string(); }

void Bbt::restore(const StateArrays& arrays) {
  cma_ = std::make_unique<es::Cma>(es::Cma::restore(options_, es::CmaState::from_arrays(arrays)));
}

}  // namespace bbt::methods

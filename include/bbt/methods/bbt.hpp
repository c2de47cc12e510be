#pragma once
// BBT (Sun et al., ICML 2022): CMA-ES over z in a random d-dimensional subspace; the prompt is
// A z (+ p0), the projection living in every rank's evaluator. One step = one CMA-ES generation.
#include <memory>

#include "bbt/es/cma.hpp"
#include "bbt/methods/method.hpp"

namespace bbt::methods {

class Bbt final : public Method {
 public:
  explicit Bbt(const es::CmaOptions& options);

  int candidates_per_step() const override { return options_.popsize; }
  int prompt_dim() const override { return options_.dim; }
  // sigma, seconds_cma (ask + tell), nonfinite (losses CMA-ES ranked worst so far).
  std::vector<SeriesSpec> series() const override;
  Step step(cluster::Cluster& cluster, const core::Scorer& scorer) override;
  std::string stop_reason() const override;
  Eigen::VectorXd final_prompt() const override { return cma_->mean(); }
  std::string state_group() const override { return "cma"; }
  StateArrays state() const override { return cma_->state().arrays(); }
  void restore(const StateArrays& arrays) override;

 private:
  es::CmaOptions options_;
  std::unique_ptr<es::Cma> cma_;
};

}  // namespace bbt::methods

#pragma once
// BBTv2 (Sun et al., EMNLP 2022): a deep prompt, one part per layer, each A_l z_l from its own
// projection and its own CMA-ES, tuned layer by layer (divide and conquer). One step = one
// generation of one layer's CMA-ES, its candidates being the best deep prompt so far with that
// layer replaced. A prompt vector is the L z's end to end ([L*d]); the projections live in every
// rank's evaluator.
#include <memory>
#include <vector>

#include "bbt/es/cma.hpp"
#include "bbt/methods/method.hpp"

namespace bbt::methods {

class Bbtv2 final : public Method {
 public:
  // options: one layer's CMA-ES (dim d, popsize, sigma0, bounds, covariance, threads; its seed
  // seeds the layers'). rounds: passes over the L layers (the reference's budget / (popsize L)).
  Bbtv2(const es::CmaOptions& options, int layers, long rounds);

  int candidates_per_step() const override { return options_.popsize; }
  int prompt_dim() const override { return options_.dim * layers_; }
  // layer (tuned this step), sigma (its sigma after tell), layer_sigma [L], layer_best_loss [L]
  // (best train loss each layer's CMA-ES has seen), seconds_cma, nonfinite (of the tuned layer).
  std::vector<SeriesSpec> series() const override;
  Step step(cluster::Cluster& cluster, const core::Scorer& scorer) override;
  // "budget" once the rounds are done (budget - rounds * popsize * L calls stay unspent, as in the
  // reference). The layers' own CMA-ES stop criteria are not used (the reference ignores them).
  std::string stop_reason() const override;
  Eigen::VectorXd final_prompt() const override { return best_prompt(); }
  std::string state_group() const override { return "bbtv2"; }
  // Every layer's CMA-ES state (names "lNN_<field>") and the step counter.
  StateArrays state() const override;
  void restore(const StateArrays& arrays) override;

  // The best deep prompt: each layer's best z so far (zeros before a layer is tuned).
  Eigen::VectorXd best_prompt() const;
  int layer_of_next_step() const { return static_cast<int>(steps_ % layers_); }

 private:
  es::CmaOptions layer_options(int layer) const;

  es::CmaOptions options_;
  int layers_;
  long rounds_;
  long steps_ = 0;
  std::vector<es::Cma> cmas_;
};

}  // namespace bbt::methods

#pragma once
// The planted-prompt task of the built-in demo: random token "sentences" labelled by the model
// itself under a hidden prompt z*, so a perfect answer exists and learning can be checked on a
// tiny random-weight model. z* is redrawn until its labels are balanced and differ enough from
// the zero prompt's (otherwise the task would already be solved at z = 0).
#include <Eigen/Core>
#include <cstdint>
#include <vector>

#include "bbt/core/evaluator.hpp"

namespace bbt::core {

struct PlantedOptions {
  std::int64_t seed = 7;        // the hidden prompt z* (and the sentences unless text_seed is set)
  std::int64_t text_seed = -1;  // the pool's and test's sentences; -1: seed
  int pool = 2000;  // labelled examples to draw train/dev from
  int test = 1000;  // held-out examples
  int n_prompt_tokens = 5;
  bool add_mode = true;
  double sigma0 = 1.0;  // z* ~ N(0, sigma0^2 I): the region CMA-ES starts searching
  std::int64_t bos = 0, eos = 2, mask = 4;
  std::int64_t vocab_size = 0;
  double min_share = 0.35, max_share = 0.65;  // class balance of the pool under z*
  double min_changed = 0.30;                  // share of pool labels z* must change relative to z = 0
  int max_draws = 100;
};

struct PlantedTask {
  EncodedSplit pool, test;
  Eigen::VectorXd z_star;
  int draws = 0;             // z* drawn until accepted
  double class0_share = 0;   // of the pool under z*
  double changed_share = 0;  // pool labels that differ from the zero prompt's
};

// Random token sentences as the planted task's (stream 1 is the task's own pool and test).
EncodedSplit planted_sentences(const PlantedOptions& options, int count, std::uint64_t stream);

// The evaluator must have two labels; a deep one (BBTv2's) plants a deep z* ([L*d]). Deterministic for a
// seed; throws bbt::Error when no acceptable z* is found within max_draws.
PlantedTask make_planted_task(const Evaluator& evaluator, const PlantedOptions& options);

}  // namespace bbt::core

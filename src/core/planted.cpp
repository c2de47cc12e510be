#include "bbt/core/planted.hpp"

#include "bbt/common/error.hpp"
#include "bbt/common/rng.hpp"

namespace bbt::core {
namespace {

EncodedSplit random_sentences(Rng& rng, int count, const PlantedOptions& o) {
  // Ordinary tokens only: above the prompt placeholders, below <mask> and the last ids.
  const std::int64_t lo = 1000 + std::max<std::int64_t>(o.n_prompt_tokens, 100);
  const std::int64_t hi = o.vocab_size - 2;
  if (hi - lo < 100) throw Error("planted task: vocabulary too small (" + std::to_string(o.vocab_size) + ")");
  EncodedSplit s;
  for (int i = 0; i < count; ++i) {
    const int len = 8 + static_cast<int>(rng.next_u64() % 23);  // 8..30 tokens
    std::vector<std::int64_t> ids{o.bos};
    if (o.add_mode)
      for (int p = 0; p < o.n_prompt_tokens; ++p) ids.push_back(1000 + p);
    for (int t = 0; t < len; ++t) {
      std::int64_t id;
      do {
        id = lo + static_cast<std::int64_t>(rng.next_u64() % static_cast<std::uint64_t>(hi - lo));
      } while (id == o.mask || id == o.eos || id == o.bos);
      ids.push_back(id);
    }
    s.mask_pos.push_back(static_cast<std::int64_t>(ids.size()));
    ids.push_back(o.mask);
    ids.push_back(o.eos);
    s.ids.push_back(std::move(ids));
    s.labels.push_back(0);
  }
  return s;
}

std::vector<std::int64_t> argmax_labels(const Evaluator& ev, const Eigen::VectorXd& z,
                                        const EncodedSplit& split) {
  Eigen::MatrixXd zm = z;  // d x 1
  const std::vector<float> logits = ev.pair_logits(zm, split, 0, split.size());
  const std::int64_t k = ev.num_labels();
  std::vector<std::int64_t> labels(static_cast<std::size_t>(split.size()));
  for (std::int64_t i = 0; i < split.size(); ++i) {
    std::int64_t best = 0;
    for (std::int64_t j = 1; j < k; ++j)
      if (logits[i * k + j] > logits[i * k + best]) best = j;
    labels[static_cast<std::size_t>(i)] = best;
  }
  return labels;
}

}  // namespace

EncodedSplit planted_sentences(const PlantedOptions& o, int count, std::uint64_t stream) {
  Rng rng(derive_seed(static_cast<std::uint64_t>(o.seed), stream));
  return random_sentences(rng, count, o);
}

PlantedTask make_planted_task(const Evaluator& evaluator, const PlantedOptions& o) {
  if (evaluator.num_labels() != 2) throw Error("planted task: needs exactly two label words");
  Rng text_rng(derive_seed(static_cast<std::uint64_t>(o.text_seed >= 0 ? o.text_seed : o.seed), 1));
  PlantedTask task;
  task.pool = random_sentences(text_rng, o.pool, o);
  task.test = random_sentences(text_rng, o.test, o);
  const int d =
      static_cast<int>(evaluator.projection().dim() * (evaluator.deep() ? evaluator.deep_layers() : 1));
  const auto zero_labels = argmax_labels(evaluator, Eigen::VectorXd::Zero(d), task.pool);

  Rng z_rng(derive_seed(static_cast<std::uint64_t>(o.seed), 2));
  for (int draw = 1; draw <= o.max_draws; ++draw) {
    Eigen::VectorXd z(d);
    for (int i = 0; i < d; ++i) z[i] = o.sigma0 * z_rng.normal();
    // A deep hidden prompt enters after the input layer only: layer 0's part is zero, so what
    // decides the labels lies outside any input prompt's subspace (BBT's), inside BBTv2's.
    if (evaluator.deep()) z.head(evaluator.projection().dim()).setZero();
    const auto labels = argmax_labels(evaluator, z, task.pool);
    long zeros = 0, changed = 0;
    for (std::size_t i = 0; i < labels.size(); ++i) {
      zeros += labels[i] == 0;
      changed += labels[i] != zero_labels[i];
    }
    const double share = static_cast<double>(zeros) / labels.size();
    const double moved = static_cast<double>(changed) / labels.size();
    if (share < o.min_share || share > o.max_share || moved < o.min_changed) continue;
    task.z_star = z;
    task.draws = draw;
    task.class0_share = share;
    task.changed_share = moved;
    task.pool.labels = labels;
    task.test.labels = argmax_labels(evaluator, z, task.test);
    return task;
  }
  throw Error(
      "planted task: no hidden prompt z* with balanced labels that differ from the zero prompt's in " +
      std::to_string(o.max_draws) + " draws (try a larger prompt.alpha or another task.planted_seed)");
}

}  // namespace bbt::core

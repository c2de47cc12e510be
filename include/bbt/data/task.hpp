#pragma once
// Task specifications: the paper's seven tasks (template, verbalizer, metric, file format and
// standard file names) and user-defined tasks over a generic JSONL.
#include <string>
#include <vector>

#include "bbt/data/dataset.hpp"
#include "bbt/model/prompt_kinds.hpp"

namespace bbt::data {

enum class Metric { accuracy, f1 };
// How the prompt enters the input (the model's own enumeration: one definition).
using model::PromptMode;

// Templates use {prompt}, {text}, {text_b} and exactly one <mask>. template_add starts with
// {prompt}; template_cat is the same text without the prompt (the reference drops "{prompt} . ").
struct TaskSpec {
  std::string name;
  int num_labels = 0;
  std::string template_add, template_cat;
  std::vector<std::string> label_words;  // label 0, 1, ...
  Metric metric = Metric::accuracy;
  int f1_positive = 1;     // class index counted as positive when metric == f1
  std::string test_split;  // "validation" (GLUE dev.tsv) or "test"
  Format format = Format::generic_jsonl;
};

// sst2, yelp_polarity, ag_news, dbpedia, mrpc, snli, rte (the reference's yelpp and agnews are
// accepted too), and mnli (the pre-trained prompt's source task). An unknown name is a
// bbt::UsageError listing the valid ones.
TaskSpec builtin_task(const std::string& name);
std::vector<std::string> builtin_task_names();

// A task over generic JSONL files. `template_add` must start with {prompt}, hold {text} and one
// <mask>; the cat template is derived from it. verbalizer_csv: "bad,great" (label 0, 1, ...).
TaskSpec custom_task(const std::string& template_add, const std::string& verbalizer_csv,
                     Metric metric = Metric::accuracy, int f1_positive = 1);

// "acc" / "accuracy" / "f1"; anything else is a bbt::UsageError.
Metric parse_metric(const std::string& name);
std::string metric_name(Metric metric);                 // "acc" or "f1"

// Checks a template (UsageError naming it): one <mask>, one {prompt} at the very start when
// `needs_prompt`, none otherwise, exactly one {text}, at most one {text_b}, no other {...}.
void validate_template(const std::string& tmpl, bool needs_prompt);
// The cat template of an add template: drops {prompt}, then a following " ." and one space.
std::string derive_cat_template(const std::string& template_add);

// Files of one run. dev is empty unless given explicitly (normally dev is drawn from train).
struct DataFiles {
  std::string train, dev, test;
};
struct DataFileOverrides {
  std::string train, dev, test;  // empty = look for the standard name in data_dir
};

// Standard names in data_dir: GLUE train.tsv / dev.tsv; Yelp, AG News, DBPedia train.csv /
// test.csv; MNLI train.tsv / dev_matched.tsv; SNLI snli_1.0_train.jsonl / snli_1.0_test.jsonl
// (or train.jsonl / test.jsonl);
// generic train.jsonl / test.jsonl. An override that is a relative path is looked up as given
// and then inside data_dir. Missing files are a bbt::Error listing every path looked at.
DataFiles find_data_files(const TaskSpec& task, const std::string& data_dir,
                          const DataFileOverrides& overrides = {});

}  // namespace bbt::data

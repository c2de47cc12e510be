// Built-in task table (REFERENCE.md) and custom task validation.
#include "bbt/data/task.hpp"

#include <filesystem>

#include "bbt/common/error.hpp"

namespace bbt::data {
namespace {

namespace fs = std::filesystem;

std::size_t count_of(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t pos = s.find(what); pos != std::string::npos; pos = s.find(what, pos + what.size())) ++n;
  return n;
}

TaskSpec make(const std::string& name, const std::string& add, std::vector<std::string> words, Metric metric,
              int f1_positive, const std::string& test_split, Format format) {
  TaskSpec t;
  t.name = name;
  t.num_labels = static_cast<int>(words.size());
  t.template_add = add;
  t.template_cat = derive_cat_template(add);
  t.label_words = std::move(words);
  t.metric = metric;
  t.f1_positive = f1_positive;
  t.test_split = test_split;
  t.format = format;
  return t;
}

std::string trim(const std::string& s) {
  const std::size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

}  // namespace

std::vector<std::string> builtin_task_names() {
  return {"sst2", "yelp_polarity", "ag_news", "dbpedia", "mrpc", "snli", "rte", "mnli"};
}

TaskSpec builtin_task(const std::string& name) {
  const std::string pair = "{prompt} . {text} ? <mask> , {text_b}";
  if (name == "sst2")
    return make(name, "{prompt} . {text} . It was <mask> .", {"bad", "great"}, Metric::accuracy, 1,
                "validation", Format::sst2_tsv);
  if (name == "yelp_polarity" || name == "yelpp")
    return make("yelp_polarity", "{prompt} . {text} . It was <mask> .", {"bad", "great"}, Metric::accuracy, 1,
                "test", Format::yelp_csv);
  if (name == "ag_news" || name == "agnews")
    return make("ag_news", "{prompt} . <mask> News: {text}", {"World", "Sports", "Business", "Tech"},
                Metric::accuracy, 1, "test", Format::ag_news_csv);
  if (name == "dbpedia")
    return make(name, "{prompt} [ Category: <mask> ] {text}",
                {"Company", "Education", "Artist", "Athlete", "Office", "Transportation", "Building",
                 "Natural", "Village", "Animal", "Plant", "Album", "Film", "Written"},
                Metric::accuracy, 1, "test", Format::dbpedia_csv);
  if (name == "mrpc") return make(name, pair, {"No", "Yes"}, Metric::f1, 1, "validation", Format::mrpc_tsv);
  if (name == "snli")
    return make(name, pair, {"Yes", "Maybe", "No"}, Metric::accuracy, 1, "test", Format::snli_jsonl);
  if (name == "rte")
    return make(name, pair, {"Yes", "No"}, Metric::accuracy, 1, "validation", Format::rte_tsv);
  // Not in the paper's tables: the source task of its pre-trained prompt (§3.4), SNLI's template.
  if (name == "mnli")
    return make(name, pair, {"Yes", "Maybe", "No"}, Metric::accuracy, 1, "validation_matched", Format::mnli_tsv);
  std::string valid;
  for (const std::string& n : builtin_task_names()) valid += (valid.empty() ? "" : ", ") + n;
  throw UsageError("unknown task '" + name + "' (valid: " + valid + ", custom)");
}

TaskSpec custom_task(const std::string& template_add, const std::string& verbalizer_csv, Metric metric,
                     int f1_positive) {
  validate_template(template_add, true);
  std::vector<std::string> words;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = verbalizer_csv.find(',', start);
    const std::string word =
        trim(verbalizer_csv.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (word.empty()) throw UsageError("verbalizer '" + verbalizer_csv + "' has an empty label word");
    words.push_back(word);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (words.size() < 2)
    throw UsageError("verbalizer '" + verbalizer_csv + "' needs at least two comma-separated label words");
  if (metric == Metric::f1 && (f1_positive < 0 || f1_positive >= static_cast<int>(words.size())))
    throw UsageError("F1 positive class " + std::to_string(f1_positive) + " is not a label of verbalizer '" +
                     verbalizer_csv + "'");
  return make("custom", template_add, std::move(words), metric, f1_positive, "test", Format::generic_jsonl);
}

Metric parse_metric(const std::string& name) {
  if (name == "acc" || name == "accuracy") return Metric::accuracy;
  if (name == "f1") return Metric::f1;
  throw UsageError("unknown metric '" + name + "' (valid: acc, f1)");
}

std::string metric_name(Metric metric) { return metric == Metric::f1 ? "f1" : "acc"; }

void validate_template(const std::string& tmpl, bool needs_prompt) {
  const std::string who = "template '" + tmpl + "'";
  if (count_of(tmpl, "<mask>") != 1) throw UsageError(who + " must contain exactly one <mask>");
  const std::size_t prompts = count_of(tmpl, "{prompt}");
  if (needs_prompt && (prompts != 1 || tmpl.rfind("{prompt}", 0) != 0))
    throw UsageError(who + " must start with {prompt} and contain it once");
  if (!needs_prompt && prompts != 0) throw UsageError(who + " must not contain {prompt} in cat mode");
  if (count_of(tmpl, "{text}") != 1) throw UsageError(who + " must contain {text} exactly once");
  if (count_of(tmpl, "{text_b}") > 1) throw UsageError(who + " contains {text_b} more than once");
  for (std::size_t pos = tmpl.find('{'); pos != std::string::npos; pos = tmpl.find('{', pos + 1)) {
    const std::string rest = tmpl.substr(pos);
    if (rest.rfind("{prompt}", 0) != 0 && rest.rfind("{text}", 0) != 0 && rest.rfind("{text_b}", 0) != 0)
      throw UsageError(who + " has an unknown placeholder at '" + rest.substr(0, rest.find('}') + 1) +
                       "' (valid: {prompt}, {text}, {text_b})");
  }
}

std::string derive_cat_template(const std::string& template_add) {
  validate_template(template_add, true);
  std::string rest = template_add.substr(std::string("{prompt}").size());
  if (rest.rfind(" .", 0) == 0) rest.erase(0, 2);
  if (rest.rfind(" ", 0) == 0) rest.erase(0, 1);
  return rest;
}

DataFiles find_data_files(const TaskSpec& task, const std::string& data_dir,
                          const DataFileOverrides& overrides) {
  std::vector<std::string> train_names, test_names;
  switch (task.format) {
    case Format::sst2_tsv:
    case Format::mrpc_tsv:
    case Format::rte_tsv:
      train_names = {"train.tsv"};
      test_names = {"dev.tsv"};  // GLUE test splits have no labels: the paper tests on validation
      break;
    case Format::mnli_tsv:
      train_names = {"train.tsv"};
      test_names = {"dev_matched.tsv"};
      break;
    case Format::yelp_csv:
    case Format::ag_news_csv:
    case Format::dbpedia_csv:
      train_names = {"train.csv"};
      test_names = {"test.csv"};
      break;
    case Format::snli_jsonl:
      train_names = {"snli_1.0_train.jsonl", "train.jsonl"};
      test_names = {"snli_1.0_test.jsonl", "test.jsonl"};
      break;
    case Format::generic_jsonl:
      train_names = {"train.jsonl"};
      test_names = {"test.jsonl"};
      break;
  }
  auto find = [&](const char* role, const std::string& override_path, const std::vector<std::string>& names) {
    std::vector<std::string> tried;
    if (!override_path.empty()) {
      tried.push_back(override_path);
      if (!fs::path(override_path).is_absolute() && !data_dir.empty())
        tried.push_back((fs::path(data_dir) / override_path).string());
    } else {
      if (data_dir.empty())
        throw UsageError("task " + task.name + ": no data_dir and no " + role + "_file given");
      for (const std::string& n : names) tried.push_back((fs::path(data_dir) / n).string());
    }
    for (const std::string& p : tried) {
      std::error_code ec;
      if (fs::is_regular_file(p, ec)) return p;
    }
    std::string list;
    for (const std::string& p : tried) list += (list.empty() ? "" : ", ") + p;
    throw Error("task " + task.name + ": no " + role + " file (" + format_name(task.format) +
                "); looked for " + list);
  };
  DataFiles files;
  files.train = find("train", overrides.train, train_names);
  files.test = find("test", overrides.test, test_names);
  if (!overrides.dev.empty()) files.dev = find("dev", overrides.dev, {});
  return files;
}

}  // namespace bbt::data

#include "bbt/app/config.hpp"

#include <algorithm>
#include <boost/program_options.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <type_traits>
#include <utility>

#include "bbt/common/error.hpp"
#include "bbt/common/files.hpp"

namespace po = boost::program_options;

namespace bbt::app {
namespace {

const std::vector<std::string> kSections = {"method", "model", "task",   "prompt", "cma",
                                            "loss",   "eval",  "output", "icl",    "classifier", "optim"};

// The spellings of each enumeration, in the order --help and error messages list them.
template <typename T>
using Names = std::vector<std::pair<T, const char*>>;

const Names<MethodName> kMethodNames = {{MethodName::kBbt, "bbt"},
                                        {MethodName::kBbtv2, "bbtv2"},
                                        {MethodName::kManual, "manual"},
                                        {MethodName::kIcl, "icl"},
                                        {MethodName::kFeatureMlp, "feature_mlp"},
                                        {MethodName::kFeatureBilstm, "feature_bilstm"},
                                        {MethodName::kPromptTuning, "prompt_tuning"},
                                        {MethodName::kPtuningV2, "ptuning_v2"},
                                        {MethodName::kBbtAdam, "bbt_adam"},
                                        {MethodName::kModelTuning, "model_tuning"}};
const Names<std::optional<model::Dtype>> kDtypeNames = {{std::nullopt, "auto"},
                                                        {model::Dtype::kF32, "float32"},
                                                        {model::Dtype::kF16, "float16"},
                                                        {model::Dtype::kBF16, "bfloat16"}};
const Names<std::optional<c10::DeviceType>> kDeviceNames = {
    {std::nullopt, "auto"}, {c10::DeviceType::CPU, "cpu"}, {c10::DeviceType::CUDA, "cuda"}};
const Names<data::Metric> kMetricNames = {{data::Metric::accuracy, "accuracy"}, {data::Metric::f1, "f1"}};
const Names<model::PromptMode> kModeNames = {{model::PromptMode::kAdd, "add"},
                                             {model::PromptMode::kCat, "cat"}};
const Names<model::ProjectionKind> kProjectionNames = {{model::ProjectionKind::kNormal, "normal"},
                                                       {model::ProjectionKind::kUniform, "uniform"}};
const Names<es::Covariance> kCovarianceNames = {{es::Covariance::full, "full"},
                                                {es::Covariance::diagonal, "diagonal"}};
const Names<es::StopRules> kStopRulesNames = {{es::StopRules::pycma, "pycma"},
                                               {es::StopRules::budget, "budget"}};
const Names<DevSelect> kDevSelectNames = {{DevSelect::best, "best"}, {DevSelect::call, "call"}};
const Names<core::LossType> kLossNames = {
    {core::LossType::ce, "ce"}, {core::LossType::hinge, "hinge"}, {core::LossType::neg_acc, "neg_acc"}};
const std::vector<std::string> kTaskNames = {"sst2", "yelp_polarity", "ag_news", "dbpedia", "mrpc",
                                             "snli", "rte",           "mnli",    "custom", "planted"};

std::string format_double(double v) {
  std::ostringstream ss;
  ss << std::setprecision(17) << v;
  // Prefer the shortest form that reads back exactly.
  for (int p = 1; p <= 17; ++p) {
    std::ostringstream t;
    t << std::setprecision(p) << v;
    if (std::stod(t.str()) == v) return t.str();
  }
  return ss.str();
}

std::string one_of(const std::vector<std::string>& allowed) {
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "" : " | ") + a;
  return list;
}

[[noreturn]] void throw_not_one_of(const std::string& key, const std::string& value,
                                   const std::vector<std::string>& allowed) {
  const std::string best = closest_match(value, allowed);
  throw UsageError("invalid value '" + value + "' for " + key + ": expected " + one_of(allowed) +
                   (best.empty() ? "" : " (did you mean '" + best + "'?)"));
}

// Text -> T exactly as Boost.Program_options converts a typed value (lexical_cast; its bool words).
template <typename T>
T convert(const std::string& key, const std::string& text) {
  boost::any out;
  try {
    po::validate(out, std::vector<std::string>{text}, static_cast<T*>(nullptr), 0);
  } catch (const po::error&) {
    throw UsageError("invalid value '" + text + "' for " + key);
  }
  return boost::any_cast<T>(out);
}

template <typename T>
std::string to_text(const T& v) {
  if constexpr (std::is_same_v<T, std::string>) {
    return v;
  } else if constexpr (std::is_same_v<T, bool>) {
    return v ? "true" : "false";
  } else if constexpr (std::is_floating_point_v<T>) {
    return format_double(v);
  } else {
    return std::to_string(v);
  }
}

// A range rule on one member: `ok(config, value)`, else "invalid value 'V' for KEY: what".
template <typename T>
using Rule = bool (*)(const RunConfig&, const T&);

template <typename S, typename T>
ConfigKey scalar_key(const char* name, S RunConfig::*section, T S::*member, const char* help,
                     Rule<T> ok = nullptr, const char* what = "") {
  ConfigKey k;
  k.name = name;
  k.help = help;
  k.parse = [=](RunConfig& c, const std::string& text) { (c.*section).*member = convert<T>(name, text); };
  k.print = [=](const RunConfig& c) { return to_text((c.*section).*member); };
  if (ok) {
    k.check = [=](const RunConfig& c) {
      const T& v = (c.*section).*member;
      if (ok(c, v)) return;
      std::ostringstream ss;
      ss << "invalid value '" << v << "' for " << name << ": " << what;
      throw UsageError(ss.str());
    };
  }
  return k;
}

template <typename S, typename T>
ConfigKey enum_key(const char* name, S RunConfig::*section, T S::*member, const Names<T>& names,
                   const std::string& help) {
  std::vector<std::string> allowed;
  for (const auto& n : names) allowed.emplace_back(n.second);
  ConfigKey k;
  k.name = name;
  k.help = help.empty() ? one_of(allowed) : help;
  k.parse = [=](RunConfig& c, const std::string& text) {
    for (const auto& [value, spelling] : names) {
      if (text == spelling) {
        (c.*section).*member = value;
        return;
      }
    }
    throw_not_one_of(name, text, allowed);
  };
  k.print = [=](const RunConfig& c) -> std::string {
    for (const auto& [value, spelling] : names)
      if ((c.*section).*member == value) return spelling;
    throw Error(std::string("internal: no name for the value of ") + name);
  };
  return k;
}

using C = RunConfig;

std::vector<ConfigKey> make_table() {
  using N = MethodConfig;
  using I = IclConfig;
  using K = ClassifierConfig;
  using G = OptimConfig;
  using M = ModelConfig;
  using T = TaskConfig;
  using P = PromptConfig;
  using A = CmaConfig;
  using L = LossConfig;
  using E = EvalConfig;
  using O = OutputConfig;
  // clang-format off
  std::vector<ConfigKey> keys = {
    enum_key("method.name", &C::method, &N::name, kMethodNames, "bbt | bbtv2 | manual | icl | feature_mlp | feature_bilstm | prompt_tuning | ptuning_v2 | bbt_adam | model_tuning (bbtv2: deep prompts, one CMA-ES per layer; manual..feature_bilstm: the paper's gradient-free baselines, README 'Baselines'; prompt_tuning, ptuning_v2, model_tuning: its gradient-based ones, README 'Gradient-based baselines'; bbt_adam: BBT's subspace optimised with Adam and gradients instead of CMA-ES, README 'BBT-Adam')"),
    scalar_key("model.path", &C::model, &M::path, "Hugging Face checkpoint directory (config.json, model.safetensors, vocab.json + merges.txt or tokenizer.json)",
               +[](const C&, const std::string& v) { return !v.empty(); }, "a checkpoint directory is required"),
    enum_key("model.dtype", &C::model, &M::dtype, kDtypeNames, "auto | float32 | float16 | bfloat16 (auto: float32 on CPU, bfloat16 on CUDA)"),
    enum_key("model.device", &C::model, &M::device, kDeviceNames, "auto | cpu | cuda (auto: the GPU of the node-local rank when CUDA is available)"),
    scalar_key("model.threads", &C::model, &M::threads, "torch threads per rank; 0 = the rank's share of the CPUs it may use (affinity, divided among the node's ranks sharing them)",
               +[](const C&, const int& v) { return v >= 0 && v <= 1024; }, "expected 0..1024"),
    scalar_key("task.name", &C::task, &T::name, "sst2 | yelp_polarity | ag_news | dbpedia | mrpc | snli | rte | mnli | custom | planted (mnli: the pre-trained prompt's source task, README 'Pre-trained prompt')"),
    scalar_key("task.data_dir", &C::task, &T::data_dir, "directory holding the task's standard file names"),
    scalar_key("task.train_file", &C::task, &T::train_file, "train file (overrides data_dir)"),
    scalar_key("task.dev_file", &C::task, &T::dev_file, "dev file, read only with task.k_shot = 0 (otherwise dev comes from train, BBT's protocol)"),
    scalar_key("task.test_file", &C::task, &T::test_file, "test file (overrides data_dir)"),
    scalar_key("task.k_shot", &C::task, &T::k_shot, "examples per class for train (and again for dev); 0 = the whole train file is train and task.dev_file (if given) is dev, for the gradient-based methods (the pre-trained prompt's full-data prompt tuning)",
               +[](const C& c, const int& v) { return (v >= 1 && v <= 100000) || (v == 0 && full_data_method(c.method.name)); },
               "expected 1..100000 (0, the whole train file, for prompt_tuning, ptuning_v2 and model_tuning only)"),
    scalar_key("task.split_seed", &C::task, &T::split_seed, "seed of the k-shot split (numpy legacy shuffle)",
               +[](const C&, const std::int64_t& v) { return v >= 0 && v <= 4294967295LL; }, "expected 0..2^32-1 (numpy's legacy seed range)"),
    scalar_key("task.template", &C::task, &T::template_text, "custom tasks: template with {prompt}, {text}, {text_b}, <mask>",
               +[](const C& c, const std::string& v) { return c.task.name != "custom" || !v.empty(); }, "custom tasks need a template"),
    scalar_key("task.verbalizer", &C::task, &T::verbalizer, "custom tasks: label words, comma-separated, label 0 first",
               +[](const C& c, const std::string& v) { return c.task.name != "custom" || !v.empty(); }, "custom tasks need label words"),
    enum_key("task.metric", &C::task, &T::metric, kMetricNames, "custom tasks: accuracy | f1"),
    scalar_key("task.planted_seed", &C::task, &T::planted_seed, "planted task: seed of the hidden prompt z* and the random sentences",
               +[](const C&, const std::int64_t& v) { return v >= 0; }, "expected >= 0"),
    scalar_key("task.planted_text_seed", &C::task, &T::planted_text_seed, "planted task: seed of the random sentences (-1 = task.planted_seed); two tasks with the same planted_seed and other text seeds share the hidden prompt (README 'Pre-trained prompt')",
               +[](const C&, const std::int64_t& v) { return v >= -1; }, "expected -1 or >= 0"),
    scalar_key("task.planted_pool", &C::task, &T::planted_pool, "planted task: labelled examples the k-shot split draws from",
               +[](const C&, const int& v) { return v >= 4 && v <= 10000000; }, "expected 4..10000000"),
    scalar_key("task.planted_test", &C::task, &T::planted_test, "planted task: held-out test examples",
               +[](const C&, const int& v) { return v >= 1 && v <= 10000000; }, "expected 1..10000000"),
    scalar_key("task.planted_deep", &C::task, &T::planted_deep, "planted task: the hidden prompt is deep (one z* per layer added to the input of every layer after the first, as BBTv2's; layer 0's part is zero) instead of an input prompt (needs prompt.mode = add)"),
    scalar_key("prompt.n_tokens", &C::prompt, &P::n_tokens, "prompt length n",
               +[](const C&, const int& v) { return v >= 1 && v <= 256; }, "expected 1..256"),
    enum_key("prompt.mode", &C::prompt, &P::mode, kModeNames, ""),
    scalar_key("prompt.intrinsic_dim", &C::prompt, &P::intrinsic_dim, "d, the dimension CMA-ES searches",
               +[](const C&, const int& v) { return v >= 1 && v <= 100000; }, "expected 1..100000"),
    enum_key("prompt.projection", &C::prompt, &P::projection, kProjectionNames, ""),
    scalar_key("prompt.alpha", &C::prompt, &P::alpha, "scale of the normal projection's std",
               +[](const C&, const double& v) { return std::isfinite(v) && v > 0; }, "expected > 0"),
    scalar_key("prompt.init_file", &C::prompt, &P::init_file, "cat mode: p0, float32 [n_tokens, hidden] in .npy or .safetensors"),
    scalar_key("cma.popsize", &C::cma, &A::popsize, "population size lambda; <= 0: 4 + floor(3 ln d) (pycma's default)",
               +[](const C&, const int& v) { return v != 1 && v <= 100000; }, "expected 2..100000, or <= 0 for pycma's default"),
    scalar_key("cma.sigma0", &C::cma, &A::sigma0, "initial step size",
               +[](const C&, const double& v) { return std::isfinite(v) && v > 0; }, "expected > 0"),
    scalar_key("cma.budget", &C::cma, &A::budget, "API calls (each a forward pass over the train set)",
               +[](const C& c, const long& v) { return v >= c.cma.lambda(c.prompt.intrinsic_dim); }, "expected at least cma.popsize API calls"),
    scalar_key("cma.bound", &C::cma, &A::bound, "0 = unbounded, else z in [-bound, bound]",
               +[](const C&, const double& v) { return std::isfinite(v) && v >= 0; }, "expected >= 0 (0 = none)"),
    enum_key("cma.covariance", &C::cma, &A::covariance, kCovarianceNames, ""),
    scalar_key("cma.seed", &C::cma, &A::seed, "seed of CMA-ES and of the projection A",
               +[](const C&, const std::int64_t& v) { return v >= 0; }, "expected >= 0"),
    scalar_key("cma.active", &C::cma, &A::active, "active CMA-ES: negative recombination weights for the worst candidates (pycma's CMA_active); false: positive weights only"),
    enum_key("cma.stop", &C::cma, &A::stop, kStopRulesNames, "pycma | budget: pycma's stopping rules end the run (as the reference), or the run spends its whole budget"),
    enum_key("loss.type", &C::loss, &L::type, kLossNames, ""),
    scalar_key("loss.margin", &C::loss, &L::margin, "hinge margin",
               +[](const C&, const double& v) { return std::isfinite(v) && v >= 0; }, "expected >= 0"),
    scalar_key("loss.logit_scale", &C::loss, &L::logit_scale, "logits are multiplied by this inside the loss",
               +[](const C&, const double& v) { return std::isfinite(v) && v > 0; }, "expected > 0"),
    scalar_key("eval.every", &C::eval, &E::every, "API calls between dev evaluations",
               +[](const C&, const long& v) { return v >= 1; }, "expected >= 1"),
    enum_key("eval.select", &C::eval, &E::select, kDevSelectNames, "best | call: dev scores the generation's best candidate (the reference's parallel mode) or the candidate evaluated at every eval.every-th call (its serial mode)"),
    scalar_key("eval.test", &C::eval, &E::test, "score the kept prompt on the test split at the end"),
    scalar_key("eval.batch_size", &C::eval, &E::batch_size, "rows per forward chunk on a rank; 0 = automatic",
               +[](const C&, const int& v) { return v >= 0; }, "expected >= 0"),
    scalar_key("output.dir", &C::output, &O::dir, "directory of run directories",
               +[](const C&, const std::string& v) { return !v.empty(); }, "expected a directory"),
    scalar_key("output.run_name", &C::output, &O::run_name, "run directory name (default <task>-<split_seed>-<timestamp>)",
               +[](const C&, const std::string& v) { return v.find('/') == std::string::npos; }, "a name, not a path"),
    scalar_key("output.checkpoint_every", &C::output, &O::checkpoint_every, "generations between checkpoints",
               +[](const C&, const int& v) { return v >= 1; }, "expected >= 1"),
    scalar_key("output.log_every", &C::output, &O::log_every, "generations between progress lines",
               +[](const C&, const int& v) { return v >= 1; }, "expected >= 1"),
    scalar_key("icl.demonstrations", &C::icl, &I::demonstrations, "icl: train examples drawn per input (fewer when the input would pass 512 positions)",
               +[](const C&, const int& v) { return v >= 0 && v <= 1024; }, "expected 0..1024"),
    scalar_key("icl.seed", &C::icl, &I::seed, "icl: seed of the demonstration draws",
               +[](const C&, const std::int64_t& v) { return v >= 0; }, "expected >= 0"),
    scalar_key("classifier.hidden", &C::classifier, &K::hidden, "feature_mlp: hidden width; feature_bilstm: LSTM size per direction",
               +[](const C&, const int& v) { return v >= 1 && v <= 65536; }, "expected 1..65536"),
    scalar_key("classifier.epochs", &C::classifier, &K::epochs, "feature_*: full-batch epochs at most",
               +[](const C&, const int& v) { return v >= 1 && v <= 1000000; }, "expected 1..1000000"),
    scalar_key("classifier.patience", &C::classifier, &K::patience, "feature_*: epochs without a better dev metric before stopping",
               +[](const C&, const int& v) { return v >= 1; }, "expected >= 1"),
    scalar_key("classifier.lr", &C::classifier, &K::lr, "feature_*: Adam learning rate",
               +[](const C&, const double& v) { return std::isfinite(v) && v > 0; }, "expected > 0"),
    scalar_key("classifier.weight_decay", &C::classifier, &K::weight_decay, "feature_*: Adam weight decay",
               +[](const C&, const double& v) { return std::isfinite(v) && v >= 0; }, "expected >= 0"),
    scalar_key("classifier.seed", &C::classifier, &K::seed, "feature_*: seed of the classifier's initial weights",
               +[](const C&, const std::int64_t& v) { return v >= 0; }, "expected >= 0"),
    scalar_key("optim.lr", &C::optim, &G::lr, "prompt_tuning, ptuning_v2, bbt_adam, model_tuning: AdamW learning rate (0: the method's default, 0.3 / 0.01 / 0.1 / 1e-5)",
               +[](const C&, const double& v) { return std::isfinite(v) && v >= 0; }, "expected >= 0"),
    scalar_key("optim.batch_size", &C::optim, &G::batch_size, "prompt_tuning, ptuning_v2, bbt_adam, model_tuning: examples per step (the train split's size at most: bbt_adam with the whole split makes a step one API call of BBT's kind)",
               +[](const C&, const int& v) { return v >= 1 && v <= 1000000; }, "expected 1..1000000"),
    scalar_key("optim.steps", &C::optim, &G::steps, "prompt_tuning, ptuning_v2, bbt_adam, model_tuning: optimiser steps at most (bbt_adam: its API call budget, one call a step)",
               +[](const C&, const long& v) { return v >= 1 && v <= 100000000; }, "expected 1..100000000"),
    scalar_key("optim.weight_decay", &C::optim, &G::weight_decay, "prompt_tuning, ptuning_v2, bbt_adam, model_tuning: AdamW's decoupled weight decay",
               +[](const C&, const double& v) { return std::isfinite(v) && v >= 0; }, "expected >= 0"),
    scalar_key("optim.warmup_steps", &C::optim, &G::warmup_steps, "prompt_tuning, ptuning_v2, bbt_adam, model_tuning: linear warm-up steps (then linear decay to 0)",
               +[](const C&, const long& v) { return v >= 0; }, "expected >= 0"),
    scalar_key("optim.patience", &C::optim, &G::patience, "prompt_tuning, ptuning_v2, bbt_adam, model_tuning: dev evaluations (every eval.every steps) without a better metric before stopping; 0: never",
               +[](const C&, const long& v) { return v >= 0; }, "expected >= 0"),
    scalar_key("optim.max_grad_norm", &C::optim, &G::max_grad_norm, "prompt_tuning, ptuning_v2, bbt_adam, model_tuning: clip the gradient norm to this (0: no clipping)",
               +[](const C&, const double& v) { return std::isfinite(v) && v >= 0; }, "expected >= 0"),
    scalar_key("optim.chunk_rows", &C::optim, &G::chunk_rows, "prompt_tuning, ptuning_v2, bbt_adam, model_tuning: rows per forward/backward pass, the unit shared over ranks (the bits never depend on the rank count)",
               +[](const C&, const int& v) { return v >= 1 && v <= 65536; }, "expected 1..65536"),
    scalar_key("optim.seed", &C::optim, &G::seed, "prompt_tuning, ptuning_v2, bbt_adam, model_tuning: seed of the mini-batch order and of the initial parameters (bbt_adam starts at z = 0, as BBT's CMA-ES mean)",
               +[](const C&, const std::int64_t& v) { return v >= 0; }, "expected >= 0"),
  };
  // clang-format on
  // task.name is checked against the task table's names, with a suggestion.
  for (auto& k : keys) {
    if (k.name != "task.name") continue;
    k.check = [](const C& c) {
      if (std::find(kTaskNames.begin(), kTaskNames.end(), c.task.name) == kTaskNames.end())
        throw_not_one_of("task.name", c.task.name, kTaskNames);
    };
  }
  const RunConfig defaults;
  for (auto& k : keys) k.default_text = k.print(defaults);
  return keys;
}

const ConfigKey* find_key(const std::string& key) {
  for (const auto& k : config_key_table())
    if (k.name == key) return &k;
  return nullptr;
}

// The options description --help prints: every key of the table with its default.
po::options_description describe() {
  po::options_description d("configuration keys (INI [section] key = value, or --section.key value)");
  for (const auto& k : config_key_table())
    d.add_options()(k.name.c_str(), po::value<std::string>()->default_value(k.default_text), k.help.c_str());
  return d;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

struct IniEntry {
  std::string key;  // section.key
  std::string value;
  int line;
};

std::string suggest(const std::string& key) {
  const std::string best = closest_match(key, config_keys());
  return best.empty() ? "" : " (did you mean '" + best + "'?)";
}

void check_key(const std::string& key, const std::string& where) {
  const auto dot = key.find('.');
  const std::string section = key.substr(0, dot);
  if (dot == std::string::npos || std::find(kSections.begin(), kSections.end(), section) == kSections.end()) {
    std::string valid;
    for (const auto& s : kSections) valid += (valid.empty() ? "" : ", ") + s;
    throw UsageError(where + "unknown section '" + section + "' in '" + key + "' (valid sections: " + valid +
                     ")" + suggest(key));
  }
  if (!find_key(key)) throw UsageError(where + "unknown key '" + key + "'" + suggest(key));
}

std::vector<IniEntry> parse_ini(const std::string& text, const std::string& origin) {
  std::vector<IniEntry> entries;
  std::map<std::string, int> seen;
  std::istringstream in(text);
  std::string raw, section;
  int line_no = 0;
  while (std::getline(in, raw)) {
    ++line_no;
    const std::string where = origin + ":" + std::to_string(line_no) + ": ";
    const std::string line = trim(raw);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line[0] == '[') {
      if (line.back() != ']' || line.size() < 3)
        throw UsageError(where + "syntax error: expected '[section]', got '" + line + "'");
      section = trim(line.substr(1, line.size() - 2));
      if (std::find(kSections.begin(), kSections.end(), section) == kSections.end()) {
        const std::string best = closest_match(section, kSections);
        throw UsageError(where + "unknown section '[" + section + "]'" +
                         (best.empty() ? "" : " (did you mean '[" + best + "]'?)"));
      }
      continue;
    }
    const auto eq = line.find('=');
    if (eq == std::string::npos)
      throw UsageError(where + "syntax error: expected 'key = value' or '[section]', got '" + line + "'");
    const std::string name = trim(line.substr(0, eq));
    if (name.empty()) throw UsageError(where + "syntax error: missing key before '='");
    if (section.empty()) throw UsageError(where + "key '" + name + "' appears before any [section]");
    const std::string key = section + "." + name;
    check_key(key, where);
    if (auto it = seen.find(key); it != seen.end())
      throw UsageError(where + "duplicate key '" + key + "' (first set on line " +
                       std::to_string(it->second) + ")");
    seen[key] = line_no;
    entries.push_back({key, trim(line.substr(eq + 1)), line_no});
  }
  return entries;
}

// A --config that cannot be read is the user's to fix, like an unknown key: exit code 2.
std::string read_config_file(const std::string& path) {
  try {
    return read_file(path);
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
}

// "--section.key value" or "--section.key=value" -> (key, value) pairs; `check` validates the key.
std::vector<std::pair<std::string, std::string>> split_overrides(const std::vector<std::string>& args,
                                                                 bool check = true) {
  std::vector<std::pair<std::string, std::string>> out;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) != 0) throw UsageError("unexpected argument '" + a + "'");
    std::string key = a.substr(2), value;
    const auto eq = key.find('=');
    if (eq != std::string::npos) {
      value = key.substr(eq + 1);
      key = key.substr(0, eq);
    } else {
      if (i + 1 >= args.size()) throw UsageError("option '--" + key + "' needs a value");
      value = args[++i];
    }
    if (check) check_key(key, "");
    out.emplace_back(key, value);
  }
  return out;
}

// Sets one key, prefixing the key's own error with where the text came from.
void set_from(RunConfig& cfg, const std::string& key, const std::string& value, const std::string& where) {
  try {
    find_key(key)->parse(cfg, value);
  } catch (const UsageError& e) {
    throw UsageError(where + e.what());
  }
}

RunConfig build(const std::vector<IniEntry>& ini, const std::string& origin,
                const std::vector<std::pair<std::string, std::string>>& overrides) {
  RunConfig cfg;
  std::set<std::string> from_cli;
  for (const auto& [k, v] : overrides) {
    if (!from_cli.insert(k).second) throw UsageError("option '--" + k + "' given twice");
    set_from(cfg, k, v, "command line: ");
  }
  for (const auto& e : ini) {
    if (from_cli.count(e.key)) continue;  // the command line wins
    set_from(cfg, e.key, e.value, origin + ":" + std::to_string(e.line) + ": ");
  }
  return cfg;
}

// POSIX cksum(1): CRC-32 (polynomial 0x04C11DB7, MSB first) of the bytes, then of their count.
std::uint32_t posix_cksum(const std::string& bytes) {
  std::uint32_t crc = 0;
  auto feed = [&crc](unsigned char b) {
    crc ^= static_cast<std::uint32_t>(b) << 24;
    for (int i = 0; i < 8; ++i) crc = (crc & 0x80000000u) ? (crc << 1) ^ 0x04C11DB7u : crc << 1;
  };
  for (unsigned char b : bytes) feed(b);
  for (std::size_t n = bytes.size(); n > 0; n >>= 8) feed(static_cast<unsigned char>(n & 0xff));
  return ~crc;
}

}  // namespace

bool uses_prompt(MethodName name) {
  return name == MethodName::kBbt || name == MethodName::kBbtv2 || name == MethodName::kBbtAdam;
}

bool full_data_method(MethodName name) {
  return name == MethodName::kPromptTuning || name == MethodName::kPtuningV2 || name == MethodName::kModelTuning;
}

std::string method_spelling(MethodName name) {
  for (const auto& [value, spelling] : kMethodNames)
    if (value == name) return spelling;
  throw Error("internal: no name for a method");
}

const std::vector<ConfigKey>& config_key_table() {
  static const std::vector<ConfigKey> table = make_table();
  return table;
}

void set_config_value(RunConfig& config, const std::string& key, const std::string& value) {
  check_key(key, "");
  find_key(key)->parse(config, value);
}

std::vector<ConfigChange> config_changes(const RunConfig& before, const RunConfig& after) {
  std::vector<ConfigChange> out;
  for (const auto& k : config_key_table()) {
    std::string a = k.print(before), b = k.print(after);
    if (a != b) out.push_back({k.name, std::move(a), std::move(b)});
  }
  return out;
}

std::vector<std::string> config_keys() {
  std::vector<std::string> keys;
  for (const auto& k : config_key_table()) keys.push_back(k.name);
  return keys;
}

std::string closest_match(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t best_d = std::numeric_limits<std::size_t>::max();
  for (const auto& c : candidates) {
    std::vector<std::size_t> prev(c.size() + 1), cur(c.size() + 1);
    for (std::size_t j = 0; j <= c.size(); ++j) prev[j] = j;
    for (std::size_t i = 1; i <= word.size(); ++i) {
      cur[0] = i;
      for (std::size_t j = 1; j <= c.size(); ++j)
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (word[i - 1] == c[j - 1] ? 0 : 1)});
      std::swap(prev, cur);
    }
    if (prev[c.size()] < best_d) {
      best_d = prev[c.size()];
      best = c;
    }
  }
  // Close means: at most a third of the word's letters differ (and at least one may).
  if (best_d > std::max<std::size_t>(2, word.size() / 3)) return "";
  return best;
}

void RunConfig::validate() const {
  for (const auto& k : config_key_table())
    if (k.check) k.check(*this);
}

std::string RunConfig::to_ini() const {
  std::ostringstream out;
  std::string section;
  for (const auto& k : config_key_table()) {
    const auto dot = k.name.find('.');
    const std::string sec = k.name.substr(0, dot);
    if (sec != section) {
      out << (section.empty() ? "" : "\n") << "[" << sec << "]\n";
      section = sec;
    }
    out << k.name.substr(dot + 1) << " = " << k.print(*this) << "\n";
  }
  return out.str();
}

RunConfig parse_config_text(const std::string& ini_text, const std::string& origin,
                            const std::vector<std::string>& overrides) {
  return build(parse_ini(ini_text, origin), origin, split_overrides(overrides));
}

std::string run_name(const std::string& config_file, const std::vector<std::string>& overrides) {
  // As "key=value" lines, the way jobs/lib.sh read them (a value's newline starts a new line).
  std::string text;
  for (const auto& [k, v] : split_overrides(overrides, /*check=*/false)) text += k + "=" + v + "\n";
  while (!text.empty() && text.back() == '\n') text.pop_back();
  std::string name = config_file.substr(config_file.find_last_of('/') + 1);
  if (const auto dot = name.rfind('.'); dot != std::string::npos) name.resize(dot);
  std::string seed, cma_seed;
  std::vector<std::string> rest;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    const auto eq = line.find('=');
    const std::string key = line.substr(0, eq);
    const std::string value = eq == std::string::npos ? line : line.substr(eq + 1);
    if (key == "output.run_name") return value;
    if (key == "task.split_seed") {
      seed = value;
    } else if (key == "cma.seed") {
      cma_seed = value;
    } else if (key.rfind("output.", 0) != 0 && key != "model.path" && key != "model.threads") {
      rest.push_back(line);
    }
  }
  if (!seed.empty()) name += "-s" + seed;
  if (!cma_seed.empty()) name += "-c" + cma_seed;
  if (!rest.empty()) {
    std::sort(rest.begin(), rest.end());  // byte order, as LC_ALL=C sort
    std::string sorted;
    for (const auto& r : rest) sorted += r + "\n";
    char hex[16];
    std::snprintf(hex, sizeof hex, "-%08x", static_cast<unsigned>(posix_cksum(sorted)));
    name += hex;
  }
  return name;
}

TrainArgs parse_train_args(const std::vector<std::string>& args) {
  TrainArgs out;
  std::vector<std::string> overrides;
  bool seen_config = false, seen_resume = false;
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto take_value = [&](const std::string& flag) -> std::string {
      const auto eq = a.find('=');
      if (eq != std::string::npos) return a.substr(eq + 1);
      if (i + 1 >= args.size()) throw UsageError("option '" + flag + "' needs a value");
      return args[++i];
    };
    if (a == "--help" || a == "-h") {
      out.help = true;
    } else if (a == "--print-config") {
      out.print_config = true;
    } else if (a == "--print-run-name") {
      out.print_run_name = true;
    } else if (a == "--config" || a.rfind("--config=", 0) == 0) {
      const std::string file = take_value("--config");
      if (seen_config) throw UsageError("option '--config' given twice ('" + out.config_file + "', '" + file + "'); give one configuration file");
      seen_config = true;
      out.config_file = file;
    } else if (a == "--resume" || a.rfind("--resume=", 0) == 0) {
      const std::string file = take_value("--resume");
      if (seen_resume) throw UsageError("option '--resume' given twice ('" + out.resume + "', '" + file + "')");
      seen_resume = true;
      out.resume = file;
    } else {
      overrides.push_back(a);
      if (a.find('=') == std::string::npos && i + 1 < args.size()) overrides.push_back(args[++i]);
    }
  }
  if (out.help) {
    std::ostringstream ss;
    ss << "usage: bbt train --config FILE [--section.key value ...] [--print-config | --print-run-name]\n"
       << "       bbt train --resume RUN.h5 [--section.key value ...]\n\n"
       << "Runs black-box tuning; start it under mpirun or srun for several ranks.\n\n"
       << "  --config FILE     INI configuration; keys on the command line override it\n"
       << "  --resume RUN.h5   continue a run from its last checkpoint (its stored configuration)\n"
       << "  --print-config    print the merged configuration as INI and exit\n"
       << "  --print-run-name  print the run name jobs/ give FILE + overrides, and exit\n\n"
       << describe();
    out.help_text = ss.str();
    return out;
  }
  out.overrides = overrides;
  if (out.print_run_name) {
    if (out.config_file.empty()) throw UsageError("--print-run-name needs --config FILE");
    out.run_name = run_name(out.config_file, overrides);
    return out;
  }
  if (seen_resume) {
    if (out.resume.empty()) throw UsageError("option '--resume' needs a run file");
    if (seen_config)
      throw UsageError("--config " + out.config_file + " with --resume " + out.resume +
                       ": a resumed run continues with the configuration stored in its run file; drop --config");
    split_overrides(overrides);  // unknown keys are refused here, before MPI starts
    return out;  // the stored configuration is read by the job itself
  }
  const std::string text = out.config_file.empty() ? std::string() : read_config_file(out.config_file);
  out.config = parse_config_text(text, out.config_file.empty() ? "<none>" : out.config_file, overrides);
  out.config.validate();
  return out;
}

}  // namespace bbt::app

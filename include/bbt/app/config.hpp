#pragma once
// The run configuration: one typed, validated RunConfig built from an INI file (--config) and
// command-line overrides (--section.key value), before anything heavy. Every key is written once,
// in the key table (config_key_table()), which feeds the reader, --help, validate() and to_ini().
#include <c10/core/DeviceType.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "bbt/core/losses.hpp"
#include "bbt/data/task.hpp"
#include "bbt/es/cma.hpp"
#include "bbt/model/prompt_kinds.hpp"
#include "bbt/model/safetensors_header.hpp"

namespace bbt::app {

// What the job trains (or, for the baselines, does not): key method.name.
enum class MethodName {
  kBbt, kBbtv2, kManual, kIcl, kFeatureMlp, kFeatureBilstm, kPromptTuning, kPtuningV2, kBbtAdam, kModelTuning
};

struct MethodConfig {
  // bbt | bbtv2 | manual | icl | feature_mlp | feature_bilstm | prompt_tuning | ptuning_v2 | bbt_adam | model_tuning
  MethodName name = MethodName::kBbt;
};

// Whether the method feeds a continuous prompt (placeholders after <s> in add mode); the
// baselines see the task's template alone.
bool uses_prompt(MethodName name);
// Methods that may train on a whole train file (task.k_shot = 0): the gradient-based ones.
bool full_data_method(MethodName name);
// The method's spelling in configurations and run files ("bbt", "feature_mlp", ...).
std::string method_spelling(MethodName name);

struct ModelConfig {
  std::string path;                       // Hugging Face checkpoint directory
  std::optional<model::Dtype> dtype;      // auto (empty) | float32 | float16 | bfloat16
  std::optional<c10::DeviceType> device;  // auto (empty) | cpu | cuda
  int threads = 0;                        // torch threads per rank; 0 = cores / ranks on this node
};

struct TaskConfig {
  std::string name =
      "sst2";  // sst2 | yelp_polarity | ag_news | dbpedia | mrpc | snli | rte | mnli | custom | planted
  std::string data_dir;
  std::string train_file, dev_file, test_file;  // override data_dir's standard names
  int k_shot = 16;  // 0: the whole train file is train, dev_file (if any) is dev (gradient methods)
  std::int64_t split_seed = 42;
  std::string template_text;                     // key "template": custom tasks
  std::string verbalizer;                        // comma-separated label words, label 0 first
  data::Metric metric = data::Metric::accuracy;  // custom tasks: accuracy | f1
  // planted-prompt demo task: labels made by the model itself under a hidden prompt z*.
  std::int64_t planted_seed = 7;
  std::int64_t planted_text_seed = -1;  // seed of the random sentences; -1: planted_seed
  int planted_pool = 2000;    // labelled examples the k-shot sampler draws train/dev from
  int planted_test = 1000;    // held-out test examples
  bool planted_deep = false;  // the hidden prompt is deep: one z* per layer (BBTv2's kind of prompt)
};

struct PromptConfig {
  int n_tokens = 50;
  model::PromptMode mode = model::PromptMode::kAdd;  // add | cat
  int intrinsic_dim = 500;
  model::ProjectionKind projection = model::ProjectionKind::kNormal;  // normal | uniform
  double alpha = 1.0;
  std::string init_file;  // p0 for cat mode: float32 [n_tokens, hidden], .npy or .safetensors
};

struct CmaConfig {
  int popsize = 20;  // <= 0: 4 + floor(3 ln d), pycma's default
  double sigma0 = 1.0;
  long budget = 8000;  // API calls (one call = one forward over the k-shot train set)
  double bound = 0.0;  // 0 = unbounded, else [-bound, bound]
  es::Covariance covariance = es::Covariance::full;  // full | diagonal
  std::int64_t seed = 42;
  bool active = true;                         // active CMA-ES (negative weights), as pycma
  es::StopRules stop = es::StopRules::pycma;  // pycma (its stopping rules end the run) | budget

  // The population size for intrinsic dimension d: popsize, or the default when popsize <= 0.
  int lambda(int d) const { return popsize > 0 ? popsize : es::default_popsize(d); }
};

struct LossConfig {
  core::LossType type = core::LossType::ce;  // ce | hinge | neg_acc
  double margin = 2.0;
  double logit_scale = 1.0;  // logits are multiplied by this inside the loss (a temperature)
};

enum class DevSelect { best, call };

struct EvalConfig {
  long every = 100;  // API calls between dev evaluations
  // best: the generation's best candidate (the reference's parallel mode); call: the candidate
  // evaluated at every `every`-th call (the reference's serial mode).
  DevSelect select = DevSelect::best;
  bool test = true;
  int batch_size = 0;  // rows per forward chunk on a rank; 0 = automatic
};

// In-context learning (method.name = icl).
struct IclConfig {
  int demonstrations = 32;  // at most this many train examples precede each input
  std::int64_t seed = 42;   // seed of each input's demonstration draw
};

// The small classifier of feature_mlp / feature_bilstm, trained on rank 0 (full batch, Adam).
struct ClassifierConfig {
  int hidden = 128;          // MLP hidden width; LSTM hidden size per direction
  int epochs = 200;          // at most
  int patience = 20;         // epochs without a better dev metric before stopping
  double lr = 1e-3;          // Adam learning rate
  double weight_decay = 0;   // Adam's L2 term
  std::int64_t seed = 42;    // initial weights
};

// The gradient-based methods' optimiser (prompt_tuning, ptuning_v2, bbt_adam, model_tuning): AdamW,
// README "Gradient-based baselines" gives the reasons for the defaults.
struct OptimConfig {
  double lr = 0;  // 0: the method's default (prompt_tuning 0.3, ptuning_v2 0.01, bbt_adam 0.1, model_tuning 1e-5)
  int batch_size = 32;        // examples per step (the k-shot train set of a 2-class task)
  long steps = 1000;          // optimiser steps at most
  double weight_decay = 0.0;  // AdamW's decoupled decay
  long warmup_steps = 0;      // linear warm-up; then linear decay to 0 at the last step
  long patience = 0;          // dev evaluations without a better metric before stopping; 0: never
  double max_grad_norm = 1.0; // clip the mini-batch gradient's norm to this; 0: no clipping
  int chunk_rows = 8;         // rows per forward/backward pass (the unit ranks share)
  std::int64_t seed = 42;     // mini-batch order (and ptuning_v2's initial prefix)
};

struct OutputConfig {
  std::string dir = "results";
  std::string run_name;       // default: <task>-<split_seed>-<timestamp>
  int checkpoint_every = 10;  // generations
  int log_every = 10;         // generations between progress lines
};

// The defaults above are the paper's; the key table reads them from a default RunConfig.
struct RunConfig {
  MethodConfig method;
  ModelConfig model;
  TaskConfig task;
  PromptConfig prompt;
  CmaConfig cma;
  LossConfig loss;
  EvalConfig eval;
  OutputConfig output;
  IclConfig icl;
  ClassifierConfig classifier;
  OptimConfig optim;

  // Checks every value (ranges, cross-key rules); throws bbt::UsageError naming key and value.
  void validate() const;
  // The whole configuration as INI text; parsing it back gives an equal RunConfig.
  std::string to_ini() const;
};

// One configuration key, written once. Enumerations are converted here, at parse time.
struct ConfigKey {
  std::string name;  // "section.key"
  std::string help;
  // Text -> the RunConfig member; throws bbt::UsageError "invalid value 'V' for KEY[: expected ...]".
  std::function<void(RunConfig&, const std::string&)> parse;
  // The member -> text, as to_ini() writes it (and parse reads back).
  std::function<std::string(const RunConfig&)> print;
  // Throws bbt::UsageError naming key and value when the member is out of range; empty: any value.
  std::function<void(const RunConfig&)> check;
  std::string default_text;  // print() of a default RunConfig
};

// Every key, in INI order (the order of sections and keys in to_ini() and --help).
const std::vector<ConfigKey>& config_key_table();

// Sets one key from text through the table (for subcommands that share train's keys);
// throws bbt::UsageError naming the key (an unknown key gets a suggestion).
void set_config_value(RunConfig& config, const std::string& key, const std::string& value);

// One key whose value differs between two configurations, as to_ini() prints the values.
struct ConfigChange {
  std::string key, before, after;
};
// The keys whose values differ, in table order.
std::vector<ConfigChange> config_changes(const RunConfig& before, const RunConfig& after);

// What `bbt train` parsed: the configuration plus the command's own flags.
struct TrainArgs {
  RunConfig config;
  std::string config_file;             // may be empty (all from the command line / defaults)
  std::string resume;                  // --resume RUN.h5
  std::vector<std::string> overrides;  // the --section.key value arguments, as given
  bool print_config = false;
  bool print_run_name = false;  // run_name holds the name; the configuration is not parsed
  std::string run_name;
  bool help = false;
  std::string help_text;
};

// Parses `bbt train` arguments (args[0] is the program name): --config FILE, --resume RUN.h5,
// --print-config, --print-run-name, --help, and --section.key value for every key. Command line
// wins over the file.
TrainArgs parse_train_args(const std::vector<std::string>& args);

// Parses INI text (as stored in a run file) into a configuration, then applies `overrides`
// (--section.key value pairs from a command line). `origin` names the text in errors.
RunConfig parse_config_text(const std::string& ini_text, const std::string& origin,
                            const std::vector<std::string>& overrides = {});

// The deterministic name of a run of `config_file` + `overrides` (--section.key value or
// --section.key=value), the same on every submission so a requeued job finds its run file:
// an explicit output.run_name wins; else the config file's base name without extension, then
// -s<task.split_seed> and -c<cma.seed> when overridden, then -<POSIX cksum, 8 hex digits> of
// every other override as sorted "key=value" lines. output.*, model.path and model.threads say
// only where and how fast, so they leave the name alone. Keys are not checked here.
std::string run_name(const std::string& config_file, const std::vector<std::string>& overrides);

// Every valid "section.key" name, for suggestions and documentation.
std::vector<std::string> config_keys();

// Closest string to `word` among `candidates` (Levenshtein), or "" if nothing is close.
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace bbt::app

#pragma once
// The run configuration: one typed, validated RunConfig built from an INI file (--config) and
// command-line overrides (--section.key value) with Boost.Program_options, before anything heavy.
#include <cstdint>
#include <string>
#include <vector>

namespace bbt::io {

struct ModelConfig {
  std::string path;             // Hugging Face checkpoint directory
  std::string dtype = "auto";   // auto | float32 | float16 | bfloat16
  std::string device = "auto";  // auto | cpu | cuda
  int threads = 0;              // torch threads per rank; 0 = cores / ranks on this node
};

struct TaskConfig {
  std::string name =
      "sst2";  // sst2 | yelp_polarity | ag_news | dbpedia | mrpc | snli | rte | custom | planted
  std::string data_dir;
  std::string train_file, dev_file, test_file;  // override data_dir's standard names
  int k_shot = 16;
  std::int64_t split_seed = 42;
  std::string template_text;        // key "template": custom tasks
  std::string verbalizer;           // comma-separated label words, label 0 first
  std::string metric = "accuracy";  // custom tasks: accuracy | f1
  // planted-prompt demo task: labels made by the model itself under a hidden prompt z*.
  std::int64_t planted_seed = 7;
  int planted_pool = 2000;  // labelled examples the k-shot sampler draws train/dev from
  int planted_test = 1000;  // held-out test examples
};

struct PromptConfig {
  int n_tokens = 50;
  std::string mode = "add";  // add | cat
  int intrinsic_dim = 500;
  std::string projection = "normal";  // normal | uniform
  double alpha = 1.0;
  std::string init_file;  // p0 for cat mode: float32 [n_tokens, hidden], .npy or .safetensors
};

struct CmaConfig {
  int popsize = 20;
  double sigma0 = 1.0;
  long budget = 8000;               // API calls (one call = one forward over the k-shot train set)
  double bound = 0.0;               // 0 = unbounded, else [-bound, bound]
  std::string covariance = "full";  // full | diagonal
  std::int64_t seed = 42;
};

struct LossConfig {
  std::string type = "ce";  // ce | hinge | neg_acc
  double margin = 2.0;
  double logit_scale = 1.0;  // logits are multiplied by this inside the loss (a temperature)
};

struct EvalConfig {
  long every = 100;  // API calls between dev evaluations
  bool test = true;
  int batch_size = 0;  // rows per forward chunk on a rank; 0 = automatic
};

struct OutputConfig {
  std::string dir = "results";
  std::string run_name;       // default: <task>-<split_seed>-<timestamp>
  int checkpoint_every = 10;  // generations
  int log_every = 10;         // generations between progress lines
};

struct RunConfig {
  ModelConfig model;
  TaskConfig task;
  PromptConfig prompt;
  CmaConfig cma;
  LossConfig loss;
  EvalConfig eval;
  OutputConfig output;

  // Checks every value (ranges, enumerations); throws bbt::UsageError naming key and value.
  void validate() const;
  // The whole configuration as INI text; parsing it back gives an equal RunConfig.
  std::string to_ini() const;
};

// What `bbt train` parsed: the configuration plus the command's own flags.
struct TrainArgs {
  RunConfig config;
  std::string config_file;             // may be empty (all from the command line / defaults)
  std::string resume;                  // --resume RUN.h5
  std::vector<std::string> overrides;  // the --section.key value arguments, as given
  bool print_config = false;
  bool help = false;
  std::string help_text;
};

// Parses `bbt train` arguments (args[0] is the program name): --config FILE, --resume RUN.h5,
// --print-config, --help, and --section.key value for every key. Command line wins over the file.
TrainArgs parse_train_args(const std::vector<std::string>& args);

// Parses INI text (as stored in a run file) into a configuration, then applies `overrides`
// (--section.key value pairs from a command line). `origin` names the text in errors.
RunConfig parse_config_text(const std::string& ini_text, const std::string& origin,
                            const std::vector<std::string>& overrides = {});

// Every valid "section.key" name, for suggestions and documentation.
std::vector<std::string> config_keys();

// Closest string to `word` among `candidates` (Levenshtein), or "" if nothing is close.
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace bbt::io

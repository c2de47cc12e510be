#include "bbt/io/config.hpp"

#include <algorithm>
#include <boost/program_options.hpp>
#include <cmath>
#include <iomanip>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "bbt/common/error.hpp"
#include "bbt/common/files.hpp"

namespace po = boost::program_options;

namespace bbt::io {
namespace {

const std::vector<std::string> kSections = {"model", "task", "prompt", "cma", "loss", "eval", "output"};

// One description per key, bound to the fields of `cfg`; defaults are the struct's own.
po::options_description describe(RunConfig& cfg) {
  po::options_description d("configuration keys (INI [section] key = value, or --section.key value)");
  auto& m = cfg.model;
  auto& t = cfg.task;
  auto& p = cfg.prompt;
  auto& c = cfg.cma;
  auto& l = cfg.loss;
  auto& e = cfg.eval;
  auto& o = cfg.output;
  // clang-format off
  d.add_options()
    ("model.path", po::value(&m.path)->default_value(m.path), "Hugging Face checkpoint directory (config.json, model.safetensors, vocab.json + merges.txt or tokenizer.json)")
    ("model.dtype", po::value(&m.dtype)->default_value(m.dtype), "auto | float32 | float16 | bfloat16 (auto: float32 on CPU, bfloat16 on CUDA)")
    ("model.device", po::value(&m.device)->default_value(m.device), "auto | cpu | cuda (auto: the GPU of the node-local rank when CUDA is available)")
    ("model.threads", po::value(&m.threads)->default_value(m.threads), "torch threads per rank; 0 = cores of the node / ranks on the node")
    ("task.name", po::value(&t.name)->default_value(t.name), "sst2 | yelp_polarity | ag_news | dbpedia | mrpc | snli | rte | custom | planted")
    ("task.data_dir", po::value(&t.data_dir)->default_value(t.data_dir), "directory holding the task's standard file names")
    ("task.train_file", po::value(&t.train_file)->default_value(t.train_file), "train file (overrides data_dir)")
    ("task.dev_file", po::value(&t.dev_file)->default_value(t.dev_file), "unused by BBT's protocol (dev comes from train); kept for custom splits")
    ("task.test_file", po::value(&t.test_file)->default_value(t.test_file), "test file (overrides data_dir)")
    ("task.k_shot", po::value(&t.k_shot)->default_value(t.k_shot), "examples per class for train (and again for dev)")
    ("task.split_seed", po::value(&t.split_seed)->default_value(t.split_seed), "seed of the k-shot split (numpy legacy shuffle)")
    ("task.template", po::value(&t.template_text)->default_value(t.template_text), "custom tasks: template with {prompt}, {text}, {text_b}, <mask>")
    ("task.verbalizer", po::value(&t.verbalizer)->default_value(t.verbalizer), "custom tasks: label words, comma-separated, label 0 first")
    ("task.metric", po::value(&t.metric)->default_value(t.metric), "custom tasks: accuracy | f1")
    ("task.planted_seed", po::value(&t.planted_seed)->default_value(t.planted_seed), "planted task: seed of the hidden prompt z* and the random sentences")
    ("task.planted_pool", po::value(&t.planted_pool)->default_value(t.planted_pool), "planted task: labelled examples the k-shot split draws from")
    ("task.planted_test", po::value(&t.planted_test)->default_value(t.planted_test), "planted task: held-out test examples")
    ("prompt.n_tokens", po::value(&p.n_tokens)->default_value(p.n_tokens), "prompt length n")
    ("prompt.mode", po::value(&p.mode)->default_value(p.mode), "add | cat")
    ("prompt.intrinsic_dim", po::value(&p.intrinsic_dim)->default_value(p.intrinsic_dim), "d, the dimension CMA-ES searches")
    ("prompt.projection", po::value(&p.projection)->default_value(p.projection), "normal | uniform")
    ("prompt.alpha", po::value(&p.alpha)->default_value(p.alpha), "scale of the normal projection's std")
    ("prompt.init_file", po::value(&p.init_file)->default_value(p.init_file), "cat mode: p0, float32 [n_tokens, hidden] in .npy or .safetensors")
    ("cma.popsize", po::value(&c.popsize)->default_value(c.popsize), "population size lambda")
    ("cma.sigma0", po::value(&c.sigma0)->default_value(c.sigma0), "initial step size")
    ("cma.budget", po::value(&c.budget)->default_value(c.budget), "API calls (each a forward pass over the train set)")
    ("cma.bound", po::value(&c.bound)->default_value(c.bound), "0 = unbounded, else z in [-bound, bound]")
    ("cma.covariance", po::value(&c.covariance)->default_value(c.covariance), "full | diagonal")
    ("cma.seed", po::value(&c.seed)->default_value(c.seed), "seed of CMA-ES and of the projection A")
    ("loss.type", po::value(&l.type)->default_value(l.type), "ce | hinge | neg_acc")
    ("loss.margin", po::value(&l.margin)->default_value(l.margin), "hinge margin")
    ("loss.logit_scale", po::value(&l.logit_scale)->default_value(l.logit_scale), "logits are multiplied by this inside the loss")
    ("eval.every", po::value(&e.every)->default_value(e.every), "API calls between dev evaluations")
    ("eval.test", po::value(&e.test)->default_value(e.test), "score the kept prompt on the test split at the end")
    ("eval.batch_size", po::value(&e.batch_size)->default_value(e.batch_size), "rows per forward chunk on a rank; 0 = automatic")
    ("output.dir", po::value(&o.dir)->default_value(o.dir), "directory of run directories")
    ("output.run_name", po::value(&o.run_name)->default_value(o.run_name), "run directory name (default <task>-<split_seed>-<timestamp>)")
    ("output.checkpoint_every", po::value(&o.checkpoint_every)->default_value(o.checkpoint_every), "generations between checkpoints")
    ("output.log_every", po::value(&o.log_every)->default_value(o.log_every), "generations between progress lines");
  // clang-format on
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
  const auto keys = config_keys();
  if (std::find(keys.begin(), keys.end(), key) == keys.end())
    throw UsageError(where + "unknown key '" + key + "'" + suggest(key));
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

// Stores one option, turning Boost's conversion errors into our one-line message.
void store_one(po::variables_map& vm, const po::options_description& desc, const std::string& key,
               const std::string& value, const std::string& where) {
  po::parsed_options parsed(&desc);
  po::option opt(key, {value});
  parsed.options.push_back(opt);
  try {
    po::store(parsed, vm);
  } catch (const po::error&) {
    throw UsageError(where + "invalid value '" + value + "' for " + key);
  }
}

// Command-line overrides are "--section.key value" or "--section.key=value".
std::vector<std::pair<std::string, std::string>> split_overrides(const std::vector<std::string>& args) {
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
    check_key(key, "");
    out.emplace_back(key, value);
  }
  return out;
}

RunConfig build(const std::vector<IniEntry>& ini, const std::string& origin,
                const std::vector<std::pair<std::string, std::string>>& overrides) {
  RunConfig cfg;
  po::options_description desc = describe(cfg);
  po::variables_map vm;
  std::set<std::string> from_cli;
  for (const auto& [k, v] : overrides) {
    if (!from_cli.insert(k).second) throw UsageError("option '--" + k + "' given twice");
    store_one(vm, desc, k, v, "command line: ");
  }
  for (const auto& e : ini) {
    if (from_cli.count(e.key)) continue;  // the command line wins
    store_one(vm, desc, e.key, e.value, origin + ":" + std::to_string(e.line) + ": ");
  }
  // Defaults for everything not given.
  po::parsed_options none(&desc);
  po::store(none, vm);
  po::notify(vm);
  return cfg;
}

template <typename T>
void require(bool ok, const std::string& key, const T& value, const std::string& what) {
  if (ok) return;
  std::ostringstream ss;
  ss << "invalid value '" << value << "' for " << key << ": " << what;
  throw UsageError(ss.str());
}

void require_one_of(const std::string& key, const std::string& value,
                    const std::vector<std::string>& allowed) {
  if (std::find(allowed.begin(), allowed.end(), value) != allowed.end()) return;
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "" : " | ") + a;
  const std::string best = closest_match(value, allowed);
  throw UsageError("invalid value '" + value + "' for " + key + ": expected " + list +
                   (best.empty() ? "" : " (did you mean '" + best + "'?)"));
}

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

}  // namespace

std::vector<std::string> config_keys() {
  RunConfig cfg;
  const auto desc = describe(cfg);
  std::vector<std::string> keys;
  for (const auto& opt : desc.options()) keys.push_back(opt->long_name());
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
  require(!model.path.empty(), "model.path", model.path, "a checkpoint directory is required");
  require_one_of("model.dtype", model.dtype, {"auto", "float32", "float16", "bfloat16"});
  require_one_of("model.device", model.device, {"auto", "cpu", "cuda"});
  require(model.threads >= 0 && model.threads <= 1024, "model.threads", model.threads, "expected 0..1024");
  require_one_of("task.name", task.name,
                 {"sst2", "yelp_polarity", "ag_news", "dbpedia", "mrpc", "snli", "rte", "custom", "planted"});
  require(task.k_shot >= 1 && task.k_shot <= 100000, "task.k_shot", task.k_shot, "expected 1..100000");
  require(task.split_seed >= 0 && task.split_seed <= 4294967295LL, "task.split_seed", task.split_seed,
          "expected 0..2^32-1 (numpy's legacy seed range)");
  require_one_of("task.metric", task.metric, {"accuracy", "f1"});
  if (task.name == "custom") {
    require(!task.template_text.empty(), "task.template", task.template_text, "custom tasks need a template");
    require(!task.verbalizer.empty(), "task.verbalizer", task.verbalizer, "custom tasks need label words");
  }
  require(task.planted_seed >= 0, "task.planted_seed", task.planted_seed, "expected >= 0");
  require(task.planted_pool >= 4 && task.planted_pool <= 10000000, "task.planted_pool", task.planted_pool,
          "expected 4..10000000");
  require(task.planted_test >= 1 && task.planted_test <= 10000000, "task.planted_test", task.planted_test,
          "expected 1..10000000");
  require(prompt.n_tokens >= 1 && prompt.n_tokens <= 256, "prompt.n_tokens", prompt.n_tokens,
          "expected 1..256");
  require_one_of("prompt.mode", prompt.mode, {"add", "cat"});
  require(prompt.intrinsic_dim >= 1 && prompt.intrinsic_dim <= 100000, "prompt.intrinsic_dim",
          prompt.intrinsic_dim, "expected 1..100000");
  require_one_of("prompt.projection", prompt.projection, {"normal", "uniform"});
  require(std::isfinite(prompt.alpha) && prompt.alpha > 0, "prompt.alpha", prompt.alpha, "expected > 0");
  require(cma.popsize >= 2 && cma.popsize <= 100000, "cma.popsize", cma.popsize, "expected 2..100000");
  require(std::isfinite(cma.sigma0) && cma.sigma0 > 0, "cma.sigma0", cma.sigma0, "expected > 0");
  require(cma.budget >= cma.popsize, "cma.budget", cma.budget, "expected at least cma.popsize API calls");
  require(std::isfinite(cma.bound) && cma.bound >= 0, "cma.bound", cma.bound, "expected >= 0 (0 = none)");
  require_one_of("cma.covariance", cma.covariance, {"full", "diagonal"});
  require(cma.seed >= 0, "cma.seed", cma.seed, "expected >= 0");
  require_one_of("loss.type", loss.type, {"ce", "hinge", "neg_acc"});
  require(std::isfinite(loss.margin) && loss.margin >= 0, "loss.margin", loss.margin, "expected >= 0");
  require(std::isfinite(loss.logit_scale) && loss.logit_scale > 0, "loss.logit_scale", loss.logit_scale,
          "expected > 0");
  require(eval.every >= 1, "eval.every", eval.every, "expected >= 1");
  require(eval.batch_size >= 0, "eval.batch_size", eval.batch_size, "expected >= 0");
  require(!output.dir.empty(), "output.dir", output.dir, "expected a directory");
  require(output.run_name.find('/') == std::string::npos, "output.run_name", output.run_name,
          "a name, not a path");
  require(output.checkpoint_every >= 1, "output.checkpoint_every", output.checkpoint_every, "expected >= 1");
  require(output.log_every >= 1, "output.log_every", output.log_every, "expected >= 1");
}

std::string RunConfig::to_ini() const {
  RunConfig copy = *this;
  const auto desc = describe(copy);
  std::ostringstream out;
  std::string section;
  // Every typed field as text; the loop below writes them in the order of describe().
  const std::map<std::string, std::string> values = {
      {"model.path", model.path},
      {"model.dtype", model.dtype},
      {"model.device", model.device},
      {"model.threads", std::to_string(model.threads)},
      {"task.name", task.name},
      {"task.data_dir", task.data_dir},
      {"task.train_file", task.train_file},
      {"task.dev_file", task.dev_file},
      {"task.test_file", task.test_file},
      {"task.k_shot", std::to_string(task.k_shot)},
      {"task.split_seed", std::to_string(task.split_seed)},
      {"task.template", task.template_text},
      {"task.verbalizer", task.verbalizer},
      {"task.metric", task.metric},
      {"task.planted_seed", std::to_string(task.planted_seed)},
      {"task.planted_pool", std::to_string(task.planted_pool)},
      {"task.planted_test", std::to_string(task.planted_test)},
      {"prompt.n_tokens", std::to_string(prompt.n_tokens)},
      {"prompt.mode", prompt.mode},
      {"prompt.intrinsic_dim", std::to_string(prompt.intrinsic_dim)},
      {"prompt.projection", prompt.projection},
      {"prompt.alpha", format_double(prompt.alpha)},
      {"prompt.init_file", prompt.init_file},
      {"cma.popsize", std::to_string(cma.popsize)},
      {"cma.sigma0", format_double(cma.sigma0)},
      {"cma.budget", std::to_string(cma.budget)},
      {"cma.bound", format_double(cma.bound)},
      {"cma.covariance", cma.covariance},
      {"cma.seed", std::to_string(cma.seed)},
      {"loss.type", loss.type},
      {"loss.margin", format_double(loss.margin)},
      {"loss.logit_scale", format_double(loss.logit_scale)},
      {"eval.every", std::to_string(eval.every)},
      {"eval.test", eval.test ? "true" : "false"},
      {"eval.batch_size", std::to_string(eval.batch_size)},
      {"output.dir", output.dir},
      {"output.run_name", output.run_name},
      {"output.checkpoint_every", std::to_string(output.checkpoint_every)},
      {"output.log_every", std::to_string(output.log_every)},
  };
  for (const auto& opt : desc.options()) {
    const std::string& key = opt->long_name();
    const auto dot = key.find('.');
    const std::string sec = key.substr(0, dot);
    if (sec != section) {
      out << (section.empty() ? "" : "\n") << "[" << sec << "]\n";
      section = sec;
    }
    const auto it = values.find(key);
    if (it == values.end()) throw Error("internal: no INI writer for " + key);
    out << key.substr(dot + 1) << " = " << it->second << "\n";
  }
  return out.str();
}

RunConfig parse_config_text(const std::string& ini_text, const std::string& origin,
                            const std::vector<std::string>& overrides) {
  return build(parse_ini(ini_text, origin), origin, split_overrides(overrides));
}

TrainArgs parse_train_args(const std::vector<std::string>& args) {
  TrainArgs out;
  std::vector<std::string> overrides;
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
    } else if (a == "--config" || a.rfind("--config=", 0) == 0) {
      out.config_file = take_value("--config");
    } else if (a == "--resume" || a.rfind("--resume=", 0) == 0) {
      out.resume = take_value("--resume");
    } else {
      overrides.push_back(a);
      if (a.find('=') == std::string::npos && i + 1 < args.size()) overrides.push_back(args[++i]);
    }
  }
  if (out.help) {
    RunConfig cfg;
    std::ostringstream ss;
    ss << "usage: bbt train --config FILE [--section.key value ...] [--print-config]\n"
       << "       bbt train --resume RUN.h5 [--section.key value ...]\n\n"
       << "Runs black-box tuning; start it under mpirun or srun for several ranks.\n\n"
       << "  --config FILE     INI configuration; keys on the command line override it\n"
       << "  --resume RUN.h5   continue a run from its last checkpoint (its stored configuration)\n"
       << "  --print-config    print the merged configuration as INI and exit\n\n"
       << describe(cfg);
    out.help_text = ss.str();
    return out;
  }
  out.overrides = overrides;
  if (!out.resume.empty()) return out;  // the stored configuration is read by the job itself
  const std::string text = out.config_file.empty() ? std::string() : read_config_file(out.config_file);
  out.config = parse_config_text(text, out.config_file.empty() ? "<none>" : out.config_file, overrides);
  out.config.validate();
  return out;
}

}  // namespace bbt::io

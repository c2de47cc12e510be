#include "bbt/app/config.hpp"

#include <gtest/gtest.h>

#include <map>

#include "bbt/common/error.hpp"

using bbt::UsageError;
using bbt::app::parse_config_text;
using bbt::app::RunConfig;

namespace {

std::string error_of(const std::string& ini, const std::vector<std::string>& overrides = {}) {
  try {
    parse_config_text(ini, "x.ini", overrides).validate();
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Config, DefaultsAreThePapers) {
  const RunConfig c = parse_config_text("", "x.ini");
  EXPECT_EQ(c.prompt.n_tokens, 50);
  EXPECT_EQ(c.prompt.intrinsic_dim, 500);
  EXPECT_EQ(c.prompt.mode, bbt::model::PromptMode::kAdd);
  EXPECT_EQ(c.cma.popsize, 20);
  EXPECT_EQ(c.cma.sigma0, 1.0);
  EXPECT_EQ(c.cma.budget, 8000);
  EXPECT_EQ(c.cma.seed, 42);
  EXPECT_EQ(c.task.k_shot, 16);
  EXPECT_EQ(c.loss.type, bbt::core::LossType::ce);
  EXPECT_EQ(c.eval.every, 100);
}

TEST(Config, FileThenCommandLineOverride) {
  const RunConfig c = parse_config_text("[cma]\npopsize = 12\nsigma0 = 0.5\n[model]\npath = m\n", "x.ini",
                                        {"--cma.popsize", "10", "--loss.type=hinge"});
  EXPECT_EQ(c.cma.popsize, 10);
  EXPECT_EQ(c.cma.sigma0, 0.5);
  EXPECT_EQ(c.loss.type, bbt::core::LossType::hinge);
  EXPECT_EQ(c.model.path, "m");
}

TEST(Config, PrintedConfigReadsBackEqual) {
  RunConfig c = parse_config_text(
      "[model]\npath = /m\n[task]\nname = custom\ntemplate = {prompt} . {text} . It was <mask> .\n"
      "verbalizer = bad,great\n[prompt]\nalpha = 0.1\n[cma]\nsigma0 = 0.3\n",
      "x.ini");
  const std::string ini = c.to_ini();
  const RunConfig back = parse_config_text(ini, "printed.ini");
  EXPECT_EQ(back.to_ini(), ini);
  EXPECT_EQ(back.prompt.alpha, 0.1);
  EXPECT_EQ(back.cma.sigma0, 0.3);
  EXPECT_EQ(back.task.template_text, "{prompt} . {text} . It was <mask> .");
}

TEST(Config, UnknownKeySuggestsClosest) {
  const std::string e = error_of("[cma]\npopsiz = 3\n");
  EXPECT_NE(e.find("x.ini:2"), std::string::npos) << e;
  EXPECT_NE(e.find("cma.popsiz"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'cma.popsize'"), std::string::npos) << e;
  const std::string c = error_of("[model]\npath = m\n", {"--cma.sigma", "2"});
  EXPECT_NE(c.find("did you mean 'cma.sigma0'"), std::string::npos) << c;
}

TEST(Config, WrongTypeAndRangeNameKeyAndValue) {
  const std::string e = error_of("[model]\npath = m\n[cma]\npopsize = many\n");
  EXPECT_NE(e.find("x.ini:4"), std::string::npos) << e;
  EXPECT_NE(e.find("'many'"), std::string::npos) << e;
  EXPECT_NE(e.find("cma.popsize"), std::string::npos) << e;
  const std::string r = error_of("[model]\npath = m\n[cma]\nsigma0 = -1\n");
  EXPECT_NE(r.find("'-1'"), std::string::npos) << r;
  EXPECT_NE(r.find("cma.sigma0"), std::string::npos) << r;
  const std::string m = error_of("[model]\npath = m\n[prompt]\nmode = concat\n");
  EXPECT_NE(m.find("prompt.mode"), std::string::npos) << m;
}

TEST(Config, UnknownSectionAndTask) {
  EXPECT_NE(error_of("[cmaes]\npopsize = 3\n").find("unknown section '[cmaes]'"), std::string::npos);
  EXPECT_NE(error_of("[model]\npath = m\n[task]\nname = sst3\n").find("did you mean 'sst2'"),
            std::string::npos);
}

TEST(Config, SyntaxErrorNamesLine) {
  const std::string e = error_of("[model]\npath = m\n\nthis line is wrong\n");
  EXPECT_NE(e.find("x.ini:4: syntax error"), std::string::npos) << e;
  EXPECT_NE(error_of("[model\n").find("x.ini:1"), std::string::npos);
  EXPECT_NE(error_of("path = m\n").find("before any [section]"), std::string::npos);
  EXPECT_NE(error_of("[cma]\npopsize = 3\npopsize = 4\n").find("duplicate key"), std::string::npos);
}

TEST(Config, ClosestMatch) {
  EXPECT_EQ(bbt::app::closest_match("sigmo0", {"sigma0", "seed"}), "sigma0");
  EXPECT_EQ(bbt::app::closest_match("zzzzzzzzzz", {"sigma0", "seed"}), "");
}

// to_ini() as written before the key table (run files store it; resume re-parses it): a config with
// every enumeration off its default. It must still parse, and print back byte for byte.
const char* const kOldIni = R"INI([model]
path = /m/roberta-large
dtype = bfloat16
device = cuda
threads = 4

[task]
name = custom
data_dir = 
train_file = 
dev_file = 
test_file = 
k_shot = 16
split_seed = 13
template = {prompt} {text} It was <mask> .
verbalizer = bad,great
metric = f1
planted_seed = 7
planted_pool = 2000
planted_test = 1000

[prompt]
n_tokens = 50
mode = cat
intrinsic_dim = 500
projection = uniform
alpha = 0.1
init_file = 

[cma]
popsize = 20
sigma0 = 0.001
budget = 123456789012
bound = 2.5
covariance = diagonal
seed = 42

[loss]
type = neg_acc
margin = 0.30000000000000004
logit_scale = 1e-07

[eval]
every = 100
test = false
batch_size = 32

[output]
dir = results
run_name = r1
checkpoint_every = 10
log_every = 10
)INI";

TEST(Config, OldIniTextParsesAndPrintsBackIdentically) {
  // Text written before [method] existed is a BBT run; it prints back with the newer sections
  // around the old text, unchanged.
  const RunConfig c = parse_config_text(kOldIni, "old.ini");
  // Text from before [method] existed is a BBT run; it prints back with the section in front.
  EXPECT_EQ(c.method.name, bbt::app::MethodName::kBbt);
  // Keys added since print their defaults.
  std::string printed = "[method]\nname = bbt\n\n" + std::string(kOldIni);
  const std::string planted_line = "planted_seed = 7\n";
  printed.insert(printed.find(planted_line) + planted_line.size(), "planted_text_seed = -1\n");
  const std::string test_line = "planted_test = 1000\n";
  printed.insert(printed.find(test_line) + test_line.size(), "planted_deep = false\n");
  const std::string seed_line = "covariance = diagonal\nseed = 42\n";
  printed.insert(printed.find(seed_line) + seed_line.size(), "active = true\nstop = pycma\n");
  const std::string every_line = "every = 100\n";
  printed.insert(printed.find(every_line) + every_line.size(), "select = best\n");
  printed +=
      "\n[icl]\ndemonstrations = 32\nseed = 42\n\n[classifier]\nhidden = 128\nepochs = 200\n"
      "patience = 20\nlr = 0.001\nweight_decay = 0\nseed = 42\n"
      "\n[optim]\nlr = 0\nbatch_size = 32\nsteps = 1000\nweight_decay = 0\nwarmup_steps = 0\npatience = 0\n"
      "max_grad_norm = 1\nchunk_rows = 8\nseed = 42\n";
  EXPECT_EQ(c.to_ini(), printed);
  EXPECT_FALSE(c.task.planted_deep);
  EXPECT_EQ(parse_config_text(c.to_ini(), "new.ini").to_ini(), c.to_ini());
  EXPECT_EQ(c.model.dtype, bbt::model::Dtype::kBF16);
  EXPECT_EQ(c.model.device, c10::DeviceType::CUDA);
  EXPECT_EQ(c.task.metric, bbt::data::Metric::f1);
  EXPECT_EQ(c.prompt.mode, bbt::model::PromptMode::kCat);
  EXPECT_EQ(c.prompt.projection, bbt::model::ProjectionKind::kUniform);
  EXPECT_EQ(c.cma.covariance, bbt::es::Covariance::diagonal);
  EXPECT_EQ(c.loss.type, bbt::core::LossType::neg_acc);
  EXPECT_EQ(c.cma.budget, 123456789012L);
  EXPECT_FALSE(c.eval.test);
  EXPECT_EQ(c.loss.logit_scale, 1e-7);
  c.validate();
  // The defaults print as before too.
  RunConfig d;
  d.model.path = "m";
  const std::string head =
      "[method]\nname = bbt\n\n[model]\npath = m\ndtype = auto\ndevice = auto\nthreads = 0\n\n[task]\nname = "
      "sst2\n";
  EXPECT_EQ(d.to_ini().substr(0, head.size()), head);
}

// A value other than the default for every key: a key added to the table without one fails here.
const std::map<std::string, std::string> kSamples = {{"method.name", "feature_bilstm"},
                                                     {"icl.demonstrations", "4"},
                                                     {"icl.seed", "5"},
                                                     {"classifier.hidden", "16"},
                                                     {"classifier.epochs", "30"},
                                                     {"classifier.patience", "3"},
                                                     {"classifier.lr", "0.01"},
                                                     {"classifier.weight_decay", "0.0001"},
                                                     {"classifier.seed", "8"},
                                                     {"optim.lr", "0.05"},
                                                     {"optim.batch_size", "16"},
                                                     {"optim.steps", "200"},
                                                     {"optim.weight_decay", "0.01"},
                                                     {"optim.warmup_steps", "10"},
                                                     {"optim.patience", "5"},
                                                     {"optim.max_grad_norm", "0.5"},
                                                     {"optim.chunk_rows", "4"},
                                                     {"optim.seed", "9"},
                                                     {"model.path", "/models/roberta-large"},
                                                     {"model.dtype", "float16"},
                                                     {"model.device", "cpu"},
                                                     {"model.threads", "3"},
                                                     {"task.name", "custom"},
                                                     {"task.data_dir", "/data/x y"},
                                                     {"task.train_file", "t.tsv"},
                                                     {"task.dev_file", "d.tsv"},
                                                     {"task.test_file", "e.tsv"},
                                                     {"task.k_shot", "8"},
                                                     {"task.split_seed", "4294967295"},
                                                     {"task.template", "{prompt} {text} = <mask> ."},
                                                     {"task.verbalizer", "no,yes"},
                                                     {"task.metric", "f1"},
                                                     {"task.planted_seed", "9"},
                                                     {"task.planted_text_seed", "11"},
                                                     {"task.planted_pool", "40"},
                                                     {"task.planted_test", "5"},
                                                     {"task.planted_deep", "true"},
                                                     {"prompt.n_tokens", "7"},
                                                     {"prompt.mode", "cat"},
                                                     {"prompt.intrinsic_dim", "11"},
                                                     {"prompt.projection", "uniform"},
                                                     {"prompt.alpha", "0.1"},
                                                     {"prompt.init_file", "p0.npy"},
                                                     {"cma.popsize", "6"},
                                                     {"cma.sigma0", "0.30000000000000004"},
                                                     {"cma.budget", "60"},
                                                     {"cma.bound", "2.5"},
                                                     {"cma.covariance", "diagonal"},
                                                     {"cma.seed", "13"},
                                                     {"cma.active", "false"},
                                                     {"cma.stop", "budget"},
                                                     {"loss.type", "hinge"},
                                                     {"loss.margin", "1e-300"},
                                                     {"loss.logit_scale", "2"},
                                                     {"eval.every", "7"},
                                                     {"eval.select", "call"},
                                                     {"eval.test", "false"},
                                                     {"eval.batch_size", "16"},
                                                     {"output.dir", "out"},
                                                     {"output.run_name", "r"},
                                                     {"output.checkpoint_every", "3"},
                                                     {"output.log_every", "4"}};

// task.k_shot = 0 (the whole train file) is for the gradient-based methods only.
TEST(Config, WholeTrainFileOnlyForGradientMethods) {
  EXPECT_EQ(error_of("[model]\npath = m\n[method]\nname = prompt_tuning\n[prompt]\nmode = cat\n[task]\nk_shot = 0\n"), "");
  EXPECT_EQ(error_of("[model]\npath = m\n[method]\nname = ptuning_v2\n[task]\nk_shot = 0\n"), "");
  const std::string e = error_of("[model]\npath = m\n[task]\nk_shot = 0\n");
  EXPECT_NE(e.find("task.k_shot"), std::string::npos) << e;
  EXPECT_NE(e.find("0, the whole train file, for prompt_tuning, ptuning_v2 and model_tuning only"), std::string::npos) << e;
  EXPECT_NE(error_of("[model]\npath = m\n[task]\nplanted_text_seed = -2\n").find("task.planted_text_seed"), std::string::npos);
}

TEST(Config, EveryKeyRoundTripsThroughIni) {
  const auto& table = bbt::app::config_key_table();
  EXPECT_EQ(table.size(), kSamples.size());
  for (const auto& key : table) {
    SCOPED_TRACE(key.name);
    const auto it = kSamples.find(key.name);
    ASSERT_NE(it, kSamples.end()) << "no sample value for " << key.name;
    EXPECT_NE(it->second, key.default_text);
    RunConfig c;
    bbt::app::set_config_value(c, key.name, it->second);
    EXPECT_EQ(key.print(c), it->second);
    const std::string ini = c.to_ini();
    EXPECT_NE(ini, RunConfig().to_ini());
    const RunConfig back = parse_config_text(ini, "printed.ini");
    EXPECT_EQ(key.print(back), it->second);
    EXPECT_EQ(back.to_ini(), ini);
    // The command-line spelling reads the same.
    EXPECT_EQ(parse_config_text("", "x", {"--" + key.name, it->second}).to_ini(), ini);
  }
  // Every sample together is a valid configuration.
  RunConfig all;
  for (const auto& [k, v] : kSamples) bbt::app::set_config_value(all, k, v);
  EXPECT_NO_THROW(all.validate());
  EXPECT_EQ(parse_config_text(all.to_ini(), "all.ini").to_ini(), all.to_ini());
}

TEST(Config, HelpListsEveryKeyWithItsDefault) {
  const auto parsed = bbt::app::parse_train_args({"bbt train", "--help"});
  ASSERT_TRUE(parsed.help);
  for (const auto& key : bbt::app::config_key_table()) {
    EXPECT_NE(parsed.help_text.find("--" + key.name + " "), std::string::npos) << key.name;
    if (!key.default_text.empty()) {
      EXPECT_NE(parsed.help_text.find("--" + key.name + " arg (=" + key.default_text + ")"),
                std::string::npos)
          << key.name;
    }
  }
  EXPECT_EQ(bbt::app::config_keys().size(), bbt::app::config_key_table().size());
}

TEST(Config, EnumErrorsNameKeyAndAllowedValues) {
  const std::map<std::string, std::string> allowed = {
      {"method.name", "bbt | bbtv2 | manual | icl | feature_mlp | feature_bilstm"},
      {"model.dtype", "auto | float32 | float16 | bfloat16"},
      {"model.device", "auto | cpu | cuda"},
      {"task.metric", "accuracy | f1"},
      {"prompt.mode", "add | cat"},
      {"prompt.projection", "normal | uniform"},
      {"cma.covariance", "full | diagonal"},
      {"loss.type", "ce | hinge | neg_acc"}};
  for (const auto& [key, list] : allowed) {
    const std::string section = key.substr(0, key.find('.'));
    const std::string e = error_of("[" + section + "]\n" + key.substr(section.size() + 1) + " = bogus\n");
    EXPECT_NE(e.find("x.ini:2: invalid value 'bogus' for " + key + ": expected " + list), std::string::npos)
        << e;
    const std::string c = error_of("", {"--" + key, "Bogus"});
    EXPECT_NE(c.find("invalid value 'Bogus' for " + key + ": expected " + list), std::string::npos) << c;
  }
  EXPECT_NE(error_of("", {"--prompt.mode", "cta"}).find("did you mean 'cat'"), std::string::npos);
}

TEST(Config, RunNameFromConfigAndOverrides) {
  using bbt::app::run_name;
  EXPECT_EQ(run_name("/c/sst2.ini", {}), "sst2");
  EXPECT_EQ(run_name("/c/sst2.ini", {"--task.split_seed", "13", "--cma.seed=7"}), "sst2-s13-c7");
  EXPECT_EQ(run_name("/c/sst2.ini", {"--model.path", "/m", "--model.threads=2", "--output.dir", "o"}),
            "sst2");
  EXPECT_EQ(run_name("/c/sst2.ini", {"--task.split_seed", "1", "--output.run_name", "mine"}), "mine");
  // The rest: cksum of the sorted "key=value" lines, whatever their order on the command line.
  const std::string a = run_name("/c/sst2.ini", {"--cma.popsize", "8", "--loss.type=hinge"});
  EXPECT_EQ(a, run_name("/c/sst2.ini", {"--loss.type", "hinge", "--cma.popsize=8"}));
  EXPECT_EQ(a.size(), std::string("sst2-12345678").size());
  EXPECT_NE(a, run_name("/c/sst2.ini", {"--loss.type", "hinge", "--cma.popsize=9"}));
  EXPECT_THROW(run_name("/c/sst2.ini", {"--cma.popsize"}), UsageError);
  const auto parsed = bbt::app::parse_train_args(
      {"bbt train", "--config", "/nonexistent/rte.ini", "--print-run-name", "--task.split_seed", "5"});
  EXPECT_TRUE(parsed.print_run_name);
  EXPECT_EQ(parsed.run_name, "rte-s5");
}

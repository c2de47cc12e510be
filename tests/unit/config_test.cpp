#include "bbt/io/config.hpp"

#include <gtest/gtest.h>

#include "bbt/common/error.hpp"

using bbt::UsageError;
using bbt::io::parse_config_text;
using bbt::io::RunConfig;

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
  EXPECT_EQ(c.prompt.mode, "add");
  EXPECT_EQ(c.cma.popsize, 20);
  EXPECT_EQ(c.cma.sigma0, 1.0);
  EXPECT_EQ(c.cma.budget, 8000);
  EXPECT_EQ(c.cma.seed, 42);
  EXPECT_EQ(c.task.k_shot, 16);
  EXPECT_EQ(c.loss.type, "ce");
  EXPECT_EQ(c.eval.every, 100);
}

TEST(Config, FileThenCommandLineOverride) {
  const RunConfig c = parse_config_text("[cma]\npopsize = 12\nsigma0 = 0.5\n[model]\npath = m\n", "x.ini",
                                        {"--cma.popsize", "10", "--loss.type=hinge"});
  EXPECT_EQ(c.cma.popsize, 10);
  EXPECT_EQ(c.cma.sigma0, 0.5);
  EXPECT_EQ(c.loss.type, "hinge");
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
  EXPECT_EQ(bbt::io::closest_match("sigmo0", {"sigma0", "seed"}), "sigma0");
  EXPECT_EQ(bbt::io::closest_match("zzzzzzzzzz", {"sigma0", "seed"}), "");
}

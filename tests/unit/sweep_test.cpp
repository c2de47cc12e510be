// The sweep file: expansion order, names (those of `bbt train --print-run-name`), zip groups,
// labels' sections, and every kind of bad input as one FILE:LINE error.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "bbt/app/config.hpp"
#include "bbt/app/sweep.hpp"
#include "bbt/common/error.hpp"

namespace fs = std::filesystem;
using bbt::app::load_sweep;

namespace {

class SweepTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("bbt_sweep_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_ / "sweeps");
    write("base.ini", "[model]\npath = m\n[task]\nname = planted\n[prompt]\nintrinsic_dim = 50\n[output]\nrun_name = fixed\n");
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const std::string& name, const std::string& text) { std::ofstream(dir_ / name) << text; }
  std::string sweep(const std::string& body) {
    write("sweeps/s.ini", body);
    return (dir_ / "sweeps/s.ini").string();
  }
  // The error's text, or "" when the file loads.
  std::string error_of(const std::string& body) {
    try {
      load_sweep(sweep(body));
    } catch (const bbt::UsageError& e) {
      return e.what();
    }
    return "";
  }
  fs::path dir_;
};

TEST_F(SweepTest, ExpandsMethodsTasksSeedsThenAxesAsAProduct) {
  const auto sw = load_sweep(sweep(
      "[sweep]\nbase = ../base.ini\nmethods = bbt, bbtv2\ntasks = planted\nseeds = 13, 42\n"
      "[set]\ncma.budget = 100\n[axes]\nprompt.intrinsic_dim = 10, 20\nloss.type = ce, hinge, neg_acc\n"));
  ASSERT_EQ(sw.runs.size(), 2u * 2u * 2u * 3u);
  const auto& r0 = sw.runs[0];
  EXPECT_EQ(r0.method, "bbt");
  EXPECT_EQ(r0.task, "planted");
  EXPECT_EQ(r0.split_seed, 13);
  EXPECT_EQ(r0.config, (dir_ / "base.ini").lexically_normal().string());
  ASSERT_EQ(r0.axis_values.size(), 2u);
  EXPECT_EQ(r0.axis_values[0].second, "10");
  EXPECT_EQ(r0.axis_values[1].second, "ce");
  EXPECT_EQ(sw.runs[1].axis_values[1].second, "hinge");  // the last axis varies fastest
  EXPECT_EQ(sw.runs[3].axis_values[0].second, "20");
  EXPECT_EQ(sw.runs[6].split_seed, 42);
  EXPECT_EQ(sw.runs[12].method, "bbtv2");
  // Overrides in a fixed order; the name is run_name's of the overrides, and comes last too.
  const std::vector<std::string> want = {"--method.name=bbt",        "--task.name=planted",
                                         "--task.split_seed=13",     "--cma.budget=100",
                                         "--prompt.intrinsic_dim=10", "--loss.type=ce"};
  ASSERT_EQ(r0.overrides.size(), want.size() + 1);
  for (std::size_t i = 0; i < want.size(); ++i) EXPECT_EQ(r0.overrides[i], want[i]);
  EXPECT_EQ(r0.name, bbt::app::run_name(r0.config, want));
  EXPECT_EQ(r0.overrides.back(), "--output.run_name=" + r0.name);
  EXPECT_EQ(r0.name.rfind("base-s13-", 0), 0u) << r0.name;
  std::set<std::string> names;
  for (const auto& r : sw.runs) names.insert(r.name);
  EXPECT_EQ(names.size(), sw.runs.size());
  EXPECT_EQ(bbt::app::plan_line(r0).substr(0, r0.name.size() + 10), r0.name + "\t--config=");
}

TEST_F(SweepTest, ZippedAxesVaryTogether) {
  const auto sw = load_sweep(sweep(
      "[sweep]\nbase = ../base.ini\nzip = prompt.intrinsic_dim, cma.popsize\n"
      "[axes]\nprompt.intrinsic_dim = 10, 20, 30\nloss.type = ce, hinge\ncma.popsize = 5, 6, 7\n"));
  ASSERT_EQ(sw.runs.size(), 6u);
  EXPECT_EQ(sw.runs[0].axis_values[0].second, "10");
  EXPECT_EQ(sw.runs[0].axis_values[2].second, "5");
  EXPECT_EQ(sw.runs[1].axis_values[1].second, "hinge");
  EXPECT_EQ(sw.runs[2].axis_values[0].second, "20");
  EXPECT_EQ(sw.runs[2].axis_values[2].second, "6");
  EXPECT_EQ(sw.runs[5].axis_values[2].second, "7");
  // No methods/tasks/seeds: the labels come from the base configuration.
  EXPECT_EQ(sw.runs[0].method, "bbt");
  EXPECT_EQ(sw.runs[0].task, "planted");
  EXPECT_EQ(sw.runs[0].split_seed, 42);
}

TEST_F(SweepTest, LabelSectionsAndTaskInTheBasePath) {
  write("planted.ini", "[task]\nname = planted\n[model]\npath = m\n");
  write("other.ini", "[model]\npath = m\n");
  const auto sw = load_sweep(sweep(
      "[sweep]\nbase = ../{task}.ini\nmethods = small, bbt\ntasks = planted, other\n"
      "[method small]\nmethod.name = bbtv2\nprompt.alpha = 0.5\n"
      "[task other]\ntask.name = planted\ntask.planted_seed = 9\n"));
  ASSERT_EQ(sw.runs.size(), 4u);
  EXPECT_EQ(sw.runs[0].method, "small");
  EXPECT_EQ(sw.runs[0].overrides[0], "--method.name=bbtv2");
  EXPECT_EQ(sw.runs[0].overrides[1], "--prompt.alpha=0.5");
  EXPECT_EQ(sw.runs[0].name.rfind("planted-", 0), 0u) << sw.runs[0].name;
  EXPECT_EQ(sw.runs[1].task, "other");
  EXPECT_EQ(sw.runs[1].name.rfind("other-", 0), 0u) << sw.runs[1].name;
  EXPECT_EQ(sw.runs[1].config, (dir_ / "other.ini").lexically_normal().string());
  EXPECT_EQ(sw.runs[3].overrides[0], "--method.name=bbt");
  EXPECT_EQ(sw.runs[3].overrides[1], "--task.name=planted");
  EXPECT_EQ(sw.runs[3].overrides[2], "--task.planted_seed=9");
  // The label's task.name is not a built-in name and the section does not set it.
  EXPECT_NE(error_of("[sweep]\nbase = ../planted.ini\ntasks = mine\n[task mine]\ntask.planted_seed = 1\n")
                .find("s.ini:2: run "),
            std::string::npos);
}

TEST_F(SweepTest, EveryErrorNamesFileAndLine) {
  const std::string head = "[sweep]\nbase = ../base.ini\n";
  EXPECT_NE(error_of(head + "[axes]\nprompt.intrinsic_dimm = 1, 2\n").find("s.ini:4: unknown key 'prompt.intrinsic_dimm'"),
            std::string::npos);
  EXPECT_NE(error_of(head + "[axes]\nprompt.intrinsic_dim = 1, x\n").find("s.ini:4: invalid value 'x'"), std::string::npos);
  EXPECT_NE(error_of(head + "methods = bbt, nope\n").find("s.ini:3: invalid value 'nope' for method.name"),
            std::string::npos);
  EXPECT_NE(error_of(head + "tasks = sst3\n").find("s.ini:3:"), std::string::npos);
  EXPECT_NE(error_of(head + "seeds = 1, one\n").find("s.ini:3:"), std::string::npos);
  EXPECT_NE(error_of(head + "metods = bbt\n").find("s.ini:3: unknown key 'metods' in [sweep]"), std::string::npos);
  EXPECT_NE(error_of(head + "[axis]\n").find("s.ini:3: unknown section '[axis]'"), std::string::npos);
  EXPECT_NE(error_of(head + "[set]\nloss.margin = 1\n[axes]\nloss.margin = 1, 2\n").find("s.ini:6: key 'loss.margin' is set twice"),
            std::string::npos);
  EXPECT_NE(error_of(head + "[set]\noutput.run_name = x\n").find("s.ini:4: output.run_name cannot be set"),
            std::string::npos);
  EXPECT_NE(error_of(head + "zip = loss.type\n[axes]\nprompt.intrinsic_dim = 1, 2\n").find("s.ini:3: zip names 'loss.type'"),
            std::string::npos);
  EXPECT_NE(error_of(head + "zip = a.b, c.d\n[axes]\n").find("s.ini:3:"), std::string::npos);
  EXPECT_NE(error_of(head + "zip = loss.type, prompt.n_tokens\n[axes]\nloss.type = ce, hinge\nprompt.n_tokens = 1, 2, 3\n")
                .find("s.ini:3: zipped axes need the same number of values"),
            std::string::npos);
  EXPECT_NE(error_of("[sweep]\nbase = ../missing.ini\n").find("s.ini:2: base configuration: cannot read"),
            std::string::npos);
  EXPECT_NE(error_of("[sweep]\nmethods = bbt\n").find("s.ini:1: [sweep] has no 'base = FILE'"), std::string::npos);
  EXPECT_NE(error_of(head + "[task x]\ntask.name = planted\n").find("s.ini:3: [task x] is not listed"), std::string::npos);
  EXPECT_NE(error_of(head + "methods = bbt, bbt\n").find("listed twice"), std::string::npos);
  EXPECT_NE(error_of(head + "bogus line\n").find("s.ini:3: syntax error"), std::string::npos);
  // A cross-key rule of the merged configuration (validate()): the run is named.
  EXPECT_NE(error_of(head + "[set]\nprompt.intrinsic_dim = 0\n").find("s.ini:"), std::string::npos);
  EXPECT_NE(error_of(head + "[set]\ntask.k_shot = -1\n").find("s.ini:"), std::string::npos);
  // Two labels with the same overrides would share a run file.
  EXPECT_NE(error_of(head + "methods = a, b\n[method a]\nmethod.name = bbt\n[method b]\nmethod.name = bbt\n")
                .find("the same name"),
            std::string::npos);
  EXPECT_EQ(error_of(head + "methods = bbt\n"), "");
}

TEST_F(SweepTest, LayoutAblationComparesTheMethods) {
  const std::string head = "[sweep]\nbase = ../base.ini\nmethods = bbt, bbt_adam\ntasks = planted\nseeds = 13\n";
  EXPECT_FALSE(load_sweep(sweep(head)).methods_ablation);
  EXPECT_TRUE(load_sweep(sweep(head + "layout = ablation\n")).methods_ablation);
  EXPECT_FALSE(load_sweep(sweep(head + "layout = table3\n")).methods_ablation);
  EXPECT_NE(error_of(head + "layout = figure\n").find("s.ini:6: layout = figure: expected table3 or ablation"),
            std::string::npos)
      << error_of(head + "layout = figure\n");
}

TEST(SweepFiles, ShippedSweepsExpand) {
  for (const auto& entry : fs::directory_iterator(fs::path(BBT_SOURCE_DIR) / "configs" / "sweeps")) {
    if (entry.path().extension() != ".ini") continue;
    SCOPED_TRACE(entry.path().string());
    const auto sw = load_sweep(entry.path().string());
    EXPECT_FALSE(sw.runs.empty());
  }
}

}  // namespace

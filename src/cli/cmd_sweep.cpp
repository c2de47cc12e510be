// `bbt sweep`: what a sweep file (configs/sweeps/*.ini) runs, for job scripts and people.
#include <iostream>
#include <nlohmann/json.hpp>

#include "bbt/app/sweep.hpp"
#include "bbt/common/error.hpp"
#include "commands.hpp"

namespace bbt::cli {

namespace {
const char* kUsage =
    "usage: bbt sweep plan FILE [--json]\n\n"
    "Expands a sweep file (methods x tasks x split seeds x axes; format in README 'Sweeps') and\n"
    "prints one line per run, tab-separated: the run name (what `bbt train --print-run-name` says),\n"
    "then --config=FILE and the run's --section.key=value overrides. Every key and value is checked\n"
    "against the configuration key table and every run's configuration is validated first.\n"
    "jobs/local.sh FILE and jobs/sweep.sbatch FILE run these lines.\n\n"
    "  --json  one JSON array instead, an object per run: name, config, overrides, method, task,\n"
    "          split_seed, axes (key -> value), output_dir, output_dir_set (tools/plot_sweep.py)\n";
}

int cmd_sweep(const Args& args) {
  if (args.size() >= 2 && (args[1] == "--help" || args[1] == "-h")) {
    std::cout << kUsage;
    return 0;
  }
  if (args.size() < 2) throw UsageError("bbt sweep: missing subcommand (bbt sweep plan FILE)");
  if (args[1] != "plan") throw UsageError("bbt sweep: unknown subcommand '" + args[1] + "' (bbt sweep plan FILE)");
  std::string file;
  bool json = false;
  for (std::size_t i = 2; i < args.size(); ++i) {
    if (args[i] == "--json") {
      json = true;
    } else if (args[i].rfind("--", 0) == 0 || !file.empty()) {
      throw UsageError("bbt sweep plan: unexpected argument '" + args[i] + "' (bbt sweep plan FILE [--json])");
    } else {
      file = args[i];
    }
  }
  if (file.empty()) throw UsageError("bbt sweep plan: expected one sweep file (bbt sweep plan FILE [--json])");
  const app::Sweep sweep = app::load_sweep(file);
  if (json) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const auto& run : sweep.runs) {
      nlohmann::ordered_json r;
      r["name"] = run.name;
      r["config"] = run.config;
      r["overrides"] = run.overrides;
      r["method"] = run.method;
      r["task"] = run.task;
      r["split_seed"] = run.split_seed;
      r["axes"] = nlohmann::ordered_json::object();
      for (const auto& [k, v] : run.axis_values) r["axes"][k] = v;
      r["output_dir"] = run.output_dir;
      r["output_dir_set"] = run.output_dir_set;
      out.push_back(r);
    }
    std::cout << out.dump(1) << "\n";
    return 0;
  }
  std::string out;
  for (const auto& run : sweep.runs) out += app::plan_line(run) + "\n";
  std::cout << out << std::flush;
  return 0;
}

}  // namespace bbt::cli

// `bbt sweep`: what a sweep file (configs/sweeps/*.ini) runs, for job scripts and people.
#include <iostream>

#include "bbt/app/sweep.hpp"
#include "bbt/common/error.hpp"
#include "commands.hpp"

namespace bbt::cli {

namespace {
const char* kUsage =
    "usage: bbt sweep plan FILE\n\n"
    "Expands a sweep file (methods x tasks x split seeds x axes; format in README 'Sweeps') and\n"
    "prints one line per run, tab-separated: the run name (what `bbt train --print-run-name` says),\n"
    "then --config=FILE and the run's --section.key=value overrides. Every key and value is checked\n"
    "against the configuration key table and every run's configuration is validated first.\n"
    "jobs/local.sh FILE and jobs/sweep.sbatch FILE run these lines.\n";
}

int cmd_sweep(const Args& args) {
  if (args.size() >= 2 && (args[1] == "--help" || args[1] == "-h")) {
    std::cout << kUsage;
    return 0;
  }
  if (args.size() < 2) throw UsageError("bbt sweep: missing subcommand (bbt sweep plan FILE)");
  if (args[1] != "plan") throw UsageError("bbt sweep: unknown subcommand '" + args[1] + "' (bbt sweep plan FILE)");
  if (args.size() != 3 || args[2].rfind("--", 0) == 0)
    throw UsageError("bbt sweep plan: expected one sweep file (bbt sweep plan FILE)");
  const app::Sweep sweep = app::load_sweep(args[2]);
  std::string out;
  for (const auto& run : sweep.runs) out += app::plan_line(run) + "\n";
  std::cout << out << std::flush;
  return 0;
}

}  // namespace bbt::cli

#include <iostream>

#include "bbt/app/job.hpp"
#include "bbt/cluster/mpi.hpp"
#include "bbt/common/error.hpp"
#include "commands.hpp"

namespace bbt::cli {

int cmd_eval(const Args& args) {
  app::EvalArgs e;
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= args.size()) throw UsageError(args[0] + ": option '" + a + "' needs a value");
      return args[++i];
    };
    if (a == "--help" || a == "-h") {
      std::cout
          << "usage: bbt eval --run RUN.h5 [--split test|dev] [--data FILE] [--section.key value ...]\n\n"
             "Scores a run's kept prompt (/best/z) with the run's own configuration and prints one JSON\n"
             "object. --data replaces the test file (same format as the task's); configuration keys\n"
             "override the stored ones (e.g. --model.path where the checkpoint lives on this machine).\n"
             "Runs under mpirun or srun too (the examples are sharded across ranks).\n";
      return 0;
    } else if (a == "--run") {
      e.run = value();
    } else if (a == "--split") {
      e.split = value();
    } else if (a == "--data") {
      e.data = value();
    } else if (a.rfind("--", 0) == 0 && a.find('.') != std::string::npos) {
      e.overrides.push_back(a);
      if (a.find('=') == std::string::npos) e.overrides.push_back(value());
    } else {
      throw UsageError(args[0] + ": unknown argument '" + a + "' (see bbt eval --help)");
    }
  }
  if (e.run.empty()) throw UsageError(args[0] + ": option '--run' is required");
  if (e.split != "test" && e.split != "dev")
    throw UsageError(args[0] + ": invalid value '" + e.split + "' for --split: expected test | dev");
  return app::run_eval(e);
}

}  // namespace bbt::cli

#include <cstdlib>
#include <iostream>

#include "bbt/app/job.hpp"
#include "bbt/cluster/mpi.hpp"
#include "bbt/common/error.hpp"
#include "bbt/app/config.hpp"
#include "commands.hpp"

namespace bbt::cli {
namespace {

// Fault injection for the test suite (tests/mpi/failures.sh): BBT_TEST_FAIL_ON_RANK=R makes
// rank R fail after a training evaluation, as a real evaluation error would.
cluster::ServeHooks test_hooks() {
  cluster::ServeHooks hooks;
  if (const char* fail = std::getenv("BBT_TEST_FAIL_ON_RANK")) {
    const int target = std::atoi(fail);
    hooks.after_evaluate = [target](int rank, cluster::Split split) {
      if (rank == target && split == cluster::Split::kTrain)
        throw Error("injected failure (BBT_TEST_FAIL_ON_RANK)");
    };
  }
  return hooks;
}

}  // namespace

int cmd_train(const Args& args) {
  app::TrainArgs parsed;
  try {
    parsed = app::parse_train_args(args);
  } catch (const UsageError&) {
    // Every rank parses the same arguments: only the first one reports.
    if (cluster::launcher_rank() != 0) return app::kExitUsage;
    throw;
  }
  if (parsed.help) {
    std::cout << parsed.help_text;
    return 0;
  }
  if (parsed.print_run_name) {
    std::cout << parsed.run_name << "\n";
    return 0;
  }
  if (parsed.print_config) {
    std::cout << parsed.config.to_ini();
    return 0;
  }
  std::string command_line = "bbt train";
  for (std::size_t i = 1; i < args.size(); ++i) command_line += " " + args[i];
  return app::run_train(parsed, command_line, test_hooks());
}

}  // namespace bbt::cli

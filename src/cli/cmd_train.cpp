#include <iostream>

#include "bbt/common/error.hpp"
#include "bbt/dist/job.hpp"
#include "bbt/dist/mpi.hpp"
#include "bbt/io/config.hpp"
#include "commands.hpp"

namespace bbt::cli {

int cmd_train(const Args& args) {
  io::TrainArgs parsed;
  try {
    parsed = io::parse_train_args(args);
  } catch (const UsageError&) {
    // Every rank parses the same arguments: only the first one reports.
    if (dist::launcher_rank() != 0) return dist::kExitUsage;
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
  return dist::run_train(parsed, command_line);
}

}  // namespace bbt::cli

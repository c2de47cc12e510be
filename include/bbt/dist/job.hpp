#pragma once
// The distributed BBT job (`bbt train`): rank 0 owns CMA-ES and the run file, every rank (rank 0
// too) evaluates an equal share of the (candidate, example) pairs with its model replica.
#include <string>
#include <vector>

#include "bbt/io/config.hpp"

namespace bbt::dist {

// Exit codes of `bbt train` that job scripts act on.
constexpr int kExitFinished = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
// SIGTERM or SIGUSR1 arrived: the generation was finished and checkpointed; requeue and resume.
constexpr int kExitCheckpointed = 75;

// Runs the whole job on this rank; returns the process exit code. Starts and ends MPI itself.
// Any error on any rank ends every rank (MPI_Abort) after printing `bbt: error: rank R: ...`.
int run_train(const io::TrainArgs& args, const std::string& command_line);

// `bbt eval`: re-scores a run's kept prompt (/best/z) on its test split (or --data FILE) or dev.
struct EvalArgs {
  std::string run;
  std::string split = "test";          // test | dev
  std::string data;                    // replaces the test file
  std::vector<std::string> overrides;  // --section.key value (e.g. --model.path on another machine)
};
int run_eval(const EvalArgs& args);

}  // namespace bbt::dist

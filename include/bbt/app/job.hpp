#pragma once
// The job's entry points (`bbt train`, `bbt eval`): rank 0 runs the training loop (app/train)
// with a method (methods/) and the run record; every rank serves evaluations through the
// cluster (cluster/). Each starts and ends MPI itself; any error on any rank ends every rank
// (MPI_Abort) after printing `bbt: error: rank R: ...`.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bbt/cluster/cluster.hpp"
#include "bbt/app/config.hpp"
#include "bbt/methods/method.hpp"

namespace bbt::app {

// Exit codes of `bbt train` that job scripts act on.
constexpr int kExitFinished = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
// SIGTERM or SIGUSR1 arrived: the generation was finished and checkpointed; requeue and resume.
constexpr int kExitCheckpointed = 75;

// `bbt train`: the whole job on this rank; returns the process exit code. `hooks` are for tests.
int run_train(const TrainArgs& args, const std::string& command_line,
              const cluster::ServeHooks& hooks = {});

struct Replica;
// The method `config` names, over the replica's splits (the one place that knows every method).
std::unique_ptr<methods::Method> make_method(const RunConfig& config, const Replica& replica);

// `bbt eval`: re-scores a run's kept prompt (/best/z) on its test split (or --data FILE) or dev;
// a baseline's run is re-run from its configuration (its fit is deterministic: the same bits).
struct EvalArgs {
  std::string run;
  std::string split = "test";          // test | dev
  std::string data;                    // replaces the test file
  std::vector<std::string> overrides;  // --section.key value (e.g. --model.path on another machine)
};
int run_eval(const EvalArgs& args);

// Runs `job` on this rank inside an MPI session; turns an error into `bbt: error: rank R: ...`
// and MPI_Abort of every rank.
int run_in_mpi(const std::function<int(cluster::MpiSession&)>& job);

}  // namespace bbt::app

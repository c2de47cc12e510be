#pragma once
// A sweep file (configs/sweeps/*.ini): one study — methods × tasks × split seeds × axes over
// configuration keys — expanded into `bbt train` runs with their deterministic names. `bbt sweep
// plan`, jobs/local.sh, jobs/sweep.sbatch and `bbt report --sweep` all read it through here.
//
//   [sweep]
//   base = ../{task}.ini        # the base configuration, relative to the sweep file; {task} and
//                               # {method} are replaced by the run's task and method labels
//   methods = bbt, bbtv2        # labels: method.name values, or [method LABEL] sections
//   tasks = sst2, ag_news       # labels: task.name values, or [task LABEL] sections
//   seeds = 13, 42, 100         # task.split_seed
//   zip = prompt.intrinsic_dim, cma.popsize   # these axes vary together (one line per group)
//   layout = ablation           # table3 (default) | ablation: with no axes, the report compares
//                               # the methods as an ablation (no paper rows), e.g. CMA-ES vs Adam
//
//   [set]                       # overrides of every run
//   cma.budget = 8000
//
//   [axes]                      # one axis per key: a comma-separated list of values
//   prompt.intrinsic_dim = 100, 200, 500, 1000
//
//   [method bbtv2_small]        # a method label's overrides (method.name defaults to the label)
//   method.name = bbtv2
//   prompt.alpha = 0.2
//
//   [task planted_a]            # a task label's overrides (task.name defaults to the label)
//   task.name = planted
//   task.planted_seed = 7
//
// Runs are methods (outermost), then tasks, seeds, then the axes in file order (a zip group at its
// first key's place). Every key and value is checked against the configuration key table, and
// every run's whole configuration (base file + overrides) is built and validated; an error is one
// bbt::UsageError "FILE:LINE: ...".
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace bbt::app {

struct SweepRun {
  std::string name;    // run_name(config, overrides): what `bbt train --print-run-name` says
  std::string config;  // the base configuration file (lexically normalised path)
  // --section.key=value, in a fixed order: method, task, task.split_seed, [set], axes; the last is
  // --output.run_name=NAME, so `bbt train --config CONFIG <these>` writes NAME.
  std::vector<std::string> overrides;
  std::string method, task;  // labels as listed in the sweep file (or taken from the base config)
  std::int64_t split_seed = 0;
  std::vector<std::pair<std::string, std::string>> axis_values;  // (key, value), in axis order
  std::string output_dir;  // output.dir of the run's merged configuration
  bool output_dir_set = false;  // output.dir came from the sweep file ([set] or a section)
};

struct SweepAxis {
  std::string key;
  std::vector<std::string> values;
  int group = -1;  // zip group index, -1 = product axis
};

struct Sweep {
  std::string file;
  std::vector<std::string> methods, tasks;  // labels, in file order
  std::vector<std::int64_t> seeds;
  std::vector<SweepAxis> axes;
  std::vector<SweepRun> runs;
  bool methods_ablation = false;  // layout = ablation: the methods are the ablation's axis
};

// Reads, expands and validates a sweep file (also reads every base configuration it names).
Sweep load_sweep(const std::string& path);

// One line of `bbt sweep plan`: NAME, then --config=FILE and the overrides, tab-separated.
std::string plan_line(const SweepRun& run);

}  // namespace bbt::app

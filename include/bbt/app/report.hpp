#pragma once
// `bbt report`: one summary line per run file and, over several runs, mean ± std per task in the
// layout of the paper's main table, next to the paper's BBT row.
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace bbt::app {

// What a run file says about one run. Metrics are fractions as stored (the tables print x100);
// NaN = not there (no dev evaluation yet, test disabled, job still running).
struct RunSummary {
  static constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  std::string path;
  std::string task, metric;  // root attributes "task", "metric" ("acc" / "f1")
  // Root attribute "method"; else the stored configuration's [method] name; else bbt.
  std::string method = "bbt";
  std::int64_t split_seed = -1, seed = -1, n_ranks = -1;
  std::int64_t api_calls = 0;  // last /train/api_calls row (0 before the first generation); no-step methods: /cost/api_calls
  std::int64_t generations = 0;
  double best_dev = kNaN, test_metric = kNaN, initial_metric = kNaN;
  double seconds = kNaN;  // /run/seconds_total, else the sum of /train/seconds_total so far
  bool finished = false;  // /run/finished == 1 and a finite /test/metric: counts in the means
  bool done = false;      // /run/finished == 1
  std::string status;     // "finished", "finished (no test)" or "running/incomplete"
  // The paper's Table 4 columns (/cost/...; NaN where the file has none). Per-rank arrays: the
  // largest rank's value.
  double user_bytes = kNaN, server_bytes = kNaN, bytes_up_per_query = kNaN, bytes_down_per_query = kNaN;
  double cost_api_calls = kNaN;  // /cost/api_calls, else the last /train/api_calls
  double peak_rss_bytes = kNaN, peak_device_bytes = kNaN;
  double bytes_up_total = kNaN, bytes_down_total = kNaN, tuned_parameters = kNaN;
};

// Reads a run file (also one being written: SWMR). A missing, unreadable or non-run file is a
// bbt::Error naming it.
RunSummary summarize_run(const std::string& path);

// Mean and standard deviation (sample, n - 1; 0 for a single run) of the test metric of the
// finished runs of one task.
struct TaskAggregate {
  std::string method;
  std::string task;
  int runs = 0;
  double mean = 0, std = 0;  // fractions
};
// One entry per method and task with at least one finished run: methods in order of first
// appearance, tasks in the paper's column order (SST-2, Yelp, AG, DBPedia, MRPC, SNLI, RTE), then
// other tasks in order of first appearance.
std::vector<TaskAggregate> aggregate_by_task(const std::vector<RunSummary>& runs);

// The paper's column heading of a task ("SST-2", "MRPC F1", ...); other names as they are.
std::string paper_column(const std::string& task);
// The paper's BBT result (x100) for a built-in task, or NaN.
double paper_bbt(const std::string& task);
// The paper's result (x100) of a method (method.name spelling) on a built-in task, or NaN.
double paper_result(const std::string& method, const std::string& task);

enum class ReportFormat { kText, kCsv, kMarkdown, kLatex };
// text (or terminal) | csv | markdown (md) | latex; bbt::UsageError on other names.
ReportFormat parse_report_format(const std::string& name);

// The per-run table, then (with more than one run) the per-task table with the paper's BBT row.
// avg covers the paper's seven tasks present among the finished runs, for ours and the paper's.
std::string format_report(const std::vector<RunSummary>& runs, ReportFormat format);

struct Sweep;
// `bbt report --sweep FILE`: every run of the sweep (app/sweep.hpp) looked up under its name, in
// `results_dir` (output.dir of the run when the sweep file sets it; else results_dir when not
// empty; else the base configuration's output.dir). A run is finished, running (a live writer holds
// it), unfinished (resumable: it has a checkpoint), failed (no checkpoint, or unreadable) or missing.
// Tables: the runs that are not finished; test metric mean ± std over split seeds with methods (and
// axis values) as rows, tasks as columns, an Avg column and the paper's rows (Table 3 layout); with
// axes, one table per axis (metric against the axis value); costs per method and task (Table 4
// layout). A cell names its runs that are not counted ("missing 1/3"); nothing is left out silently.
std::string format_sweep_report(const Sweep& sweep, const std::string& results_dir, ReportFormat format);

}  // namespace bbt::app

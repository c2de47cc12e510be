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
  std::string method = "bbt";  // root attribute "method" (files from before it: bbt)
  std::int64_t split_seed = -1, seed = -1, n_ranks = -1;
  std::int64_t api_calls = 0;  // last /train/api_calls row (0 before the first generation)
  std::int64_t generations = 0;
  double best_dev = kNaN, test_metric = kNaN, initial_metric = kNaN;
  double seconds = kNaN;  // /run/seconds_total, else the sum of /train/seconds_total so far
  bool finished = false;  // /run/finished == 1 and a finite /test/metric: counts in the means
  std::string status;     // "finished", "finished (no test)" or "running/incomplete"
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

enum class ReportFormat { kText, kCsv, kMarkdown };
ReportFormat parse_report_format(const std::string& name);  // bbt::UsageError on other names

// The per-run table, then (with more than one run) the per-task table with the paper's BBT row.
// avg covers the paper's seven tasks present among the finished runs, for ours and the paper's.
std::string format_report(const std::vector<RunSummary>& runs, ReportFormat format);

}  // namespace bbt::app

// `bbt report`: results table of one or more run files (finished or still running).
#include <boost/program_options.hpp>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

#include "bbt/app/report.hpp"
#include "bbt/app/run_record.hpp"
#include "bbt/app/sweep.hpp"
#include "bbt/common/error.hpp"
#include "commands.hpp"
#include "options.hpp"

namespace bbt::cli {

namespace po = boost::program_options;

int cmd_report(const Args& args) {
  std::vector<std::string> files;
  std::string format_name, sweep_file, results_dir;
  bool state = false, schema = false;
  po::options_description desc(
      "usage: bbt report RUN.h5 [RUN.h5 ...] [--format text|csv|markdown|latex]\n"
      "       bbt report --sweep FILE [--results DIR] [--format text|csv|markdown|latex]\n\n"
      "One line per run (metrics x100), then with several runs mean ± std of the test metric per task\n"
      "in the layout of the paper's main table, next to the paper's BBT row. Unfinished runs are\n"
      "listed but left out of the means. A file that cannot be read is one error line on stderr; the\n"
      "others are still reported, and the exit code is 1.\n\n"
      "With --sweep: every run of a sweep file (README 'Sweeps') by its name: the runs not finished\n"
      "(running, unfinished = resumable, failed, missing), the test metric per method and task (Table 3\n"
      "layout, with the paper's rows), one table per axis (ablations) and the costs (Table 4 layout).\n"
      "A cell says which of its runs are not counted (\"missing 1/3\"). CSV: one long table.\n\noptions");
  desc.add_options()("help", "this text")                                                  //
      ("format", po::value(&format_name)->default_value("text"), "text (terminal) | csv | markdown | latex")  //
      ("sweep", po::value(&sweep_file), "report the runs of this sweep file")                                 //
      ("results", po::value(&results_dir),
       "with --sweep: the directory holding the runs (default: $BBT_RESULTS, else the configuration's "
       "output.dir; a sweep file's own output.dir wins)")  //
      ("state", po::bool_switch(&state),
       "print one word per run instead, for job scripts: none (no file), partial (no checkpoint yet), "
       "checkpoint (resumable), finished; error (unreadable; its error on stderr, exit 1)")  //
      ("schema", po::bool_switch(&schema),
       "print the run file's paths and attributes as one JSON object (key -> path), for tools");
  po::options_description hidden;
  hidden.add_options()("run", po::value(&files));
  po::options_description all;
  all.add(desc).add(hidden);
  po::positional_options_description pos;
  pos.add("run", -1);
  const po::variables_map vm = parse_options(args, all, &pos);
  if (vm.count("help")) {
    std::cout << desc << "\n";
    return 0;
  }
  // A bad file is one error line of its own; the good files are still reported, and the exit code
  // says that something was left out.
  int failed = 0;
  auto report_error = [&](const std::exception& e) {
    std::cout << std::flush;
    std::cerr << "bbt: error: " << e.what() << std::endl;
    ++failed;
  };
  if (schema) {
    nlohmann::ordered_json out;
    for (const auto& [key, path] : app::schema::paths()) out[key] = path;
    std::cout << out.dump(1) << "\n";
    return 0;
  }
  if (state) {
    for (const auto& f : files) {
      try {
        std::cout << app::run_state(f) << "\n";
      } catch (const std::exception& e) {
        std::cout << "error\n";
        report_error(e);
      }
    }
    return failed ? 1 : 0;
  }
  const app::ReportFormat format = app::parse_report_format(format_name);
  if (!sweep_file.empty()) {
    if (!files.empty()) throw UsageError(args[0] + ": --sweep takes no run files (the sweep names them)");
    if (results_dir.empty())
      if (const char* env = std::getenv("BBT_RESULTS")) results_dir = env;
    const app::Sweep sweep = app::load_sweep(sweep_file);
    std::cout << app::format_sweep_report(sweep, results_dir, format) << std::flush;
    return 0;
  }
  if (!results_dir.empty()) throw UsageError(args[0] + ": --results needs --sweep FILE");
  if (files.empty()) throw UsageError(args[0] + ": no run files given (bbt report RUN.h5 [RUN.h5 ...])");
  std::vector<app::RunSummary> runs;
  for (const auto& f : files) {
    try {
      runs.push_back(app::summarize_run(f));
    } catch (const std::exception& e) {
      report_error(e);
    }
  }
  if (!runs.empty()) std::cout << app::format_report(runs, format) << std::flush;
  return failed ? 1 : 0;
}

}  // namespace bbt::cli

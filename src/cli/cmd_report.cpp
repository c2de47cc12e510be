// `bbt report`: results table of one or more run files (finished or still running).
#include <boost/program_options.hpp>
#include <fstream>
#include <iostream>

#include "bbt/common/error.hpp"
#include "bbt/io/report.hpp"
#include "bbt/io/run_file.hpp"
#include "commands.hpp"
#include "options.hpp"

namespace bbt::cli {

namespace po = boost::program_options;

int cmd_report(const Args& args) {
  std::vector<std::string> files;
  std::string format_name;
  bool state = false;
  po::options_description desc(
      "usage: bbt report RUN.h5 [RUN.h5 ...] [--format text|csv|markdown]\n\n"
      "One line per run (metrics x100), then with several runs mean ± std of the test metric per task\n"
      "in the layout of the paper's main table, next to the paper's BBT row. Unfinished runs are\n"
      "listed but left out of the means.\n\noptions");
  desc.add_options()("help", "this text")                                                  //
      ("format", po::value(&format_name)->default_value("text"), "text | csv | markdown")  //
      ("state", po::bool_switch(&state),
       "print one word per run instead, for job scripts: none (no file), partial (no checkpoint yet), "
       "checkpoint (resumable), finished");
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
  if (state) {
    // Read with bbt's own reader: unlike h5ls/h5dump (HDF5 1.10) it opens a killed job's SWMR file.
    for (const auto& f : files) {
      std::string word = "none";
      if (std::ifstream(f).good()) {
        const io::RunFileReader r(f);
        if (r.exists("/run/finished") && r.read_int64_scalar("/run/finished") == 1) {
          word = "finished";
        } else if (r.exists("/checkpoint/latest")) {
          const std::int64_t slot = r.read_int64_scalar("/checkpoint/latest");
          word = slot == 0 || slot == 1 ? "checkpoint" : "partial";
        } else {
          word = "partial";
        }
      }
      std::cout << word << "\n";
    }
    return 0;
  }
  const io::ReportFormat format = io::parse_report_format(format_name);
  if (files.empty()) throw UsageError(args[0] + ": no run files given (bbt report RUN.h5 [RUN.h5 ...])");
  std::vector<io::RunSummary> runs;
  for (const auto& f : files) runs.push_back(io::summarize_run(f));
  std::cout << io::format_report(runs, format) << std::flush;
  return 0;
}

}  // namespace bbt::cli

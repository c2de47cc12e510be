#include "bbt/app/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "bbt/app/schema.hpp"
#include "bbt/common/error.hpp"
#include "bbt/io/run_file.hpp"

namespace bbt::app {
namespace {

constexpr double kNaN = RunSummary::kNaN;

// The paper's main-table columns (REFERENCE.md), with the reference's short names as aliases.
struct PaperTask {
  const char* name;
  const char* alias;
  const char* column;
  double bbt;  // x100
};
constexpr PaperTask kPaperTasks[] = {
    {"sst2", "sst2", "SST-2", 89.56},   {"yelp_polarity", "yelpp", "Yelp", 91.50},
    {"ag_news", "agnews", "AG", 81.51}, {"dbpedia", "dbpedia", "DBPedia", 87.80},
    {"mrpc", "mrpc", "MRPC F1", 61.56}, {"snli", "snli", "SNLI", 46.58},
    {"rte", "rte", "RTE", 52.59},
};
constexpr int kNumPaperTasks = sizeof(kPaperTasks) / sizeof(kPaperTasks[0]);

// Position among the paper's columns, or -1.
int paper_index(const std::string& task) {
  for (int i = 0; i < kNumPaperTasks; ++i)
    if (task == kPaperTasks[i].name || task == kPaperTasks[i].alias) return i;
  return -1;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}
std::string pct(double v) { return std::isfinite(v) ? fmt("%.2f", 100.0 * v) : "-"; }
std::string num(std::int64_t v) { return v < 0 ? "-" : std::to_string(v); }

using Table = std::vector<std::vector<std::string>>;  // first row = header

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

// Display width in characters: the UTF-8 "±" counts once.
std::size_t width(const std::string& s) {
  std::size_t w = 0;
  for (unsigned char c : s) w += (c & 0xC0) != 0x80;
  return w;
}

std::string render(const Table& t, ReportFormat format) {
  std::ostringstream os;
  if (format == ReportFormat::kCsv) {
    for (const auto& row : t) {
      for (std::size_t i = 0; i < row.size(); ++i) os << (i ? "," : "") << csv_field(row[i]);
      os << "\n";
    }
    return os.str();
  }
  std::vector<std::size_t> w(t.front().size(), 0);
  for (const auto& row : t)
    for (std::size_t i = 0; i < row.size(); ++i) w[i] = std::max(w[i], width(row[i]));
  // Numbers right-aligned, words (task, status, file) left-aligned.
  std::vector<bool> left(w.size(), false);
  for (std::size_t i = 0; i < w.size(); ++i)
    for (std::size_t r = 1; r < t.size(); ++r)
      if (t[r][i].find_first_not_of("0123456789.- \xC2\xB1") != std::string::npos) left[i] = true;
  auto cell = [&](const std::string& s, std::size_t i) {
    const std::string pad(w[i] - width(s), ' ');
    return left[i] ? s + pad : pad + s;
  };
  for (std::size_t r = 0; r < t.size(); ++r) {
    if (format == ReportFormat::kMarkdown) {
      os << "|";
      for (std::size_t i = 0; i < t[r].size(); ++i) os << " " << cell(t[r][i], i) << " |";
      os << "\n";
      if (r == 0) {
        os << "|";
        for (std::size_t i = 0; i < w.size(); ++i)
          os << (left[i] ? ":" : "-") << std::string(w[i], '-') << (left[i] ? "-" : ":") << "|";
        os << "\n";
      }
    } else {
      std::string line;
      for (std::size_t i = 0; i < t[r].size(); ++i) line += (i ? "  " : "") + cell(t[r][i], i);
      os << line.substr(0, line.find_last_not_of(' ') + 1) << "\n";
      if (r == 0) {
        std::size_t total = 0;
        for (std::size_t x : w) total += x;
        os << std::string(total + 2 * (w.size() - 1), '-') << "\n";
      }
    }
  }
  return os.str();
}

}  // namespace

RunSummary summarize_run(const std::string& path) {
  io::RunFileReader r(path);  // errors name the file
  RunSummary s;
  s.path = path;
  try {
    s.task = r.string_attribute(schema::kTask);
    s.metric = r.has_attribute(schema::kMetric) ? r.string_attribute(schema::kMetric) : "";
    s.split_seed = r.has_attribute(schema::kSplitSeed) ? r.int_attribute(schema::kSplitSeed) : -1;
    s.seed = r.has_attribute(schema::kSeed) ? r.int_attribute(schema::kSeed) : -1;
    s.n_ranks = r.has_attribute(schema::kNRanks) ? r.int_attribute(schema::kNRanks) : -1;
    if (r.exists(schema::kTrainApiCalls)) {
      const auto calls = r.read_int64(schema::kTrainApiCalls);
      s.generations = static_cast<std::int64_t>(calls.values.size());
      if (!calls.values.empty()) s.api_calls = calls.values.back();
    }
    if (r.exists(schema::kDevMetric)) {
      for (double v : r.read_double(schema::kDevMetric).values)
        if (std::isfinite(v) && !(v <= s.best_dev)) s.best_dev = v;
    }
    if (r.exists(schema::kBestDevMetric)) {
      const double v = r.read_double_scalar(schema::kBestDevMetric);
      if (std::isfinite(v)) s.best_dev = v;
    }
    if (r.exists(schema::kTestMetric)) s.test_metric = r.read_double_scalar(schema::kTestMetric);
    if (r.exists(schema::kTestInitialMetric))
      s.initial_metric = r.read_double_scalar(schema::kTestInitialMetric);
    const bool done = r.exists(schema::kRunFinished) && r.read_int64_scalar(schema::kRunFinished) == 1;
    if (r.exists(schema::kRunSecondsTotal)) s.seconds = r.read_double_scalar(schema::kRunSecondsTotal);
    if (!std::isfinite(s.seconds) && r.exists(schema::kTrainSecondsTotal)) {
      double sum = 0;
      for (double v : r.read_double(schema::kTrainSecondsTotal).values) sum += v;
      s.seconds = sum;
    }
    s.finished = done && std::isfinite(s.test_metric);
    s.status = s.finished ? "finished" : done ? "finished (no test)" : "running/incomplete";
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + " (is '" + path + "' a bbt run file?)");
  }
  return s;
}

std::vector<TaskAggregate> aggregate_by_task(const std::vector<RunSummary>& runs) {
  std::vector<std::string> order;
  for (int i = 0; i < kNumPaperTasks; ++i)
    for (const auto& r : runs)
      if (r.finished && paper_index(r.task) == i) {
        order.push_back(kPaperTasks[i].name);
        break;
      }
  for (const auto& r : runs)
    if (r.finished && paper_index(r.task) < 0 && std::find(order.begin(), order.end(), r.task) == order.end())
      order.push_back(r.task);

  std::vector<TaskAggregate> out;
  for (const auto& task : order) {
    const int pi = paper_index(task);
    std::vector<double> v;
    for (const auto& r : runs)
      if (r.finished && (r.task == task || (pi >= 0 && paper_index(r.task) == pi)))
        v.push_back(r.test_metric);
    TaskAggregate a;
    a.task = task;
    a.runs = static_cast<int>(v.size());
    for (double x : v) a.mean += x;
    a.mean /= a.runs;
    double ss = 0;
    for (double x : v) ss += (x - a.mean) * (x - a.mean);
    a.std = a.runs > 1 ? std::sqrt(ss / (a.runs - 1)) : 0.0;
    out.push_back(a);
  }
  return out;
}

std::string paper_column(const std::string& task) {
  const int i = paper_index(task);
  return i >= 0 ? kPaperTasks[i].column : task;
}

double paper_bbt(const std::string& task) {
  const int i = paper_index(task);
  return i >= 0 ? kPaperTasks[i].bbt : kNaN;
}

ReportFormat parse_report_format(const std::string& name) {
  if (name == "text") return ReportFormat::kText;
  if (name == "csv") return ReportFormat::kCsv;
  if (name == "markdown" || name == "md") return ReportFormat::kMarkdown;
  throw UsageError("--format: unknown format '" + name + "' (text | csv | markdown)");
}

std::string format_report(const std::vector<RunSummary>& runs, ReportFormat format) {
  const bool csv = format == ReportFormat::kCsv;
  Table t{{"task", "status", "split_seed", "seed", "api_calls", "best_dev", "test", "initial_test", "wall_s",
           "ranks", "file"}};
  for (const auto& r : runs)
    t.push_back({r.task + (r.metric.empty() ? "" : " (" + r.metric + ")"), r.status, num(r.split_seed),
                 num(r.seed), num(r.api_calls), pct(r.best_dev), pct(r.test_metric), pct(r.initial_metric),
                 std::isfinite(r.seconds) ? fmt("%.1f", r.seconds) : "-", num(r.n_ranks), r.path});
  std::ostringstream os;
  os << render(t, format);
  if (runs.size() < 2) return os.str();

  const auto agg = aggregate_by_task(runs);
  os << "\n";
  if (agg.empty()) {
    os << (csv ? "" : "no finished runs: no per-task summary\n");
    return os.str();
  }
  // avg over the paper's tasks present, for ours and the paper's row alike.
  double ours_sum = 0, paper_sum = 0;
  int n_paper = 0;
  for (const auto& a : agg)
    if (paper_index(a.task) >= 0) {
      ours_sum += a.mean;
      paper_sum += paper_bbt(a.task);
      ++n_paper;
    }
  if (csv) {  // long format: one row per task, numbers only
    Table s{{"task", "column", "runs", "mean", "std", "paper_bbt"}};
    for (const auto& a : agg)
      s.push_back({a.task, paper_column(a.task), std::to_string(a.runs), pct(a.mean), pct(a.std),
                   std::isfinite(paper_bbt(a.task)) ? fmt("%.2f", paper_bbt(a.task)) : "-"});
    if (n_paper > 0)
      s.push_back({"avg", "avg", "-", pct(ours_sum / n_paper), "-", fmt("%.2f", paper_sum / n_paper)});
    os << render(s, format);
    return os.str();
  }
  Table s{{"method"}};
  std::vector<std::string> ours{"bbt (this system)"}, count{"runs"}, paper{"BBT (paper)"};
  for (const auto& a : agg) {
    s[0].push_back(paper_column(a.task));
    ours.push_back(pct(a.mean) + (a.runs > 1 ? " ± " + pct(a.std) : ""));
    count.push_back(std::to_string(a.runs));
    paper.push_back(std::isfinite(paper_bbt(a.task)) ? fmt("%.2f", paper_bbt(a.task)) : "-");
  }
  if (n_paper > 0) {
    s[0].push_back("avg");
    ours.push_back(pct(ours_sum / n_paper));
    count.push_back("-");
    paper.push_back(fmt("%.2f", paper_sum / n_paper));
  }
  s.push_back(ours);
  s.push_back(count);
  s.push_back(paper);
  os << (format == ReportFormat::kText ? "test metric x100, mean ± std (sample std over runs):\n" : "")
     << render(s, format);
  return os.str();
}

}  // namespace bbt::app

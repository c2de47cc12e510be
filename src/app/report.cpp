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

// The paper's main table rows of the methods this system runs (REFERENCE.md), columns as above.
struct PaperMethod {
  const char* method;
  const char* row;
  double results[kNumPaperTasks];
};
constexpr PaperMethod kPaperMethods[] = {
    {"bbt", "BBT (paper)", {89.56, 91.50, 81.51, 87.80, 61.56, 46.58, 52.59}},
    {"manual", "Manual Prompt (paper)", {79.82, 89.65, 76.96, 41.33, 67.40, 31.11, 51.62}},
    {"icl", "In-Context Learning (paper)", {79.79, 85.38, 62.21, 34.83, 45.81, 47.11, 60.36}},
    {"feature_mlp", "Feature-MLP (paper)", {64.80, 79.20, 70.77, 87.78, 68.40, 42.01, 53.43}},
    {"feature_bilstm", "Feature-BiLSTM (paper)", {65.95, 74.68, 77.28, 90.37, 71.55, 46.02, 52.17}},
};

const PaperMethod* paper_method(const std::string& method) {
  for (const auto& m : kPaperMethods)
    if (method == m.method) return &m;
  return nullptr;
}

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
    if (r.has_attribute(schema::kMethod)) s.method = r.string_attribute(schema::kMethod);
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
  std::vector<std::string> methods, order;
  for (const auto& r : runs)
    if (r.finished && std::find(methods.begin(), methods.end(), r.method) == methods.end())
      methods.push_back(r.method);
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
  for (const auto& method : methods)
    for (const auto& task : order) {
      const int pi = paper_index(task);
      std::vector<double> v;
      for (const auto& r : runs)
        if (r.finished && r.method == method && (r.task == task || (pi >= 0 && paper_index(r.task) == pi)))
          v.push_back(r.test_metric);
      if (v.empty()) continue;
      TaskAggregate a;
      a.method = method;
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

double paper_result(const std::string& method, const std::string& task) {
  const int i = paper_index(task);
  const PaperMethod* m = paper_method(method);
  return i >= 0 && m ? m->results[i] : kNaN;
}

ReportFormat parse_report_format(const std::string& name) {
  if (name == "text") return ReportFormat::kText;
  if (name == "csv") return ReportFormat::kCsv;
  if (name == "markdown" || name == "md") return ReportFormat::kMarkdown;
  throw UsageError("--format: unknown format '" + name + "' (text | csv | markdown)");
}

std::string format_report(const std::vector<RunSummary>& runs, ReportFormat format) {
  const bool csv = format == ReportFormat::kCsv;
  Table t{{"task", "method", "status", "split_seed", "seed", "api_calls", "best_dev", "test", "initial_test", "wall_s",
           "ranks", "file"}};
  for (const auto& r : runs)
    t.push_back({r.task + (r.metric.empty() ? "" : " (" + r.metric + ")"), r.method, r.status, num(r.split_seed),
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
  std::vector<std::string> methods, tasks;
  for (const auto& a : agg) {
    if (std::find(methods.begin(), methods.end(), a.method) == methods.end()) methods.push_back(a.method);
    if (std::find(tasks.begin(), tasks.end(), a.task) == tasks.end()) tasks.push_back(a.task);
  }
  auto find = [&](const std::string& method, const std::string& task) -> const TaskAggregate* {
    for (const auto& a : agg)
      if (a.method == method && a.task == task) return &a;
    return nullptr;
  };
  // avg over the paper's tasks present for the method, for ours and the paper's row alike.
  auto averages = [&](const std::string& method, double& ours, double& paper) {
    double o = 0, q = 0;
    int n = 0;
    for (const auto& task : tasks)
      if (const TaskAggregate* a = find(method, task); a && paper_index(task) >= 0) {
        o += a->mean;
        q += paper_result(method, task);
        ++n;
      }
    ours = n > 0 ? o / n : kNaN;
    paper = n > 0 ? q / n : kNaN;
    return n;
  };
  auto paper_text = [](double v) { return std::isfinite(v) ? fmt("%.2f", v) : std::string("-"); };
  if (csv) {  // long format: one row per method and task, numbers only
    Table s{{"method", "task", "column", "runs", "mean", "std", "paper", "paper_bbt"}};
    for (const auto& a : agg)
      s.push_back({a.method, a.task, paper_column(a.task), std::to_string(a.runs), pct(a.mean), pct(a.std),
                   paper_text(paper_result(a.method, a.task)), paper_text(paper_bbt(a.task))});
    for (const auto& method : methods) {
      double ours = 0, paper = 0;
      if (averages(method, ours, paper) == 0) continue;
      double bbt_sum = 0;
      int n = 0;
      for (const auto& task : tasks)
        if (find(method, task) && paper_index(task) >= 0) {
          bbt_sum += paper_bbt(task);
          ++n;
        }
      s.push_back({method, "avg", "avg", "-", pct(ours), "-", paper_text(paper), fmt("%.2f", bbt_sum / n)});
    }
    os << render(s, format);
    return os.str();
  }
  bool any_paper = false;
  for (const auto& task : tasks) any_paper |= paper_index(task) >= 0;
  Table s{{"method"}};
  for (const auto& task : tasks) s[0].push_back(paper_column(task));
  if (any_paper) s[0].push_back("avg");
  for (const auto& method : methods) {
    std::vector<std::string> ours{method + " (this system)"}, count{method + " runs"};
    const PaperMethod* pm = paper_method(method);
    std::vector<std::string> paper{pm ? pm->row : method + " (paper)"};
    for (const auto& task : tasks) {
      const TaskAggregate* a = find(method, task);
      ours.push_back(a ? pct(a->mean) + (a->runs > 1 ? " ± " + pct(a->std) : "") : "-");
      count.push_back(a ? std::to_string(a->runs) : "0");
      paper.push_back(paper_text(paper_result(method, task)));
    }
    if (any_paper) {
      double o = 0, q = 0;
      const bool some = averages(method, o, q) > 0;
      ours.push_back(some ? pct(o) : "-");
      count.push_back("-");
      paper.push_back(some ? paper_text(q) : "-");
    }
    s.push_back(ours);
    s.push_back(count);
    if (any_paper) s.push_back(paper);
  }
  os << (format == ReportFormat::kText ? "test metric x100, mean ± std (sample std over runs):\n" : "")
     << render(s, format);
  return os.str();
}

}  // namespace bbt::app

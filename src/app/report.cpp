#include "bbt/app/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <sstream>

#include "bbt/app/run_record.hpp"
#include "bbt/app/schema.hpp"
#include "bbt/app/sweep.hpp"
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

// The paper's main table (Sun et al., ICML 2022, Table 3: RoBERTa-large, 16-shot, mean over 3 splits;
// shared/REFERENCE.md), one row per method by its method.name spelling, columns as above; NaN where
// the paper has no number. BBTv2's row is its own paper's (Sun et al., EMNLP 2022, Table 2).
// prompt_tuning, ptuning_v2 and model_tuning: the gradient baselines (issue 17).
struct PaperMethod {
  const char* method;
  const char* row;
  double results[kNumPaperTasks];
};
constexpr double kNone = std::numeric_limits<double>::quiet_NaN();
constexpr PaperMethod kPaperMethods[] = {
    {"bbt", "BBT (paper)", {89.56, 91.50, 81.51, 87.80, 61.56, 46.58, 52.59}},
    {"bbtv2", "BBTv2 (paper)", {90.33, 92.86, 85.28, kNone, kNone, 60.62, kNone}},
    {"prompt_tuning", "Prompt Tuning (paper)", {68.23, 61.02, 84.81, 87.75, 51.61, 36.13, 54.69}},
    {"ptuning_v2", "P-Tuning v2 (paper)", {64.33, 92.63, 83.46, 97.05, 68.14, 36.89, 50.78}},
    {"model_tuning", "Model Tuning (paper)", {85.39, 91.82, 86.36, 97.98, 77.35, 54.64, 58.60}},
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

std::string latex_escape(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (s.compare(i, 2, "\xC2\xB1") == 0) {  // ±
      out += "$\\pm$";
      ++i;
    } else if (std::string("&%$#_{}").find(c) != std::string::npos) {
      out += std::string("\\") + c;
    } else if (c == '~') {
      out += "\\textasciitilde{}";
    } else if (c == '^') {
      out += "\\textasciicircum{}";
    } else if (c == '\\') {
      out += "\\textbackslash{}";
    } else {
      out += c;
    }
  }
  return out;
}

std::string render(const Table& t, ReportFormat format) {
  std::ostringstream os;
  if (format == ReportFormat::kLatex) {  // a booktabs tabular (\usepackage{booktabs})
    os << "\\begin{tabular}{";
    for (std::size_t i = 0; i < t.front().size(); ++i) os << (i ? "r" : "l");
    os << "}\n\\toprule\n";
    for (std::size_t r = 0; r < t.size(); ++r) {
      for (std::size_t i = 0; i < t[r].size(); ++i) os << (i ? " & " : "") << latex_escape(t[r][i]);
      os << " \\\\\n";
      if (r == 0) os << "\\midrule\n";
    }
    os << "\\bottomrule\n\\end{tabular}\n";
    return os.str();
  }
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
    if (r.has_attribute(schema::kMethod)) {
      s.method = r.string_attribute(schema::kMethod);
    } else if (r.has_attribute(schema::kConfig)) {  // the stored configuration's [method] name
      std::istringstream cfg(r.string_attribute(schema::kConfig));
      std::string section;
      for (std::string line; std::getline(cfg, line);) {
        line.erase(0, line.find_first_not_of(" \t"));
        if (!line.empty() && line[0] == '[') section = line.substr(0, line.find(']') + 1);
        const auto eq = line.find('=');
        if (section == "[method]" && eq != std::string::npos && line.compare(0, 4, "name") == 0 &&
            line.find_first_not_of(" \t", 4) == eq) {
          std::string v = line.substr(eq + 1);
          v.erase(0, v.find_first_not_of(" \t"));
          v.erase(v.find_last_not_of(" \t\r") + 1);
          if (!v.empty()) s.method = v;
        }
      }
    }
    // Cost datasets: a scalar, or per rank (the largest); NaN when absent or not yet written.
    auto cost = [&r](const char* path) {
      if (!r.exists(path)) return kNaN;
      double best = kNaN;
      for (double v : r.read_double(path).values)
        if (std::isfinite(v) && !(v <= best)) best = v;
      return best;
    };
    s.user_bytes = cost(schema::kCostUserBytes);
    s.server_bytes = cost(schema::kCostServerBytes);
    s.bytes_up_per_query = cost(schema::kCostBytesUp);
    s.bytes_down_per_query = cost(schema::kCostBytesDown);
    s.cost_api_calls = cost(schema::kCostApiCalls);
    s.peak_rss_bytes = cost(schema::kCostPeakRss);
    s.peak_device_bytes = cost(schema::kCostPeakDevice);
    s.bytes_up_total = cost(schema::kCostBytesUpTotal);
    s.bytes_down_total = cost(schema::kCostBytesDownTotal);
    s.tuned_parameters = cost(schema::kCostTunedParameters);
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
    s.done = done;
    if (!std::isfinite(s.cost_api_calls) && s.generations > 0) s.cost_api_calls = static_cast<double>(s.api_calls);
    // A method that takes no steps has no /train/api_calls: its calls are the cost column's.
    if (s.generations == 0 && std::isfinite(s.cost_api_calls)) s.api_calls = static_cast<std::int64_t>(s.cost_api_calls);
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
  if (name == "text" || name == "terminal") return ReportFormat::kText;
  if (name == "csv") return ReportFormat::kCsv;
  if (name == "markdown" || name == "md") return ReportFormat::kMarkdown;
  if (name == "latex" || name == "tex") return ReportFormat::kLatex;
  throw UsageError("--format: unknown format '" + name + "' (text | terminal | csv | markdown | latex)");
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


namespace {

// One run of a sweep as the report sees it.
struct SweepEntry {
  const SweepRun* run = nullptr;
  std::string path;
  std::string state;  // finished | finished (no test) | running | unfinished | failed | missing
  RunSummary summary;
  bool counted() const { return state == "finished"; }
};

// The runs of one table cell.
struct Cell {
  std::vector<const SweepEntry*> entries;
  std::vector<double> values(double RunSummary::*field, bool done_only) const {
    std::vector<double> v;
    for (const auto* e : entries)
      if ((done_only ? e->summary.done : e->counted()) && std::isfinite(e->summary.*field)) v.push_back(e->summary.*field);
    return v;
  }
  // "missing 1/3, failed 1/3" for the runs not counted; "" when every run is.
  std::string not_counted() const {
    std::vector<std::pair<std::string, int>> counts;
    for (const auto* e : entries) {
      if (e->counted()) continue;
      auto it = std::find_if(counts.begin(), counts.end(), [&](const auto& c) { return c.first == e->state; });
      if (it == counts.end()) counts.emplace_back(e->state, 1);
      else ++it->second;
    }
    std::string out;
    for (const auto& [state, n] : counts)
      out += (out.empty() ? "" : ", ") + state + " " + std::to_string(n) + "/" + std::to_string(entries.size());
    return out;
  }
};

void mean_std(const std::vector<double>& v, double& mean, double& sd) {
  mean = kNaN;
  sd = kNaN;
  if (v.empty()) return;
  double sum = 0;
  for (double x : v) sum += x;
  mean = sum / static_cast<double>(v.size());
  double ss = 0;
  for (double x : v) ss += (x - mean) * (x - mean);
  sd = v.size() > 1 ? std::sqrt(ss / static_cast<double>(v.size() - 1)) : 0.0;
}

// "89.10 ± 0.30", with the runs not counted: "89.10 ± 0.30 (missing 1/3)", or "missing 3/3".
std::string metric_cell(const Cell& c) {
  double mean = 0, sd = 0;
  mean_std(c.values(&RunSummary::test_metric, false), mean, sd);
  const std::string note = c.not_counted();
  if (!std::isfinite(mean)) return note.empty() ? "-" : note;
  std::string text = pct(mean) + (c.values(&RunSummary::test_metric, false).size() > 1 ? " ± " + pct(sd) : "");
  return note.empty() ? text : text + " (" + note + ")";
}

std::string bytes_text(double b) {
  if (!std::isfinite(b)) return "-";
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  return fmt(u == 0 ? "%.0f " : "%.1f ", b) + units[u];
}

std::string seconds_text(double mean, double sd, std::size_t n) {
  if (!std::isfinite(mean)) return "-";
  const bool minutes = mean >= 120;
  const double k = minutes ? 60.0 : 1.0;
  std::string t = fmt("%.1f", mean / k);
  if (n > 1) t += " ± " + fmt("%.1f", sd / k);
  return t + (minutes ? " min" : " s");
}

std::string raw(double v) { return std::isfinite(v) ? fmt("%.17g", v) : ""; }

std::string axes_text(const SweepRun& r, const std::string& only = "") {
  std::string out;
  for (const auto& [k, v] : r.axis_values)
    if (only.empty() || k == only) out += (out.empty() ? "" : ", ") + k + "=" + v;
  return out;
}

std::string title(const std::string& text, ReportFormat format) {
  switch (format) {
    case ReportFormat::kMarkdown: return "### " + text + "\n\n";
    case ReportFormat::kLatex: return "% " + text + "\n";
    default: return text + "\n";
  }
}

// Metric table: rows (in order) x tasks, plus Avg; paper rows when `paper` (rows are methods).
std::string metric_table(const std::vector<SweepEntry>& entries, const std::vector<std::string>& tasks,
                         const std::function<std::string(const SweepEntry&)>& row_of, bool paper, ReportFormat format) {
  std::vector<std::string> rows;
  for (const auto& e : entries) {
    const std::string r = row_of(e);
    if (std::find(rows.begin(), rows.end(), r) == rows.end()) rows.push_back(r);
  }
  Table t{{"method"}};
  for (const auto& task : tasks) t[0].push_back(paper_column(task));
  t[0].push_back("Avg");
  for (const auto& row : rows) {
    const PaperMethod* pm = paper_method(row);
    std::vector<std::string> ours{row}, theirs{pm ? pm->row : row + " (paper)"};
    double sum = 0, paper_sum = 0;
    int n = 0, n_paper = 0;
    bool any_paper = false;
    for (const auto& task : tasks) {
      Cell c;
      for (const auto& e : entries)
        if (e.run->task == task && row_of(e) == row) c.entries.push_back(&e);
      ours.push_back(c.entries.empty() ? "" : metric_cell(c));
      double mean = 0, sd = 0;
      mean_std(c.values(&RunSummary::test_metric, false), mean, sd);
      // The paper's number for the method of the row's runs on this task (Table 3, kPaperMethods).
      const double pv = c.entries.empty() ? kNaN : paper_result(c.entries.front()->run->method, task);
      theirs.push_back(std::isfinite(pv) ? fmt("%.2f", pv) : "-");
      any_paper |= std::isfinite(pv);
      if (std::isfinite(mean)) {
        sum += mean;
        ++n;
        if (std::isfinite(pv)) {
          paper_sum += pv;
          ++n_paper;
        }
      }
    }
    const int n_tasks = static_cast<int>(tasks.size());
    ours.push_back(n == 0 ? "-" : pct(sum / n) + (n < n_tasks ? " (" + std::to_string(n) + "/" + std::to_string(n_tasks) + " tasks)" : ""));
    if (n == 0) {  // nothing of ours yet: the paper's average over its tasks here
      paper_sum = 0;
      n_paper = 0;
      for (const auto& task : tasks)
        if (const double pv = pm ? paper_result(row, task) : kNaN; std::isfinite(pv)) {
          paper_sum += pv;
          ++n_paper;
        }
    }
    theirs.push_back(n_paper > 0 && (n == 0 || n_paper == n)
                         ? fmt("%.2f", paper_sum / n_paper) +
                               (n == 0 && n_paper < n_tasks ? " (" + std::to_string(n_paper) + "/" +
                                                                  std::to_string(n_tasks) + " tasks)"
                                                            : "")
                         : "-");
    t.push_back(ours);
    if (paper && any_paper) t.push_back(theirs);
  }
  return render(t, format);
}

}  // namespace

std::string format_sweep_report(const Sweep& sweep, const std::string& results_dir, ReportFormat format) {
  namespace fs = std::filesystem;
  std::vector<SweepEntry> entries;
  std::vector<std::string> tasks;
  for (const auto& run : sweep.runs) {
    SweepEntry e;
    e.run = &run;
    const std::string dir = run.output_dir_set || results_dir.empty() ? run.output_dir : results_dir;
    e.path = (fs::path(dir) / run.name / "run.h5").string();
    if (!fs::exists(e.path)) {
      e.state = "missing";
    } else {
      try {
        e.summary = summarize_run(e.path);
        if (e.summary.done) {
          e.state = e.summary.finished ? "finished" : "finished (no test)";
        } else if (!io::live_writer(e.path).empty()) {
          e.state = "running";
        } else {
          e.state = run_state(e.path) == "checkpoint" ? "unfinished" : "failed";
        }
      } catch (const std::exception&) {
        e.state = io::live_writer(e.path).empty() ? "failed" : "running";
      }
    }
    if (std::find(tasks.begin(), tasks.end(), run.task) == tasks.end()) tasks.push_back(run.task);
    entries.push_back(std::move(e));
  }
  // Tasks in the paper's column order first.
  std::stable_sort(tasks.begin(), tasks.end(), [](const std::string& a, const std::string& b) {
    const int ia = paper_index(a), ib = paper_index(b);
    return (ia < 0 ? 1000 : ia) < (ib < 0 ? 1000 : ib);
  });
  std::ostringstream os;
  const bool csv = format == ReportFormat::kCsv;

  if (csv) {  // one long table: one row per method, axis values and task; numbers unformatted
    Table t{{"method"}};
    for (const auto& a : sweep.axes) t[0].push_back(a.key);
    for (const char* h : {"task", "runs", "finished", "not_counted", "mean", "std", "paper", "wall_s", "api_calls",
                          "user_bytes", "server_bytes", "peak_rss_bytes", "peak_device_bytes", "bytes_up_per_query",
                          "bytes_down_per_query", "bytes_up_total", "bytes_down_total", "tuned_parameters"})
      t[0].push_back(h);
    std::vector<std::string> keys;
    std::map<std::string, Cell> cells;
    for (const auto& e : entries) {
      const std::string key = e.run->method + "\t" + axes_text(*e.run) + "\t" + e.run->task;
      if (!cells.count(key)) keys.push_back(key);
      cells[key].entries.push_back(&e);
    }
    for (const auto& key : keys) {
      const Cell& c = cells[key];
      const SweepRun& r = *c.entries.front()->run;
      std::vector<std::string> row{r.method};
      for (const auto& [k, v] : r.axis_values) row.push_back(v);
      double mean = 0, sd = 0;
      const auto v = c.values(&RunSummary::test_metric, false);
      mean_std(v, mean, sd);
      const double pv = paper_result(r.method, r.task);
      row.insert(row.end(), {r.task, std::to_string(c.entries.size()), std::to_string(v.size()), c.not_counted(),
                             std::isfinite(mean) ? fmt("%.4f", 100 * mean) : "", std::isfinite(sd) ? fmt("%.4f", 100 * sd) : "",
                             std::isfinite(pv) ? fmt("%.2f", pv) : ""});
      for (double RunSummary::*f :
           {&RunSummary::seconds, &RunSummary::cost_api_calls, &RunSummary::user_bytes, &RunSummary::server_bytes,
            &RunSummary::peak_rss_bytes, &RunSummary::peak_device_bytes, &RunSummary::bytes_up_per_query,
            &RunSummary::bytes_down_per_query, &RunSummary::bytes_up_total, &RunSummary::bytes_down_total,
            &RunSummary::tuned_parameters}) {
        double m = 0, d = 0;
        mean_std(c.values(f, true), m, d);
        row.push_back(raw(m));
      }
      t.push_back(row);
    }
    os << render(t, format);
    return os.str();
  }

  // Which runs are not finished, by name.
  std::map<std::string, int> by_state;
  for (const auto& e : entries) ++by_state[e.state];
  std::string summary = std::to_string(entries.size()) + " runs of " + sweep.file + ":";
  for (const char* st : {"finished", "finished (no test)", "running", "unfinished", "failed", "missing"})
    if (by_state.count(st)) summary += std::string(" ") + std::to_string(by_state[st]) + " " + st + ",";
  summary.pop_back();
  os << (format == ReportFormat::kLatex ? "% " : "") << summary << "\n\n";
  {
    Table t{{"run", "method", "task", "split_seed", "axes", "state", "file"}};
    for (const auto& e : entries)
      if (!e.counted())
        t.push_back({e.run->name, e.run->method, e.run->task, std::to_string(e.run->split_seed), axes_text(*e.run),
                     e.state, e.path});
    if (t.size() > 1) os << title("Runs not counted in the tables", format) << render(t, format) << "\n";
  }

  const bool many_methods = sweep.methods.size() > 1;
  if (sweep.axes.empty() && sweep.methods_ablation) {
    os << title("Ablation: test metric x100 against the method, mean ± std over split seeds", format)
       << metric_table(entries, tasks, [](const SweepEntry& e) { return e.run->method; }, false, format) << "\n";
  } else if (sweep.axes.size() != 1) {
    os << title(sweep.axes.empty() ? "Test metric x100, mean ± std over split seeds (Table 3 layout; paper rows: "
                                     "Sun et al. 2022, Table 3)"
                                   : "Test metric x100, mean ± std over split seeds, every axis combination",
                format)
       << metric_table(entries, tasks,
                       [](const SweepEntry& e) {
                         const std::string a = axes_text(*e.run);
                         return a.empty() ? e.run->method : e.run->method + ", " + a;
                       },
                       sweep.axes.empty(), format)
       << "\n";
  }
  for (const auto& axis : sweep.axes) {
    os << title("Ablation: test metric x100 against " + axis.key + ", mean ± std over split seeds" +
                    (sweep.axes.size() > 1 ? " and the other axes" : ""),
                format)
       << metric_table(entries, tasks,
                       [&](const SweepEntry& e) {
                         const std::string v = axis.key + "=" + [&] {
                           for (const auto& [k, val] : e.run->axis_values)
                             if (k == axis.key) return val;
                           return std::string();
                         }();
                         return many_methods ? e.run->method + ", " + v : v;
                       },
                       false, format)
       << "\n";
  }

  // Costs (Table 4 layout): per row group and task, means over the runs that finished.
  {
    Table t{{"method", "task", "runs", "test", "wall time", "API calls", "user mem", "server mem", "peak RSS",
             "peak device", "up/query", "down/query", "up total", "down total", "tuned params"}};
    std::vector<std::string> keys;
    std::map<std::string, Cell> cells;
    for (const auto& task : tasks)
      for (const auto& e : entries) {
        if (e.run->task != task) continue;
        const std::string a = axes_text(*e.run);
        const std::string key = e.run->method + (a.empty() ? "" : ", " + a) + "\t" + task;
        if (!cells.count(key)) keys.push_back(key);
        cells[key].entries.push_back(&e);
      }
    // Rows grouped by method: the order of the methods' first appearance.
    std::stable_sort(keys.begin(), keys.end(), [&](const std::string& a, const std::string& b) {
      auto rank = [&](const std::string& k) {
        const std::string m = cells[k].entries.front()->run->method;
        return std::find(sweep.methods.begin(), sweep.methods.end(), m) - sweep.methods.begin();
      };
      return rank(a) < rank(b);
    });
    for (const auto& key : keys) {
      const Cell& c = cells[key];
      auto m = [&](double RunSummary::*f) {
        double mean = 0, sd = 0;
        mean_std(c.values(f, true), mean, sd);
        return mean;
      };
      double wall = 0, wall_sd = 0;
      const auto walls = c.values(&RunSummary::seconds, true);
      mean_std(walls, wall, wall_sd);
      const std::string note = c.not_counted();
      const double calls = m(&RunSummary::cost_api_calls), tuned = m(&RunSummary::tuned_parameters);
      t.push_back({key.substr(0, key.find('\t')), paper_column(c.entries.front()->run->task),
                   std::to_string(c.values(&RunSummary::seconds, true).size()) + "/" + std::to_string(c.entries.size()) +
                       (note.empty() ? "" : " (" + note + ")"),
                   metric_cell(c), seconds_text(wall, wall_sd, walls.size()),
                   std::isfinite(calls) ? fmt("%.0f", calls) : "-", bytes_text(m(&RunSummary::user_bytes)),
                   bytes_text(m(&RunSummary::server_bytes)), bytes_text(m(&RunSummary::peak_rss_bytes)),
                   bytes_text(m(&RunSummary::peak_device_bytes)), bytes_text(m(&RunSummary::bytes_up_per_query)),
                   bytes_text(m(&RunSummary::bytes_down_per_query)), bytes_text(m(&RunSummary::bytes_up_total)),
                   bytes_text(m(&RunSummary::bytes_down_total)), std::isfinite(tuned) ? fmt("%.0f", tuned) : "-"});
    }
    os << title("Costs (Table 4 layout): means over the runs that finished; memory and bytes as the run files "
                "record them (peak: the largest rank)",
                format)
       << render(t, format);
  }
  return os.str();
}

}  // namespace bbt::app

#include "bbt/app/sweep.hpp"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "bbt/app/config.hpp"
#include "bbt/common/error.hpp"
#include "bbt/common/files.hpp"

namespace bbt::app {
namespace {

namespace fs = std::filesystem;

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r") + 1 - b);
}

// One "key = value" line of a section, with where it came from.
struct Entry {
  std::string key, value;
  int line = 0;
};

struct Section {
  std::string kind, label;  // "sweep" | "set" | "axes" | "method" | "task"; label for the last two
  int line = 0;
  std::vector<Entry> entries;
};

const std::vector<std::string> kSweepKeys = {"base", "methods", "tasks", "seeds", "zip", "layout"};

std::vector<std::string> split_list(const std::string& value, const std::string& where) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(value);
  while (std::getline(in, item, ',')) {
    item = trim(item);
    if (item.empty()) throw UsageError(where + "empty item in the list '" + value + "'");
    out.push_back(item);
  }
  if (!value.empty() && value.back() == ',') throw UsageError(where + "empty item in the list '" + value + "'");
  if (out.empty()) throw UsageError(where + "empty list");
  return out;
}

// Checks a "section.key" and one of its values against the key table (its parse and its own range
// check); names the line.
void check_value(const std::string& key, const std::string& value, const std::string& where) {
  if (key == "output.run_name")
    throw UsageError(where + "output.run_name cannot be set in a sweep: each run gets its own name");
  if (value.find('\t') != std::string::npos) throw UsageError(where + "a value holds a tab character");
  RunConfig scratch;
  try {
    set_config_value(scratch, key, value);
    for (const auto& k : config_key_table())
      if (k.name == key && k.check) k.check(scratch);
  } catch (const UsageError& e) {
    throw UsageError(where + e.what());
  }
}

std::vector<Section> parse_sections(const std::string& text, const std::string& file) {
  std::vector<Section> sections;
  std::istringstream in(text);
  std::string raw;
  int line_no = 0;
  std::map<std::string, int> seen_sections;
  while (std::getline(in, raw)) {
    ++line_no;
    const std::string where = file + ":" + std::to_string(line_no) + ": ";
    const std::string line = trim(raw);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line[0] == '[') {
      if (line.back() != ']' || line.size() < 3)
        throw UsageError(where + "syntax error: expected '[section]', got '" + line + "'");
      const std::string inside = trim(line.substr(1, line.size() - 2));
      Section s;
      s.line = line_no;
      const auto space = inside.find_first_of(" \t");
      s.kind = inside.substr(0, space);
      if (space != std::string::npos) s.label = trim(inside.substr(space));
      if (s.kind == "method" || s.kind == "task") {
        if (s.label.empty())
          throw UsageError(where + "[" + s.kind + "] needs a label: [" + s.kind + " LABEL] (the label goes in '" +
                           s.kind + "s =')");
      } else if (s.kind == "sweep" || s.kind == "set" || s.kind == "axes") {
        if (!s.label.empty()) throw UsageError(where + "[" + s.kind + "] takes no label");
      } else {
        const std::string best = closest_match(s.kind, {"sweep", "set", "axes", "method", "task"});
        throw UsageError(where + "unknown section '[" + inside + "]' (sweep files have [sweep], [set], [axes], "
                         "[method LABEL], [task LABEL])" + (best.empty() ? "" : " (did you mean '[" + best + "]'?)"));
      }
      const std::string id = s.kind + " " + s.label;
      if (auto it = seen_sections.find(id); it != seen_sections.end())
        throw UsageError(where + "section '[" + inside + "]' appears twice (first on line " +
                         std::to_string(it->second) + ")");
      seen_sections[id] = line_no;
      sections.push_back(s);
      continue;
    }
    const auto eq = line.find('=');
    if (eq == std::string::npos)
      throw UsageError(where + "syntax error: expected 'key = value' or '[section]', got '" + line + "'");
    const std::string key = trim(line.substr(0, eq));
    if (key.empty()) throw UsageError(where + "syntax error: missing key before '='");
    if (sections.empty()) throw UsageError(where + "key '" + key + "' appears before any [section]");
    Section& s = sections.back();
    for (const auto& e : s.entries)
      if (e.key == key && !(s.kind == "sweep" && key == "zip"))
        throw UsageError(where + "duplicate key '" + key + "' (first set on line " + std::to_string(e.line) + ")");
    s.entries.push_back({key, trim(line.substr(eq + 1)), line_no});
  }
  return sections;
}

// One override of a run, with the sweep-file line it came from (for conflicts).
struct Setting {
  std::string key, value;
  int line = 0;
};

void add_setting(std::vector<Setting>& settings, const Setting& s, const std::string& file) {
  for (const auto& o : settings)
    if (o.key == s.key)
      throw UsageError(file + ":" + std::to_string(s.line) + ": key '" + s.key + "' is set twice for one run (also " +
                       (o.line > 0 ? "on line " + std::to_string(o.line) : std::string("by its method, task or seed")) +
                       ")");
  settings.push_back(s);
}

std::string replace_all(std::string s, const std::string& what, const std::string& with) {
  for (auto p = s.find(what); p != std::string::npos; p = s.find(what, p + with.size())) s.replace(p, what.size(), with);
  return s;
}

}  // namespace

Sweep load_sweep(const std::string& path) {
  std::string text;
  try {
    text = read_file(path);
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  Sweep sw;
  sw.file = path;
  const std::vector<Section> sections = parse_sections(text, path);
  auto at = [&](int line) { return path + ":" + std::to_string(line) + ": "; };

  const Section* head = nullptr;
  const Section* set = nullptr;
  const Section* axes = nullptr;
  std::map<std::string, const Section*> method_sections, task_sections;
  for (const auto& s : sections) {
    if (s.kind == "sweep") head = &s;
    if (s.kind == "set") set = &s;
    if (s.kind == "axes") axes = &s;
    if (s.kind == "method") method_sections[s.label] = &s;
    if (s.kind == "task") task_sections[s.label] = &s;
  }
  if (!head) throw UsageError(path + ": no [sweep] section (it names the base configuration: base = FILE)");

  std::string base;
  int base_line = head->line;
  std::vector<std::vector<std::string>> zips;
  std::vector<int> zip_lines;
  std::vector<int> method_lines, task_lines;
  for (const auto& e : head->entries) {
    const std::string where = at(e.line);
    if (std::find(kSweepKeys.begin(), kSweepKeys.end(), e.key) == kSweepKeys.end()) {
      const std::string best = closest_match(e.key, kSweepKeys);
      throw UsageError(where + "unknown key '" + e.key + "' in [sweep] (base, methods, tasks, seeds, zip, layout)" +
                       (best.empty() ? "" : " (did you mean '" + best + "'?)"));
    }
    if (e.key == "base") {
      if (e.value.empty()) throw UsageError(where + "base is empty");
      base = e.value;
      base_line = e.line;
    } else if (e.key == "methods") {
      for (const auto& m : split_list(e.value, where)) {
        if (std::find(sw.methods.begin(), sw.methods.end(), m) != sw.methods.end())
          throw UsageError(where + "method '" + m + "' is listed twice");
        // A label without a section is a method.name value.
        if (!method_sections.count(m)) check_value("method.name", m, where);
        sw.methods.push_back(m);
      }
    } else if (e.key == "tasks") {
      for (const auto& t : split_list(e.value, where)) {
        if (std::find(sw.tasks.begin(), sw.tasks.end(), t) != sw.tasks.end())
          throw UsageError(where + "task '" + t + "' is listed twice");
        if (!task_sections.count(t)) check_value("task.name", t, where);
        sw.tasks.push_back(t);
      }
    } else if (e.key == "layout") {
      if (e.value != "table3" && e.value != "ablation")
        throw UsageError(where + "layout = " + e.value + ": expected table3 or ablation");
      sw.methods_ablation = e.value == "ablation";
    } else if (e.key == "seeds") {
      for (const auto& v : split_list(e.value, where)) {
        check_value("task.split_seed", v, where);
        const std::int64_t seed = std::stoll(v);
        if (std::find(sw.seeds.begin(), sw.seeds.end(), seed) != sw.seeds.end())
          throw UsageError(where + "seed " + v + " is listed twice");
        sw.seeds.push_back(seed);
      }
    } else {  // zip
      zips.push_back(split_list(e.value, where));
      zip_lines.push_back(e.line);
    }
  }
  if (base.empty()) throw UsageError(at(head->line) + "[sweep] has no 'base = FILE' (the base configuration)");
  for (const auto& [label, s] : method_sections)
    if (std::find(sw.methods.begin(), sw.methods.end(), label) == sw.methods.end())
      throw UsageError(at(s->line) + "[method " + label + "] is not listed in 'methods ='");
  for (const auto& [label, s] : task_sections)
    if (std::find(sw.tasks.begin(), sw.tasks.end(), label) == sw.tasks.end())
      throw UsageError(at(s->line) + "[task " + label + "] is not listed in 'tasks ='");

  // Section entries are whole configuration keys; every value is checked now, at its line.
  auto check_entries = [&](const Section* s, bool list) {
    if (!s) return;
    for (const auto& e : s->entries) {
      const std::string where = at(e.line);
      if (list) {
        const auto values = split_list(e.value, where);
        for (const auto& v : values) check_value(e.key, v, where);
        std::set<std::string> distinct(values.begin(), values.end());
        if (distinct.size() != values.size()) throw UsageError(where + "axis " + e.key + " lists a value twice");
        sw.axes.push_back({e.key, values, -1});
      } else {
        check_value(e.key, e.value, where);
      }
    }
  };
  check_entries(set, false);
  check_entries(axes, true);
  for (const auto& [label, s] : method_sections) check_entries(s, false);
  for (const auto& [label, s] : task_sections) check_entries(s, false);
  std::vector<int> axis_lines;
  if (axes)
    for (const auto& e : axes->entries) axis_lines.push_back(e.line);

  for (std::size_t g = 0; g < zips.size(); ++g) {
    std::size_t count = 0;
    for (const auto& key : zips[g]) {
      auto it = std::find_if(sw.axes.begin(), sw.axes.end(), [&](const SweepAxis& a) { return a.key == key; });
      if (it == sw.axes.end()) throw UsageError(at(zip_lines[g]) + "zip names '" + key + "', which is not an axis in [axes]");
      if (it->group >= 0) throw UsageError(at(zip_lines[g]) + "axis '" + key + "' is in two zip groups");
      if (count && it->values.size() != count)
        throw UsageError(at(zip_lines[g]) + "zipped axes need the same number of values ('" + key + "' has " +
                         std::to_string(it->values.size()) + ", '" + zips[g][0] + "' has " + std::to_string(count) + ")");
      count = it->values.size();
      it->group = static_cast<int>(g);
    }
  }

  // Dimensions of the product: each product axis, each zip group (at its first axis's place).
  std::vector<std::vector<std::size_t>> dims;  // axis indices varying together
  {
    std::set<int> placed;
    for (std::size_t i = 0; i < sw.axes.size(); ++i) {
      const int g = sw.axes[i].group;
      if (g < 0) {
        dims.push_back({i});
      } else if (placed.insert(g).second) {
        std::vector<std::size_t> d;
        for (std::size_t j = 0; j < sw.axes.size(); ++j)
          if (sw.axes[j].group == g) d.push_back(j);
        dims.push_back(d);
      }
    }
  }

  const fs::path dir = fs::path(path).parent_path();
  std::map<std::string, std::string> base_texts;
  std::map<std::string, std::size_t> names;
  const std::vector<std::string> method_list = sw.methods.empty() ? std::vector<std::string>{""} : sw.methods;
  const std::vector<std::string> task_list = sw.tasks.empty() ? std::vector<std::string>{""} : sw.tasks;
  std::vector<std::int64_t> seed_list = sw.seeds;
  const bool have_seeds = !seed_list.empty();
  if (!have_seeds) seed_list.push_back(0);
  std::vector<std::size_t> counter(dims.size(), 0);

  for (const auto& method : method_list)
    for (const auto& task : task_list)
      for (const std::int64_t seed : seed_list) {
        std::fill(counter.begin(), counter.end(), 0);
        while (true) {
          SweepRun run;
          std::vector<Setting> settings;
          if (!method.empty()) {
            const auto ms = method_sections.find(method);
            bool named = false;
            if (ms != method_sections.end())
              for (const auto& e : ms->second->entries) named |= e.key == "method.name";
            if (!named) add_setting(settings, {"method.name", method, 0}, path);
            if (ms != method_sections.end())
              for (const auto& e : ms->second->entries) add_setting(settings, {e.key, e.value, e.line}, path);
          }
          if (!task.empty()) {
            const auto ts = task_sections.find(task);
            bool named = false;
            if (ts != task_sections.end())
              for (const auto& e : ts->second->entries) named |= e.key == "task.name";
            if (!named) add_setting(settings, {"task.name", task, 0}, path);
            if (ts != task_sections.end())
              for (const auto& e : ts->second->entries) add_setting(settings, {e.key, e.value, e.line}, path);
          }
          if (have_seeds) add_setting(settings, {"task.split_seed", std::to_string(seed), 0}, path);
          if (set)
            for (const auto& e : set->entries) add_setting(settings, {e.key, e.value, e.line}, path);
          for (std::size_t i = 0; i < sw.axes.size(); ++i) {
            std::size_t d = 0;
            while (std::find(dims[d].begin(), dims[d].end(), i) == dims[d].end()) ++d;
            const std::string& v = sw.axes[i].values[counter[d]];
            add_setting(settings, {sw.axes[i].key, v, axis_lines[i]}, path);
            run.axis_values.emplace_back(sw.axes[i].key, v);
          }

          std::string base_path = replace_all(replace_all(base, "{task}", task), "{method}", method);
          run.config = (fs::path(base_path).is_absolute() ? fs::path(base_path) : dir / base_path)
                           .lexically_normal()
                           .string();
          auto text_it = base_texts.find(run.config);
          if (text_it == base_texts.end()) {
            try {
              text_it = base_texts.emplace(run.config, read_file(run.config)).first;
            } catch (const Error& e) {
              throw UsageError(at(base_line) + "base configuration: " + e.what());
            }
          }
          for (const auto& s : settings) {
            run.overrides.push_back("--" + s.key + "=" + s.value);
            if (s.key == "output.dir") run.output_dir_set = true;
          }
          run.name = run_name(run.config, run.overrides);
          run.overrides.push_back("--output.run_name=" + run.name);
          RunConfig cfg;
          try {
            cfg = parse_config_text(text_it->second, run.config, run.overrides);
            cfg.validate();
          } catch (const UsageError& e) {
            throw UsageError(at(base_line) + "run " + run.name + ": " + e.what());
          }
          run.method = method.empty() ? method_spelling(cfg.method.name) : method;
          run.task = task.empty() ? cfg.task.name : task;
          run.split_seed = cfg.task.split_seed;
          run.output_dir = cfg.output.dir;
          if (auto [it, fresh] = names.emplace(run.name, sw.runs.size()); !fresh) {
            const SweepRun& other = sw.runs[it->second];
            throw UsageError(at(base_line) + "two runs get the same name " + run.name + " (" + other.method + "/" +
                             other.task + " and " + run.method + "/" + run.task +
                             "): their overrides are the same; give the labels' sections different settings");
          }
          sw.runs.push_back(std::move(run));

          // Next combination: the last dimension varies fastest.
          int d = static_cast<int>(dims.size()) - 1;
          for (; d >= 0; --d) {
            const std::size_t n = sw.axes[dims[d][0]].values.size();
            if (++counter[d] < n) break;
            counter[d] = 0;
          }
          if (d < 0) break;
        }
      }
  return sw;
}

std::string plan_line(const SweepRun& run) {
  std::string line = run.name + "\t--config=" + run.config;
  for (const auto& o : run.overrides) line += "\t" + o;
  return line;
}

}  // namespace bbt::app

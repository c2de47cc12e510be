// Readers for the canonical data files. They reproduce what Hugging Face's loaders (used by the
// reference BBT) hand to the prompt templates, since every byte changes the BPE ids.
#include "bbt/data/dataset.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>

#include "bbt/common/error.hpp"
#include "bbt/common/files.hpp"
#include "bbt/common/utf8.hpp"

namespace bbt::data {
namespace {

std::string where(const std::string& path, std::size_t line) { return path + ":" + std::to_string(line); }

std::size_t line_of_offset(std::string_view text, std::size_t offset) {
  return 1 + static_cast<std::size_t>(std::count(text.begin(), text.begin() + offset, '\n'));
}

// Whole file as bytes, BOM removed, checked to be non-empty UTF-8.
std::string read_text_file(const std::string& path) {
  std::string text = read_file(path);
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) text.erase(0, 3);
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) throw Error("empty data file " + path);
  const std::size_t bad = find_invalid_utf8(text);
  if (bad != std::string_view::npos)
    throw Error(where(path, line_of_offset(text, bad)) + ": invalid UTF-8 (byte offset " +
                std::to_string(bad) + ")");
  return text;
}

// Lines without their LF / CRLF; the last line needs no terminator. Blank lines are skipped,
// like Python's csv.DictReader in the Hugging Face GLUE loader does.
struct Line {
  std::string_view text;
  std::size_t number;
};
std::vector<Line> split_lines(std::string_view text) {
  std::vector<Line> lines;
  std::size_t start = 0, number = 1;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) lines.push_back({line, number});
    start = end + 1;
    ++number;
  }
  return lines;
}

// GLUE TSVs have no quoting at all: a field is the raw text between tabs.
std::vector<std::string> split_tabs(std::string_view line) {
  std::vector<std::string> fields;
  std::size_t start = 0;
  while (true) {
    const std::size_t tab = line.find('\t', start);
    if (tab == std::string_view::npos) {
      fields.emplace_back(line.substr(start));
      return fields;
    }
    fields.emplace_back(line.substr(start, tab - start));
    start = tab + 1;
  }
}

std::string join(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) out += (i ? sep : "") + parts[i];
  return out;
}

bool parse_int(const std::string& s, long& value) {
  if (s.empty()) return false;
  std::size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  if (i == s.size() || s.size() - i > 9) return false;
  for (std::size_t j = i; j < s.size(); ++j)
    if (s[j] < '0' || s[j] > '9') return false;
  value = std::stol(s);
  return true;
}

int check_label(long label, int num_labels, const std::string& raw, const std::string& path,
                std::size_t line) {
  if (label < 0 || label >= num_labels)
    throw Error(where(path, line) + ": unknown label '" + raw + "' (expected " + std::to_string(num_labels) +
                " classes)");
  return static_cast<int>(label);
}

void expect_columns(const std::vector<std::string>& fields, std::size_t n, const std::string& path,
                    std::size_t line) {
  if (fields.size() != n)
    throw Error(where(path, line) + ": expected " + std::to_string(n) + " columns, found " +
                std::to_string(fields.size()));
}

// entailment / neutral / contradiction, Hugging Face's NLI label order (verbalizer Yes, Maybe, No).
long nli_label(const std::string& gold) {
  if (gold == "entailment") return 0;
  if (gold == "neutral") return 1;
  if (gold == "contradiction") return 2;
  return -1;
}

// GLUE MNLI: train.tsv has 12 columns, dev_matched.tsv / dev_mismatched.tsv 16 (five annotator
// labels); Hugging Face's loader reads them by header name with no quoting, so we do too.
Dataset read_mnli_tsv(const std::string& path, int num_labels) {
  const std::string text = read_text_file(path);
  const std::vector<Line> lines = split_lines(text);
  const std::vector<std::string> header = split_tabs(lines.at(0).text);
  auto column = [&](const char* name) {
    const auto it = std::find(header.begin(), header.end(), name);
    if (it == header.end())
      throw Error(where(path, lines[0].number) + ": the MNLI TSV header has no column '" + name + "'" +
                  (std::string(name) == "gold_label" ? " (a GLUE test split has no labels; test on dev_matched.tsv)" : ""));
    return static_cast<std::size_t>(it - header.begin());
  };
  const std::size_t s1 = column("sentence1"), s2 = column("sentence2"), gold = column("gold_label");
  Dataset data;
  data.path = path;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const std::size_t line = lines[i].number;
    std::vector<std::string> f = split_tabs(lines[i].text);
    expect_columns(f, header.size(), path, line);
    if (f[gold] == "-") {  // no majority among the annotators: dropped, as SNLI's
      ++data.dropped["no_gold_label"];
      continue;
    }
    Example ex;
    ex.source_line = line;
    ex.label = check_label(nli_label(f[gold]), num_labels, f[gold], path, line);
    ex.text = std::move(f[s1]);
    ex.text_b = std::move(f[s2]);
    data.examples.push_back(std::move(ex));
  }
  return data;
}

Dataset read_glue_tsv(Format format, const std::string& path, int num_labels) {
  const std::string text = read_text_file(path);
  const std::vector<Line> lines = split_lines(text);
  std::vector<std::string> header;
  if (format == Format::sst2_tsv) header = {"sentence", "label"};
  if (format == Format::mrpc_tsv) header = {"Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"};
  if (format == Format::rte_tsv) header = {"index", "sentence1", "sentence2", "label"};
  const std::vector<std::string> got = split_tabs(lines.at(0).text);
  if (got != header) {
    std::string hint;
    const std::string& label_column = format == Format::mrpc_tsv ? header.front() : header.back();
    if (std::find(got.begin(), got.end(), label_column) == got.end())
      hint = " (a GLUE test split has no labels; the paper's test split is dev.tsv)";
    throw Error(where(path, lines[0].number) + ": expected the " + format_name(format) + " header '" +
                join(header, "\\t") + "', found '" + join(got, "\\t") + "'" + hint);
  }
  Dataset data;
  data.path = path;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const std::size_t line = lines[i].number;
    std::vector<std::string> f = split_tabs(lines[i].text);
    expect_columns(f, header.size(), path, line);
    Example ex;
    ex.source_line = line;
    long label = -1;
    if (format == Format::sst2_tsv) {
      ex.text = std::move(f[0]);
      if (!parse_int(f[1], label)) label = -1;
      ex.label = check_label(label, num_labels, f[1], path, line);
    } else if (format == Format::mrpc_tsv) {
      if (!parse_int(f[0], label)) label = -1;
      ex.label = check_label(label, num_labels, f[0], path, line);
      ex.text = std::move(f[3]);
      ex.text_b = std::move(f[4]);
    } else {
      // Hugging Face's glue/rte label names are [entailment, not_entailment]: verbalizer Yes, No.
      if (f[3] == "entailment") label = 0;
      if (f[3] == "not_entailment") label = 1;
      ex.label = check_label(label, num_labels, f[3], path, line);
      ex.text = std::move(f[1]);
      ex.text_b = std::move(f[2]);
    }
    data.examples.push_back(std::move(ex));
  }
  return data;
}

// ASCII white space only (labels).
std::string strip(const std::string& s) {
  const char* ws = " \t\n\r\f\v";
  const std::size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

// Python's str.strip() on valid UTF-8: the reference strips DBPedia's content this way.
std::string python_strip(const std::string& s) {
  const std::size_t begin = skip_forward_while(s, 0, is_python_space);
  const std::size_t end = skip_backward_while(s, begin, s.size(), is_python_space);
  return s.substr(begin, end - begin);
}

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (std::size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
  return s;
}

Dataset read_zhang_csv(Format format, const std::string& path, int num_labels) {
  const std::string text = read_text_file(path);
  std::vector<CsvRecord> records = parse_csv(text, path, /*keep_doubled_quotes=*/format == Format::yelp_csv);
  const std::size_t columns = format == Format::yelp_csv ? 2 : 3;
  Dataset data;
  data.path = path;
  for (std::size_t i = 0; i < records.size(); ++i) {
    std::vector<std::string>& f = records[i].fields;
    const std::size_t line = records[i].line;
    expect_columns(f, columns, path, line);
    long label = 0;
    const bool numeric = parse_int(strip(f[0]), label);
    // The original files have no header; Kaggle's copies do ("Class Index,Title,Description").
    if (i == 0 && !numeric) continue;
    Example ex;
    ex.source_line = line;
    ex.label = check_label(numeric ? label - 1 : -1, num_labels, f[0], path, line);
    if (format == Format::yelp_csv) {
      // As the reference's loader: the raw text between the quotes (a doubled "" stays doubled),
      // stripped of surrounding white space, then the two characters backslash-n (Yelp's escaped
      // newline) replaced by a space.
      ex.text = replace_all(python_strip(f[1]), "\\n", " ");
    } else if (format == Format::ag_news_csv) {
      ex.text = f[1] + " " + f[2];  // Hugging Face ag_news: " ".join((title, description))
    } else {
      ex.text = python_strip(f[2]);  // the reference uses content.strip(); the title is not used
    }
    data.examples.push_back(std::move(ex));
  }
  return data;
}

const nlohmann::json& require(const nlohmann::json& obj, const char* key, const std::string& path,
                              std::size_t line) {
  const auto it = obj.find(key);
  if (it == obj.end()) throw Error(where(path, line) + ": missing field '" + key + "'");
  return *it;
}

std::string require_string(const nlohmann::json& obj, const char* key, const std::string& path,
                           std::size_t line) {
  const nlohmann::json& v = require(obj, key, path, line);
  if (!v.is_string()) throw Error(where(path, line) + ": field '" + key + "' is not a string");
  return v.get<std::string>();
}

Dataset read_jsonl(Format format, const std::string& path, int num_labels) {
  const std::string text = read_text_file(path);
  Dataset data;
  data.path = path;
  for (const Line& l : split_lines(text)) {
    if (l.text.find_first_not_of(" \t") == std::string_view::npos) continue;
    nlohmann::json obj;
    try {
      obj = nlohmann::json::parse(l.text);
    } catch (const nlohmann::json::exception& e) {
      throw Error(where(path, l.number) + ": invalid JSON: " + e.what());
    }
    if (!obj.is_object()) throw Error(where(path, l.number) + ": expected a JSON object");
    Example ex;
    ex.source_line = l.number;
    if (format == Format::snli_jsonl) {
      const std::string gold = require_string(obj, "gold_label", path, l.number);
      if (gold == "-") {  // annotators did not agree: Hugging Face gives label -1, the reference drops it
        ++data.dropped["no_gold_label"];
        continue;
      }
      ex.label = check_label(nli_label(gold), num_labels, gold, path, l.number);
      ex.text = require_string(obj, "sentence1", path, l.number);
      ex.text_b = require_string(obj, "sentence2", path, l.number);
    } else {
      ex.text = require_string(obj, "text", path, l.number);
      if (obj.contains("text_b")) ex.text_b = require_string(obj, "text_b", path, l.number);
      const nlohmann::json& label = require(obj, "label", path, l.number);
      if (!label.is_number_integer())
        throw Error(where(path, l.number) + ": unknown label " + label.dump() + " (expected an integer)");
      ex.label = check_label(label.get<long>(), num_labels, label.dump(), path, l.number);
    }
    data.examples.push_back(std::move(ex));
  }
  return data;
}

}  // namespace

std::string format_name(Format format) {
  switch (format) {
    case Format::sst2_tsv:
      return "SST-2 TSV";
    case Format::mrpc_tsv:
      return "MRPC TSV";
    case Format::rte_tsv:
      return "RTE TSV";
    case Format::mnli_tsv:
      return "MNLI TSV";
    case Format::yelp_csv:
      return "Yelp polarity CSV";
    case Format::ag_news_csv:
      return "AG News CSV";
    case Format::dbpedia_csv:
      return "DBPedia CSV";
    case Format::snli_jsonl:
      return "SNLI JSONL";
    case Format::generic_jsonl:
      return "generic JSONL";
  }
  return "unknown format";
}

Dataset read_dataset(Format format, const std::string& path, int num_labels) {
  switch (format) {
    case Format::sst2_tsv:
    case Format::mrpc_tsv:
    case Format::rte_tsv:
      return read_glue_tsv(format, path, num_labels);
    case Format::mnli_tsv:
      return read_mnli_tsv(path, num_labels);
    case Format::yelp_csv:
    case Format::ag_news_csv:
    case Format::dbpedia_csv:
      return read_zhang_csv(format, path, num_labels);
    case Format::snli_jsonl:
    case Format::generic_jsonl:
      return read_jsonl(format, path, num_labels);
  }
  throw Error("unknown data format");
}

std::vector<CsvRecord> parse_csv(std::string_view text, const std::string& name, bool keep_doubled_quotes) {
  std::vector<CsvRecord> records;
  std::size_t i = 0, line = 1;
  const std::size_t n = text.size();
  while (i < n) {
    CsvRecord record{{}, line};
    // A blank line (LF or CRLF) is no record.
    if (text[i] == '\n' || (text[i] == '\r' && i + 1 < n && text[i + 1] == '\n')) {
      i += text[i] == '\r' ? 2 : 1;
      ++line;
      continue;
    }
    while (true) {  // one field per pass
      std::string field;
      if (i < n && text[i] == '"') {
        const std::size_t open_line = line;
        ++i;
        while (true) {
          if (i >= n) throw Error(where(name, open_line) + ": unterminated quoted field");
          const char c = text[i];
          if (c == '"') {
            if (i + 1 < n && text[i + 1] == '"') {
              field += keep_doubled_quotes ? "\"\"" : "\"";
              i += 2;
              continue;
            }
            ++i;
            break;
          }
          if (c == '\n') ++line;
          field += c;
          ++i;
        }
        if (i < n && text[i] != ',' && text[i] != '\n' &&
            !(text[i] == '\r' && i + 1 < n && text[i + 1] == '\n') && !(text[i] == '\r' && i + 1 == n))
          throw Error(where(name, line) + ": unexpected character after a closing quote");
      } else {
        while (i < n && text[i] != ',' && text[i] != '\n') {
          if (text[i] == '\r' && (i + 1 == n || text[i + 1] == '\n')) break;
          if (text[i] == '"') throw Error(where(name, line) + ": quote inside an unquoted field");
          field += text[i++];
        }
      }
      record.fields.push_back(std::move(field));
      if (i < n && text[i] == ',') {
        ++i;
        continue;
      }
      if (i < n && text[i] == '\r') ++i;
      if (i < n && text[i] == '\n') {
        ++i;
        ++line;
      }
      break;
    }
    records.push_back(std::move(record));
  }
  return records;
}

}  // namespace bbt::data

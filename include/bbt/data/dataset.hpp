#pragma once
// Labelled examples read from the canonical files of the paper's data sets (GLUE TSVs, the
// Zhang et al. CSVs, SNLI JSONL; GLUE MNLI for the pre-trained prompt) or a generic JSONL, with every error naming file and line.
#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace bbt::data {

// One labelled example; text_b is empty for single-sentence tasks.
struct Example {
  std::string text, text_b;
  int label = 0;            // 0-based class index (verbalizer order)
  std::size_t source_line;  // 1-based line of the file where the record starts
};

// A whole file: the kept examples in file order plus why rows were dropped (reason -> count).
struct Dataset {
  std::vector<Example> examples;
  std::string path;
  std::map<std::string, long> dropped;
};

// The on-disk layouts we read.
enum class Format {
  sst2_tsv,       // GLUE SST-2: sentence\tlabel
  mrpc_tsv,       // GLUE MRPC: Quality\t#1 ID\t#2 ID\t#1 String\t#2 String
  rte_tsv,        // GLUE RTE: index\tsentence1\tsentence2\tlabel (entailment = 0)
  mnli_tsv,       // GLUE MNLI: columns found by name (sentence1, sentence2, gold_label); "-" dropped
  yelp_csv,       // "label","text" with labels 1..2; literal \n -> space
  ag_news_csv,    // "class","title","description" with classes 1..4; text = title + " " + description
  dbpedia_csv,    // class,title,content with classes 1..14; text = content stripped, title ignored
  snli_jsonl,     // sentence1, sentence2, gold_label (entailment/neutral/contradiction; "-" dropped)
  generic_jsonl,  // text, optional text_b, label (0-based int)
};

std::string format_name(Format format);

// Reads `path` in `format`. num_labels bounds the labels (label must lie in [0, num_labels)).
// Throws bbt::Error naming the file (and line) on an unreadable or empty file, invalid UTF-8,
// a bad header, a wrong column count, malformed quoting or JSON, or an unknown label.
Dataset read_dataset(Format format, const std::string& path, int num_labels);

// --- Building blocks, public for tests and for other readers ---

// One CSV record and the 1-based line on which it starts.
struct CsvRecord {
  std::vector<std::string> fields;
  std::size_t line;
};

// RFC 4180: comma separated, records end at LF or CRLF, a quoted field may hold commas, doubled
// quotes and line breaks (kept as they are). Blank lines are skipped. `name` is used in errors.
// keep_doubled_quotes: a doubled quote inside a quoted field stays two characters (the raw text
// between the quotes, as the reference's Yelp loader reads it).
std::vector<CsvRecord> parse_csv(std::string_view text, const std::string& name,
                                 bool keep_doubled_quotes = false);

}  // namespace bbt::data

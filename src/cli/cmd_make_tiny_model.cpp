// `bbt make-tiny-model`: a random-weight RoBERTa checkpoint in the Hub's layout, for tests and demos.
#include <boost/program_options.hpp>
#include <filesystem>
#include <iostream>

#include "bbt/common/error.hpp"
#include "bbt/model/tiny_model.hpp"
#include "bbt/text/tokenizer.hpp"
#include "commands.hpp"
#include "options.hpp"

namespace bbt::cli {

namespace po = boost::program_options;

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
       "special-token layout); default: GPT-2's files from the npm package installed by scripts/setup.sh")  //
      ("layers", po::value(&o.layers)->default_value(2), "encoder layers")                                  //
      ("hidden", po::value(&o.hidden)->default_value(32), "hidden size")                                    //
      ("heads", po::value(&o.heads)->default_value(4), "attention heads")                                   //
      ("intermediate", po::value(&o.intermediate)->default_value(64), "feed-forward size")                  //
      ("seed", po::value(&o.seed)->default_value(0), "random seed")                                         //
      ("init-std", po::value(&o.init_std)->default_value(0.02), "std of the random weights")                //
      ("max-positions", po::value(&o.max_positions)->default_value(514), "position table size")             //
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
  namespace fs = std::filesystem;
  if (o.vocab_from.empty()) o.vocab_from = BBT_DEFAULT_GPT2_DIR;
  if (!fs::exists(fs::path(o.vocab_from) / "vocab.json") &&
      !fs::exists(fs::path(o.vocab_from) / "encoder.json"))
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

// `bbt make-tiny-model`: a random-weight RoBERTa checkpoint in the Hub's layout, for tests and demos.
#include <boost/program_options.hpp>
#include <iostream>

#include "bbt/common/error.hpp"
#include "bbt/model/tiny_model.hpp"
#include "commands.hpp"

namespace bbt::cli {

namespace po = boost::program_options;

int cmd_make_tiny_model(const Args& args) {
  model::TinyModelOptions o;
  bool untied = false;
  po::options_description desc("usage: bbt make-tiny-model --out DIR --vocab-from DIR [options]\n\noptions");
  desc.add_options()("help", "this text")                           //
      ("out", po::value(&o.out_dir), "output directory (created)")  //
      ("vocab-from", po::value(&o.vocab_from),
       "directory holding vocab.json and merges.txt (required; vocab_size = its entry count, >= 1050)")  //
      ("layers", po::value(&o.layers)->default_value(2), "encoder layers")                               //
      ("hidden", po::value(&o.hidden)->default_value(32), "hidden size")                                 //
      ("heads", po::value(&o.heads)->default_value(4), "attention heads")                                //
      ("intermediate", po::value(&o.intermediate)->default_value(64), "feed-forward size")               //
      ("seed", po::value(&o.seed)->default_value(0), "random seed")                                      //
      ("init-std", po::value(&o.init_std)->default_value(0.02), "std of the random weights")             //
      ("max-positions", po::value(&o.max_positions)->default_value(514), "position table size")          //
      ("untied", po::bool_switch(&untied), "also write lm_head.decoder.weight (not tied to the embeddings)");
  po::variables_map vm;
  try {
    std::vector<std::string> rest(args.begin() + 1, args.end());
    po::store(po::command_line_parser(rest).options(desc).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(args[0] + ": " + e.what());
  }
  if (vm.count("help")) {
    std::cout << desc << "\n";
    return 0;
  }
  if (o.out_dir.empty()) throw UsageError(args[0] + ": option '--out' is required");
  if (o.vocab_from.empty()) throw UsageError(args[0] + ": option '--vocab-from' is required");
  o.tie_decoder = !untied;
  model::write_tiny_model(o);
  std::cout << o.out_dir << "\n";
  return 0;
}

}  // namespace bbt::cli

// `bbt`: one binary, subcommands. Thin: parse the command name, hand over, print errors.
#include <cstring>
#include <exception>
#include <iostream>
#include <string>

#include "bbt/common/error.hpp"
#include "bbt/common/memory.hpp"
#include "bbt/common/version.hpp"
#include "commands.hpp"

namespace {

struct Command {
  const char* name;
  int (*run)(const bbt::cli::Args&);
  const char* summary;
};

const Command kCommands[] = {
    {"train", bbt::cli::cmd_train, "run black-box tuning (the main job; under mpirun or srun)"},
    {"eval", bbt::cli::cmd_eval, "score a run's best prompt on test or dev"},
    {"score", bbt::cli::cmd_score, "verbalizer logits of a model on a data file, as CSV"},
    {"tokenize", bbt::cli::cmd_tokenize, "token ids of each line on stdin"},
    {"make-tiny-model", bbt::cli::cmd_make_tiny_model, "write a random-weight RoBERTa in the Hub's layout"},
    {"report", bbt::cli::cmd_report, "results table of one or more run files"},
    {"sweep", bbt::cli::cmd_sweep, "the runs of a sweep file (bbt sweep plan FILE)"},
    {"bench", bbt::cli::cmd_bench, "micro-benchmarks printing JSON (cma, cma-functions, eigen, forward)"},
};

void print_help(std::ostream& os) {
  os << "bbt " << bbt::version()
     << " - Black-Box Tuning for Language-Model-as-a-Service (Sun et al., ICML 2022)\n\n"
     << "usage: bbt <command> [options]\n       bbt <command> --help\n\ncommands:\n";
  for (const auto& c : kCommands) {
    std::string name = c.name;
    name.resize(18, ' ');
    os << "  " << name << c.summary << "\n";
  }
  os << "\noptions:\n  --help            this text\n  --version         version and build\n";
}

}  // namespace

int main(int argc, char** argv) {
  // Every command reuses the blocks it frees (bbt::keep_freed_memory): a training step allocates
  // its gradients and activations anew each time; on this project's VMs faulting them in again
  // halved a model-tuning step's throughput (bench train: 8.4 s -> 4.3 s per step).
  bbt::keep_freed_memory();
  if (argc < 2) {
    print_help(std::cerr);
    return 2;
  }
  const std::string first = argv[1];
  if (first == "--help" || first == "-h" || first == "help") {
    print_help(std::cout);
    return 0;
  }
  if (first == "--version") {
    std::cout << "bbt " << bbt::version() << " (" << bbt::git_describe() << ")\n";
    return 0;
  }
  for (const auto& c : kCommands) {
    if (first != c.name) continue;
    bbt::cli::Args args{std::string("bbt ") + c.name};
    for (int i = 2; i < argc; ++i) args.emplace_back(argv[i]);
    try {
      return c.run(args);
    } catch (const bbt::UsageError& e) {
      std::cerr << "bbt: error: " << e.what() << "\n";
      return 2;
    } catch (const std::exception& e) {
      std::cerr << "bbt: error: " << e.what() << "\n";
      return 1;
    }
  }
  std::cerr << "bbt: error: unknown command '" << first << "' (see bbt --help)\n";
  return 2;
}

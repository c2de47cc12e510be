// `bbt bench <name> ...`: micro-benchmarks that print JSON. Each bench is one function in its own
// file (bench_<area>.cpp) registered in the table below.
#include <iostream>
#include <string>

#include "bbt/common/error.hpp"
#include "commands.hpp"

namespace bbt::cli {
namespace {

struct Bench {
  const char* name;
  int (*run)(const Args&);
  const char* summary;
};

const Bench kBenches[] = {
    {"cma", bench_cma, "CMA-ES ask+tell cost per generation (cheap sphere objective)"},
    {"cma-functions", bench_cma_functions, "CMA-ES evaluations to f <= 1e-8 on classic test functions"},
    {"eigen", bench_eigen, "our 500 x 500 eigensolver against Eigen's, side by side"},
    {"forward", bench_forward, "one black-box call's throughput, GFLOP/s and MFU (model forward)"},
    {"train", bench_train, "one model-tuning step's throughput (forward + backward + AdamW), GFLOP/s and MFU"},
};

void print_usage(std::ostream& os) {
  os << "usage: bbt bench <name> [options]\n       bbt bench <name> --help\n\nbenches:\n";
  for (const auto& b : kBenches) {
    std::string name = b.name;
    name.resize(16, ' ');
    os << "  " << name << b.summary << "\n";
  }
}

}  // namespace

int cmd_bench(const Args& args) {
  if (args.size() < 2) {
    print_usage(std::cerr);
    throw UsageError("bench: missing bench name");
  }
  const std::string& name = args[1];
  if (name == "--help" || name == "-h") {
    print_usage(std::cout);
    return 0;
  }
  for (const auto& b : kBenches) {
    if (name != b.name) continue;
    Args sub{args[0] + " " + name};
    sub.insert(sub.end(), args.begin() + 2, args.end());
    return b.run(sub);
  }
  throw UsageError("bench: unknown bench '" + name + "' (see bbt bench --help)");
}

}  // namespace bbt::cli

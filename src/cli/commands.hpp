#pragma once
// The subcommands of the `bbt` binary. Each takes the arguments after its own name
// (args[0] is "bbt <command>") and returns the process exit code. Errors are thrown as
// bbt::UsageError (exit 2) or bbt::Error (exit 1) and printed by main.
#include <string>
#include <vector>

namespace bbt::cli {

using Args = std::vector<std::string>;

int cmd_train(const Args& args);
int cmd_eval(const Args& args);
int cmd_score(const Args& args);
int cmd_tokenize(const Args& args);
int cmd_make_tiny_model(const Args& args);
int cmd_report(const Args& args);
int cmd_sweep(const Args& args);
int cmd_bench(const Args& args);

// `bbt bench` sub-benches (args[0] is "bbt bench <name>").
int bench_cma(const Args& args);
int bench_cma_functions(const Args& args);
int bench_eigen(const Args& args);
int bench_forward(const Args& args);
int bench_train(const Args& args);  // in bench_forward.cpp (shares its shapes and matmul probe)

}  // namespace bbt::cli

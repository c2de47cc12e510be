#pragma once
// Boost.Program_options parsing shared by the subcommands: one place turns its errors into
// bbt::UsageError (exit 2) naming the command, and keeps older flag spellings working.
#include <boost/program_options.hpp>
#include <string>
#include <vector>

#include "commands.hpp"

namespace bbt::cli {

// A flag shared with `bbt train` is spelled as its configuration key (--prompt.mode); `old` is the
// command's earlier spelling (--prompt-mode), still accepted so existing scripts keep working.
struct FlagAlias {
  const char* key;
  const char* old;
};

// "--key (or --old)" for messages and help.
std::string flag_names(const FlagAlias& alias);

// Parses args[1..] against `options` (and `positional`, if given) and runs notify(); each
// --old or --old=V in `aliases` is read as --key.
boost::program_options::variables_map parse_options(
    const Args& args, const boost::program_options::options_description& options,
    const boost::program_options::positional_options_description* positional = nullptr,
    const std::vector<FlagAlias>& aliases = {});

}  // namespace bbt::cli

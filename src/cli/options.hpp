#pragma once
// Boost.Program_options parsing shared by the subcommands: one place turns its errors into
// bbt::UsageError (exit 2) naming the command.
#include <boost/program_options.hpp>

#include "commands.hpp"

namespace bbt::cli {

// Parses args[1..] against `options` (and `positional`, if given) and runs notify().
boost::program_options::variables_map parse_options(
    const Args& args, const boost::program_options::options_description& options,
    const boost::program_options::positional_options_description* positional = nullptr);

}  // namespace bbt::cli

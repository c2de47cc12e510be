#include "options.hpp"

#include "bbt/common/error.hpp"

namespace po = boost::program_options;

namespace bbt::cli {

std::string flag_names(const FlagAlias& alias) {
  return std::string("--") + alias.key + " (or --" + alias.old + ")";
}

po::variables_map parse_options(const Args& args, const po::options_description& options,
                                const po::positional_options_description* positional,
                                const std::vector<FlagAlias>& aliases) {
  std::vector<std::string> rest(args.begin() + 1, args.end());
  for (auto& a : rest) {
    for (const auto& alias : aliases) {
      const std::string old = std::string("--") + alias.old;
      if (a == old || a.rfind(old + "=", 0) == 0) {
        a = std::string("--") + alias.key + a.substr(old.size());
        break;
      }
    }
  }
  po::variables_map vm;
  try {
    po::command_line_parser parser(rest);
    parser.options(options);
    if (positional) parser.positional(*positional);
    po::store(parser.run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(args[0] + ": " + e.what());
  }
  return vm;
}

}  // namespace bbt::cli

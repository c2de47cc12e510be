#include "options.hpp"

#include "bbt/common/error.hpp"

namespace po = boost::program_options;

namespace bbt::cli {

po::variables_map parse_options(const Args& args, const po::options_description& options,
                                const po::positional_options_description* positional) {
  po::variables_map vm;
  try {
    po::command_line_parser parser(std::vector<std::string>(args.begin() + 1, args.end()));
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

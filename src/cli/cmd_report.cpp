#include "commands.hpp"

namespace bbt::cli {

int cmd_report(const Args& args) { return not_yet_built(args[0]); }

}  // namespace bbt::cli

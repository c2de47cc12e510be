#include "commands.hpp"

namespace bbt::cli {

int cmd_score(const Args& args) { return not_yet_built(args[0]); }

}  // namespace bbt::cli

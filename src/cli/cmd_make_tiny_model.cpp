#include "commands.hpp"

namespace bbt::cli {

int cmd_make_tiny_model(const Args& args) { return not_yet_built(args[0]); }

}  // namespace bbt::cli

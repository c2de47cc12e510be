#include <iostream>

#include "commands.hpp"

namespace bbt::cli {

int not_yet_built(const std::string& command) {
  std::cerr << "bbt: error: '" << command << "' is not yet built\n";
  return 1;
}

}  // namespace bbt::cli

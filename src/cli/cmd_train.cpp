#include <iostream>

#include "bbt/io/config.hpp"
#include "commands.hpp"

namespace bbt::cli {

int cmd_train(const Args& args) {
  const io::TrainArgs parsed = io::parse_train_args(args);
  if (parsed.help) {
    std::cout << parsed.help_text;
    return 0;
  }
  if (parsed.print_config) {
    std::cout << parsed.config.to_ini();
    return 0;
  }
  return not_yet_built(args[0]);
}

}  // namespace bbt::cli

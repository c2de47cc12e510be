#include "bbt/common/json.hpp"

#include "bbt/common/error.hpp"
#include "bbt/common/files.hpp"

namespace bbt {

nlohmann::json read_json_file(const std::filesystem::path& path) {
  const std::string text = read_file(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path.string() + ": invalid JSON: " + e.what());
  }
}

}  // namespace bbt

#pragma once
// JSON files (Hugging Face configurations and vocabularies) parsed with errors that name the file.
#include <filesystem>
#include <nlohmann/json.hpp>

namespace bbt {

// The parsed contents of `path`. Throws bbt::Error "cannot read 'PATH': ..." (see read_file) or
// "PATH: invalid JSON: ..." with nlohmann's line and column.
nlohmann::json read_json_file(const std::filesystem::path& path);

}  // namespace bbt

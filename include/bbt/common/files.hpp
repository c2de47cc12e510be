#pragma once
// Whole files into memory, with one wording for every way that can fail.
#include <cstdint>
#include <filesystem>
#include <string>

namespace bbt {

// The most read_file holds in memory: far above any vocabulary, configuration or data set bbt
// reads, and low enough that a wrong path (/dev/zero, a checkpoint) fails instead of exhausting RAM.
constexpr std::uintmax_t kMaxReadFileBytes = std::uintmax_t{1} << 30;

// The bytes of `path`, unchanged. Throws bbt::Error "cannot read 'PATH': REASON" when the file is
// missing or unreadable, is a directory, or holds more than max_bytes.
std::string read_file(const std::filesystem::path& path, std::uintmax_t max_bytes = kMaxReadFileBytes);

}  // namespace bbt

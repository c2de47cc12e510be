#include "bbt/common/files.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>

#include "bbt/common/error.hpp"

namespace bbt {
namespace {

[[noreturn]] void fail(const std::filesystem::path& path, const std::string& reason) {
  throw Error("cannot read '" + path.string() + "': " + reason);
}

// "1 GiB" for the default limit; exact bytes for others (tests).
std::string size_text(std::uintmax_t bytes) {
  if (bytes % (std::uintmax_t{1} << 30) == 0) return std::to_string(bytes >> 30) + " GiB";
  return std::to_string(bytes) + " bytes";
}

}  // namespace

std::string read_file(const std::filesystem::path& path, std::uintmax_t max_bytes) {
  namespace fs = std::filesystem;
  std::error_code ec;
  // An std::ifstream opens a directory without complaint on Linux and then reads nothing.
  if (fs::is_directory(path, ec)) fail(path, "is a directory");
  // A device (/dev/zero, a terminal) never ends or never holds a file's text.
  if (fs::is_character_file(path, ec) || fs::is_block_file(path, ec)) fail(path, "is a device, not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, std::strerror(errno));
  const auto too_large = [&] {
    fail(path, "larger than " + size_text(max_bytes) + ", the most bbt reads into memory");
  };
  std::string text;
  // A regular file's size is known up front; character devices and pipes report none, hence
  // also the bounded loop.
  if (const auto size = fs::file_size(path, ec); !ec) {
    if (size > max_bytes) too_large();
    text.reserve(static_cast<std::size_t>(size));
  }
  char buffer[1 << 16];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    const auto got = static_cast<std::size_t>(in.gcount());
    if (text.size() + got > max_bytes) too_large();
    text.append(buffer, got);
  }
  if (in.bad()) fail(path, std::strerror(errno));
  return text;
}

}  // namespace bbt

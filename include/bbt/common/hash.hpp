#pragma once
// A fast 64-bit hash of bytes (xxHash64's rounds; not cryptographic, not claimed equal to xxHash's
// output), the same value on every little-endian machine. Used to fingerprint loaded weights so
// that ranks (and a resumed run) can check they hold the same model.
#include <cstddef>
#include <cstdint>
#include <string>

namespace bbt {

// Hash of n bytes at data, continuing from seed (a previous hash chains pieces in order).
std::uint64_t hash_bytes(const void* data, std::size_t n, std::uint64_t seed = 0);
// 16 lower-case hex digits.
std::string hex64(std::uint64_t value);

}  // namespace bbt

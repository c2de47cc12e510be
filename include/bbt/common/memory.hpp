#pragma once
// The process's memory as the operating system counts it (the paper's Table 4 memory columns).
#include <cstdint>

namespace bbt {

// Peak resident set size of this process so far, in bytes (getrusage's ru_maxrss; 0 where unknown).
std::int64_t peak_rss_bytes();

// Resident set size now, in bytes (/proc/self/statm; 0 where unknown).
std::int64_t current_rss_bytes();

}  // namespace bbt

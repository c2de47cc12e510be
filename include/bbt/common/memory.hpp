#pragma once
// The process's memory as the operating system counts it (the paper's Table 4 memory columns).
#include <cstdint>

namespace bbt {

// Peak resident set size of this process so far, in bytes (getrusage's ru_maxrss; 0 where unknown).
std::int64_t peak_rss_bytes();

// Proportional set size now, in bytes (/proc/self/smaps_rollup; 0 where unknown): resident pages,
// each shared page divided by the number of processes mapping it, so that the PSS of the processes
// of a node add up to the memory they use together (pages shared between them counted once).
std::int64_t pss_bytes();

// Resident set size now, in bytes (/proc/self/statm; 0 where unknown).
std::int64_t current_rss_bytes();

}  // namespace bbt

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

// Large blocks the process frees (libtorch's activations and gradients: tens to hundreds of MB,
// allocated again at every forward or training step) stay in its heap for reuse, instead of being
// unmapped and then mapped, faulted in and zeroed by the kernel again at the next step (glibc maps
// every block above its mmap threshold, at most 32 MiB, afresh). Freed memory up to 2 GiB at the
// heap's top is kept too. The peak stays what the peak was. No-op where the C library is not glibc.
// Returns whether the setting took.
bool keep_freed_memory();

}  // namespace bbt

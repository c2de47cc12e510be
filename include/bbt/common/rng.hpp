#pragma once
// Portable random numbers: the same seed gives the same bits on every machine, compiler and
// rank count. Only integer arithmetic and correctly rounded IEEE operations (+ - * / sqrt) are
// used; the logarithm needed for normal deviates is our own (portable_log).
#include <cstdint>

namespace bbt {

// xoshiro256** seeded through splitmix64 (Blackman & Vigna).
class Rng {
 public:
  explicit Rng(std::uint64_t seed = 0);

  std::uint64_t next_u64();
  // Uniform in [0, 1) with 53 random bits.
  double uniform();
  // Standard normal deviate (Marsaglia's polar method; the spare deviate is kept).
  double normal();

  // Full state for checkpoints: four words of xoshiro plus the cached spare normal.
  struct State {
    std::uint64_t s[4];
    double spare;
    bool has_spare;
  };
  State state() const;
  void set_state(const State& state);

 private:
  std::uint64_t s_[4];
  double spare_ = 0.0;
  bool has_spare_ = false;
};

// Natural logarithm of x > 0 from frexp and an atanh series: identical on every IEEE platform.
double portable_log(double x);

// A seed for a sub-stream (e.g. one per purpose) derived from a base seed and a stream number.
std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream);

}  // namespace bbt

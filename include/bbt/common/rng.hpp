#pragma once
// Portable random numbers: the same seed gives the same bits on every machine, compiler and
// rank count. Only integer arithmetic and correctly rounded IEEE operations (+ - * / sqrt) are
// used; the logarithms needed for normal deviates are our own (portable_log and a faster twin).
#include <cstddef>
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

// `count` standard normal deviates into out[0, count), two per accepted pair of Marsaglia's polar
// method; an odd count drops the last spare, so the stream position depends only on `count`.
// Independent of normal()'s spare; faster, and with other bits (its own log): CMA-ES's draws.
void fill_normals(Rng& rng, double* out, std::size_t count);

// A seed for a sub-stream (e.g. one per purpose) derived from a base seed and a stream number.
std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream);

}  // namespace bbt

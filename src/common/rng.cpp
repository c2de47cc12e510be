#include "bbt/common/rng.hpp"

#include <cmath>
#include <cstring>

#include "bbt/common/portable_math.hpp"

namespace bbt {
namespace {

std::uint64_t splitmix64(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

// log(x) for normal x > 0 like portable_log, but without divisions in the series and with a short
// dependency chain: several times faster (sampling is the hot spot of sep-CMA), with other bits in
// the last place, so Rng::normal keeps portable_log and its pinned draws.
double fast_portable_log(double x) {
  std::uint64_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  int e = static_cast<int>((bits >> 52) & 0x7ff) - 1022;  // x = m 2^e, m in [0.5, 1)
  bits = (bits & 0x000fffffffffffffULL) | 0x3fe0000000000000ULL;
  double m;
  std::memcpy(&m, &bits, sizeof m);
  if (m < 0.70710678118654752440) {
    m *= 2.0;
    e -= 1;
  }
  const double s = (m - 1.0) / (m + 1.0);
  const double s2 = s * s, s4 = s2 * s2, s8 = s4 * s4;
  // 2 atanh(s) = 2 s sum_k s^(2k) / (2k + 1); |s| <= 0.1716 so 14 terms reach 1e-19 (Estrin's scheme).
  const double p0 = (1.0 + s2 * (1.0 / 3)) + s4 * (1.0 / 5 + s2 * (1.0 / 7));
  const double p1 = (1.0 / 9 + s2 * (1.0 / 11)) + s4 * (1.0 / 13 + s2 * (1.0 / 15));
  const double p2 = (1.0 / 17 + s2 * (1.0 / 19)) + s4 * (1.0 / 21 + s2 * (1.0 / 23));
  const double p3 = 1.0 / 25 + s2 * (1.0 / 27);
  const double poly = (p0 + s8 * p1) + (s8 * s8) * (p2 + s8 * p3);
  constexpr double kLn2 = 0.693147180559945309417232121458;
  return 2.0 * s * poly + e * kLn2;
}

// Marsaglia's polar method: (u, v) uniform in the unit disc less its centre; returns u^2 + v^2.
double polar_point(Rng& rng, double& u, double& v) {
  double s;
  do {
    u = 2.0 * rng.uniform() - 1.0;
    v = 2.0 * rng.uniform() - 1.0;
    s = u * u + v * v;
  } while (s >= 1.0 || s == 0.0);
  return s;
}

}  // namespace

Rng::Rng(std::uint64_t seed) {
  std::uint64_t x = seed;
  for (auto& word : s_) word = splitmix64(x);
}

std::uint64_t Rng::next_u64() {
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Rng::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

double Rng::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  double u, v;
  const double s = polar_point(*this, u, v);
  const double f = std::sqrt(-2.0 * portable_log(s) / s);
  spare_ = v * f;
  has_spare_ = true;
  return u * f;
}

Rng::State Rng::state() const {
  State st{};
  for (int i = 0; i < 4; ++i) st.s[i] = s_[i];
  st.spare = spare_;
  st.has_spare = has_spare_;
  return st;
}

void Rng::set_state(const State& st) {
  for (int i = 0; i < 4; ++i) s_[i] = st.s[i];
  spare_ = st.spare;
  has_spare_ = st.has_spare;
}

void fill_normals(Rng& rng, double* out, std::size_t count) {
  for (std::size_t i = 0; i < count; i += 2) {
    double u, v;
    const double q = polar_point(rng, u, v);
    const double f = std::sqrt(-2.0 * fast_portable_log(q) / q);
    out[i] = u * f;
    if (i + 1 < count) out[i + 1] = v * f;
  }
}

std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream) {
  std::uint64_t x = seed ^ (0xd1b54a32d192ed03ULL * (stream + 1));
  return splitmix64(x);
}

}  // namespace bbt

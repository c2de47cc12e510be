#include "bbt/common/portable_math.hpp"

#include <cmath>
#include <limits>

namespace bbt {
namespace {

constexpr double kLn2 = 0.693147180559945309417232121458;

}  // namespace

double portable_log(double x) {
  // x = m * 2^e with m in [sqrt(1/2), sqrt(2)); log m = 2 atanh(s), s = (m - 1) / (m + 1).
  int e = 0;
  double m = std::frexp(x, &e);  // m in [0.5, 1): exact
  if (m < 0.70710678118654752440) {
    m *= 2.0;
    e -= 1;
  }
  const double s = (m - 1.0) / (m + 1.0);
  const double s2 = s * s;
  // |s| <= 0.1716, s2 <= 0.02944: 13 odd terms reach below 1e-19 relative.
  double term = s;
  double sum = 0.0;
  for (int k = 1; k <= 27; k += 2) {
    sum += term / k;
    term *= s2;
  }
  return 2.0 * sum + e * kLn2;
}

double portable_exp(double x) {
  if (std::isnan(x)) return x;
  if (x > 709.78) return std::numeric_limits<double>::infinity();
  if (x < -745.2) return 0.0;
  constexpr double kLn2Hi = 6.93147180369123816490e-01;  // fdlibm's split of ln 2
  constexpr double kLn2Lo = 1.90821492927058770002e-10;
  constexpr double kInvLn2 = 1.44269504088896338700e+00;
  const double k = std::floor(x * kInvLn2 + 0.5);
  const double r = (x - k * kLn2Hi) - k * kLn2Lo;  // |r| <= 0.35
  double sum = 1.0;
  for (int i = 22; i >= 1; --i) sum = 1.0 + sum * r / i;  // Horner form of the Taylor series
  return std::ldexp(sum, static_cast<int>(k));
}

}  // namespace bbt

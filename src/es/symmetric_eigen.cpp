#include "bbt/es/symmetric_eigen.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <thread>
#include <vector>

#include "bbt/common/error.hpp"
#include "bbt/es/dense.hpp"

namespace bbt::es {
namespace {

constexpr double kUnit = std::numeric_limits<double>::epsilon() / 2;  // unit round-off, 2^-53
constexpr int kLeaf = 32;  // sub-problems this small go to Eigen's tridiagonal QR

// A tridiagonal block: diagonal d[0..m), off-diagonal e[0..m-1); its eigenvectors go into the
// m x m block of q at (0, 0) with leading dimension ldq.
void solve_leaf(double* d, const double* e, int m, double* q, int ldq) {
  if (m == 1) {
    q[0] = 1;
    return;
  }
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver;
  solver.computeFromTridiagonal(Eigen::Map<const Eigen::VectorXd>(d, m),
                                Eigen::Map<const Eigen::VectorXd>(e, m - 1), Eigen::ComputeEigenvectors);
  if (solver.info() != Eigen::Success)
    throw Error("cma: eigendecomposition of the covariance failed to converge");
  for (int j = 0; j < m; ++j) {
    d[j] = solver.eigenvalues()[j];
    for (int i = 0; i < m; ++i) q[i + static_cast<std::ptrdiff_t>(j) * ldq] = solver.eigenvectors()(i, j);
  }
}

// Root `t` of the secular equation 1 + rho sum_j z2[j] / (d[j] - lambda) = 0 over ascending
// distinct poles d[0..k) (rho > 0). The root lies in (d[t], d[t+1]), or (d[k-1], d[k-1] + rho sum z2]
// for the last; it is returned as d[origin] + tau with origin the nearer pole, so that every
// difference d[j] - lambda = (d[j] - d[origin]) - tau keeps its relative accuracy (which the
// Gu-Eisenstat vectors need). `dd` is scratch of k entries.
void secular_root(int t, int k, const double* d, const double* z2, double rho, int* origin, double* tau_out,
                  double* dd) {
  int org;
  double lo, hi;
  if (t < k - 1) {
    const double mid = 0.5 * (d[t + 1] - d[t]);
    double f = 1.0;
    for (int j = 0; j < k; ++j) f += rho * z2[j] / ((d[j] - d[t]) - mid);
    if (f >= 0) {
      org = t, lo = 0, hi = mid;
    } else {
      org = t + 1, lo = -mid, hi = 0;
    }
  } else {
    double s = 0;
    for (int j = 0; j < k; ++j) s += z2[j];
    org = t, lo = 0, hi = rho * s * (1 + 8 * kUnit);
  }
  for (int j = 0; j < k; ++j) dd[j] = d[j] - d[org];
  double tau = 0.5 * (lo + hi);
  for (int iter = 0; iter < 400; ++iter) {
    // Poles at or left of d[t] (psi) and right of it (phi), with their derivatives in lambda.
    double psi = 0, dpsi = 0, phi = 0, dphi = 0;
    for (int j = 0; j <= t; ++j) {
      const double del = dd[j] - tau, w = z2[j] / del;
      psi += w;
      dpsi += w / del;
    }
    for (int j = t + 1; j < k; ++j) {
      const double del = dd[j] - tau, w = z2[j] / del;
      phi += w;
      dphi += w / del;
    }
    const double f = 1.0 + rho * (psi + phi);
    // Bound on the rounding error of f (as LAPACK's dlaed4 estimates it).
    const double err = kUnit * (2.0 + rho * (8.0 * (phi - psi) + std::abs(tau) * (dpsi + dphi)));
    if (std::abs(f) <= err) break;
    if (f < 0) {
      lo = tau;
    } else {
      hi = tau;
    }
    // Model psi and phi by one pole each at d[t], d[t+1], matching their slopes ("middle way"),
    // and step to the model's root.
    const double dl = dd[t] - tau;
    double eta = std::numeric_limits<double>::quiet_NaN();
    if (t < k - 1) {
      const double dr = dd[t + 1] - tau;
      const double a = rho * dpsi * dl * dl, b = rho * dphi * dr * dr;
      const double c = f - a / dl - b / dr;
      // c eta^2 - bq eta + cq = 0, one root in (dl, dr)
      const double bq = c * (dl + dr) + a + b, cq = c * dl * dr + a * dr + b * dl;
      if (c == 0) {
        eta = cq / bq;
      } else {
        const double sq = std::sqrt(std::max(0.0, bq * bq - 4 * c * cq));
        const double big = bq >= 0 ? bq + sq : bq - sq;
        const double r1 = big / (2 * c), r2 = 2 * cq / big;
        eta = (r1 > dl && r1 < dr) ? r1 : r2;
      }
    } else {
      const double a = rho * dpsi * dl * dl, c = f - a / dl;
      if (c > 0) eta = dl + a / c;
    }
    double next = tau + eta;
    if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
    if (next == tau || !(next > lo && next < hi)) break;  // the bracket is down to adjacent numbers
    tau = next;
  }
  *origin = org;
  *tau_out = tau;
}

class DivideAndConquer {
 public:
  DivideAndConquer(int threads, dense::Scratch& scratch) : threads_(threads), scratch_(scratch) {}

  // Eigenvalues of the tridiagonal (d, e) ascending into d, eigenvectors into q (zeroed by the caller).
  void solve(double* d, double* e, int m, double* q, int ldq, int depth = 0) const {
    if (m <= kLeaf) {
      solve_leaf(d, e, m, q, ldq);
      return;
    }
    const int m1 = m / 2, m2 = m - m1;
    const double beta = e[m1 - 1];
    d[m1 - 1] -= std::abs(beta);
    d[m1] -= std::abs(beta);
    double* q2 = q + m1 + static_cast<std::ptrdiff_t>(m1) * ldq;
    if (depth == 0 && threads_ > 1) {
      dense::run_two([&] { solve(d + m1, e + m1, m2, q2, ldq, depth + 1); },
                     [&] { solve(d, e, m1, q, ldq, depth + 1); });
    } else {
      solve(d, e, m1, q, ldq, depth + 1);
      solve(d + m1, e + m1, m2, q2, ldq, depth + 1);
    }
    merge(d, m1, m2, q, ldq, std::abs(beta), beta < 0 ? -1.0 : 1.0, depth == 0 && threads_ > 1);
  }

 private:
  // q = [Q1 0; 0 Q2] and d = [L1; L2] hold the halves' eigenpairs; the block's matrix is
  // Q diag(d) Q^T + rho w w^T with w = (e_{m1-1}, sign e_{m1}). Replaces them by its eigenpairs.
  void merge(double* d, int m1, int m2, double* q, int ldq, double rho, double sign, bool parallel) const {
    const int m = m1 + m2;
    const std::ptrdiff_t ld = ldq;
    auto col = [&](int j) { return q + j * ld; };
    std::vector<double> z(m);
    for (int r = 0; r < m1; ++r) z[r] = col(r)[m1 - 1];
    for (int r = m1; r < m; ++r) z[r] = sign * col(r)[m1];
    // Column kinds: 1 = rows of the top half only, 3 = bottom only, 2 = both (after a rotation).
    std::vector<int> kind(m);
    for (int r = 0; r < m; ++r) kind[r] = r < m1 ? 1 : 3;
    double z2sum = 0;
    for (int r = 0; r < m; ++r) z2sum += z[r] * z[r];
    const double znorm = std::sqrt(z2sum);
    for (int r = 0; r < m; ++r) z[r] /= znorm;
    rho *= z2sum;

    std::vector<int> order;  // the two ascending halves merged
    order.reserve(m);
    for (int i = 0, j = m1; i < m1 || j < m;) {
      if (j >= m || (i < m1 && d[i] <= d[j])) {
        order.push_back(i++);
      } else {
        order.push_back(j++);
      }
    }
    double dmax = 0;
    for (int r = 0; r < m; ++r) dmax = std::max(dmax, std::abs(d[r]));
    const double tol = 8 * kUnit * std::max(dmax, rho);

    // Deflation: a negligible z component, or two close poles rotated so that one z vanishes.
    std::vector<int> live, deflated;
    int pj = -1;
    for (int j : order) {
      if (rho * std::abs(z[j]) <= tol) {
        deflated.push_back(j);
        continue;
      }
      if (pj < 0) {
        pj = j;
        continue;
      }
      const double r = std::sqrt(z[j] * z[j] + z[pj] * z[pj]);
      const double c = z[j] / r, s = -z[pj] / r;
      const double t = d[j] - d[pj];
      if (std::abs(t * c * s) <= tol) {
        z[j] = r;
        z[pj] = 0;
        double* x = col(pj);
        double* y = col(j);
        for (int i = 0; i < m; ++i) {
          const double xi = x[i], yi = y[i];
          x[i] = c * xi + s * yi;
          y[i] = c * yi - s * xi;
        }
        if (kind[pj] != kind[j]) kind[pj] = kind[j] = 2;
        const double dpj = d[pj] * c * c + d[j] * s * s;
        d[j] = d[pj] * s * s + d[j] * c * c;
        d[pj] = dpj;
        deflated.push_back(pj);
      } else {
        live.push_back(pj);
      }
      pj = j;
    }
    if (pj >= 0) live.push_back(pj);

    const int k = static_cast<int>(live.size());
    std::vector<double> dl(k), z2(k), tau(k);
    std::vector<int> org(k);
    for (int r = 0; r < k; ++r) {
      dl[r] = d[live[r]];
      z2[r] = z[live[r]] * z[live[r]];
    }
    // The loops below are over independent items (roots, rows, columns).
    auto in_parallel = [&](int count, auto&& body) { split_in_two(parallel, count, body); };
    in_parallel(k, [&](int c0, int c1) {
      std::vector<double> dd(k);
      for (int c = c0; c < c1; ++c)
        secular_root(c, k, dl.data(), z2.data(), rho, &org[c], &tau[c], dd.data());
    });
    // delta(r, c) = dl[r] - lambda_c, accurately.
    auto delta = [&](int r, int c) { return (dl[r] - dl[org[c]]) - tau[c]; };
    // Gu-Eisenstat: the z for which the computed roots are exact; its vectors are orthogonal.
    std::vector<double> zhat(k);
    in_parallel(k, [&](int r0, int r1) {
      for (int r = r0; r < r1; ++r) zhat[r] = delta(r, r);
      for (int c = 0; c < k; ++c) {
        const double base = dl[org[c]], tc = tau[c], dc = dl[c];
        for (int r = r0; r < r1; ++r)
          if (r != c) zhat[r] *= ((dl[r] - base) - tc) / (dl[r] - dc);
      }
      for (int r = r0; r < r1; ++r) zhat[r] = std::copysign(std::sqrt(std::max(0.0, -zhat[r])), z[live[r]]);
    });
    dense::Scratch::Buffer u = scratch_.take(static_cast<std::size_t>(k) * k);  // column c: vector of root c
    in_parallel(k, [&](int c0, int c1) {
      for (int c = c0; c < c1; ++c) {
        double* uc = u.data() + static_cast<std::ptrdiff_t>(c) * k;
        const double base = dl[org[c]], tc = tau[c];
        double s = 0;
        for (int r = 0; r < k; ++r) {
          uc[r] = zhat[r] / ((dl[r] - base) - tc);
          s += uc[r] * uc[r];
        }
        const double inv = 1.0 / std::sqrt(s);
        for (int r = 0; r < k; ++r) uc[r] *= inv;
      }
    });

    // New vectors = Q(:, live) u, skipping the known zero halves of kind-1 and kind-3 columns.
    dense::Scratch::Buffer fresh = scratch_.take(static_cast<std::size_t>(m) * k);  // m x k
    multiply_half(q, ld, live, kind, 3, 0, m1, u, k, fresh.data(), m, parallel);
    multiply_half(q, ld, live, kind, 1, m1, m2, u, k, fresh.data() + m1, m, parallel);

    // Everything in ascending order; ties keep roots before deflated pairs, each in index order.
    struct Pair {
      double value;
      int source;  // < k: root; else deflated[source - k]
    };
    std::vector<Pair> pairs;
    pairs.reserve(m);
    for (int c = 0; c < k; ++c) pairs.push_back({dl[org[c]] + tau[c], c});
    for (int i = 0; i < static_cast<int>(deflated.size()); ++i) pairs.push_back({d[deflated[i]], k + i});
    std::stable_sort(pairs.begin(), pairs.end(),
                     [](const Pair& a, const Pair& b) { return a.value < b.value; });
    dense::Scratch::Buffer out = scratch_.take(static_cast<std::size_t>(m) * m);
    for (int j = 0; j < m; ++j) {
      const Pair& p = pairs[j];
      const double* src = p.source < k ? fresh.data() + static_cast<std::ptrdiff_t>(p.source) * m
                                       : col(deflated[p.source - k]);
      std::copy(src, src + m, out.data() + static_cast<std::ptrdiff_t>(j) * m);
      d[j] = p.value;
    }
    for (int j = 0; j < m; ++j)
      std::copy(out.data() + static_cast<std::ptrdiff_t>(j) * m,
                out.data() + static_cast<std::ptrdiff_t>(j + 1) * m, col(j));
  }

  // rows [row0, row0 + rows) of the new vectors: sum over live columns not of kind `skip`.
  void multiply_half(const double* q, std::ptrdiff_t ld, const std::vector<int>& live,
                     const std::vector<int>& kind, int skip, int row0, int rows,
                     const dense::Scratch::Buffer& u, int k, double* out, int ldo, bool parallel) const {
    std::vector<int> used;
    for (int r = 0; r < k; ++r)
      if (kind[live[r]] != skip) used.push_back(r);
    const int nu = static_cast<int>(used.size());
    dense::Scratch::Buffer a = scratch_.take(static_cast<std::size_t>(rows) * nu);
    dense::Scratch::Buffer b = scratch_.take(static_cast<std::size_t>(nu) * k);
    for (int t = 0; t < nu; ++t) {
      const double* src = q + live[used[t]] * ld + row0;
      std::copy(src, src + rows, a.data() + static_cast<std::ptrdiff_t>(t) * rows);
      for (int c = 0; c < k; ++c)
        b[t + static_cast<std::ptrdiff_t>(c) * nu] = u[used[t] + static_cast<std::ptrdiff_t>(c) * k];
    }
    if (nu == 0) {
      for (int c = 0; c < k; ++c)
        std::fill(out + static_cast<std::ptrdiff_t>(c) * ldo, out + c * ldo + rows, 0.0);
      return;
    }
    // Output columns split between threads: each column's sums are the same either way.
    split_in_two(parallel, k, [&](int c0, int c1) {
      dense::gemm(rows, c1 - c0, nu, a.data(), rows, b.data() + static_cast<std::ptrdiff_t>(c0) * nu, nu,
                  out + static_cast<std::ptrdiff_t>(c0) * ldo, ldo);
    });
  }

  // body(begin, end) over [0, count) of independent items: in two halves on two threads when
  // `parallel` and the range is worth it, else at once; the result is the same.
  template <class Body>
  static void split_in_two(bool parallel, int count, const Body& body) {
    if (!parallel || count < 64) {
      body(0, count);
      return;
    }
    const int half = count / 2;
    dense::run_two([&] { body(0, half); }, [&] { body(half, count); });
  }

  int threads_;
  dense::Scratch& scratch_;
};

}  // namespace

void symmetric_eigen(const Eigen::MatrixXd& a, SymmetricEigen& out, int threads, dense::Scratch* scratch) {
  const int n = static_cast<int>(a.rows());
  if (a.cols() != n) throw Error("symmetric_eigen: matrix is not square");
  // Largest entry of the lower triangle (what is read), which must be finite.
  double amax = 0;
  for (int j = 0; j < n; ++j)
    for (int i = j; i < n; ++i) {
      if (!std::isfinite(a(i, j))) throw Error("cma: the covariance matrix holds a non-finite value");
      amax = std::max(amax, std::abs(a(i, j)));
    }
  out.values.resize(n);
  out.vectors.setZero(n, n);
  if (n == 0) return;
  if (n == 1) {
    out.values[0] = a(0, 0);
    out.vectors(0, 0) = 1;
    return;
  }
  if (n < 128) threads = 1;  // too small to pay for starting threads (no effect on the result)
  dense::Scratch local;
  dense::Scratch& pool = scratch ? *scratch : local;
  // Scale by a power of two (exact) so the largest entry is in [0.5, 1): no overflow or underflow
  // in the Householder norms.
  if (amax == 0) {
    out.vectors.setIdentity();
    out.values.setZero();
    return;
  }
  int exponent = 0;
  std::frexp(amax, &exponent);
  const double down = std::ldexp(1.0, -exponent);
  // A = Q T Q^T.
  dense::Scratch::Buffer packed = pool.take(static_cast<std::size_t>(n) * n);
  for (int j = 0; j < n; ++j)
    for (int i = j; i < n; ++i) packed[i + static_cast<std::size_t>(j) * n] = a(i, j) * down;
  Eigen::VectorXd d(n), e(n - 1), h(n - 1);
  dense::tridiagonalize(n, packed.data(), n, d.data(), e.data(), h.data(), threads);
  // Scale T to norm ~1 so the secular equation cannot overflow (T != 0: it has A's Frobenius norm).
  const double scale = std::max(d.cwiseAbs().maxCoeff(), e.cwiseAbs().maxCoeff());
  d /= scale;
  e /= scale;
  DivideAndConquer(threads, pool).solve(d.data(), e.data(), n, out.vectors.data(), n);
  out.values = (d * scale) * std::ldexp(1.0, exponent);
  // V = Q Z.
  dense::apply_householder_left(n, packed.data(), n, h.data(), out.vectors.data(), n, n, threads, pool);
}

SymmetricEigen symmetric_eigen(const Eigen::MatrixXd& a, int threads) {
  SymmetricEigen out;
  symmetric_eigen(a, out, threads, nullptr);
  return out;
}

}  // namespace bbt::es

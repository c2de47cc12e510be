#include "bbt/es/dense.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "bbt/common/error.hpp"
#include "dense_kernels.hpp"

namespace bbt::es::dense {
namespace {

// The kernel sets this CPU can run, slowest first.
std::vector<const KernelSet*> runnable_kernel_sets() {
  std::vector<const KernelSet*> out{&kGenericKernels};
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) out.push_back(&kAvx2Kernels);
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma")) out.push_back(&kAvx512Kernels);
#endif
  return out;
}

std::atomic<const KernelSet*> g_kernels{nullptr};

const KernelSet& kernels() {
  const KernelSet* k = g_kernels.load(std::memory_order_acquire);
  if (!k) {
    k = runnable_kernel_sets().back();
    g_kernels.store(k, std::memory_order_release);
  }
  return *k;
}

// Householder vector of x[0..len): returns h and beta, overwrites x[1..) with the essential part.
double make_householder(double* x, int len, double* beta) {
  const double x0 = x[0];
  const double tail2 = len > 1 ? kernels().dot(x + 1, x + 1, len - 1) : 0.0;
  if (tail2 <= std::numeric_limits<double>::min()) {
    for (int r = 1; r < len; ++r) x[r] = 0;
    *beta = x0;
    return 0;
  }
  double b = std::sqrt(x0 * x0 + tail2);
  if (x0 >= 0) b = -b;
  const double scale = x0 - b;
  for (int r = 1; r < len; ++r) x[r] = x[r] / scale;
  *beta = b;
  return (b - x0) / b;
}

// Step i's sweep is always cut into the same two parts (the first ~29 % of the columns hold about
// half of the lower triangle), each with its own partial product, so a second thread can take
// one part without changing a bit.
int sweep_split(int len) { return 1 + (len - 1) * 29 / 100; }

constexpr int kParallelMinLen = 96;  // below this a step is too short to hand over

// Spin until `flag` reaches `value` (the other thread's part of a step takes microseconds).
void wait_for(const std::atomic<int>& flag, int value) {
  for (int spins = 0; flag.load(std::memory_order_acquire) < value; ++spins)
    if (spins > 1000) std::this_thread::yield();
}

}  // namespace

void run_two(const std::function<void()>& first, const std::function<void()>& second) {
  std::exception_ptr second_error;
  std::thread other([&] {
    try {
      second();
    } catch (...) {
      second_error = std::current_exception();
    }
  });
  try {
    first();
  } catch (...) {
    other.join();
    throw;
  }
  other.join();
  if (second_error) std::rethrow_exception(second_error);
}

Scratch::Buffer Scratch::take(std::size_t n) {
  std::vector<double> v;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // The smallest free buffer that is big enough, else the biggest (grown).
    int pick = -1;
    for (int i = 0; i < static_cast<int>(free_.size()); ++i) {
      const std::size_t size = free_[i].size();
      if (pick < 0) {
        pick = i;
        continue;
      }
      const std::size_t best = free_[pick].size();
      if (size >= n ? (best < n || size < best) : (best < n && size > best)) pick = i;
    }
    if (pick >= 0) {
      v = std::move(free_[pick]);
      free_.erase(free_.begin() + pick);
    }
  }
  if (v.size() < n) v.resize(n);
  return Buffer(this, std::move(v));
}

void Scratch::give_back(std::vector<double> v) {
  std::lock_guard<std::mutex> lock(mutex_);
  free_.push_back(std::move(v));
}

std::string kernels_name() { return kernels().name; }

std::vector<std::string> available_kernels() {
  std::vector<std::string> out;
  for (const KernelSet* k : runnable_kernel_sets()) out.push_back(k->name);
  return out;
}

void use_kernels(const std::string& name) {
  for (const KernelSet* k : runnable_kernel_sets()) {
    if (name == k->name) {
      g_kernels.store(k, std::memory_order_release);
      return;
    }
  }
  throw UsageError("kernels: '" + name + "' is not available on this CPU");
}

void gemm(int m, int n, int k, const double* a, int lda, const double* b, int ldb, double* c, int ldc) {
  kernels().gemm(m, n, k, a, lda, b, ldb, c, ldc);
}

double dot(const double* x, const double* y, int len) { return kernels().dot(x, y, len); }

void apply_householder_left(int n, const double* packed, int ld_packed, const double* h, double* z, int ncols,
                            int ldz, int threads, Scratch& scratch) {
  if (n < 2 || ncols <= 0) return;
  const KernelSet& ks = kernels();
  const std::ptrdiff_t lp = ld_packed, lz = ldz;
  // Compact WY: reflectors [i0, i0 + nb) act on rows r0 = i0 + 1.. as I - Y T Y^T, Y (L x nb) unit
  // lower trapezoidal, T upper triangular (LAPACK's dlarft, forward and column-wise).
  constexpr int kBlock = 32;
  struct Block {
    int i0, nb, r0, len;
    Scratch::Buffer y, yt;  // L x nb, nb x L
    std::vector<double> t;  // nb x nb
  };
  std::vector<Block> blocks;
  blocks.reserve((n - 2) / kBlock + 1);
  for (int i0 = 0; i0 < n - 1; i0 += kBlock) {
    const int nb = std::min(kBlock, n - 1 - i0), len = n - (i0 + 1);
    Block bl{i0,
             nb,
             i0 + 1,
             len,
             scratch.take(static_cast<std::size_t>(len) * nb),
             scratch.take(static_cast<std::size_t>(nb) * len),
             {}};
    std::fill(bl.y.data(), bl.y.data() + static_cast<std::size_t>(len) * nb, 0.0);
    for (int t = 0; t < nb; ++t) {
      const int i = i0 + t;  // v_i = [1; packed(i + 2.., i)] from row i + 1 = r0 + t
      double* yc = bl.y.data() + static_cast<std::ptrdiff_t>(t) * len;
      yc[t] = 1;
      for (int r = i + 2; r < n; ++r) yc[r - bl.r0] = packed[r + i * lp];
    }
    for (int t = 0; t < nb; ++t)
      for (int r = 0; r < len; ++r)
        bl.yt[t + static_cast<std::ptrdiff_t>(r) * nb] = bl.y[r + static_cast<std::ptrdiff_t>(t) * len];
    std::vector<double> yty(static_cast<std::size_t>(nb) * nb);
    ks.gemm(nb, nb, len, bl.yt.data(), nb, bl.y.data(), len, yty.data(), nb);
    bl.t.assign(static_cast<std::size_t>(nb) * nb, 0.0);
    auto T = [&](int r, int c) -> double& { return bl.t[r + static_cast<std::size_t>(c) * nb]; };
    for (int c = 0; c < nb; ++c) {
      const double hc = h[i0 + c];
      T(c, c) = hc;
      // T(0:c, c) = -h_c T(0:c, 0:c) Y(:, 0:c)^T Y(:, c)
      for (int r = 0; r < c; ++r) {
        double sum = 0;
        for (int q = r; q < c; ++q) sum += T(r, q) * yty[q + static_cast<std::size_t>(c) * nb];
        T(r, c) = -hc * sum;
      }
    }
    blocks.push_back(std::move(bl));
  }
  // Z <- Q_0 Q_1 ... Z: the last block first. Every column of Z is transformed on its own, so
  // splitting the columns between threads changes nothing.
  auto apply = [&](int c0, int c1) {
    const int nc = c1 - c0;
    if (nc <= 0) return;
    std::vector<double> w(static_cast<std::size_t>(kBlock) * nc), w2(w.size());
    Scratch::Buffer u = scratch.take(static_cast<std::size_t>(n) * nc);
    for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) {
      const Block& bl = *it;
      double* zb = z + bl.r0 + c0 * lz;
      ks.gemm(bl.nb, nc, bl.len, bl.yt.data(), bl.nb, zb, ldz, w.data(), bl.nb);         // Y^T Z
      ks.gemm(bl.nb, nc, bl.nb, bl.t.data(), bl.nb, w.data(), bl.nb, w2.data(), bl.nb);  // T (Y^T Z)
      ks.gemm(bl.len, nc, bl.nb, bl.y.data(), bl.len, w2.data(), bl.nb, u.data(), bl.len);
      for (int c = 0; c < nc; ++c) {
        double* zc = zb + c * lz;
        const double* uc = u.data() + static_cast<std::ptrdiff_t>(c) * bl.len;
        for (int r = 0; r < bl.len; ++r) zc[r] = zc[r] - uc[r];
      }
    }
  };
  if (threads > 1 && ncols >= 64) {
    const int half = ncols / 2;
    run_two([&] { apply(0, half); }, [&] { apply(half, ncols); });
  } else {
    apply(0, ncols);
  }
}

void tridiagonalize(int n, double* a, int lda, double* d, double* e, double* h, int threads) {
  const KernelSet& ks = kernels();
  const std::ptrdiff_t ld = lda;
  auto col = [&](int j) { return a + j * ld; };
  if (n == 1) {
    d[0] = a[0];
    return;
  }
  std::vector<double> vcur(n), vnext(n), p(n), w(n), y1(n), y2(n);
  // Column 0 and the product for step 0: y = A(1:, 1:) v_0 from the lower triangle.
  d[0] = a[0];
  double beta;
  h[0] = make_householder(col(0) + 1, n - 1, &beta);
  e[0] = beta;
  vcur[0] = 1;
  for (int r = 1; r < n - 1; ++r) vcur[r] = col(0)[1 + r];
  std::fill(y1.begin(), y1.end(), 0.0);
  ks.symv_lower(col(1) + 1, ld, n - 1, vcur.data(), y1.data());
  for (int r = 0; r < n - 1; ++r) p[r] = h[0] * y1[r];

  // The second part of each long step goes to whichever thread claims it first: the helper, or
  // this thread once its own part is done (so a descheduled helper never stalls the reduction).
  // `go` = latest step offered (n: stop), `claimed` = latest step whose second part someone took,
  // `done` = latest step whose second part the helper finished.
  std::atomic<int> go{-1}, claimed{-1}, done{-1};
  // Step i's two parts over the trailing matrix A(i+1:, i+1:), each into its own partial product.
  auto first_part = [&](int i) {
    const int len = n - i - 1;
    std::fill(y1.begin(), y1.begin() + (len - 1), 0.0);
    ks.sweep(a, ld, i + 1, len, 1, sweep_split(len), vcur.data(), w.data(), vnext.data(), y1.data());
  };
  auto second_part = [&](int i) {
    const int len = n - i - 1;
    std::fill(y2.begin(), y2.begin() + (len - 1), 0.0);
    ks.sweep(a, ld, i + 1, len, sweep_split(len), len, vcur.data(), w.data(), vnext.data(), y2.data());
  };
  auto claim = [&](int i) {
    int c = claimed.load(std::memory_order_acquire);
    while (c < i)
      if (claimed.compare_exchange_weak(c, i, std::memory_order_acq_rel)) return true;
    return false;
  };
  std::thread helper;
  if (threads > 1 && n - 2 >= kParallelMinLen) {
    helper = std::thread([&] {
      for (int seen = -1;;) {
        wait_for(go, seen + 1);
        const int i = go.load(std::memory_order_acquire);
        if (i >= n) return;
        seen = i;
        if (!claim(i)) continue;
        second_part(i);
        done.store(i, std::memory_order_release);
      }
    });
  }
  for (int i = 0; i + 1 < n; ++i) {
    const int len = n - i - 1;  // trailing matrix A(i+1:, i+1:)
    const int b = i + 1;
    // w = p - (h/2)(p . v) v; A' -= v w^T + w v^T
    const double alpha = -0.5 * h[i] * ks.dot(p.data(), vcur.data(), len);
    for (int r = 0; r < len; ++r) w[r] = p[r] + alpha * vcur[r];
    double* c0 = col(b) + b;
    for (int r = 0; r < len; ++r) c0[r] = (c0[r] - vcur[r] * w[0]) - w[r] * vcur[0];
    d[b] = c0[0];
    if (len == 1) break;
    // The next column is final: its reflector, then sweep the rest (update + next product).
    h[b] = make_householder(c0 + 1, len - 1, &beta);
    e[b] = beta;
    const int nlen = len - 1;
    vnext[0] = 1;
    for (int r = 1; r < nlen; ++r) vnext[r] = c0[1 + r];
    const bool offered = helper.joinable() && len >= kParallelMinLen;
    if (offered) go.store(i, std::memory_order_release);
    first_part(i);
    if (!offered || claim(i)) {
      second_part(i);
    } else {
      wait_for(done, i);
    }
    for (int r = 0; r < nlen; ++r) p[r] = h[b] * (y1[r] + y2[r]);
    std::swap(vcur, vnext);
  }
  if (helper.joinable()) {
    go.store(n, std::memory_order_release);
    helper.join();
  }
}

}  // namespace bbt::es::dense

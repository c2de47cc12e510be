#pragma once
// Dense kernels for rank 0's optimiser whose results are the same bits on every CPU, for every SIMD
// width and every thread count: each output element is computed by one fixed sequence of
// correctly rounded fma and IEEE operations, and vector lanes only ever hold independent elements
// or the fixed "8 virtual lanes" of a dot product. The instruction set (AVX-512, AVX2, generic) is
// picked at run time and changes only the speed. Eigen's own products pick their blocking from the
// CPU's cache sizes at run time, so their rounding can change between node types; a run resumed
// on another node would then drift.
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace bbt::es::dense {

// Buffers that keep their memory from one call to the next: at n = 500 the fresh pages of a new
// 2 MB allocation cost more than the arithmetic done in it. Thread-safe. take() hands out at
// least n doubles (contents unspecified) that go back to the pool with the handle.
class Scratch {
 public:
  class Buffer {
   public:
    Buffer(Buffer&& other) noexcept : owner_(other.owner_), v_(std::move(other.v_)) {
      other.owner_ = nullptr;
    }
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
    Buffer& operator=(Buffer&&) = delete;
    ~Buffer() {
      if (owner_) owner_->give_back(std::move(v_));
    }
    double* data() { return v_.data(); }
    const double* data() const { return v_.data(); }
    double& operator[](std::size_t i) { return v_[i]; }
    double operator[](std::size_t i) const { return v_[i]; }

   private:
    friend class Scratch;
    Buffer(Scratch* owner, std::vector<double> v) : owner_(owner), v_(std::move(v)) {}
    Scratch* owner_;
    std::vector<double> v_;
  };

  Buffer take(std::size_t n);

 private:
  void give_back(std::vector<double> v);
  std::mutex mutex_;
  std::vector<std::vector<double>> free_;
};

// Runs `second` on a new thread and `first` on this one, joins, then rethrows the exception of
// `first`, else of `second`, if any (an exception must never escape a std::thread).
void run_two(const std::function<void()>& first, const std::function<void()>& second);

// The kernel set in use ("avx512", "avx2" or "generic"), those this CPU can run, and a switch
// between them (for tests and benchmarks; throws UsageError for one the CPU cannot run).
std::string kernels_name();
std::vector<std::string> available_kernels();
void use_kernels(const std::string& name);

// C[m x n] = A[m x k] * B[k x n] (column-major, leading dimensions lda, ldb, ldc; C must not alias
// A or B). Every C(i, j) is fma(A(i,k-1), B(k-1,j), ... fma(A(i,1), B(1,j), A(i,0) B(0,j))) in order of p.
void gemm(int m, int n, int k, const double* a, int lda, const double* b, int ldb, double* c, int ldc);

// Sum of x[i] * y[i]: lane l (0..7) accumulates (by fma) i = l, l + 8, ... in order over the first
// 8 * floor(len / 8) elements, the lanes are added as ((0+1)+(2+3))+((4+5)+(6+7)), then the tail
// is fma-ed on.
double dot(const double* x, const double* y, int len);

// Householder reduction of the symmetric a (n x n, lower triangle read and overwritten) to
// tridiagonal form T = Q^T A Q: diagonal d[n], sub-diagonal e[n-1], reflector coefficients h[n-1],
// the reflectors' vectors packed below the sub-diagonal as Eigen's Tridiagonalization stores them
// (and the same conventions: H = I - h v v^T, v[0] = 1, H x = beta e_1 with beta of the sign
// opposite to x[0]). One pass over the trailing matrix per column: the rank-2 update of step i
// and the matrix-vector product of step i + 1 share it. threads = 2 hands half of each long step to
// a second thread; the bits are the same.
void tridiagonalize(int n, double* a, int lda, double* d, double* e, double* h, int threads = 1);

// Applies the Householder reflectors of a packed tridiagonalisation to z (n x ncols, leading
// dimension ldz) from the left: z <- H_0 H_1 ... H_{n-2} z, where H_i = I - h[i] v_i v_i^T acts on
// rows i+1..n-1 with v_i = [1; packed(i+2.., i)] (Eigen's Tridiagonalization layout).
// Blocked (compact WY, 32 reflectors a block); threads = 2 splits the columns of z.
void apply_householder_left(int n, const double* packed, int ld_packed, const double* h, double* z, int ncols,
                            int ldz, int threads, Scratch& scratch);

}  // namespace bbt::es::dense

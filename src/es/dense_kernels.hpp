#pragma once
// The inner loops of bbt::es::dense, compiled once per instruction set (dense_avx512.cpp,
// dense_avx2.cpp, dense_generic.cpp from dense_kernels.inc). Every multiply-add in them is one
// correctly rounded fma (a hardware instruction, or libm's exact fma where there is none), and
// every other step a plain IEEE operation, so all three produce the same bits.
#include <cstddef>

namespace bbt::es::dense {

struct KernelSet {
  const char* name;
  void (*gemm)(int m, int n, int k, const double* a, int lda, const double* b, int ldb, double* c, int ldc);
  double (*dot)(const double* x, const double* y, int len);
  // y += A v for the symmetric A (len x len, lower triangle, leading dimension ld), y zeroed.
  void (*symv_lower)(const double* a, std::ptrdiff_t ld, int len, const double* v, double* y);
  // Columns [j0, j1) of one tridiagonalisation step (see dense.cpp).
  void (*sweep)(double* a, std::ptrdiff_t ld, int b, int len, int j0, int j1, const double* vcur,
                const double* w, const double* vnext, double* y);
};

extern const KernelSet kGenericKernels;
#if defined(__x86_64__)
extern const KernelSet kAvx2Kernels;
extern const KernelSet kAvx512Kernels;
#endif

}  // namespace bbt::es::dense

// Kernels for x86-64 with AVX2 and FMA (compiled with -mavx2 -mfma; see dense_kernels.hpp).
#if defined(__x86_64__)
#define BBT_KERNEL_NS avx2
#define BBT_KERNEL_SET kAvx2Kernels
#define BBT_KERNEL_NS_NAME "avx2"
#include "dense_kernels.inc"
#endif

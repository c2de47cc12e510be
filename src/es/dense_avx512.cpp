// Kernels for x86-64 with AVX-512F and FMA (compiled with -mavx512f -mfma; see dense_kernels.hpp).
#if defined(__x86_64__)
#define BBT_KERNEL_NS avx512
#define BBT_KERNEL_SET kAvx512Kernels
#define BBT_KERNEL_NS_NAME "avx512"
#include "dense_kernels.inc"
#endif

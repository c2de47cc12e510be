// Kernels for any CPU (see dense_kernels.hpp).
#define BBT_KERNEL_NS generic
#define BBT_KERNEL_SET kGenericKernels
#define BBT_KERNEL_NS_NAME "generic"
#include "dense_kernels.inc"

#pragma once
// Which BLAS libtorch's CPU matrix products run on, and whether it leaves speed on the table.
// OpenBLAS picks its kernels from the CPU model when it loads and falls back to generic SSE3
// ("Prescott") kernels on a model it does not know (a virtual CPU, or a CPU newer than the
// OpenBLAS build): 3-5x slower float32 matrix products, measured on this project's machines.
#include <string>

namespace bbt::model {

struct BlasInfo {
  std::string library;  // "OpenBLAS" or "unknown" (MKL, Accelerate, the reference BLAS, ...)
  std::string core;     // OpenBLAS's kernel set ("SkylakeX", "Haswell", "Prescott", ...); "" if unknown
  std::string advice;   // what to set for faster kernels on this CPU; "" when nothing is to be gained
};

BlasInfo blas_info();

}  // namespace bbt::model

#include "bbt/model/blas.hpp"

#include <dlfcn.h>

namespace bbt::model {

BlasInfo blas_info() {
  BlasInfo info;
  info.library = "unknown";
  // Looked up at run time: libtorch may link any BLAS, and this must not pull OpenBLAS in.
  using CoreName = char* (*)();
  auto* corename = reinterpret_cast<CoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (!corename) return info;
  info.library = "OpenBLAS";
  const char* core = corename();
  info.core = core ? core : "";
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  if (info.core == "Prescott" || info.core == "Core2" || info.core == "Nehalem") {
    __builtin_cpu_init();
    const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
                        __builtin_cpu_supports("avx512cd");
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const char* better = avx512 ? "SkylakeX" : avx2 ? "Haswell" : nullptr;
    if (better)
      info.advice = std::string("OpenBLAS runs its generic ") + info.core + " kernels on a CPU with " +
                    (avx512 ? "AVX-512" : "AVX2") + ": set OPENBLAS_CORETYPE=" + better +
                    " in the environment for several times faster matrix products";
  }
#endif
  return info;
}

}  // namespace bbt::model

// Hot loops get an AVX2/FMA clone, picked at load time, where the compiler can make one (GCC on x86-64): the addon
// itself is built for x86-64-v2 so that it runs on any x86 machine of the last decade, including cluster nodes other
// than the one that built it. Elsewhere (clang, ARM) the loops are compiled once for the build's target.
#pragma once
#include <cstdlib>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define TME_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
// A few loops also have a 16-lane AVX-512 version, chosen at run time (__builtin_cpu_supports).
#define TME_HAS_AVX512_PATH 1
#else
#define TME_SIMD_CLONES
#define TME_HAS_AVX512_PATH 0
#endif

namespace tme {
// Whether the AVX-512 versions of the hot loops run (TME_NO_AVX512=1: the AVX2 / SSE ones, for comparisons).
inline bool useAvx512() {
#if TME_HAS_AVX512_PATH
  static const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                             std::getenv("TME_NO_AVX512") == nullptr;
  return avx512;
#else
  return false;
#endif
}
}  // namespace tme

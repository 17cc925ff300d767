#include "cpu/cpu_kernels.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#if defined(__SSE__)
#include <immintrin.h>
#endif

#include "cpu/box_ops.h"
#include "cpu/fftw_plans.h"
#include "cpu/simd.h"
#include "cpu/slab_correlator.h"
#include "errors.h"
#include "match/geometry.h"

namespace tme {
namespace {

struct CpuBuffer {
  FftwArray<char> owned;
  char* data = nullptr;
  size_t bytes = 0;
};

// TME_PROFILE=1 prints the time spent per kernel when a worker ends (stderr): for tuning, off by default.
struct KernelProfile {
  bool on = std::getenv("TME_PROFILE") != nullptr;
  std::map<std::string, double> ms;
  std::map<std::string, int64_t> calls;
  std::map<std::string, double> fastest;
  ~KernelProfile() {
    if (!on) return;
    for (auto& [name, t] : ms)
      std::fprintf(stderr, "tme profile %-14s %9.2f ms total %8.3f ms/call %8.3f ms min\n", name.c_str(), t,
                   t / calls[name], fastest[name]);
  }
};

class Timed {
 public:
  Timed(KernelProfile& p, const char* name) : p_(p), name_(name) {
    if (p_.on) start_ = std::chrono::steady_clock::now();
  }
  ~Timed() {
    if (!p_.on) return;
    const double t = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count();
    p_.ms[name_] += t;
    auto f = p_.fastest.find(name_);
    if (f == p_.fastest.end() || t < f->second) p_.fastest[name_] = t;
    p_.calls[name_]++;
  }

 private:
  KernelProfile& p_;
  const char* name_;
  std::chrono::steady_clock::time_point start_;
};

// The running max/argmax and the statistics over one block of scores, 8 lanes at a time (GCC vector types: AVX2
// where the machine has it, two SSE halves elsewhere). Measured on a 128^3 tile: the scalar loop with a branch per
// voxel took 2.7-3 ms per rotation; this one 0.7-0.8 ms.
typedef float Float8 __attribute__((vector_size(32)));
typedef int32_t Int8 __attribute__((vector_size(32)));

// One 8-lane step of the running max/argmax and the statistics (s, q: sums of w x and w x^2; m: max over counted
// lanes). Inlined into each clone (arguments by reference: vectors passed by value would change the ABI).
struct Lanes {
  Float8 s = {0, 0, 0, 0, 0, 0, 0, 0}, q = s;
  Float8 m = {kNoScore, kNoScore, kNoScore, kNoScore, kNoScore, kNoScore, kNoScore, kNoScore};
  Int8 rv;
  static constexpr float kNoScore = -std::numeric_limits<float>::infinity();
};
typedef int64_t Long4 __attribute__((vector_size(32)));
// Whether any lane is set: four 64-bit lanes to test instead of eight (the test costs as much as the score).
__attribute__((always_inline)) inline bool anyLane(const Int8& v) {
  Long4 u;
  std::memcpy(&u, &v, sizeof u);
  return (u[0] | u[1] | u[2] | u[3]) != 0;
}

// vs, vq (null = not asked for): the per-voxel Σ score and Σ score² over rotations (background normalisation),
// updated in the same pass while the block is in cache. Masked (only inlined into AVX-512 functions): the maps are
// written by masked stores, without a branch; see the update below. Returns whether a lane had a new maximum.
template <bool Masked>
__attribute__((always_inline)) inline bool accumulate8(Lanes& l, const Float8& x, const float* w, float* best,
                                                       int32_t* arg, float* vs, float* vq) {
  if (vs) {
    Float8 a, c;
    std::memcpy(&a, vs, sizeof a);
    std::memcpy(&c, vq, sizeof c);
    a += x;
    c += x * x;
    std::memcpy(vs, &a, sizeof a);
    std::memcpy(vq, &c, sizeof c);
  }
  Float8 b;
  std::memcpy(&b, best, sizeof b);
  if (w) {
    Float8 wv;
    std::memcpy(&wv, w, sizeof wv);
    const Float8 wx = wv * x;
    l.s += wx;
    l.q += wx * x;
    const Float8 none = {Lanes::kNoScore, Lanes::kNoScore, Lanes::kNoScore, Lanes::kNoScore, Lanes::kNoScore,
                         Lanes::kNoScore, Lanes::kNoScore, Lanes::kNoScore};
    const Float8 mx = wv == 0.0f ? none : x;
    l.m = mx > l.m ? mx : l.m;
  } else {
    l.s += x;
    l.q += x * x;
    l.m = x > l.m ? x : l.m;
  }
  // Maps are written only where a lane has a new maximum. A branch on "any lane" is well predicted while nearly every
  // step or nearly none has one, and mispredicts often in between, for hundreds of rotations (neighbouring voxels'
  // scores are correlated): on a 512x512x200 tile the scoring pass took 45-60 ms per rotation there against 25-30
  // for a worker's first rotations. AVX-512's masked stores write the same lanes without a branch, at a steady
  // cost (29-33 ms there); MapWrites picks. Inline assembly: this template is not compiled for AVX-512, its caller is.
  if constexpr (Masked) {
    unsigned char up = 0;
#if TME_HAS_AVX512_PATH
    asm("vcmpps $0x1e, %[b], %[x], %[k]\n\t"
        "vmovups %[x], %[best]%{%[k]%}\n\t"
        "vmovdqu32 %[rv], %[arg]%{%[k]%}"
        : [k] "=&Yk"(up), [best] "+m"(*reinterpret_cast<Float8*>(best)), [arg] "+m"(*reinterpret_cast<Int8*>(arg))
        : [x] "v"(x), [b] "v"(b), [rv] "v"(l.rv));
#endif
    return up != 0;
  }
  const Int8 up = x > b;
  const bool any = anyLane(up);
  if (any) {
    Int8 a;
    std::memcpy(&a, arg, sizeof a);
    b = up ? x : b;
    a = up ? l.rv : a;
    std::memcpy(best, &b, sizeof b);
    std::memcpy(arg, &a, sizeof a);
  }
  return any;
}

// How the scoring passes write the maps (accumulate8): masked stores (AVX-512) unless the last pass found a new
// maximum in nearly every 8-voxel step or in nearly none, where the branch is predicted. Measured per rotation on a
// 144^3 tile (AMD EPYC, Zen 4; a worker's 2nd-200th / 200th-500th / 500th-800th rotation): branch 2.4-2.7 / 1.6 /
// 1.33 ms, masked 1.4-1.5 throughout; below a 2 % rate the branch wins. TME_MAP_WRITES=branch or =masked fixes
// the choice (comparisons).
struct MapWrites {
  bool masked = false;
  int64_t steps = 0, updated = 0;  // of the last pass
  void decide() {
    if (steps == 0) return;
    static const std::string forced = std::getenv("TME_MAP_WRITES") ? std::getenv("TME_MAP_WRITES") : "";
    const double rate = static_cast<double>(updated) / static_cast<double>(steps);
    masked = useAvx512() && forced != "branch" &&
             (forced == "masked" || (rate > kMaskedFrom && rate < 1.0 - kMaskedFrom));
    steps = updated = 0;
  }
  static constexpr double kMaskedFrom = 0.02;
};

// accumulate8 for one voxel (a row's tail): its weighted score into the sums, the maximum, and the maps.
__attribute__((always_inline)) inline void accumulate1(float x, const float* w, float* best, int32_t* arg, float* vs,
                                                       float* vq, int32_t r, double* total, double* totalSq, float* top) {
  const float wx = w ? *w * x : x;
  *total += wx;
  *totalSq += wx * x;
  if (!(w && *w == 0.0f)) *top = x > *top ? x : *top;
  if (vs) {
    *vs += x;
    *vq += x * x;
  }
  if (x > *best) {
    *best = x;
    *arg = r;
  }
}

template <bool Masked>
__attribute__((always_inline)) inline void accumulateBlockOf(const float* v, int64_t n, const float* w, float* best,
                                                             int32_t* arg, int32_t r, double* sum, double* sumSq,
                                                             float* rmax, float* vs, float* vq, MapWrites* writes) {
  Lanes l;
  l.rv = Int8{r, r, r, r, r, r, r, r};
  int64_t i = 0, updated = 0;
  for (; i + 8 <= n; i += 8) {
    Float8 x;
    std::memcpy(&x, v + i, sizeof x);
    updated += accumulate8<Masked>(l, x, w ? w + i : nullptr, best + i, arg + i, vs ? vs + i : nullptr,
                                   vs ? vq + i : nullptr);
  }
  double total = 0, totalSq = 0;
  float top = *rmax;
  for (int j = 0; j < 8; ++j) {
    total += l.s[j];
    totalSq += l.q[j];
    top = l.m[j] > top ? l.m[j] : top;
  }
  for (; i < n; ++i)
    accumulate1(v[i], w ? w + i : nullptr, best + i, arg + i, vs ? vs + i : nullptr, vs ? vq + i : nullptr, r, &total,
                &totalSq, &top);
  *sum += total;
  *sumSq += totalSq;
  *rmax = top;
  writes->steps += n / 8;
  writes->updated += updated;
}

TME_SIMD_CLONES
void accumulateBlockPlain(const float* v, int64_t n, const float* w, float* best, int32_t* arg, int32_t r, double* sum,
                          double* sumSq, float* rmax, float* vs, float* vq, MapWrites* writes) {
  accumulateBlockOf<false>(v, n, w, best, arg, r, sum, sumSq, rmax, vs, vq, writes);
}

#if TME_HAS_AVX512_PATH
__attribute__((target("arch=x86-64-v4"))) void accumulateBlockMasked(const float* v, int64_t n, const float* w,
                                                                     float* best, int32_t* arg, int32_t r, double* sum,
                                                                     double* sumSq, float* rmax, float* vs, float* vq,
                                                                     MapWrites* writes) {
  accumulateBlockOf<true>(v, n, w, best, arg, r, sum, sumSq, rmax, vs, vq, writes);
}
#endif

// The running maps and statistics over a block of scores (mcc's), the maps written as `writes` says.
void accumulateBlock(const float* v, int64_t n, const float* w, float* best, int32_t* arg, int32_t r, double* sum,
                     double* sumSq, float* rmax, float* vs, float* vq, MapWrites* writes) {
#if TME_HAS_AVX512_PATH
  if (writes->masked) return accumulateBlockMasked(v, n, w, best, arg, r, sum, sumSq, rmax, vs, vq, writes);
#endif
  accumulateBlockPlain(v, n, w, best, arg, r, sum, sumSq, rmax, vs, vq, writes);
}

// cc and flc-sphere, scored in the accumulating pass itself (one read of the correlation, the scale and the maps):
// the score of row y, column x is o[y * oStride + x] * (scale ? scale[y * mapStride + x] : scalar), clamped to
// [-limit, limit]; the maps, weights and scale are `mapStride` apart per row. Rows at a time: a row of a tile's core
// is ~100 voxels, and a call per row cost more than the arithmetic.
template <bool Masked>
__attribute__((always_inline)) inline void accumulateScoredRows(const float* o, int64_t oStride, const float* scale,
                                                                float scalar, float limit, int64_t rows, int64_t width,
                                                                int64_t mapStride, const float* w, float* best,
                                                                int32_t* arg, int32_t r, double* sum, double* sumSq,
                                                                float* rmax, float* vs, float* vq, MapWrites* writes) {
  Lanes l;
  int64_t updated = 0;
  l.rv = Int8{r, r, r, r, r, r, r, r};
  const Float8 one = {1, 1, 1, 1, 1, 1, 1, 1}, hi = one * limit, lo = -hi, scalars = one * scalar;
  double total = 0, totalSq = 0;
  float top = *rmax;
  for (int64_t y = 0; y < rows; ++y) {
    const float* oy = o + y * oStride;
    const int64_t at = y * mapStride;
    const float* sy = scale ? scale + at : nullptr;
    const float* wy = w ? w + at : nullptr;
    int64_t i = 0;
    for (; i + 8 <= width; i += 8) {
      Float8 x, k = scalars;
      std::memcpy(&x, oy + i, sizeof x);
      if (sy) std::memcpy(&k, sy + i, sizeof k);
      x *= k;
      x = x > hi ? hi : x;
      x = x < lo ? lo : x;
      updated += accumulate8<Masked>(l, x, wy ? wy + i : nullptr, best + at + i, arg + at + i,
                                     vs ? vs + at + i : nullptr, vs ? vq + at + i : nullptr);
    }
    for (; i < width; ++i)
      accumulate1(std::min(limit, std::max(-limit, oy[i] * (sy ? sy[i] : scalar))), wy ? wy + i : nullptr,
                  best + at + i, arg + at + i, vs ? vs + at + i : nullptr, vs ? vq + at + i : nullptr, r, &total,
                  &totalSq, &top);
  }
  for (int j = 0; j < 8; ++j) {
    total += l.s[j];
    totalSq += l.q[j];
    top = l.m[j] > top ? l.m[j] : top;
  }
  *sum += total;
  *sumSq += totalSq;
  *rmax = top;
  writes->steps += rows * (width / 8);
  writes->updated += updated;
}

TME_SIMD_CLONES
void accumulateScoredPlain(const float* o, int64_t oStride, const float* scale, float scalar, float limit, int64_t rows,
                           int64_t width, int64_t mapStride, const float* w, float* best, int32_t* arg, int32_t r,
                           double* sum, double* sumSq, float* rmax, float* vs, float* vq, MapWrites* writes) {
  accumulateScoredRows<false>(o, oStride, scale, scalar, limit, rows, width, mapStride, w, best, arg, r, sum, sumSq,
                              rmax, vs, vq, writes);
}

#if TME_HAS_AVX512_PATH
__attribute__((target("arch=x86-64-v4"))) void accumulateScoredMasked(
    const float* o, int64_t oStride, const float* scale, float scalar, float limit, int64_t rows, int64_t width,
    int64_t mapStride, const float* w, float* best, int32_t* arg, int32_t r, double* sum, double* sumSq, float* rmax,
    float* vs, float* vq, MapWrites* writes) {
  accumulateScoredRows<true>(o, oStride, scale, scalar, limit, rows, width, mapStride, w, best, arg, r, sum, sumSq,
                             rmax, vs, vq, writes);
}
#endif

// The same values either way (writes->masked only where the CPU has AVX-512).
void accumulateScored(const float* o, int64_t oStride, const float* scale, float scalar, float limit, int64_t rows,
                      int64_t width, int64_t mapStride, const float* w, float* best, int32_t* arg, int32_t r,
                      double* sum, double* sumSq, float* rmax, float* vs, float* vq, MapWrites* writes) {
#if TME_HAS_AVX512_PATH
  if (writes->masked)
    return accumulateScoredMasked(o, oStride, scale, scalar, limit, rows, width, mapStride, w, best, arg, r, sum, sumSq,
                                  rmax, vs, vq, writes);
#endif
  accumulateScoredPlain(o, oStride, scale, scalar, limit, rows, width, mapStride, w, best, arg, r, sum, sumSq, rmax,
                        vs, vq, writes);
}

// flc and mcc scores of n voxels from their N-scaled correlations (the shaders' rules), 8 lanes at a time: lanes that
// fail a test score 0, and the clamp maps NaN to -1 as std::max / std::min do (the scalar tails). flc from (cc,
// sum f^2 m, sum f m), k = 1 / (N n): a local variance at most `flat` scores 0. mcc (Padfield's masked NCC) from
// (overlap, S_f, S_ff, S_t, S_tt, S_ft): an overlap below 0.3 x the maximum scores 0, so do a target flat over the
// overlap (varF / o at most `flat`) and a template flat over it. The clamps only remove float error (Cauchy-Schwarz).
// The scalar loop with a branch and a square root per voxel cost about half a C2R per rotation (160^3, flc).
// Lane-wise square root (the plain loop keeps a scalar sqrtf per lane for errno).
__attribute__((always_inline)) inline void sqrt8(const Float8& v, Float8& out) {
#if defined(__SSE__)
  __m128 lo, hi;
  std::memcpy(&lo, &v, sizeof lo);
  std::memcpy(&hi, reinterpret_cast<const char*>(&v) + sizeof lo, sizeof hi);
  lo = _mm_sqrt_ps(lo);
  hi = _mm_sqrt_ps(hi);
  std::memcpy(&out, &lo, sizeof lo);
  std::memcpy(reinterpret_cast<char*>(&out) + sizeof lo, &hi, sizeof hi);
#else
  for (int l = 0; l < 8; ++l) out[l] = std::sqrt(v[l]);
#endif
}

__attribute__((always_inline)) inline Float8 clampUnit(const Float8& x) {
  const Float8 one = {1, 1, 1, 1, 1, 1, 1, 1}, lo = -one;
  const Float8 m = lo < x ? x : lo;
  return m < one ? m : one;
}

__attribute__((always_inline)) inline void foldLanes(Lanes& l, double* total, double* totalSq) {
  for (int j = 0; j < 8; ++j) {
    *total += l.s[j];
    *totalSq += l.q[j];
  }
  l.s = l.s - l.s;
  l.q = l.s;
}

// flc, scored in the accumulating pass itself as cc and flc-sphere are (accumulateScored): rows of the three
// correlations (cc, sum f^2 m, sum f m; `oStride` apart) in, the maps and statistics updated while they are in
// registers. Scoring into a block first and accumulating it in a second call per row cost about a third more
// (160^3 tile, 128-voxel rows).
__attribute__((always_inline)) inline float flcScore(float cc, float f2, float f1, float k, float flat) {
  const float e1 = f1 * k, e2 = f2 * k, var = e2 - e1 * e1;
  return !(var > flat) || !(var > 0) ? 0.0f : std::min(1.0f, std::max(-1.0f, cc * k / std::sqrt(var)));
}

// Reciprocal: 1 / sqrt(v) from the AVX-512 estimate (relative error below 2^-14) and one Newton step (error about
// 3 x 2^-28, a few ulp): an exact square root and division per voxel took half of the scoring pass (a core's divider
// is the bottleneck: 160^3 / 32^3, finalise 6.8 -> 3.3 ms per rotation without them). Inline assembly: the caller
// is compiled for AVX-512, this template is not (intrinsics would not inline).
template <bool Reciprocal, bool Masked>
__attribute__((always_inline)) inline void accumulateFlcRows(const float* const* o, int64_t oStride, float k,
                                                             float flat, int64_t rows, int64_t width,
                                                             int64_t mapStride, const float* w, float* best,
                                                             int32_t* arg, int32_t r, double* sum, double* sumSq,
                                                             float* rmax, float* vs, float* vq, MapWrites* writes) {
  Lanes l;
  int64_t updated = 0;
  l.rv = Int8{r, r, r, r, r, r, r, r};
  const Float8 one = {1, 1, 1, 1, 1, 1, 1, 1}, zero = one - one, kv = one * k, flatv = one * flat;
  double total = 0, totalSq = 0;
  float top = *rmax;
  for (int64_t y = 0; y < rows; ++y) {
    const float* cy = o[0] + y * oStride;
    const float* ay = o[1] + y * oStride;
    const float* by = o[2] + y * oStride;
    const int64_t at = y * mapStride;
    const float* wy = w ? w + at : nullptr;
    int64_t i = 0;
    for (; i + 8 <= width; i += 8) {
      // Float lane sums over at most 2048 voxels, then into float64 (as accumulateBlock's blocks).
      if (i % 2048 == 0 && i > 0) foldLanes(l, &total, &totalSq);
      Float8 c, a, b;
      std::memcpy(&c, cy + i, sizeof c);
      std::memcpy(&a, ay + i, sizeof a);
      std::memcpy(&b, by + i, sizeof b);
      const Float8 e1 = b * kv, e2 = a * kv;
      const Float8 var = e2 - e1 * e1;
      const Int8 ok = (var > flatv) & (var > zero);
      const Float8 safe = ok ? var : one;
      Float8 s;
      if constexpr (Reciprocal) {
#if TME_HAS_AVX512_PATH
        Float8 y0;
        asm("vrsqrt14ps %1, %0" : "=v"(y0) : "v"(safe));
        const Float8 half = one * 0.5f, threeHalves = one * 1.5f;
        const Float8 y1 = y0 * (threeHalves - half * safe * y0 * y0);
        s = clampUnit(c * kv * y1);
#endif
      } else {
        Float8 root;
        sqrt8(safe, root);
        s = clampUnit(c * kv / root);
      }
      const Float8 x = ok ? s : zero;
      updated += accumulate8<Masked>(l, x, wy ? wy + i : nullptr, best + at + i, arg + at + i,
                                     vs ? vs + at + i : nullptr, vs ? vq + at + i : nullptr);
    }
    for (; i < width; ++i)
      accumulate1(flcScore(cy[i], ay[i], by[i], k, flat), wy ? wy + i : nullptr, best + at + i, arg + at + i,
                  vs ? vs + at + i : nullptr, vs ? vq + at + i : nullptr, r, &total, &totalSq, &top);
  }
  foldLanes(l, &total, &totalSq);
  for (int j = 0; j < 8; ++j) top = l.m[j] > top ? l.m[j] : top;
  *sum += total;
  *sumSq += totalSq;
  *rmax = top;
  writes->steps += rows * (width / 8);
  writes->updated += updated;
}

TME_SIMD_CLONES
void accumulateFlc(const float* const* o, int64_t oStride, float k, float flat, int64_t rows, int64_t width,
                   int64_t mapStride, const float* w, float* best, int32_t* arg, int32_t r, double* sum,
                   double* sumSq, float* rmax, float* vs, float* vq, MapWrites* writes) {
  accumulateFlcRows<false, false>(o, oStride, k, flat, rows, width, mapStride, w, best, arg, r, sum, sumSq, rmax, vs,
                                  vq, writes);
}

#if TME_HAS_AVX512_PATH
template <bool Masked>
__attribute__((target("arch=x86-64-v4"))) void accumulateFlcReciprocal(
    const float* const* o, int64_t oStride, float k, float flat, int64_t rows, int64_t width, int64_t mapStride,
    const float* w, float* best, int32_t* arg, int32_t r, double* sum, double* sumSq, float* rmax, float* vs,
    float* vq, MapWrites* writes) {
  accumulateFlcRows<true, Masked>(o, oStride, k, flat, rows, width, mapStride, w, best, arg, r, sum, sumSq, rmax, vs,
                                  vq, writes);
}
#endif

// The reciprocal square root where the CPU has AVX-512 (TME_NO_AVX512=1: the exact one everywhere), and there the
// maps written as `writes` says.
void accumulateFlcDispatch(const float* const* o, int64_t oStride, float k, float flat, int64_t rows, int64_t width,
                           int64_t mapStride, const float* w, float* best, int32_t* arg, int32_t r, double* sum,
                           double* sumSq, float* rmax, float* vs, float* vq, MapWrites* writes) {
#if TME_HAS_AVX512_PATH
  if (useAvx512())
    return (writes->masked ? accumulateFlcReciprocal<true> : accumulateFlcReciprocal<false>)(
        o, oStride, k, flat, rows, width, mapStride, w, best, arg, r, sum, sumSq, rmax, vs, vq, writes);
#endif
  accumulateFlc(o, oStride, k, flat, rows, width, mapStride, w, best, arg, r, sum, sumSq, rmax, vs, vq, writes);
}

// Reciprocal (AVX-512): one division per voxel (1 / overlap) instead of four, and 1 / sqrt from the estimate and
// one Newton step, as accumulateFlcRows (a few ulp).
template <bool Reciprocal>
__attribute__((always_inline)) inline void mccScoresOf(const float* const* o, float invN, float maxOverlap, float flat,
                                                       int64_t n, float* out) {
  const Float8 one = {1, 1, 1, 1, 1, 1, 1, 1}, zero = one - one, inv = one * invN;
  const Float8 least = one * (0.3f * maxOverlap), flatv = one * flat, tiny = one * 1e-5f;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    Float8 v[6];
    for (int j = 0; j < 6; ++j) std::memcpy(&v[j], o[j] + i, sizeof v[j]);
    const Float8 ov = v[0] * inv;
    const Int8 big = (ov >= least) & (ov > zero);
    const Float8 w = big ? ov : one;
    const Float8 sf = v[1] * inv, sff = v[2] * inv, st = v[3] * inv, stt = v[4] * inv, sft = v[5] * inv;
    Float8 s;
    if constexpr (Reciprocal) {
#if TME_HAS_AVX512_PATH
      const Float8 invW = one / w;
      const Float8 varF = sff - sf * sf * invW;
      const Float8 varT = stt - st * st * invW;
      const Int8 ok = big & (varF > flatv * w) & (varT > tiny * stt) & (varF > zero) & (varT > zero);
      const Float8 product = varF * varT;
      const Float8 safe = ok ? product : one;
      Float8 y0;
      asm("vrsqrt14ps %1, %0" : "=v"(y0) : "v"(safe));
      const Float8 y1 = y0 * (one * 1.5f - one * 0.5f * safe * y0 * y0);
      s = clampUnit((sft - sf * st * invW) * y1);
      s = ok ? s : zero;
#endif
    } else {
      const Float8 varF = sff - sf * sf / w;
      const Float8 varT = stt - st * st / w;
      const Int8 ok = big & (varF > flatv * w) & (varT > tiny * stt) & (varF > zero) & (varT > zero);
      const Float8 product = varF * varT;
      const Float8 safe = ok ? product : one;
      Float8 root;
      sqrt8(safe, root);
      s = clampUnit((sft - sf * st / w) / root);
      s = ok ? s : zero;
    }
    std::memcpy(out + i, &s, sizeof s);
  }
  for (; i < n; ++i) {
    float ov = o[0][i] * invN;
    if (!(ov >= 0.3f * maxOverlap) || !(ov > 0)) {
      out[i] = 0.0f;
      continue;
    }
    const float sf = o[1][i] * invN, sff = o[2][i] * invN, st = o[3][i] * invN, stt = o[4][i] * invN,
                sft = o[5][i] * invN;
    const float varF = sff - sf * sf / ov, varT = stt - st * st / ov;
    out[i] = !(varF > flat * ov) || !(varT > 1e-5f * stt) || !(varF > 0) || !(varT > 0)
                 ? 0.0f
                 : std::min(1.0f, std::max(-1.0f, (sft - sf * st / ov) / std::sqrt(varF * varT)));
  }
}

TME_SIMD_CLONES
void mccScores(const float* const* o, float invN, float maxOverlap, float flat, int64_t n, float* out) {
  mccScoresOf<false>(o, invN, maxOverlap, flat, n, out);
}

#if TME_HAS_AVX512_PATH
__attribute__((target("arch=x86-64-v4"))) void mccScoresReciprocal(const float* const* o, float invN,
                                                                   float maxOverlap, float flat, int64_t n,
                                                                   float* out) {
  mccScoresOf<true>(o, invN, maxOverlap, flat, n, out);
}
#endif

void mccScoresDispatch(const float* const* o, float invN, float maxOverlap, float flat, int64_t n, float* out) {
#if TME_HAS_AVX512_PATH
  if (useAvx512()) return mccScoresReciprocal(o, invN, maxOverlap, flat, n, out);
#endif
  mccScores(o, invN, maxOverlap, flat, n, out);
}

// The value place() writes for one box voxel (template t, mask m), which the fused path correlates too.
inline float placedValue(PlaceMode mode, float t, float m, float mu, float inv) {
  switch (mode) {
    case PlaceMode::Raw: return t;
    case PlaceMode::Normalised: return (t - mu) * inv * m;
    case PlaceMode::TimesMask: return t * m;
    case PlaceMode::SquaredTimesMask: return t * t * m;
    default: return m;
  }
}

class CpuKernels final : public Kernels {
 public:
  CpuKernels(const KernelConfig& config, int fftThreads, std::shared_ptr<const SlabSpectrum> slab)
      : config_(config), fftThreads_(fftThreads), slab_(std::move(slab)) {}

  std::string deviceName() const override { return "cpu (FFTW3f)"; }

  BufId constant(const void* host, size_t bytes) override {
    CpuBuffer b;
    b.data = static_cast<char*>(const_cast<void*>(host));
    b.bytes = bytes;
    buffers_.push_back(std::move(b));
    return static_cast<BufId>(buffers_.size() - 1);
  }

  BufId allocate(size_t bytes) override {
    CpuBuffer b;
    b.owned = fftwAlloc<char>(bytes);
    b.data = b.owned.get();
    b.bytes = bytes;
    std::memset(b.data, 0, bytes);
    buffers_.push_back(std::move(b));
    return static_cast<BufId>(buffers_.size() - 1);
  }

  void createFftSlots(int count, int forwardCount, double* planMs) override {
    if (slab_) {
      // The slab correlator replaces the slots (correlateFused). Its products, in the order finalise reads them:
      // cc / flc-sphere: the template with F. flc: inputs (normalised template, rotated mask), factors (F, F2): cc,
      // sum f^2 m, sum f m. mcc: inputs (m, t m, t^2 m), factors (F1 = f mf, F2 = f^2 mf, Mf): overlap, S_f, S_ff,
      // S_t, S_tt, S_ft.
      std::vector<SlabProduct> products{{0, 0}};
      if (config_.score == Score::Flc) products = {{0, 0}, {1, 1}, {0, 1}};
      if (config_.score == Score::Mcc) products = {{2, 0}, {0, 0}, {1, 0}, {2, 1}, {2, 2}, {0, 1}};
      correlatorProducts_ = static_cast<int>(products.size());
      correlator_ = std::make_unique<SlabCorrelator>(slab_, config_.support, products, config_.regionStart,
                                                     config_.regionShape, planMs);
      int inputs = 0;
      for (const SlabProduct& p : products) inputs = std::max(inputs, p.input + 1);
      for (int i = 0; i < inputs; ++i) inputValues_.push_back(allocate(sizeof(float) * config_.support.voxels()));
      return;
    }
    plans_ = &fftwPlans(config_.tile, fftThreads_, planMs);
    // The template only fills the box: a pruned R2C skips the all-zero rows and planes. Measured against FFTW's
    // full R2C (min of 15, busy 2-core machine): 256^3/32^3 0.64-0.71x; 128^3/32^3 0.72-1.77x (FFTW_MEASURE picks
    // differently per run); 128^3/64^3 1.20x; 64^3/32^3 1.34x. So only when the box spans at most an eighth of the
    // tile in z and y (mcc; the other scores run the slab correlator).
    const bool small = config_.support.z * 8 <= config_.tile.z && config_.support.y * 8 <= config_.tile.y;
    if (forwardCount > 0 && fftThreads_ == 1 && small && !config_.fullTransforms)
      pruned_ = &fftwPrunedR2C(config_.tile, config_.support, planMs);
    for (int k = 0; k < count; ++k) {
      Slot s;
      s.p = k < forwardCount ? allocate(sizeof(float) * config_.tile.voxels()) : kNoBuffer;
      if (k < forwardCount && pruned_) {
        s.rows = allocate(sizeof(cfloat) * config_.tile.spectrumCount());
        s.planes = allocate(sizeof(cfloat) * config_.tile.spectrumCount());
      }
      s.s = allocate(sizeof(cfloat) * config_.tile.spectrumCount());
      s.o = allocate(sizeof(float) * config_.tile.voxels());
      slots_.push_back(s);
    }
  }
  BufId slotP(int k) const override { return slots_.at(k).p; }
  BufId slotS(int k) const override { return slots_.at(k).s; }
  BufId slotO(int k) const override { return slots_.at(k).o; }

  void initMaps(const float* scores, const int32_t* indices) override {
    const int64_t n = config_.tile.voxels();
    // One pass each: the caller's maps are copied, not written over a fill. Huge pages: see huge_pages.h.
    reserveHuge(best_, n);
    reserveHuge(arg_, n);
    if (scores) best_.assign(scores, scores + n);
    else best_.assign(n, -std::numeric_limits<float>::infinity());
    if (indices) arg_.assign(indices, indices + n);
    else arg_.assign(n, -1);
    bestMap_ = best_.data();
    argMap_ = arg_.data();
    resetRotationStats();
  }

  bool adoptMaps(float* scores, int32_t* indices) override {
    bestMap_ = scores;
    argMap_ = indices;
    resetRotationStats();
    return true;
  }

  void resetRotationStats() {
    const int64_t n = config_.tile.voxels();
    rotationMax_.assign(config_.rotationCount, -std::numeric_limits<float>::infinity());
    rotationSum_.assign(config_.rotationCount, 0.0);
    rotationSumSq_.assign(config_.rotationCount, 0.0);
    if (config_.voxelStats) {
      voxelSum_.assign(n, 0.0f);
      voxelSumSq_.assign(n, 0.0f);
    }
  }

  bool takeVoxelStats(std::vector<float>* sum, std::vector<float>* sumSq) override {
    sum->swap(voxelSum_);
    sumSq->swap(voxelSumSq_);
    voxelSum_ = {};
    voxelSumSq_ = {};
    return true;
  }

  bool takeMaps(std::vector<float>* scores, std::vector<int32_t>* indices) override {
    if (bestMap_ != best_.data()) return false;  // adopted: the caller's memory
    scores->swap(best_);
    indices->swap(arg_);
    best_ = {};
    arg_ = {};
    bestMap_ = nullptr;
    argMap_ = nullptr;
    return true;
  }

  void readMaps(float* scores, int32_t* indices, double* perRotationSum, double* perRotationSumSq,
                float* perRotationMax) override {
    const int64_t n = config_.tile.voxels();
    if (scores) std::copy(bestMap_, bestMap_ + n, scores);
    if (indices) std::copy(argMap_, argMap_ + n, indices);
    std::copy(rotationSum_.begin(), rotationSum_.end(), perRotationSum);
    std::copy(rotationSumSq_.begin(), rotationSumSq_.end(), perRotationSumSq);
    std::copy(rotationMax_.begin(), rotationMax_.end(), perRotationMax);
  }

  void beginRotation() override {}
  void endRotation() override {}

  void rotateBox(BufId dst, BufId src, const RotationParams& r) override {
    Timed timed(profile_, "rotateBox");
    rotateBoxCpu(f32(dst), f32(src), config_.box, r, config_.interpolation);
  }

  void filterBox(BufId box, BufId filter) override {
    Timed timed(profile_, "filterBox");
    // The filter buffer is a job constant: its plans and scratch are made on the first call.
    if (!boxFilter_ || boxFilterSource_ != filter) {
      boxFilter_ = std::make_unique<BoxFilter>(config_.box, config_.filterGrid, f32(filter));
      boxFilterSource_ = filter;
    }
    boxFilter_->apply(f32(box));
  }

  void boxStats(BufId stats, int slot, BufId t, BufId m) override {
    Timed timed(profile_, "boxStats");
    const BoxMoments b = boxMoments(f32(t), f32(m), config_.box.voxels());
    float* out = f32(stats) + 4 * slot;
    out[0] = static_cast<float>(b.n);
    out[1] = static_cast<float>(b.mean);
    out[2] = static_cast<float>(b.inverseSigma);
  }

  void place(BufId dstTile, BufId t, BufId m, BufId stats, int statsSlot, PlaceMode mode) override {
    Timed timed(profile_, "place");
    float* out = f32(dstTile);
    const float* tv = t == kNoBuffer ? nullptr : f32(t);
    const float* mv = m == kNoBuffer ? nullptr : f32(m);
    float mu = 0, inv = 1;
    if (mode == PlaceMode::Normalised) {
      const float* s = f32(stats) + 4 * statsSlot;
      mu = s[1];
      inv = s[2];
    }
    const Shape3& b = config_.box;
    const Shape3& sup = config_.support;
    const Shape3 o = supportOffset(b, sup);
    for (int64_t z = o.z; z < o.z + sup.z; ++z)
      for (int64_t y = o.y; y < o.y + sup.y; ++y) {
        float* row = out + wrappedIndex(config_.tile, b, z, y, b.x / 2);  // the row's qx = 0
        for (int64_t x = o.x; x < o.x + sup.x; ++x) {
          const int64_t i = (z * b.y + y) * b.x + x;
          const float v = placedValue(mode, tv ? tv[i] : 0.0f, mv ? mv[i] : 0.0f, mu, inv);
          int64_t qx = x - b.x / 2;
          row[qx < 0 ? qx + config_.tile.x : qx] = v;
        }
      }
  }

  void r2c(int slot) override {
    Timed timed(profile_, "r2c");
    const Slot& s = slots_[slot];
    if (pruned_) fftwPrunedExecute(*pruned_, f32(s.p), c32(s.rows), c32(s.planes), c32(s.s));
    else fftwR2C(*plans_, f32(s.p), c32(s.s));
  }
  void c2r(int slot) override {
    Timed timed(profile_, "c2r");
    fftwC2R(*plans_, c32(slots_[slot].s), f32(slots_[slot].o));
  }

  void mulConj(BufId dst, BufId a, BufId b) override {
    Timed timed(profile_, "mulConj");
    // Plain float arithmetic: std::complex's operator* goes through __mulsc3 (inf/nan rules) and is ~5x slower.
    float* d = f32(dst);
    const float* av = f32(a);
    const float* bv = f32(b);
    const int64_t n = config_.tile.spectrumCount();
    for (int64_t i = 0; i < n; ++i) {
      const float ar = av[2 * i], ai = av[2 * i + 1];
      const float br = bv[2 * i], bi = bv[2 * i + 1];
      d[2 * i] = ar * br + ai * bi;
      d[2 * i + 1] = ai * br - ar * bi;
    }
  }

  void gatherFourier(BufId dst, BufId F, BufId spectrum, const RotationParams& r) override {
    Timed timed(profile_, "gatherFourier");
    float* d = f32(dst);
    const float* fv = f32(F);
    const float* t = f32(spectrum);
    const Shape3& tile = config_.tile;
    const Shape3& g = config_.fourierGrid;
    const int32_t gz = static_cast<int32_t>(g.z), gy = static_cast<int32_t>(g.y), gx = static_cast<int32_t>(g.x);
    const float* m = r.inverse;
    const int64_t hx = tile.halfX();
    // The sampling position is affine in kx along a row: u = base + kx * step (grid index units).
    const float sx = 1.0f / static_cast<float>(tile.x);
    const float stepZ = m[2] * sx * gz, stepY = m[5] * sx * gy, stepX = m[8] * sx * gx;
    int64_t i = 0;
    for (int64_t kz = 0; kz < tile.z; ++kz) {
      const float fz = signedFrequency(kz, tile.z);
      const bool nyquistZ = tile.z % 2 == 0 && kz == tile.z / 2;
      for (int64_t ky = 0; ky < tile.y; ++ky, i += hx) {
        const float fy = signedFrequency(ky, tile.y);
        // Nyquist planes are ambiguous under rotation (+1/2 and -1/2 map to different template frequencies):
        // zero, so the spectrum stays Hermitian (gather.comp does the same).
        if (nyquistZ || (tile.y % 2 == 0 && ky == tile.y / 2)) {
          std::fill(d + 2 * i, d + 2 * (i + hx), 0.0f);
          continue;
        }
        const float baseZ = (m[0] * fz + m[1] * fy) * gz, baseY = (m[3] * fz + m[4] * fy) * gy,
                    baseX = (m[6] * fz + m[7] * fy) * gx;
        for (int64_t kx = 0; kx < hx; ++kx) {
          const int64_t o = 2 * (i + kx);
          if (tile.x % 2 == 0 && kx == tile.x / 2) {
            d[o] = d[o + 1] = 0.0f;
            continue;
          }
          float v[2];
          sampleSpectrumLinear(t, gz, gy, gx, baseZ + stepZ * kx, baseY + stepY * kx, baseX + stepX * kx, v);
          const float vr = v[0], vi = v[1];
          const float ar = fv[o], ai = fv[o + 1];
          d[o] = ar * vr + ai * vi;
          d[o + 1] = ai * vr - ar * vi;
        }
      }
    }
  }

  void reduceMax(BufId src, BufId stats, int statsSlot) override {
    Timed timed(profile_, "reduceMax");
    const float* v = f32(src);
    float best = -std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < config_.tile.voxels(); ++i) best = std::max(best, v[i]);
    f32(stats)[4 * statsSlot + 3] = best;
  }

  void finalise(const FinaliseParams& p) override {
    Timed timed(profile_, "finalise");
    const float* o[6] = {nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};
    for (int j = 0; j < 6; ++j) o[j] = p.outs[j] == kNoBuffer ? nullptr : f32(p.outs[j]);
    Accumulator acc;
    finaliseRange(p, o, 0, 0, 1, config_.tile.voxels(), acc);
    commit(p, acc);
  }

  bool correlateFused(BufId t, BufId m, BufId stats, PlaceMode mode, BufId spectrum, const RotationParams* fourier,
                      const FinaliseParams& p) override {
    if (!correlator_) return false;
    const int64_t ty = config_.tile.y, tx = config_.tile.x;
    const int64_t x0 = config_.regionStart.x, width = config_.regionShape.x;
    Accumulator acc;
    auto sink = [&](int64_t z, int64_t y0, int64_t count, const float* const* rows) {
      const float* o[6] = {nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};
      for (int j = 0; j < correlatorProducts_; ++j) o[j] = rows[j] + x0;
      finaliseRange(p, o, tx, (z * ty + y0) * tx + x0, count, width, acc);
    };
    if (fourier) {
      correlator_->correlateSpectrum(c32(spectrum), config_.fourierGrid, *fourier, sink);
    } else {
      // The placed values, as place() writes them into the tile (the support of the box); flc also places the
      // rotated mask, mcc the rotated mask, t m and t^2 m.
      const Shape3& b = config_.box;
      const Shape3& sup = config_.support;
      const Shape3 o = supportOffset(b, sup);
      const float* tv = f32(t);
      const float* mv = m == kNoBuffer ? nullptr : f32(m);
      float* values[3] = {nullptr, nullptr, nullptr};
      for (size_t i = 0; i < inputValues_.size() && i < 3; ++i) values[i] = f32(inputValues_[i]);
      float mu = 0, inv = 1;
      if (mode == PlaceMode::Normalised) {
        const float* st = f32(stats);
        mu = st[1];
        inv = st[2];
      }
      const bool mcc = config_.score == Score::Mcc;
      double maskSum = 0;
      int64_t j = 0;
      for (int64_t z = o.z; z < o.z + sup.z; ++z)
        for (int64_t y = o.y; y < o.y + sup.y; ++y) {
          const int64_t row = (z * b.y + y) * b.x + o.x;
          for (int64_t x = 0; x < sup.x; ++x, ++j) {
            const int64_t i = row + x;
            if (mcc) {
              values[0][j] = mv[i];
              values[1][j] = tv[i] * mv[i];
              values[2][j] = tv[i] * tv[i] * mv[i];
              maskSum += mv[i];
            } else {
              values[0][j] = placedValue(mode, tv[i], mv ? mv[i] : 0.0f, mu, inv);
              if (values[1]) values[1][j] = mv[i];
            }
          }
        }
      // mcc's maximum overlap, max over the tile of sum_p mf(x + p) m_R(p): the job takes this path only where the
      // target mask is in [0, 1] and 1 on a whole support-sized window somewhere, and m_R >= 0, so the maximum is the
      // mask's sum (the 3D path reads it off the whole tile's overlap map).
      if (mcc) f32(stats)[4 * 1 + 3] = static_cast<float>(maskSum * static_cast<double>(config_.tile.voxels()));
      const float* boxes[3] = {values[0], values[1], values[2]};
      correlator_->correlateBoxes(boxes, sink);
    }
    commit(p, acc);
    return true;
  }

  struct Accumulator {
    double sum = 0, sumSq = 0;
    float rmax = -std::numeric_limits<float>::infinity();
  };

  void commit(const FinaliseParams& p, const Accumulator& acc) {
    rotationSum_[p.rotationLocal] = acc.sum;
    rotationSumSq_[p.rotationLocal] = acc.sumSq;
    rotationMax_[p.rotationLocal] = acc.rmax;
  }

  // Scores of `rows` rows of `width` voxels into the running maps and statistics: output j of row y, column x is
  // o[j][y * oStride + x], its voxel start + y * tile.x + x. Scores are computed into a small block, then the
  // max/argmax update and the statistics run over the block in loops the compiler vectorises (float partial sums
  // per block, added into float64); cc and flc-sphere in one pass.
  void finaliseRange(const FinaliseParams& p, const float* const* o, int64_t oStride, int64_t start, int64_t rows,
                     int64_t width, Accumulator& acc) {
    const int64_t mapStride = config_.tile.x;
    const float* scale = p.score == Score::FlcSphere ? f32(p.scaleMap) + start : nullptr;
    const float* weights = p.statsWeights == kNoBuffer ? nullptr : f32(p.statsWeights) + start;
    float* vs = voxelSum_.empty() ? nullptr : voxelSum_.data();
    float* vq = voxelSumSq_.empty() ? nullptr : voxelSumSq_.data();
    if (p.score == Score::Cc || p.score == Score::FlcSphere) {
      // flc-sphere is within [-1, 1] by Cauchy-Schwarz (the clamp only removes float error); cc is not normalised.
      const float limit = p.score == Score::FlcSphere ? 1.0f : std::numeric_limits<float>::infinity();
      accumulateScored(o[0], oStride, scale, p.scalar, limit, rows, width, mapStride, weights, bestMap_ + start,
                       argMap_ + start, p.rotationGlobal, &acc.sum, &acc.sumSq, &acc.rmax,
                       vs ? vs + start : nullptr, vs ? vq + start : nullptr, &writes_);
      writes_.decide();
      return;
    }
    if (p.score == Score::Flc) {
      const float count = f32(p.stats)[0];
      const float k = count > 0 ? p.invN / count : 0.0f;
      accumulateFlcDispatch(o, oStride, k, p.flatVariance, rows, width, mapStride, weights, bestMap_ + start,
                            argMap_ + start, p.rotationGlobal, &acc.sum, &acc.sumSq, &acc.rmax,
                            vs ? vs + start : nullptr, vs ? vq + start : nullptr, &writes_);
      writes_.decide();
      return;
    }
    const float maxOverlap = f32(p.stats)[4 * 1 + 3] * p.invN;
    constexpr int64_t kBlock = 2048;
    float block[kBlock];
    double sum = 0, sumSq = 0;
    float rmax = acc.rmax;
    for (int64_t y = 0; y < rows; ++y) {
      const float* oy[6];
      for (int j = 0; j < 6; ++j) oy[j] = o[j] ? o[j] + y * oStride : nullptr;
      const int64_t at = y * mapStride;
      for (int64_t b0 = 0; b0 < width; b0 += kBlock) {
        const int64_t n = std::min(kBlock, width - b0);
        const float* ob[6];
        for (int j = 0; j < 6; ++j) ob[j] = oy[j] + b0;
        mccScoresDispatch(ob, p.invN, maxOverlap, p.flatVariance, n, block);
        accumulateBlock(block, n, weights ? weights + at + b0 : nullptr, bestMap_ + start + at + b0,
                        argMap_ + start + at + b0, p.rotationGlobal, &sum, &sumSq, &rmax,
                        vs ? vs + start + at + b0 : nullptr, vs ? vq + start + at + b0 : nullptr, &writes_);
      }
    }
    writes_.decide();
    acc.sum += sum;
    acc.sumSq += sumSq;
    acc.rmax = rmax;
  }

 private:
  struct Slot {
    BufId p = kNoBuffer, s = kNoBuffer, o = kNoBuffer;
    BufId rows = kNoBuffer, planes = kNoBuffer;  // pruned R2C scratch (zero outside the box's rows / planes)
  };

  float* f32(BufId id) { return reinterpret_cast<float*>(buffers_.at(id).data); }
  cfloat* c32(BufId id) { return reinterpret_cast<cfloat*>(buffers_.at(id).data); }

  KernelProfile profile_;
  KernelConfig config_;
  int fftThreads_;
  const FftwPlanPair* plans_ = nullptr;
  const PrunedR2C* pruned_ = nullptr;
  std::unique_ptr<BoxFilter> boxFilter_;
  BufId boxFilterSource_ = kNoBuffer;
  std::shared_ptr<const SlabSpectrum> slab_;
  std::unique_ptr<SlabCorrelator> correlator_;
  int correlatorProducts_ = 0;
  std::vector<BufId> inputValues_;  // the slab correlator's inputs, the support's values each
  std::vector<CpuBuffer> buffers_;
  std::vector<Slot> slots_;
  std::vector<float> best_;
  std::vector<int32_t> arg_;
  float* bestMap_ = nullptr;  // the maps the scoring passes write: best_ and arg_, or the caller's (adoptMaps)
  int32_t* argMap_ = nullptr;
  std::vector<float> rotationMax_;
  std::vector<double> rotationSum_, rotationSumSq_;
  std::vector<float> voxelSum_, voxelSumSq_;  // config_.voxelStats: Σ score, Σ score² per voxel over rotations
  MapWrites writes_;
};

}  // namespace

std::unique_ptr<Kernels> makeCpuKernels(const KernelConfig& config, int fftThreads,
                                        std::shared_ptr<const SlabSpectrum> slab) {
  return std::make_unique<CpuKernels>(config, fftThreads, std::move(slab));
}

}  // namespace tme

#include "cpu/slab_correlator.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>

#if defined(__SSE__)
#include <immintrin.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "cpu/simd.h"
#include "errors.h"
#include "match/geometry.h"

namespace tme {
namespace {

typedef int32_t Int8i __attribute__((vector_size(32)));
// The direct z sums pay when regionZ * box.z <= this x tile.z log2(tile.z). Measured (slab z stage, one thread,
// 2-core Xeon, flc-sphere, 8-lane sums): at ratio 1.9 (144^3 tile, 15 box) direct takes 0.36 of the transforms'
// time, 3.4 (144^3 / 31, 96^3 / 31, 256^3 / 31) 0.54-0.66, 4.7 (176^3 / 47) 0.50, 5.5 (176^3 / 63) 0.69, 6.0
// (256^3 / 63) 1.01. The 16-lane sums (column chunks outer, streamed stores; thread CPU time, loaded machine): 5.6
// (192^3 / 64) 13.4 against 18.5 ms per rotation, 6.15 (320^3 / 64) 75 against 109 ms; flc at 5.6 37-52 against
// 50-59 ms (its 3 products share 2 inputs' forward z transforms, so the ratio is a little higher than flc-sphere's).
// Zen 4 runs each 512-bit operation as two 256-bit halves: there the 16 lanes gain little over FFTW's AVX2 codelets
// and the 8-lane rule holds (2-core EPYC Zen 4, z stage, thread CPU time, min of 3-4 alternated runs in one process,
// load 3-4: flc at 5.6 (192^3 / 64) 50.4 direct against 43.4 ms spectral, at 6.15 (320^3 / 64) 256 against 241;
// mcc at 5.6 57 against 47; flc-sphere at 5.6 18.4 against 16.4, at 6.15 92 against 91; below 5, flc at 3.5
// (288^3 / 32) 127 against 162).
constexpr double kDirectZPerSpectral = 5.0, kDirectZPerSpectral16 = 6.5;

// AMD family 19h with AVX-512: Zen 4 (Zen 3, the same family, has no AVX-512).
bool halfWidthAvx512() {
#if TME_HAS_AVX512_PATH
  static const bool zen4 = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(0, &a, &b, &c, &d) || b != 0x68747541u) return false;  // "Auth" of AuthenticAMD
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    unsigned family = (a >> 8) & 0xfu;
    if (family == 0xfu) family += (a >> 20) & 0xffu;
    return family == 0x19u;
  }();
  return zen4;
#else
  return false;
#endif
}

int64_t pitchFor(const Shape3& tile) { return (tile.halfX() + kSlabChunk - 1) / kSlabChunk * kSlabChunk; }
// Complex elements between z planes of the spectrum: one chunk more than the plane, so that the z pass's rows (one
// per plane) do not all fall on the same cache sets (tile.y * pitch * 8 bytes is often a multiple of 4 KiB).
int64_t planeStrideFor(const Shape3& tile) { return tile.y * pitchFor(tile) + kSlabChunk; }
int64_t chunkSpan(int64_t count) { return (count + kSlabChunk - 1) / kSlabChunk * kSlabChunk; }
int64_t wrapped(int64_t q, int64_t n) { return q < 0 ? q + n : q; }

template <typename T>
FftwArray<T> zeroed(int64_t count) {
  auto a = fftwAlloc<T>(count);
  std::memset(static_cast<void*>(a.get()), 0, sizeof(T) * count);
  return a;
}

// out <- G . conj(t) for `count` complex values, in plain float arithmetic (std::complex's operator* is several
// times slower); AVX2 where the machine has it.
TME_SIMD_CLONES
void multiplyConjugate(float* out, const float* g, const float* t, int64_t count) {
  for (int64_t i = 0; i < count; ++i) {
    const float gr = g[2 * i], gi = g[2 * i + 1], tr = t[2 * i], ti = t[2 * i + 1];
    out[2 * i] = gr * tr + gi * ti;
    out[2 * i + 1] = gi * tr - gr * ti;
  }
}

// out (interleaved complex, zCount rows `outStride` complex apart) <- for each z < zCount and kx < span: sum over
// dz < boxZ of G(z + dz) . conj(T(dz)). g: split rows [re][im] `rowStride` floats apart, each part `pitch` floats;
// t: split rows [boxZ][re, im][pitch]. Four output rows at a time share each T load. Columns [kx0, span) in steps
// of the vector's L lanes (span - kx0 a multiple of L).
typedef float Float8 __attribute__((vector_size(32)));
typedef float Float16 __attribute__((vector_size(64)));
typedef int32_t Int16i __attribute__((vector_size(64)));
template <typename V>
struct VectorLanes;
template <>
struct VectorLanes<Float8> {
  static constexpr int L = 8;
  static constexpr Int8i lo = {0, 8, 1, 9, 2, 10, 3, 11}, hi = {4, 12, 5, 13, 6, 14, 7, 15};
};
template <>
struct VectorLanes<Float16> {
  static constexpr int L = 16;
  static constexpr Int16i lo = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23},
                          hi = {8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
};

// re and im interleaved into p[0, 2L), the spectra's complex layout. By reference: a vector returned by value would
// change the ABI between the clones.
template <typename V>
__attribute__((always_inline)) inline void storeInterleaved(float* p, const V& re, const V& im) {
  constexpr int L = VectorLanes<V>::L;
  const V lo = __builtin_shuffle(re, im, VectorLanes<V>::lo);
  const V hi = __builtin_shuffle(re, im, VectorLanes<V>::hi);
  std::memcpy(p, &lo, sizeof lo);
  std::memcpy(p + L, &hi, sizeof hi);
}

// Output row z of one column chunk (gc, tc: the chunk's first column) by the plain sum over dz, written to p: the
// kernels' tails, in the order their main loops sum.
template <typename V>
__attribute__((always_inline)) inline void sumOneRow(const float* gc, const float* tc, int64_t rowStride, int64_t pitch,
                                                     int64_t boxZ, int64_t z, float* p) {
  V ar = {}, ai = {};
  for (int64_t d = 0; d < boxZ; ++d) {
    V tr, ti, gr, gi;
    std::memcpy(&tr, tc + d * 2 * pitch, sizeof tr);
    std::memcpy(&ti, tc + d * 2 * pitch + pitch, sizeof ti);
    const float* row = gc + (z + d) * rowStride;
    std::memcpy(&gr, row, sizeof gr);
    std::memcpy(&gi, row + pitch, sizeof gi);
    ar += gr * tr;
    ar += gi * ti;
    ai += gi * tr;
    ai -= gr * ti;
  }
  storeInterleaved(p, ar, ai);
}

template <typename V>
__attribute__((always_inline)) inline void sumAlongZRows(const float* g, int64_t rowStride, int64_t pitch,
                                                         const float* t, int64_t boxZ, int64_t kx0, int64_t span,
                                                         int64_t zCount, float* out, int64_t outStride) {
  constexpr int L = VectorLanes<V>::L;
  int64_t z = 0;
  for (; z + 4 <= zCount; z += 4)
    for (int64_t kx = kx0; kx < span; kx += L) {
      V ar[4] = {}, ai[4] = {};
      for (int64_t d = 0; d < boxZ; ++d) {
        V tr, ti;
        std::memcpy(&tr, t + d * 2 * pitch + kx, sizeof tr);
        std::memcpy(&ti, t + d * 2 * pitch + pitch + kx, sizeof ti);
        for (int q = 0; q < 4; ++q) {
          const float* row = g + (z + q + d) * rowStride + kx;
          V gr, gi;
          std::memcpy(&gr, row, sizeof gr);
          std::memcpy(&gi, row + pitch, sizeof gi);
          // One fused multiply-add each (written apart: a + (b + c) would not contract).
          ar[q] += gr * tr;
          ar[q] += gi * ti;
          ai[q] += gi * tr;
          ai[q] -= gr * ti;
        }
      }
      for (int q = 0; q < 4; ++q) storeInterleaved(out + 2 * ((z + q) * outStride + kx), ar[q], ai[q]);
    }
  for (; z < zCount; ++z)
    for (int64_t kx = kx0; kx < span; kx += L)
      sumOneRow<V>(g + kx, t + kx, rowStride, pitch, boxZ, z, out + 2 * (z * outStride + kx));
}

// Per column chunk (outer, so that the chunk's T rows stay in L1 while G's rows stream past), Q output rows at a time:
// output row z + q reads G(z + q + dz), so the Q rows of G in use slide down by one per dz and each is loaded once
// (a window in registers), not Q times. The sums run over dz in the same order as a plain loop: results are the same
// bits.
template <typename V, int Q, bool Stream>
__attribute__((always_inline)) inline void sumAlongZColumns(const float* g, int64_t rowStride, int64_t pitch,
                                                            const float* t, int64_t boxZ, int64_t kx0, int64_t span,
                                                            int64_t zCount, float* out, int64_t outStride) {
  constexpr int L = VectorLanes<V>::L;
  for (int64_t kx = kx0; kx < span; kx += L) {
    const float* gc = g + kx;
    const float* tc = t + kx;
    int64_t z = 0;
    for (; z + Q <= zCount; z += Q) {
      V ar[Q] = {}, ai[Q] = {}, wr[Q], wi[Q];
      for (int q = 0; q + 1 < Q; ++q) {
        std::memcpy(&wr[q], gc + (z + q) * rowStride, sizeof(V));
        std::memcpy(&wi[q], gc + (z + q) * rowStride + pitch, sizeof(V));
      }
      for (int64_t d = 0; d < boxZ; ++d) {
        V tr, ti;
        std::memcpy(&tr, tc + d * 2 * pitch, sizeof tr);
        std::memcpy(&ti, tc + d * 2 * pitch + pitch, sizeof ti);
        std::memcpy(&wr[Q - 1], gc + (z + d + Q - 1) * rowStride, sizeof(V));
        std::memcpy(&wi[Q - 1], gc + (z + d + Q - 1) * rowStride + pitch, sizeof(V));
        for (int q = 0; q < Q; ++q) {
          // One fused multiply-add each (written apart: a + (b + c) would not contract).
          ar[q] += wr[q] * tr;
          ar[q] += wi[q] * ti;
          ai[q] += wi[q] * tr;
          ai[q] -= wr[q] * ti;
        }
        for (int q = 0; q + 1 < Q; ++q) {
          wr[q] = wr[q + 1];
          wi[q] = wi[q + 1];
        }
      }
      for (int q = 0; q < Q; ++q) {
        float* p = out + 2 * ((z + q) * outStride + kx);
        if (!Stream) {
          storeInterleaved(p, ar[q], ai[q]);
          continue;
        }
        // Past the cache (whole 64-byte lines, the caller checked the alignment): as copyStreaming.
        const V lo = __builtin_shuffle(ar[q], ai[q], VectorLanes<V>::lo);
        const V hi = __builtin_shuffle(ar[q], ai[q], VectorLanes<V>::hi);
        asm volatile("vmovntps %1, %0" : "=m"(*reinterpret_cast<V*>(p)) : "v"(lo));
        asm volatile("vmovntps %1, %0" : "=m"(*reinterpret_cast<V*>(p + L)) : "v"(hi));
      }
    }
    for (; z < zCount; ++z) sumOneRow<V>(gc, tc, rowStride, pitch, boxZ, z, out + 2 * (z * outStride + kx));
  }
}

// span a multiple of 8.
TME_SIMD_CLONES
void sumAlongZ(const float* g, int64_t rowStride, int64_t pitch, const float* t, int64_t boxZ, int64_t span,
               int64_t zCount, float* out, int64_t outStride) {
  sumAlongZRows<Float8>(g, rowStride, pitch, t, boxZ, 0, span, zCount, out, outStride);
}

#if TME_HAS_AVX512_PATH
// The same on 16 lanes where the CPU has AVX-512 (2-core Xeon, 144^3 tile, 15-voxel box, median of three alternated
// runs: the z stage 3.6 ms per rotation against 4.9 ms on 8 lanes), column chunks outer with a sliding window of 6
// rows (every ky of a tile, thread CPU time, min of 10 on a loaded 2-core Xeon: 160^3 / 32^3 5.8 ms against 6.5 ms
// rows outer, 288^3 / 32^3 40 against 55 ms; on 8 lanes the same order was 1.4x slower than rows outer, which they
// keep). TME_NO_AVX512=1 keeps 8 lanes (comparisons).
__attribute__((target("arch=x86-64-v4"))) void sumAlongZ16(const float* g, int64_t rowStride, int64_t pitch,
                                                           const float* t, int64_t boxZ, int64_t span, int64_t zCount,
                                                           float* out, int64_t outStride, bool stream) {
  const int64_t wide = span / 16 * 16;
  if (stream) sumAlongZColumns<Float16, 6, true>(g, rowStride, pitch, t, boxZ, 0, wide, zCount, out, outStride);
  else sumAlongZColumns<Float16, 6, false>(g, rowStride, pitch, t, boxZ, 0, wide, zCount, out, outStride);
  if (wide < span) sumAlongZRows<Float8>(g, rowStride, pitch, t, boxZ, wide, span, zCount, out, outStride);
}
#endif

// stream: out and outStride whole 64-byte lines (the 16-lane path then writes past the cache).
void sumAlongZDispatch(const float* g, int64_t rowStride, int64_t pitch, const float* t, int64_t boxZ, int64_t span,
                       int64_t zCount, float* out, int64_t outStride, bool stream) {
#if TME_HAS_AVX512_PATH
  if (useAvx512()) return sumAlongZ16(g, rowStride, pitch, t, boxZ, span, zCount, out, outStride, stream);
#endif
  sumAlongZ(g, rowStride, pitch, t, boxZ, span, zCount, out, outStride);
}

// The spectra of the products are streamed past the cache where they are larger than this (a core's L2 on the
// machines measured is 2 MiB): the planes pass reads them back from memory either way, and a plain store first
// reads each line in. z inverse and copy, 192^3 / 64^3 and 288^3 / 32^3 tiles, min of 5, three runs on a busy
// 2-core Xeon: 7-17 ms against 14-22 ms, and 43-63 ms against 55-110 ms.
constexpr double kStreamBytes = 4.0 * 1024 * 1024;

// dst <- src, `count` complex values, 16-byte aligned, count a multiple of 2; past the cache where SSE has it.
void copyStreaming(cfloat* dst, const cfloat* src, int64_t count) {
#if defined(__SSE__)
  float* d = reinterpret_cast<float*>(dst);
  const float* f = reinterpret_cast<const float*>(src);
  for (int64_t i = 0; i < 2 * count; i += 4) _mm_stream_ps(d + i, _mm_load_ps(f + i));
#else
  std::memcpy(static_cast<void*>(dst), src, sizeof(cfloat) * count);
#endif
}

// Orders the streamed stores before the planes pass reads them.
void streamFence() {
#if defined(__SSE__)
  _mm_sfence();
#endif
}

const char* kStageNames[5] = {"slab x+y", "slab z", "slab planes", "slab finalise", "slab gather+z"};

}  // namespace

std::shared_ptr<const SlabSpectrum> makeSlabSpectrum(const Shape3& tile, const std::vector<SlabFactorSource>& sources,
                                                     int64_t window) {
  auto s = std::make_shared<SlabSpectrum>();
  s->tile = tile;
  s->window = window;
  const int64_t tz = tile.z, ty = tile.y, hx = tile.halfX(), pitch = pitchFor(tile);
  s->pitch = pitch;
  // Direct: one ky slab at a time is transformed back along z, then spread into the extended split rows.
  FftwArray<cfloat> slab = window > 0 ? zeroed<cfloat>(tz * pitch) : FftwArray<cfloat>();
  for (const SlabFactorSource& source : sources) {
    SlabSpectrum::Factor factor;
    factor.activeColumns.assign(ty, 0);
    if (window > 0) factor.mixed = zeroed<float>(ty * (tz + window) * 2 * pitch);
    else factor.g = zeroed<cfloat>(ty * tz * pitch);
    const float* f = reinterpret_cast<const float*>(source.spectrum);
    for (int64_t ky = 0; ky < ty; ++ky) {
      int32_t& active = factor.activeColumns[ky];
      float* g = reinterpret_cast<float*>(window > 0 ? slab.get() : factor.g.get() + ky * tz * pitch);
      for (int64_t kz = 0; kz < tz; ++kz) {
        const int64_t in = (kz * ty + ky) * hx;
        float* out = g + 2 * kz * pitch;
        for (int64_t kx = 0; kx < hx; ++kx) {
          const float re = f[2 * (in + kx)], im = f[2 * (in + kx) + 1];
          out[2 * kx] = re;
          out[2 * kx + 1] = im;
          if ((re != 0.0f || im != 0.0f) && kx >= active) active = static_cast<int32_t>(kx + 1);
        }
      }
      if (window == 0 || active == 0) continue;
      fftwInverseColumns(tz, active, pitch, slab.get());
      float* rows = factor.mixed.get() + ky * (tz + window) * 2 * pitch;
      for (int64_t e = 0; e < tz + window; ++e) {
        const int64_t z = ((e - window / 2) % tz + tz) % tz;
        const float* src = g + 2 * z * pitch;
        float* re = rows + e * 2 * pitch;
        for (int64_t kx = 0; kx < active; ++kx) {
          re[kx] = src[2 * kx];
          re[pitch + kx] = src[2 * kx + 1];
        }
      }
    }
    for (int32_t a : factor.activeColumns) s->activeX = std::max(s->activeX, a);
    s->factors.push_back(std::move(factor));
  }
  return s;
}

bool directZPays(const Shape3& tile, const Shape3& box, int64_t regionZ) {
  // Direct: regionZ * box.z complex multiply-adds per column; spectral: two length-tile.z transforms and a product.
  const double direct = static_cast<double>(regionZ) * static_cast<double>(box.z);
  const double spectral = static_cast<double>(tile.z) * std::log2(static_cast<double>(tile.z));
  return direct <= (useAvx512() && !halfWidthAvx512() ? kDirectZPerSpectral16 : kDirectZPerSpectral) * spectral;
}

double slabSpectrumBytes(const Shape3& tile, int factors, int64_t window) {
  return factors * 8.0 * tile.y * (tile.z + window) * pitchFor(tile);
}

double slabWorkerBytes(const Shape3& tile, const Shape3& box, int inputs, int products) {
  const double pitch = static_cast<double>(pitchFor(tile));
  const double rows = static_cast<double>(box.y);
  return 4.0 * rows * tile.x + 8.0 * rows * pitch + 8.0 * tile.y * pitch + inputs * 8.0 * box.z * tile.y * pitch +
         (3 + inputs) * 8.0 * tile.z * pitch +
         products * (8.0 * tile.z * planeStrideFor(tile) + 4.0 * tile.y * tile.x);
}

double SlabCorrelator::StageTimes::now() const {
  if (cpu) {
    timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) * 1e-6;
  }
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void SlabCorrelator::StageTimes::start() {
  if (on) last = now();
}

void SlabCorrelator::StageTimes::lap(int stage) {
  if (!on) return;
  const double t = now();
  ms[stage] += t - last;
  last = t;
}

SlabCorrelator::SlabCorrelator(std::shared_ptr<const SlabSpectrum> spectrum, const Shape3& box,
                               std::vector<SlabProduct> products, const Shape3& regionStart, const Shape3& regionShape,
                               double* planMs)
    : spectrum_(std::move(spectrum)), tile_(spectrum_->tile), box_(box), regionStart_(regionStart),
      regionShape_(regionShape), products_(std::move(products)) {
  for (const SlabProduct& p : products_) {
    if (p.factor < 0 || p.factor >= static_cast<int>(spectrum_->factors.size()) || p.input < 0)
      fail(ErrorCode::Internal, "slab correlator: a product names a factor the spectrum does not hold");
    inputs_ = std::max(inputs_, p.input + 1);
  }
  hx_ = tile_.halfX();
  pitch_ = spectrum_->pitch;
  planeStride_ = planeStrideFor(tile_);
  SlabLayout layout{tile_, box_, std::max<int64_t>(1, spectrum_->activeX), pitch_, planeStride_, regionShape_.y};
  plans_ = &fftwSlabPlans(layout, planMs);
  const int64_t rows = box_.y;
  rows_ = zeroed<float>(rows * tile_.x);
  // Zeroed throughout: the passes read whole chunks, past the columns written (G is zero there, but 0 * NaN is not).
  rowSpec_ = zeroed<cfloat>(rows * pitch_);
  planesIn_ = zeroed<cfloat>(tile_.y * pitch_);
  for (int i = 0; i < inputs_; ++i) {
    planes_.push_back(zeroed<cfloat>(box_.z * tile_.y * pitch_));
    slabFwd_.push_back(zeroed<cfloat>(tile_.z * pitch_));
  }
  slabIn_ = zeroed<cfloat>(tile_.z * pitch_);
  slabOut_ = zeroed<cfloat>(tile_.z * pitch_);
  if (spectrum_->window == 0) slabBack_ = zeroed<cfloat>(tile_.z * pitch_);
  streamSpectra_ = 8.0 * static_cast<double>(regionShape_.z * planeStride_) > kStreamBytes;
  // The direct sums' stores stream too where every row of every spectrum starts on a 64-byte line.
  streamSums_ = streamSpectra_ && (8 * pitch_) % 64 == 0 && (8 * planeStride_) % 64 == 0;
  for (size_t j = 0; j < products_.size(); ++j) {
    s_.push_back(zeroed<cfloat>(regionShape_.z * planeStride_));
    if (reinterpret_cast<uintptr_t>(s_.back().get()) % 64 != 0) streamSums_ = false;
    plane_.push_back(zeroed<float>(regionShape_.y * tile_.x));
    planePointers_.push_back(plane_.back().get());
  }
  boxZ_.resize(box_.z);
  for (int64_t z = 0; z < box_.z; ++z) boxZ_[z] = wrapped(z - box_.z / 2, tile_.z);
  if (spectrum_->window > 0) {
    if (spectrum_->window != box_.z) fail(ErrorCode::Internal, "slab correlator: the spectrum's window is not the box's");
    boxSplit_ = zeroed<float>(inputs_ * box_.z * 2 * pitch_);
  }
}

SlabCorrelator::~SlabCorrelator() {
  if (!times_.on || times_.calls == 0) return;
  for (int i = 0; i < 5; ++i)
    if (times_.ms[i] > 0)
      std::fprintf(stderr, "tme profile %-14s %9.2f ms total %8.3f ms/rotation\n", kStageNames[i], times_.ms[i],
                   times_.ms[i] / static_cast<double>(times_.calls));
}

void SlabCorrelator::correlateBoxes(const float* const* boxes, const PlaneSink& sink) {
  times_.start();
  const SlabSpectrum& sp = *spectrum_;
  const int64_t tx = tile_.x, ty = tile_.y, pitch = pitch_;
  const int64_t active = sp.activeX;
  const int products = static_cast<int>(products_.size());
  auto c = [](cfloat* p) { return reinterpret_cast<fftwf_complex*>(p); };
  // 1. Per input and box plane: x on the plane's rows (placed at their wrapped x; the rest of rows_ stays zero),
  // then y on the plane (its rows placed at their wrapped y; the rest of planesIn_ stays zero). A plane at a time,
  // in cache: every plane's values land on the same rows and columns, so the next plane overwrites them. (The whole
  // box's rows, then its planes, through [box.z]-sized scratch read the zero rows back from memory: 192^3 / 64^3,
  // 6.0 -> 3.5 ms per rotation for this stage.)
  for (int i = 0; i < inputs_ && active > 0; ++i) {
    for (int64_t z = 0; z < box_.z; ++z) {
      for (int64_t y = 0; y < box_.y; ++y) {
        float* row = rows_.get() + y * tx;
        const float* src = boxes[i] + (z * box_.y + y) * box_.x;
        for (int64_t x = 0; x < box_.x; ++x) row[wrapped(x - box_.x / 2, tx)] = src[x];
      }
      fftwf_execute_dft_r2c(plans_->rows, rows_.get(), c(rowSpec_.get()));
      for (int64_t y = 0; y < box_.y; ++y)
        std::memcpy(static_cast<void*>(planesIn_.get() + wrapped(y - box_.y / 2, ty) * pitch),
                    rowSpec_.get() + y * pitch, sizeof(cfloat) * active);
      fftwf_execute_dft(plans_->planesForward, c(planesIn_.get()), c(planes_[i].get() + z * ty * pitch));
    }
  }
  times_.lap(0);
  if (sp.window > 0) {
    sumSlabs();
    streamFence();
    times_.lap(1);
    finishPlanes(sink);
    return;
  }
  // 2. Per ky slab: each input's box planes into their wrapped z rows (the other rows stay zero) and z forward;
  // then per product: times its factor, z inverse.
  std::vector<int64_t> spans(inputs_);
  for (int64_t ky = 0; ky < ty; ++ky) {
    inputSpans(ky, &spans);
    for (int i = 0; i < inputs_; ++i) {
      if (spans[i] == 0) continue;
      for (int64_t z = 0; z < box_.z; ++z)
        std::memcpy(static_cast<void*>(slabIn_.get() + boxZ_[z] * pitch), planes_[i].get() + (z * ty + ky) * pitch,
                    sizeof(cfloat) * spans[i]);
      for (int64_t k = 0; k < spans[i]; k += kSlabChunk)
        fftwf_execute_dft(plans_->chunkForward, c(slabIn_.get() + k), c(slabFwd_[i].get() + k));
    }
    for (int j = 0; j < products; ++j) {
      const SlabSpectrum::Factor& factor = sp.factors[products_[j].factor];
      const int64_t count = factor.activeColumns[ky];
      if (count > 0) {
        const int64_t span = chunkSpan(count);
        const cfloat* g = factor.g.get() + ky * tile_.z * pitch;
        const cfloat* t = slabFwd_[products_[j].input].get();
        for (int64_t z = 0; z < tile_.z; ++z)
          multiplyConjugate(reinterpret_cast<float*>(slabOut_.get() + z * pitch),
                            reinterpret_cast<const float*>(g + z * pitch),
                            reinterpret_cast<const float*>(t + z * pitch), span);
      }
      invertSlab(j, ky, count);
    }
  }
  streamFence();
  times_.lap(1);
  finishPlanes(sink);
}

void SlabCorrelator::correlateSpectrum(const cfloat* grid, const Shape3& g, const RotationParams& r,
                                       const PlaneSink& sink) {
  times_.start();
  const SlabSpectrum& sp = *spectrum_;
  const int64_t tz = tile_.z, ty = tile_.y, tx = tile_.x, pitch = pitch_;
  const int32_t gz = static_cast<int32_t>(g.z), gy = static_cast<int32_t>(g.y), gx = static_cast<int32_t>(g.x);
  const float* t = reinterpret_cast<const float*>(grid);
  const float* m = r.inverse;
  const float invX = 1.0f / static_cast<float>(tx);
  const float stepZ = m[2] * invX * gz, stepY = m[5] * invX * gy, stepX = m[8] * invX * gx;
  for (int64_t ky = 0; ky < ty; ++ky) {
    // Nyquist planes are ambiguous under rotation (+1/2 and -1/2 map to different template frequencies): zero, so
    // the spectrum stays Hermitian (gather.comp does the same). So is the x Nyquist column.
    const int64_t count = ty % 2 == 0 && ky == ty / 2 ? 0 : sp.factors[0].activeColumns[ky];
    if (count > 0) {
      const int64_t span = chunkSpan(count);
      const int64_t sampled = tx % 2 == 0 ? std::min(count, tx / 2) : count;
      const float fy = signedFrequency(ky, ty);
      const float* gRows = reinterpret_cast<const float*>(sp.factors[0].g.get() + ky * tz * pitch);
      for (int64_t kz = 0; kz < tz; ++kz) {
        float* row = reinterpret_cast<float*>(slabOut_.get() + kz * pitch);
        if (tz % 2 == 0 && kz == tz / 2) {
          std::fill(row, row + 2 * span, 0.0f);
          continue;
        }
        const float* gRow = gRows + 2 * kz * pitch;
        const float fz = signedFrequency(kz, tz);
        // Along a row the sampling position is affine in kx: u = base + kx * step (grid index units).
        const float baseZ = (m[0] * fz + m[1] * fy) * gz, baseY = (m[3] * fz + m[4] * fy) * gy,
                    baseX = (m[6] * fz + m[7] * fy) * gx;
        for (int64_t kx = 0; kx < sampled; ++kx) {
          float v[2];
          sampleSpectrumLinear(t, gz, gy, gx, baseZ + stepZ * kx, baseY + stepY * kx, baseX + stepX * kx, v);
          const float gr = gRow[2 * kx], gi = gRow[2 * kx + 1];
          row[2 * kx] = gr * v[0] + gi * v[1];
          row[2 * kx + 1] = gi * v[0] - gr * v[1];
        }
        std::fill(row + 2 * sampled, row + 2 * span, 0.0f);
      }
    }
    invertSlab(0, ky, count);
  }
  streamFence();
  times_.lap(4);
  finishPlanes(sink);
}

void SlabCorrelator::inputSpans(int64_t ky, std::vector<int64_t>* spans) const {
  std::fill(spans->begin(), spans->end(), 0);
  for (const SlabProduct& p : products_) {
    int64_t& span = (*spans)[p.input];
    span = std::max(span, chunkSpan(spectrum_->factors[p.factor].activeColumns[ky]));
  }
}

void SlabCorrelator::sumSlabs() {
  const SlabSpectrum& sp = *spectrum_;
  const int64_t ty = tile_.y, pitch = pitch_, bz = box_.z;
  const int products = static_cast<int>(products_.size());
  const int64_t rowStride = 2 * pitch, slabRows = tile_.z + sp.window;
  std::vector<int64_t> spans(inputs_);
  for (int64_t ky = 0; ky < ty; ++ky) {
    inputSpans(ky, &spans);
    // Each input's box planes on this ky, split into real and imaginary rows.
    for (int i = 0; i < inputs_; ++i) {
      float* split = boxSplit_.get() + i * bz * 2 * pitch;
      for (int64_t z = 0; z < bz; ++z) {
        const float* src = reinterpret_cast<const float*>(planes_[i].get() + (z * ty + ky) * pitch);
        float* re = split + z * 2 * pitch;
        for (int64_t kx = 0; kx < spans[i]; ++kx) {
          re[kx] = src[2 * kx];
          re[pitch + kx] = src[2 * kx + 1];
        }
      }
    }
    for (int j = 0; j < products; ++j) {
      const SlabSpectrum::Factor& factor = sp.factors[products_[j].factor];
      const int64_t count = factor.activeColumns[ky];
      const int64_t span = count > 0 ? chunkSpan(count) : 0;
      cfloat* first = s_[j].get() + ky * pitch;
      if (span > 0) {
        // Output plane z reads rows z + dz + window / 2 for dz = -box.z / 2 ...: rows z ... z + box.z - 1.
        const float* g = factor.mixed.get() + (ky * slabRows + regionStart_.z) * rowStride;
        sumAlongZDispatch(g, rowStride, pitch, boxSplit_.get() + products_[j].input * bz * 2 * pitch, bz, span,
                          regionShape_.z, reinterpret_cast<float*>(first), planeStride_, streamSums_);
      }
      // The x pass reads every column below halfX: the ones past the sums must be zero.
      if (span < hx_)
        for (int64_t z = 0; z < regionShape_.z; ++z) std::fill(first + z * planeStride_ + span, first + z * planeStride_ + hx_, cfloat(0.0f, 0.0f));
    }
  }
}

void SlabCorrelator::invertSlab(int j, int64_t ky, int64_t count) {
  const int64_t span = count > 0 ? chunkSpan(count) : 0;
  // Into a slab that stays in cache, then only the region's planes out to the spectrum: FFTW writing the transposed
  // layout itself (a row per plane, planeStride apart) took 1.5-1.7x as long as this pair (192^3 and 320^3 tiles).
  for (int64_t k = 0; k < span; k += kSlabChunk)
    fftwf_execute_dft(plans_->chunkInverse, reinterpret_cast<fftwf_complex*>(slabOut_.get() + k),
                      reinterpret_cast<fftwf_complex*>(slabBack_.get() + k));
  cfloat* spectrum = s_[j].get() + ky * pitch_;
  for (int64_t z = 0; z < regionShape_.z; ++z) {
    cfloat* row = spectrum + z * planeStride_;
    const cfloat* src = slabBack_.get() + (regionStart_.z + z) * pitch_;
    if (streamSpectra_) copyStreaming(row, src, span);
    else std::memcpy(static_cast<void*>(row), src, sizeof(cfloat) * span);
    // The x pass reads every column below halfX: the ones past the transformed chunks must be zero (the C2R of the
    // last rotation overwrote them).
    if (span < hx_) std::fill(row + span, row + hx_, cfloat(0.0f, 0.0f));
  }
}

void SlabCorrelator::finishPlanes(const PlaneSink& sink) {
  const bool any = spectrum_->activeX > 0;
  const int64_t y0 = regionStart_.y, rows = regionShape_.y;
  for (int64_t z = regionStart_.z; z < regionStart_.z + regionShape_.z; ++z) {
    for (size_t j = 0; j < s_.size(); ++j) {
      cfloat* plane = s_[j].get() + (z - regionStart_.z) * planeStride_;
      if (any) fftwf_execute_dft(plans_->planeInverse, reinterpret_cast<fftwf_complex*>(plane),
                                 reinterpret_cast<fftwf_complex*>(plane));
      fftwf_execute_dft_c2r(plans_->planeC2R, reinterpret_cast<fftwf_complex*>(plane + y0 * pitch_),
                            plane_[j].get());
    }
    times_.lap(2);
    sink(z, y0, rows, planePointers_.data());
    times_.lap(3);
  }
  times_.calls++;
}

}  // namespace tme

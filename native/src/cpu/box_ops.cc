#include "cpu/box_ops.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "cpu/simd.h"
#include "match/geometry.h"

namespace tme {

bool referenceBoxOps() {
  static const bool reference = [] {
    const char* v = std::getenv("TME_BOX_OPS");
    return v != nullptr && std::string(v) == "reference";
  }();
  return reference;
}

void rotateBoxReference(float* out, const float* in, const Shape3& b, const RotationParams& r,
                        Interpolation interpolation) {
  const float cz = static_cast<float>(b.z / 2), cy = static_cast<float>(b.y / 2), cx = static_cast<float>(b.x / 2);
  const float* m = r.inverse;
  const bool cubic = interpolation == Interpolation::Cubic;
  for (int64_t z = 0; z < b.z; ++z)
    for (int64_t y = 0; y < b.y; ++y) {
      const float dz = z - cz, dy = y - cy;
      // Source position is affine in x: start + x * step.
      float sz = cz + m[0] * dz + m[1] * dy + m[2] * (0 - cx);
      float sy = cy + m[3] * dz + m[4] * dy + m[5] * (0 - cx);
      float sx = cx + m[6] * dz + m[7] * dy + m[8] * (0 - cx);
      float* row = out + (z * b.y + y) * b.x;
      for (int64_t x = 0; x < b.x; ++x) {
        float pz = sz + m[2] * x, py = sy + m[5] * x, px = sx + m[8] * x;
        row[x] = cubic ? sampleCubic(in, b, pz, py, px) : sampleLinear(in, b, pz, py, px);
      }
    }
}

#if TME_HAS_AVX512_PATH
// GCC 12 warns on its own intrinsics' undefined-value idiom inside target("arch=x86-64-v4") functions.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
namespace {
// 16 voxels of a row at once: the same float operations in the same order as sampleLinear / sampleCubic (so the
// results are bitwise the reference's), gathers where all taps are inside the box; lanes with
// taps outside take the scalar sample.
// No FMA contraction anywhere in this file (CMakeLists.txt: -ffp-contract=off).
#define TME_AVX512 __attribute__((target("arch=x86-64-v4")))
// catmullRom's weights, the same operations.
TME_AVX512 inline void catmullRom16(__m512 t, __m512 w[4]) {
  const __m512 half = _mm512_set1_ps(0.5f), c2 = _mm512_set1_ps(2.0f), c3 = _mm512_set1_ps(3.0f),
               c4 = _mm512_set1_ps(4.0f), c5 = _mm512_set1_ps(5.0f), cm3 = _mm512_set1_ps(-3.0f);
  const __m512 t2 = _mm512_mul_ps(t, t), t3 = _mm512_mul_ps(t2, t);
  const __m512 nt3 = _mm512_sub_ps(_mm512_setzero_ps(), t3);
  w[0] = _mm512_mul_ps(half, _mm512_sub_ps(_mm512_add_ps(nt3, _mm512_mul_ps(c2, t2)), t));
  w[1] = _mm512_mul_ps(half, _mm512_add_ps(_mm512_sub_ps(_mm512_mul_ps(c3, t3), _mm512_mul_ps(c5, t2)), c2));
  w[2] = _mm512_mul_ps(half, _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(cm3, t3), _mm512_mul_ps(c4, t2)), t));
  w[3] = _mm512_mul_ps(half, _mm512_sub_ps(t3, t2));
}

TME_AVX512 inline __m512 tap16(const float* in, __mmask16 inside, __m512i base, int64_t offset) {
  if (inside == 0xFFFF) return _mm512_i32gather_ps(base, in + offset, 4);
  return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), inside, base, in + offset, 4);
}

// Lanes where tap i + d lies in [0, n).
TME_AVX512 inline __mmask16 within16(__m512i i, int d, __m512i n) {
  const __m512i id = _mm512_add_epi32(i, _mm512_set1_epi32(d));
  return _mm512_cmpge_epi32_mask(id, _mm512_setzero_si512()) & _mm512_cmplt_epi32_mask(id, n);
}

TME_AVX512 void rotateBox16(
    float* out, const float* in, const Shape3& b, const RotationParams& r, bool cubic) {
  const float cz = static_cast<float>(b.z / 2), cy = static_cast<float>(b.y / 2), cx = static_cast<float>(b.x / 2);
  const float* m = r.inverse;
  const int32_t bx = static_cast<int32_t>(b.x), by = static_cast<int32_t>(b.y), bz = static_cast<int32_t>(b.z);
  const int64_t sy = b.x, sz = b.x * b.y;
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i vbx = _mm512_set1_epi32(bx), vby = _mm512_set1_epi32(by), vbz = _mm512_set1_epi32(bz);
  const __m512 m2 = _mm512_set1_ps(m[2]), m5 = _mm512_set1_ps(m[5]), m8 = _mm512_set1_ps(m[8]);
  for (int64_t z = 0; z < b.z; ++z)
    for (int64_t y = 0; y < b.y; ++y) {
      const float dz = z - cz, dy = y - cy;
      const float szf = cz + m[0] * dz + m[1] * dy + m[2] * (0 - cx);
      const float syf = cy + m[3] * dz + m[4] * dy + m[5] * (0 - cx);
      const float sxf = cx + m[6] * dz + m[7] * dy + m[8] * (0 - cx);
      float* row = out + (z * b.y + y) * b.x;
      for (int32_t x0 = 0; x0 < bx; x0 += 16) {
        const __mmask16 live = bx - x0 >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (bx - x0)) - 1);
        const __m512 xf = _mm512_cvtepi32_ps(_mm512_add_epi32(_mm512_set1_epi32(x0), iota));
        const __m512 pz = _mm512_add_ps(_mm512_set1_ps(szf), _mm512_mul_ps(m2, xf));
        const __m512 py = _mm512_add_ps(_mm512_set1_ps(syf), _mm512_mul_ps(m5, xf));
        const __m512 px = _mm512_add_ps(_mm512_set1_ps(sxf), _mm512_mul_ps(m8, xf));
        const __m512 fz = _mm512_roundscale_ps(pz, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
        const __m512 fy = _mm512_roundscale_ps(py, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
        const __m512 fx = _mm512_roundscale_ps(px, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
        // Out-of-range positions convert to INT32_MIN: no tap inside.
        const __m512i iz = _mm512_cvttps_epi32(fz), iy = _mm512_cvttps_epi32(fy), ix = _mm512_cvttps_epi32(fx);
        const __m512 tz = _mm512_sub_ps(pz, fz), ty = _mm512_sub_ps(py, fy), tx = _mm512_sub_ps(px, fx);
        // Which taps i0 + d (d = -1..2) lie inside the box, per axis.
        __mmask16 zin[4], yin[4], xin[4];
        for (int d = -1; d <= 2; ++d) {
          zin[d + 1] = within16(iz, d, vbz);
          yin[d + 1] = within16(iy, d, vby);
          xin[d + 1] = within16(ix, d, vbx);
        }
        const __m512i centre =
            _mm512_add_epi32(_mm512_mullo_epi32(_mm512_add_epi32(_mm512_mullo_epi32(iz, vby), iy), vbx), ix);
        __m512 v = _mm512_setzero_ps();
        if (!cubic) {
          // sampleLinear: interpolation along x, y, z where all 8 taps are inside; else the weighted sum of the
          // taps inside (0 where none is).
          const __mmask16 inside = live & zin[1] & zin[2] & yin[1] & yin[2] & xin[1] & xin[2];
          const __mmask16 border =
              live & static_cast<__mmask16>(~inside) & (zin[1] | zin[2]) & (yin[1] | yin[2]) & (xin[1] | xin[2]);
          if (inside) {
            const __m512 p0 = tap16(in, inside, centre, 0), p1 = tap16(in, inside, centre, 1);
            const __m512 p2 = tap16(in, inside, centre, sy), p3 = tap16(in, inside, centre, sy + 1);
            const __m512 p4 = tap16(in, inside, centre, sz), p5 = tap16(in, inside, centre, sz + 1);
            const __m512 p6 = tap16(in, inside, centre, sz + sy), p7 = tap16(in, inside, centre, sz + sy + 1);
            const __m512 c00 = _mm512_add_ps(p0, _mm512_mul_ps(tx, _mm512_sub_ps(p1, p0)));
            const __m512 c01 = _mm512_add_ps(p2, _mm512_mul_ps(tx, _mm512_sub_ps(p3, p2)));
            const __m512 c10 = _mm512_add_ps(p4, _mm512_mul_ps(tx, _mm512_sub_ps(p5, p4)));
            const __m512 c11 = _mm512_add_ps(p6, _mm512_mul_ps(tx, _mm512_sub_ps(p7, p6)));
            const __m512 c0 = _mm512_add_ps(c00, _mm512_mul_ps(ty, _mm512_sub_ps(c01, c00)));
            const __m512 c1 = _mm512_add_ps(c10, _mm512_mul_ps(ty, _mm512_sub_ps(c11, c10)));
            v = _mm512_add_ps(c0, _mm512_mul_ps(tz, _mm512_sub_ps(c1, c0)));
          }
          if (border) {
            const __m512 onev = _mm512_set1_ps(1.0f);
            const __m512 wz[2] = {_mm512_sub_ps(onev, tz), tz}, wy[2] = {_mm512_sub_ps(onev, ty), ty},
                         wx[2] = {_mm512_sub_ps(onev, tx), tx};
            __m512 sum = _mm512_setzero_ps();
            for (int a = 0; a < 2; ++a)
              for (int bb = 0; bb < 2; ++bb)
                for (int c = 0; c < 2; ++c) {
                  const __mmask16 k = border & zin[1 + a] & yin[1 + bb] & xin[1 + c];
                  const __m512 w = _mm512_mul_ps(_mm512_mul_ps(wz[a], wy[bb]), wx[c]);
                  sum = _mm512_add_ps(sum, _mm512_mul_ps(w, tap16(in, k, centre, a * sz + bb * sy + c)));
                }
            v = _mm512_mask_blend_ps(border, v, sum);
          }
        } else {
          // sampleCubic: the 64 taps, those outside the box 0 (which also gives 0 where none is inside).
          const __mmask16 any = live & (zin[0] | zin[1] | zin[2] | zin[3]) & (yin[0] | yin[1] | yin[2] | yin[3]) &
                                (xin[0] | xin[1] | xin[2] | xin[3]);
          if (any) {
            __m512 wz[4], wy[4], wx[4];
            catmullRom16(tz, wz);
            catmullRom16(ty, wy);
            catmullRom16(tx, wx);
            for (int a = 0; a < 4; ++a) {
              __m512 pa = _mm512_setzero_ps();
              for (int bb = 0; bb < 4; ++bb) {
                __m512 pb = _mm512_setzero_ps();
                for (int c = 0; c < 4; ++c) {
                  const __mmask16 k = any & zin[a] & yin[bb] & xin[c];
                  const __m512 t = tap16(in, k, centre, (a - 1) * sz + (bb - 1) * sy + (c - 1));
                  pb = _mm512_add_ps(pb, _mm512_mul_ps(wx[c], t));
                }
                pa = _mm512_add_ps(pa, _mm512_mul_ps(wy[bb], pb));
              }
              v = _mm512_add_ps(v, _mm512_mul_ps(wz[a], pa));
            }
            v = _mm512_maskz_mov_ps(any, v);
          }
        }
        _mm512_mask_storeu_ps(row + x0, live, v);
      }
    }
}
}  // namespace
#pragma GCC diagnostic pop
#endif

void rotateBoxCpu(float* out, const float* in, const Shape3& b, const RotationParams& r, Interpolation interpolation) {
#if TME_HAS_AVX512_PATH
  if (useAvx512() && !referenceBoxOps() && b.voxels() < (int64_t{1} << 30))
    return rotateBox16(out, in, b, r, interpolation == Interpolation::Cubic);
#endif
  rotateBoxReference(out, in, b, r, interpolation);
}

void filterBoxCpu(float* values, const Shape3& b, const Shape3& g, const FftwPlanPair& plans, const float* h,
                  float* real, cfloat* spectrum) {
  std::fill(real, real + g.voxels(), 0.0f);
  int64_t i = 0;
  for (int64_t z = 0; z < b.z; ++z)
    for (int64_t y = 0; y < b.y; ++y)
      for (int64_t x = 0; x < b.x; ++x, ++i) real[wrappedIndex(g, b, z, y, x)] = values[i];
  fftwR2C(plans, real, spectrum);
  float* s = reinterpret_cast<float*>(spectrum);
  for (int64_t k = 0; k < g.spectrumCount(); ++k) {
    s[2 * k] *= h[k];
    s[2 * k + 1] *= h[k];
  }
  fftwC2R(plans, spectrum, real);
  i = 0;
  for (int64_t z = 0; z < b.z; ++z)
    for (int64_t y = 0; y < b.y; ++y)
      for (int64_t x = 0; x < b.x; ++x, ++i) values[i] = real[wrappedIndex(g, b, z, y, x)];
}

namespace {
// Whether h (half spectrum of g) is the same at every index of `axis` (0: z, 1: y) for each of the others.
bool constantAlong(const float* h, const Shape3& g, int axis) {
  const int64_t hx = g.halfX();
  for (int64_t z = 0; z < g.z; ++z)
    for (int64_t y = 0; y < g.y; ++y) {
      const float* row = h + (z * g.y + y) * hx;
      const float* first = h + ((axis == 0 ? 0 : z) * g.y + (axis == 1 ? 0 : y)) * hx;
      for (int64_t x = 0; x < hx; ++x)
        if (row[x] != first[x]) return false;
    }
  return true;
}
}  // namespace

BoxFilter::BoxFilter(const Shape3& b, const Shape3& g, const float* h, double* planMs) : box_(b), grid_(g) {
  if (referenceBoxOps()) {
    gridPlans_ = &fftwPlans(g, 1, planMs);
    in_ = fftwAlloc<float>(g.voxels());
    c_ = fftwAlloc<cfloat>(g.spectrumCount());
    h_ = fftwAlloc<float>(g.spectrumCount());
    std::copy(h, h + g.spectrumCount(), h_.get());
    return;
  }
  const bool yActive = !constantAlong(h, g, 1), zActive = !constantAlong(h, g, 0);
  plans_ = &fftwBoxFilterPlans(b, g, yActive, zActive, planMs);
  const BoxFilterPlans& p = *plans_;
  const int64_t plane = p.sy * p.hx, rows = b.z * b.y * g.x;
  // Zero once: the rows' tails beyond box.x, a_'s rows y >= box.y and b_'s planes z >= box.z are never written.
  in_ = fftwAlloc<float>(rows);
  out_ = fftwAlloc<float>(rows);
  a_ = fftwAlloc<cfloat>(b.z * plane);
  b_ = fftwAlloc<cfloat>(p.sz * plane);
  c_ = fftwAlloc<cfloat>(p.sz * plane);
  std::fill(in_.get(), in_.get() + rows, 0.0f);
  std::fill(a_.get(), a_.get() + b.z * plane, cfloat{});
  std::fill(b_.get(), b_.get() + p.sz * plane, cfloat{});
  // A skipped axis's forward and inverse passes would have multiplied by its length.
  const float scale = static_cast<float>((yActive ? 1 : g.y) * (zActive ? 1 : g.z));
  h_ = fftwAlloc<float>(p.sz * plane);
  for (int64_t z = 0; z < p.sz; ++z)
    for (int64_t y = 0; y < p.sy; ++y)
      for (int64_t x = 0; x < p.hx; ++x)
        h_[(z * p.sy + y) * p.hx + x] = h[((zActive ? z : 0) * g.y + (yActive ? y : 0)) * p.hx + x] * scale;
}

double boxFilterBytes(const Shape3& b, const Shape3& g) {
  // As the constructor allocates with sy = grid.y and sz = grid.z: in_, out_; a_; b_, c_; h_.
  const double plane = static_cast<double>(g.y) * static_cast<double>(g.halfX());
  const double rows = static_cast<double>(b.z) * static_cast<double>(b.y) * static_cast<double>(g.x);
  return 2 * 4 * rows + 8 * static_cast<double>(b.z) * plane + 2 * 8 * static_cast<double>(g.z) * plane +
         4 * static_cast<double>(g.z) * plane;
}

void BoxFilter::apply(float* values) {
  if (gridPlans_) return filterBoxCpu(values, box_, grid_, *gridPlans_, h_.get(), in_.get(), c_.get());
  const BoxFilterPlans& p = *plans_;
  const Shape3 &b = p.box, &g = p.grid;
  for (int64_t r = 0; r < b.z * b.y; ++r) std::copy(values + r * b.x, values + (r + 1) * b.x, in_.get() + r * g.x);
  auto c = [](cfloat* v) { return reinterpret_cast<fftwf_complex*>(v); };
  fftwf_complex* first = p.yActive ? c(a_.get()) : p.zActive ? c(b_.get()) : c(c_.get());
  fftwf_execute_dft_r2c(p.rows, in_.get(), first);
  if (p.yActive) fftwf_execute_dft(p.planesForward, c(a_.get()), p.zActive ? c(b_.get()) : c(c_.get()));
  if (p.zActive) fftwf_execute_dft(p.columnsForward, c(b_.get()), c(c_.get()));
  float* s = reinterpret_cast<float*>(c_.get());
  const float* h = h_.get();
  const int64_t count = p.sz * p.sy * p.hx;
  for (int64_t k = 0; k < count; ++k) {
    s[2 * k] *= h[k];
    s[2 * k + 1] *= h[k];
  }
  if (p.zActive) fftwf_execute_dft(p.columnsInverse, c(c_.get()), c(c_.get()));
  if (p.yActive) fftwf_execute_dft(p.planesInverse, c(c_.get()), c(c_.get()));
  fftwf_execute_dft_c2r(p.rowsC2R, c(c_.get()), out_.get());
  for (int64_t r = 0; r < b.z * b.y; ++r) std::copy(out_.get() + r * g.x, out_.get() + r * g.x + b.x, values + r * b.x);
}

BoxMoments boxMoments(const float* t, const float* m, int64_t count) {
  double n = 0, s1 = 0, s2 = 0;
  for (int64_t i = 0; i < count; ++i) {
    const double w = m[i], v = t[i];
    n += w;
    s1 += w * v;
    s2 += w * v * v;
  }
  BoxMoments out;
  out.n = n;
  out.mean = n > 0 ? s1 / n : 0;
  const double var = n > 0 ? s2 / n - out.mean * out.mean : 0;
  // A constant template under the mask has no defined normalisation: it scores 0 everywhere.
  out.inverseSigma = n > 0 && var > 1e-10 * (s2 / n) ? 1.0 / std::sqrt(var) : 0.0;
  return out;
}

}  // namespace tme

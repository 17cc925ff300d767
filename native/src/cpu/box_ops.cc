#include "cpu/box_ops.h"

#include <algorithm>
#include <cmath>

#include "match/geometry.h"

namespace tme {

void rotateBoxCpu(float* out, const float* in, const Shape3& b, const RotationParams& r, Interpolation interpolation) {
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

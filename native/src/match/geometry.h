// Template geometry shared by the CPU kernels and the host setup (the compute shaders mirror it):
// centre c = box // 2; t_R(p) = t(c + A^-1 (p - c)) with A the rotation in array order; 0 outside the box.
#pragma once
#include <cmath>
#include <cstdint>

#include "match/kernels.h"
#include "shape.h"

namespace tme {

// R (xyz frame, row-major, active) -> inverse of A = P R P (array order z, y, x): A^-1 = A^T for rotations.
inline RotationParams rotationParams(const double* R) {
  RotationParams out{};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) {
      double a_ji = R[(2 - j) * 3 + (2 - i)];  // A[j][i] = R[2-j][2-i]
      out.inverse[i * 3 + j] = static_cast<float>(a_ji);
    }
  return out;
}

inline float voxelOrZero(const float* v, const Shape3& s, int64_t z, int64_t y, int64_t x) {
  if (z < 0 || y < 0 || x < 0 || z >= s.z || y >= s.y || x >= s.x) return 0.0f;
  return v[(z * s.y + y) * s.x + x];
}

inline float sampleLinear(const float* v, const Shape3& s, float z, float y, float x) {
  float fz = std::floor(z), fy = std::floor(y), fx = std::floor(x);
  int64_t z0 = static_cast<int64_t>(fz), y0 = static_cast<int64_t>(fy), x0 = static_cast<int64_t>(fx);
  float dz = z - fz, dy = y - fy, dx = x - fx;
  if (z0 >= 0 && y0 >= 0 && x0 >= 0 && z0 + 1 < s.z && y0 + 1 < s.y && x0 + 1 < s.x) {
    const float* p = v + (z0 * s.y + y0) * s.x + x0;
    const int64_t sy = s.x, sz = s.x * s.y;
    float c00 = p[0] + dx * (p[1] - p[0]);
    float c01 = p[sy] + dx * (p[sy + 1] - p[sy]);
    float c10 = p[sz] + dx * (p[sz + 1] - p[sz]);
    float c11 = p[sz + sy] + dx * (p[sz + sy + 1] - p[sz + sy]);
    float c0 = c00 + dy * (c01 - c00);
    float c1 = c10 + dy * (c11 - c10);
    return c0 + dz * (c1 - c0);
  }
  if (z0 + 1 < 0 || y0 + 1 < 0 || x0 + 1 < 0 || z0 >= s.z || y0 >= s.y || x0 >= s.x) return 0.0f;
  float out = 0.0f;
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 2; ++b)
      for (int c = 0; c < 2; ++c) {
        float w = (a ? dz : 1 - dz) * (b ? dy : 1 - dy) * (c ? dx : 1 - dx);
        out += w * voxelOrZero(v, s, z0 + a, y0 + b, x0 + c);
      }
  return out;
}

// Catmull-Rom weights for offset t in [0, 1) over taps -1, 0, 1, 2.
inline void catmullRom(float t, float w[4]) {
  float t2 = t * t, t3 = t2 * t;
  w[0] = 0.5f * (-t3 + 2 * t2 - t);
  w[1] = 0.5f * (3 * t3 - 5 * t2 + 2);
  w[2] = 0.5f * (-3 * t3 + 4 * t2 + t);
  w[3] = 0.5f * (t3 - t2);
}

inline float sampleCubic(const float* v, const Shape3& s, float z, float y, float x) {
  float fz = std::floor(z), fy = std::floor(y), fx = std::floor(x);
  int64_t z0 = static_cast<int64_t>(fz), y0 = static_cast<int64_t>(fy), x0 = static_cast<int64_t>(fx);
  if (z0 + 2 < 0 || y0 + 2 < 0 || x0 + 2 < 0 || z0 - 1 >= s.z || y0 - 1 >= s.y || x0 - 1 >= s.x) return 0.0f;
  float wz[4], wy[4], wx[4];
  catmullRom(z - fz, wz);
  catmullRom(y - fy, wy);
  catmullRom(x - fx, wx);
  float out = 0.0f;
  for (int a = 0; a < 4; ++a) {
    float pa = 0.0f;
    for (int b = 0; b < 4; ++b) {
      float pb = 0.0f;
      for (int c = 0; c < 4; ++c) pb += wx[c] * voxelOrZero(v, s, z0 - 1 + a, y0 - 1 + b, x0 - 1 + c);
      pa += wy[b] * pb;
    }
    out += wz[a] * pa;
  }
  return out;
}

// Trilinear sample of a full complex spectrum `t` on a periodic grid (gz, gy, gx) at grid position u, with
// |u| < grid on every axis (so one conditional add wraps an index); out = (re, im). Fourier-space rotation samples
// the template's spectrum this way on both CPU paths (gather.comp mirrors it).
inline void sampleSpectrumLinear(const float* t, int32_t gz, int32_t gy, int32_t gx, float uz, float uy, float ux,
                                 float out[2]) {
  auto wrap = [](int32_t i, int32_t n) { return i < 0 ? i + n : (i >= n ? i - n : i); };
  const float flz = std::floor(uz), fly = std::floor(uy), flx = std::floor(ux);
  const float dz = uz - flz, dy = uy - fly, dx = ux - flx;
  const int32_t z0 = wrap(static_cast<int32_t>(flz), gz), y0 = wrap(static_cast<int32_t>(fly), gy),
                x0 = wrap(static_cast<int32_t>(flx), gx);
  const int32_t z1 = z0 + 1 == gz ? 0 : z0 + 1, y1 = y0 + 1 == gy ? 0 : y0 + 1, x1 = x0 + 1 == gx ? 0 : x0 + 1;
  const float* r00 = t + 2 * (static_cast<int64_t>(z0 * gy + y0) * gx);
  const float* r01 = t + 2 * (static_cast<int64_t>(z0 * gy + y1) * gx);
  const float* r10 = t + 2 * (static_cast<int64_t>(z1 * gy + y0) * gx);
  const float* r11 = t + 2 * (static_cast<int64_t>(z1 * gy + y1) * gx);
  for (int c = 0; c < 2; ++c) {
    const float c00 = r00[2 * x0 + c] + dx * (r00[2 * x1 + c] - r00[2 * x0 + c]);
    const float c01 = r01[2 * x0 + c] + dx * (r01[2 * x1 + c] - r01[2 * x0 + c]);
    const float c10 = r10[2 * x0 + c] + dx * (r10[2 * x1 + c] - r10[2 * x0 + c]);
    const float c11 = r11[2 * x0 + c] + dx * (r11[2 * x1 + c] - r11[2 * x0 + c]);
    const float c0 = c00 + dy * (c01 - c00);
    const float c1 = c10 + dy * (c11 - c10);
    out[c] = c0 + dz * (c1 - c0);
  }
}

// Wrapped tile index of box voxel (z, y, x) when the box centre sits at tile index 0.
inline int64_t wrappedIndex(const Shape3& tile, const Shape3& box, int64_t z, int64_t y, int64_t x) {
  int64_t qz = z - box.z / 2, qy = y - box.y / 2, qx = x - box.x / 2;
  if (qz < 0) qz += tile.z;
  if (qy < 0) qy += tile.y;
  if (qx < 0) qx += tile.x;
  return (qz * tile.y + qy) * tile.x + qx;
}

// The support: the sub-box of the template box, with the same centre (its own index s // 2 is the box's b // 2),
// outside which everything placed into the tile is zero (a mask's reach after rotation). Its first voxel in the box.
inline Shape3 supportOffset(const Shape3& box, const Shape3& support) {
  return {box.z / 2 - support.z / 2, box.y / 2 - support.y / 2, box.x / 2 - support.x / 2};
}

// True when `support` is a centred sub-box of `box` as supportOffset() assumes.
inline bool isCentredSubBox(const Shape3& box, const Shape3& support) {
  auto axis = [](int64_t b, int64_t s) { return s >= 1 && s <= b && s / 2 <= b / 2 && s - 1 - s / 2 <= b - 1 - b / 2; };
  return axis(box.z, support.z) && axis(box.y, support.y) && axis(box.x, support.x);
}

// Signed frequency of index k on an axis of n samples, in cycles per voxel.
inline float signedFrequency(int64_t k, int64_t n) {
  return static_cast<float>(k <= n / 2 ? k : k - n) / static_cast<float>(n);
}

}  // namespace tme

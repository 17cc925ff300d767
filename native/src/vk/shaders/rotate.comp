#version 450
// t_R(p) = t(c + A^-1 (p - c)), c = box // 2, zero outside the box; trilinear or Catmull-Rom.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
layout(local_size_x = 64) in;
layout(std430, binding = 0) writeonly buffer Dst { float dst[]; };
layout(std430, binding = 1) readonly buffer Src { float src[]; };
layout(push_constant) uniform P {
  float m0, m1, m2, m3, m4, m5, m6, m7, m8;
  int bz, by, bx;
  int cubic;
} pc;

float voxel(int z, int y, int x) {
  if (z < 0 || y < 0 || x < 0 || z >= pc.bz || y >= pc.by || x >= pc.bx) return 0.0;
  return src[(z * pc.by + y) * pc.bx + x];
}

void catmullRom(float t, out vec4 w) {
  float t2 = t * t, t3 = t2 * t;
  w = vec4(0.5 * (-t3 + 2.0 * t2 - t), 0.5 * (3.0 * t3 - 5.0 * t2 + 2.0), 0.5 * (-3.0 * t3 + 4.0 * t2 + t),
           0.5 * (t3 - t2));
}

void main() {
  uint count = uint(pc.bz * pc.by * pc.bx);
  GRID_STRIDE(i, count) {
    int x = int(i) % pc.bx;
    int y = (int(i) / pc.bx) % pc.by;
    int z = int(i) / (pc.bx * pc.by);
    float cz = float(pc.bz / 2), cy = float(pc.by / 2), cx = float(pc.bx / 2);
    float dz = float(z) - cz, dy = float(y) - cy, dx = float(x) - cx;
    float qz = cz + pc.m0 * dz + pc.m1 * dy + pc.m2 * dx;
    float qy = cy + pc.m3 * dz + pc.m4 * dy + pc.m5 * dx;
    float qx = cx + pc.m6 * dz + pc.m7 * dy + pc.m8 * dx;
    float fz = floor(qz), fy = floor(qy), fx = floor(qx);
    int z0 = int(fz), y0 = int(fy), x0 = int(fx);
    float v = 0.0;
    if (pc.cubic == 0) {
      float wz = qz - fz, wy = qy - fy, wx = qx - fx;
      float c00 = mix(voxel(z0, y0, x0), voxel(z0, y0, x0 + 1), wx);
      float c01 = mix(voxel(z0, y0 + 1, x0), voxel(z0, y0 + 1, x0 + 1), wx);
      float c10 = mix(voxel(z0 + 1, y0, x0), voxel(z0 + 1, y0, x0 + 1), wx);
      float c11 = mix(voxel(z0 + 1, y0 + 1, x0), voxel(z0 + 1, y0 + 1, x0 + 1), wx);
      v = mix(mix(c00, c01, wy), mix(c10, c11, wy), wz);
    } else {
      vec4 wz, wy, wx;
      catmullRom(qz - fz, wz);
      catmullRom(qy - fy, wy);
      catmullRom(qx - fx, wx);
      for (int a = 0; a < 4; ++a) {
        float pa = 0.0;
        for (int b = 0; b < 4; ++b) {
          float pb = 0.0;
          for (int c = 0; c < 4; ++c) pb += wx[c] * voxel(z0 - 1 + a, y0 - 1 + b, x0 - 1 + c);
          pa += wy[b] * pb;
        }
        v += wz[a] * pa;
      }
    }
    dst[i] = v;
  }
}

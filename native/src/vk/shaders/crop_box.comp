#version 450
// The inverse of place.comp's raw mode: reads a box-sized value back from the wrapped positions of a grid that put
// the box centre at index 0.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
layout(local_size_x = 64) in;
layout(std430, binding = 0) writeonly buffer Dst { float dst[]; };
layout(std430, binding = 1) readonly buffer Src { float src[]; };
layout(push_constant) uniform P { int gz, gy, gx, bz, by, bx; } pc;

void main() {
  uint count = uint(pc.bz * pc.by * pc.bx);
  GRID_STRIDE(i, count) {
    int x = int(i) % pc.bx;
    int y = (int(i) / pc.bx) % pc.by;
    int z = int(i) / (pc.bx * pc.by);
    int qz = z - pc.bz / 2, qy = y - pc.by / 2, qx = x - pc.bx / 2;
    if (qz < 0) qz += pc.gz;
    if (qy < 0) qy += pc.gy;
    if (qx < 0) qx += pc.gx;
    dst[i] = src[(qz * pc.gy + qy) * pc.gx + qx];
  }
}

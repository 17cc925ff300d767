#version 450
// Writes a box-sized value into the tile at the wrapped positions that put the box centre at index 0: only the
// window (sz, sy, sx) of the box starting at (oz, oy, ox), the support outside which the value is zero.
// mode: 0 t, 1 (t - mu) / sigma * m, 2 t m, 3 t^2 m, 4 m.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
layout(local_size_x = 64) in;
layout(std430, binding = 0) writeonly buffer Dst { float dst[]; };
layout(std430, binding = 1) readonly buffer T { float t[]; };
layout(std430, binding = 2) readonly buffer M { float m[]; };
layout(std430, binding = 3) readonly buffer Stats { float stats[]; };
layout(push_constant) uniform P { int tz, ty, tx, bz, by, bx, mode, slot, oz, oy, ox, sz, sy, sx; } pc;

void main() {
  uint count = uint(pc.sz * pc.sy * pc.sx);
  GRID_STRIDE(j, count) {
    int x = int(j) % pc.sx + pc.ox;
    int y = (int(j) / pc.sx) % pc.sy + pc.oy;
    int z = int(j) / (pc.sx * pc.sy) + pc.oz;
    uint i = uint((z * pc.by + y) * pc.bx + x);
    int qz = z - pc.bz / 2, qy = y - pc.by / 2, qx = x - pc.bx / 2;
    if (qz < 0) qz += pc.tz;
    if (qy < 0) qy += pc.ty;
    if (qx < 0) qx += pc.tx;
    float v;
    if (pc.mode == 0) v = t[i];
    else if (pc.mode == 1) v = (t[i] - stats[4 * pc.slot + 1]) * stats[4 * pc.slot + 2] * m[i];
    else if (pc.mode == 2) v = t[i] * m[i];
    else if (pc.mode == 3) v = t[i] * t[i] * m[i];
    else v = m[i];
    dst[(qz * pc.ty + qy) * pc.tx + qx] = v;
  }
}

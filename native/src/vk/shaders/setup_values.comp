#version 450
// The tile's set-up on the device: a real array the target spectra are transformed from. f is the target less a
// constant given as hi + lo (a float64 split in two floats: the tile's mean, for normalised scores), mf the target
// mask (1 without one). mode: 0 f, 1 f^2, 2 f mf, 3 f^2 mf, 4 mf — as prepareTile forms them on the host.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
layout(local_size_x = 256) in;
layout(std430, binding = 0) writeonly buffer Dst { float dst[]; };
layout(std430, binding = 1) readonly buffer F { float f[]; };
layout(std430, binding = 2) readonly buffer M { float m[]; };
layout(push_constant) uniform P { uint count; int mode; int masked; float hi; float lo; } pc;

void main() {
  GRID_STRIDE(i, pc.count) {
    precise float v = (f[i] - pc.hi) - pc.lo;
    precise float r;
    if (pc.mode == 0) r = v;
    else if (pc.mode == 1) r = v * v;
    else if (pc.mode == 2) r = pc.masked != 0 ? v * m[i] : v;
    else if (pc.mode == 3) r = pc.masked != 0 ? (v * v) * m[i] : v * v;
    else r = pc.masked != 0 ? m[i] : 1.0;
    dst[i] = r;
  }
}

#version 450
// dst = a * conj(b * h) on the half spectrum (h real; hasFilter = 0 means h = 1). dst may alias a or b.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
layout(local_size_x = 256) in;
layout(std430, binding = 0) buffer Dst { vec2 dst[]; };
layout(std430, binding = 1) readonly buffer A { vec2 a[]; };
layout(std430, binding = 2) readonly buffer B { vec2 b[]; };
layout(std430, binding = 3) readonly buffer H { float h[]; };
layout(push_constant) uniform P { uint count; int hasFilter; } pc;

void main() {
  GRID_STRIDE(i, pc.count) {
    vec2 x = a[i];
    vec2 y = b[i];
    if (pc.hasFilter != 0) y *= h[i];
    dst[i] = vec2(x.x * y.x + x.y * y.y, x.y * y.x - x.x * y.y);
  }
}

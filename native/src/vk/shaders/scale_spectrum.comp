#version 450
// s *= h on a half spectrum (h real): the template filter on its own grid.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
layout(local_size_x = 256) in;
layout(std430, binding = 0) buffer S { vec2 s[]; };
layout(std430, binding = 1) readonly buffer H { float h[]; };
layout(push_constant) uniform P { uint count; } pc;

void main() {
  GRID_STRIDE(i, pc.count) { s[i] *= h[i]; }
}

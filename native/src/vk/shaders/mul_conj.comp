#version 450
// dst = a * conj(b) on the half spectrum. dst may alias a or b.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
layout(local_size_x = 256) in;
layout(std430, binding = 0) buffer Dst { vec2 dst[]; };
layout(std430, binding = 1) readonly buffer A { vec2 a[]; };
layout(std430, binding = 2) readonly buffer B { vec2 b[]; };
// halfA: a is stored as float16 pairs (one uint each, packHalf2x16), times scaleA (MatchJob::halfSpectra).
layout(std430, binding = 3) readonly buffer AHalf { uint ah[]; };
layout(push_constant) uniform P { uint count; int halfA; float scaleA; } pc;

void main() {
  GRID_STRIDE(i, pc.count) {
    vec2 x;
    if (pc.halfA != 0) x = unpackHalf2x16(ah[i]) * pc.scaleA;
    else x = a[i];
    vec2 y = b[i];
    dst[i] = vec2(x.x * y.x + x.y * y.y, x.y * y.x - x.x * y.y);
  }
}

#version 450
// A set-up spectrum as float16 pairs (MatchJob::halfSpectra), in two passes: pass 0 the largest |value| as an ordered
// key (keys[0], zero-filled first); pass 1 each value times `scale` (the power of two the host chose from it, as
// halfSpectrumConstant does) packed into one uint.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer Src { vec2 src[]; };
layout(std430, binding = 1) buffer Keys { uint keys[]; };
layout(std430, binding = 2) writeonly buffer Dst { uint dst[]; };
layout(push_constant) uniform P { uint count; int pass; float scale; } pc;
shared uint best[256];

void main() {
  if (pc.pass == 1) {
    GRID_STRIDE(i, pc.count) { dst[i] = packHalf2x16(src[i] * pc.scale); }
    return;
  }
  uint k = 0u;
  GRID_STRIDE(i, pc.count) { k = max(k, floatKey(max(abs(src[i].x), abs(src[i].y)))); }
  best[gl_LocalInvocationID.x] = k;
  barrier();
  for (uint s = 128u; s > 0u; s >>= 1u) {
    if (gl_LocalInvocationID.x < s) best[gl_LocalInvocationID.x] = max(best[gl_LocalInvocationID.x], best[gl_LocalInvocationID.x + s]);
    barrier();
  }
  if (gl_LocalInvocationID.x == 0u) atomicMax(keys[0], best[0]);
}

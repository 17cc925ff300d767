#version 450
// keys[slot] = max over src (as an ordered uint key); the caller zero-fills keys first.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer Src { float src[]; };
layout(std430, binding = 1) buffer Keys { uint keys[]; };
layout(push_constant) uniform P { uint count; int slot; } pc;
shared uint best[256];

void main() {
  uint k = 0u;
  GRID_STRIDE(i, pc.count) { k = max(k, floatKey(src[i])); }
  best[gl_LocalInvocationID.x] = k;
  barrier();
  for (uint s = 128u; s > 0u; s >>= 1u) {
    if (gl_LocalInvocationID.x < s) best[gl_LocalInvocationID.x] = max(best[gl_LocalInvocationID.x], best[gl_LocalInvocationID.x + s]);
    barrier();
  }
  if (gl_LocalInvocationID.x == 0u) atomicMax(keys[pc.slot], best[0]);
}

#version 450
// One workgroup: adds finalise's per-workgroup partial sums of this rotation (s, s^2) into the rotation's slot,
// with Kahan compensation across the partials (the host adds the slots in float64).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer Partials { float partials[]; };
layout(std430, binding = 1) buffer Sums { float sums[]; };  // 2 per rotation of the batch
layout(push_constant) uniform P { uint groups; int rotationLocal; } pc;
shared float ss[256];
shared float sq[256];

void main() {
  uint l = gl_LocalInvocationID.x;
  precise float s = 0.0, cs = 0.0, q = 0.0, cq = 0.0;
  for (uint g = l; g < pc.groups; g += 256u) {
    precise float y = partials[2u * g] - cs;
    precise float t = s + y;
    cs = (t - s) - y;
    s = t;
    y = partials[2u * g + 1u] - cq;
    t = q + y;
    cq = (t - q) - y;
    q = t;
  }
  ss[l] = s;
  sq[l] = q;
  barrier();
  for (uint k = 128u; k > 0u; k >>= 1u) {
    if (l < k) {
      ss[l] += ss[l + k];
      sq[l] += sq[l + k];
    }
    barrier();
  }
  if (l == 0u) {
    sums[2 * pc.rotationLocal] = ss[0];
    sums[2 * pc.rotationLocal + 1] = sq[0];
  }
}

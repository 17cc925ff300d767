#version 450
// One workgroup: n = sum m, mu = sum m t / n, 1/sigma with sigma^2 = sum m (t - mu)^2 / n (two passes for
// accuracy). Writes stats[4 slot + 0..2] = (n, mu, 1/sigma or 0).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
layout(local_size_x = 256) in;
layout(std430, binding = 0) buffer Stats { float stats[]; };
layout(std430, binding = 1) readonly buffer T { float t[]; };
layout(std430, binding = 2) readonly buffer M { float m[]; };
layout(push_constant) uniform P { int count; int slot; } pc;
shared float sa[256];
shared float sb[256];
shared float sc[256];

void reduce3() {
  barrier();
  for (uint s = 128u; s > 0u; s >>= 1u) {
    if (gl_LocalInvocationID.x < s) {
      sa[gl_LocalInvocationID.x] += sa[gl_LocalInvocationID.x + s];
      sb[gl_LocalInvocationID.x] += sb[gl_LocalInvocationID.x + s];
      sc[gl_LocalInvocationID.x] += sc[gl_LocalInvocationID.x + s];
    }
    barrier();
  }
}

void main() {
  uint l = gl_LocalInvocationID.x;
  float n = 0.0, s1 = 0.0;
  for (uint i = l; i < uint(pc.count); i += 256u) {
    n += m[i];
    s1 += m[i] * t[i];
  }
  sa[l] = n; sb[l] = s1; sc[l] = 0.0;
  reduce3();
  float total = sa[0];
  float mu = total > 0.0 ? sb[0] / total : 0.0;
  barrier();
  float s2 = 0.0, sq = 0.0;
  for (uint i = l; i < uint(pc.count); i += 256u) {
    float d = t[i] - mu;
    s2 += m[i] * d * d;
    sq += m[i] * t[i] * t[i];
  }
  sa[l] = s2; sb[l] = sq; sc[l] = 0.0;
  reduce3();
  if (l == 0u) {
    float var = total > 0.0 ? sa[0] / total : 0.0;
    float meanSq = total > 0.0 ? sb[0] / total : 0.0;
    stats[4 * pc.slot + 0] = total;
    stats[4 * pc.slot + 1] = mu;
    stats[4 * pc.slot + 2] = (total > 0.0 && var > 1e-10 * meanSq) ? inversesqrt(var) : 0.0;
  }
}

#version 450
// flc-sphere's scale map from the target's sums under the unrotated mask at every voxel (unnormalised C2Rs):
// e1 = N Σ f m, e2 = N Σ f^2 m, k = 1 / (N Σ m). scale = 1 / (N Σm σ) with σ^2 = E[f^2] - E[f]^2, 0 where σ^2 is at
// most flatVariance (the host's rule). The target is centred, so E[f]^2 is small against E[f^2] and one fma (the
// square exact before the subtraction) keeps float32 within ~1e-7 of the host's float64.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
layout(local_size_x = 256) in;
layout(std430, binding = 0) buffer Scale { float scale[]; };  // in: e2; out: the scale map
layout(std430, binding = 1) readonly buffer E1 { float e1[]; };
layout(push_constant) uniform P { uint count; float k; float nk; float flatVariance; } pc;

void main() {
  GRID_STRIDE(i, pc.count) {
    precise float m1 = e1[i] * pc.k;
    precise float m2 = scale[i] * pc.k;
    precise float var = fma(-m1, m1, m2);
    scale[i] = var > pc.flatVariance && pc.k > 0.0 ? 1.0 / (pc.nk * sqrt(var)) : 0.0;
  }
}

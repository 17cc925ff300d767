#version 450
// Score from the inverse FFTs, then the running best/argmax (strictly greater wins: ties keep the lower rotation
// index) and the statistics of this rotation: per-workgroup sums of s and s^2 (reduce_stats.comp adds them into
// the rotation's slot) and the rotation's maximum.
// score: 0 cc, 1 flc-sphere, 2 flc, 3 mcc (same formulas as the CPU path, cpu_kernels.cc). Only the voxels of the
// region the caller reads (a tile's core) are scored; the maps outside keep what they held.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer O0 { float o0[]; };
layout(std430, binding = 1) readonly buffer O1 { float o1[]; };
layout(std430, binding = 2) readonly buffer O2 { float o2[]; };
layout(std430, binding = 3) readonly buffer O3 { float o3[]; };
layout(std430, binding = 4) readonly buffer O4 { float o4[]; };
layout(std430, binding = 5) readonly buffer O5 { float o5[]; };
layout(std430, binding = 6) readonly buffer Scale { float scaleMap[]; };
layout(std430, binding = 7) readonly buffer Stats { float stats[]; };
layout(std430, binding = 8) buffer Best { float best[]; };
layout(std430, binding = 9) buffer Arg { int arg[]; };
layout(std430, binding = 10) buffer Partials { float partials[]; };  // 2 per workgroup: sum, sumSq of this rotation
layout(std430, binding = 11) buffer RotMax { uint rotMax[]; };
layout(std430, binding = 12) readonly buffer Keys { uint keys[]; };
layout(std430, binding = 13) readonly buffer Weights { float weights[]; };  // 1: counts in the statistics
// voxelStats: per voxel Σ score and Σ score² over rotations (background normalisation), in the same pass.
layout(std430, binding = 14) buffer VoxelSum { float voxelSum[]; };
layout(std430, binding = 15) buffer VoxelSumSq { float voxelSumSq[]; };
layout(push_constant) uniform P {
  uint count;
  int score;
  float scalar;
  float invN;
  int rotationLocal;
  int rotationGlobal;
  int weighted;
  float flatVariance;  // flc / mcc: a local variance of the target at most this scores 0
  // The region the caller reads (outputRegion; the whole tile by default): count = rz * ry * rx voxels.
  uint z0, y0, x0, ry, rx, ty, tx;
  int voxelStats;
} pc;
shared float ss[256];
shared float sq[256];
shared uint sm[256];

float flcScore(float cc, float f2, float f1, float k) {
  float e1 = f1 * k, e2 = f2 * k;
  float var = e2 - e1 * e1;
  if (!(var > pc.flatVariance) || !(var > 0.0)) return 0.0;
  return clamp(cc * k / sqrt(var), -1.0, 1.0);
}

float mccScore(float overlap, float sf, float sff, float st, float stt, float sft, float invN, float maxOverlap) {
  float o = overlap * invN;
  if (!(o >= 0.3 * maxOverlap) || !(o > 0.0)) return 0.0;
  sf *= invN; sff *= invN; st *= invN; stt *= invN; sft *= invN;
  float varF = sff - sf * sf / o;
  float varT = stt - st * st / o;
  if (!(varF > pc.flatVariance * o) || !(varT > 1e-5 * stt) || !(varF > 0.0) || !(varT > 0.0)) return 0.0;
  float s = (sft - sf * st / o) / sqrt(varF * varT);
  return clamp(s, -1.0, 1.0);
}

void main() {
  float k = 0.0;
  float maxOverlap = 0.0;
  if (pc.score == 2) {
    float n = stats[0];
    k = n > 0.0 ? pc.invN / n : 0.0;
  } else if (pc.score == 3) {
    maxOverlap = keyFloat(keys[0]) * pc.invN;
  }
  float sum = 0.0, sumSq = 0.0;
  uint key = 0u;
  GRID_STRIDE(j, pc.count) {
    uint r = j / pc.rx;
    uint i = ((r / pc.ry + pc.z0) * pc.ty + r % pc.ry + pc.y0) * pc.tx + j % pc.rx + pc.x0;
    float s;
    if (pc.score == 0) s = o0[i] * pc.scalar;
    else if (pc.score == 1) s = clamp(o0[i] * scaleMap[i], -1.0, 1.0);
    else if (pc.score == 2) s = flcScore(o0[i], o1[i], o2[i], k);
    else s = mccScore(o0[i], o1[i], o2[i], o3[i], o4[i], o5[i], pc.invN, maxOverlap);
    float w = pc.weighted != 0 ? weights[i] : 1.0;
    sum += w * s;
    sumSq += w * s * s;
    if (w != 0.0) key = max(key, floatKey(s));
    if (pc.voxelStats != 0) {
      voxelSum[i] += s;
      voxelSumSq[i] += s * s;
    }
    if (s > best[i]) {
      best[i] = s;
      arg[i] = pc.rotationGlobal;
    }
  }
  uint l = gl_LocalInvocationID.x;
  ss[l] = sum; sq[l] = sumSq; sm[l] = key;
  barrier();
  for (uint s = 128u; s > 0u; s >>= 1u) {
    if (l < s) {
      ss[l] += ss[l + s];
      sq[l] += sq[l + s];
      sm[l] = max(sm[l], sm[l + s]);
    }
    barrier();
  }
  if (l == 0u) {
    partials[2u * gl_WorkGroupID.x] = ss[0];
    partials[2u * gl_WorkGroupID.x + 1u] = sq[0];
    atomicMax(rotMax[pc.rotationLocal], sm[0]);
  }
}

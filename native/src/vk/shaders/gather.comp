#version 450
// Fourier-space rotation: dst(k) = F(k) * conj(T(A^-1 k)), T the template's oversampled full spectrum
// (centre at index 0), sampled trilinearly with periodic wrap; k runs over the tile's half spectrum.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
layout(local_size_x = 256) in;
layout(std430, binding = 0) writeonly buffer Dst { vec2 dst[]; };
layout(std430, binding = 1) readonly buffer F { vec2 f[]; };
layout(std430, binding = 2) readonly buffer T { vec2 t[]; };
// halfF: F is stored as float16 pairs (one uint each, packHalf2x16), times scaleF (MatchJob::halfSpectra).
layout(std430, binding = 3) readonly buffer FHalf { uint fh[]; };
layout(push_constant) uniform P {
  float m0, m1, m2, m3, m4, m5, m6, m7, m8;
  int tz, ty, tx, gz, gy, gx;
  int halfF;
  float scaleF;
} pc;

vec2 at(int z, int y, int x) { return t[(z * pc.gy + y) * pc.gx + x]; }
// GLSL leaves % undefined for negative operands.
int wrapi(int i, int n) { return i >= 0 ? i % n : (n - 1) - ((-i - 1) % n); }
float freq(int k, int n) { return float(k <= n / 2 ? k : k - n) / float(n); }

void main() {
  int hx = pc.tx / 2 + 1;
  uint count = uint(pc.tz * pc.ty * hx);
  GRID_STRIDE(i, count) {
    int kx = int(i) % hx;
    int ky = (int(i) / hx) % pc.ty;
    int kz = int(i) / (hx * pc.ty);
    // The tile's Nyquist planes are ambiguous under rotation (+1/2 and -1/2 land on different template
    // frequencies), which would make the spectrum non-Hermitian: they are set to zero on both paths.
    if ((pc.tx % 2 == 0 && kx == pc.tx / 2) || (pc.ty % 2 == 0 && ky == pc.ty / 2) || (pc.tz % 2 == 0 && kz == pc.tz / 2)) {
      dst[i] = vec2(0.0);
      continue;
    }
    float fz = freq(kz, pc.tz), fy = freq(ky, pc.ty), fx = float(kx) / float(pc.tx);
    float uz = (pc.m0 * fz + pc.m1 * fy + pc.m2 * fx) * float(pc.gz);
    float uy = (pc.m3 * fz + pc.m4 * fy + pc.m5 * fx) * float(pc.gy);
    float ux = (pc.m6 * fz + pc.m7 * fy + pc.m8 * fx) * float(pc.gx);
    float flz = floor(uz), fly = floor(uy), flx = floor(ux);
    float dz = uz - flz, dy = uy - fly, dx = ux - flx;
    int z0 = wrapi(int(flz), pc.gz), y0 = wrapi(int(fly), pc.gy), x0 = wrapi(int(flx), pc.gx);
    int z1 = z0 + 1 == pc.gz ? 0 : z0 + 1, y1 = y0 + 1 == pc.gy ? 0 : y0 + 1, x1 = x0 + 1 == pc.gx ? 0 : x0 + 1;
    vec2 c00 = mix(at(z0, y0, x0), at(z0, y0, x1), dx);
    vec2 c01 = mix(at(z0, y1, x0), at(z0, y1, x1), dx);
    vec2 c10 = mix(at(z1, y0, x0), at(z1, y0, x1), dx);
    vec2 c11 = mix(at(z1, y1, x0), at(z1, y1, x1), dx);
    vec2 v = mix(mix(c00, c01, dy), mix(c10, c11, dy), dz);
    vec2 a;
    if (pc.halfF != 0) a = unpackHalf2x16(fh[i]) * pc.scaleF;
    else a = f[i];
    dst[i] = vec2(a.x * v.x + a.y * v.y, a.y * v.x - a.x * v.y);
  }
}

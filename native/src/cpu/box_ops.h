// Operations on one template box, shared by the CPU kernels of the search and the orientation scorer, so that a
// rotation re-scored at a pick is computed exactly as the search computed it.
#pragma once
#include <cstdint>

#include "cpu/fftw_plans.h"
#include "match/job.h"
#include "match/kernels.h"
#include "shape.h"

namespace tme {

// out(p) = in(c + A^-1 (p - c)), c = box // 2, interpolated, 0 outside the box. 16 voxels of a row at a time
// where AVX-512 runs (unless TME_BOX_OPS=reference), bitwise equal to rotateBoxReference (one voxel at a time).
void rotateBoxCpu(float* out, const float* in, const Shape3& box, const RotationParams& rotation,
                  Interpolation interpolation);
void rotateBoxReference(float* out, const float* in, const Shape3& box, const RotationParams& rotation,
                        Interpolation interpolation);

// TME_BOX_OPS=reference: the CPU kernels and the orientation scorer use the reference box operations.
bool referenceBoxOps();

// The box filtered on `grid` (>= box): placed with its centre at index 0, R2C, times h (a real half spectrum of the
// grid, already divided by the grid's voxel count), C2R, read back. In place; `real` and `spectrum` are scratch of
// the grid's sizes. The plain full-grid transform: BoxFilter computes the same, the tests' reference.
void filterBoxCpu(float* box, const Shape3& boxShape, const Shape3& grid, const FftwPlanPair& plans, const float* h,
                  float* real, cfloat* spectrum);

// filterBoxCpu at a fraction of its cost, to float rounding: pruned passes (fftwBoxFilterPlans) and none along an
// axis where h is constant; with TME_BOX_OPS=reference, filterBoxCpu itself (the full grid). One per worker (scratch
// arrays); h is copied.
class BoxFilter {
 public:
  BoxFilter(const Shape3& box, const Shape3& grid, const float* h, double* planMs = nullptr);
  void apply(float* box);  // in place

 private:
  const BoxFilterPlans* plans_ = nullptr;  // pruned
  const FftwPlanPair* gridPlans_ = nullptr;  // reference: the grid's full transforms (in_ and c_ hold the grid)
  Shape3 box_, grid_;
  FftwArray<float> in_, out_, h_;
  FftwArray<cfloat> a_, b_, c_;
};

// Bytes one BoxFilter holds for `box` on `grid` (at most: every axis active), for the memory estimate.
double boxFilterBytes(const Shape3& box, const Shape3& grid);

// Sum of the mask, mean of t under it, and 1/sigma (0 when t is constant under the mask).
struct BoxMoments {
  double n = 0, mean = 0, inverseSigma = 0;
};
BoxMoments boxMoments(const float* t, const float* m, int64_t count);

}  // namespace tme

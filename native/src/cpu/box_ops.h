// Operations on one template box, shared by the CPU kernels of the search and the orientation scorer, so that a
// rotation re-scored at a pick is computed exactly as the search computed it.
#pragma once
#include <cstdint>

#include "cpu/fftw_plans.h"
#include "match/job.h"
#include "match/kernels.h"
#include "shape.h"

namespace tme {

// out(p) = in(c + A^-1 (p - c)), c = box // 2, interpolated, 0 outside the box.
void rotateBoxCpu(float* out, const float* in, const Shape3& box, const RotationParams& rotation,
                  Interpolation interpolation);

// The box filtered on `grid` (>= box): placed with its centre at index 0, R2C, times h (a real half spectrum of the
// grid, already divided by the grid's voxel count), C2R, read back. In place; `real` and `spectrum` are scratch of
// the grid's sizes.
void filterBoxCpu(float* box, const Shape3& boxShape, const Shape3& grid, const FftwPlanPair& plans, const float* h,
                  float* real, cfloat* spectrum);

// Sum of the mask, mean of t under it, and 1/sigma (0 when t is constant under the mask).
struct BoxMoments {
  double n = 0, mean = 0, inverseSigma = 0;
};
BoxMoments boxMoments(const float* t, const float* m, int64_t count);

}  // namespace tme

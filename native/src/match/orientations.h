// Re-scoring rotations at single positions (local orientation refinement around picks): each query is the target's
// box-sized patch at a pick and a list of rotations; every score is computed exactly as the search computes it at
// that voxel (same rotation, filter, normalisation and flat rule), by direct sums over the box instead of an FFT.
#pragma once
#include <atomic>
#include <cstdint>
#include <limits>
#include <vector>

#include "match/job.h"
#include "shape.h"

namespace tme {

struct OrientationJob {
  int threads = 0;  // 0 = hardware concurrency
  Shape3 templateShape;
  std::vector<float> templ, mask;
  std::vector<float> filter;  // real half spectrum of filterShape, as MatchJob::filter; empty = none
  Shape3 filterShape;
  Score score = Score::FlcSphere;  // cc, flc-sphere or flc
  Interpolation interpolation = Interpolation::Linear;
  double targetMean = std::numeric_limits<double>::quiet_NaN();      // as MatchJob (NaN: 0 and every voxel counts)
  double targetVariance = std::numeric_limits<double>::quiet_NaN();
  // Query q: patch q (templateShape voxels: the target at [x - c, x - c + box) for the pick's voxel x) and the
  // rotations [offsets[q], offsets[q + 1]) (9 numbers each, xyz frame, active).
  std::vector<float> patches;
  std::vector<double> rotations;
  std::vector<int64_t> offsets;
};

// One score per rotation, in the order of `rotations`. Throws TmeNativeError (ERR_TME_CANCELLED when cancelled).
std::vector<float> scoreOrientations(const OrientationJob& job, const std::atomic<bool>& cancelled);

}  // namespace tme

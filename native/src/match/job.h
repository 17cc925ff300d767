// One matching job as the TS engine prepared it. Native code trusts the science (filters, rotations) and checks
// only what its own memory safety depends on (lengths, shapes), in validateJob().
#pragma once
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "shape.h"

namespace tme {

enum class Score { Cc, FlcSphere, Flc, Mcc };
enum class Interpolation { Linear, Cubic };
enum class RotationMode { Real, Fourier };
// The CPU slab correlator's z products: chosen by the cost model, or forced (comparisons, benchmarks).
enum class ZSums { Auto, Spectral, Direct };

inline const char* scoreName(Score s) {
  switch (s) {
    case Score::Cc: return "cc";
    case Score::FlcSphere: return "flc-sphere";
    case Score::Flc: return "flc";
    case Score::Mcc: return "mcc";
  }
  return "?";
}

// A read-only input array: the job's own copy, or a view of memory the caller keeps unchanged and alive until the
// job has finished (runMatch pins the JS typed arrays so a 512x512x200 tile and its maps are not copied).
template <class T>
class InputArray {
 public:
  InputArray() = default;
  InputArray(std::vector<T> owned) : owned_(std::move(owned)) {}  // NOLINT: implicit, like the vector it holds
  static InputArray view(const T* data, size_t size) {
    InputArray a;
    a.view_ = data;
    a.viewSize_ = size;
    a.viewing_ = true;
    return a;
  }
  const T* data() const { return viewing_ ? view_ : owned_.data(); }
  size_t size() const { return viewing_ ? viewSize_ : owned_.size(); }
  bool empty() const { return size() == 0; }
  const T* begin() const { return data(); }
  const T* end() const { return data() + size(); }
  const T& operator[](size_t i) const { return data()[i]; }

 private:
  std::vector<T> owned_;
  const T* view_ = nullptr;
  size_t viewSize_ = 0;
  bool viewing_ = false;
};

struct MatchJob {
  std::string device = "cpu";  // "cpu" or a Vulkan device index as a string
  int threads = 0;             // CPU worker threads; 0 = hardware concurrency
  Shape3 targetShape;          // tile, already a fast FFT shape; correlation is circular on it
  InputArray<float> target;
  Shape3 templateShape;        // box, centre c = box // 2
  std::vector<float> templ;
  std::vector<float> mask;                // templateShape, 0..1
  // The centred sub-box of the template box outside which everything correlated is zero: the reach of the mask
  // after rotation (the template is rotated and filtered in the whole box, then normalised and multiplied by the
  // mask). The tile then needs support - 1 voxels of padding, not box - 1. Zero = the box.
  Shape3 supportShape;
  InputArray<float> targetMask;           // targetShape (mcc), empty = all ones
  // targetShape, 1 where a voxel counts in the score statistics (sum, sumSq, count, per-rotation max), 0 where
  // not (padding, tile overlap, outside the target mask); empty = every voxel counts.
  InputArray<uint8_t> statsMask;
  // The template's Fourier filter (wedge, CTF, band-pass, whitening): real, half-spectrum layout of filterShape.
  // Every rotated template is filtered on that grid (its box placed with the centre at index 0) BEFORE it is
  // normalised under its mask, so the kernel that is correlated is the same for every tile and has the box's support.
  // Empty = none.
  std::vector<float> filter;
  Shape3 filterShape;                     // >= templateShape per axis; fast FFT sizes
  // The whole target's mean and variance (not the tile's, so that tiles agree): normalised scores correlate f - mean,
  // and a voxel whose local variance under the mask is at most kFlatVariance x targetVariance scores 0. NaN = take
  // them from this tile.
  double targetMean = std::numeric_limits<double>::quiet_NaN();
  double targetVariance = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> rotations;          // 9 n, row-major, xyz frame, active
  int64_t rotationStart = 0, rotationEnd = 0;  // [start, end) into rotations
  // The voxels the caller will read (a tile's core): a path may leave the maps outside it as they were (the CPU
  // slab correlator skips those planes, rows and voxels). regionShape zero = the whole tile. Voxels outside count in
  // no statistic, so statsMask should be zero there.
  Shape3 regionStart, regionShape;
  InputArray<float> initialScores;        // targetShape or empty
  InputArray<int32_t> initialIndices;     // targetShape or empty
  // The initial maps' own memory, writable (runMatch sets both when both initial maps are given; the caller gets
  // the call's maps back in them): the CPU's first worker then continues its maps there and the others are merged
  // into them (MatchResult::mapsInPlace), so no tile-sized pair is allocated and copied in, nor copied back out.
  float* continueScores = nullptr;
  int32_t* continueIndices = nullptr;
  Score score = Score::FlcSphere;
  Interpolation interpolation = Interpolation::Linear;
  RotationMode rotationMode = RotationMode::Real;
  int fourierOversampling = 2;            // template spectrum grid = nextFast(oversampling * box)
  bool fullTransforms = false;            // CPU: FFTW's whole 3D transforms, no pruning (comparisons)
  ZSums zSums = ZSums::Auto;              // CPU slab correlator: z products by transforms or direct sums
  int rotationsPerSubmit = 0;             // Vulkan: rotations per command buffer, 0 = adapted to ~20 ms
  // Vulkan: the tile's constant spectra (the target's) stored as float16 pairs, read by the products: half their
  // memory and read traffic, ~3 significant digits per frequency. The CPU path refuses it.
  bool halfSpectra = false;
  bool keepSetup = false;                 // keep the tile's set-up for the next call on the same inputs
  // Vulkan: the tile's set-up (target spectra, σ map) on the host with FFTW and uploaded, as the CPU path makes it,
  // instead of on the device (comparisons).
  bool hostSetup = false;
  // Per voxel Σ score and Σ score² over this call's rotations (background normalisation: the voxel's mean and σ over
  // rotations), accumulated in the finalise pass. Float32 sums: measured against float64 on 10^4 rotations of
  // Gaussian scores, σ's relative error is ~1e-6 where the mean is 0 (the particles and the noise) and grows as
  // (mean/σ)² ε √R: 1.5e-3 at mean 0.5, σ 0.02 and 2 % at mean 0.8, σ 0.01 — voxels that match every rotation,
  // whose normalised score is small whatever σ's last digits, so no shifted or compensated form (a third map).
  bool voxelStats = false;
};

// The job's support, zero meaning the whole template box.
inline Shape3 supportOf(const Shape3& support, const Shape3& box) { return support.voxels() > 0 ? support : box; }

// A local standard deviation below 1 % of the target's counts as flat (zero-filled borders, masked or empty
// regions): there the normalised scores are 0/0 and float error alone would make them anything. 1 % because the
// local variance comes from FFT sums whose float32 error is ~1e-6 of the target's variance.
constexpr double kFlatVariance = 1e-4;

struct MatchResult {
  std::vector<float> scores;
  std::vector<int32_t> indices;
  bool mapsInPlace = false;  // the maps were written into MatchJob::continueScores / continueIndices; these are empty
  double sum = 0, sumSq = 0, count = 0;
  std::vector<float> perRotationMax;
  std::vector<double> perRotationSum, perRotationSumSq;  // over the counted voxels, per rotation of the batch
  // MatchJob::voxelStats: targetShape, Σ score and Σ score² over the call's rotations in the region (0 outside it
  // on Vulkan; the CPU's full-transform paths also sum outside it); empty otherwise.
  std::vector<float> voxelSum, voxelSumSq;
  double setupMs = 0, planMs = 0, loopMs = 0;
  bool setupReused = false;  // the tile's set-up came from the previous call (MatchJob::keepSetup)
  double rotationMinMs = 0, rotationMedianMs = 0;  // one rotation on one worker (robust to a busy machine)
  std::string device;
};

struct MemoryEstimate {
  double deviceBytes = 0;     // on the device (GPU) for Vulkan, 0 for the CPU path
  double hostBytes = 0;       // host RAM during the job (inputs, setup, outputs; all of it for the CPU path)
  double largestBufferBytes = 0;  // the biggest single storage buffer (lavapipe: 128 MiB per binding)
};

// Throws ERR_TME_INVALID_OPTION / ERR_TME_UNSUPPORTED_SIZE when lengths or shapes do not fit together.
void validateJob(const MatchJob& job);

}  // namespace tme

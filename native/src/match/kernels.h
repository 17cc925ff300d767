// The kernels of the matching loop, one interface for both paths. The orchestration (match_loop.cc) is written
// once against it; CpuKernels (FFTW3f + C++ loops) and VkKernels (VkFFT + compute shaders) implement it. Buffers
// are handles; on Vulkan every call between beginRotation() and endRotation() is recorded into one command
// buffer, so a rotation costs one submission and no host round trip.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "errors.h"
#include "match/job.h"
#include "shape.h"

namespace tme {

using BufId = int;
constexpr BufId kNoBuffer = -1;

enum class PlaceMode : int32_t {
  Raw = 0,               // t
  Normalised = 1,        // (t - mu) / sigma * m   (mu, sigma from boxStats)
  TimesMask = 2,         // t * m
  SquaredTimesMask = 3,  // t^2 * m
  Mask = 4,              // m
};

// Rotation as used by the kernels: inverse of the array-order matrix (maps output offsets to template offsets).
struct RotationParams {
  float inverse[9];
};

struct KernelConfig {
  Score score = Score::FlcSphere;
  Shape3 tile;
  Shape3 box;
  Shape3 support;      // MatchJob::supportShape: what place() writes into the tile (the rest of the box is zero)
  Shape3 fourierGrid;  // oversampled template spectrum grid (Fourier mode), else zeros
  Shape3 filterGrid;   // the grid filterBox() works on (MatchJob::filterShape), else zeros
  Interpolation interpolation = Interpolation::Linear;
  int64_t rotationCount = 0;  // of the batch (perRotationMax length)
  Shape3 regionStart, regionShape;  // the voxels the caller reads (MatchJob); a path may skip the rest
  bool fullTransforms = false;      // CPU: no pruned transforms (MatchJob)
  bool voxelStats = false;          // keep Σ score and Σ score² per voxel over rotations (MatchJob::voxelStats)
};

// Statistics slots written by boxStats (4 floats each): [n = sum m, mu, 1/sigma (0 if sigma ~ 0), reserved].
// reduceMax's maximum is what the next finalise (mcc) uses as the maximum overlap: the CPU keeps it in index 3 of
// the slot, Vulkan as an ordered key in a device buffer (atomics work on integers); neither reads it back.
struct FinaliseParams {
  Score score = Score::Cc;
  BufId outs[6] = {kNoBuffer, kNoBuffer, kNoBuffer, kNoBuffer, kNoBuffer, kNoBuffer};
  BufId scaleMap = kNoBuffer;  // flc-sphere: 1 / (N n sigma_local) per voxel (0 where sigma ~ 0)
  float scalar = 1.0f;         // cc: 1 / N
  BufId stats = kNoBuffer;     // flc: n of the rotated mask (slot 0); mcc: max overlap (slot 1, index 3)
  BufId statsWeights = kNoBuffer;  // per voxel 1 (counts in the statistics) or 0; none = every voxel counts
  int32_t rotationLocal = 0;   // index into perRotationMax
  int32_t rotationGlobal = 0;  // value stored in the index map
  float invN = 1.0f;
  // flc / mcc: a local variance of the target at most this scores 0 (kFlatVariance x the target's variance).
  float flatVariance = 0.0f;
};

// What the tile's set-up on the device needs besides the job's arrays, found on the host (match_loop.cc prepareTile).
struct DeviceSetupInputs {
  double shift = 0;               // subtracted from the target (its mean for normalised scores, else 0)
  std::vector<float> tileFilter;  // Fourier mode with a filter: on the tile's half spectrum, 1/N folded in
  double maskSum = 0;             // flc-sphere: Σ of the template mask
  double flatVariance = 0;        // flc-sphere: a local variance at most this scales to 0
};

class Kernels {
 public:
  virtual ~Kernels() = default;
  virtual std::string deviceName() const = 0;

  // Read-only job constants (template box, mask, spectra, filter); the host copy outlives the job.
  virtual BufId constant(const void* host, size_t bytes) = 0;
  // A constant half spectrum (`count` complex values) stored as float16 pairs (MatchJob::halfSpectra), read by
  // mulConj (as `a`) and gatherFourier (as `F`). Only Vulkan has it (validateJob refuses it on the CPU).
  virtual BufId halfSpectrumConstant(const float* /*host*/, size_t /*count*/) {
    fail(ErrorCode::InvalidOption, "spectrumPrecision 'half' needs a Vulkan device");
  }
  virtual BufId allocate(size_t bytes) = 0;
  // The tile's set-up made on the device (Vulkan, after createFftSlots, with slot 0's transforms): the target uploaded
  // once and its spectra (spectra[0..2], as prepareTile's TileSetup::spectra; float16 with job.halfSpectra) and
  // flc-sphere's scale map (*scale) computed there. `key` (MatchJob::keepSetup's hash, 0 = none) lets the device keep
  // them for the next call on the same inputs; true when they were the kept ones. Only Vulkan has it.
  virtual bool prepareOnDevice(const MatchJob& /*job*/, const DeviceSetupInputs& /*in*/, uint64_t /*key*/,
                               BufId* /*spectra*/, BufId* /*scale*/) {
    fail(ErrorCode::InvalidOption, "the tile's set-up on the device needs a Vulkan device");
  }
  // FFT slots: slot k owns S_k (half spectrum) and O_k (real output of c2r); the first `forwardCount` slots also
  // own P_k, the zero-filled placement grid that r2c reads (only the box's wrapped positions are ever written).
  virtual void createFftSlots(int count, int forwardCount, double* planMs) = 0;
  virtual BufId slotP(int k) const = 0;
  virtual BufId slotS(int k) const = 0;
  virtual BufId slotO(int k) const = 0;
  // Running maps and statistics of this worker.
  virtual void initMaps(const float* scores, const int32_t* indices) = 0;
  // initMaps for maps the caller owns and lets this worker write (MatchJob::continueScores): continued where they
  // lie, not copied; false where the path keeps its maps elsewhere (the caller then calls initMaps). readMaps
  // then fills only the per-rotation values.
  virtual bool adoptMaps(float* scores, int32_t* indices) { return false; }
  // Hands the maps over (the kernels keep none) where the path holds them in host vectors; false elsewhere. After
  // it, readMaps takes null maps and fills only the per-rotation values.
  virtual bool takeMaps(std::vector<float>* scores, std::vector<int32_t>* indices) { return false; }
  // The maps, and per rotation of the batch (rotationCount entries each): Σ score and Σ score² over the counted
  // voxels (0 for rotations another worker evaluated) and the maximum.
  virtual void readMaps(float* scores, int32_t* indices, double* perRotationSum, double* perRotationSumSq,
                        float* perRotationMax) = 0;

  // config.voxelStats: the per-voxel Σ score and Σ score² over this worker's rotations (zero outside the region),
  // handed over (moved where the path holds them on the host, else downloaded). Only after the last rotation.
  virtual bool takeVoxelStats(std::vector<float>* sum, std::vector<float>* sumSq) = 0;

  // A submission: every kernel call between begin and end is recorded together (Vulkan: one command buffer,
  // submitted and waited for at end). Several rotations may share one submission, up to maxRotationsPerSubmit().
  virtual void beginRotation() = 0;
  virtual void endRotation() = 0;
  virtual int maxRotationsPerSubmit() const { return 1; }

  virtual void rotateBox(BufId dst, BufId src, const RotationParams& rotation) = 0;
  // box <- the box filtered on config.filterGrid: placed with its centre at index 0, R2C, times `filter` (real half
  // spectrum of the grid, already divided by the grid's voxel count), C2R, the box's positions read back. In place.
  virtual void filterBox(BufId box, BufId filter) = 0;
  virtual void boxStats(BufId stats, int slot, BufId t, BufId m) = 0;
  virtual void place(BufId dstTile, BufId t, BufId m, BufId stats, int statsSlot, PlaceMode mode) = 0;
  virtual void r2c(int slot) = 0;
  virtual void c2r(int slot) = 0;
  // dst = a * conj(b) on the half spectrum. dst may alias a or b.
  virtual void mulConj(BufId dst, BufId a, BufId b) = 0;
  // dst = F * conj(T(A^T k)): T the oversampled template spectrum (full complex, fourierGrid).
  virtual void gatherFourier(BufId dst, BufId F, BufId spectrum, const RotationParams& rotation) = 0;
  virtual void reduceMax(BufId src, BufId stats, int statsSlot) = 0;
  // A rotation's correlations and finalise in one call, where a path fuses them (the CPU's slab correlator): cc /
  // flc-sphere the template placed as place() would with `mode` (or, with `fourier`, its spectrum `spectrum` sampled
  // at that rotation); flc the normalised template (t, m rotated) and the rotated mask; mcc (t, m rotated) the
  // rotated mask, t m and t^2 m. False where the path does not fuse; the caller then runs the separate kernels.
  virtual bool correlateFused(BufId t, BufId m, BufId stats, PlaceMode mode, BufId spectrum,
                              const RotationParams* fourier, const FinaliseParams& params) {
    return false;
  }
  virtual void finalise(const FinaliseParams& params) = 0;
};

}  // namespace tme

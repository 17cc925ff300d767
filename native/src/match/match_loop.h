// The matching loop: host setup of the tile (once per job), then every rotation of the batch through the
// Kernels of the chosen path, keeping the best score and its rotation index per voxel.
#pragma once
#include <atomic>
#include <functional>
#include <string>

#include "match/job.h"

namespace tme {

using ProgressFn = std::function<void(int64_t done, int64_t total)>;

// Runs on a worker thread; throws TmeNativeError (ERR_TME_CANCELLED when `cancelled` becomes true).
// Frees the set-up a call with keepSetup kept on `device` (MatchJob::device; empty: on every device).
void releaseKeptSetup(const std::string& device);

MatchResult runMatchJob(const MatchJob& job, const ProgressFn& progress, const std::atomic<bool>& cancelled);

struct MemoryQuery {
  std::string device = "cpu";
  Shape3 targetShape, templateShape;
  Shape3 supportShape;  // zero = the template box (MatchJob::supportShape)
  Score score = Score::FlcSphere;
  RotationMode rotationMode = RotationMode::Real;
  int threads = 0;
  int fourierOversampling = 2;
  bool filter = true;
  bool targetMask = false;
  bool initialMaps = false;
  bool statsMask = false;
  bool voxelStats = false;  // two more float maps per worker (and on the host for the result)
  bool halfSpectra = false; // MatchJob::halfSpectra
  bool hostSetup = false;   // MatchJob::hostSetup
  bool fullTransforms = false;
  ZSums zSums = ZSums::Auto;
  // A call's own check (runMatchJob), against the memory free now: the caller's arrays exist already and a set-up
  // kept from the previous call is reused, so MemAvailable no longer counts them and only the rest must fit. (Without
  // this a tile of half the machine, planned when it started, was refused at its second batch: its own first batch
  // had taken the room.)
  double heldInputBytes = 0;  // the caller's arrays, as passed
  bool constantsHeld = false;
};

struct MemoryVerdict {
  MemoryEstimate estimate;
  double deviceLimitBytes = 0;  // 0.9 x device-local heap (Vulkan) or 0.9 x available host RAM (CPU)
  double bufferLimitBytes = 0;  // maxStorageBufferRange (Vulkan), 0 = none
  int workers = 1;
  bool fits = true;
  std::string reason;  // why not, with the numbers
};

MemoryVerdict estimateMatchMemory(const MemoryQuery& query);

// FFT counts per rotation (documented in README): {forward, inverse}.
void fftCountsPerRotation(Score score, RotationMode mode, int* forward, int* inverse);

}  // namespace tme

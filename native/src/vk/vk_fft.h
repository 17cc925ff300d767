// VkFFT applications kept per device (see vk_fft.cc). Callers hold the device's mutex.
#pragma once
#include <memory>
#include <vector>

#include "vk/vk_device.h"

namespace tme {

// The matching kernels' FFT buffers and applications for one tile shape: kept between jobs on the device.
struct FftSlot {
  VkBuf p, s, o;
  VkFftAppPtr forward, inverse;
};

struct SlotSet {
  Shape3 shape;
  std::vector<FftSlot> slots;
  int forwardCount = 0;
};

// The set the last job on device `deviceIndex` left (empty at first).
std::unique_ptr<SlotSet>& cachedSlotSet(int deviceIndex);
void destroySlotSet(DeviceContext& ctx, std::unique_ptr<SlotSet>& set);

// One R2C/C2R application pair on one real and one spectrum buffer, per (device, shape): the standalone transforms,
// and the template filter's grid in the kernels.
struct FftPair {
  VkBuf real, spec;
  VkFftAppPtr forward, inverse;
};
FftPair& fftPair(DeviceContext& ctx, const Shape3& shape, double* planMs);

// Every FFT application and buffer kept for the device (shutdown).
void releaseDeviceFfts(DeviceContext& ctx);

// A tile's set-up made on the device (VkKernels::prepareOnDevice): its spectra and flc-sphere's scale map, kept for
// the next job on the device with the same inputs (MatchJob::keepSetup, matched by `key`).
struct KeptSetup {
  uint64_t key = 0;
  bool half = false;            // spectra as float16 pairs
  VkBuf spectra[3], scale;      // as TileSetup::spectra / scale; unused ones empty
  float halfScale[3] = {1, 1, 1};  // what multiplies a float16 spectrum back
};
// The set-up the last job on device `deviceIndex` kept (null when none); guarded by the device's mutex.
std::unique_ptr<KeptSetup>& keptSetup(int deviceIndex);
void destroyKeptSetup(DeviceContext& ctx, std::unique_ptr<KeptSetup>& kept);
// Whether a release was asked (vkReleaseKeptSetup) while a job held the device; clears the request.
bool takeKeptSetupRelease(int deviceIndex);

}  // namespace tme

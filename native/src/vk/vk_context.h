// Vulkan instance and devices, shared by every job of the process. The instance is created lazily; when the
// loader or every ICD is missing, listing devices returns none (with the reason) and the CPU path still works.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "match/kernels.h"

namespace tme {

struct VkDeviceInfo {
  int index = 0;
  std::string name;
  std::string type;  // 'discrete-gpu' | 'integrated-gpu' | 'virtual-gpu' | 'cpu' | 'other'
  uint64_t memoryBytes = 0;  // largest device-local heap
  uint64_t maxStorageBufferRange = 0;
  uint32_t apiVersion = 0, driverVersion = 0, vendorId = 0, deviceId = 0;
  std::string driverName, driverInfo;  // VK_KHR_driver_properties ("NVIDIA", "550.54.14"); empty without it
};

// All physical devices; `error` receives why there are none (no loader, no ICD) when that is the case.
std::vector<VkDeviceInfo> vkListDevices(std::string* error);

// Kernels on device `index` (throws ERR_TME_NO_DEVICE for an unknown index).
std::unique_ptr<Kernels> makeVkKernels(int index, const KernelConfig& config);

// Standalone FFTs for tests and benchmarks (one app pair per shape, cached).
void vkFftForward(int index, const Shape3& shape, const float* in, float* outInterleaved, double* planMs);
void vkFftInverse(int index, const Shape3& shape, const float* inInterleaved, float* out, double* planMs);
// Times (ms, min over repeats) of R2C + C2R pairs and each alone, measured as submit + wait on the host.
struct FftTiming {
  double planMs = 0, pairMs = 0, r2cMs = 0, c2rMs = 0, pairMedianMs = 0;
};
FftTiming vkBenchFftPair(int index, const Shape3& shape, int repeats);

// Frees the tile set-up a job kept on device `index` (every device: -1); a device busy with a job drops it when
// that job ends, so the caller never waits for one.
void vkReleaseKeptSetup(int index);

// Releases every Vulkan object (process exit).
void vkShutdown();

}  // namespace tme

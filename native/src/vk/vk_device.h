// One Vulkan logical device with its compute queue, command pool, fence and a reusable command buffer, plus
// storage buffers. Used by one job at a time (DeviceContext::mutex).
#pragma once
#include "vk/vk_loader.h"

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "errors.h"
#include "shape.h"

namespace tme {

// VkResult -> ERR_TME_DEVICE_MEMORY for allocation failures, ERR_TME_DEVICE otherwise.
void checkVk(VkResult result, const char* what);

struct VkBuf {
  VkBuffer buffer = VK_NULL_HANDLE;
  VkDeviceMemory memory = VK_NULL_HANDLE;
  VkDeviceSize size = 0;
  void* mapped = nullptr;  // host-visible memory stays mapped (lavapipe, integrated GPUs, ReBAR)
};

struct Pipeline {
  VkDescriptorSetLayout setLayout = VK_NULL_HANDLE;
  VkPipelineLayout layout = VK_NULL_HANDLE;
  VkPipeline pipeline = VK_NULL_HANDLE;
  int bindings = 0;
};

struct DeviceContext {
  int index = 0;
  std::string name;
  VkPhysicalDevice physical = VK_NULL_HANDLE;
  VkPhysicalDeviceProperties properties{};
  VkPhysicalDeviceMemoryProperties memory{};
  VkDevice device = VK_NULL_HANDLE;
  VkQueue queue = VK_NULL_HANDLE;
  uint32_t queueFamily = 0;
  VkCommandPool pool = VK_NULL_HANDLE;
  VkFence fence = VK_NULL_HANDLE;
  VkCommandBuffer cmd = VK_NULL_HANDLE;
  std::mutex mutex;  // one job (or FFT helper call) at a time
  std::map<std::string, Pipeline> pipelines;

  VkBuf createBuffer(VkDeviceSize bytes, const char* what);
  void destroyBuffer(VkBuf& b);
  void upload(VkBuf& b, const void* data, size_t bytes);
  void download(const VkBuf& b, void* data, size_t bytes);
  void fillZero(VkBuf& b);
  void begin();        // reset + begin `cmd`
  void submitWait();   // end + submit + wait + reset fence
  void barrier();      // full compute/transfer memory barrier in `cmd`
  const Pipeline& pipeline(const std::string& name, const uint32_t* spirv, size_t bytes, int bindings,
                           uint32_t pushBytes);
  ~DeviceContext();
};

// Shared context for device `index` (created on first use; throws ERR_TME_NO_DEVICE).
DeviceContext& deviceContext(int index);

// VkFFT: one application per (real buffer, spectrum buffer, direction): VkFFT 1.2 rebinds descriptors at record
// time, so one application recorded on two different buffers in one command buffer computes garbage.
struct VkFftApp;
struct VkFftAppDeleter {
  void operator()(VkFftApp* app) const;
};
using VkFftAppPtr = std::unique_ptr<VkFftApp, VkFftAppDeleter>;
// forward: real -> spectrum (R2C); else spectrum -> real (C2R, unnormalised; destroys the spectrum).
VkFftAppPtr createVkFftApp(DeviceContext& ctx, const Shape3& shape, VkBuf& real, VkBuf& spectrum, bool forward,
                           double* planMs);
void appendVkFft(VkFftApp& app, VkCommandBuffer cmd);

}  // namespace tme

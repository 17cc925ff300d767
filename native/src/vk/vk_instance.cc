// The Vulkan instance and its devices, shared by every job of the process: created lazily; when the loader or every
// ICD is missing, listing devices returns none (with the reason) and the CPU path still works. Also the registry of
// DeviceContexts, and the shutdown that releases them.
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "vk/vk_context.h"
#include "vk/vk_device.h"
#include "vk/vk_fft.h"

namespace tme {

void checkVk(VkResult result, const char* what) {
  if (result == VK_SUCCESS) return;
  std::string message = std::string(what) + " failed (VkResult " + std::to_string(static_cast<int>(result)) + ")";
  if (result == VK_ERROR_OUT_OF_DEVICE_MEMORY || result == VK_ERROR_OUT_OF_HOST_MEMORY ||
      result == VK_ERROR_TOO_MANY_OBJECTS)
    fail(ErrorCode::DeviceMemory, message);
  if (result == VK_ERROR_DEVICE_LOST) fail(ErrorCode::Device, message + ": device lost");
  fail(ErrorCode::Device, message);
}

namespace {

std::mutex registryMutex;
VkInstance instance = VK_NULL_HANDLE;
bool instanceTried = false;
std::string instanceError;
std::vector<VkPhysicalDevice> physicals;
// Never destroyed by static destructors (a worker may still run at exit); vkShutdown() releases what is idle.
std::map<int, std::unique_ptr<DeviceContext>>& contexts = *new std::map<int, std::unique_ptr<DeviceContext>>();

bool ensureInstanceLocked() {
  if (instanceTried) return instance != VK_NULL_HANDLE;
  instanceTried = true;
  if (!loadVulkanLibrary(&instanceError)) return false;
  VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
  app.pApplicationName = "tme";
  app.apiVersion = VK_API_VERSION_1_1;
  VkInstanceCreateInfo info{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
  info.pApplicationInfo = &app;
  VkResult r = vkCreateInstance(&info, nullptr, &instance);
  if (r != VK_SUCCESS) {
    instance = VK_NULL_HANDLE;
    instanceError = r == VK_ERROR_INCOMPATIBLE_DRIVER ? "no Vulkan driver (ICD) found"
                                                      : "vkCreateInstance failed (VkResult " + std::to_string(r) + ")";
    return false;
  }
  if (!loadVulkanInstanceFunctions(instance, &instanceError)) {
    instance = VK_NULL_HANDLE;  // without its entry points the instance cannot even be destroyed safely
    return false;
  }
  uint32_t count = 0;
  vkEnumeratePhysicalDevices(instance, &count, nullptr);
  physicals.resize(count);
  if (count > 0) vkEnumeratePhysicalDevices(instance, &count, physicals.data());
  if (count == 0) instanceError = "no Vulkan physical device";
  return true;
}

const char* typeName(VkPhysicalDeviceType t) {
  switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete-gpu";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated-gpu";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual-gpu";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "cpu";
    default: return "other";
  }
}

uint64_t deviceLocalBytes(const VkPhysicalDeviceMemoryProperties& m) {
  uint64_t best = 0;
  for (uint32_t i = 0; i < m.memoryHeapCount; ++i)
    if (m.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) best = std::max<uint64_t>(best, m.memoryHeaps[i].size);
  return best;
}

// The driver's own name and version string, which say which driver (ICD) serves a device.
void driverNames(VkPhysicalDevice physical, VkDeviceInfo* d) {
  if (vkGetPhysicalDeviceProperties2 == nullptr) return;
  uint32_t count = 0;
  vkEnumerateDeviceExtensionProperties(physical, nullptr, &count, nullptr);
  std::vector<VkExtensionProperties> extensions(count);
  if (count > 0) vkEnumerateDeviceExtensionProperties(physical, nullptr, &count, extensions.data());
  bool has = false;
  for (const VkExtensionProperties& e : extensions) has = has || std::strcmp(e.extensionName, "VK_KHR_driver_properties") == 0;
  if (!has) return;
  VkPhysicalDeviceDriverPropertiesKHR driver{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES_KHR};
  VkPhysicalDeviceProperties2 props{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
  props.pNext = &driver;
  vkGetPhysicalDeviceProperties2(physical, &props);
  d->driverName = driver.driverName;
  d->driverInfo = driver.driverInfo;
}

}  // namespace

std::vector<VkDeviceInfo> vkListDevices(std::string* error) {
  std::lock_guard<std::mutex> lock(registryMutex);
  std::vector<VkDeviceInfo> out;
  if (!ensureInstanceLocked() || physicals.empty()) {
    if (error) *error = instanceError;
    return out;
  }
  for (size_t i = 0; i < physicals.size(); ++i) {
    VkPhysicalDeviceProperties p;
    vkGetPhysicalDeviceProperties(physicals[i], &p);
    VkPhysicalDeviceMemoryProperties m;
    vkGetPhysicalDeviceMemoryProperties(physicals[i], &m);
    VkDeviceInfo d;
    d.index = static_cast<int>(i);
    d.name = p.deviceName;
    d.type = typeName(p.deviceType);
    d.memoryBytes = deviceLocalBytes(m);
    d.maxStorageBufferRange = p.limits.maxStorageBufferRange;
    d.apiVersion = p.apiVersion;
    d.driverVersion = p.driverVersion;
    d.vendorId = p.vendorID;
    d.deviceId = p.deviceID;
    driverNames(physicals[i], &d);
    out.push_back(d);
  }
  return out;
}

DeviceContext& deviceContext(int index) {
  std::lock_guard<std::mutex> lock(registryMutex);
  if (!ensureInstanceLocked() || index < 0 || index >= static_cast<int>(physicals.size()))
    fail(ErrorCode::NoDevice, "no Vulkan device " + std::to_string(index) + " (" + std::to_string(physicals.size()) +
                                  " found" + (instanceError.empty() ? "" : ": " + instanceError) + ")");
  auto found = contexts.find(index);
  if (found != contexts.end()) return *found->second;
  auto ctx = std::make_unique<DeviceContext>();
  ctx->index = index;
  ctx->physical = physicals[index];
  vkGetPhysicalDeviceProperties(ctx->physical, &ctx->properties);
  vkGetPhysicalDeviceMemoryProperties(ctx->physical, &ctx->memory);
  ctx->name = ctx->properties.deviceName;
  uint32_t familyCount = 0;
  vkGetPhysicalDeviceQueueFamilyProperties(ctx->physical, &familyCount, nullptr);
  std::vector<VkQueueFamilyProperties> families(familyCount);
  vkGetPhysicalDeviceQueueFamilyProperties(ctx->physical, &familyCount, families.data());
  bool foundFamily = false;
  for (uint32_t i = 0; i < familyCount; ++i)
    if (families[i].queueFlags & VK_QUEUE_COMPUTE_BIT) {
      ctx->queueFamily = i;
      foundFamily = true;
      break;
    }
  if (!foundFamily) fail(ErrorCode::NoDevice, ctx->name + " has no compute queue");
  float priority = 1.0f;
  VkDeviceQueueCreateInfo q{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
  q.queueFamilyIndex = ctx->queueFamily;
  q.queueCount = 1;
  q.pQueuePriorities = &priority;
  VkDeviceCreateInfo info{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
  info.queueCreateInfoCount = 1;
  info.pQueueCreateInfos = &q;
  checkVk(vkCreateDevice(ctx->physical, &info, nullptr, &ctx->device), "vkCreateDevice");
  vkGetDeviceQueue(ctx->device, ctx->queueFamily, 0, &ctx->queue);
  VkCommandPoolCreateInfo pool{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
  pool.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
  pool.queueFamilyIndex = ctx->queueFamily;
  checkVk(vkCreateCommandPool(ctx->device, &pool, nullptr, &ctx->pool), "vkCreateCommandPool");
  VkFenceCreateInfo fence{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
  checkVk(vkCreateFence(ctx->device, &fence, nullptr, &ctx->fence), "vkCreateFence");
  VkCommandBufferAllocateInfo alloc{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
  alloc.commandPool = ctx->pool;
  alloc.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  alloc.commandBufferCount = 1;
  checkVk(vkAllocateCommandBuffers(ctx->device, &alloc, &ctx->cmd), "vkAllocateCommandBuffers");
  return *contexts.emplace(index, std::move(ctx)).first->second;
}

void vkShutdown() {
  std::lock_guard<std::mutex> lock(registryMutex);
  bool busy = false;
  for (auto it = contexts.begin(); it != contexts.end();) {
    const int index = it->first;
    DeviceContext& ctx = *it->second;
    // A job still running at exit (process.exit() mid-match) keeps its device: leak it rather than wait.
    std::unique_lock<std::mutex> deviceLock(ctx.mutex, std::try_to_lock);
    if (!deviceLock.owns_lock()) {
      busy = true;
      ++it;
      continue;
    }
    releaseDeviceFfts(ctx);
    deviceLock.unlock();
    it = contexts.erase(it);
  }
  if (busy) return;
  if (instance && vkDestroyInstance) vkDestroyInstance(instance, nullptr);
  instance = VK_NULL_HANDLE;
  instanceTried = false;
  physicals.clear();
}

}  // namespace tme

// Vulkan instance, devices, buffers and pipelines, and the Vulkan implementation of the matching kernels.
#include "vk/vk_context.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>

#include "box_stats_spv.h"
#include "crop_box_spv.h"
#include "finalise_spv.h"
#include "gather_spv.h"
#include "mul_conj_spv.h"
#include "place_spv.h"
#include "reduce_max_spv.h"
#include "reduce_stats_spv.h"
#include "rotate_spv.h"
#include "scale_spectrum_spv.h"
#include "match/geometry.h"
#include "vk/vk_device.h"

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

// ---- DeviceContext ----

VkBuf DeviceContext::createBuffer(VkDeviceSize bytes, const char* what) {
  VkBuf b;
  b.size = std::max<VkDeviceSize>(bytes, 16);
  if (b.size > properties.limits.maxStorageBufferRange)
    fail(ErrorCode::DeviceMemory, std::string(what) + " needs " + std::to_string(b.size) + " bytes but " + name +
                                      " binds at most " + std::to_string(properties.limits.maxStorageBufferRange) +
                                      " per storage buffer");
  VkBufferCreateInfo info{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
  info.size = b.size;
  info.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
  info.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
  checkVk(vkCreateBuffer(device, &info, nullptr, &b.buffer), "vkCreateBuffer");
  VkMemoryRequirements req;
  vkGetBufferMemoryRequirements(device, b.buffer, &req);
  const VkMemoryPropertyFlags wanted[3] = {
      VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT | VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT,
      VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT,
      VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT};
  VkResult last = VK_ERROR_OUT_OF_DEVICE_MEMORY;
  for (VkMemoryPropertyFlags flags : wanted) {
    for (uint32_t i = 0; i < memory.memoryTypeCount; ++i) {
      if (!(req.memoryTypeBits & (1u << i)) || (memory.memoryTypes[i].propertyFlags & flags) != flags) continue;
      VkMemoryAllocateInfo alloc{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
      alloc.allocationSize = req.size;
      alloc.memoryTypeIndex = i;
      last = vkAllocateMemory(device, &alloc, nullptr, &b.memory);
      if (last != VK_SUCCESS) continue;
      vkBindBufferMemory(device, b.buffer, b.memory, 0);
      if (memory.memoryTypes[i].propertyFlags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT)
        checkVk(vkMapMemory(device, b.memory, 0, VK_WHOLE_SIZE, 0, &b.mapped), "vkMapMemory");
      return b;
    }
  }
  vkDestroyBuffer(device, b.buffer, nullptr);
  fail(ErrorCode::DeviceMemory, std::string("could not allocate ") + std::to_string(bytes) + " bytes for " + what +
                                    " on " + name + " (VkResult " + std::to_string(last) + ")");
}

void DeviceContext::destroyBuffer(VkBuf& b) {
  if (b.mapped) vkUnmapMemory(device, b.memory);
  if (b.buffer) vkDestroyBuffer(device, b.buffer, nullptr);
  if (b.memory) vkFreeMemory(device, b.memory, nullptr);
  b = VkBuf{};
}

void DeviceContext::begin() {
  checkVk(vkResetCommandBuffer(cmd, 0), "vkResetCommandBuffer");
  VkCommandBufferBeginInfo info{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  info.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
  checkVk(vkBeginCommandBuffer(cmd, &info), "vkBeginCommandBuffer");
}

void DeviceContext::submitWait() {
  checkVk(vkEndCommandBuffer(cmd), "vkEndCommandBuffer");
  VkSubmitInfo submit{VK_STRUCTURE_TYPE_SUBMIT_INFO};
  submit.commandBufferCount = 1;
  submit.pCommandBuffers = &cmd;
  checkVk(vkQueueSubmit(queue, 1, &submit, fence), "vkQueueSubmit");
  checkVk(vkWaitForFences(device, 1, &fence, VK_TRUE, std::numeric_limits<uint64_t>::max()), "vkWaitForFences");
  checkVk(vkResetFences(device, 1, &fence), "vkResetFences");
}

void DeviceContext::barrier() {
  VkMemoryBarrier b{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
  b.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
  b.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |
                    VK_ACCESS_TRANSFER_WRITE_BIT;
  vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                       VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &b, 0, nullptr, 0,
                       nullptr);
}

void DeviceContext::upload(VkBuf& b, const void* data, size_t bytes) {
  if (b.mapped) {
    std::memcpy(b.mapped, data, bytes);
    return;
  }
  VkBuf staging = createBuffer(bytes, "a staging buffer");
  if (!staging.mapped) {
    destroyBuffer(staging);
    fail(ErrorCode::Device, name + " has no host-visible memory for staging");
  }
  std::memcpy(staging.mapped, data, bytes);
  begin();
  VkBufferCopy region{0, 0, bytes};
  vkCmdCopyBuffer(cmd, staging.buffer, b.buffer, 1, &region);
  submitWait();
  destroyBuffer(staging);
}

void DeviceContext::download(const VkBuf& b, void* data, size_t bytes) {
  if (b.mapped) {
    std::memcpy(data, b.mapped, bytes);
    return;
  }
  VkBuf staging = createBuffer(bytes, "a staging buffer");
  begin();
  VkBufferCopy region{0, 0, bytes};
  vkCmdCopyBuffer(cmd, b.buffer, staging.buffer, 1, &region);
  submitWait();
  std::memcpy(data, staging.mapped, bytes);
  destroyBuffer(staging);
}

void DeviceContext::fillZero(VkBuf& b) {
  if (b.mapped) {
    std::memset(b.mapped, 0, b.size);
    return;
  }
  begin();
  vkCmdFillBuffer(cmd, b.buffer, 0, VK_WHOLE_SIZE, 0);
  submitWait();
}

const Pipeline& DeviceContext::pipeline(const std::string& key, const uint32_t* spirv, size_t bytes, int bindings,
                                        uint32_t pushBytes) {
  auto found = pipelines.find(key);
  if (found != pipelines.end()) return found->second;
  Pipeline p;
  p.bindings = bindings;
  std::vector<VkDescriptorSetLayoutBinding> b(bindings);
  for (int i = 0; i < bindings; ++i) {
    b[i].binding = static_cast<uint32_t>(i);
    b[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
    b[i].descriptorCount = 1;
    b[i].stageFlags = VK_SHADER_STAGE_COMPUTE_BIT;
  }
  VkDescriptorSetLayoutCreateInfo setInfo{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
  setInfo.bindingCount = static_cast<uint32_t>(bindings);
  setInfo.pBindings = b.data();
  checkVk(vkCreateDescriptorSetLayout(device, &setInfo, nullptr, &p.setLayout), "vkCreateDescriptorSetLayout");
  VkPushConstantRange range{VK_SHADER_STAGE_COMPUTE_BIT, 0, pushBytes};
  VkPipelineLayoutCreateInfo layoutInfo{VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
  layoutInfo.setLayoutCount = 1;
  layoutInfo.pSetLayouts = &p.setLayout;
  layoutInfo.pushConstantRangeCount = 1;
  layoutInfo.pPushConstantRanges = &range;
  checkVk(vkCreatePipelineLayout(device, &layoutInfo, nullptr, &p.layout), "vkCreatePipelineLayout");
  VkShaderModuleCreateInfo moduleInfo{VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
  moduleInfo.codeSize = bytes;
  moduleInfo.pCode = spirv;
  VkShaderModule module;
  checkVk(vkCreateShaderModule(device, &moduleInfo, nullptr, &module), "vkCreateShaderModule");
  VkComputePipelineCreateInfo info{VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
  info.stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO;
  info.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
  info.stage.module = module;
  info.stage.pName = "main";
  info.layout = p.layout;
  VkResult r = vkCreateComputePipelines(device, VK_NULL_HANDLE, 1, &info, nullptr, &p.pipeline);
  vkDestroyShaderModule(device, module, nullptr);
  checkVk(r, "vkCreateComputePipelines");
  return pipelines.emplace(key, p).first->second;
}

DeviceContext::~DeviceContext() {
  if (device == VK_NULL_HANDLE) return;
  vkDeviceWaitIdle(device);
  for (auto& [key, p] : pipelines) {
    vkDestroyPipeline(device, p.pipeline, nullptr);
    vkDestroyPipelineLayout(device, p.layout, nullptr);
    vkDestroyDescriptorSetLayout(device, p.setLayout, nullptr);
  }
  if (fence) vkDestroyFence(device, fence, nullptr);
  if (pool) vkDestroyCommandPool(device, pool, nullptr);
  vkDestroyDevice(device, nullptr);
}

// ---- FFT slots, cached per device between jobs (planning a VkFFT application costs ~0.15 s) ----

namespace {

struct FftSlot {
  VkBuf p, s, o;
  VkFftAppPtr forward, inverse;
};

struct SlotSet {
  Shape3 shape;
  std::vector<FftSlot> slots;
  int forwardCount = 0;
};

struct SlotCache {
  std::unique_ptr<SlotSet> set;
};
std::map<int, SlotCache>& slotCaches = *new std::map<int, SlotCache>();  // guarded by the device's mutex

void destroySlotSet(DeviceContext& ctx, std::unique_ptr<SlotSet>& set) {
  if (!set) return;
  for (FftSlot& s : set->slots) {
    s.forward.reset();
    s.inverse.reset();
    ctx.destroyBuffer(s.p);
    ctx.destroyBuffer(s.s);
    ctx.destroyBuffer(s.o);
  }
  set.reset();
}

// Standalone FFT helper state per (device, shape).
struct FftPair {
  VkBuf real, spec;
  VkFftAppPtr forward, inverse;
};
std::map<std::tuple<int, int64_t, int64_t, int64_t>, std::unique_ptr<FftPair>>& fftPairs =
    *new std::map<std::tuple<int, int64_t, int64_t, int64_t>, std::unique_ptr<FftPair>>();

FftPair& fftPair(DeviceContext& ctx, const Shape3& shape, double* planMs) {
  auto key = std::make_tuple(ctx.index, shape.z, shape.y, shape.x);
  auto found = fftPairs.find(key);
  if (found != fftPairs.end()) return *found->second;
  auto pair = std::make_unique<FftPair>();
  pair->real = ctx.createBuffer(sizeof(float) * shape.voxels(), "the real FFT buffer");
  pair->spec = ctx.createBuffer(8 * shape.spectrumCount(), "the FFT spectrum");
  pair->forward = createVkFftApp(ctx, shape, pair->real, pair->spec, true, planMs);
  pair->inverse = createVkFftApp(ctx, shape, pair->real, pair->spec, false, planMs);
  return *fftPairs.emplace(key, std::move(pair)).first->second;
}

// ---- the kernels ----

struct RotatePush {
  float m[9];
  int32_t bz, by, bx, cubic;
};
struct PlacePush {
  int32_t tz, ty, tx, bz, by, bx, mode, slot;
  int32_t oz, oy, ox, sz, sy, sx;  // the window of the box written (the support; the whole box for the filter)
};
struct MulPush {
  uint32_t count;
};
struct GatherPush {
  float m[9];
  int32_t tz, ty, tx, gz, gy, gx;
};
struct CropPush {
  int32_t gz, gy, gx, bz, by, bx;
};
struct StatsPush {
  int32_t count, slot;
};
struct ReducePush {
  uint32_t count;
  int32_t slot;
};
struct FinalisePush {
  uint32_t count;
  int32_t score;
  float scalar, invN;
  int32_t rotationLocal, rotationGlobal;
  int32_t weighted;
  float flat;
  uint32_t z0, y0, x0, ry, rx, ty, tx;
  int32_t voxelStats;
};

uint32_t groupsFor(int64_t count, uint32_t local) {
  return static_cast<uint32_t>(std::max<int64_t>(1, std::min<int64_t>((count + local - 1) / local, 65535)));
}

// TME_PROFILE=1: every kernel is submitted and waited for on its own and timed (stderr at the end of a job).
// Slower, for tuning only.
struct VkProfile {
  bool on = std::getenv("TME_PROFILE") != nullptr;
  std::map<std::string, double> ms, fastest;
  std::map<std::string, int64_t> calls;
  void report() {
    if (!on) return;
    for (auto& [name, t] : ms)
      std::fprintf(stderr, "tme vk profile %-12s %9.2f ms total %8.3f ms/call %8.3f ms min\n", name.c_str(), t,
                   t / calls[name], fastest[name]);
  }
};

class VkKernels final : public Kernels {
 public:
  VkKernels(DeviceContext& ctx, const KernelConfig& config) : ctx_(ctx), lock_(ctx.mutex), config_(config) {
    VkDescriptorPoolSize size{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 128 * 16};
    VkDescriptorPoolCreateInfo info{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
    info.maxSets = 128;
    info.poolSizeCount = 1;
    info.pPoolSizes = &size;
    checkVk(vkCreateDescriptorPool(ctx_.device, &info, nullptr, &pool_), "vkCreateDescriptorPool");
    dummy_ = add(ctx_.createBuffer(16, "a placeholder"));
    // Workgroup reductions cost barriers, which a CPU driver (lavapipe) runs slowly: there, few groups that each
    // loop over many voxels (measured at 64^3: 1024 groups 71 ms, 16 groups see README); on GPUs enough groups
    // to fill the device.
    const bool cpuDevice = ctx_.properties.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
    finaliseGroups_ = std::min<uint32_t>(groupsFor(config_.tile.voxels(), 256), cpuDevice ? 16 : 4096);
    reduceGroups_ = cpuDevice ? 16 : 1024;
  }

  ~VkKernels() override {
    profile_.report();
    // Keep the FFT slots (and their plans) for the next job of the same shape.
    if (slots_) {
      auto& cache = slotCaches[ctx_.index].set;
      if (cache && cache.get() != slots_.get()) destroySlotSet(ctx_, cache);
      cache = std::move(slots_);
    }
    for (VkBuf& b : owned_) ctx_.destroyBuffer(b);
    if (pool_) vkDestroyDescriptorPool(ctx_.device, pool_, nullptr);
  }

  std::string deviceName() const override { return ctx_.name + " (Vulkan, VkFFT)"; }

  BufId constant(const void* host, size_t bytes) override {
    VkBuf b = ctx_.createBuffer(bytes, "a job constant");
    BufId id = add(b);
    ctx_.upload(buffers_[id], host, bytes);
    return id;
  }

  BufId allocate(size_t bytes) override {
    BufId id = add(ctx_.createBuffer(bytes, "a work buffer"));
    ctx_.fillZero(buffers_[id]);
    return id;
  }

  void createFftSlots(int count, int forwardCount, double* planMs) override {
    if (config_.filterGrid.voxels() > 0) {
      // The template filter's transforms (planned here, not while a rotation is being recorded).
      double filterPlanMs = 0;
      filterPair_ = &fftPair(ctx_, config_.filterGrid, &filterPlanMs);
      if (planMs) *planMs += filterPlanMs;
      filterReal_ = borrow(filterPair_->real);
      filterSpectrum_ = borrow(filterPair_->spec);
    }
    auto& cached = slotCaches[ctx_.index].set;
    if (cached && cached->shape == config_.tile && static_cast<int>(cached->slots.size()) >= count &&
        cached->forwardCount >= forwardCount) {
      slots_ = std::move(cached);
    } else {
      destroySlotSet(ctx_, cached);
      slots_ = std::make_unique<SlotSet>();
      slots_->shape = config_.tile;
      slots_->forwardCount = forwardCount;
      slots_->slots.resize(count);
      const int64_t n = config_.tile.voxels(), nc = config_.tile.spectrumCount();
      for (int k = 0; k < count; ++k) {
        FftSlot& s = slots_->slots[k];
        s.s = ctx_.createBuffer(8 * nc, "a spectrum");
        s.o = ctx_.createBuffer(4 * n, "a correlation map");
        if (k < forwardCount) {
          s.p = ctx_.createBuffer(4 * n, "a template placement grid");
          s.forward = createVkFftApp(ctx_, config_.tile, s.p, s.s, true, planMs);
        }
        s.inverse = createVkFftApp(ctx_, config_.tile, s.o, s.s, false, planMs);
      }
    }
    slotIds_.clear();
    for (int k = 0; k < static_cast<int>(slots_->slots.size()); ++k) {
      FftSlot& s = slots_->slots[k];
      // The placement grids must be zero outside the box (the box may differ from the previous job's).
      if (s.p.buffer) ctx_.fillZero(s.p);
      slotIds_.push_back({s.p.buffer ? borrow(s.p) : kNoBuffer, borrow(s.s), borrow(s.o)});
    }
  }
  BufId slotP(int k) const override { return slotIds_.at(k)[0]; }
  BufId slotS(int k) const override { return slotIds_.at(k)[1]; }
  BufId slotO(int k) const override { return slotIds_.at(k)[2]; }

  void initMaps(const float* scores, const int32_t* indices) override {
    const int64_t n = config_.tile.voxels();
    best_ = add(ctx_.createBuffer(4 * n, "the best-score map"));
    arg_ = add(ctx_.createBuffer(4 * n, "the best-rotation map"));
    accum_ = add(ctx_.createBuffer(8 * finaliseGroups_, "score statistics (one rotation's workgroup sums)"));
    rotationSums_ = add(ctx_.createBuffer(8 * std::max<int64_t>(1, config_.rotationCount), "per-rotation score sums"));
    rotMax_ = add(ctx_.createBuffer(4 * std::max<int64_t>(1, config_.rotationCount), "per-rotation maxima"));
    keys_ = add(ctx_.createBuffer(64, "reduction keys"));
    std::vector<float> s(n, -std::numeric_limits<float>::infinity());
    std::vector<int32_t> a(n, -1);
    if (scores) std::copy(scores, scores + n, s.begin());
    if (indices) std::copy(indices, indices + n, a.begin());
    ctx_.upload(buffers_[best_], s.data(), 4 * n);
    ctx_.upload(buffers_[arg_], a.data(), 4 * n);
    ctx_.fillZero(buffers_[accum_]);
    ctx_.fillZero(buffers_[rotationSums_]);
    ctx_.fillZero(buffers_[rotMax_]);
    ctx_.fillZero(buffers_[keys_]);
    if (config_.voxelStats) {
      voxelSum_ = add(ctx_.createBuffer(4 * n, "the per-voxel score sums over rotations"));
      voxelSumSq_ = add(ctx_.createBuffer(4 * n, "the per-voxel squared-score sums over rotations"));
      ctx_.fillZero(buffers_[voxelSum_]);
      ctx_.fillZero(buffers_[voxelSumSq_]);
    }
  }

  bool takeVoxelStats(std::vector<float>* sum, std::vector<float>* sumSq) override {
    const int64_t n = config_.tile.voxels();
    sum->resize(n);
    sumSq->resize(n);
    ctx_.download(buffers_[voxelSum_], sum->data(), 4 * n);
    ctx_.download(buffers_[voxelSumSq_], sumSq->data(), 4 * n);
    return true;
  }

  void readMaps(float* scores, int32_t* indices, double* perRotationSum, double* perRotationSumSq,
                float* perRotationMax) override {
    const int64_t n = config_.tile.voxels();
    ctx_.download(buffers_[best_], scores, 4 * n);
    ctx_.download(buffers_[arg_], indices, 4 * n);
    std::vector<float> sums(2 * std::max<int64_t>(1, config_.rotationCount));
    ctx_.download(buffers_[rotationSums_], sums.data(), 4 * sums.size());
    for (int64_t r = 0; r < config_.rotationCount; ++r) {
      perRotationSum[r] = sums[2 * r];
      perRotationSumSq[r] = sums[2 * r + 1];
    }
    std::vector<uint32_t> keys(config_.rotationCount);
    if (config_.rotationCount > 0) ctx_.download(buffers_[rotMax_], keys.data(), 4 * config_.rotationCount);
    for (int64_t r = 0; r < config_.rotationCount; ++r) {
      uint32_t k = keys[r];
      if (k == 0) {
        perRotationMax[r] = -std::numeric_limits<float>::infinity();
        continue;
      }
      uint32_t u = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
      std::memcpy(&perRotationMax[r], &u, 4);
    }
  }

  void beginRotation() override { ctx_.begin(); }
  void endRotation() override { ctx_.submitWait(); }
  // On a GPU one rotation can take well under a millisecond: the loop then records several per command buffer
  // (VkFFT re-records on the same buffers, which is safe; only different buffers in one command buffer are not).
  int maxRotationsPerSubmit() const override { return 32; }

  void rotateBox(BufId dst, BufId src, const RotationParams& r) override {
    RotatePush p{};
    std::copy(r.inverse, r.inverse + 9, p.m);
    p.bz = static_cast<int32_t>(config_.box.z);
    p.by = static_cast<int32_t>(config_.box.y);
    p.bx = static_cast<int32_t>(config_.box.x);
    p.cubic = config_.interpolation == Interpolation::Cubic ? 1 : 0;
    dispatch("rotate", rotate_spv, sizeof(rotate_spv), {dst, src}, &p, sizeof(p), groupsFor(config_.box.voxels(), 64));
  }

  void filterBox(BufId box, BufId filter) override {
    const Shape3& g = config_.filterGrid;
    const Shape3& b = config_.box;
    // The C2R of the previous rotation left values all over the grid: clear it, place the box, filter, read back.
    vkCmdFillBuffer(ctx_.cmd, buffers_[filterReal_].buffer, 0, VK_WHOLE_SIZE, 0);
    ctx_.barrier();
    PlacePush place{static_cast<int32_t>(g.z), static_cast<int32_t>(g.y), static_cast<int32_t>(g.x),
                    static_cast<int32_t>(b.z), static_cast<int32_t>(b.y), static_cast<int32_t>(b.x),
                    static_cast<int32_t>(PlaceMode::Raw), 0, 0, 0, 0,
                    static_cast<int32_t>(b.z), static_cast<int32_t>(b.y), static_cast<int32_t>(b.x)};
    dispatch("place", place_spv, sizeof(place_spv), {filterReal_, box, kNoBuffer, kNoBuffer}, &place, sizeof(place),
             groupsFor(b.voxels(), 64));
    timed("filter r2c", [&] {
      appendVkFft(*filterPair_->forward, ctx_.cmd);
      ctx_.barrier();
    });
    MulPush scale{static_cast<uint32_t>(g.spectrumCount())};
    dispatch("scale_spectrum", scale_spectrum_spv, sizeof(scale_spectrum_spv), {filterSpectrum_, filter}, &scale,
             sizeof(scale), groupsFor(g.spectrumCount(), 256));
    timed("filter c2r", [&] {
      appendVkFft(*filterPair_->inverse, ctx_.cmd);
      ctx_.barrier();
    });
    CropPush crop{static_cast<int32_t>(g.z), static_cast<int32_t>(g.y), static_cast<int32_t>(g.x),
                  static_cast<int32_t>(b.z), static_cast<int32_t>(b.y), static_cast<int32_t>(b.x)};
    dispatch("crop_box", crop_box_spv, sizeof(crop_box_spv), {box, filterReal_}, &crop, sizeof(crop),
             groupsFor(b.voxels(), 64));
  }

  void boxStats(BufId stats, int slot, BufId t, BufId m) override {
    StatsPush p{static_cast<int32_t>(config_.box.voxels()), slot};
    dispatch("box_stats", box_stats_spv, sizeof(box_stats_spv), {stats, t, m}, &p, sizeof(p), 1);
  }

  void place(BufId dstTile, BufId t, BufId m, BufId stats, int statsSlot, PlaceMode mode) override {
    const Shape3& sup = config_.support;
    const Shape3 o = supportOffset(config_.box, sup);
    PlacePush p{static_cast<int32_t>(config_.tile.z), static_cast<int32_t>(config_.tile.y),
                static_cast<int32_t>(config_.tile.x), static_cast<int32_t>(config_.box.z),
                static_cast<int32_t>(config_.box.y),  static_cast<int32_t>(config_.box.x),
                static_cast<int32_t>(mode),           statsSlot,
                static_cast<int32_t>(o.z),            static_cast<int32_t>(o.y),
                static_cast<int32_t>(o.x),            static_cast<int32_t>(sup.z),
                static_cast<int32_t>(sup.y),          static_cast<int32_t>(sup.x)};
    dispatch("place", place_spv, sizeof(place_spv), {dstTile, t, m, stats}, &p, sizeof(p),
             groupsFor(sup.voxels(), 64));
  }

  void r2c(int slot) override {
    timed("r2c", [&] {
      appendVkFft(*slots_->slots.at(slot).forward, ctx_.cmd);
      ctx_.barrier();
    });
  }
  void c2r(int slot) override {
    timed("c2r", [&] {
      appendVkFft(*slots_->slots.at(slot).inverse, ctx_.cmd);
      ctx_.barrier();
    });
  }

  void mulConj(BufId dst, BufId a, BufId b) override {
    MulPush p{static_cast<uint32_t>(config_.tile.spectrumCount())};
    dispatch("mul_conj", mul_conj_spv, sizeof(mul_conj_spv), {dst, a, b}, &p, sizeof(p),
             groupsFor(config_.tile.spectrumCount(), 256));
  }

  void gatherFourier(BufId dst, BufId F, BufId spectrum, const RotationParams& r) override {
    GatherPush p{};
    std::copy(r.inverse, r.inverse + 9, p.m);
    p.tz = static_cast<int32_t>(config_.tile.z);
    p.ty = static_cast<int32_t>(config_.tile.y);
    p.tx = static_cast<int32_t>(config_.tile.x);
    p.gz = static_cast<int32_t>(config_.fourierGrid.z);
    p.gy = static_cast<int32_t>(config_.fourierGrid.y);
    p.gx = static_cast<int32_t>(config_.fourierGrid.x);
    dispatch("gather", gather_spv, sizeof(gather_spv), {dst, F, spectrum}, &p, sizeof(p),
             groupsFor(config_.tile.spectrumCount(), 256));
  }

  void reduceMax(BufId src, BufId /*stats*/, int /*statsSlot*/) override {
    // The maximum stays on the device as an ordered key (keys_[0]); finalise reads it there.
    vkCmdFillBuffer(ctx_.cmd, buffers_[keys_].buffer, 0, VK_WHOLE_SIZE, 0);
    ctx_.barrier();
    ReducePush p{static_cast<uint32_t>(config_.tile.voxels()), 0};
    dispatch("reduce_max", reduce_max_spv, sizeof(reduce_max_spv), {src, keys_}, &p, sizeof(p),
             std::min<uint32_t>(groupsFor(config_.tile.voxels(), 256), reduceGroups_));
  }

  void finalise(const FinaliseParams& fp) override {
    FinalisePush p{};
    const Shape3 &a = config_.regionStart, &r = config_.regionShape;
    p.count = static_cast<uint32_t>(r.voxels());
    p.z0 = static_cast<uint32_t>(a.z);
    p.y0 = static_cast<uint32_t>(a.y);
    p.x0 = static_cast<uint32_t>(a.x);
    p.ry = static_cast<uint32_t>(r.y);
    p.rx = static_cast<uint32_t>(r.x);
    p.ty = static_cast<uint32_t>(config_.tile.y);
    p.tx = static_cast<uint32_t>(config_.tile.x);
    p.score = static_cast<int32_t>(fp.score);
    p.scalar = fp.scalar;
    p.invN = fp.invN;
    p.rotationLocal = fp.rotationLocal;
    p.rotationGlobal = fp.rotationGlobal;
    p.weighted = fp.statsWeights == kNoBuffer ? 0 : 1;
    p.flat = fp.flatVariance;
    p.voxelStats = config_.voxelStats ? 1 : 0;
    std::vector<BufId> b = {fp.outs[0], fp.outs[1], fp.outs[2], fp.outs[3], fp.outs[4], fp.outs[5],
                            fp.score == Score::FlcSphere ? fp.scaleMap : kNoBuffer,
                            fp.stats, best_, arg_, accum_, rotMax_, keys_, fp.statsWeights, voxelSum_, voxelSumSq_};
    dispatch("finalise", finalise_spv, sizeof(finalise_spv), b, &p, sizeof(p), finaliseGroups_);
    ReducePush sums{finaliseGroups_, fp.rotationLocal};
    dispatch("reduce_stats", reduce_stats_spv, sizeof(reduce_stats_spv), {accum_, rotationSums_}, &sums, sizeof(sums), 1);
  }

 private:
  template <typename F>
  void timed(const char* name, F&& record) {
    if (!profile_.on) {
      record();
      return;
    }
    ctx_.submitWait();
    ctx_.begin();
    auto start = std::chrono::steady_clock::now();
    record();
    ctx_.submitWait();
    const double t = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    ctx_.begin();
    profile_.ms[name] += t;
    profile_.calls[name]++;
    auto f = profile_.fastest.find(name);
    if (f == profile_.fastest.end() || t < f->second) profile_.fastest[name] = t;
  }

  BufId add(const VkBuf& b) {
    buffers_.push_back(b);
    owned_.push_back(b);
    return static_cast<BufId>(buffers_.size() - 1);
  }
  BufId borrow(const VkBuf& b) {
    buffers_.push_back(b);
    return static_cast<BufId>(buffers_.size() - 1);
  }

  void dispatch(const char* name, const uint32_t* spirv, size_t bytes, const std::vector<BufId>& bufs,
                const void* push, uint32_t pushBytes, uint32_t groups) {
    const Pipeline& p = ctx_.pipeline(name, spirv, bytes, static_cast<int>(bufs.size()), pushBytes);
    std::vector<VkBuffer> handles;
    for (BufId id : bufs) handles.push_back(buffers_.at(id == kNoBuffer ? dummy_ : id).buffer);
    auto key = std::make_pair(std::string(name), handles);
    auto found = sets_.find(key);
    VkDescriptorSet set;
    if (found != sets_.end()) {
      set = found->second;
    } else {
      VkDescriptorSetAllocateInfo alloc{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
      alloc.descriptorPool = pool_;
      alloc.descriptorSetCount = 1;
      alloc.pSetLayouts = &p.setLayout;
      checkVk(vkAllocateDescriptorSets(ctx_.device, &alloc, &set), "vkAllocateDescriptorSets");
      std::vector<VkDescriptorBufferInfo> infos(handles.size());
      std::vector<VkWriteDescriptorSet> writes(handles.size());
      for (size_t i = 0; i < handles.size(); ++i) {
        infos[i] = {handles[i], 0, VK_WHOLE_SIZE};
        writes[i] = {VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
        writes[i].dstSet = set;
        writes[i].dstBinding = static_cast<uint32_t>(i);
        writes[i].descriptorCount = 1;
        writes[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
        writes[i].pBufferInfo = &infos[i];
      }
      vkUpdateDescriptorSets(ctx_.device, static_cast<uint32_t>(writes.size()), writes.data(), 0, nullptr);
      sets_.emplace(key, set);
    }
    timed(name, [&] {
      vkCmdBindPipeline(ctx_.cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p.pipeline);
      vkCmdBindDescriptorSets(ctx_.cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p.layout, 0, 1, &set, 0, nullptr);
      vkCmdPushConstants(ctx_.cmd, p.layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, pushBytes, push);
      vkCmdDispatch(ctx_.cmd, groups, 1, 1);
      ctx_.barrier();
    });
  }

  VkProfile profile_;
  DeviceContext& ctx_;
  std::unique_lock<std::mutex> lock_;
  KernelConfig config_;
  VkDescriptorPool pool_ = VK_NULL_HANDLE;
  std::vector<VkBuf> buffers_;  // by BufId (owned and borrowed)
  std::vector<VkBuf> owned_;
  std::unique_ptr<SlotSet> slots_;
  std::vector<std::array<BufId, 3>> slotIds_;
  std::map<std::pair<std::string, std::vector<VkBuffer>>, VkDescriptorSet> sets_;
  FftPair* filterPair_ = nullptr;  // filterBox's grid transforms (the device's cached pair for that shape)
  BufId filterReal_ = kNoBuffer, filterSpectrum_ = kNoBuffer;
  BufId dummy_ = kNoBuffer, best_ = kNoBuffer, arg_ = kNoBuffer, accum_ = kNoBuffer, rotMax_ = kNoBuffer,
        keys_ = kNoBuffer, rotationSums_ = kNoBuffer, voxelSum_ = kNoBuffer, voxelSumSq_ = kNoBuffer;
  uint32_t finaliseGroups_ = 1;
  uint32_t reduceGroups_ = 1024;
};

}  // namespace

std::unique_ptr<Kernels> makeVkKernels(int index, const KernelConfig& config) {
  return std::make_unique<VkKernels>(deviceContext(index), config);
}

void vkFftForward(int index, const Shape3& shape, const float* in, float* out, double* planMs) {
  DeviceContext& ctx = deviceContext(index);
  std::lock_guard<std::mutex> lock(ctx.mutex);
  FftPair& pair = fftPair(ctx, shape, planMs);
  ctx.upload(pair.real, in, sizeof(float) * shape.voxels());
  ctx.begin();
  appendVkFft(*pair.forward, ctx.cmd);
  ctx.submitWait();
  ctx.download(pair.spec, out, 8 * shape.spectrumCount());
}

void vkFftInverse(int index, const Shape3& shape, const float* in, float* out, double* planMs) {
  DeviceContext& ctx = deviceContext(index);
  std::lock_guard<std::mutex> lock(ctx.mutex);
  FftPair& pair = fftPair(ctx, shape, planMs);
  ctx.upload(pair.spec, in, 8 * shape.spectrumCount());
  ctx.begin();
  appendVkFft(*pair.inverse, ctx.cmd);
  ctx.submitWait();
  ctx.download(pair.real, out, sizeof(float) * shape.voxels());
}

FftTiming vkBenchFftPair(int index, const Shape3& shape, int repeats) {
  using Clock = std::chrono::steady_clock;
  auto ms = [](Clock::time_point a) { return std::chrono::duration<double, std::milli>(Clock::now() - a).count(); };
  DeviceContext& ctx = deviceContext(index);
  std::lock_guard<std::mutex> lock(ctx.mutex);
  FftTiming t;
  FftPair& pair = fftPair(ctx, shape, &t.planMs);
  std::vector<float> data(shape.voxels());
  for (int64_t i = 0; i < shape.voxels(); ++i) data[i] = static_cast<float>((i * 7919) % 1000) * 1e-3f;
  ctx.upload(pair.real, data.data(), 4 * data.size());
  t.pairMs = t.r2cMs = t.c2rMs = 1e300;
  std::vector<double> pairs;
  for (int r = 0; r < repeats + 1; ++r) {  // the first round pays the driver's pipeline compilation
    auto a = Clock::now();
    ctx.begin();
    appendVkFft(*pair.forward, ctx.cmd);
    ctx.barrier();
    appendVkFft(*pair.inverse, ctx.cmd);
    ctx.submitWait();
    double p = ms(a);
    a = Clock::now();
    ctx.begin();
    appendVkFft(*pair.forward, ctx.cmd);
    ctx.submitWait();
    double f = ms(a);
    a = Clock::now();
    ctx.begin();
    appendVkFft(*pair.inverse, ctx.cmd);
    ctx.submitWait();
    double i = ms(a);
    if (r == 0) continue;
    t.pairMs = std::min(t.pairMs, p);
    t.r2cMs = std::min(t.r2cMs, f);
    t.c2rMs = std::min(t.c2rMs, i);
    pairs.push_back(p);
  }
  std::sort(pairs.begin(), pairs.end());
  t.pairMedianMs = pairs[pairs.size() / 2];
  return t;
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
    auto found = slotCaches.find(index);
    if (found != slotCaches.end()) destroySlotSet(ctx, found->second.set);
    for (auto pair = fftPairs.begin(); pair != fftPairs.end();) {
      if (std::get<0>(pair->first) == index) {
        pair->second->forward.reset();
        pair->second->inverse.reset();
        ctx.destroyBuffer(pair->second->real);
        ctx.destroyBuffer(pair->second->spec);
        pair = fftPairs.erase(pair);
      } else {
        ++pair;
      }
    }
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

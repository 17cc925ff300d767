// Vulkan entry points, loaded at run time from libvulkan.so.1 (dlopen), so that the addon loads and the FFTW
// path works on machines without the Vulkan loader. The build defines VK_NO_PROTOTYPES; this header declares a
// function pointer under each Vulkan function's own name, so VkFFT's and tme's calls compile unchanged.
#pragma once
#ifndef VK_NO_PROTOTYPES
#define VK_NO_PROTOTYPES
#endif
#include <vulkan/vulkan.h>

#include <string>
#include <vector>

#define TME_VK_GLOBAL_FUNCTIONS(X) X(vkCreateInstance)

#define TME_VK_INSTANCE_FUNCTIONS(X)                                                                            \
  X(vkAllocateCommandBuffers) X(vkAllocateDescriptorSets) X(vkAllocateMemory) X(vkBeginCommandBuffer)           \
  X(vkBindBufferMemory) X(vkCmdBindDescriptorSets) X(vkCmdBindPipeline) X(vkCmdCopyBuffer) X(vkCmdDispatch)     \
  X(vkCmdFillBuffer) X(vkCmdPipelineBarrier) X(vkCmdPushConstants) X(vkCreateBuffer) X(vkCreateCommandPool)     \
  X(vkCreateComputePipelines) X(vkCreateDescriptorPool) X(vkCreateDescriptorSetLayout) X(vkCreateDevice)        \
  X(vkCreateFence) X(vkCreatePipelineLayout) X(vkCreateShaderModule) X(vkDestroyBuffer) X(vkDestroyCommandPool) \
  X(vkDestroyDescriptorPool) X(vkDestroyDescriptorSetLayout) X(vkDestroyDevice) X(vkDestroyFence)               \
  X(vkDestroyInstance) X(vkDestroyPipeline) X(vkDestroyPipelineLayout) X(vkDestroyShaderModule)                 \
  X(vkDeviceWaitIdle) X(vkEndCommandBuffer) X(vkEnumerateDeviceExtensionProperties)                             \
  X(vkEnumeratePhysicalDevices) X(vkFreeCommandBuffers) X(vkFreeMemory) X(vkGetBufferMemoryRequirements)        \
  X(vkGetDeviceQueue) X(vkGetPhysicalDeviceMemoryProperties)                                                    \
  X(vkGetPhysicalDeviceProperties) X(vkGetPhysicalDeviceQueueFamilyProperties) X(vkMapMemory) X(vkQueueSubmit)  \
  X(vkResetCommandBuffer) X(vkResetFences) X(vkUnmapMemory) X(vkUpdateDescriptorSets) X(vkWaitForFences)

#define TME_VK_DECLARE(name) extern PFN_##name name;
// Optional (Vulkan 1.1): null where the loader lacks it; only the device listing's driver names use it.
extern PFN_vkGetPhysicalDeviceProperties2 vkGetPhysicalDeviceProperties2;
TME_VK_GLOBAL_FUNCTIONS(TME_VK_DECLARE)
TME_VK_INSTANCE_FUNCTIONS(TME_VK_DECLARE)
#undef TME_VK_DECLARE

namespace tme {

// dlopen libvulkan.so.1 and resolve vkCreateInstance; false (with the reason) when there is no loader. The system's
// loader comes first (it knows the system's driver paths); a portable bundle's own copy, vulkan/libvulkan.so.1 beside
// the addon, is the fallback for a node without one.
bool loadVulkanLibrary(std::string* error);
// The loader in use: its file, and whether it is the bundle's fallback copy ("" before a successful load).
std::string vulkanLoaderPath();
bool vulkanLoaderIsBundled();
// The Vulkan drivers (ICD libraries) loaded in this process, by file: the shared objects that export
// vk_icdGetInstanceProcAddr, which every ICD must and the loader and layers do not.
std::vector<std::string> loadedVulkanDrivers();
// Resolves every other entry point through vkGetInstanceProcAddr (after vkCreateInstance); false if one is missing.
bool loadVulkanInstanceFunctions(VkInstance instance, std::string* error);

}  // namespace tme

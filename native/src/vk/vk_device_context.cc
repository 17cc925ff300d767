// DeviceContext: one logical device's buffers, command submission and compute pipelines.
#include <cstring>
#include <string>
#include <vector>

#include "vk/vk_device.h"

namespace tme {

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

}  // namespace tme

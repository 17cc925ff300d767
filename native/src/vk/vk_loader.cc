#include "vk/vk_loader.h"

#include <dlfcn.h>

#include <cstdlib>

#define TME_VK_DEFINE(name) PFN_##name name = nullptr;
TME_VK_GLOBAL_FUNCTIONS(TME_VK_DEFINE)
TME_VK_INSTANCE_FUNCTIONS(TME_VK_DEFINE)
#undef TME_VK_DEFINE

namespace tme {
namespace {
void* library = nullptr;
PFN_vkGetInstanceProcAddr getInstanceProcAddr = nullptr;
}  // namespace

bool loadVulkanLibrary(std::string* error) {
  if (getInstanceProcAddr != nullptr) return true;
  // TME_VULKAN_LIBRARY names another loader (or a missing one, to test the CPU-only case).
  const char* override = std::getenv("TME_VULKAN_LIBRARY");
  const char* name = override != nullptr && *override != '\0' ? override : "libvulkan.so.1";
  library = dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    const char* why = dlerror();
    if (error) *error = std::string("no Vulkan loader (") + (why ? why : name) + ")";
    return false;
  }
  getInstanceProcAddr = reinterpret_cast<PFN_vkGetInstanceProcAddr>(dlsym(library, "vkGetInstanceProcAddr"));
  if (getInstanceProcAddr == nullptr) {
    if (error) *error = "libvulkan.so.1 has no vkGetInstanceProcAddr";
    return false;
  }
#define TME_VK_LOAD_GLOBAL(name) name = reinterpret_cast<PFN_##name>(getInstanceProcAddr(VK_NULL_HANDLE, #name));
  TME_VK_GLOBAL_FUNCTIONS(TME_VK_LOAD_GLOBAL)
#undef TME_VK_LOAD_GLOBAL
  if (vkCreateInstance == nullptr) {
    if (error) *error = "the Vulkan loader has no vkCreateInstance";
    return false;
  }
  return true;
}

bool loadVulkanInstanceFunctions(VkInstance instance, std::string* error) {
  bool ok = true;
#define TME_VK_LOAD(name)                                                                        \
  name = reinterpret_cast<PFN_##name>(getInstanceProcAddr(instance, #name));                      \
  if (name == nullptr) {                                                                          \
    ok = false;                                                                                   \
    if (error) *error = "the Vulkan loader has no " #name;                                        \
  }
  TME_VK_INSTANCE_FUNCTIONS(TME_VK_LOAD)
#undef TME_VK_LOAD
  return ok;
}

}  // namespace tme

#include "vk/vk_loader.h"

#include <dlfcn.h>
#include <link.h>

#include <cstdlib>
#include <string>
#include <vector>

#define TME_VK_DEFINE(name) PFN_##name name = nullptr;
TME_VK_GLOBAL_FUNCTIONS(TME_VK_DEFINE)
TME_VK_INSTANCE_FUNCTIONS(TME_VK_DEFINE)
#undef TME_VK_DEFINE
PFN_vkGetPhysicalDeviceProperties2 vkGetPhysicalDeviceProperties2 = nullptr;

namespace tme {
namespace {
void* library = nullptr;
PFN_vkGetInstanceProcAddr getInstanceProcAddr = nullptr;
std::string loaderPath;
bool loaderBundled = false;

// The folder of this addon's file (a bundle keeps its fallback loader in <folder>/vulkan/).
std::string addonFolder() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&addonFolder), &info) == 0 || info.dli_fname == nullptr) return "";
  std::string file = info.dli_fname;
  const size_t slash = file.rfind('/');
  return slash == std::string::npos ? "." : file.substr(0, slash);
}

// The file a dlopen handle came from (the loader resolves a soname through the system's search path).
std::string fileOf(void* handle) {
  struct link_map* map = nullptr;
  if (dlinfo(handle, RTLD_DI_LINKMAP, &map) != 0 || map == nullptr || map->l_name == nullptr) return "";
  return map->l_name;
}
}  // namespace

std::string vulkanLoaderPath() { return loaderPath; }
bool vulkanLoaderIsBundled() { return loaderBundled; }

std::vector<std::string> loadedVulkanDrivers() {
  std::vector<std::string> objects;
  dl_iterate_phdr(
      [](struct dl_phdr_info* info, size_t, void* data) {
        if (info->dlpi_name != nullptr && info->dlpi_name[0] != '\0')
          static_cast<std::vector<std::string>*>(data)->push_back(info->dlpi_name);
        return 0;
      },
      &objects);
  std::vector<std::string> drivers;
  for (const std::string& file : objects) {
    void* handle = dlopen(file.c_str(), RTLD_LAZY | RTLD_NOLOAD);
    if (handle == nullptr) continue;
    if (dlsym(handle, "vk_icdGetInstanceProcAddr") != nullptr) drivers.push_back(file);
    dlclose(handle);
  }
  return drivers;
}

bool loadVulkanLibrary(std::string* error) {
  if (getInstanceProcAddr != nullptr) return true;
  // TME_VULKAN_LIBRARY names another loader (or a missing one, to test the CPU-only case).
  const char* override = std::getenv("TME_VULKAN_LIBRARY");
  const bool overridden = override != nullptr && *override != '\0';
  const char* name = overridden ? override : "libvulkan.so.1";
  library = dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    const char* why = dlerror();
    std::string reason = why ? why : name;
    const std::string folder = addonFolder();
    if (!overridden && !folder.empty()) {
      const std::string bundled = folder + "/vulkan/libvulkan.so.1";
      library = dlopen(bundled.c_str(), RTLD_NOW | RTLD_LOCAL);
      loaderBundled = library != nullptr;
    }
    if (library == nullptr) {
      if (error) *error = "no Vulkan loader (" + reason + ")";
      return false;
    }
  }
  loaderPath = fileOf(library);
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
  vkGetPhysicalDeviceProperties2 =
      reinterpret_cast<PFN_vkGetPhysicalDeviceProperties2>(getInstanceProcAddr(instance, "vkGetPhysicalDeviceProperties2"));
  return ok;
}

}  // namespace tme

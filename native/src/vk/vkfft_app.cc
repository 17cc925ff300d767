// The one translation unit that includes vkFFT.h (32k lines; keeping it alone keeps rebuilds fast).
// vk_loader.h first: with VK_NO_PROTOTYPES, VkFFT's vk* calls go through the dynamically loaded pointers.
#include "vk/vk_loader.h"
#include <glslang/Include/glslang_c_interface.h>
#include <vkFFT.h>

#include <chrono>
#include <mutex>

#include "vk/vk_device.h"

namespace tme {

struct VkFftApp {
  VkFFTApplication app{};
  VkFFTConfiguration config{};
  // VkFFT keeps pointers to these: they live as long as the application.
  VkBuffer real = VK_NULL_HANDLE, spectrum = VK_NULL_HANDLE;
  uint64_t realBytes = 0, spectrumBytes = 0;
  bool forward = true;
  bool initialised = false;
};

namespace {
std::mutex glslangMutex;  // glslang process init and VkFFT plan creation (it calls setlocale) are serialised
bool glslangReady = false;

ErrorCode codeFor(VkFFTResult r) {
  int v = static_cast<int>(r);
  if (v == VKFFT_ERROR_MALLOC_FAILED || v == VKFFT_ERROR_FAILED_TO_ALLOCATE_MEMORY) return ErrorCode::DeviceMemory;
  if (v >= 3000 && v < 4000) return ErrorCode::UnsupportedSize;  // unsupported length, radix, omit
  if (v >= 4000) return ErrorCode::Device;                         // a backend call failed
  return ErrorCode::FftPlan;                                       // configuration / general
}
}  // namespace

void VkFftAppDeleter::operator()(VkFftApp* a) const {
  if (a == nullptr) return;
  if (a->initialised) deleteVkFFT(&a->app);
  delete a;
}

VkFftAppPtr createVkFftApp(DeviceContext& ctx, const Shape3& shape, VkBuf& real, VkBuf& spectrum, bool forward,
                           double* planMs) {
  // VkFFT 1.2.26 computes garbage (measured: relative error 1) when an axis has a prime factor above 13, its
  // largest radix kernel (it then switches to Bluestein's algorithm). Refuse rather than return wrong numbers.
  for (int axis = 0; axis < 3; ++axis)
    if (largestPrimeFactor(shape[axis]) > 13)
      fail(ErrorCode::UnsupportedSize, "VkFFT cannot transform a " + shape.str() + " grid on " + ctx.name +
                                           ": axis " + std::to_string(shape[axis]) + " has a prime factor above 13; " +
                                           "use nextFastShape() (factors 2, 3, 5, 7)");
  auto start = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(glslangMutex);
  if (!glslangReady) {
    if (!glslang_initialize_process()) fail(ErrorCode::FftPlan, "glslang could not be initialised for VkFFT");
    glslangReady = true;
  }
  VkFftAppPtr a(new VkFftApp());
  a->real = real.buffer;
  a->spectrum = spectrum.buffer;
  a->realBytes = real.size;
  a->spectrumBytes = spectrum.size;
  a->forward = forward;
  VkFFTConfiguration& c = a->config;
  c.FFTdim = 3;
  c.size[0] = static_cast<uint64_t>(shape.x);  // VkFFT: size[0] is the fastest axis
  c.size[1] = static_cast<uint64_t>(shape.y);
  c.size[2] = static_cast<uint64_t>(shape.z);
  c.performR2C = 1;
  c.normalize = 0;
  c.isInputFormatted = 1;  // unpadded real array in its own buffer (out-of-place R2C)
  c.inputBufferStride[0] = static_cast<uint64_t>(shape.x);
  c.inputBufferStride[1] = static_cast<uint64_t>(shape.x * shape.y);
  c.inputBufferStride[2] = static_cast<uint64_t>(shape.voxels());
  c.inverseReturnToInputBuffer = 1;  // C2R writes the real buffer
  if (forward) c.makeForwardPlanOnly = 1;
  else c.makeInversePlanOnly = 1;
  c.physicalDevice = &ctx.physical;
  c.device = &ctx.device;
  c.queue = &ctx.queue;
  c.commandPool = &ctx.pool;
  c.fence = &ctx.fence;
  c.isCompilerInitialized = 1;
  c.buffer = &a->spectrum;
  c.bufferSize = &a->spectrumBytes;
  c.inputBuffer = &a->real;
  c.inputBufferSize = &a->realBytes;
  VkFFTResult r = initializeVkFFT(&a->app, c);
  if (r != VKFFT_SUCCESS) {
    // initializeVkFFT deletes the application itself on failure.
    fail(codeFor(r), std::string("VkFFT could not plan a ") + shape.str() + " " + (forward ? "R2C" : "C2R") +
                         " transform on " + ctx.name + ": VkFFTResult " + std::to_string(static_cast<int>(r)));
  }
  a->initialised = true;
  if (planMs) *planMs += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return a;
}

void appendVkFft(VkFftApp& a, VkCommandBuffer cmd) {
  VkFFTLaunchParams launch{};
  launch.commandBuffer = &cmd;
  launch.buffer = &a.spectrum;
  launch.inputBuffer = &a.real;
  VkFFTResult r = VkFFTAppend(&a.app, a.forward ? -1 : 1, &launch);
  if (r != VKFFT_SUCCESS)
    fail(codeFor(r), "VkFFT could not record a transform: VkFFTResult " + std::to_string(static_cast<int>(r)));
}

}  // namespace tme

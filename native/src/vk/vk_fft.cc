// VkFFT applications kept per device: the matching kernels' FFT slots (cached between jobs: planning a VkFFT
// application costs ~0.15 s) and the standalone transforms for tests and benchmarks.
#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include "vk/vk_context.h"
#include "vk/vk_fft.h"

namespace tme {

std::unique_ptr<SlotSet>& cachedSlotSet(int deviceIndex) {
  // Never destroyed by static destructors (a worker may still run at exit); guarded by the device's mutex.
  static auto& caches = *new std::map<int, std::unique_ptr<SlotSet>>();
  return caches[deviceIndex];
}

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

namespace {

std::map<std::tuple<int, int64_t, int64_t, int64_t>, std::unique_ptr<FftPair>>& fftPairs =
    *new std::map<std::tuple<int, int64_t, int64_t, int64_t>, std::unique_ptr<FftPair>>();

}  // namespace

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

namespace {

struct KeptSlot {
  std::unique_ptr<KeptSetup> setup;
  bool releaseAsked = false;
};
std::mutex keptMutex;  // the map itself; an entry's set-up belongs to its device's mutex
std::map<int, KeptSlot>& keptSlots() {
  static auto& slots = *new std::map<int, KeptSlot>();
  return slots;
}

}  // namespace

std::unique_ptr<KeptSetup>& keptSetup(int deviceIndex) {
  std::lock_guard<std::mutex> lock(keptMutex);
  return keptSlots()[deviceIndex].setup;
}

bool takeKeptSetupRelease(int deviceIndex) {
  std::lock_guard<std::mutex> lock(keptMutex);
  KeptSlot& slot = keptSlots()[deviceIndex];
  const bool asked = slot.releaseAsked;
  slot.releaseAsked = false;
  return asked;
}

void destroyKeptSetup(DeviceContext& ctx, std::unique_ptr<KeptSetup>& kept) {
  if (!kept) return;
  for (VkBuf& b : kept->spectra) ctx.destroyBuffer(b);
  ctx.destroyBuffer(kept->scale);
  kept.reset();
}

void vkReleaseKeptSetup(int index) {
  std::vector<int> devices;
  {
    std::lock_guard<std::mutex> lock(keptMutex);
    for (auto& [i, slot] : keptSlots())
      if ((index < 0 || i == index) && slot.setup) devices.push_back(i);
  }
  for (int i : devices) {
    DeviceContext& ctx = deviceContext(i);
    std::unique_lock<std::mutex> device(ctx.mutex, std::try_to_lock);
    if (device.owns_lock()) {
      destroyKeptSetup(ctx, keptSetup(i));
    } else {
      std::lock_guard<std::mutex> lock(keptMutex);
      keptSlots()[i].releaseAsked = true;
    }
  }
}

void releaseDeviceFfts(DeviceContext& ctx) {
  destroySlotSet(ctx, cachedSlotSet(ctx.index));
  destroyKeptSetup(ctx, keptSetup(ctx.index));
  for (auto pair = fftPairs.begin(); pair != fftPairs.end();) {
    if (std::get<0>(pair->first) == ctx.index) {
      pair->second->forward.reset();
      pair->second->inverse.reset();
      ctx.destroyBuffer(pair->second->real);
      ctx.destroyBuffer(pair->second->spec);
      pair = fftPairs.erase(pair);
    } else {
      ++pair;
    }
  }
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

}  // namespace tme

// The Vulkan implementation of the matching kernels: the shaders of shaders/, their push constants (held to the
// shaders' blocks at compile time), and the FFT slots, recorded into command buffers of a few rotations each.
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <limits>
#include <map>
#include <mutex>

#include "box_stats_push.h"
#include "box_stats_spv.h"
#include "crop_box_push.h"
#include "crop_box_spv.h"
#include "finalise_push.h"
#include "finalise_spv.h"
#include "gather_push.h"
#include "gather_spv.h"
#include "mul_conj_push.h"
#include "pack_half_push.h"
#include "pack_half_spv.h"
#include "mul_conj_spv.h"
#include "place_push.h"
#include "place_spv.h"
#include "reduce_max_push.h"
#include "reduce_max_spv.h"
#include "reduce_stats_push.h"
#include "reduce_stats_spv.h"
#include "rotate_push.h"
#include "rotate_spv.h"
#include "scale_spectrum_push.h"
#include "scale_spectrum_spv.h"
#include "setup_scale_push.h"
#include "setup_scale_spv.h"
#include "setup_values_push.h"
#include "setup_values_spv.h"
#include "match/geometry.h"
#include "vk/vk_context.h"
#include "vk/vk_device.h"
#include "vk/vk_fft.h"

namespace tme {

namespace {

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
struct MulConjPush {
  uint32_t count;
  int32_t halfA;
  float scaleA;
};
struct GatherPush {
  float m[9];
  int32_t tz, ty, tx, gz, gy, gx;
  int32_t halfF;
  float scaleF;
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
struct SetupValuesPush {
  uint32_t count;
  int32_t mode, masked;
  float hi, lo;
};
struct SetupScalePush {
  uint32_t count;
  float k, nk, flatVariance;
};
struct PackHalfPush {
  uint32_t count;
  int32_t pass;
  float scale;
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

// Each struct is the block of the shader(s) it is pushed to, as glslangValidator lays it out (generated *_push.h):
// a member added, dropped or reordered on one side only fails here, at compile time, not as garbage on a GPU.
#define TME_PUSH_AT(Struct, member, shader, field) static_assert(offsetof(Struct, member) == push::shader::field, #Struct "." #member)
static_assert(sizeof(RotatePush) == push::rotate::bytes);
TME_PUSH_AT(RotatePush, m, rotate, m0);
TME_PUSH_AT(RotatePush, bz, rotate, bz);
TME_PUSH_AT(RotatePush, bx, rotate, bx);
TME_PUSH_AT(RotatePush, cubic, rotate, cubic);
static_assert(sizeof(PlacePush) == push::place::bytes);
TME_PUSH_AT(PlacePush, tz, place, tz);
TME_PUSH_AT(PlacePush, mode, place, mode);
TME_PUSH_AT(PlacePush, slot, place, slot);
TME_PUSH_AT(PlacePush, oz, place, oz);
TME_PUSH_AT(PlacePush, sx, place, sx);
static_assert(sizeof(MulPush) == push::scale_spectrum::bytes);
static_assert(sizeof(MulConjPush) == push::mul_conj::bytes);
TME_PUSH_AT(MulConjPush, count, mul_conj, count);
TME_PUSH_AT(MulConjPush, halfA, mul_conj, halfA);
TME_PUSH_AT(MulConjPush, scaleA, mul_conj, scaleA);
TME_PUSH_AT(MulPush, count, scale_spectrum, count);
static_assert(sizeof(GatherPush) == push::gather::bytes);
TME_PUSH_AT(GatherPush, m, gather, m0);
TME_PUSH_AT(GatherPush, tz, gather, tz);
TME_PUSH_AT(GatherPush, gx, gather, gx);
TME_PUSH_AT(GatherPush, halfF, gather, halfF);
TME_PUSH_AT(GatherPush, scaleF, gather, scaleF);
static_assert(sizeof(CropPush) == push::crop_box::bytes);
TME_PUSH_AT(CropPush, gz, crop_box, gz);
TME_PUSH_AT(CropPush, bx, crop_box, bx);
static_assert(sizeof(StatsPush) == push::box_stats::bytes);
TME_PUSH_AT(StatsPush, count, box_stats, count);
TME_PUSH_AT(StatsPush, slot, box_stats, slot);
static_assert(sizeof(ReducePush) == push::reduce_max::bytes && sizeof(ReducePush) == push::reduce_stats::bytes);
TME_PUSH_AT(ReducePush, count, reduce_max, count);
TME_PUSH_AT(ReducePush, slot, reduce_max, slot);
TME_PUSH_AT(ReducePush, count, reduce_stats, groups);
TME_PUSH_AT(ReducePush, slot, reduce_stats, rotationLocal);
static_assert(sizeof(FinalisePush) == push::finalise::bytes);
TME_PUSH_AT(FinalisePush, count, finalise, count);
TME_PUSH_AT(FinalisePush, score, finalise, score);
TME_PUSH_AT(FinalisePush, scalar, finalise, scalar);
TME_PUSH_AT(FinalisePush, invN, finalise, invN);
TME_PUSH_AT(FinalisePush, rotationLocal, finalise, rotationLocal);
TME_PUSH_AT(FinalisePush, rotationGlobal, finalise, rotationGlobal);
TME_PUSH_AT(FinalisePush, weighted, finalise, weighted);
TME_PUSH_AT(FinalisePush, flat, finalise, flatVariance);
TME_PUSH_AT(FinalisePush, z0, finalise, z0);
TME_PUSH_AT(FinalisePush, tx, finalise, tx);
TME_PUSH_AT(FinalisePush, voxelStats, finalise, voxelStats);
static_assert(sizeof(SetupValuesPush) == push::setup_values::bytes);
TME_PUSH_AT(SetupValuesPush, mode, setup_values, mode);
TME_PUSH_AT(SetupValuesPush, masked, setup_values, masked);
TME_PUSH_AT(SetupValuesPush, lo, setup_values, lo);
static_assert(sizeof(SetupScalePush) == push::setup_scale::bytes);
TME_PUSH_AT(SetupScalePush, k, setup_scale, k);
TME_PUSH_AT(SetupScalePush, flatVariance, setup_scale, flatVariance);
static_assert(sizeof(PackHalfPush) == push::pack_half::bytes);
TME_PUSH_AT(PackHalfPush, pass, pack_half, pass);
TME_PUSH_AT(PackHalfPush, scale, pack_half, scale);
#undef TME_PUSH_AT

// float -> IEEE half, round to nearest even (what packHalf2x16 would give; values beyond the range saturate to
// ±max, which the scale in halfSpectrumConstant keeps from happening).
uint16_t toHalf(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const float a = std::fabs(f);
  if (!(a < 65520.0f)) return static_cast<uint16_t>(sign | 0x7bffu);
  if (a < 6.103515625e-05f) {  // subnormal: a multiple of 2^-24
    return static_cast<uint16_t>(sign | static_cast<uint32_t>(std::nearbyint(a * 16777216.0f)));
  }
  uint32_t au;
  std::memcpy(&au, &a, 4);
  const uint32_t exponent = (au >> 23) - 127 + 15, mantissa = au & 0x7fffffu;
  uint32_t h = (exponent << 10) | (mantissa >> 13);
  const uint32_t rest = mantissa & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // may carry into the exponent, which is right
  return static_cast<uint16_t>(sign | h);
}

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
    // Room for the loop's descriptor sets and the set-up's (prepareOnDevice: about 20).
    VkDescriptorPoolSize size{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 192 * 16};
    VkDescriptorPoolCreateInfo info{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
    info.maxSets = 192;
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
      auto& cache = cachedSlotSet(ctx_.index);
      if (cache && cache.get() != slots_.get()) destroySlotSet(ctx_, cache);
      cache = std::move(slots_);
    }
    // The set-up made or reused on the device: kept for the next job when asked to (and not released meanwhile).
    const bool released = takeKeptSetupRelease(ctx_.index);
    auto& kept = keptSetup(ctx_.index);
    if (released) destroyKeptSetup(ctx_, kept);
    if (setup_ && keepSetup_ && !released) kept = std::move(setup_);
    destroyKeptSetup(ctx_, setup_);
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

  BufId halfSpectrumConstant(const float* host, size_t count) override {
    // Scaled by a power of two so the largest value sits near 2^14 (a raw target's spectrum may exceed float16's
    // 65504; small values then keep float16's ~1e-3 of the largest as absolute error); the shaders multiply back.
    float largest = 0;
    for (size_t i = 0; i < 2 * count; ++i) largest = std::max(largest, std::fabs(host[i]));
    const int shift = largest > 0 ? 14 - static_cast<int>(std::ceil(std::log2(largest))) : 0;
    const float scale = std::ldexp(1.0f, shift);
    std::vector<uint32_t> packed(count);
    for (size_t i = 0; i < count; ++i)
      packed[i] = static_cast<uint32_t>(toHalf(host[2 * i] * scale)) | (static_cast<uint32_t>(toHalf(host[2 * i + 1] * scale)) << 16);
    BufId id = constant(packed.data(), 4 * count);
    halfScale_[id] = std::ldexp(1.0f, -shift);
    return id;
  }

  BufId allocate(size_t bytes) override {
    BufId id = add(ctx_.createBuffer(bytes, "a work buffer"));
    ctx_.fillZero(buffers_[id]);
    return id;
  }

  bool prepareOnDevice(const MatchJob& job, const DeviceSetupInputs& in, uint64_t key, BufId* spectra,
                       BufId* scale) override {
    auto& kept = keptSetup(ctx_.index);
    if (takeKeptSetupRelease(ctx_.index)) destroyKeptSetup(ctx_, kept);
    const bool reuse = kept && key != 0 && kept->key == key && kept->half == job.halfSpectra;
    // Only the latest set-up is worth keeping: another tile's is freed before this one is made.
    if (reuse) {
      setup_ = std::move(kept);
    } else {
      destroyKeptSetup(ctx_, kept);
      setup_ = std::make_unique<KeptSetup>();
      setup_->key = key;
      setup_->half = job.halfSpectra;
      makeSetup(job, in, *setup_);
    }
    keepSetup_ = job.keepSetup && key != 0;
    for (int j = 0; j < 3; ++j) {
      spectra[j] = setup_->spectra[j].buffer ? borrow(setup_->spectra[j]) : kNoBuffer;
      if (spectra[j] != kNoBuffer && setup_->half) halfScale_[spectra[j]] = setup_->halfScale[j];
    }
    *scale = setup_->scale.buffer ? borrow(setup_->scale) : kNoBuffer;
    return reuse;
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
    auto& cached = cachedSlotSet(ctx_.index);
    if (cached && cached->shape == config_.tile && static_cast<int>(cached->slots.size()) >= count &&
        cached->forwardCount >= forwardCount) {
      slots_ = std::move(cached);
    } else {
      destroySlotSet(ctx_, cached);
      // Made aside and kept only whole: a set half made (a shape VkFFT refuses, memory running out) cached for the
      // next job of the shape would hand it empty applications.
      auto made = std::make_unique<SlotSet>();
      made->shape = config_.tile;
      made->forwardCount = forwardCount;
      made->slots.resize(count);
      const int64_t n = config_.tile.voxels(), nc = config_.tile.spectrumCount();
      try {
        for (int k = 0; k < count; ++k) {
          FftSlot& s = made->slots[k];
          s.s = ctx_.createBuffer(8 * nc, "a spectrum");
          s.o = ctx_.createBuffer(4 * n, "a correlation map");
          if (k < forwardCount) {
            s.p = ctx_.createBuffer(4 * n, "a template placement grid");
            s.forward = createVkFftApp(ctx_, config_.tile, s.p, s.s, true, planMs);
          }
          s.inverse = createVkFftApp(ctx_, config_.tile, s.o, s.s, false, planMs);
        }
      } catch (...) {
        destroySlotSet(ctx_, made);
        throw;
      }
      slots_ = std::move(made);
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
    auto half = halfScale_.find(a);
    const bool isHalf = half != halfScale_.end();
    MulConjPush p{static_cast<uint32_t>(config_.tile.spectrumCount()), isHalf ? 1 : 0, isHalf ? half->second : 1.0f};
    dispatch("mul_conj", mul_conj_spv, sizeof(mul_conj_spv), {dst, isHalf ? kNoBuffer : a, b, isHalf ? a : kNoBuffer},
             &p, sizeof(p), groupsFor(config_.tile.spectrumCount(), 256));
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
    auto half = halfScale_.find(F);
    const bool isHalf = half != halfScale_.end();
    p.halfF = isHalf ? 1 : 0;
    p.scaleF = isHalf ? half->second : 1.0f;
    dispatch("gather", gather_spv, sizeof(gather_spv), {dst, isHalf ? kNoBuffer : F, spectrum, isHalf ? F : kNoBuffer}, &p, sizeof(p),
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
  // The set-up's temporary buffers, freed when it ends (or fails).
  struct Temporaries {
    VkKernels& k;
    std::vector<BufId> ids;
    BufId add(VkDeviceSize bytes, const char* what) {
      ids.push_back(k.borrow(k.ctx_.createBuffer(bytes, what)));
      return ids.back();
    }
    ~Temporaries() {
      for (BufId id : ids) k.release(id);
    }
  };

  void copy(BufId dst, BufId src, VkDeviceSize bytes) {
    VkBufferCopy region{0, 0, bytes};
    vkCmdCopyBuffer(ctx_.cmd, buffers_[src].buffer, buffers_[dst].buffer, 1, &region);
    ctx_.barrier();
  }

  // prepareTile's host set-up, on the device: the real arrays formed by setup_values in slot 0's placement grid and
  // transformed by its R2C (its C2R for the filtered tile and the local sums); the spectra copied (or packed to
  // float16) into buffers of their own. One submission, or one per float16 spectrum (the host reads each one's
  // largest value to choose its scale). Slot 0's placement grid is left zero, as the rotations need it.
  void makeSetup(const MatchJob& job, const DeviceSetupInputs& in, KeptSetup& out) {
    const int64_t n = config_.tile.voxels(), nc = config_.tile.spectrumCount();
    const BufId P = slotP(0), S = slotS(0), O = slotO(0);
    Temporaries temp{*this, {}};
    // Uploads first: without host-visible device memory an upload is a submission of its own.
    const BufId target = temp.add(4 * n, "the target tile");
    ctx_.upload(buffers_[target], job.target.data(), 4 * n);
    BufId targetMask = kNoBuffer, filter = kNoBuffer, boxMask = kNoBuffer, keys = kNoBuffer;
    if (job.score == Score::Mcc && !job.targetMask.empty()) {
      targetMask = temp.add(4 * n, "the target mask");
      ctx_.upload(buffers_[targetMask], job.targetMask.data(), 4 * n);
    }
    if (!in.tileFilter.empty()) {
      filter = temp.add(4 * nc, "the tile's filter");
      ctx_.upload(buffers_[filter], in.tileFilter.data(), 4 * nc);
    }
    if (job.score == Score::FlcSphere) {
      boxMask = temp.add(4 * config_.box.voxels(), "the template mask");
      ctx_.upload(buffers_[boxMask], job.mask.data(), 4 * config_.box.voxels());
    }
    if (job.halfSpectra) keys = temp.add(16, "a reduction key");
    double shift = in.shift;
    auto values = [&](int mode) {
      const float hi = static_cast<float>(shift);
      SetupValuesPush p{static_cast<uint32_t>(n), mode, targetMask != kNoBuffer ? 1 : 0, hi, static_cast<float>(shift - hi)};
      dispatch("setup_values", setup_values_spv, sizeof(setup_values_spv), {P, target, targetMask}, &p, sizeof(p),
               groupsFor(n, 256));
      r2c(0);
    };
    auto keep = [&](int j) {  // S -> out.spectra[j]
      if (!job.halfSpectra) {
        out.spectra[j] = ctx_.createBuffer(8 * nc, "a target spectrum");
        copy(borrow(out.spectra[j]), S, 8 * nc);
        return;
      }
      vkCmdFillBuffer(ctx_.cmd, buffers_[keys].buffer, 0, VK_WHOLE_SIZE, 0);
      ctx_.barrier();
      PackHalfPush p{static_cast<uint32_t>(nc), 0, 1.0f};
      dispatch("pack_half", pack_half_spv, sizeof(pack_half_spv), {S, keys, kNoBuffer}, &p, sizeof(p),
               std::min<uint32_t>(groupsFor(nc, 256), reduceGroups_));
      ctx_.submitWait();
      uint32_t key = 0;
      ctx_.download(buffers_[keys], &key, 4);
      float largest = 0;
      if (key != 0) {
        const uint32_t u = (key & 0x80000000u) ? (key & 0x7fffffffu) : ~key;
        std::memcpy(&largest, &u, 4);
      }
      // As halfSpectrumConstant: the largest value near 2^14.
      const int exponent = largest > 0 ? 14 - static_cast<int>(std::ceil(std::log2(largest))) : 0;
      out.spectra[j] = ctx_.createBuffer(4 * nc, "a target spectrum (float16)");
      out.halfScale[j] = std::ldexp(1.0f, -exponent);
      ctx_.begin();
      p = {static_cast<uint32_t>(nc), 1, std::ldexp(1.0f, exponent)};
      dispatch("pack_half", pack_half_spv, sizeof(pack_half_spv), {S, keys, borrow(out.spectra[j])}, &p, sizeof(p),
               groupsFor(nc, 256));
    };
    ctx_.begin();
    if (filter != kNoBuffer) {
      // Fourier mode's filtered tile (centred first), which every later array is formed from.
      values(0);
      MulPush p{static_cast<uint32_t>(nc)};
      dispatch("scale_spectrum", scale_spectrum_spv, sizeof(scale_spectrum_spv), {S, filter}, &p, sizeof(p),
               groupsFor(nc, 256));
      c2r(0);
      copy(target, O, 4 * n);
      shift = 0;
    }
    switch (job.score) {
      case Score::Cc: values(0); keep(0); break;
      case Score::Flc: values(0); keep(0); values(1); keep(1); break;
      case Score::Mcc: values(2); keep(0); values(3); keep(1); values(4); keep(2); break;
      case Score::FlcSphere: {
        // Local mean and variance of the target under the unrotated mask: E2 into the scale map, then E1, then the
        // scale from both.
        vkCmdFillBuffer(ctx_.cmd, buffers_[P].buffer, 0, VK_WHOLE_SIZE, 0);
        ctx_.barrier();
        place(P, boxMask, kNoBuffer, kNoBuffer, 0, PlaceMode::Raw);
        r2c(0);
        const BufId maskSpectrum = temp.add(8 * nc, "the template mask's spectrum");
        copy(maskSpectrum, S, 8 * nc);
        out.scale = ctx_.createBuffer(4 * n, "the local sigma map");
        const BufId scaleMap = borrow(out.scale);
        values(1);
        mulConj(S, S, maskSpectrum);
        c2r(0);
        copy(scaleMap, O, 4 * n);
        values(0);
        keep(0);
        mulConj(S, S, maskSpectrum);
        c2r(0);
        const double nk = static_cast<double>(n) * in.maskSum;
        SetupScalePush p{static_cast<uint32_t>(n), static_cast<float>(in.maskSum > 0 ? 1.0 / nk : 0.0),
                         static_cast<float>(nk),
                         static_cast<float>(std::min<double>(in.flatVariance, std::numeric_limits<float>::max()))};
        dispatch("setup_scale", setup_scale_spv, sizeof(setup_scale_spv), {scaleMap, O}, &p, sizeof(p),
                 groupsFor(n, 256));
        break;
      }
    }
    vkCmdFillBuffer(ctx_.cmd, buffers_[P].buffer, 0, VK_WHOLE_SIZE, 0);
    ctx_.barrier();
    ctx_.submitWait();
  }

  // A buffer destroyed before the job ends, and the descriptor sets that name it forgotten (a later buffer may get
  // its handle).
  void release(BufId id) {
    const VkBuffer handle = buffers_[id].buffer;
    for (auto it = sets_.begin(); it != sets_.end();)
      it = std::find(it->first.second.begin(), it->first.second.end(), handle) != it->first.second.end() ? sets_.erase(it)
                                                                                                         : std::next(it);
    ctx_.destroyBuffer(buffers_[id]);
  }

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
  std::map<BufId, float> halfScale_;  // the float16 constants (halfSpectrumConstant) and what multiplies them back
  FftPair* filterPair_ = nullptr;  // filterBox's grid transforms (the device's cached pair for that shape)
  BufId filterReal_ = kNoBuffer, filterSpectrum_ = kNoBuffer;
  BufId dummy_ = kNoBuffer, best_ = kNoBuffer, arg_ = kNoBuffer, accum_ = kNoBuffer, rotMax_ = kNoBuffer,
        keys_ = kNoBuffer, rotationSums_ = kNoBuffer, voxelSum_ = kNoBuffer, voxelSumSq_ = kNoBuffer;
  std::unique_ptr<KeptSetup> setup_;  // the set-up made or reused on the device (prepareOnDevice)
  bool keepSetup_ = false;
  uint32_t finaliseGroups_ = 1;
  uint32_t reduceGroups_ = 1024;
};

}  // namespace

std::unique_ptr<Kernels> makeVkKernels(int index, const KernelConfig& config) {
  return std::make_unique<VkKernels>(deviceContext(index), config);
}

}  // namespace tme

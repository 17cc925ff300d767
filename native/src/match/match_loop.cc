#include "match/match_loop.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "cpu/box_ops.h"
#include "cpu/cpu_kernels.h"
#include "cpu/fftw_plans.h"
#include "cpu/slab_correlator.h"
#include "errors.h"
#include "host_memory.h"
#include "match/geometry.h"
#include "vk/vk_context.h"

namespace tme {
namespace {

using Clock = std::chrono::steady_clock;
double msSince(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

std::string mib(double bytes) {
  std::ostringstream s;
  s.precision(1);
  s << std::fixed << bytes / (1024.0 * 1024.0) << " MiB";
  return s.str();
}

bool isCpu(const std::string& device) { return device == "cpu"; }

// TME_PROFILE (any value): one stderr line per step of a tile's set-up and of the merge after the loop, wall time.
class StepTimes {
 public:
  StepTimes() : on_(std::getenv("TME_PROFILE") != nullptr), last_(Clock::now()) {}
  void step(const char* name) {
    if (!on_) return;
    const auto now = Clock::now();
    std::fprintf(stderr, "tme profile setup %-22s %9.2f ms\n", name, std::chrono::duration<double, std::milli>(now - last_).count());
    last_ = now;
  }

 private:
  bool on_;
  Clock::time_point last_;
};

int vulkanIndex(const std::string& device) {
  char* end = nullptr;
  long v = std::strtol(device.c_str(), &end, 10);
  if (device.empty() || *end != '\0' || v < 0) fail(ErrorCode::InvalidOption, "Expected 'cpu' or a device index for device but received \"" + device + "\"");
  return static_cast<int>(v);
}

struct SlotPlan {
  int slots = 1, forward = 1;
};

SlotPlan slotPlan(Score score, RotationMode mode) {
  if (mode == RotationMode::Fourier) return {1, 0};
  switch (score) {
    case Score::Cc:
    case Score::FlcSphere: return {1, 1};
    case Score::Flc: return {3, 2};
    case Score::Mcc: return {6, 3};
  }
  return {1, 1};
}

// The CPU path runs every score with real-space rotation, and cc / flc-sphere with Fourier-space rotation, through
// the slab correlator unless the job asks for full transforms. mcc also needs its maximum overlap known without the
// whole tile's overlap map (mccOverlapIsMaskSum), else it keeps the 3D transforms.
bool usesSlabCorrelator(Score score, RotationMode mode, bool fullTransforms) {
  if (fullTransforms) return false;
  return score == Score::Cc || score == Score::FlcSphere || mode == RotationMode::Real;
}

// The slab correlator's shape per score: distinct tile-side factors, inputs (boxes placed per rotation), products.
struct SlabCounts {
  int factors = 1, inputs = 1, products = 1;
};
SlabCounts slabCounts(Score score) {
  if (score == Score::Flc) return {2, 2, 3};
  if (score == Score::Mcc) return {3, 3, 6};
  return {1, 1, 1};
}

int constantSpectra(Score score) {
  switch (score) {
    case Score::Cc:
    case Score::FlcSphere: return 1;
    case Score::Flc: return 2;
    case Score::Mcc: return 3;
  }
  return 1;
}

// The template spectrum's grid for Fourier-space rotation: `oversampling` x the box (next fast size), or the
// tile itself when that is smaller or equal (then the identity rotation samples grid points exactly). A grid
// much smaller than the tile keeps the gather's random reads in cache (measured: 128^3 tile, 32^3 box: a
// 64^3 grid gathers ~4x faster than a 128^3 one).
Shape3 fourierGrid(const Shape3& tile, const Shape3& box, int oversampling) {
  auto axis = [&](int64_t t, int64_t b) { return std::min(t, nextFastSize(b * oversampling, 7, false)); };
  return {axis(tile.z, box.z), axis(tile.y, box.y), axis(tile.x, box.x)};
}

}  // namespace

void fftCountsPerRotation(Score score, RotationMode mode, int* forward, int* inverse) {
  SlotPlan p = slotPlan(score, mode);
  *forward = p.forward;
  *inverse = p.slots;
}

MemoryVerdict estimateMatchMemory(const MemoryQuery& q) {
  const double n = static_cast<double>(q.targetShape.voxels());
  const double nc = static_cast<double>(q.targetShape.spectrumCount());
  const double box = static_cast<double>(q.templateShape.voxels());
  // The template filter's grid: the engine's filterShape, 1.5x the box at a fast size.
  auto grown = [](int64_t n) { return (3 * n + 1) / 2; };
  const Shape3 fg{nextFastSize(grown(q.templateShape.z), 7, false), nextFastSize(grown(q.templateShape.y), 7, false),
                  nextFastSize(grown(q.templateShape.x), 7, true)};
  // Real space filters each rotated box on that grid; Fourier mode filters the tile once, in its set-up (the filter
  // on the tile's half spectrum and the filtered tile).
  const bool boxFilter = q.filter && q.rotationMode == RotationMode::Real;
  const double filterGrid = boxFilter ? static_cast<double>(fg.voxels()) : 0.0;
  const double filterSpectrum = boxFilter ? static_cast<double>(fg.spectrumCount()) : 0.0;
  const double tileFilter = q.filter && q.rotationMode == RotationMode::Fourier ? 4 * nc + 4 * n : 0.0;
  const SlotPlan sp = slotPlan(q.score, q.rotationMode);
  const double grid = q.rotationMode == RotationMode::Fourier
                          ? static_cast<double>(fourierGrid(q.targetShape, q.templateShape, q.fourierOversampling).voxels())
                          : 0.0;
  // Per worker: slots (spectrum + output, placement grid for forward slots), maps, two boxes; on the CPU the slab
  // correlator's buffers and its inputs' support values instead of the slots.
  const bool slabPossible = isCpu(q.device) && usesSlabCorrelator(q.score, q.rotationMode, q.fullTransforms);
  const SlabCounts sc = slabCounts(q.score);
  // Vulkan makes the tile's set-up on the device, in slot 0 (an R2C there even in Fourier mode), unless hostSetup.
  const bool deviceSetup = !isCpu(q.device) && !q.hostSetup;
  const int forwardSlots = deviceSetup ? std::max(sp.forward, 1) : sp.forward;
  // The CPU's pruned box filter (its own scratch and filter table, per worker) or the full grid's arrays.
  const double boxFilterScratch = !boxFilter ? 0.0
                                  : isCpu(q.device) ? std::max(4 * filterGrid + 8 * filterSpectrum, boxFilterBytes(q.templateShape, fg))
                                                    : 4 * filterGrid + 8 * filterSpectrum;
  const double common = 8 * n + (q.voxelStats ? 8 * n : 0) + 2 * 4 * box + boxFilterScratch + 256;
  const double slabWorker =
      slabWorkerBytes(q.targetShape, supportOf(q.supportShape, q.templateShape), sc.inputs, sc.products) +
      sc.inputs * 4 * box + common;
  const double slotBytes = sp.slots * (8 * nc + 4 * n) + forwardSlots * 4 * n;
  const double fullWorker = slotBytes +
                            (isCpu(q.device) ? sp.forward * 16 * nc : 0) +  // CPU: pruned-R2C scratch (upper bound)
                            common;
  // Job constants: target spectra, flc-sphere's scale map, filter, template spectrum (Fourier mode).
  // (The slab correlator's factors replace the spectra, each a little larger, its rows padded.)
  const int64_t window = q.rotationMode == RotationMode::Real && q.zSums != ZSums::Spectral
                             ? supportOf(q.supportShape, q.templateShape).z : 0;  // upper bound: the region is not known here
  // Per-voxel statistics weights: the slab correlator needs none where every voxel of the core counts (usual; not
  // with mcc's target mask).
  const double shared = (q.score == Score::FlcSphere ? 4 * n : 0) + 4 * filterSpectrum + 8 * grid + 2 * 4 * box;
  const double slabConstants = slabSpectrumBytes(q.targetShape, sc.factors, window) + shared +
                               (q.statsMask && q.score == Score::Mcc ? 4 * n : 0);
  const double spectrumBytes = q.halfSpectra && !isCpu(q.device) ? 4 : 8;  // per complex value (float16 pairs)
  const double fullConstants = constantSpectra(q.score) * spectrumBytes * nc + shared + (q.statsMask ? 4 * n : 0);
  // mcc takes the slab path or the 3D one depending on the target mask (mccOverlapIsMaskSum): the larger of each.
  const bool slab = slabPossible && q.score != Score::Mcc;
  const bool either = slabPossible && q.score == Score::Mcc;
  const double perWorker = either ? std::max(slabWorker, fullWorker) : slab ? slabWorker : fullWorker;
  const double constants = either ? std::max(slabConstants, fullConstants) : slab ? slabConstants : fullConstants;
  // Host side: the caller's arrays (read in place), the set-up's temporaries, the two output maps.
  const double inputs = 4 * n + 2 * 4 * box + (q.targetMask ? 4 * n : 0) + 4 * filterSpectrum +
                        (q.initialMaps ? 8 * n : 0) + (q.statsMask ? 1 * n : 0);
  // (mcc on the CPU: one byte per voxel while the target mask is checked.)
  const double setup = deviceSetup ? 4 * n + 8 * grid + (tileFilter > 0 ? 4 * nc : 0)  // a staging copy of the target
                                    : 2 * 8 * nc + 2 * 4 * n + 8 * grid + tileFilter + (slabPossible && q.score == Score::Mcc ? n : 0);
  // On the device, while the set-up runs (before the maps exist): the target, mcc's target mask, flc-sphere's mask
  // spectrum, Fourier mode's tile filter, beside the constants and the FFT slots.
  const double deviceSetupBytes = 4 * n + (q.score == Score::Mcc && q.targetMask ? 4 * n : 0) +
                                  (q.score == Score::FlcSphere ? 8 * nc + 4 * box : 0) + (tileFilter > 0 ? 4 * nc : 0);
  const double outputs = 8 * n + (q.voxelStats ? 8 * n : 0);

  MemoryVerdict v;
  v.estimate.largestBufferBytes = std::max(8 * nc, 8 * grid);
  if (isCpu(q.device)) {
    int workers = q.threads > 0 ? q.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    v.deviceLimitBytes = 0.9 * availableHostBytes();
    const double held = std::min(q.heldInputBytes, inputs) + (q.constantsHeld ? constants : 0);
    // The first worker continues in the caller's initial maps (MatchJob::continueScores): no maps of its own.
    const double adopted = q.initialMaps ? 8 * n : 0;
    // Fewer workers when the tile is big: each worker holds its own slots and maps.
    while (workers > 1 && inputs + constants - held + workers * perWorker - adopted > v.deviceLimitBytes) --workers;
    v.workers = workers;
    v.estimate.deviceBytes = 0;
    // Two phases that do not overlap: the set-up (its temporaries, and the 3D spectra the slab layout is made
    // from, freed before the workers start) and the loop (each worker's maps and buffers; worker 0's maps become
    // the outputs, moved, not copied, or are the caller's initial maps).
    const double setupPeak = (slab || either ? constantSpectra(q.score) * 8 * nc : 0) + setup;
    v.estimate.hostBytes = inputs + constants + std::max(setupPeak, workers * perWorker - adopted);
    if (v.estimate.hostBytes - held > v.deviceLimitBytes) {
      v.fits = false;
      v.reason = "a " + q.targetShape.str() + " tile with score '" + scoreName(q.score) + "' needs " +
                 mib(v.estimate.hostBytes) + " of host memory" + (held >= 1 << 20 ? " (" + mib(held) + " of it held already)" : "") +
                 " but " + mib(v.deviceLimitBytes) + " (0.9 x available) can be used";
    }
    return v;
  }
  int index = vulkanIndex(q.device);
  std::string error;
  auto devices = vkListDevices(&error);
  if (index >= static_cast<int>(devices.size()))
    fail(ErrorCode::NoDevice, "no Vulkan device " + std::to_string(index) + " (" + std::to_string(devices.size()) +
                                  " found" + (error.empty() ? "" : ": " + error) + ")");
  const VkDeviceInfo& d = devices[index];
  v.workers = 1;
  v.estimate.deviceBytes = constants + (deviceSetup ? std::max(perWorker, slotBytes + deviceSetupBytes) : perWorker);
  v.estimate.hostBytes = inputs + setup + outputs;
  v.deviceLimitBytes = 0.9 * static_cast<double>(d.memoryBytes);
  v.bufferLimitBytes = static_cast<double>(d.maxStorageBufferRange);
  if (v.estimate.deviceBytes > v.deviceLimitBytes) {
    v.fits = false;
    v.reason = "a " + q.targetShape.str() + " tile with score '" + scoreName(q.score) + "' needs " +
               mib(v.estimate.deviceBytes) + " on " + d.name + " but " + mib(v.deviceLimitBytes) +
               " (0.9 x device-local heap) can be used";
  } else if (v.estimate.largestBufferBytes > v.bufferLimitBytes) {
    v.fits = false;
    v.reason = "a " + q.targetShape.str() + " tile needs a " + mib(v.estimate.largestBufferBytes) +
               " spectrum buffer but " + d.name + " binds at most " + mib(v.bufferLimitBytes) +
               " per storage buffer (maxStorageBufferRange); use smaller tiles";
  }
  return v;
}

void validateJob(const MatchJob& job) {
  const Shape3& t = job.targetShape;
  const Shape3& b = job.templateShape;
  auto positive = [](const Shape3& s) { return s.z >= 1 && s.y >= 1 && s.x >= 1; };
  if (!positive(t)) fail(ErrorCode::UnsupportedSize, "target shape " + t.str() + " has an axis below 1");
  if (!positive(b)) fail(ErrorCode::UnsupportedSize, "template shape " + b.str() + " has an axis below 1");
  const Shape3 sup = supportOf(job.supportShape, b);
  if (!isCentredSubBox(b, sup))
    fail(ErrorCode::InvalidOption, "supportShape " + sup.str() + " is not a sub-box of the template box " + b.str() +
                                       " with the same centre (index size // 2)");
  if (sup.z > t.z || sup.y > t.y || sup.x > t.x)
    fail(ErrorCode::UnsupportedSize, "template support " + sup.str() + " does not fit in the target tile " + t.str());
  if (job.rotationMode == RotationMode::Fourier && sup != b)
    fail(ErrorCode::InvalidOption, "rotationMode 'fourier' correlates the whole template box: supportShape " +
                                       sup.str() + " must be the box " + b.str());
  if (job.rotations.size() % 9 != 0)
    fail(ErrorCode::InvalidOption, "Expected 9 values per rotation for rotations but received " +
                                       std::to_string(job.rotations.size()));
  if (job.rotationStart < 0 || job.rotationEnd < job.rotationStart ||
      job.rotationEnd * 9 > static_cast<int64_t>(job.rotations.size()))
    fail(ErrorCode::InvalidOption, "rotation range [" + std::to_string(job.rotationStart) + ", " +
                                       std::to_string(job.rotationEnd) + ") is outside the " +
                                       std::to_string(job.rotations.size() / 9) + " rotations given");
  if (job.rotationMode == RotationMode::Fourier && (job.score == Score::Flc || job.score == Score::Mcc))
    fail(ErrorCode::InvalidOption, std::string("rotationMode 'fourier' supports the scores cc and flc-sphere, not ") +
                                       scoreName(job.score) + " (whose mask rotates in real space)");
  if (!job.filter.empty()) {
    const Shape3& f = job.filterShape;
    if (f.z < b.z || f.y < b.y || f.x < b.x)
      fail(ErrorCode::InvalidOption, "filterShape " + f.str() + " is smaller than the template box " + b.str());
  }
  if (std::isfinite(job.targetVariance) && job.targetVariance < 0)
    fail(ErrorCode::InvalidOption, "Expected a variance >= 0 for targetVariance but received " +
                                       std::to_string(job.targetVariance));
  if (job.regionShape.voxels() > 0 &&
      (job.regionStart.z + job.regionShape.z > t.z || job.regionStart.y + job.regionShape.y > t.y ||
       job.regionStart.x + job.regionShape.x > t.x))
    fail(ErrorCode::InvalidOption, "outputRegion " + job.regionStart.str() + " + " + job.regionShape.str() +
                                       " is not inside the target tile " + t.str());
  if (job.halfSpectra && isCpu(job.device))
    fail(ErrorCode::InvalidOption, "Expected a Vulkan device for spectrumPrecision 'half' but received \"cpu\" (the CPU "
                                   "path keeps its spectra in float32)");
  if (job.rotationsPerSubmit < 0 || job.rotationsPerSubmit > 32)
    fail(ErrorCode::InvalidOption, "Expected integer 0..32 for rotationsPerSubmit but received " +
                                       std::to_string(job.rotationsPerSubmit));
  if (job.fourierOversampling < 1 || job.fourierOversampling > 8)
    fail(ErrorCode::InvalidOption, "Expected integer 1..8 for fourierOversampling but received " +
                                       std::to_string(job.fourierOversampling));
}

namespace {

void checkLengths(const MatchJob& job) {
  auto expect = [](const char* name, size_t got, int64_t want) {
    if (static_cast<int64_t>(got) != want)
      fail(ErrorCode::InvalidOption, std::string("Expected ") + std::to_string(want) + " values for " + name +
                                         " but received " + std::to_string(got));
  };
  const int64_t n = job.targetShape.voxels();
  expect("target", job.target.size(), n);
  expect("template", job.templ.size(), job.templateShape.voxels());
  expect("mask", job.mask.size(), job.templateShape.voxels());
  if (!job.targetMask.empty()) expect("targetMask", job.targetMask.size(), n);
  if (!job.statsMask.empty()) expect("statsMask", job.statsMask.size(), n);
  if (!job.filter.empty()) expect("filter", job.filter.size(), job.filterShape.spectrumCount());
  if (!job.initialScores.empty() || !job.initialIndices.empty()) {
    expect("initialScores", job.initialScores.size(), n);
    expect("initialIndices", job.initialIndices.size(), n);
  }
}

// Everything computed once per tile, on the host with FFTW (float), before any rotation.
struct TileSetup {
  FftwArray<cfloat> spectra[3];  // cc/flc-sphere: F; flc: F, F2; mcc: F1 = R2C(f mf), F2 = R2C(f^2 mf), Mf
  FftwArray<float> scale;        // flc-sphere
  std::vector<cfloat> templateSpectrum;  // Fourier mode
  float invN = 1;
  double flatVariance = 0;  // local variances of the target at most this score 0 (normalised scores)
  bool onDevice = false;    // Vulkan: no spectra here; the device makes them from `device` (prepareOnDevice)
  DeviceSetupInputs device;
};

bool normalisedScore(Score s) { return s != Score::Cc; }

// The target's mean and variance as the job gives them, or (NaN) this tile's own.
void targetMoments(const MatchJob& job, double* mean, double* variance) {
  *mean = job.targetMean;
  *variance = job.targetVariance;
  if (std::isfinite(*mean) && std::isfinite(*variance)) return;
  double s1 = 0, s2 = 0;
  for (float v : job.target) s1 += v;
  const double m = s1 / static_cast<double>(job.target.size());
  for (float v : job.target) s2 += (v - m) * (v - m);
  if (!std::isfinite(*mean)) *mean = m;
  if (!std::isfinite(*variance)) *variance = s2 / static_cast<double>(job.target.size());
}

// The support's voxels of a box-shaped array at their wrapped tile positions (the rest of the box is zero; a tile
// smaller than the box would wrap it onto the support).
void placeBox(float* tile, const Shape3& tileShape, const Shape3& box, const Shape3& support, const float* values) {
  const Shape3 o = supportOffset(box, support);
  for (int64_t z = o.z; z < o.z + support.z; ++z)
    for (int64_t y = o.y; y < o.y + support.y; ++y)
      for (int64_t x = o.x; x < o.x + support.x; ++x)
        tile[wrappedIndex(tileShape, box, z, y, x)] = values[(z * box.y + y) * box.x + x];
}

// Fourier mode: the template filter (given on filterShape, the grid real space filters each box on) on the tile's
// half spectrum, sampled trilinearly at each tile frequency (periodic grid; the half spectrum's other half by
// Hermitian symmetry, the filter being real and even). The filter is a function of frequency in the tomogram's
// frame, the same for every rotation.
std::vector<float> tileFilter(const MatchJob& job) {
  const Shape3& t = job.targetShape;
  const Shape3& g = job.filterShape;
  const int64_t hg = g.halfX();
  auto at = [&](int64_t z, int64_t y, int64_t x) {
    z = ((z % g.z) + g.z) % g.z;
    y = ((y % g.y) + g.y) % g.y;
    x = ((x % g.x) + g.x) % g.x;
    if (x >= hg) {
      x = g.x - x;
      z = (g.z - z) % g.z;
      y = (g.y - y) % g.y;
    }
    return static_cast<double>(job.filter[(z * g.y + y) * hg + x]);
  };
  std::vector<float> out(t.spectrumCount());
  const int64_t ht = t.halfX();
  int64_t i = 0;
  for (int64_t kz = 0; kz < t.z; ++kz)
    for (int64_t ky = 0; ky < t.y; ++ky)
      for (int64_t kx = 0; kx < ht; ++kx, ++i) {
        const double uz = signedFrequency(kz, t.z) * static_cast<double>(g.z);
        const double uy = signedFrequency(ky, t.y) * static_cast<double>(g.y);
        const double ux = static_cast<double>(kx) / static_cast<double>(t.x) * static_cast<double>(g.x);
        const double fz = std::floor(uz), fy = std::floor(uy), fx = std::floor(ux);
        const double dz = uz - fz, dy = uy - fy, dx = ux - fx;
        const int64_t z0 = static_cast<int64_t>(fz), y0 = static_cast<int64_t>(fy), x0 = static_cast<int64_t>(fx);
        double v = 0;
        for (int c = 0; c < 8; ++c) {
          const double w = (c & 4 ? dz : 1 - dz) * (c & 2 ? dy : 1 - dy) * (c & 1 ? dx : 1 - dx);
          if (w != 0) v += w * at(z0 + (c >> 2 & 1), y0 + (c >> 1 & 1), x0 + (c & 1));
        }
        out[i] = static_cast<float>(v);
      }
  return out;
}

// Fourier mode: the template's oversampled full spectrum (a host FFT of a grid about the box's size, on every path).
std::vector<cfloat> fourierTemplateSpectrum(const MatchJob& job, const Shape3& grid) {
  const Shape3& shape = job.targetShape;
  // The template (normalised under its mask for flc-sphere), centre at index 0 of an oversampled grid.
  const Shape3& b = job.templateShape;
  std::vector<float> values(job.templ);
  if (job.score == Score::FlcSphere) {
    double sm = 0, s1 = 0, s2 = 0;
    for (int64_t i = 0; i < b.voxels(); ++i) {
      double m = job.mask[i], t = job.templ[i];
      sm += m; s1 += m * t; s2 += m * t * t;
    }
    double mu = sm > 0 ? s1 / sm : 0, var = sm > 0 ? s2 / sm - mu * mu : 0;
    double inv = sm > 0 && var > 1e-10 * (s2 / sm) ? 1 / std::sqrt(var) : 0;
    for (int64_t i = 0; i < b.voxels(); ++i) values[i] = static_cast<float>((job.templ[i] - mu) * inv * job.mask[i]);
  }
  // Gridding correction: trilinear interpolation of the spectrum multiplies the template by sinc^2(pi q / G)
  // per axis (q the offset from the centre): divide it out, except on axes where the grid equals the tile
  // (there the samples of grid-aligned rotations fall on grid points and need no correction).
  auto sinc2 = [](double offset, int64_t size) {
    const double a = M_PI * offset / static_cast<double>(size);
    const double s = a == 0 ? 1.0 : std::sin(a) / a;
    return s * s;
  };
  {
    int64_t i = 0;
    for (int64_t z = 0; z < b.z; ++z)
      for (int64_t y = 0; y < b.y; ++y)
        for (int64_t x = 0; x < b.x; ++x, ++i) {
          double c = 1.0;
          if (grid.z < shape.z) c *= sinc2(static_cast<double>(z - b.z / 2), grid.z);
          if (grid.y < shape.y) c *= sinc2(static_cast<double>(y - b.y / 2), grid.y);
          if (grid.x < shape.x) c *= sinc2(static_cast<double>(x - b.x / 2), grid.x);
          values[i] = static_cast<float>(values[i] / c);
        }
  }
  std::vector<float> padded(grid.voxels(), 0.0f);
  placeBox(padded.data(), grid, b, b, values.data());
  std::vector<cfloat> spectrum(grid.voxels());
  fftwForwardFullComplex(grid, padded.data(), spectrum.data());
  return spectrum;
}

// `threads`: FFTW threads for the setup transforms. The CPU path passes 1 (its workers' plan, no extra planning);
// a Vulkan job with hostSetup passes the host's cores, since there the setup is the only host FFT work of the job.
// `onDevice` (Vulkan): only what the device's set-up needs from the host (TileSetup::device), no host FFT of the tile.
TileSetup prepareTile(const MatchJob& job, const Shape3& grid, int threads, double* planMs, bool onDevice, StepTimes& times) {
  TileSetup s;
  const Shape3& shape = job.targetShape;
  const int64_t n = shape.voxels(), nc = shape.spectrumCount();
  s.invN = 1.0f / static_cast<float>(n);
  double targetMean = 0, targetVariance = 0;
  targetMoments(job, &targetMean, &targetVariance);
  // A constant target is flat everywhere: every normalised score is 0 there.
  s.flatVariance = targetVariance > 0 ? kFlatVariance * targetVariance : std::numeric_limits<double>::infinity();
  // Normalised scores do not change when a constant is subtracted from the target; their local variances
  // (E f^2 - (E f)^2 from float FFT sums) lose far less to cancellation on centred data.
  // Centred on the fly (a centred copy of a 512x512x200 tile would be another 240 MB).
  double shift = normalisedScore(job.score) ? targetMean : 0.0;
  if (onDevice) {
    s.onDevice = true;
    s.device.shift = shift;
    s.device.flatVariance = s.flatVariance;
    for (float m : job.mask) s.device.maskSum += m;
    if (job.rotationMode == RotationMode::Fourier && !job.filter.empty()) {
      s.device.tileFilter = tileFilter(job);
      for (float& v : s.device.tileFilter) v *= s.invN;  // the C2R is unnormalised
    }
    if (job.rotationMode == RotationMode::Fourier) s.templateSpectrum = fourierTemplateSpectrum(job, grid);
    return s;
  }
  const FftwPlanPair& plans = fftwPlans(shape, threads, planMs, PlanEffort::OneShot);
  times.step("plans");
  auto real = fftwAlloc<float>(n);
  // `value` is inlined into the fill (a std::function call per voxel showed in profiles of large tiles).
  auto forward = [&](const auto& value) {
    for (int64_t i = 0; i < n; ++i) real[i] = value(i);
    auto spec = fftwAlloc<cfloat>(nc);
    fftwR2C(plans, real.get(), spec.get());
    return spec;
  };
  const float* target = job.target.data();
  auto fv = [&](int64_t i) { return static_cast<float>(target[i] - shift); };
  // Fourier mode with a template filter: the filter is a function of frequency in the tomogram's frame, the same for
  // every rotation, and Σ f (W t_R) = Σ (W f) t_R (W real and even): the tile is filtered once and correlated with
  // the unfiltered rotated template, whose normalisation under the mask then holds for every rotation. flc-sphere's
  // local statistics are those of the filtered tile, so the score stays a correlation coefficient in [-1, 1]. (Real
  // space normalises W t_R under the mask instead, cutting off the filtered template's spread beyond it; filtering
  // the gathered spectrum would keep that spread, which measured scores of 1 next to a particle - see README.)
  FftwArray<float> filtered;
  if (job.rotationMode == RotationMode::Fourier && !job.filter.empty()) {
    auto spec = forward(fv);
    const std::vector<float> h = tileFilter(job);
    for (int64_t i = 0; i < nc; ++i) spec[i] *= h[i] * s.invN;  // the C2R is unnormalised
    filtered = fftwAlloc<float>(n);
    fftwC2R(plans, spec.get(), filtered.get());
    target = filtered.get();
    shift = 0.0;  // centred before the filter
  }
  const float* mf = job.targetMask.empty() ? nullptr : job.targetMask.data();
  switch (job.score) {
    case Score::Cc: s.spectra[0] = forward(fv); break;
    case Score::Flc:
      s.spectra[0] = forward(fv);
      s.spectra[1] = forward([&](int64_t i) { const float v = fv(i); return v * v; });
      break;
    case Score::Mcc:
      s.spectra[0] = forward([&](int64_t i) { return mf ? fv(i) * mf[i] : fv(i); });
      s.spectra[1] = forward([&](int64_t i) { const float v = fv(i); return mf ? v * v * mf[i] : v * v; });
      s.spectra[2] = forward([&](int64_t i) { return mf ? mf[i] : 1.0f; });
      break;
    case Score::FlcSphere: {
      s.spectra[0] = forward(fv);
      times.step("target R2C");
      // Local mean and variance of f under the (unrotated) mask: two FFT convolutions, once per tile.
      std::fill(real.get(), real.get() + n, 0.0f);
      placeBox(real.get(), shape, job.templateShape, supportOf(job.supportShape, job.templateShape), job.mask.data());
      auto maskSpec = fftwAlloc<cfloat>(nc);
      fftwR2C(plans, real.get(), maskSpec.get());
      times.step("mask R2C");
      // Each product overwrites one of its inputs (E[f^2 m]'s the f^2 spectrum, then E[f m]'s the mask's), and the
      // scale map overwrites E[f m]: at most three half spectra and two tile arrays at once, and no spectrum-sized
      // scratch (a fresh 315 MB array on a 512x512x200 tile is ~0.2-0.7 s of first-touch page faults on a VM).
      auto f2Spec = forward([&](int64_t i) { const float v = fv(i); return v * v; });
      for (int64_t i = 0; i < nc; ++i) f2Spec[i] *= std::conj(maskSpec[i]);
      fftwC2R(plans, f2Spec.get(), real.get());  // E[f^2 m]
      f2Spec.reset();
      times.step("E[f^2 m]");
      for (int64_t i = 0; i < nc; ++i) maskSpec[i] = s.spectra[0][i] * std::conj(maskSpec[i]);
      s.scale = fftwAlloc<float>(n);  // first E[f m], then the scale
      fftwC2R(plans, maskSpec.get(), s.scale.get());
      maskSpec.reset();
      times.step("E[f m]");
      double maskSum = 0;
      for (float m : job.mask) maskSum += m;
      const double k = maskSum > 0 ? 1.0 / (static_cast<double>(n) * maskSum) : 0.0;
      for (int64_t i = 0; i < n; ++i) {
        double m1 = s.scale[i] * k, m2 = real[i] * k;
        double var = m2 - m1 * m1;
        s.scale[i] = var > s.flatVariance && k > 0
                         ? static_cast<float>(1.0 / (static_cast<double>(n) * maskSum * std::sqrt(var)))
                         : 0.0f;
      }
      times.step("scale map");
      break;
    }
  }
  if (job.rotationMode == RotationMode::Fourier) s.templateSpectrum = fourierTemplateSpectrum(job, grid);
  return s;
}

struct WorkerState {
  std::unique_ptr<Kernels> kernels;
  BufId templ = kNoBuffer, mask = kNoBuffer, filter = kNoBuffer, scale = kNoBuffer, spectrum = kNoBuffer;
  BufId spectra[3] = {kNoBuffer, kNoBuffer, kNoBuffer};
  BufId boxT = kNoBuffer, boxM = kNoBuffer, stats = kNoBuffer;
  BufId statsWeights = kNoBuffer;
  bool adoptedMaps = false;  // its maps are MatchJob::continueScores / continueIndices
};

// One rotation: one fused call where the path has one (CPU cc / flc-sphere), else the same kernels on every path.
void evaluateRotation(const MatchJob& job, WorkerState& w, const TileSetup& setup, int64_t r) {
  Kernels& k = *w.kernels;
  const RotationParams rot = rotationParams(job.rotations.data() + 9 * r);
  FinaliseParams fp;
  fp.score = job.score;
  fp.rotationGlobal = static_cast<int32_t>(r);
  fp.rotationLocal = static_cast<int32_t>(r - job.rotationStart);
  fp.invN = setup.invN;
  fp.scalar = setup.invN;
  fp.flatVariance = static_cast<float>(std::min<double>(setup.flatVariance, std::numeric_limits<float>::max()));
  fp.scaleMap = w.scale;
  fp.stats = w.stats;
  fp.statsWeights = w.statsWeights;
  if (job.score == Score::Cc || job.score == Score::FlcSphere) {
    const bool fourier = job.rotationMode == RotationMode::Fourier;
    const bool normalised = job.score == Score::FlcSphere;
    const PlaceMode mode = normalised ? PlaceMode::Normalised : PlaceMode::Raw;
    if (!fourier) {
      k.rotateBox(w.boxT, w.templ, rot);
      if (w.filter != kNoBuffer) k.filterBox(w.boxT, w.filter);
      if (normalised) k.boxStats(w.stats, 0, w.boxT, w.mask);
    }
    if (k.correlateFused(w.boxT, w.mask, w.stats, mode, w.spectrum, fourier ? &rot : nullptr, fp)) return;
    if (fourier) {
      k.gatherFourier(k.slotS(0), w.spectra[0], w.spectrum, rot);
    } else {
      k.place(k.slotP(0), w.boxT, normalised ? w.mask : kNoBuffer, normalised ? w.stats : kNoBuffer, 0, mode);
      k.r2c(0);
      k.mulConj(k.slotS(0), w.spectra[0], k.slotS(0));
    }
    k.c2r(0);
    fp.outs[0] = k.slotO(0);
  } else {
    switch (job.score) {
      case Score::Cc:
      case Score::FlcSphere: break;  // above
      case Score::Flc:
        k.rotateBox(w.boxT, w.templ, rot);
        if (w.filter != kNoBuffer) k.filterBox(w.boxT, w.filter);
        k.rotateBox(w.boxM, w.mask, rot);
        k.boxStats(w.stats, 0, w.boxT, w.boxM);
        if (k.correlateFused(w.boxT, w.boxM, w.stats, PlaceMode::Normalised, kNoBuffer, nullptr, fp)) return;
        k.place(k.slotP(0), w.boxT, w.boxM, w.stats, 0, PlaceMode::Normalised);
        k.place(k.slotP(1), kNoBuffer, w.boxM, kNoBuffer, 0, PlaceMode::Mask);
        k.r2c(0);
        k.r2c(1);
        k.mulConj(k.slotS(2), w.spectra[0], k.slotS(1));  // sum f m_R
        k.mulConj(k.slotS(1), w.spectra[1], k.slotS(1));  // sum f^2 m_R
        k.mulConj(k.slotS(0), w.spectra[0], k.slotS(0));  // cc with the normalised template
        for (int j = 0; j < 3; ++j) {
          k.c2r(j);
          fp.outs[j] = k.slotO(j);
        }
        break;
      case Score::Mcc:
        k.rotateBox(w.boxT, w.templ, rot);
        if (w.filter != kNoBuffer) k.filterBox(w.boxT, w.filter);
        k.rotateBox(w.boxM, w.mask, rot);
        if (k.correlateFused(w.boxT, w.boxM, w.stats, PlaceMode::TimesMask, kNoBuffer, nullptr, fp)) return;
        k.place(k.slotP(0), kNoBuffer, w.boxM, kNoBuffer, 0, PlaceMode::Mask);
        k.place(k.slotP(1), w.boxT, w.boxM, kNoBuffer, 0, PlaceMode::TimesMask);
        k.place(k.slotP(2), w.boxT, w.boxM, kNoBuffer, 0, PlaceMode::SquaredTimesMask);
        for (int j = 0; j < 3; ++j) k.r2c(j);
        // Spectra: F1 = R2C(f mf), F2 = R2C(f^2 mf), Mf = R2C(mf). Order matters: slots are reused in place.
        k.mulConj(k.slotS(3), w.spectra[2], k.slotS(1));  // S_t   = mf * (t m)
        k.mulConj(k.slotS(4), w.spectra[2], k.slotS(2));  // S_tt  = mf * (t^2 m)
        k.mulConj(k.slotS(5), w.spectra[0], k.slotS(1));  // S_ft  = (f mf) * (t m)
        k.mulConj(k.slotS(1), w.spectra[0], k.slotS(0));  // S_f   = (f mf) * m
        k.mulConj(k.slotS(2), w.spectra[1], k.slotS(0));  // S_ff  = (f^2 mf) * m
        k.mulConj(k.slotS(0), w.spectra[2], k.slotS(0));  // overlap = mf * m
        for (int j = 0; j < 6; ++j) k.c2r(j);
        k.reduceMax(k.slotO(0), w.stats, 1);
        // finalise wants (overlap, S_f, S_ff, S_t, S_tt, S_ft)
        for (int j = 0; j < 6; ++j) fp.outs[j] = k.slotO(j);
        break;
    }
  }
  k.finalise(fp);
}

// A tile's set-up kept between calls on the same inputs (MatchJob::keepSetup): a run in batches of rotations pays
// the tile's transforms and local statistics once. Keyed by a hash of every input the set-up reads, contents
// included, so a changed target is never matched against a stale set-up. One entry per device, so that runs on
// several devices at once (a tile's rotations split across them) do not evict each other; an entry is immutable
// once made, so concurrent calls on one device share it.
struct PreparedTile {
  uint64_t key = 0;
  TileSetup setup;
  std::shared_ptr<const SlabSpectrum> slab;
  std::vector<float> statsWeights;  // empty: every voxel the path evaluates counts
  double counted = 0;               // voxels counted per rotation
};
std::mutex preparedMutex;
std::map<std::string, std::shared_ptr<const PreparedTile>> preparedCache;  // by MatchJob::device

uint64_t setupKey(const MatchJob& job, int threads);

// The device's kept set-up when it was made from these inputs. *key: their hash, computed only when a set-up is kept
// or is to be kept (hashing a large tile costs tens of milliseconds, so not under the lock); else 0.
std::shared_ptr<const PreparedTile> takePrepared(const MatchJob& job, int threads, uint64_t* key) {
  std::shared_ptr<const PreparedTile> p;
  {
    std::lock_guard<std::mutex> lock(preparedMutex);
    auto found = preparedCache.find(job.device);
    if (found != preparedCache.end()) p = found->second;
  }
  *key = p || job.keepSetup ? setupKey(job, threads) : 0;
  if (p && p->key == *key) return p;
  if (p) {
    // Another tile's set-up is dropped before this one is made: only the latest is worth keeping.
    std::lock_guard<std::mutex> lock(preparedMutex);
    auto found = preparedCache.find(job.device);
    if (found != preparedCache.end() && found->second == p) preparedCache.erase(found);
  }
  return nullptr;
}

// After a call: keep its set-up for the device's next call, or (its last batch) let it go.
void settlePrepared(const MatchJob& job, std::shared_ptr<const PreparedTile> p) {
  std::lock_guard<std::mutex> lock(preparedMutex);
  if (job.keepSetup) {
    preparedCache[job.device] = std::move(p);
    return;
  }
  auto found = preparedCache.find(job.device);
  if (found != preparedCache.end() && found->second == p) preparedCache.erase(found);
}

// 64-bit hash of byte ranges: four independent multiply-xorshift lanes (~0.1 ns per byte, so a 250 MB tile adds
// ~25 ms to a call whose set-up takes seconds).
class Hasher {
 public:
  void bytes(const void* data, size_t n) {
    const unsigned char* p = static_cast<const unsigned char*>(data);
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
      for (int l = 0; l < 4; ++l) {
        uint64_t w;
        std::memcpy(&w, p + i + 8 * l, 8);
        lane_[l] = mix(lane_[l] ^ w);
      }
    for (; i < n; ++i) lane_[0] = mix(lane_[0] ^ p[i]);
    lane_[1] = mix(lane_[1] ^ n);
  }
  template <typename T>
  void value(const T& v) { bytes(&v, sizeof v); }
  uint64_t digest() const { return mix(lane_[0] ^ mix(lane_[1] ^ mix(lane_[2] ^ mix(lane_[3])))); }

 private:
  static uint64_t mix(uint64_t h) {
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 29);
  }
  uint64_t lane_[4] = {0x9e3779b97f4a7c15ull, 0xbf58476d1ce4e5b9ull, 0x94d049bb133111ebull, 0x2545f4914f6cdd1dull};
};

uint64_t setupKey(const MatchJob& job, int threads) {
  Hasher h;
  h.bytes(job.device.data(), job.device.size());
  for (const Shape3* s : {&job.targetShape, &job.templateShape, &job.supportShape, &job.regionStart, &job.regionShape})
    for (int64_t v : {s->z, s->y, s->x}) h.value(v);
  for (int v : {static_cast<int>(job.score), static_cast<int>(job.rotationMode), static_cast<int>(job.interpolation),
                job.fourierOversampling,
                static_cast<int>(job.fullTransforms), static_cast<int>(job.zSums), threads,
                static_cast<int>(job.hostSetup)})
    h.value(v);
  h.value(job.targetMean);
  h.value(job.targetVariance);
  h.bytes(job.target.data(), sizeof(float) * job.target.size());
  h.bytes(job.targetMask.data(), sizeof(float) * job.targetMask.size());
  h.bytes(job.statsMask.data(), job.statsMask.size());
  // Only what the set-up reads: the template through its spectrum (Fourier mode), the mask through flc-sphere's local
  // σ map (and its Fourier-mode template) and mcc's overlap test. So the templates of one pass that share a box and a
  // mask share each tile's target spectra and σ map (kept between their calls), on every path.
  const bool fourier = job.rotationMode == RotationMode::Fourier;
  if (fourier) h.bytes(job.templ.data(), sizeof(float) * job.templ.size());
  if (fourier) {  // the tile's filter is made from it
    for (int64_t v : {job.filterShape.z, job.filterShape.y, job.filterShape.x}) h.value(v);
    h.bytes(job.filter.data(), sizeof(float) * job.filter.size());
  }
  if (fourier || job.score == Score::FlcSphere || job.score == Score::Mcc) h.bytes(job.mask.data(), sizeof(float) * job.mask.size());
  return h.digest();
}

// Statistics count the voxels of statsMask inside outputRegion, on every path. The slab correlator evaluates only
// the region's voxels: where all of them count, it needs no weights (one stream less per rotation).
void countedVoxels(const MatchJob& job, bool regionOnly, std::vector<float>* weights, double* counted) {
  const Shape3& t = job.targetShape;
  const bool region = job.regionShape.voxels() > 0;
  const Shape3 a = region ? job.regionStart : Shape3{0, 0, 0}, r = region ? job.regionShape : t;
  // visit(first voxel of a row of the region): a call per row, not per voxel.
  auto forRows = [&](const auto& visit) {
    for (int64_t z = a.z; z < a.z + r.z; ++z)
      for (int64_t y = a.y; y < a.y + r.y; ++y) visit((z * t.y + y) * t.x + a.x);
  };
  const uint8_t* mask = job.statsMask.empty() ? nullptr : job.statsMask.data();
  int64_t n = 0;
  if (!mask) n = r.voxels();
  else forRows([&](int64_t i) { for (int64_t x = 0; x < r.x; ++x) n += mask[i + x] != 0; });
  *counted = static_cast<double>(n);
  weights->clear();
  if ((regionOnly || !region) && n == r.voxels()) return;
  weights->assign(t.voxels(), 0.0f);
  forRows([&](int64_t i) {
    for (int64_t x = 0; x < r.x; ++x) (*weights)[i + x] = !mask || mask[i + x] != 0 ? 1.0f : 0.0f;
  });
}

// mcc scores 0 where the overlap of the rotated mask with the target mask is below 0.3 x its maximum over the tile.
// That maximum is the rotated mask's sum (known per rotation without the overlap map, so the slab correlator can
// skip the tile's margins) when 0 <= mf <= 1 everywhere, mf = 1 on a whole support-sized window somewhere (then
// the overlap there is the sum, and nowhere more), and m_R >= 0 (a mask >= 0 rotated with trilinear weights;
// Catmull-Rom overshoots). Circular windows, as the correlation is. Checked with run lengths, one byte per voxel.
bool mccOverlapIsMaskSum(const MatchJob& job, const Shape3& support) {
  if (job.interpolation != Interpolation::Linear) return false;
  for (float m : job.mask)
    if (!(m >= 0.0f)) return false;
  if (job.targetMask.empty()) return true;  // all ones
  const Shape3& t = job.targetShape;
  std::vector<uint8_t> ones(t.voxels());
  for (int64_t i = 0; i < t.voxels(); ++i) {
    const float v = job.targetMask[i];
    if (!(v >= 0.0f && v <= 1.0f)) return false;
    ones[i] = v == 1.0f;
  }
  // In place along one axis of an [outer][length][inner] array: 1 where the `window` values starting there (wrapped)
  // are all 1. Two laps backwards count the run of ones ahead of each position; each value is read in the first
  // lap before the second lap overwrites it.
  std::vector<int32_t> run;
  auto along = [&](int64_t outer, int64_t length, int64_t inner, int64_t window) {
    for (int64_t o = 0; o < outer; ++o) {
      uint8_t* base = ones.data() + o * length * inner;
      run.assign(inner, 0);
      for (int64_t i = 2 * length - 1; i >= 0; --i) {
        uint8_t* row = base + (i % length) * inner;
        for (int64_t j = 0; j < inner; ++j) {
          run[j] = row[j] ? std::min<int32_t>(run[j] + 1, static_cast<int32_t>(length)) : 0;
          if (i < length) row[j] = run[j] >= window;
        }
      }
    }
  };
  along(t.z * t.y, t.x, 1, support.x);
  along(t.z, t.y, t.x, support.y);
  along(1, t.z, t.y * t.x, support.z);
  return std::find(ones.begin(), ones.end(), uint8_t{1}) != ones.end();
}

}  // namespace

void releaseKeptSetup(const std::string& device) {
  std::lock_guard<std::mutex> lock(preparedMutex);
  if (device.empty()) preparedCache.clear();
  else preparedCache.erase(device);
  if (device.empty() || !isCpu(device)) vkReleaseKeptSetup(device.empty() ? -1 : vulkanIndex(device));
}

MatchResult runMatchJob(const MatchJob& job, const ProgressFn& progress, const std::atomic<bool>& cancelled) {
  const auto setupStart = Clock::now();
  StepTimes times;
  validateJob(job);
  MemoryQuery q;
  q.device = job.device;
  q.targetShape = job.targetShape;
  q.templateShape = job.templateShape;
  q.score = job.score;
  q.rotationMode = job.rotationMode;
  q.threads = job.threads;
  q.fourierOversampling = job.fourierOversampling;
  q.filter = !job.filter.empty();
  q.targetMask = !job.targetMask.empty();
  q.initialMaps = !job.initialScores.empty();
  q.statsMask = !job.statsMask.empty() || job.regionShape.voxels() > 0;
  q.fullTransforms = job.fullTransforms;
  q.zSums = job.zSums;
  q.voxelStats = job.voxelStats;
  q.halfSpectra = job.halfSpectra;
  q.hostSetup = job.hostSetup;
  q.supportShape = job.supportShape;
  const int hostThreads = job.threads > 0 ? job.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // The tile's set-up kept from the last call on the same inputs (taken first: another tile's is let go, and this
  // call's check then counts what it holds; the key hashes the arrays as they are, so before checkLengths is safe).
  uint64_t key = 0;
  std::shared_ptr<const PreparedTile> prepared = takePrepared(job, hostThreads, &key);
  times.step("key");
  q.heldInputBytes = 4.0 * static_cast<double>(job.target.size() + job.targetMask.size() + job.initialScores.size() +
                                               job.initialIndices.size() + job.templ.size() + job.mask.size()) +
                     static_cast<double>(job.statsMask.size());
  q.constantsHeld = prepared != nullptr;
  const MemoryVerdict verdict = estimateMatchMemory(q);
  if (!verdict.fits) fail(ErrorCode::DeviceMemory, verdict.reason);
  checkLengths(job);
  if (cancelled) fail(ErrorCode::Cancelled, "cancelled before the first rotation");

  const int64_t total = job.rotationEnd - job.rotationStart;
  const int workers = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(verdict.workers, total)));
  const Shape3 grid = job.rotationMode == RotationMode::Fourier ? fourierGrid(job.targetShape, job.templateShape, job.fourierOversampling)
                                                                 : Shape3{};
  const bool onCpu = isCpu(job.device);
  MatchResult result;
  double setupPlanMs = 0;

  KernelConfig config;
  config.score = job.score;
  config.tile = job.targetShape;
  config.box = job.templateShape;
  config.support = supportOf(job.supportShape, job.templateShape);
  config.fourierGrid = grid;
  const bool fourierMode = job.rotationMode == RotationMode::Fourier;
  config.filterGrid = job.filter.empty() || fourierMode ? Shape3{} : job.filterShape;
  config.interpolation = job.interpolation;
  config.rotationCount = total;
  config.fullTransforms = job.fullTransforms;
  config.voxelStats = job.voxelStats;
  config.regionStart = job.regionShape.voxels() > 0 ? job.regionStart : Shape3{0, 0, 0};
  config.regionShape = job.regionShape.voxels() > 0 ? job.regionShape : job.targetShape;
  const SlotPlan sp = slotPlan(job.score, job.rotationMode);
  const bool cpu = onCpu;
  const int64_t nc = job.targetShape.spectrumCount();
  const bool slabPossible = cpu && usesSlabCorrelator(job.score, job.rotationMode, job.fullTransforms);

  // The tile's set-up: kept from the last call on the same inputs, or made now. The whole machine's threads do
  // the set-up's transforms (the workers have not started).
  result.setupReused = prepared != nullptr;
  if (!prepared) {
    auto made = std::make_shared<PreparedTile>();
    made->key = key;
    made->setup = prepareTile(job, grid, hostThreads, &setupPlanMs, !cpu && !job.hostSetup, times);
    TileSetup& setup = made->setup;
    const bool slabPath = slabPossible && (job.score != Score::Mcc || mccOverlapIsMaskSum(job, config.support));
    // On the CPU the slab correlator's factors replace the spectra: cc / flc-sphere G = F; flc F and F2 (sum f^2 m);
    // mcc F1, F2 and Mf.
    if (slabPath) {
      std::vector<SlabFactorSource> factors;
      for (int j = 0; j < slabCounts(job.score).factors; ++j) factors.push_back({setup.spectra[j].get()});
      const bool direct = job.rotationMode == RotationMode::Real &&
                          (job.zSums == ZSums::Auto ? directZPays(job.targetShape, config.support, config.regionShape.z)
                                                    : job.zSums == ZSums::Direct);
      made->slab = makeSlabSpectrum(job.targetShape, factors, direct ? config.support.z : 0);
      for (auto& spectrum : setup.spectra) spectrum.reset();
      times.step("slab spectrum");
    }
    countedVoxels(job, slabPath, &made->statsWeights, &made->counted);
    times.step("counted voxels");
    prepared = std::move(made);
  }
  const TileSetup& setup = prepared->setup;
  const std::shared_ptr<const SlabSpectrum>& slab = prepared->slab;
  const std::vector<float>& statsWeights = prepared->statsWeights;

  // The filter with the grid's 1/N folded in: the FFTs are unnormalised. (Fourier mode filtered the tile instead.)
  std::vector<float> boxFilter(fourierMode ? std::vector<float>{} : job.filter);
  if (!boxFilter.empty()) {
    const float scale = 1.0f / static_cast<float>(job.filterShape.voxels());
    for (float& v : boxFilter) v *= scale;
  }

  result.planMs = setupPlanMs;
  std::vector<WorkerState> states(workers);
  std::vector<double> workerPlanMs(workers, 0.0);
  auto makeWorker = [&](int wi) {
    WorkerState& w = states[wi];
    w.kernels = cpu ? makeCpuKernels(config, 1, slab) : makeVkKernels(vulkanIndex(job.device), config);
    Kernels& k = *w.kernels;
    const size_t boxBytes = sizeof(float) * job.templateShape.voxels();
    w.templ = k.constant(job.templ.data(), boxBytes);
    w.mask = k.constant(job.mask.data(), boxBytes);
    if (!boxFilter.empty()) w.filter = k.constant(boxFilter.data(), sizeof(float) * boxFilter.size());
    for (int j = 0; j < 3; ++j)
      if (setup.spectra[j])
        w.spectra[j] = job.halfSpectra ? k.halfSpectrumConstant(reinterpret_cast<const float*>(setup.spectra[j].get()), nc)
                                       : k.constant(setup.spectra[j].get(), sizeof(cfloat) * nc);
    if (setup.scale) w.scale = k.constant(setup.scale.get(), sizeof(float) * job.targetShape.voxels());
    if (!statsWeights.empty()) w.statsWeights = k.constant(statsWeights.data(), sizeof(float) * statsWeights.size());
    if (!setup.templateSpectrum.empty())
      w.spectrum = k.constant(setup.templateSpectrum.data(), sizeof(cfloat) * setup.templateSpectrum.size());
    w.boxT = k.allocate(boxBytes);
    w.boxM = k.allocate(boxBytes);
    w.stats = k.allocate(sizeof(float) * 16);
    // The set-up on the device runs its transforms in slot 0, which then needs an R2C (Fourier mode has none).
    k.createFftSlots(sp.slots, setup.onDevice ? std::max(sp.forward, 1) : sp.forward, &workerPlanMs[wi]);
    if (setup.onDevice) result.setupReused = k.prepareOnDevice(job, setup.device, prepared->key, w.spectra, &w.scale);
    // The first worker continues in the caller's maps where it may (the others copy them before any rotation runs:
    // the workers are all made before the loop starts).
    w.adoptedMaps = wi == 0 && job.continueScores && job.continueIndices && k.adoptMaps(job.continueScores, job.continueIndices);
    if (!w.adoptedMaps)
      k.initMaps(job.initialScores.empty() ? nullptr : job.initialScores.data(),
                 job.initialIndices.empty() ? nullptr : job.initialIndices.data());
  };
  // CPU workers are made on their own threads: each first-touches its own buffers and maps (hundreds of MB per
  // worker on a large tile, page faults mostly), and FFTW's planner is behind a lock. (Vulkan runs one worker.)
  if (cpu && workers > 1) {
    std::vector<std::exception_ptr> errors(workers);
    std::vector<std::thread> makers;
    for (int wi = 1; wi < workers; ++wi)
      makers.emplace_back([&, wi] {
        try {
          makeWorker(wi);
        } catch (...) {
          errors[wi] = std::current_exception();
        }
      });
    try {
      makeWorker(0);
    } catch (...) {
      errors[0] = std::current_exception();
    }
    for (auto& t : makers) t.join();
    for (auto& e : errors)
      if (e) std::rethrow_exception(e);
  } else {
    for (int wi = 0; wi < workers; ++wi) makeWorker(wi);
  }
  for (double ms : workerPlanMs) result.planMs += ms;
  result.device = states[0].kernels->deviceName();
  result.setupMs = msSince(setupStart) - result.planMs;
  times.step("workers");

  // Rotations are handed out one at a time; each worker keeps its own maps (ties -> lowest index), merged below,
  // so the result does not depend on which worker evaluated which rotation.
  const auto loopStart = Clock::now();
  std::atomic<int64_t> next{job.rotationStart};
  std::atomic<int64_t> done{0};
  std::atomic<bool> stop{false};
  std::exception_ptr firstError;
  std::mutex errorMutex;
  std::vector<std::vector<double>> rotationMs(workers);
  // Rotations per submission: 1 on the CPU; on Vulkan adapted so a submission holds ~20 ms of work (a GPU rotation
  // may take well under a millisecond) and cancelling still answers within ~20 ms; job.rotationsPerSubmit fixes it.
  const int fixedBatch = job.rotationsPerSubmit;
  auto work = [&](int wi, bool reports) {
    try {
      Kernels& k = *states[wi].kernels;
      const int maxBatch = k.maxRotationsPerSubmit();
      int batch = maxBatch > 1 && fixedBatch > 0 ? std::min(maxBatch, fixedBatch) : 1;
      std::vector<int64_t> taken;
      for (;;) {
        if (cancelled || stop) return;
        taken.clear();
        while (static_cast<int>(taken.size()) < batch) {
          int64_t r = next.fetch_add(1);
          if (r >= job.rotationEnd) break;
          taken.push_back(r);
        }
        if (taken.empty()) return;
        const auto submitStart = Clock::now();
        k.beginRotation();
        for (int64_t r : taken) evaluateRotation(job, states[wi], setup, r);
        k.endRotation();
        const double perRotation = msSince(submitStart) / static_cast<double>(taken.size());
        for (size_t j = 0; j < taken.size(); ++j) rotationMs[wi].push_back(perRotation);
        if (maxBatch > 1 && fixedBatch == 0)
          batch = static_cast<int>(std::max(1.0, std::min<double>(maxBatch, std::floor(20.0 / std::max(perRotation, 1e-3)))));
        int64_t d = done.fetch_add(static_cast<int64_t>(taken.size())) + static_cast<int64_t>(taken.size());
        if (reports && progress) progress(d, total);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(errorMutex);
      if (!firstError) firstError = std::current_exception();
      stop = true;
    }
  };
  std::vector<std::thread> threads;
  for (int wi = 1; wi < workers; ++wi) threads.emplace_back(work, wi, false);
  work(0, true);
  for (auto& t : threads) t.join();
  if (firstError) std::rethrow_exception(firstError);
  if (cancelled) fail(ErrorCode::Cancelled, "cancelled after " + std::to_string(done.load()) + " of " +
                                                std::to_string(total) + " rotations");
  if (progress) progress(done.load(), total);
  result.loopMs = msSince(loopStart);
  times.step("loop");
  std::vector<double> all;
  for (auto& v : rotationMs) all.insert(all.end(), v.begin(), v.end());
  if (!all.empty()) {
    std::sort(all.begin(), all.end());
    result.rotationMinMs = all.front();
    result.rotationMedianMs = all[all.size() / 2];
  }

  // Merge workers in order: higher score wins, equal scores keep the lower rotation index.
  const int64_t n = job.targetShape.voxels();
  result.perRotationMax.assign(total, -std::numeric_limits<float>::infinity());
  result.perRotationSum.assign(total, 0.0);
  result.perRotationSumSq.assign(total, 0.0);
  std::vector<float> scores, rmax(total);
  std::vector<double> rsum(total), rsumSq(total);
  std::vector<int32_t> indices;
  float* mergedScores = nullptr;  // worker 0's maps, into which the others are merged
  int32_t* mergedIndices = nullptr;
  for (int wi = 0; wi < workers; ++wi) {
    // Worker 0's maps become the result (or are the caller's maps already) and the others' are merged into them,
    // moved out of the workers where the path allows (the CPU's host vectors), else copied.
    Kernels& k = *states[wi].kernels;
    auto& target = wi == 0 ? result.scores : scores;
    auto& targetIdx = wi == 0 ? result.indices : indices;
    if (states[wi].adoptedMaps) {
      k.readMaps(nullptr, nullptr, rsum.data(), rsumSq.data(), rmax.data());
      result.mapsInPlace = true;
    } else if (k.takeMaps(&target, &targetIdx)) {
      k.readMaps(nullptr, nullptr, rsum.data(), rsumSq.data(), rmax.data());
    } else {
      target.resize(n);
      targetIdx.resize(n);
      k.readMaps(target.data(), targetIdx.data(), rsum.data(), rsumSq.data(), rmax.data());
    }
    if (job.voxelStats) {
      // Sums over disjoint sets of rotations: the workers' add up.
      std::vector<float> vs, vq;
      k.takeVoxelStats(wi == 0 ? &result.voxelSum : &vs, wi == 0 ? &result.voxelSumSq : &vq);
      if (wi > 0) {
        for (int64_t i = 0; i < n; ++i) {
          result.voxelSum[i] += vs[i];
          result.voxelSumSq[i] += vq[i];
        }
      }
    }
    states[wi].kernels.reset();  // its maps and work buffers are not needed any more
    for (int64_t r = 0; r < total; ++r) {
      result.perRotationMax[r] = std::max(result.perRotationMax[r], rmax[r]);
      result.perRotationSum[r] += rsum[r];
      result.perRotationSumSq[r] += rsumSq[r];
      result.sum += rsum[r];
      result.sumSq += rsumSq[r];
    }
    if (wi == 0) {
      mergedScores = result.mapsInPlace ? job.continueScores : result.scores.data();
      mergedIndices = result.mapsInPlace ? job.continueIndices : result.indices.data();
      continue;
    }
    for (int64_t i = 0; i < n; ++i) {
      const float s = scores[i];
      const int32_t a = indices[i];
      if (s > mergedScores[i] || (s == mergedScores[i] && a >= 0 && (mergedIndices[i] < 0 || a < mergedIndices[i]))) {
        mergedScores[i] = s;
        mergedIndices[i] = a;
      }
    }
  }
  result.count = prepared->counted * static_cast<double>(total);
  times.step("merge");
  settlePrepared(job, std::move(prepared));
  return result;
}

}  // namespace tme

// The CPU path's correlation for the single-spectrum scores (cc, flc-sphere): per rotation
//   c_R = C2R( G . conj(T_R) ),   G = F . filter (the tile's spectrum, filtered once per tile)
// where T_R is the spectrum of the rotated template placed in the tile (real-space rotation) or the template's
// spectrum sampled at the rotated frequencies (Fourier-space rotation). FFTW's 3D transforms are already bound
// by arithmetic, so the gain is in work not done, and in passes fused while their data is in cache:
//   1. x then y transforms of the box's rows and planes only (the rest of the tile is zero): ~1/3 of an R2C;
//   2. per ky slab [z][kx] (~64 KiB at 128^3): z forward, times G, z inverse into the spectrum's planes;
//   3. per z plane: y inverse, x C2R, and the caller's finalise while the plane is in L2 — only on the planes and
//      rows the caller reads (a tile's core).
// Columns where G is zero for every kz (outside a low-pass, say) are skipped exactly: their product is zero.
#pragma once
#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <vector>

#include "cpu/fftw_plans.h"
#include "match/kernels.h"
#include "shape.h"

namespace tme {

// Once per tile, read-only and shared by the workers.
struct SlabSpectrum {
  Shape3 tile;
  int64_t pitch = 0;                   // complex elements per ky row (>= halfX, a multiple of kSlabChunk)
  FftwArray<cfloat> g;                 // F . filter as [ky][kz][pitch], zero past activeX
  std::vector<int32_t> activeColumns;  // per ky: G is zero for every kz at kx >= activeColumns[ky]
  int32_t activeX = 0;                 // max of activeColumns
};

// F: the tile's half spectrum [kz][ky][kx]; filter: real, same layout, or nullptr.
std::shared_ptr<const SlabSpectrum> makeSlabSpectrum(const Shape3& tile, const cfloat* F, const float* filter);

// Bytes of SlabSpectrum::g, and what one SlabCorrelator holds (upper bounds, for the memory estimate).
double slabSpectrumBytes(const Shape3& tile);
double slabWorkerBytes(const Shape3& tile, const Shape3& box);

class SlabCorrelator {
 public:
  // rows: the unnormalised correlation of rows [y0, y0 + count) of z plane `z`, [count][tile.x], valid until the
  // sink returns.
  using PlaneSink = std::function<void(int64_t z, int64_t y0, int64_t count, const float* rows)>;

  // Only planes z in [regionStart.z, + regionShape.z) and rows y in [regionStart.y, + regionShape.y) reach the sink.
  SlabCorrelator(std::shared_ptr<const SlabSpectrum> spectrum, const Shape3& box, const Shape3& regionStart,
                 const Shape3& regionShape, double* planMs);
  ~SlabCorrelator();
  SlabCorrelator(const SlabCorrelator&) = delete;
  SlabCorrelator& operator=(const SlabCorrelator&) = delete;

  // Real-space rotation: `box` holds the rotated template's values (box order), placed with its centre c = box//2
  // at tile index 0.
  void correlateBox(const float* box, const PlaneSink& sink);

  // Fourier-space rotation: `grid` is the template's full complex spectrum on `gridShape` (centre at index 0);
  // it is sampled trilinearly at A^-1 k for every k of the tile's half spectrum (Nyquist planes zero).
  void correlateSpectrum(const cfloat* grid, const Shape3& gridShape, const RotationParams& rotation,
                         const PlaneSink& sink);

 private:
  // slabOut_ (the product for slab ky, columns < count rounded up to whole chunks) -> z inverse -> spectrum.
  void invertSlab(int64_t ky, int64_t count);
  void finishPlanes(const PlaneSink& sink);

  std::shared_ptr<const SlabSpectrum> spectrum_;
  Shape3 tile_, box_, regionStart_, regionShape_;
  int64_t hx_, pitch_, planeStride_;
  const SlabPlans* plans_ = nullptr;
  FftwArray<float> rows_;       // [box.z][box.y][tile.x]: zero except where the box's values land
  FftwArray<cfloat> rowSpec_;   // [box.z][box.y][pitch]
  FftwArray<cfloat> planesIn_;  // [box.z][tile.y][pitch]: zero except the box's rows
  FftwArray<cfloat> planes_;    // [box.z][tile.y][pitch]
  FftwArray<cfloat> slabIn_;    // [tile.z][pitch]: zero except the box's z rows
  FftwArray<cfloat> slabOut_;   // [tile.z][pitch]
  FftwArray<cfloat> s_;         // [tile.z][planeStride_ >= tile.y * pitch]: the product, transformed back along z
  FftwArray<float> plane_;      // [regionShape.y][tile.x]
  std::vector<int64_t> boxZ_;   // tile z of each box z (wrapped)

  // TME_PROFILE=1: time per stage, printed when the correlator ends (stderr).
  struct StageTimes {
    bool on = std::getenv("TME_PROFILE") != nullptr;
    double ms[5] = {0, 0, 0, 0, 0};
    int64_t calls = 0;
    std::chrono::steady_clock::time_point last;
    void start();
    void lap(int stage);
  };
  StageTimes times_;
};

}  // namespace tme

// The CPU path's correlations for every score: per rotation and product
//   c_R = C2R( G . conj(T_R) ),   G a tile factor (cc, flc-sphere: F, the tile's spectrum; flc: F, F2; mcc: F1, F2, Mf;
//                                 once per tile)
// where T_R is the spectrum of the rotated template placed in the tile (real-space rotation) or the template's
// spectrum sampled at the rotated frequencies (Fourier-space rotation). FFTW's 3D transforms are already bound
// by arithmetic, so the gain is in work not done, and in passes fused while their data is in cache:
//   1. x then y transforms of the box's rows and planes only (the rest of the tile is zero): ~1/3 of an R2C;
//   2. per ky slab [z][kx], one of two ways:
//      - spectral: z forward, times G, z inverse into the spectrum's planes;
//      - direct (real-space rotation, a short support): G is kept transformed along y and x only, and the product
//        along z is a sum over the box's few z rows, c(z) = sum_dz G(z + dz) . conj(T(dz)), only for the planes
//        the caller reads. With a 15-voxel support on a 144-voxel tile that is a fifth of the z transforms' work,
//        and it is all fused multiply-adds;
//   3. per z plane: y inverse, x C2R, and the caller's finalise while the plane is in L2 — only on the planes and
//      rows the caller reads (a tile's core).
// Columns where G is zero for every kz are skipped exactly: their product is zero.
#pragma once
#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cpu/fftw_plans.h"
#include "match/kernels.h"
#include "shape.h"

namespace tme {

// Once per tile, read-only and shared by the workers: the tile-side factors G the score's products need, each once
// (cc, flc-sphere: F; flc: F, F2 = R2C(f^2); mcc: F1 = R2C(f mf), F2 = R2C(f^2 mf), Mf = R2C(mf)).
struct SlabSpectrum {
  Shape3 tile;
  int64_t pitch = 0;  // complex elements per ky row (>= halfX, a multiple of kSlabChunk)
  // Direct z sums (window > 0, the box's z extent): G is stored untransformed along z, real and imaginary parts
  // apart, rows extended by the window so that z + dz needs no wrap: row e holds tile z = e - window / 2 (wrapped).
  int64_t window = 0;
  struct Factor {
    FftwArray<cfloat> g;                 // spectral: [ky][kz][pitch], zero past the active columns
    FftwArray<float> mixed;              // direct: [ky][tile.z + window][re, im][pitch]
    std::vector<int32_t> activeColumns;  // per ky: G is zero for every kz at kx >= activeColumns[ky]
  };
  std::vector<Factor> factors;
  int32_t activeX = 0;  // max of every factor's activeColumns
};

// Each factor: a half spectrum [kz][ky][kx] of the tile.
struct SlabFactorSource {
  const cfloat* spectrum;
};
// window > 0: the direct form for a box of that z extent (directZPays).
std::shared_ptr<const SlabSpectrum> makeSlabSpectrum(const Shape3& tile, const std::vector<SlabFactorSource>& factors,
                                                     int64_t window);

// Whether the direct z sums beat the z transforms for a box of `box` voxels on `tile`, `regionZ` planes read.
bool directZPays(const Shape3& tile, const Shape3& box, int64_t regionZ);

// Bytes of a SlabSpectrum with `factors` factors, and what one SlabCorrelator holds (upper bounds, for the memory
// estimate).
double slabSpectrumBytes(const Shape3& tile, int factors, int64_t window);
double slabWorkerBytes(const Shape3& tile, const Shape3& box, int inputs, int products);

// One product of a correlator: factor `factor` of the spectrum times conj(the spectrum of input `input`).
struct SlabProduct {
  int factor;
  int input;
};

class SlabCorrelator {
 public:
  // rows[j]: product j's unnormalised correlation on rows [y0, y0 + count) of z plane `z`, [count][tile.x], valid
  // until the sink returns.
  using PlaneSink = std::function<void(int64_t z, int64_t y0, int64_t count, const float* const* rows)>;

  // Product j correlates factor products[j].factor of the spectrum with input products[j].input (a box placed in the
  // tile). Only planes z in [regionStart.z, + regionShape.z) and rows y in [regionStart.y, + regionShape.y) reach the
  // sink.
  SlabCorrelator(std::shared_ptr<const SlabSpectrum> spectrum, const Shape3& box, std::vector<SlabProduct> products,
                 const Shape3& regionStart, const Shape3& regionShape, double* planMs);
  ~SlabCorrelator();
  SlabCorrelator(const SlabCorrelator&) = delete;
  SlabCorrelator& operator=(const SlabCorrelator&) = delete;

  // Real-space rotation: boxes[i] holds input i's values (box order), placed with its centre c = box//2 at tile
  // index 0.
  void correlateBoxes(const float* const* boxes, const PlaneSink& sink);

  // Fourier-space rotation (one product): `grid` is the template's full complex spectrum on `gridShape` (centre at
  // index 0), sampled trilinearly at A^-1 k for every k of the tile's half spectrum (Nyquist planes zero).
  void correlateSpectrum(const cfloat* grid, const Shape3& gridShape, const RotationParams& rotation,
                         const PlaneSink& sink);

 private:
  // slabOut_ (product j for slab ky, columns < count rounded up to whole chunks) -> z inverse -> the region's planes
  // of spectrum j.
  void invertSlab(int j, int64_t ky, int64_t count);
  // Stage 2 by direct z sums from the box planes of every input (planes_).
  void sumSlabs();
  // Per input: the columns of slab ky any of its products needs, in whole chunks.
  void inputSpans(int64_t ky, std::vector<int64_t>* spans) const;
  void finishPlanes(const PlaneSink& sink);

  std::shared_ptr<const SlabSpectrum> spectrum_;
  Shape3 tile_, box_, regionStart_, regionShape_;
  std::vector<SlabProduct> products_;
  int inputs_ = 1;
  int64_t hx_, pitch_, planeStride_;
  const SlabPlans* plans_ = nullptr;
  FftwArray<float> rows_;                    // [box.y][tile.x]: zero except where a box plane's values land
  FftwArray<cfloat> rowSpec_;                // [box.y][pitch]
  FftwArray<cfloat> planesIn_;               // [tile.y][pitch]: zero except the box's rows (one box plane)
  std::vector<FftwArray<cfloat>> planes_;    // per input [box.z][tile.y][pitch]
  FftwArray<cfloat> slabIn_;                 // [tile.z][pitch]: zero except the box's z rows
  std::vector<FftwArray<cfloat>> slabFwd_;   // per input [tile.z][pitch]: the input's spectrum on slab ky
  FftwArray<cfloat> slabOut_;                // [tile.z][pitch]: a product
  FftwArray<cfloat> slabBack_;               // spectral: [tile.z][pitch], slabOut_ transformed back along z
  std::vector<FftwArray<cfloat>> s_;         // per product [regionShape.z][planeStride_]: the region's z planes
  bool streamSpectra_ = false;               // spectral: s_ written past the cache (larger than a core's L2)
  bool streamSums_ = false;                  // direct: the same, on the 16-lane path (whole 64-byte lines)
  std::vector<FftwArray<float>> plane_;      // per product [regionShape.y][tile.x]
  std::vector<const float*> planePointers_;
  std::vector<int64_t> boxZ_;                // tile z of each box z (wrapped)
  FftwArray<float> boxSplit_;                // direct: per input [box.z][re, im][pitch], one ky

  // TME_PROFILE=1: time per stage, printed when the correlator ends (stderr); TME_PROFILE=cpu: the thread's CPU time
  // instead of wall time (comparisons on a busy machine, where a worker is often descheduled).
  struct StageTimes {
    bool on = std::getenv("TME_PROFILE") != nullptr;
    bool cpu = on && std::string(std::getenv("TME_PROFILE")) == "cpu";
    double ms[5] = {0, 0, 0, 0, 0};
    int64_t calls = 0;
    double last = 0;
    double now() const;
    void start();
    void lap(int stage);
  };
  StageTimes times_;
};

}  // namespace tme

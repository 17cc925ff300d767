// FFTW3f plans for the CPU path: created with FFTW_MEASURE, cached per (shape, threads) for the life of the
// process, wisdom kept in memory and (best effort) in $XDG_CACHE_HOME/tme/fftw3f-wisdom. The FFTW planner is not
// thread-safe; executing a plan (new-array execute included) is, so one plan serves every worker thread.
#pragma once
#include <fftw3.h>

#include <complex>
#include <cstddef>
#include <memory>
#include <vector>

#include "huge_pages.h"
#include "shape.h"

namespace tme {

using cfloat = std::complex<float>;

struct FftwPlanPair {
  fftwf_plan r2c = nullptr;  // out-of-place real (N) -> half spectrum (Nc); keeps its input
  fftwf_plan c2r = nullptr;  // out-of-place half spectrum -> real; destroys its input
  Shape3 shape;
  int threads = 1;
};

// How hard FFTW plans: Measure times candidate plans (seconds to minutes for a large new shape, then kept as
// wisdom) and pays for transforms run once per rotation; OneShot, for transforms run a few times per job (a tile's
// set-up, whole-volume filters), takes measured wisdom where it exists and FFTW's estimate otherwise.
enum class PlanEffort { Measure, OneShot };

// Plans for `shape` with `threads` FFTW threads; `planMs` receives the time spent planning (0 when cached).
const FftwPlanPair& fftwPlans(const Shape3& shape, int threads, double* planMs, PlanEffort effort = PlanEffort::Measure);

// Unnormalised transforms on fftwf_malloc'ed (SIMD-aligned) arrays.
void fftwR2C(const FftwPlanPair& plan, float* in, cfloat* out);
void fftwC2R(const FftwPlanPair& plan, cfloat* in, float* out);

// A full complex 3D FFT of real data (template spectra for Fourier-space rotation); planned with FFTW_ESTIMATE.
void fftwForwardFullComplex(const Shape3& shape, const float* in, cfloat* out);

// Unnormalised inverse transforms of length n along `columns` neighbouring columns, in place (`stride` complex
// elements between a column's entries); planned with FFTW_ESTIMATE, for once-per-tile work.
void fftwInverseColumns(int64_t n, int64_t columns, int64_t stride, cfloat* data);

// The out-of-core volume filter's passes (engine volume-filter.ts): a 3D FFT of a grid too large for memory, done as
// 2D transforms of z-planes and 1D transforms along z of blocks of rows. Unnormalised; planned with FFTW_ESTIMATE on
// the caller's arrays (each pass runs once per job), on `threads` FFTW threads.
// `count` planes of (ny, nx) reals -> `count` half spectra of (ny, nx/2+1).
void fftwPlanesR2C(int64_t count, int64_t ny, int64_t nx, float* in, cfloat* out, int threads);
// The inverse: `count` half spectra -> `count` planes of reals; destroys its input.
void fftwPlanesC2R(int64_t count, int64_t ny, int64_t nx, cfloat* in, float* out, int threads);
// An (n, columns) complex array in place: forward along n, times `filter` (n * columns reals, the same layout),
// inverse along n.
void fftwFilterColumns(int64_t n, int64_t columns, cfloat* data, const float* filter, int threads);

// 64-byte aligned float storage (fftwf_malloc) with ownership; huge pages where large (huge_pages.h).
struct FftwFree {
  void operator()(void* p) const { fftwf_free(p); }
};
template <typename T>
using FftwArray = std::unique_ptr<T[], FftwFree>;
template <typename T>
FftwArray<T> fftwAlloc(size_t count) {
  void* p = fftwf_malloc(sizeof(T) * (count == 0 ? 1 : count));
  if (p == nullptr) throw std::bad_alloc();
  adviseHugePages(p, sizeof(T) * count);
  return FftwArray<T>(static_cast<T*>(p));
}

// Plans for the slab correlator (slab_correlator.h): 1D passes over parts of a tile, single-threaded, each
// executed (new-array execute) on arrays laid out exactly as the planning arrays, so SIMD alignment carries over.
constexpr int64_t kSlabChunk = 8;  // z transforms per call: FFTW vectorises across neighbouring columns
struct SlabLayout {
  Shape3 tile, box;
  int64_t activeX = 0;  // kx columns that can be nonzero (>= 1)
  int64_t pitch = 0;        // complex elements per ky row everywhere (>= halfX, a multiple of kSlabChunk)
  int64_t planeStride = 0;  // complex elements between z planes of the spectrum (>= tile.y * pitch)
  int64_t outputRows = 0;   // rows of a plane that the x C2R transforms (the caller's region)
};
struct SlabPlans {
  fftwf_plan rows = nullptr;           // R2C along x of a box plane's rows: [box.y][tile.x] -> [..][pitch]
  fftwf_plan planesForward = nullptr;  // along y, kx < activeX, one plane [tile.y][pitch], out of place
  fftwf_plan chunkForward = nullptr;   // along z, kSlabChunk columns of a slab [tile.z][pitch], out of place
  fftwf_plan chunkInverse = nullptr;   // along z, kSlabChunk columns of a slab [tile.z][pitch], out of place
  fftwf_plan planeInverse = nullptr;   // along y, kx < activeX, one plane [tile.y][pitch], in place
  fftwf_plan planeC2R = nullptr;       // along x, outputRows rows [..][pitch] -> [..][tile.x] (destroys input)
};
const SlabPlans& fftwSlabPlans(const SlabLayout& layout, double* planMs);

// Plans for filterBox (box_ops.h): the box sits at the grid's corner [0, box) (a circular filter commutes with the
// shift to the centre-at-0 placement), so x transforms run only on the box's rows and y transforms only on its
// planes, forward and back; an axis along which the filter is constant (a wedge about y) is identity there and has
// no passes at all (its extent is then the box's, not the grid's). Single-threaded, new-array execute on arrays of
// the sizes below (fftwf_malloc'ed).
struct BoxFilterPlans {
  Shape3 box, grid;
  bool yActive = true, zActive = true;
  int64_t sy = 0, sz = 0, hx = 0;  // spectrum extents: (sz, sy, hx), sy = grid.y or box.y, sz = grid.z or box.z
  fftwf_plan rows = nullptr;       // R2C along x: in [box.z][box.y][grid.x] -> first [box.z][sy][hx] array
  fftwf_plan planesForward = nullptr;   // along y (yActive): planes z < box.z, [box.z][sy][hx] -> [sz][sy][hx]
  fftwf_plan columnsForward = nullptr;  // along z (zActive): [sz][sy][hx] -> [sz][sy][hx], out of place
  fftwf_plan columnsInverse = nullptr;  // along z (zActive), in place
  fftwf_plan planesInverse = nullptr;   // along y (yActive), planes z < box.z, in place
  fftwf_plan rowsC2R = nullptr;         // along x: rows z < box.z, y < box.y -> [box.z][box.y][grid.x]
};
const BoxFilterPlans& fftwBoxFilterPlans(const Shape3& box, const Shape3& grid, bool yActive, bool zActive,
                                         double* planMs);

// Where wisdom is kept ("" when disabled with TME_FFTW_WISDOM=off).
const char* fftwWisdomPath();

}  // namespace tme

namespace tme {

// R2C of a tile that is zero outside the template box placed with its centre at index 0 (wrapped): x transforms
// only on the box's rows, y only on the box's planes, then z everywhere. On a 128^3 tile with a 32^3 box that is
// ~45% of a full R2C's work. Needs two scratch spectra per caller that stay zero outside the box's rows / planes
// (the caller keeps them between calls). Single-threaded plans.
struct PrunedR2C {
  struct Part {
    fftwf_plan plan;
    int64_t in, out;  // offsets (elements) into the input and output arrays
  };
  std::vector<Part> x, y;
  fftwf_plan z = nullptr;
};

const PrunedR2C& fftwPrunedR2C(const Shape3& tile, const Shape3& box, double* planMs);
// in: real tile; rows: scratch spectrum zero outside the box rows; planes: scratch zero outside the box planes.
void fftwPrunedExecute(const PrunedR2C& plan, float* in, cfloat* rows, cfloat* planes, cfloat* out);

}  // namespace tme

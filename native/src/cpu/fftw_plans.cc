#include "cpu/fftw_plans.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include "errors.h"

namespace tme {
namespace {

std::mutex plannerMutex;  // guards every FFTW planner call and the cache
std::map<std::tuple<int64_t, int64_t, int64_t, int, int>, FftwPlanPair> planCache;
bool initialised = false;
std::string wisdomPath;

void makeDirs(const std::string& path) {
  for (size_t i = 1; i < path.size(); ++i) {
    if (path[i] == '/') mkdir(path.substr(0, i).c_str(), 0755);
  }
  mkdir(path.c_str(), 0755);
}

void initialiseLocked() {
  if (initialised) return;
  initialised = true;
  fftwf_init_threads();
  const char* setting = std::getenv("TME_FFTW_WISDOM");
  if (setting != nullptr && std::string(setting) == "off") return;
  if (setting != nullptr && *setting != '\0') {
    wisdomPath = setting;
  } else {
    const char* xdg = std::getenv("XDG_CACHE_HOME");
    const char* home = std::getenv("HOME");
    std::string dir;
    if (xdg != nullptr && *xdg != '\0') dir = std::string(xdg) + "/tme";
    else if (home != nullptr && *home != '\0') dir = std::string(home) + "/.cache/tme";
    else return;
    wisdomPath = dir + "/fftw3f-wisdom";
  }
  // A missing or unreadable wisdom file only costs planning time.
  fftwf_import_wisdom_from_filename(wisdomPath.c_str());
}

void saveWisdomLocked() {
  if (wisdomPath.empty()) return;
  size_t slash = wisdomPath.rfind('/');
  if (slash != std::string::npos) makeDirs(wisdomPath.substr(0, slash));
  // Write-then-rename so a concurrent reader never sees half a file; failures are ignored (read-only caches).
  std::string tmp = wisdomPath + ".tmp." + std::to_string(getpid());
  if (fftwf_export_wisdom_to_filename(tmp.c_str())) {
    if (std::rename(tmp.c_str(), wisdomPath.c_str()) != 0) std::remove(tmp.c_str());
  } else {
    std::remove(tmp.c_str());
  }
}

}  // namespace

const char* fftwWisdomPath() {
  std::lock_guard<std::mutex> lock(plannerMutex);
  initialiseLocked();
  return wisdomPath.c_str();
}

const FftwPlanPair& fftwPlans(const Shape3& shape, int threads, double* planMs, PlanEffort effort) {
  std::lock_guard<std::mutex> lock(plannerMutex);
  initialiseLocked();
  if (threads < 1) threads = 1;
  auto key = std::make_tuple(shape.z, shape.y, shape.x, threads, static_cast<int>(effort));
  auto found = planCache.find(key);
  if (found != planCache.end()) {
    if (planMs) *planMs = 0;
    return found->second;
  }
  auto start = std::chrono::steady_clock::now();
  // MEASURE overwrites its arrays: plan on scratch arrays, execute later with new-array execute.
  auto real = fftwAlloc<float>(shape.voxels());
  auto spec = fftwAlloc<cfloat>(shape.spectrumCount());
  fftwf_plan_with_nthreads(threads);
  int n[3] = {static_cast<int>(shape.z), static_cast<int>(shape.y), static_cast<int>(shape.x)};
  FftwPlanPair pair;
  pair.shape = shape;
  pair.threads = threads;
  auto cspec = reinterpret_cast<fftwf_complex*>(spec.get());
  if (effort == PlanEffort::OneShot) {
    pair.r2c = fftwf_plan_dft_r2c(3, n, real.get(), cspec, FFTW_MEASURE | FFTW_WISDOM_ONLY);
    pair.c2r = fftwf_plan_dft_c2r(3, n, cspec, real.get(), FFTW_MEASURE | FFTW_WISDOM_ONLY);
    if (pair.r2c == nullptr) pair.r2c = fftwf_plan_dft_r2c(3, n, real.get(), cspec, FFTW_ESTIMATE);
    if (pair.c2r == nullptr) pair.c2r = fftwf_plan_dft_c2r(3, n, cspec, real.get(), FFTW_ESTIMATE);
  } else {
    pair.r2c = fftwf_plan_dft_r2c(3, n, real.get(), cspec, FFTW_MEASURE);
    pair.c2r = fftwf_plan_dft_c2r(3, n, cspec, real.get(), FFTW_MEASURE);
  }
  if (pair.r2c == nullptr || pair.c2r == nullptr) {
    if (pair.r2c) fftwf_destroy_plan(pair.r2c);
    if (pair.c2r) fftwf_destroy_plan(pair.c2r);
    fail(ErrorCode::FftPlan, "FFTW could not plan a " + shape.str() + " real transform");
  }
  saveWisdomLocked();
  if (planMs) *planMs = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return planCache.emplace(key, pair).first->second;
}

void fftwR2C(const FftwPlanPair& plan, float* in, cfloat* out) {
  fftwf_execute_dft_r2c(plan.r2c, in, reinterpret_cast<fftwf_complex*>(out));
}

void fftwC2R(const FftwPlanPair& plan, cfloat* in, float* out) {
  fftwf_execute_dft_c2r(plan.c2r, reinterpret_cast<fftwf_complex*>(in), out);
}

void fftwForwardFullComplex(const Shape3& shape, const float* in, cfloat* out) {
  auto work = fftwAlloc<cfloat>(shape.voxels());
  for (int64_t i = 0; i < shape.voxels(); ++i) work[i] = cfloat(in[i], 0.0f);
  fftwf_plan plan;
  {
    std::lock_guard<std::mutex> lock(plannerMutex);
    initialiseLocked();
    fftwf_plan_with_nthreads(1);
    plan = fftwf_plan_dft_3d(static_cast<int>(shape.z), static_cast<int>(shape.y), static_cast<int>(shape.x),
                             reinterpret_cast<fftwf_complex*>(work.get()), reinterpret_cast<fftwf_complex*>(out),
                             FFTW_FORWARD, FFTW_ESTIMATE);
  }
  if (plan == nullptr) fail(ErrorCode::FftPlan, "FFTW could not plan a " + shape.str() + " complex transform");
  fftwf_execute(plan);
  std::lock_guard<std::mutex> lock(plannerMutex);
  fftwf_destroy_plan(plan);
}

void fftwInverseColumns(int64_t n, int64_t columns, int64_t stride, cfloat* data) {
  fftwf_plan plan;
  {
    std::lock_guard<std::mutex> lock(plannerMutex);
    initialiseLocked();
    fftwf_plan_with_nthreads(1);
    fftwf_iodim64 dim{n, stride, stride};
    fftwf_iodim64 many{columns, 1, 1};
    auto c = reinterpret_cast<fftwf_complex*>(data);
    plan = fftwf_plan_guru64_dft(1, &dim, 1, &many, c, c, FFTW_BACKWARD, FFTW_ESTIMATE);
  }
  if (plan == nullptr) fail(ErrorCode::FftPlan, "FFTW could not plan " + std::to_string(columns) + " columns of " +
                                                    std::to_string(n));
  fftwf_execute(plan);
  std::lock_guard<std::mutex> lock(plannerMutex);
  fftwf_destroy_plan(plan);
}

namespace {
// Plans one guru64 transform under the planner lock, runs it and destroys it. `make` returns the plan (or null).
template <typename Make>
void runOnce(int threads, const std::string& what, Make make) {
  fftwf_plan plan;
  {
    std::lock_guard<std::mutex> lock(plannerMutex);
    initialiseLocked();
    fftwf_plan_with_nthreads(std::max(1, threads));
    plan = make();
  }
  if (plan == nullptr) fail(ErrorCode::FftPlan, "FFTW could not plan " + what);
  fftwf_execute(plan);
  std::lock_guard<std::mutex> lock(plannerMutex);
  fftwf_destroy_plan(plan);
}
}  // namespace

void fftwPlanesR2C(int64_t count, int64_t ny, int64_t nx, float* in, cfloat* out, int threads) {
  const int64_t hx = nx / 2 + 1;
  fftwf_iodim64 dims[2] = {{ny, nx, hx}, {nx, 1, 1}};
  fftwf_iodim64 many{count, ny * nx, ny * hx};
  runOnce(threads, std::to_string(count) + " planes of " + std::to_string(ny) + "x" + std::to_string(nx), [&]() {
    return fftwf_plan_guru64_dft_r2c(2, dims, 1, &many, in, reinterpret_cast<fftwf_complex*>(out), FFTW_ESTIMATE);
  });
}

void fftwPlanesC2R(int64_t count, int64_t ny, int64_t nx, cfloat* in, float* out, int threads) {
  const int64_t hx = nx / 2 + 1;
  fftwf_iodim64 dims[2] = {{ny, hx, nx}, {nx, 1, 1}};
  fftwf_iodim64 many{count, ny * hx, ny * nx};
  runOnce(threads, std::to_string(count) + " planes of " + std::to_string(ny) + "x" + std::to_string(nx), [&]() {
    return fftwf_plan_guru64_dft_c2r(2, dims, 1, &many, reinterpret_cast<fftwf_complex*>(in), out, FFTW_ESTIMATE);
  });
}

void fftwFilterColumns(int64_t n, int64_t columns, cfloat* data, const float* filter, int threads) {
  fftwf_iodim64 dim{n, columns, columns};
  fftwf_iodim64 many{columns, 1, 1};
  auto c = reinterpret_cast<fftwf_complex*>(data);
  const std::string what = std::to_string(columns) + " columns of " + std::to_string(n);
  runOnce(threads, what, [&]() { return fftwf_plan_guru64_dft(1, &dim, 1, &many, c, c, FFTW_FORWARD, FFTW_ESTIMATE); });
  const int64_t total = n * columns;
  for (int64_t i = 0; i < total; ++i) data[i] *= filter[i];
  runOnce(threads, what, [&]() { return fftwf_plan_guru64_dft(1, &dim, 1, &many, c, c, FFTW_BACKWARD, FFTW_ESTIMATE); });
}

namespace {
std::map<std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t>, PrunedR2C> prunedCache;

struct Segment {
  int64_t start, length;
};
// Indices of an axis of n that a box of b with its centre at 0 occupies: [0, b - b/2) and [n - b/2, n).
std::vector<Segment> boxSegments(int64_t n, int64_t b) {
  std::vector<Segment> out{{0, b - b / 2}};
  if (b / 2 > 0) out.push_back({n - b / 2, b / 2});
  return out;
}
}  // namespace

const PrunedR2C& fftwPrunedR2C(const Shape3& tile, const Shape3& box, double* planMs) {
  std::lock_guard<std::mutex> lock(plannerMutex);
  initialiseLocked();
  auto key = std::make_tuple(tile.z, tile.y, tile.x, box.z, box.y, box.x);
  auto found = prunedCache.find(key);
  if (found != prunedCache.end()) return found->second;
  auto start = std::chrono::steady_clock::now();
  const int64_t nz = tile.z, ny = tile.y, nx = tile.x, hx = tile.halfX();
  auto real = fftwAlloc<float>(tile.voxels());
  auto a = fftwAlloc<cfloat>(tile.spectrumCount());
  auto b = fftwAlloc<cfloat>(tile.spectrumCount());
  fftwf_complex* ca = reinterpret_cast<fftwf_complex*>(a.get());
  fftwf_complex* cb = reinterpret_cast<fftwf_complex*>(b.get());
  // UNALIGNED: the parts run at offsets into the caller's arrays (new-array execute).
  const unsigned flags = FFTW_MEASURE | FFTW_UNALIGNED;
  fftwf_plan_with_nthreads(1);
  PrunedR2C p;
  auto check = [&](fftwf_plan plan) {
    if (plan == nullptr) fail(ErrorCode::FftPlan, "FFTW could not plan a pruned " + tile.str() + " transform");
    return plan;
  };
  const auto zs = boxSegments(nz, box.z), ys = boxSegments(ny, box.y);
  for (const Segment& zs1 : zs)
    for (const Segment& ys1 : ys) {
      fftwf_iodim64 dim{nx, 1, 1};
      fftwf_iodim64 many[2] = {{zs1.length, ny * nx, ny * hx}, {ys1.length, nx, hx}};
      const int64_t in = (zs1.start * ny + ys1.start) * nx, out = (zs1.start * ny + ys1.start) * hx;
      p.x.push_back({check(fftwf_plan_guru64_dft_r2c(1, &dim, 2, many, real.get() + in, ca + out, flags)), in, out});
    }
  for (const Segment& zs1 : zs) {
    fftwf_iodim64 dim{ny, hx, hx};
    fftwf_iodim64 many[2] = {{zs1.length, ny * hx, ny * hx}, {hx, 1, 1}};
    const int64_t off = zs1.start * ny * hx;
    p.y.push_back({check(fftwf_plan_guru64_dft(1, &dim, 2, many, ca + off, cb + off, FFTW_FORWARD, flags)), off, off});
  }
  fftwf_iodim64 dim{nz, ny * hx, ny * hx};
  fftwf_iodim64 many{ny * hx, 1, 1};
  p.z = check(fftwf_plan_guru64_dft(1, &dim, 1, &many, cb, ca, FFTW_FORWARD, flags));
  saveWisdomLocked();
  if (planMs) *planMs += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return prunedCache.emplace(key, std::move(p)).first->second;
}

void fftwPrunedExecute(const PrunedR2C& plan, float* in, cfloat* rows, cfloat* planes, cfloat* out) {
  fftwf_complex* r = reinterpret_cast<fftwf_complex*>(rows);
  fftwf_complex* pl = reinterpret_cast<fftwf_complex*>(planes);
  for (const auto& part : plan.x) fftwf_execute_dft_r2c(part.plan, in + part.in, r + part.out);
  for (const auto& part : plan.y) fftwf_execute_dft(part.plan, r + part.in, pl + part.out);
  fftwf_execute_dft(plan.z, pl, reinterpret_cast<fftwf_complex*>(out));
}

namespace {
std::map<std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t>,
         SlabPlans>
    slabCache;
}  // namespace

const SlabPlans& fftwSlabPlans(const SlabLayout& l, double* planMs) {
  std::lock_guard<std::mutex> lock(plannerMutex);
  initialiseLocked();
  auto key = std::make_tuple(l.tile.z, l.tile.y, l.tile.x, l.box.z, l.box.y, l.box.x, l.activeX, l.pitch,
                             l.planeStride, l.outputRows);
  auto found = slabCache.find(key);
  if (found != slabCache.end()) return found->second;
  auto start = std::chrono::steady_clock::now();
  const int64_t tz = l.tile.z, ty = l.tile.y, tx = l.tile.x, pitch = l.pitch, w = kSlabChunk;
  const int64_t rows = l.box.y;  // one box plane's rows
  auto check = [&](fftwf_plan plan) {
    if (plan == nullptr) fail(ErrorCode::FftPlan, "FFTW could not plan a slab pass for a " + l.tile.str() + " tile");
    return plan;
  };
  // MEASURE overwrites its arrays: plan on scratch arrays shaped like the caller's.
  auto real = fftwAlloc<float>(std::max(rows * tx, ty * tx));
  const int64_t big = std::max({rows * pitch, l.box.z * ty * pitch, tz * l.planeStride});
  auto a = fftwAlloc<cfloat>(big);
  auto b = fftwAlloc<cfloat>(big);
  auto ca = reinterpret_cast<fftwf_complex*>(a.get());
  auto cb = reinterpret_cast<fftwf_complex*>(b.get());
  const unsigned flags = FFTW_MEASURE;
  fftwf_plan_with_nthreads(1);
  SlabPlans p;
  {
    fftwf_iodim64 dim{tx, 1, 1};
    fftwf_iodim64 many{rows, tx, pitch};
    p.rows = check(fftwf_plan_guru64_dft_r2c(1, &dim, 1, &many, real.get(), ca, flags));
  }
  {
    // One plane per call: planned over the box's planes at once, FFTW's plans took 3-4x the time per plane of the
    // planes pass's inverse (192^3 / 64^3).
    fftwf_iodim64 dim{ty, pitch, pitch};
    fftwf_iodim64 many{l.activeX, 1, 1};
    p.planesForward = check(fftwf_plan_guru64_dft(1, &dim, 1, &many, ca, cb, FFTW_FORWARD, flags));
  }
  {
    fftwf_iodim64 dim{tz, pitch, pitch};
    fftwf_iodim64 many{w, 1, 1};
    p.chunkForward = check(fftwf_plan_guru64_dft(1, &dim, 1, &many, ca, cb, FFTW_FORWARD, flags));
    p.chunkInverse = check(fftwf_plan_guru64_dft(1, &dim, 1, &many, ca, cb, FFTW_BACKWARD, flags));
  }
  {
    fftwf_iodim64 dim{ty, pitch, pitch};
    fftwf_iodim64 many{l.activeX, 1, 1};
    p.planeInverse = check(fftwf_plan_guru64_dft(1, &dim, 1, &many, ca, ca, FFTW_BACKWARD, flags));
  }
  {
    fftwf_iodim64 dim{tx, 1, 1};
    fftwf_iodim64 many{l.outputRows, pitch, tx};
    p.planeC2R = check(fftwf_plan_guru64_dft_c2r(1, &dim, 1, &many, ca, real.get(), flags));
  }
  saveWisdomLocked();
  if (planMs) *planMs += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return slabCache.emplace(key, p).first->second;
}

namespace {
std::map<std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool>, BoxFilterPlans> boxFilterCache;
}  // namespace

const BoxFilterPlans& fftwBoxFilterPlans(const Shape3& box, const Shape3& grid, bool yActive, bool zActive,
                                         double* planMs) {
  std::lock_guard<std::mutex> lock(plannerMutex);
  initialiseLocked();
  auto key = std::make_tuple(box.z, box.y, box.x, grid.z, grid.y, grid.x, yActive, zActive);
  auto found = boxFilterCache.find(key);
  if (found != boxFilterCache.end()) return found->second;
  auto start = std::chrono::steady_clock::now();
  BoxFilterPlans p;
  p.box = box;
  p.grid = grid;
  p.yActive = yActive;
  p.zActive = zActive;
  p.sy = yActive ? grid.y : box.y;
  p.sz = zActive ? grid.z : box.z;
  p.hx = grid.halfX();
  const int64_t sy = p.sy, sz = p.sz, hx = p.hx, nx = grid.x, plane = sy * hx;
  auto real = fftwAlloc<float>(box.z * box.y * nx);
  auto a = fftwAlloc<cfloat>(box.z * plane);
  auto b = fftwAlloc<cfloat>(sz * plane);
  auto c = fftwAlloc<cfloat>(sz * plane);
  fftwf_complex* ca = reinterpret_cast<fftwf_complex*>(a.get());
  fftwf_complex* cb = reinterpret_cast<fftwf_complex*>(b.get());
  fftwf_complex* cc = reinterpret_cast<fftwf_complex*>(c.get());
  const unsigned flags = FFTW_MEASURE;
  fftwf_plan_with_nthreads(1);
  auto check = [&](fftwf_plan plan) {
    if (plan == nullptr) fail(ErrorCode::FftPlan, "FFTW could not plan the filter of a " + box.str() + " box on " + grid.str());
    return plan;
  };
  {
    fftwf_iodim64 dim{nx, 1, 1};
    fftwf_iodim64 many[2] = {{box.z, box.y * nx, plane}, {box.y, nx, hx}};
    fftwf_complex* out = yActive ? ca : (zActive ? cb : cc);
    p.rows = check(fftwf_plan_guru64_dft_r2c(1, &dim, 2, many, real.get(), out, flags));
    fftwf_iodim64 back[2] = {{box.z, plane, box.y * nx}, {box.y, hx, nx}};
    p.rowsC2R = check(fftwf_plan_guru64_dft_c2r(1, &dim, 2, back, cc, real.get(), flags));
  }
  if (yActive) {
    fftwf_iodim64 dim{sy, hx, hx};
    fftwf_iodim64 many[2] = {{box.z, plane, plane}, {hx, 1, 1}};
    p.planesForward = check(fftwf_plan_guru64_dft(1, &dim, 2, many, ca, zActive ? cb : cc, FFTW_FORWARD, flags));
    p.planesInverse = check(fftwf_plan_guru64_dft(1, &dim, 2, many, cc, cc, FFTW_BACKWARD, flags));
  }
  if (zActive) {
    fftwf_iodim64 dim{sz, plane, plane};
    fftwf_iodim64 many{plane, 1, 1};
    p.columnsForward = check(fftwf_plan_guru64_dft(1, &dim, 1, &many, cb, cc, FFTW_FORWARD, flags));
    p.columnsInverse = check(fftwf_plan_guru64_dft(1, &dim, 1, &many, cc, cc, FFTW_BACKWARD, flags));
  }
  saveWisdomLocked();
  if (planMs) *planMs += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return boxFilterCache.emplace(key, p).first->second;
}

}  // namespace tme

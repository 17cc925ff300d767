#include "match/orientations.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>

#include "cpu/box_ops.h"
#include "cpu/fftw_plans.h"
#include "errors.h"
#include "match/geometry.h"

namespace tme {
namespace {

void validate(const OrientationJob& job) {
  const Shape3& b = job.templateShape;
  if (b.z < 1 || b.y < 1 || b.x < 1) fail(ErrorCode::UnsupportedSize, "template shape " + b.str() + " has an axis below 1");
  const int64_t n = b.voxels();
  if (static_cast<int64_t>(job.templ.size()) != n || static_cast<int64_t>(job.mask.size()) != n)
    fail(ErrorCode::InvalidOption, "Expected template and mask of " + std::to_string(n) + " values");
  if (job.score == Score::Mcc) fail(ErrorCode::InvalidOption, "orientations are re-scored for cc, flc-sphere and flc, not mcc");
  if (job.offsets.empty() || job.offsets.front() != 0)
    fail(ErrorCode::InvalidOption, "Expected offsets starting at 0 (one more than the queries)");
  const int64_t queries = static_cast<int64_t>(job.offsets.size()) - 1;
  for (int64_t q = 0; q < queries; ++q)
    if (job.offsets[q + 1] < job.offsets[q]) fail(ErrorCode::InvalidOption, "Expected non-decreasing offsets");
  if (static_cast<int64_t>(job.rotations.size()) != 9 * job.offsets.back())
    fail(ErrorCode::InvalidOption, "Expected 9 values for each of the " + std::to_string(job.offsets.back()) +
                                       " rotations the offsets count, but received " + std::to_string(job.rotations.size()));
  if (static_cast<int64_t>(job.patches.size()) != queries * n)
    fail(ErrorCode::InvalidOption, "Expected " + std::to_string(queries) + " patches of " + std::to_string(n) + " values");
  if (!job.filter.empty()) {
    const Shape3& f = job.filterShape;
    if (f.z < b.z || f.y < b.y || f.x < b.x)
      fail(ErrorCode::InvalidOption, "filterShape " + f.str() + " is smaller than the template box " + b.str());
    if (static_cast<int64_t>(job.filter.size()) != f.spectrumCount())
      fail(ErrorCode::InvalidOption, "Expected " + std::to_string(f.spectrumCount()) + " values for filter");
  }
}

// Σ m (f - mean), Σ m (f - mean)^2 over the box: the local moments the search takes from FFT sums.
void localMoments(const float* f, const float* m, int64_t n, double mean, double* e1, double* e2) {
  double a = 0, b = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double v = f[i] - mean;
    a += m[i] * v;
    b += m[i] * v * v;
  }
  *e1 = a;
  *e2 = b;
}

}  // namespace

std::vector<float> scoreOrientations(const OrientationJob& job, const std::atomic<bool>& cancelled) {
  validate(job);
  const Shape3& b = job.templateShape;
  const int64_t n = b.voxels();
  const int64_t queries = static_cast<int64_t>(job.offsets.size()) - 1;
  const double mean = std::isfinite(job.targetMean) ? job.targetMean : 0.0;
  const double flat = std::isfinite(job.targetVariance)
                          ? (job.targetVariance > 0 ? kFlatVariance * job.targetVariance : std::numeric_limits<double>::infinity())
                          : 0.0;
  std::vector<float> h(job.filter);
  if (!h.empty()) {
    const float scale = 1.0f / static_cast<float>(job.filterShape.voxels());
    for (float& v : h) v *= scale;
  }
  std::vector<float> out(static_cast<size_t>(job.offsets.back()), 0.0f);
  std::atomic<int64_t> next{0};
  std::exception_ptr error;
  std::mutex errorMutex;
  auto work = [&]() {
    try {
      std::vector<float> t(n), m(n);
      std::unique_ptr<BoxFilter> boxFilter;
      if (!h.empty()) boxFilter = std::make_unique<BoxFilter>(b, job.filterShape, h.data());
      for (int64_t q; !cancelled && (q = next.fetch_add(1)) < queries;) {
        const float* f = job.patches.data() + q * n;
        double fixedE1 = 0, fixedE2 = 0, fixedN = 0;
        if (job.score == Score::FlcSphere) {
          localMoments(f, job.mask.data(), n, mean, &fixedE1, &fixedE2);
          for (float v : job.mask) fixedN += v;
        }
        for (int64_t r = job.offsets[q]; r < job.offsets[q + 1]; ++r) {
          const RotationParams rot = rotationParams(job.rotations.data() + 9 * r);
          rotateBoxCpu(t.data(), job.templ.data(), b, rot, job.interpolation);
          if (boxFilter) boxFilter->apply(t.data());
          double score = 0;
          if (job.score == Score::Cc) {
            for (int64_t i = 0; i < n; ++i) score += static_cast<double>(t[i]) * f[i];
          } else {
            const float* mask = job.mask.data();
            double e1 = fixedE1, e2 = fixedE2, nm = fixedN;
            if (job.score == Score::Flc) {
              rotateBoxCpu(m.data(), job.mask.data(), b, rot, job.interpolation);
              mask = m.data();
              localMoments(f, mask, n, mean, &e1, &e2);
              nm = 0;
              for (int64_t i = 0; i < n; ++i) nm += mask[i];
            }
            const BoxMoments tm = boxMoments(t.data(), mask, n);
            const double var = nm > 0 ? e2 / nm - (e1 / nm) * (e1 / nm) : 0;
            if (var > flat && var > 0 && nm > 0) {
              double c = 0;
              for (int64_t i = 0; i < n; ++i) c += (t[i] - tm.mean) * tm.inverseSigma * mask[i] * (f[i] - mean);
              score = std::min(1.0, std::max(-1.0, c / (nm * std::sqrt(var))));
            }
          }
          out[r] = static_cast<float>(score);
        }
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(errorMutex);
      if (!error) error = std::current_exception();
      next = queries;
    }
  };
  const int hardware = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(job.threads > 0 ? job.threads : hardware, queries)));
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back(work);
  work();
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
  if (cancelled) fail(ErrorCode::Cancelled, "orientation scoring was cancelled");
  return out;
}

}  // namespace tme

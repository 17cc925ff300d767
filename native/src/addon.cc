// Registers the binding's functions. Everything here converts between JS values and native structs, and turns
// TmeNativeError into a JS Error with a `code`; the work itself lives in match/, cpu/ and vk/.
#include <napi.h>
#include <fftw3.h>
#include <unistd.h>

#include <algorithm>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <chrono>
#include <cmath>
#include <limits>

#include <atomic>
#include <functional>
#include <memory>
#include <thread>

#include "cpu/fftw_plans.h"
#include "errors.h"
#include "host_memory.h"
#include "match/match_loop.h"
#include "match/orientations.h"
#include "vk/vk_context.h"
#include "vk/vk_loader.h"

namespace tme {
namespace {

Napi::Error codedError(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  return e;
}

// Runs `body`, converting native failures into coded JS errors (never an abort).
template <typename F>
Napi::Value guarded(Napi::Env env, F&& body) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const TmeNativeError& e) {
    throw codedError(env, e.codeName(), e.what());
  } catch (const std::bad_alloc&) {
    throw codedError(env, "ERR_TME_DEVICE_MEMORY", "out of host memory");
  } catch (const std::exception& e) {
    throw codedError(env, "ERR_TME_INTERNAL", e.what());
  }
}

// ---- argument readers (the TS facade validates; these guard memory safety only) ----

Shape3 readTriple(const Napi::Value& v, const char* name, int64_t lowest) {
  if (!v.IsArray() || v.As<Napi::Array>().Length() != 3)
    fail(ErrorCode::InvalidOption, std::string("Expected [z, y, x] for ") + name);
  Napi::Array a = v.As<Napi::Array>();
  int64_t s[3];
  for (uint32_t i = 0; i < 3; ++i) {
    Napi::Value e = a.Get(i);
    if (!e.IsNumber()) fail(ErrorCode::InvalidOption, std::string("Expected integer axes for ") + name);
    double d = e.As<Napi::Number>().DoubleValue();
    if (d != static_cast<double>(static_cast<int64_t>(d)) || d < static_cast<double>(lowest) || d > (1 << 20))
      fail(ErrorCode::UnsupportedSize, std::string(name) + " axis " + std::to_string(d) + " is not an integer in " +
                                           std::to_string(lowest) + "..1048576");
    s[i] = static_cast<int64_t>(d);
  }
  return {s[0], s[1], s[2]};
}

Shape3 readShape(const Napi::Value& v, const char* name) { return readTriple(v, name, 1); }

// JS typed arrays a job reads in place, referenced until the job settles so they cannot be collected under it.
using Pins = std::vector<Napi::ObjectReference>;

// The typed array `name` of `o`, checked; false when absent and not required.
template <typename T>
bool typedArg(const Napi::Object& o, const char* name, napi_typedarray_type type, bool required,
              Napi::TypedArrayOf<T>* out) {
  Napi::Value v = o.Get(name);
  if (v.IsUndefined() || v.IsNull()) {
    if (required) fail(ErrorCode::InvalidOption, std::string("Expected a typed array for ") + name);
    return false;
  }
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
    fail(ErrorCode::InvalidOption, std::string("Expected ") +
                                       (type == napi_float32_array ? "Float32Array" : type == napi_float64_array ? "Float64Array" : type == napi_uint8_array ? "Uint8Array" : "Int32Array") +
                                       " for " + name);
  *out = v.As<Napi::TypedArrayOf<T>>();
  return true;
}

template <typename T>
std::vector<T> readTyped(const Napi::Object& o, const char* name, napi_typedarray_type type, bool required) {
  Napi::TypedArrayOf<T> a;
  if (!typedArg(o, name, type, required, &a)) return {};
  return std::vector<T>(a.Data(), a.Data() + a.ElementLength());
}

template <typename T>
InputArray<T> viewTyped(const Napi::Object& o, const char* name, napi_typedarray_type type, bool required, Pins* pins) {
  Napi::TypedArrayOf<T> a;
  if (!typedArg(o, name, type, required, &a)) return {};
  pins->push_back(Napi::Persistent(static_cast<Napi::Object>(a)));
  return InputArray<T>::view(a.Data(), a.ElementLength());
}

std::string readDevice(const Napi::Value& v) {
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (d < 0 || d != static_cast<double>(static_cast<int>(d)))
      fail(ErrorCode::InvalidOption, "Expected 'cpu' or a device index for device");
    return std::to_string(static_cast<int>(d));
  }
  if (v.IsString() && v.As<Napi::String>().Utf8Value() == "cpu") return "cpu";
  fail(ErrorCode::InvalidOption, "Expected 'cpu' or a device index for device");
}

int readInt(const Napi::Object& o, const char* name, int fallback) {
  Napi::Value v = o.Get(name);
  if (v.IsUndefined()) return fallback;
  if (!v.IsNumber()) fail(ErrorCode::InvalidOption, std::string("Expected integer for ") + name);
  return static_cast<int>(v.As<Napi::Number>().Int64Value());
}

// An optional finite number; `fallback` when absent.
double readFinite(const Napi::Object& o, const char* name, double fallback) {
  Napi::Value v = o.Get(name);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsNumber() || !std::isfinite(v.As<Napi::Number>().DoubleValue()))
    fail(ErrorCode::InvalidOption, std::string("Expected a finite number for ") + name);
  return v.As<Napi::Number>().DoubleValue();
}

Score readScore(const Napi::Value& v) {
  std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "flc-sphere";
  if (s == "cc") return Score::Cc;
  if (s == "flc-sphere") return Score::FlcSphere;
  if (s == "flc") return Score::Flc;
  if (s == "mcc") return Score::Mcc;
  fail(ErrorCode::InvalidOption, "Expected 'cc' | 'flc-sphere' | 'flc' | 'mcc' for score but received \"" + s + "\"");
}

RotationMode readRotationMode(const Napi::Value& v) {
  std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "real";
  if (s == "real") return RotationMode::Real;
  if (s == "fourier") return RotationMode::Fourier;
  fail(ErrorCode::InvalidOption, "Expected 'real' | 'fourier' for rotationMode but received \"" + s + "\"");
}

// spectrumPrecision: 'single' (default) or 'half' (MatchJob::halfSpectra).
bool readHalfSpectra(const Napi::Value& v) {
  if (v.IsUndefined()) return false;
  std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (s == "single") return false;
  if (s == "half") return true;
  fail(ErrorCode::InvalidOption, "Expected 'single' | 'half' for spectrumPrecision but received \"" + s + "\"");
}

// setupOn: where a Vulkan job makes the tile's set-up, 'device' (default) or 'host' (MatchJob::hostSetup, for
// comparisons); the CPU path has only 'host'.
bool readHostSetup(const Napi::Value& v, const std::string& device) {
  if (v.IsUndefined()) return false;
  std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (s == "host") return true;
  if (s == "device" && device != "cpu") return false;
  if (s == "device")
    fail(ErrorCode::InvalidOption, "Expected a Vulkan device for setupOn 'device' but received \"cpu\"");
  fail(ErrorCode::InvalidOption, "Expected 'device' | 'host' for setupOn but received \"" + s + "\"");
}

// cpuTransforms: whether the CPU path runs whole 3D transforms, and how the slab correlator forms its z products.
void readCpuTransforms(const Napi::Value& v, bool* full, ZSums* zSums) {
  std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "pruned";
  *full = s == "full";
  *zSums = s == "pruned-direct-z" ? ZSums::Direct : s == "pruned-spectral-z" ? ZSums::Spectral : ZSums::Auto;
  if (s == "pruned" || s == "full" || *zSums != ZSums::Auto) return;
  fail(ErrorCode::InvalidOption,
       "Expected 'pruned' | 'pruned-spectral-z' | 'pruned-direct-z' | 'full' for cpuTransforms but received \"" + s + "\"");
}

Interpolation readInterpolation(const Napi::Value& v) {
  std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "linear";
  if (s == "linear") return Interpolation::Linear;
  if (s == "cubic") return Interpolation::Cubic;
  fail(ErrorCode::InvalidOption, "Expected 'linear' | 'cubic' for interpolation but received \"" + s + "\"");
}

MatchJob readJob(const Napi::Object& o, Pins* pins) {
  MatchJob job;
  job.device = readDevice(o.Get("device"));
  job.threads = readInt(o, "threads", 0);
  job.targetShape = readShape(o.Get("targetShape"), "targetShape");
  job.templateShape = readShape(o.Get("templateShape"), "templateShape");
  {
    Napi::Value support = o.Get("supportShape");
    job.supportShape = support.IsUndefined() ? job.templateShape : readShape(support, "supportShape");
  }
  job.score = readScore(o.Get("score"));
  job.rotationMode = readRotationMode(o.Get("rotationMode"));
  job.interpolation = readInterpolation(o.Get("interpolation"));
  job.fourierOversampling = readInt(o, "fourierOversampling", 2);
  readCpuTransforms(o.Get("cpuTransforms"), &job.fullTransforms, &job.zSums);
  job.rotationsPerSubmit = readInt(o, "rotationsPerSubmit", 0);
  job.halfSpectra = readHalfSpectra(o.Get("spectrumPrecision"));
  job.keepSetup = o.Get("keepSetup").ToBoolean();
  job.hostSetup = readHostSetup(o.Get("setupOn"), job.device);
  job.voxelStats = o.Get("voxelStats").ToBoolean();
  // The tile-sized inputs are read in place (runMatch pins the job object until it settles); the small ones copied.
  job.target = viewTyped<float>(o, "target", napi_float32_array, true, pins);
  job.templ = readTyped<float>(o, "template", napi_float32_array, true);
  job.mask = readTyped<float>(o, "mask", napi_float32_array, true);
  job.targetMask = viewTyped<float>(o, "targetMask", napi_float32_array, false, pins);
  // Bytes (0/1) from JS; the run turns them into float weights so the statistics loop stays branch-free.
  job.statsMask = viewTyped<uint8_t>(o, "statsMask", napi_uint8_array, false, pins);
  job.filter = readTyped<float>(o, "filter", napi_float32_array, false);
  if (!job.filter.empty()) {
    Napi::Value shape = o.Get("filterShape");
    job.filterShape = shape.IsUndefined() ? job.templateShape : readShape(shape, "filterShape");
  }
  job.targetMean = readFinite(o, "targetMean", std::numeric_limits<double>::quiet_NaN());
  job.targetVariance = readFinite(o, "targetVariance", std::numeric_limits<double>::quiet_NaN());
  job.rotations = readTyped<double>(o, "rotations", napi_float64_array, true);
  const int64_t count = static_cast<int64_t>(job.rotations.size() / 9);
  job.rotationStart = readInt(o, "rotationStart", 0);
  job.rotationEnd = o.Get("rotationEnd").IsUndefined() ? count : readInt(o, "rotationEnd", 0);
  job.initialScores = viewTyped<float>(o, "initialScores", napi_float32_array, false, pins);
  job.initialIndices = viewTyped<int32_t>(o, "initialIndices", napi_int32_array, false, pins);
  Napi::Value region = o.Get("outputRegion");
  if (!region.IsUndefined() && !region.IsNull()) {
    if (!region.IsObject()) fail(ErrorCode::InvalidOption, "Expected { start, shape } for outputRegion");
    Napi::Object r = region.As<Napi::Object>();
    job.regionStart = readTriple(r.Get("start"), "outputRegion.start", 0);
    job.regionShape = readShape(r.Get("shape"), "outputRegion.shape");
  }
  return job;
}

// ---- asynchronous calls: work on a libuv thread, errors with a code, { promise, cancel } to JS ----

// Runs a worker's body, turning its exceptions into the error (and code) the worker reports: native errors keep their
// code; running out of memory and anything else get theirs.
template <typename Body>
void runReportingErrors(Body&& body, std::string* code, const char* what, const std::function<void(const std::string&)>& setError) {
  try {
    body();
  } catch (const TmeNativeError& e) {
    *code = e.codeName();
    setError(e.what());
  } catch (const std::bad_alloc&) {
    *code = "ERR_TME_DEVICE_MEMORY";
    setError(std::string("out of host memory while ") + what);
  } catch (const std::exception& e) {
    *code = "ERR_TME_INTERNAL";
    setError(e.what());
  }
}

// Queues a worker and returns what the JS side awaits: its promise, and a cancel() that raises its flag.
template <typename Worker>
Napi::Object queueCancellable(Napi::Env env, Worker* worker, std::shared_ptr<std::atomic<bool>> cancelled) {
  Napi::Object task = Napi::Object::New(env);
  task.Set("promise", worker->promise());
  task.Set("cancel", Napi::Function::New(env, [cancelled](const Napi::CallbackInfo& ci) -> Napi::Value {
             cancelled->store(true);
             return ci.Env().Undefined();
           }, "cancel"));
  worker->Queue();
  return task;
}

// ---- runMatch: AsyncProgressWorker, progress coalesced (latest wins), cancel flag checked per rotation ----

struct Progress {
  int64_t done, total;
};

// A vector's memory as a JS typed array that owns it (freed when the array is collected).
template <typename T>
Napi::TypedArrayOf<T> handOver(Napi::Env env, std::vector<T>&& values) {
  auto* held = new std::vector<T>(std::move(values));
  const size_t n = held->size();
  if (n == 0) {
    delete held;
    return Napi::TypedArrayOf<T>::New(env, 0);
  }
  // V8 is told about the memory so that a discarded map is collected as soon as a JS array of its size would be.
  const int64_t bytes = static_cast<int64_t>(n * sizeof(T));
  Napi::MemoryManagement::AdjustExternalMemory(env, bytes);
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(
      env, held->data(), n * sizeof(T),
      [](Napi::Env e, void*, std::vector<T>* h) {
        Napi::MemoryManagement::AdjustExternalMemory(e, -static_cast<int64_t>(h->size() * sizeof(T)));
        delete h;
      },
      held);
  return Napi::TypedArrayOf<T>::New(env, n, buffer, 0);
}

class MatchWorker : public Napi::AsyncProgressWorker<Progress> {
 public:
  MatchWorker(Napi::Env env, MatchJob job, Pins pins, Napi::Value onProgress,
              std::shared_ptr<std::atomic<bool>> cancelled, const Napi::Object& jobObject)
      : Napi::AsyncProgressWorker<Progress>(env, "tme.runMatch"),
        deferred_(Napi::Promise::Deferred::New(env)),
        job_(std::move(job)),
        pins_(std::move(pins)),
        cancelled_(std::move(cancelled)) {
    if (onProgress.IsFunction()) progress_ = Napi::Persistent(onProgress.As<Napi::Function>());
    // A call that continues from initial maps writes its maps back into them and returns the same arrays. A new pair
    // per call was garbage that V8 does not collect while the event loop only waits on the addon: a run in batches
    // held one or two extra tile-sized pairs (+480 MiB each on a 512×512×200 tile, measured).
    // (readJob checked each array's type; a job with one of the two is refused by the run's validation.)
    if (!job_.initialScores.empty() && !job_.initialIndices.empty()) {
      auto scores = jobObject.Get("initialScores").As<Napi::Float32Array>();
      auto indices = jobObject.Get("initialIndices").As<Napi::Int32Array>();
      mapsOut_ = {scores.Data(), indices.Data(), scores.ElementLength()};
      scoresOut_ = Napi::Persistent(static_cast<Napi::Object>(scores));
      indicesOut_ = Napi::Persistent(static_cast<Napi::Object>(indices));
      // Where the lengths are the job's (runMatchJob checks them), the CPU writes its maps there as it goes.
      job_.continueScores = scores.Data();
      job_.continueIndices = indices.Data();
    }
  }

  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute(const ExecutionProgress& progress) override {
    runReportingErrors([&] {
      result_ = runMatchJob(
          job_, [&](int64_t done, int64_t total) { Progress p{done, total}; progress.Send(&p, 1); }, *cancelled_);
      if (result_.mapsInPlace) {
        mapsWritten_ = true;
      } else if (mapsOut_.scores != nullptr && result_.scores.size() == mapsOut_.size && result_.indices.size() == mapsOut_.size) {
        std::copy(result_.scores.begin(), result_.scores.end(), mapsOut_.scores);
        std::copy(result_.indices.begin(), result_.indices.end(), mapsOut_.indices);
        std::vector<float>().swap(result_.scores);
        std::vector<int32_t>().swap(result_.indices);
        mapsWritten_ = true;
      }
    }, &code_, "matching", [this](const std::string& m) { SetError(m); });
  }

  void OnProgress(const Progress* data, size_t count) override {
    if (progress_.IsEmpty() || data == nullptr || count == 0) return;
    Napi::Env env = Env();
    Napi::Object p = Napi::Object::New(env);
    p.Set("done", Napi::Number::New(env, static_cast<double>(data->done)));
    p.Set("total", Napi::Number::New(env, static_cast<double>(data->total)));
    try {
      progress_.Call({p});
    } catch (const Napi::Error&) {
      // A throwing progress callback must not take the job down; the facade reports such errors itself.
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    const MatchResult& r = result_;
    Napi::Object out = Napi::Object::New(env);
    // The maps are handed over, not copied (a tile's two maps are 8 bytes a voxel), or were written into the initial ones.
    Napi::Value scores = mapsWritten_ ? scoresOut_.Value() : static_cast<Napi::Value>(handOver(env, std::move(result_.scores)));
    Napi::Value indices = mapsWritten_ ? indicesOut_.Value() : static_cast<Napi::Value>(handOver(env, std::move(result_.indices)));
    auto rmax = Napi::Float32Array::New(env, r.perRotationMax.size());
    std::copy(r.perRotationMax.begin(), r.perRotationMax.end(), rmax.Data());
    Napi::Object stats = Napi::Object::New(env);
    stats.Set("sum", r.sum);
    stats.Set("sumSq", r.sumSq);
    stats.Set("count", r.count);
    stats.Set("perRotationMax", rmax);
    auto rsum = Napi::Float64Array::New(env, r.perRotationSum.size());
    std::copy(r.perRotationSum.begin(), r.perRotationSum.end(), rsum.Data());
    auto rsumSq = Napi::Float64Array::New(env, r.perRotationSumSq.size());
    std::copy(r.perRotationSumSq.begin(), r.perRotationSumSq.end(), rsumSq.Data());
    stats.Set("perRotationSum", rsum);
    stats.Set("perRotationSumSq", rsumSq);
    if (job_.voxelStats) {
      out.Set("voxelSum", handOver(env, std::move(result_.voxelSum)));
      out.Set("voxelSumSq", handOver(env, std::move(result_.voxelSumSq)));
    }
    Napi::Object timings = Napi::Object::New(env);
    const double rotations = static_cast<double>(r.perRotationMax.size());
    timings.Set("setupMs", r.setupMs);
    timings.Set("planMs", r.planMs);
    timings.Set("loopMs", r.loopMs);
    timings.Set("perRotationMs", rotations > 0 ? r.loopMs / rotations : 0.0);
    timings.Set("rotationMinMs", r.rotationMinMs);
    timings.Set("rotationMedianMs", r.rotationMedianMs);
    out.Set("scores", scores);
    out.Set("indices", indices);
    out.Set("stats", stats);
    out.Set("timings", timings);
    out.Set("device", r.device);
    out.Set("setupReused", r.setupReused);
    deferred_.Resolve(out);
  }

  void OnError(const Napi::Error& e) override {
    Napi::Error coded = codedError(Env(), code_.c_str(), e.Message());
    deferred_.Reject(coded.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  MatchJob job_;
  Pins pins_;  // the typed arrays job_ reads in place
  std::shared_ptr<std::atomic<bool>> cancelled_;
  Napi::FunctionReference progress_;
  MatchResult result_;
  std::string code_ = "ERR_TME_INTERNAL";
  struct {
    float* scores = nullptr;
    int32_t* indices = nullptr;
    size_t size = 0;
  } mapsOut_;
  Napi::ObjectReference scoresOut_, indicesOut_;
  bool mapsWritten_ = false;
};

Napi::Value RunMatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!info[0].IsObject()) fail(ErrorCode::InvalidOption, "Expected a job object for runMatch");
    Pins pins;
    MatchJob job = readJob(info[0].As<Napi::Object>(), &pins);
    auto cancelled = std::make_shared<std::atomic<bool>>(false);
    return queueCancellable(env, new MatchWorker(env, std::move(job), std::move(pins), info[1], cancelled, info[0].As<Napi::Object>()), cancelled);
  });
}

// ---- scoreOrientations: one AsyncWorker, cancellable between queries ----

OrientationJob readOrientationJob(const Napi::Object& o) {
  OrientationJob job;
  job.threads = readInt(o, "threads", 0);
  job.templateShape = readShape(o.Get("templateShape"), "templateShape");
  job.templ = readTyped<float>(o, "template", napi_float32_array, true);
  job.mask = readTyped<float>(o, "mask", napi_float32_array, true);
  job.filter = readTyped<float>(o, "filter", napi_float32_array, false);
  if (!job.filter.empty()) {
    Napi::Value shape = o.Get("filterShape");
    job.filterShape = shape.IsUndefined() ? job.templateShape : readShape(shape, "filterShape");
  }
  job.score = readScore(o.Get("score"));
  job.interpolation = readInterpolation(o.Get("interpolation"));
  job.targetMean = readFinite(o, "targetMean", std::numeric_limits<double>::quiet_NaN());
  job.targetVariance = readFinite(o, "targetVariance", std::numeric_limits<double>::quiet_NaN());
  job.patches = readTyped<float>(o, "patches", napi_float32_array, true);
  job.rotations = readTyped<double>(o, "rotations", napi_float64_array, true);
  const std::vector<int32_t> offsets = readTyped<int32_t>(o, "offsets", napi_int32_array, true);
  job.offsets.assign(offsets.begin(), offsets.end());
  return job;
}

class OrientationWorker : public Napi::AsyncWorker {
 public:
  OrientationWorker(Napi::Env env, OrientationJob job, std::shared_ptr<std::atomic<bool>> cancelled)
      : Napi::AsyncWorker(env, "tme.scoreOrientations"), deferred_(Napi::Promise::Deferred::New(env)),
        job_(std::move(job)), cancelled_(std::move(cancelled)) {}

  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    runReportingErrors([&] { scores_ = scoreOrientations(job_, *cancelled_); }, &code_, "scoring orientations",
                       [this](const std::string& m) { SetError(m); });
  }

  void OnOK() override {
    auto out = Napi::Float32Array::New(Env(), scores_.size());
    std::copy(scores_.begin(), scores_.end(), out.Data());
    deferred_.Resolve(out);
  }

  void OnError(const Napi::Error& e) override {
    deferred_.Reject(codedError(Env(), code_.c_str(), e.Message()).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  OrientationJob job_;
  std::shared_ptr<std::atomic<bool>> cancelled_;
  std::vector<float> scores_;
  std::string code_ = "ERR_TME_INTERNAL";
};

Napi::Value ScoreOrientations(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!info[0].IsObject()) fail(ErrorCode::InvalidOption, "Expected a job object for scoreOrientations");
    OrientationJob job = readOrientationJob(info[0].As<Napi::Object>());
    auto cancelled = std::make_shared<std::atomic<bool>>(false);
    return queueCancellable(env, new OrientationWorker(env, std::move(job), cancelled), cancelled);
  });
}

// ---- devices, memory, FFTs ----

Napi::Value ListDevices(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    std::string error;
    auto devices = vkListDevices(&error);
    Napi::Object out = Napi::Object::New(env);
    Napi::Array list = Napi::Array::New(env);
    for (size_t i = 0; i < devices.size(); ++i) {
      const VkDeviceInfo& d = devices[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("index", d.index);
      o.Set("id", std::to_string(d.index));
      o.Set("name", d.name);
      o.Set("type", d.type);
      o.Set("api", "vulkan");
      o.Set("memoryBytes", static_cast<double>(d.memoryBytes));
      o.Set("maxStorageBufferRange", static_cast<double>(d.maxStorageBufferRange));
      o.Set("apiVersion", std::to_string(d.apiVersion >> 22) + "." + std::to_string((d.apiVersion >> 12) & 0x3ff) +
                              "." + std::to_string(d.apiVersion & 0xfff));
      o.Set("driverVersion", static_cast<double>(d.driverVersion));
      o.Set("driverName", d.driverName);
      o.Set("driverInfo", d.driverInfo);
      list.Set(static_cast<uint32_t>(i), o);
    }
    out.Set("vulkan", list);
    out.Set("vulkanError", error.empty() ? env.Null() : Napi::String::New(env, error));
    const std::string loader = vulkanLoaderPath();
    out.Set("vulkanLoader", loader.empty() ? env.Null() : Napi::String::New(env, loader));
    out.Set("vulkanLoaderBundled", vulkanLoaderIsBundled());
    Napi::Array drivers = Napi::Array::New(env);
    const std::vector<std::string> files = loadedVulkanDrivers();
    for (size_t i = 0; i < files.size(); ++i) drivers.Set(static_cast<uint32_t>(i), files[i]);
    out.Set("vulkanDrivers", drivers);
    out.Set("hardwareConcurrency", static_cast<double>(std::max(1u, std::thread::hardware_concurrency())));
    MemoryQuery q;  // host RAM via the CPU estimate's limit
    q.targetShape = {1, 1, 2};
    q.templateShape = {1, 1, 1};
    out.Set("hostAvailableBytes", estimateMatchMemory(q).deviceLimitBytes / 0.9);
    out.Set("hostTotalBytes", static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGESIZE)));
    return out;
  });
}

Napi::Value EstimateMatchMemory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!info[0].IsObject()) fail(ErrorCode::InvalidOption, "Expected an object for estimateMatchMemory");
    Napi::Object o = info[0].As<Napi::Object>();
    MemoryQuery q;
    q.device = readDevice(o.Get("device"));
    q.targetShape = readShape(o.Get("targetShape"), "targetShape");
    q.templateShape = readShape(o.Get("templateShape"), "templateShape");
    {
      Napi::Value support = o.Get("supportShape");
      q.supportShape = support.IsUndefined() ? q.templateShape : readShape(support, "supportShape");
    }
    q.score = readScore(o.Get("score"));
    q.rotationMode = readRotationMode(o.Get("rotationMode"));
    q.threads = readInt(o, "threads", 0);
    q.fourierOversampling = readInt(o, "fourierOversampling", 2);
    q.filter = o.Get("filter").ToBoolean();
    q.targetMask = o.Get("targetMask").ToBoolean();
    q.initialMaps = o.Get("initialMaps").ToBoolean();
    q.statsMask = o.Get("statsMask").ToBoolean();
    q.voxelStats = o.Get("voxelStats").ToBoolean();
    readCpuTransforms(o.Get("cpuTransforms"), &q.fullTransforms, &q.zSums);
    q.halfSpectra = readHalfSpectra(o.Get("spectrumPrecision"));
    q.hostSetup = readHostSetup(o.Get("setupOn"), q.device);
    MemoryVerdict v = estimateMatchMemory(q);
    int forward = 0, inverse = 0;
    fftCountsPerRotation(q.score, q.rotationMode, &forward, &inverse);
    Napi::Object out = Napi::Object::New(env);
    out.Set("deviceBytes", v.estimate.deviceBytes);
    out.Set("hostBytes", v.estimate.hostBytes);
    out.Set("largestBufferBytes", v.estimate.largestBufferBytes);
    out.Set("limitBytes", v.deviceLimitBytes);
    out.Set("bufferLimitBytes", v.bufferLimitBytes);
    out.Set("workers", v.workers);
    out.Set("fits", v.fits);
    out.Set("reason", v.reason.empty() ? env.Null() : Napi::String::New(env, v.reason));
    out.Set("forwardFftsPerRotation", forward);
    out.Set("inverseFftsPerRotation", inverse);
    return out;
  });
}

Napi::Value FftForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    std::string device = readDevice(info[0]);
    Shape3 shape = readShape(info[2], "shape");
    if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      fail(ErrorCode::InvalidOption, "Expected Float32Array for data");
    auto data = info[1].As<Napi::Float32Array>();
    if (static_cast<int64_t>(data.ElementLength()) != shape.voxels())
      fail(ErrorCode::InvalidOption, "Expected " + std::to_string(shape.voxels()) + " values for data but received " +
                                         std::to_string(data.ElementLength()));
    auto out = Napi::Float32Array::New(env, 2 * shape.spectrumCount());
    if (device == "cpu") {
      const FftwPlanPair& plans = fftwPlans(shape, readInt(info[3].IsObject() ? info[3].As<Napi::Object>() : Napi::Object::New(env), "threads", 1), nullptr, PlanEffort::OneShot);
      auto in = fftwAlloc<float>(shape.voxels());
      auto spec = fftwAlloc<cfloat>(shape.spectrumCount());
      std::copy(data.Data(), data.Data() + shape.voxels(), in.get());
      fftwR2C(plans, in.get(), spec.get());
      std::copy(reinterpret_cast<float*>(spec.get()), reinterpret_cast<float*>(spec.get()) + 2 * shape.spectrumCount(), out.Data());
    } else {
      vkFftForward(std::stoi(device), shape, data.Data(), out.Data(), nullptr);
    }
    return out;
  });
}

Napi::Value FftInverse(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    std::string device = readDevice(info[0]);
    Shape3 shape = readShape(info[2], "shape");
    if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      fail(ErrorCode::InvalidOption, "Expected Float32Array for spectrum");
    auto data = info[1].As<Napi::Float32Array>();
    if (static_cast<int64_t>(data.ElementLength()) != 2 * shape.spectrumCount())
      fail(ErrorCode::InvalidOption, "Expected " + std::to_string(2 * shape.spectrumCount()) +
                                         " values (interleaved half spectrum) for spectrum but received " +
                                         std::to_string(data.ElementLength()));
    auto out = Napi::Float32Array::New(env, shape.voxels());
    const float scale = 1.0f / static_cast<float>(shape.voxels());
    if (device == "cpu") {
      const FftwPlanPair& plans = fftwPlans(shape, readInt(info[3].IsObject() ? info[3].As<Napi::Object>() : Napi::Object::New(env), "threads", 1), nullptr, PlanEffort::OneShot);
      auto spec = fftwAlloc<cfloat>(shape.spectrumCount());
      auto real = fftwAlloc<float>(shape.voxels());
      std::copy(data.Data(), data.Data() + 2 * shape.spectrumCount(), reinterpret_cast<float*>(spec.get()));
      fftwC2R(plans, spec.get(), real.get());
      for (int64_t i = 0; i < shape.voxels(); ++i) out.Data()[i] = real[i] * scale;
    } else {
      vkFftInverse(std::stoi(device), shape, data.Data(), out.Data(), nullptr);
      for (int64_t i = 0; i < shape.voxels(); ++i) out.Data()[i] *= scale;
    }
    return out;
  });
}

// The out-of-core volume filter's transforms (fftw_plans.h), in place on the caller's arrays.
Napi::Float32Array readFloats(const Napi::Value& v, const char* name, int64_t count) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    fail(ErrorCode::InvalidOption, std::string("Expected Float32Array for ") + name);
  auto a = v.As<Napi::Float32Array>();
  if (static_cast<int64_t>(a.ElementLength()) < count)
    fail(ErrorCode::InvalidOption, "Expected at least " + std::to_string(count) + " values for " + name + " but received " +
                                       std::to_string(a.ElementLength()));
  return a;
}

// filterVolume(data, shape, filter, { threads, inPlace }): fftInverse(fftForward(data) x filter) on the CPU in one
// call (inPlace: written into `data`, which is returned). The spectrum (twice the volume's bytes) never crosses into
// JS, where it was allocated zero-filled, copied out, multiplied and copied back (a 264x576x576 target filter: ~1.5 s
// of its ~4 s). The same float operations in the same order as the three steps (a float product rounded from double,
// as JS computed it, is the float product), so the same bits.
Napi::Value FilterVolume(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Shape3 shape = readShape(info[1], "shape");
    auto data = readFloats(info[0], "data", shape.voxels());
    if (static_cast<int64_t>(data.ElementLength()) != shape.voxels())
      fail(ErrorCode::InvalidOption, "Expected " + std::to_string(shape.voxels()) + " values for data but received " +
                                         std::to_string(data.ElementLength()));
    const int64_t n = shape.voxels(), nc = shape.spectrumCount();
    auto filter = readFloats(info[2], "filter", nc);
    if (static_cast<int64_t>(filter.ElementLength()) != nc)
      fail(ErrorCode::InvalidOption, "Expected " + std::to_string(nc) + " values (the half spectrum) for filter but received " +
                                         std::to_string(filter.ElementLength()));
    const Napi::Object options = info[3].IsObject() ? info[3].As<Napi::Object>() : Napi::Object::New(env);
    const int threads = readInt(options, "threads", 1);
    const bool inPlace = options.Get("inPlace").ToBoolean();
    const FftwPlanPair& plans = fftwPlans(shape, threads, nullptr, PlanEffort::OneShot);
    // In place: the transforms read and write the caller's array itself where its alignment is the plans' (FFTW's
    // new-array rule), else through one copy; no output array. A 264x576x576 target filter's two fresh 350 MB
    // arrays cost ~0.4 s of first-touch page faults.
    FftwArray<float> copy;
    float* real = data.Data();
    if (!inPlace || fftwf_alignment_of(real) != 0) {
      copy = fftwAlloc<float>(n);
      std::copy(data.Data(), data.Data() + n, copy.get());
      real = copy.get();
    }
    auto spec = fftwAlloc<cfloat>(nc);
    fftwR2C(plans, real, spec.get());
    const float* h = filter.Data();
    float* f = reinterpret_cast<float*>(spec.get());
    for (int64_t k = 0; k < nc; ++k) {
      f[2 * k] *= h[k];
      f[2 * k + 1] *= h[k];
    }
    fftwC2R(plans, spec.get(), real);
    spec.reset();
    const float scale = 1.0f / static_cast<float>(n);
    if (inPlace) {
      float* out = data.Data();
      for (int64_t i = 0; i < n; ++i) out[i] = real[i] * scale;
      return data;
    }
    auto out = Napi::Float32Array::New(env, n);
    for (int64_t i = 0; i < n; ++i) out.Data()[i] = real[i] * scale;
    return out;
  });
}

// fftPlanes(inverse, real, spectrum, [count, ny, nx], threads): R2C of each plane of `real` into `spectrum`
// (interleaved half spectra), or C2R from `spectrum` (destroyed) into `real`; unnormalised.
Napi::Value FftPlanes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    bool inverse = info[0].ToBoolean();
    Shape3 shape = readShape(info[3], "shape");
    int threads = info[4].IsNumber() ? std::max(1, info[4].As<Napi::Number>().Int32Value()) : 1;
    auto real = readFloats(info[1], "real", shape.voxels());
    auto spectrum = readFloats(info[2], "spectrum", 2 * shape.spectrumCount());
    auto* c = reinterpret_cast<cfloat*>(spectrum.Data());
    if (inverse) fftwPlanesC2R(shape.z, shape.y, shape.x, c, real.Data(), threads);
    else fftwPlanesR2C(shape.z, shape.y, shape.x, real.Data(), c, threads);
    return env.Undefined();
  });
}

// filterColumns(data, filter, n, threads): `data` (n x columns complex, interleaved) forward along n, times `filter`
// (n x columns), inverse; in place, unnormalised.
Napi::Value FilterColumns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!info[2].IsNumber() || info[2].As<Napi::Number>().Int64Value() < 1) fail(ErrorCode::InvalidOption, "Expected n >= 1");
    int64_t n = info[2].As<Napi::Number>().Int64Value();
    int threads = info[3].IsNumber() ? std::max(1, info[3].As<Napi::Number>().Int32Value()) : 1;
    auto filter = readFloats(info[1], "filter", n);
    int64_t columns = static_cast<int64_t>(filter.ElementLength()) / n;
    if (columns * n != static_cast<int64_t>(filter.ElementLength()))
      fail(ErrorCode::InvalidOption, "Expected a filter of n x columns values");
    auto data = readFloats(info[0], "data", 2 * n * columns);
    fftwFilterColumns(n, columns, reinterpret_cast<cfloat*>(data.Data()), filter.Data(), threads);
    return env.Undefined();
  });
}

Napi::Value BenchFftPair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    std::string device = readDevice(info[0]);
    Shape3 shape = readShape(info[1], "shape");
    int repeats = info[2].IsNumber() ? std::max(1, info[2].As<Napi::Number>().Int32Value()) : 5;
    int threads = info[3].IsNumber() ? std::max(1, info[3].As<Napi::Number>().Int32Value()) : 1;
    FftTiming t;
    if (device == "cpu") {
      using Clock = std::chrono::steady_clock;
      auto ms = [](Clock::time_point a) { return std::chrono::duration<double, std::milli>(Clock::now() - a).count(); };
      const FftwPlanPair& plans = fftwPlans(shape, threads, &t.planMs);
      auto real = fftwAlloc<float>(shape.voxels());
      auto out = fftwAlloc<float>(shape.voxels());
      auto spec = fftwAlloc<cfloat>(shape.spectrumCount());
      for (int64_t i = 0; i < shape.voxels(); ++i) real[i] = static_cast<float>((i * 7919) % 1000) * 1e-3f;
      std::vector<double> pairs;
      t.r2cMs = t.c2rMs = t.pairMs = 1e300;
      for (int r = 0; r < repeats + 1; ++r) {
        auto a = Clock::now();
        fftwR2C(plans, real.get(), spec.get());
        double r2c = ms(a);
        auto b = Clock::now();
        fftwC2R(plans, spec.get(), out.get());
        double c2r = ms(b);
        if (r == 0) continue;  // warm-up
        t.r2cMs = std::min(t.r2cMs, r2c);
        t.c2rMs = std::min(t.c2rMs, c2r);
        t.pairMs = std::min(t.pairMs, r2c + c2r);
        pairs.push_back(r2c + c2r);
      }
      std::sort(pairs.begin(), pairs.end());
      t.pairMedianMs = pairs[pairs.size() / 2];
    } else {
      t = vkBenchFftPair(std::stoi(device), shape, repeats);
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("planMs", t.planMs);
    out.Set("pairMs", t.pairMs);
    out.Set("pairMedianMs", t.pairMedianMs);
    out.Set("r2cMs", t.r2cMs);
    out.Set("c2rMs", t.c2rMs);
    return out;
  });
}

Napi::Value Versions(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("fftw", fftwf_version);
  out.Set("vkfft", "1.2.26 (Debian libvkfft-dev, patched for glslang 12)");
  out.Set("napi", NAPI_VERSION);
  out.Set("fftwWisdom", fftwWisdomPath());
  return out;
}

void Shutdown(void*) { vkShutdown(); }

Napi::Object Init(Napi::Env env, Napi::Object exports) {
#if defined(__GLIBC__)
  // Tile-sized arrays straight from the kernel and back on free: glibc otherwise raises its mmap threshold after the
  // first large free (up to 32 MiB), serves later arrays from its heap and keeps what they free resident. Measured
  // on a 200x200x100 slab: the whole process peaked at 662 MiB; with this, at X MiB.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
#endif
  exports.Set("runMatch", Napi::Function::New(env, RunMatch, "runMatch"));
  exports.Set("releaseKeptSetup", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    return guarded(info.Env(), [&]() -> Napi::Value {
      releaseKeptSetup(info[0].IsUndefined() ? std::string() : readDevice(info[0]));
      return info.Env().Undefined();
    });
  }, "releaseKeptSetup"));
  exports.Set("scoreOrientations", Napi::Function::New(env, ScoreOrientations, "scoreOrientations"));
  exports.Set("listDevices", Napi::Function::New(env, ListDevices, "listDevices"));
  // hostMemory(procRoot?, cgroupRoot?): what the CPU path counts as free (other roots: tests on a fake tree).
  exports.Set("hostMemory", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      const HostMemory m = info.Length() >= 2 && info[0].IsString() && info[1].IsString()
                               ? readHostMemory(info[0].As<Napi::String>(), info[1].As<Napi::String>())
                               : readHostMemory();
      Napi::Object out = Napi::Object::New(env);
      out.Set("memAvailableBytes", m.memAvailable);
      const bool limited = m.cgroupRoom < std::numeric_limits<double>::infinity();
      out.Set("cgroupRoomBytes", limited ? Napi::Value(Napi::Number::New(env, m.cgroupRoom)) : env.Null());
      out.Set("cgroupLimitBytes", limited ? Napi::Value(Napi::Number::New(env, m.cgroupLimit)) : env.Null());
      out.Set("cgroup", limited ? Napi::Value(Napi::String::New(env, m.cgroupPath)) : env.Null());
      out.Set("availableBytes", m.available());
      return out;
    });
  }, "hostMemory"));
  exports.Set("estimateMatchMemory", Napi::Function::New(env, EstimateMatchMemory, "estimateMatchMemory"));
  exports.Set("fftForward", Napi::Function::New(env, FftForward, "fftForward"));
  exports.Set("fftInverse", Napi::Function::New(env, FftInverse, "fftInverse"));
  exports.Set("filterVolume", Napi::Function::New(env, FilterVolume, "filterVolume"));
  exports.Set("fftPlanes", Napi::Function::New(env, FftPlanes, "fftPlanes"));
  exports.Set("filterColumns", Napi::Function::New(env, FilterColumns, "filterColumns"));
  exports.Set("benchFftPair", Napi::Function::New(env, BenchFftPair, "benchFftPair"));
  exports.Set("versions", Napi::Function::New(env, Versions, "versions"));
  napi_add_env_cleanup_hook(env, Shutdown, nullptr);
  return exports;
}

}  // namespace
}  // namespace tme

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return tme::Init(env, exports); }
NODE_API_MODULE(tme, InitModule)

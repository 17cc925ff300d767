// Coded native errors. Native code throws TmeNativeError anywhere (worker threads included); the binding layer
// turns it into a JS Error with a `code` property on the JS thread. Nothing else crosses the boundary.
#pragma once
#include <stdexcept>
#include <string>

namespace tme {

enum class ErrorCode {
  NoDevice,
  DeviceMemory,
  FftPlan,
  UnsupportedSize,
  Cancelled,
  Device,
  InvalidOption,
  Internal,
};

inline const char* errorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::NoDevice: return "ERR_TME_NO_DEVICE";
    case ErrorCode::DeviceMemory: return "ERR_TME_DEVICE_MEMORY";
    case ErrorCode::FftPlan: return "ERR_TME_FFT_PLAN";
    case ErrorCode::UnsupportedSize: return "ERR_TME_UNSUPPORTED_SIZE";
    case ErrorCode::Cancelled: return "ERR_TME_CANCELLED";
    case ErrorCode::Device: return "ERR_TME_DEVICE";
    case ErrorCode::InvalidOption: return "ERR_TME_INVALID_OPTION";
    case ErrorCode::Internal: return "ERR_TME_INTERNAL";
  }
  return "ERR_TME_INTERNAL";
}

class TmeNativeError : public std::runtime_error {
 public:
  TmeNativeError(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }
  const char* codeName() const { return errorCodeName(code_); }

 private:
  ErrorCode code_;
};

[[noreturn]] inline void fail(ErrorCode code, const std::string& message) { throw TmeNativeError(code, message); }

}  // namespace tme

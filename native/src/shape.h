// Grid shapes in array order (z, y, x), x fastest, and the sizes FFT libraries like.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace tme {

struct Shape3 {
  int64_t z = 0, y = 0, x = 0;
  int64_t voxels() const { return z * y * x; }
  // Half-spectrum of an R2C transform: (nz, ny, nx/2+1).
  int64_t halfX() const { return x / 2 + 1; }
  int64_t spectrumCount() const { return z * y * halfX(); }
  int64_t operator[](int axis) const { return axis == 0 ? z : axis == 1 ? y : x; }
  bool operator==(const Shape3& o) const { return z == o.z && y == o.y && x == o.x; }
  bool operator!=(const Shape3& o) const { return !(*this == o); }
  std::string str() const { return std::to_string(z) + "x" + std::to_string(y) + "x" + std::to_string(x); }
};

// Largest prime factor of n (n >= 1).
inline int64_t largestPrimeFactor(int64_t n) {
  int64_t largest = 1;
  for (int64_t p = 2; p * p <= n; ++p) {
    while (n % p == 0) { largest = p; n /= p; }
  }
  return n > 1 ? n : largest;
}

// Smallest m >= n whose prime factors are all <= maxPrime (and even when `even`).
inline int64_t nextFastSize(int64_t n, int64_t maxPrime, bool even) {
  if (n < 1) n = 1;
  for (int64_t m = n;; ++m) {
    if (even && (m % 2) != 0 && m != 1) continue;
    if (largestPrimeFactor(m) <= maxPrime) return m;
  }
}

}  // namespace tme

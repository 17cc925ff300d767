// Transparent huge pages for large arrays. Where THP is in `madvise` mode (common on VMs and distributions that
// default to it), nothing gets 2 MiB pages unless asked: a 250 MB map then takes ~60,000 page faults on first touch
// and its streaming passes walk ~60,000 TLB entries. The 2 MiB-aligned interior of a range is advised before it is
// touched; the edges (under 4 MiB) stay on 4 KiB pages, so no padding is allocated and the memory estimate holds.
// TME_HUGE_PAGES=off turns it off (for comparisons).
#pragma once
#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace tme {

constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kHugeThreshold = size_t{8} << 20;  // smaller arrays: at most a few huge pages, and mostly edges

inline bool hugePagesEnabled() {
  static const bool on = [] {
    const char* v = std::getenv("TME_HUGE_PAGES");
    return v == nullptr || std::strcmp(v, "off") != 0;
  }();
  return on;
}

// Best effort: a kernel without THP or a range it refuses keeps its small pages.
inline void adviseHugePages(void* p, size_t bytes) {
#ifdef MADV_HUGEPAGE
  if (bytes < kHugeThreshold || !hugePagesEnabled()) return;
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  const uintptr_t start = (a + kHugePage - 1) & ~(kHugePage - 1);
  const uintptr_t end = (a + bytes) & ~(kHugePage - 1);
  if (end > start) madvise(reinterpret_cast<void*>(start), end - start, MADV_HUGEPAGE);
#else
  (void)p;
  (void)bytes;
#endif
}

// v's storage for n elements, advised before its first touch (an empty vector allocates on reserve, untouched).
template <typename T, typename A>
void reserveHuge(std::vector<T, A>& v, size_t n) {
  if (v.capacity() >= n) return;
  std::vector<T, A>().swap(v);
  v.reserve(n);
  adviseHugePages(v.data(), n * sizeof(T));
}

}  // namespace tme

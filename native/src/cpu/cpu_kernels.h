// The CPU path's kernels: FFTW3f (single-threaded plans; parallelism comes from one worker per rotation) and
// plain C++ loops, each fused so that every pass over the tile reads and writes as little as possible.
#pragma once
#include <memory>

#include "match/kernels.h"

namespace tme {

std::unique_ptr<Kernels> makeCpuKernels(const KernelConfig& config, int fftThreads);

}  // namespace tme

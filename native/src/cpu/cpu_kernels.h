// The CPU path's kernels: FFTW3f (single-threaded plans; parallelism comes from one worker per rotation) and
// plain C++ loops, each fused so that every pass over the tile reads and writes as little as possible.
#pragma once
#include <memory>

#include "cpu/slab_correlator.h"
#include "match/kernels.h"

namespace tme {

// `slab`: the tile's filtered spectrum for cc / flc-sphere (then correlateFused runs the slab correlator), else null.
std::unique_ptr<Kernels> makeCpuKernels(const KernelConfig& config, int fftThreads,
                                        std::shared_ptr<const SlabSpectrum> slab = nullptr);

}  // namespace tme

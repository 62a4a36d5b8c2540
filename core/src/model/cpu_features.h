// What this CPU can do natively, read once with CPUID (and XGETBV for the OS's register support). The compute
// dtype policy and the vectorised kernels decide from it; tests pass their own CpuFeatures to the policy.
#pragma once

#include <string>

namespace qpruner::model {

struct CpuFeatures {
    bool avx2 = false;
    bool fma = false;
    bool f16c = false;
    bool avx512f = false;
    bool avx512bw = false;
    bool avx512bf16 = false; // AVX512_BF16: vdpbf16ps, a native bf16 dot product
    bool amxbf16 = false;    // AMX-BF16 tiles (Sapphire Rapids and later)

    // bf16 matmuls run natively (oneDNN's bf16 kernels) rather than through libtorch's generic loop.
    bool nativeBf16() const { return avx512bf16 || amxbf16; }
    // "avx2 fma f16c" style list of the features present ("none" when none is).
    std::string describe() const;
};

// This machine's features (cached after the first call).
const CpuFeatures& hostCpuFeatures();

// Whether our own CPU kernels (the packed GEMM and the fused attention) may run: true unless the environment
// says QPRUNER_KERNELS=libtorch, which sends every product and attention through libtorch's own ops, for
// comparisons (bench/overhead.sh). Read once. Any other value than "own", "libtorch" or unset is ignored.
bool ownCpuKernelsEnabled();

} // namespace qpruner::model

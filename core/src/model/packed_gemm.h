// y = x W^T in fp32 for a weight that is decoded as it is used (packed quantized codes, bf16/fp16 storage): a
// cache-blocked GEMM (BLIS-style loops around a 6x16 AVX2/FMA micro-kernel) whose weight panels are filled from
// rows decoded a block at a time, so the decoding happens next to the multiply instead of in a separate pass
// through memory. Every output element is summed by one thread in a fixed order, so the result does not depend
// on the thread count. When the weight has fewer blocks of rows than there are threads, the threads also split x's
// rows (each filling the block itself).
#pragma once

#include <cstdint>

#include "model/blocked_linear.h"

namespace qpruner::model {

struct PackedGemmBlocking {
    int64_t kc = 256; // depth of one panel pass (k)
    int64_t nc = 128; // weight rows decoded per block (output columns), a multiple of 16
    int64_t mc = 96;  // activation rows per L2 block, a multiple of 6
};

// Whether this CPU runs the kernel (AVX2 and FMA).
bool packedGemmAvailable();

// y[M, N] (row stride N) = x[M, K] (contiguous) times the weight whose rows `fill` writes (fp32, [rows, K]).
// `fill` may be called concurrently from several threads for disjoint row ranges. Throws std::logic_error when
// the CPU lacks AVX2/FMA (check packedGemmAvailable()).
void packedGemm(const float* x, int64_t M, int64_t K, int64_t N, const WeightRowsFill& fill, float* y,
                const PackedGemmBlocking& blocking = {});

// The same for a dense fp32 weight w[N, K] (contiguous), packed straight from memory.
void packedGemm(const float* x, int64_t M, int64_t K, int64_t N, const float* w, float* y,
                const PackedGemmBlocking& blocking = {});

} // namespace qpruner::model

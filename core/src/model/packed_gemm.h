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

// Whether a product of x[M, K] takes the packed GEMM rather than BLAS (given packedGemmAvailable()): up to 256 rows,
// a shallow depth (K <= 128: BLAS's per-call cost dominates), or, where the weight's rows N are given, a small
// product (M K N <= 2^24 multiply-adds: a 64 x 172 weight at 1024 rows ran at 87 GFLOP/s packed, 69 through
// OpenBLAS). Measured with bench_linear on a 2-core Zen 3, weights 2048 x 5632 and 5632 x 2048, relative to
// at::linear's fp32 GFLOP/s: at 1-64 rows the packed GEMM ran at 1.0-1.6x (int8, nf4, int4 and fp32 alike); at 256
// rows quantized weights ran at 0.98-1.12x packed against 0.90-1.10x as OpenBLAS on decoded blocks, and fp32 at
// 0.98-1.06x either way; at 512 and 1024 rows the packed GEMM reaches 0.90-0.98x of OpenBLAS on fp32 and decoded
// blocks run at 0.86-1.0x either way, so BLAS keeps those.
bool preferPackedGemm(int64_t M, int64_t K, int64_t N = 0);

// y[M, N] (row stride N) = x[M, K] (contiguous) times the weight whose rows `fill` writes (fp32, [rows, K]).
// `fill` may be called concurrently from several threads for disjoint row ranges. Throws std::logic_error when
// the CPU lacks AVX2/FMA (check packedGemmAvailable()).
void packedGemm(const float* x, int64_t M, int64_t K, int64_t N, const WeightRowsFill& fill, float* y,
                const PackedGemmBlocking& blocking = {});

// The same for a dense fp32 weight w[N, K] (contiguous), packed straight from memory.
void packedGemm(const float* x, int64_t M, int64_t K, int64_t N, const float* w, float* y,
                const PackedGemmBlocking& blocking = {});

} // namespace qpruner::model

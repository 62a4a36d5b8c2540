// y = x W^T (+ b) for a weight that is not held in the compute dtype (packed quantized codes, or bf16/fp16
// storage computed in fp32). In fp32 on a CPU with AVX2/FMA, for few rows of x or a shallow weight, this is the
// packed GEMM (packed_gemm.h), which decodes inside its own weight packing. Otherwise each block of W's output rows is decoded into a buffer in the
// compute dtype (all threads share the decoding) and multiplied straight into its columns of y. No dense copy
// of W outlives a block; the buffer (one per calling thread, reused) stays in the last-level cache.
#pragma once

#include <functional>
#include <optional>

#include <ATen/ATen.h>

namespace qpruner::model {

// Writes rows [r0, r1) of the weight into `dst`, a contiguous [r1 - r0, cols] tensor of the compute dtype.
using WeightRowsFill = std::function<void(int64_t r0, int64_t r1, at::Tensor& dst)>;

// Weight bytes (in the compute dtype) one block holds: wide enough that the matmul of a block runs near the
// speed of one over the whole weight (bench_linear), small enough to stay in a last-level cache.
inline constexpr int64_t kLinearBlockBytes = int64_t(16) << 20;

// How blockedLinear multiplies: Packed takes the packed GEMM (packed_gemm.h: decoding inside the GEMM's own
// weight packing; fp32 on a CPU with AVX2/FMA only, else Blas); Blas decodes blocks of `blockBytes` and hands
// them to at::mm; Auto takes Packed where preferPackedGemm says so.
enum class LinearKernel { Auto, Blas, Packed };

// x: [..., cols] in `dt`; returns [..., rows] in `dt`. `bias` (any float dtype) is added once at the end.
at::Tensor blockedLinear(const at::Tensor& x, int64_t rows, int64_t cols, const WeightRowsFill& fill,
                         const std::optional<at::Tensor>& bias, int64_t blockBytes = kLinearBlockBytes,
                         LinearKernel kernel = LinearKernel::Auto);

// Rows [r0, r1) of a 2-D weight (any float dtype) into `dst` ([r1 - r0, cols]): the fill of a dense weight held
// in another dtype. bf16 and fp16 CPU weights convert with AVX2 / F16C where the CPU has them (exact either way).
void copyRowsAsFloat(const at::Tensor& weight, int64_t r0, int64_t r1, at::Tensor& dst);

// Rows per block for a weight of `cols` columns in `dt` (at least 1).
int64_t linearBlockRows(int64_t cols, at::ScalarType dt, int64_t blockBytes = kLinearBlockBytes);

} // namespace qpruner::model

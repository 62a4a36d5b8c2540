// Dequantization on the CPU straight into a caller's fp32 buffer: the decode step of every quantized matmul
// (blockedLinear calls it per block of rows). Plain loops with AVX2 versions chosen at run time; the values are
// bit-identical to the tensor kernels and to reference_quant.h (the same single fp32 operations per element).
#pragma once

#include <cstdint>

#include "quant/quantized_tensor.h"

namespace qpruner::quant {

// Rows [r0, r1) of a CPU tensor, fp32, row-major into dst ((r1 - r0) * cols floats). The range is checked by the
// caller. `vectorised` false runs the portable loops whatever the CPU (tests compare the two).
void dequantizeRowsCpu(const QuantizedTensor& q, int64_t r0, int64_t r1, float* dst, bool vectorised = true);

// Which implementation runs: "avx2" or "scalar" (QPRUNER_KERNELS=scalar forces the portable loops).
const char* cpuDequantKernel();

} // namespace qpruner::quant

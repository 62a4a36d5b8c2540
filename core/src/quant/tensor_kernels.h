// Per-format tensor kernels behind quantized_tensor.h (internal to core/src/quant). Inputs are already checked:
// weights are contiguous fp32 [rows, cols] on their device, ranges lie inside the tensor. Each returns fp32.
#pragma once

#include <functional>
#include <map>
#include <string>

#include <ATen/ATen.h>

#include "quant/quantized_tensor.h"

namespace qpruner::quant::kernels {

using Parts = std::map<std::string, at::Tensor>;

// Weights handled per step while quantizing, to bound the temporaries (about 1M weights).
inline constexpr int64_t kStepElements = int64_t(1) << 20;

Parts quantizeNf4(const at::Tensor& weight, bool doubleQuant);
// The absmax of NF4 blocks [b0, b1), fp32 (decoded from the double-quantized form when the spec has it).
at::Tensor nf4BlockAbsmax(const QuantizedTensor& q, int64_t b0, int64_t b1);
// Elements [e0, e1) of the row-major flattened weight, fp32 [e1 - e0].
at::Tensor dequantizeNf4Elements(const QuantizedTensor& q, int64_t e0, int64_t e1);

Parts quantizeInt8(const at::Tensor& weight);
at::Tensor dequantizeInt8Rows(const QuantizedTensor& q, int64_t r0, int64_t r1);

Parts quantizeIntK(const at::Tensor& weight, int bits, int group);
at::Tensor dequantizeIntKRows(const QuantizedTensor& q, int64_t r0, int64_t r1);

// LSB-first row packing of int codes (uint8 [rows, cols], each < 2^bits) into [rows, ceil(cols * bits / 8)],
// and back (uint8 codes).
at::Tensor packRows(const at::Tensor& codes, int bits);
at::Tensor unpackRows(const at::Tensor& packed, int64_t cols, int bits);

// A copy of a small host table on `device` (a no-op view on the CPU).
at::Tensor tableOn(const at::Tensor& cpuTable, const at::Device& device);
// Throws FormatError if an entry of `stats` (a per-block, row or group max/min of the weight) is NaN or
// infinite; the message says "weight has a non-finite value in " + describe(index of the first such entry).
void requireFinite(const at::Tensor& stats, const std::function<std::string(int64_t)>& describe);

} // namespace qpruner::quant::kernels

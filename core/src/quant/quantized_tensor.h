// A weight matrix stored in one of the quantized formats of qpruner/quant_format.h, as libtorch tensors, and the
// vectorised quantize/dequantize between it and a dense [rows, cols] weight. Works on CPU and CUDA tensors alike
// (tensor ops; CPU dequantization through cpu_dequant.h's loops) and agrees bit for bit with
// quant/reference_quant.h.
#pragma once

#include <map>
#include <string>

#include <ATen/ATen.h>

#include "qpruner/quant_format.h"

namespace qpruner::quant {

struct QuantizedTensor {
    QuantSpec spec;
    int64_t rows = 0; // out_features
    int64_t cols = 0; // in_features
    // Keyed by the suffixes of storedTensors(spec, rows, cols), with exactly its dtypes (U8 -> uint8,
    // I8 -> int8, F16 -> float16, F32 -> float32) and shapes, all on one device.
    std::map<std::string, at::Tensor> parts;

    // Sum of the parts' bytes: storedBytes(spec, rows, cols) for a valid tensor.
    int64_t storageBytes() const;
    at::Device device() const;
    // The same tensor with every part moved to `device`.
    QuantizedTensor to(const at::Device& device) const;
};

// Quantizes a [rows, cols] floating-point weight (any float dtype, computed in fp32) on the weight's device.
// Throws ConfigError for a dense spec or a weight that is not 2-D, FormatError for NaN/Inf weights.
QuantizedTensor quantize(const at::Tensor& weight, const QuantSpec& spec);

// The dense [rows, cols] weight in `dtype` (values computed in fp32, then converted once).
at::Tensor dequantize(const QuantizedTensor& q, at::ScalarType dtype = at::kFloat);
// Rows [r0, r1) only, [r1 - r0, cols]: what a layer needs to work through its weight block by block.
// On the CPU this runs cpu_dequant.h's loops; on other devices the tensor kernels (same values, bit for bit).
at::Tensor dequantizeRows(const QuantizedTensor& q, int64_t r0, int64_t r1, at::ScalarType dtype = at::kFloat);
// The same rows written into `dst` ([r1 - r0, cols], any float dtype, q's device): no allocation for a
// contiguous fp32 CPU buffer.
void dequantizeRowsInto(const QuantizedTensor& q, int64_t r0, int64_t r1, at::Tensor& dst);

// Checks a tensor read from a file against storedTensors(q.spec, q.rows, q.cols): every part present, no
// others, dtypes and shapes exact, one device. Throws FormatError naming "<module>.<suffix>" and what was
// expected.
void validateQuantizedTensor(const QuantizedTensor& q, const std::string& module);

} // namespace qpruner::quant

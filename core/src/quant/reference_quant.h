// Reference quantize/dequantize of every quantized format in plain C++ loops over std::vector: the readable
// definition of each format (formats.h) that the tensor fast path (quantized_tensor.h) must reproduce bit for
// bit. Slow by design; used by the tests and the benchmark's baseline, never by the model.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "qpruner/quant_format.h"

namespace qpruner::quant::reference {

// Nearest level of x, ties to the lower index (distances compared in double, where they are exact near ties).
uint8_t nearestNf4Code(float x);
uint8_t nearestDynamicMapCode(float x);

// NF4 over the row-major flattened [rows, cols] weight (n = rows * cols): "codes" and "absmax".
struct Nf4Blocks {
    std::vector<uint8_t> codes; // ceil(n / 2) bytes
    std::vector<float> absmax;  // ceil(n / 64)
};
Nf4Blocks quantizeNf4(const std::vector<float>& w, int64_t rows, int64_t cols);
std::vector<float> dequantizeNf4(const std::vector<uint8_t>& codes, const std::vector<float>& absmax, int64_t n);

// Double quantization of the NF4 absmax values: "absmax_q", "absmax_scale", "absmax_offset".
struct DoubleQuantAbsmax {
    std::vector<uint8_t> q;    // one dynamic-map index per absmax
    std::vector<float> scale;  // ceil(nb / 256)
    float offset = 0.0f;
};
DoubleQuantAbsmax quantizeAbsmax(const std::vector<float>& absmax);
std::vector<float> dequantizeAbsmax(const DoubleQuantAbsmax& d);

// Symmetric row-wise int8: "qweight" [rows, cols], "scale" [rows].
struct Int8Rows {
    std::vector<int8_t> q;
    std::vector<float> scale;
};
Int8Rows quantizeInt8(const std::vector<float>& w, int64_t rows, int64_t cols);
std::vector<float> dequantizeInt8(const Int8Rows& q, int64_t rows, int64_t cols);

// Asymmetric group-wise int4/int3/int2 (bits 4, 3, 2; group 64 or 128): "qweight", "scale", "zero", the fp16
// values kept as their IEEE bits.
struct IntKGroups {
    std::vector<uint8_t> packed;  // [rows, ceil(cols * bits / 8)]
    std::vector<uint16_t> scale;  // [rows, ceil(cols / group)]
    std::vector<uint16_t> zero;   // [rows, ceil(cols / group)]
};
IntKGroups quantizeIntK(const std::vector<float>& w, int64_t rows, int64_t cols, int bits, int group);
std::vector<float> dequantizeIntK(const IntKGroups& q, int64_t rows, int64_t cols, int bits, int group);

// Bit packing of the int formats alone: codes [rows, cols] (each < 2^bits) <-> [rows, ceil(cols * bits / 8)],
// LSB-first, each row padded to whole bytes with zero bits.
std::vector<uint8_t> packRows(const std::vector<uint8_t>& codes, int64_t rows, int64_t cols, int bits);
std::vector<uint8_t> unpackRows(const std::vector<uint8_t>& packed, int64_t rows, int64_t cols, int bits);

// Any quantized spec, as the raw little-endian bytes of each stored tensor keyed by its suffix in
// storedTensors(spec, rows, cols): exactly what a checkpoint holds. Dense specs throw ConfigError.
using PartBytes = std::map<std::string, std::vector<uint8_t>>;
PartBytes quantize(const std::vector<float>& w, int64_t rows, int64_t cols, const QuantSpec& spec);
// Throws FormatError naming a missing part or one of the wrong byte size.
std::vector<float> dequantize(const PartBytes& parts, int64_t rows, int64_t cols, const QuantSpec& spec);

} // namespace qpruner::quant::reference

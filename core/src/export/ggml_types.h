// ggml's tensor types as GGUF files store them (ggml/include/ggml.h `enum ggml_type`, ggml/src/ggml-quants.c):
// block layouts, and quantize/dequantize of rows, torch-free. The quantizers reproduce ggml's reference
// implementations bit for bit (quantize_row_q4_0_ref, _q4_1_ref, _q8_0_ref, _q2_K_ref, _q3_K_ref, and
// quantize_iq4_nl without an importance matrix, which is what llama-quantize does without --imatrix), so a file
// we write holds the bytes llama.cpp itself would have written from the same float weights.
//
// Block layouts (a row of `ne0` elements is ne0 / blockSize consecutive blocks; fp16 = IEEE half):
//   F32     4 B/element      F16  2 B/element      BF16  2 B/element (bfloat16, round-to-nearest-even)
//   Q8_0    32 elements, 34 B: fp16 d, int8 qs[32]                      x = d * q
//   Q4_0    32 elements, 18 B: fp16 d, uint8 qs[16]                     x = d * (q - 8); element j in the low
//           nibble of qs[j], element j + 16 in the high nibble of qs[j]
//   Q4_1    32 elements, 20 B: fp16 d, fp16 m, uint8 qs[16]             x = d * q + m (nibbles as Q4_0)
//   IQ4_NL  32 elements, 18 B: fp16 d, uint8 qs[16]                     x = d * kvalues_iq4nl[q] (nibbles as Q4_0)
//   Q2_K    256 elements, 84 B: uint8 scales[16], uint8 qs[64], fp16 d, fp16 dmin
//   Q3_K    256 elements, 110 B: uint8 hmask[32], uint8 qs[64], uint8 scales[12], fp16 d
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace qpruner::gguf {

// The ids are ggml's (they are what a GGUF tensor info stores).
enum class GgmlType : uint32_t {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q8_0 = 8,
    Q2_K = 10,
    Q3_K = 11,
    IQ4_NL = 20,
    BF16 = 30,
};

struct GgmlTypeTraits {
    const char* name;   // ggml_type_name: "f32", "f16", "q4_0", "q4_1", "q8_0", "q2_K", "q3_K", "iq4_nl", "bf16"
    int blockSize;      // elements per block (1 for F32/F16/BF16)
    int blockBytes;     // bytes per block
    bool quantized;     // false for F32/F16/BF16
};

const GgmlTypeTraits& ggmlTypeTraits(GgmlType type);
inline const char* ggmlTypeName(GgmlType type) { return ggmlTypeTraits(type).name; }
// The type with ggml id `id`, if this build knows it (others: nullopt; readers name the id in their error).
std::optional<GgmlType> ggmlTypeFromId(uint32_t id);
// The type named `name` (case-insensitive ggml_type_name, e.g. "Q4_0", "iq4_nl"), if known.
std::optional<GgmlType> ggmlTypeFromName(std::string_view name);
// Every type this build knows, in id order.
const std::vector<GgmlType>& ggmlTypes();

// Bits per element including the block scales (e.g. Q4_0: 4.5, Q8_0: 8.5, Q2_K: 2.625).
double ggmlBitsPerElement(GgmlType type);
// Whether a row of `rowLength` elements can be stored in `type` (rowLength a multiple of its block size).
bool ggmlRowFits(GgmlType type, int64_t rowLength);
// Bytes of one row of `rowLength` elements. Throws ConfigError naming the type, the length and the block size when
// the row does not fit.
int64_t ggmlRowBytes(GgmlType type, int64_t rowLength);
// Bytes of a tensor of `rows` rows of `rowLength` elements (ggmlRowBytes * rows).
int64_t ggmlTensorBytes(GgmlType type, int64_t rows, int64_t rowLength);

// Quantizes `rows` rows of `rowLength` floats (row-major, contiguous) into `out` (ggmlTensorBytes bytes), exactly
// as ggml's reference quantizer of `type`; F32/F16/BF16 convert (F16 and BF16 round to nearest even, as
// ggml_fp32_to_fp16 / ggml_fp32_to_bf16). Rows are independent, so callers may split the work by rows. Throws
// ConfigError when a row does not fit the type.
void quantizeRows(GgmlType type, const float* src, int64_t rows, int64_t rowLength, uint8_t* out);
// The inverse: ggml's dequantize_row_* (to_float), `rows` rows of `rowLength` elements into `out`.
void dequantizeRows(GgmlType type, const uint8_t* src, int64_t rows, int64_t rowLength, float* out);

// bfloat16 conversion as ggml_compute_fp32_to_bf16 / _bf16_to_fp32 (round to nearest even; a NaN stays a quiet
// NaN). Half conversions are quant/half_bits.h's (the same rounding as ggml_compute_fp32_to_fp16).
uint16_t fp32ToBf16(float x);
float bf16ToFp32(uint16_t h);

} // namespace qpruner::gguf

// Weight storage formats a precision map chooses between (torch-free, shared by the quantizer, the memory
// model, the checkpoint writer and the GUI). Each format fixes exactly which tensors a [rows, cols] weight is
// stored as; storedTensors() is the single source of truth for that layout and its byte count.
//
// Layouts (row-major weight W of shape [rows, cols] = [out_features, in_features]):
//   fp32 / bf16 / fp16  "weight"       F32/BF16/F16 [rows, cols]
//   int8                "qweight"      I8  [rows, cols]    symmetric: W[r,c] ≈ q * scale[r]
//                       "scale"        F32 [rows]          scale = absmax(row) / 127
//   nf4  (QLoRA)        "codes"        U8  [ceil(N/2)]     N = rows*cols, flattened row-major; two 4-bit code
//                                                         indices per byte, element 2i in the low nibble
//                       "absmax"       F32 [nb]            nb = ceil(N/64); W ≈ absmax[block] * NF4[code]
//   nf4-dq (double quantization): "absmax" is replaced by
//                       "absmax_q"     U8  [nb]            absmax - offset, 8-bit dynamic map, blocks of 256
//                       "absmax_scale" F32 [ceil(nb/256)]  per-256-block absmax of (absmax - offset)
//                       "absmax_offset" F32 [1]            mean of the absmax values
//   int4 / int3 / int2  "qweight"      U8  [rows, ceil(cols*bits/8)]  per row, codes bit-packed LSB-first
//   (asymmetric,                                         (code c of a row occupies bits [c*bits, (c+1)*bits))
//    group 64 or 128    "scale"        F16 [rows, G]       G = ceil(cols/group) groups along each row; the
//    along each row)    "zero"         F16 [rows, G]       last group may be shorter; W ≈ (q - zero) * scale
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace qpruner {

enum class QuantKind : uint8_t { F32, BF16, F16, Int8, NF4, Int4, Int3, Int2 };

struct QuantSpec {
    QuantKind kind = QuantKind::BF16;
    int groupSize = 0;        // NF4: 64; Int4/3/2: 64 or 128; 0 for the others
    bool doubleQuant = false; // NF4 only

    // Canonical name, the inverse of parseQuantSpec: "fp32", "bf16", "fp16", "int8", "nf4", "nf4-dq",
    // "int4", "int4-g128", "int3", "int3-g128", "int2", "int2-g128" (the int formats default to group 64).
    std::string name() const;
    // Nominal bits of one code (32, 16, 16, 8, 4, 4, 3, 2), without scales.
    int codeBits() const;
    bool isQuantized() const { return kind != QuantKind::F32 && kind != QuantKind::BF16 && kind != QuantKind::F16; }
    bool operator==(const QuantSpec&) const = default;
};

inline constexpr int kNf4BlockSize = 64;
inline constexpr int kNf4DoubleQuantBlockSize = 256;

// Parses a format name (case-insensitive; "f32"/"float32", "f16"/"float16", "bfloat16" accepted as aliases).
// Throws ConfigError naming the text and listing the valid names.
QuantSpec parseQuantSpec(std::string_view text);
// Every canonical name, in the order above.
const std::vector<std::string>& quantSpecNames();

// One tensor of a stored weight: name suffix (as in the table above), safetensors dtype, shape.
struct StoredTensor {
    std::string suffix;
    std::string dtype; // "F32", "BF16", "F16", "I8", "U8"
    std::vector<int64_t> shape;
    int64_t bytes() const;
};

// The tensors a [rows, cols] weight occupies in `spec`, exactly as the quantized layer holds them and the native
// checkpoint stores them (one tensor per entry, named "<module>.<suffix>", e.g. "model.layers.0.mlp.up_proj.codes";
// a dense weight keeps its usual "<module>.weight").
std::vector<StoredTensor> storedTensors(const QuantSpec& spec, int64_t rows, int64_t cols);
// Sum of storedTensors(...).bytes().
int64_t storedBytes(const QuantSpec& spec, int64_t rows, int64_t cols);

} // namespace qpruner

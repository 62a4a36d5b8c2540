// GGUF files (ggml/docs/gguf.md, version 3, little-endian): a header, typed key/value metadata, tensor infos and
// the aligned tensor data. Writing streams tensor data from callbacks into a temporary sibling that is renamed
// into place once complete (a 7B model is never held twice in memory, and an existing file is replaced only by a
// whole new one); reading memory-maps the file and validates every count, length, type and offset before use.
// Torch-free.
//
// Layout written (all integers little-endian):
//   magic "GGUF" | u32 version = 3 | u64 tensor_count | u64 kv_count
//   kv_count x (string key | u32 value_type | value)     string = u64 length + bytes (no terminator)
//                                                        array  = u32 element_type + u64 count + elements
//   tensor_count x (string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset)
//   zero padding to `alignment` | tensor data, each tensor at data_start + offset, offsets multiples of
//   `alignment`, each tensor (the last included) zero-padded to `alignment`, as gguf.cpp writes and reads it
// `alignment` is general.alignment when that key is present (a u32, a power of two), else 32.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "export/ggml_types.h"

namespace qpruner::io {
class MappedFile;
}

namespace qpruner::gguf {

enum class ValueType : uint32_t {
    U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, Bool = 7, String = 8, Array = 9,
    U64 = 10, I64 = 11, F64 = 12,
};
const char* valueTypeName(ValueType type); // "u8", ..., "string", "array"

// One metadata value. Arrays hold elements of one scalar or string type (nested arrays are refused by the reader
// and cannot be built).
class Value {
public:
    static Value u8(uint8_t v);
    static Value i8(int8_t v);
    static Value u16(uint16_t v);
    static Value i16(int16_t v);
    static Value u32(uint32_t v);
    static Value i32(int32_t v);
    static Value u64(uint64_t v);
    static Value i64(int64_t v);
    static Value f32(float v);
    static Value f64(double v);
    static Value boolean(bool v);
    static Value string(std::string v);
    static Value stringArray(std::vector<std::string> v);
    static Value f32Array(std::vector<float> v);
    static Value i32Array(std::vector<int32_t> v);
    static Value u32Array(std::vector<uint32_t> v);

    ValueType type() const { return type_; }
    bool isArray() const { return type_ == ValueType::Array; }
    ValueType elementType() const { return elementType_; } // arrays only
    size_t size() const;                                   // arrays: element count

    // Scalars: the value converted, throwing FormatError naming `what` (e.g. the key) when the type does not
    // convert (a string as a number, a negative as unsigned, a float as an integer).
    uint64_t asUInt(std::string_view what = "value") const;
    int64_t asInt(std::string_view what = "value") const;
    double asFloat(std::string_view what = "value") const; // any number
    bool asBool(std::string_view what = "value") const;
    const std::string& asString(std::string_view what = "value") const;
    // Arrays of the given kind (any integer element type for the integer ones), throwing like the scalars.
    std::vector<int64_t> asIntArray(std::string_view what = "value") const;
    std::vector<double> asFloatArray(std::string_view what = "value") const;
    const std::vector<std::string>& asStringArray(std::string_view what = "value") const;

    // Human-readable: numbers, "quoted strings", arrays as [a, b, ...] (long arrays shortened: "[512 x string]").
    std::string toString() const;
    bool operator==(const Value& other) const; // same type, element type and values (floats bitwise)

private:
    friend struct ValueCodec; // gguf_file.cpp: builds, encodes and decodes values of every type and array kind
    ValueType type_ = ValueType::U8;
    ValueType elementType_ = ValueType::U8;
    // Scalars: one element; arrays: the elements. Integers and bool in `ints` (bit pattern of the value), floats
    // in `floats`, strings in `strings`.
    std::vector<uint64_t> ints_;
    std::vector<double> floats_;
    std::vector<std::string> strings_;
};

using Metadata = std::vector<std::pair<std::string, Value>>; // in file order

// A tensor's description. `ne` is in ggml order: ne[0] is the row length (the contiguous dimension), so a PyTorch
// weight [out, in] is ne = {in, out}.
struct TensorInfo {
    std::string name;
    std::vector<int64_t> ne;
    GgmlType type = GgmlType::F32;
    uint64_t offset = 0; // from the start of the data section
    int64_t elements() const;
    int64_t rows() const;   // elements / ne[0]
    uint64_t bytes() const; // ggmlTensorBytes(type, rows(), ne[0])
};

class GgufWriter {
public:
    GgufWriter();

    // Sets (or replaces, keeping its position) a metadata key. general.alignment, when set, must be a u32 power of
    // two (ConfigError otherwise) and decides the alignment.
    void set(const std::string& key, Value value);
    const Metadata& metadata() const { return metadata_; }

    // Adds a tensor whose bytes `fill` writes when the file is written: it receives a zeroed buffer of exactly
    // info.bytes() bytes. Throws ConfigError for a duplicate name, an empty shape or a row that does not fit the
    // type (naming the tensor).
    using Fill = std::function<void(uint8_t* out)>;
    void addTensor(const std::string& name, GgmlType type, std::vector<int64_t> ne, Fill fill);

    uint32_t alignment() const;
    // The tensor infos with the offsets write() gives them.
    std::vector<TensorInfo> tensors() const;
    // The exact size in bytes of the file write() produces.
    uint64_t fileSize() const;

    // Writes the file (creating the parent directory if needed): a temporary sibling, fsync, rename. `fill`s run
    // in tensor order, one tensor buffer alive at a time; `progress(done, total)` (optional) after each tensor.
    // Throws FileError naming the path (nothing is left behind and an existing file is untouched then); an
    // exception from a fill propagates the same way.
    void write(const std::filesystem::path& path,
               const std::function<void(size_t done, size_t total)>& progress = {}) const;

private:
    struct Pending {
        TensorInfo info;
        Fill fill;
    };
    Metadata metadata_;
    std::vector<Pending> tensors_;
};

class GgufFile {
public:
    // Maps and parses `path`. Throws FileError when it cannot be read, FormatError naming the file and the fault:
    // not a GGUF file (magic), an unsupported version (1; 2 and 3 are read), a count or string length beyond the
    // file, an unknown value type, a nested array, an unknown ggml type id, a duplicate key or tensor name, a
    // tensor with no dimensions or a row that does not fit its type, a misaligned offset, overlapping tensors, or
    // tensor data past the end of the file ("truncated: tensor 'x' needs bytes A..B, the file has N").
    static GgufFile open(const std::filesystem::path& path);

    const std::filesystem::path& path() const;
    uint32_t version() const { return version_; }
    uint32_t alignment() const { return alignment_; }
    uint64_t dataOffset() const { return dataOffset_; } // file offset of the data section
    uint64_t fileSize() const;

    const Metadata& metadata() const { return metadata_; }
    const Value* find(std::string_view key) const;
    // Throws FormatError naming the file and the key when it is missing.
    const Value& get(std::string_view key) const;

    const std::vector<TensorInfo>& tensors() const { return tensors_; }
    const TensorInfo* findTensor(std::string_view name) const;
    // Throws FormatError naming the file and the tensor when it is missing.
    const TensorInfo& tensor(std::string_view name) const;
    // The tensor's bytes inside the mapping (valid while this object lives).
    const uint8_t* data(const TensorInfo& info) const;
    // The tensor as floats, row-major [rows, ne[0]] (dequantizeRows).
    std::vector<float> toFloat(const TensorInfo& info) const;

private:
    std::shared_ptr<io::MappedFile> file_;
    uint32_t version_ = 0;
    uint32_t alignment_ = 32;
    uint64_t dataOffset_ = 0;
    Metadata metadata_;
    std::vector<TensorInfo> tensors_;
};

} // namespace qpruner::gguf

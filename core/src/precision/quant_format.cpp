#include "qpruner/quant_format.h"

#include <algorithm>
#include <cctype>

#include "qpruner/error.h"

namespace qpruner {

namespace {

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

std::string lower(std::string_view s)
{
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return out;
}

} // namespace

std::string QuantSpec::name() const
{
    switch (kind) {
    case QuantKind::F32: return "fp32";
    case QuantKind::BF16: return "bf16";
    case QuantKind::F16: return "fp16";
    case QuantKind::Int8: return "int8";
    case QuantKind::NF4: return doubleQuant ? "nf4-dq" : "nf4";
    case QuantKind::Int4:
    case QuantKind::Int3:
    case QuantKind::Int2: {
        std::string n = "int" + std::to_string(codeBits());
        return groupSize == 128 ? n + "-g128" : n;
    }
    }
    return "?";
}

int QuantSpec::codeBits() const
{
    switch (kind) {
    case QuantKind::F32: return 32;
    case QuantKind::BF16:
    case QuantKind::F16: return 16;
    case QuantKind::Int8: return 8;
    case QuantKind::NF4:
    case QuantKind::Int4: return 4;
    case QuantKind::Int3: return 3;
    case QuantKind::Int2: return 2;
    }
    return 0;
}

const std::vector<std::string>& quantSpecNames()
{
    static const std::vector<std::string> names = {"fp32", "bf16",      "fp16", "int8",      "nf4",  "nf4-dq",
                                                   "int4", "int4-g128", "int3", "int3-g128", "int2", "int2-g128"};
    return names;
}

QuantSpec parseQuantSpec(std::string_view text)
{
    const std::string t = lower(text);
    if (t == "fp32" || t == "f32" || t == "float32")
        return {QuantKind::F32, 0, false};
    if (t == "bf16" || t == "bfloat16")
        return {QuantKind::BF16, 0, false};
    if (t == "fp16" || t == "f16" || t == "float16")
        return {QuantKind::F16, 0, false};
    if (t == "int8")
        return {QuantKind::Int8, 0, false};
    if (t == "nf4")
        return {QuantKind::NF4, kNf4BlockSize, false};
    if (t == "nf4-dq")
        return {QuantKind::NF4, kNf4BlockSize, true};
    const std::pair<const char*, QuantKind> ints[] = {
        {"int4", QuantKind::Int4}, {"int3", QuantKind::Int3}, {"int2", QuantKind::Int2}};
    for (const auto& [base, kind] : ints) {
        const std::string b = base;
        if (t == b || t == b + "-g64")
            return {kind, 64, false};
        if (t == b + "-g128")
            return {kind, 128, false};
    }
    std::string list;
    for (const auto& n : quantSpecNames())
        list += (list.empty() ? "" : ", ") + n;
    throw ConfigError("unknown format '" + std::string(text) + "' (expected one of " + list + ")");
}

int64_t StoredTensor::bytes() const
{
    int64_t n = 1;
    for (int64_t d : shape)
        n *= d;
    const int64_t elem = (dtype == "F32") ? 4 : (dtype == "BF16" || dtype == "F16") ? 2 : 1;
    return n * elem;
}

std::vector<StoredTensor> storedTensors(const QuantSpec& spec, int64_t rows, int64_t cols)
{
    if (rows <= 0 || cols <= 0)
        throw ConfigError("storedTensors: weight shape [" + std::to_string(rows) + ", " + std::to_string(cols) +
                          "] is empty");
    switch (spec.kind) {
    case QuantKind::F32: return {{"weight", "F32", {rows, cols}}};
    case QuantKind::BF16: return {{"weight", "BF16", {rows, cols}}};
    case QuantKind::F16: return {{"weight", "F16", {rows, cols}}};
    case QuantKind::Int8: return {{"qweight", "I8", {rows, cols}}, {"scale", "F32", {rows}}};
    case QuantKind::NF4: {
        const int64_t n = rows * cols;
        const int64_t nb = ceilDiv(n, kNf4BlockSize);
        std::vector<StoredTensor> out = {{"codes", "U8", {ceilDiv(n, 2)}}};
        if (!spec.doubleQuant) {
            out.push_back({"absmax", "F32", {nb}});
        } else {
            out.push_back({"absmax_q", "U8", {nb}});
            out.push_back({"absmax_scale", "F32", {ceilDiv(nb, kNf4DoubleQuantBlockSize)}});
            out.push_back({"absmax_offset", "F32", {1}});
        }
        return out;
    }
    case QuantKind::Int4:
    case QuantKind::Int3:
    case QuantKind::Int2: {
        if (spec.groupSize != 64 && spec.groupSize != 128)
            throw ConfigError("storedTensors: " + spec.name() + " needs group size 64 or 128, got " +
                              std::to_string(spec.groupSize));
        const int64_t g = ceilDiv(cols, spec.groupSize);
        return {{"qweight", "U8", {rows, ceilDiv(cols * spec.codeBits(), 8)}},
                {"scale", "F16", {rows, g}},
                {"zero", "F16", {rows, g}}};
    }
    }
    return {};
}

int64_t storedBytes(const QuantSpec& spec, int64_t rows, int64_t cols)
{
    int64_t n = 0;
    for (const auto& t : storedTensors(spec, rows, cols))
        n += t.bytes();
    return n;
}

} // namespace qpruner

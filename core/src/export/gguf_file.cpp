// The GGUF container (gguf_file.h). Writing follows ggml/src/gguf.cpp's gguf_write_to_file: the same bytes for
// the same keys and tensors, every tensor (the last one included) zero-padded to the alignment, and the metadata
// padded even when there are no tensors. Reading accepts what gguf.cpp's gguf_init_from_file accepts (versions 2
// and 3, general.alignment a u32 power of two, at most 4 dimensions, names under 64 bytes) with two differences:
// a bool byte other than 0 or 1 is refused, and tensors may lie in any order as long as they are aligned and do
// not overlap (gguf.cpp insists on its own packing). Every count, length and offset is checked against the bytes
// that are left before anything is allocated or read.
#include "export/gguf_file.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstring>
#include <limits>
#include <optional>
#include <system_error>
#include <unordered_set>

#include "io/atomic_output.h"
#include "io/mapped_file.h"
#include "qpruner/error.h"

namespace qpruner::gguf {

static_assert(std::endian::native == std::endian::little, "GGUF values are copied in the host's byte order");

namespace {

constexpr char kMagic[4] = {'G', 'G', 'U', 'F'};
constexpr uint32_t kWrittenVersion = 3;
constexpr uint32_t kDefaultAlignment = 32; // GGUF_DEFAULT_ALIGNMENT
constexpr std::string_view kAlignmentKey = "general.alignment";
constexpr uint32_t kLastValueType = 12;    // GGUF_TYPE_FLOAT64
constexpr uint64_t kMaxDims = 4;           // GGML_MAX_DIMS
constexpr size_t kMaxTensorName = 63;      // GGML_MAX_NAME - 1: gguf.cpp refuses longer names
// At most 4 bytes an element (f32) in every type, so a tensor's byte count (and its padding) cannot overflow.
constexpr int64_t kMaxElements = int64_t(1) << 60;
constexpr size_t kShownElements = 8;       // toString() lists arrays up to this length
constexpr uint64_t kMaxStringBytes = uint64_t(1) << 30; // GGUF_MAX_STRING_LENGTH
constexpr uint64_t kMaxArrayLength = uint64_t(1) << 30; // GGUF_MAX_ARRAY_ELEMENTS

// The smallest encodings, to refuse a count that cannot fit in the bytes left before reading on: a key/value
// (u64 key length, a one-byte key, u32 type, a one-byte value) and a tensor info (u64 name length, u32 n_dims,
// one i64 dimension, u32 type, u64 offset). Nothing is reserved from a count: memory grows with what is read.
constexpr uint64_t kMinKvBytes = 8 + 1 + 4 + 1;
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;

uint64_t padTo(uint64_t n, uint64_t alignment) { return (n + alignment - 1) / alignment * alignment; } // GGML_PAD

bool isSignedInt(ValueType t)
{
    return t == ValueType::I8 || t == ValueType::I16 || t == ValueType::I32 || t == ValueType::I64;
}

bool isInteger(ValueType t)
{
    return isSignedInt(t) || t == ValueType::U8 || t == ValueType::U16 || t == ValueType::U32 ||
           t == ValueType::U64;
}

bool isFloat(ValueType t) { return t == ValueType::F32 || t == ValueType::F64; }

// Bytes of one element of a fixed-size type; 0 for string and array.
uint64_t fixedSize(ValueType t)
{
    switch (t) {
    case ValueType::U8:
    case ValueType::I8:
    case ValueType::Bool:
        return 1;
    case ValueType::U16:
    case ValueType::I16:
        return 2;
    case ValueType::U32:
    case ValueType::I32:
    case ValueType::F32:
        return 4;
    case ValueType::U64:
    case ValueType::I64:
    case ValueType::F64:
        return 8;
    case ValueType::String:
    case ValueType::Array:
        break;
    }
    return 0;
}

// f32 values are kept as doubles. NaNs keep their exact bits both ways (sign, quiet bit and payload), which a
// hardware conversion does not promise for signalling NaNs; other values convert exactly.
double widen(float f)
{
    const auto bits = std::bit_cast<uint32_t>(f);
    if ((bits & 0x7fffffffu) <= 0x7f800000u)
        return f;
    return std::bit_cast<double>((uint64_t(bits >> 31) << 63) | (uint64_t(0x7ff) << 52) |
                                 (uint64_t(bits & 0x7fffffu) << 29));
}

float narrow(double d)
{
    const auto bits = std::bit_cast<uint64_t>(d);
    if ((bits & 0x7fffffffffffffffull) <= 0x7ff0000000000000ull)
        return static_cast<float>(d);
    auto payload = static_cast<uint32_t>((bits >> 29) & 0x7fffffu);
    if (payload == 0)
        payload = 0x400000u; // a double NaN with only low payload bits stays a (quiet) NaN
    return std::bit_cast<float>(uint32_t(bits >> 63) << 31 | 0x7f800000u | payload);
}

template <class T>
std::string shortestText(T v)
{
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
}

std::string integerText(ValueType t, uint64_t bits)
{
    return isSignedInt(t) ? std::to_string(static_cast<int64_t>(bits)) : std::to_string(bits);
}

std::string quoted(const std::string& s)
{
    std::string out = "\"";
    for (const char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (c == '\n') {
            out += "\\n";
        } else if (static_cast<unsigned char>(c) < 0x20) {
            const char* hex = "0123456789abcdef";
            out += "\\x";
            out += hex[(c >> 4) & 0xf];
            out += hex[c & 0xf];
        } else {
            out += c;
        }
    }
    return out + "\"";
}

// "u32 7", "string \"x\"", "an array of 3 f32": what a conversion error says it got.
std::string describe(const Value& v)
{
    if (v.isArray())
        return "an array of " + std::to_string(v.size()) + " " + valueTypeName(v.elementType());
    return std::string(valueTypeName(v.type())) + " " + v.toString();
}

[[noreturn]] void conversionError(std::string_view what, std::string_view expected, const Value& v)
{
    throw FormatError(std::string(what) + ": expected " + std::string(expected) + ", got " + describe(v));
}

// An integer element as a signed 64-bit value; nullopt for a u64 above 2^63 - 1.
std::optional<int64_t> signedValue(ValueType t, uint64_t bits)
{
    if (!isSignedInt(t) && bits > uint64_t(std::numeric_limits<int64_t>::max()))
        return std::nullopt;
    return static_cast<int64_t>(bits);
}

template <class T>
void put(std::string& out, T v)
{
    out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

void putString(std::string& out, std::string_view s)
{
    put<uint64_t>(out, s.size());
    out.append(s);
}

// Reading the mapped file front to back; every fault is a FormatError naming the file.
class Cursor {
public:
    explicit Cursor(const io::MappedFile& file) : data_(file.data()), size_(file.size()), name_(file.path().string())
    {
    }

    uint64_t pos() const { return pos_; }
    uint64_t size() const { return size_; }
    uint64_t left() const { return size_ - pos_; }

    [[noreturn]] void fail(const std::string& fault) const { throw FormatError(name_ + ": " + fault); }

    const uint8_t* bytes(uint64_t n, std::string_view what)
    {
        if (n > left())
            fail("truncated: " + std::string(what) + " needs bytes " + std::to_string(pos_) + ".." +
                 std::to_string(pos_ + n) + ", the file has " + std::to_string(size_));
        const uint8_t* p = data_ + pos_;
        pos_ += n;
        return p;
    }

    template <class T>
    T read(std::string_view what)
    {
        T v;
        std::memcpy(&v, bytes(sizeof v, what), sizeof v);
        return v;
    }

    std::string string(std::string_view what)
    {
        const auto n = read<uint64_t>(what);
        if (n > left())
            fail(std::string(what) + ": string length " + std::to_string(n) + " at byte " +
                 std::to_string(pos_ - 8) + " exceeds the " + std::to_string(left()) + " bytes left in the file");
        if (n > kMaxStringBytes)
            fail(std::string(what) + ": string length " + std::to_string(n) + " exceeds 2^30 bytes");
        return std::string(reinterpret_cast<const char*>(bytes(n, what)), n);
    }

    // Refuses `count` items of at least `minBytes` bytes each when they cannot fit in the bytes left.
    void checkCount(uint64_t count, uint64_t minBytes, std::string_view what) const
    {
        if (count > left() / minBytes)
            fail(std::string(what) + " " + std::to_string(count) + " cannot fit in the " + std::to_string(left()) +
                 " bytes left in the file");
    }

private:
    const uint8_t* data_;
    uint64_t size_;
    std::string name_;
    uint64_t pos_ = 0;
};

std::optional<std::string> alignmentFault(const Value& v)
{
    if (v.type() != ValueType::U32)
        return std::string(kAlignmentKey) + " must be a u32, not " + describe(v);
    const uint64_t a = v.asUInt();
    if (a == 0 || (a & (a - 1)) != 0)
        return std::string(kAlignmentKey) + " " + std::to_string(a) + " is not a power of two";
    return std::nullopt;
}

std::optional<std::string> dimsFault(uint64_t n)
{
    if (n == 0)
        return "no dimensions";
    if (n > kMaxDims)
        return std::to_string(n) + " dimensions (at most " + std::to_string(kMaxDims) + ")";
    return std::nullopt;
}

// What is wrong with a tensor description, for the writer's ConfigError and the reader's FormatError.
std::optional<std::string> tensorFault(const std::string& name, const std::vector<int64_t>& ne, GgmlType type)
{
    if (name.size() > kMaxTensorName)
        return "name of " + std::to_string(name.size()) + " bytes is too long (llama.cpp takes at most " +
               std::to_string(kMaxTensorName) + ")";
    if (auto fault = dimsFault(ne.size()))
        return fault;
    int64_t elements = 1;
    for (size_t i = 0; i < ne.size(); ++i) {
        if (ne[i] < 0)
            return "dimension " + std::to_string(i) + " is negative (" + std::to_string(ne[i]) + ")";
        if (ne[i] != 0 && elements > kMaxElements / ne[i])
            return "too many elements (more than 2^60)";
        elements *= ne[i];
    }
    if (!ggmlRowFits(type, ne[0]))
        return "a row of " + std::to_string(ne[0]) + " elements does not fit " + ggmlTypeName(type) +
               " (blocks of " + std::to_string(ggmlTypeTraits(type).blockSize) + ")";
    return std::nullopt;
}

// The missing ancestors of the directory a file is written into, created on construction and removed again
// (when still empty) unless keep() is called, so that a failed write leaves nothing behind.
class CreatedDirectories {
public:
    CreatedDirectories(const std::filesystem::path& dir, const std::filesystem::path& file)
    {
        std::error_code ec;
        for (auto p = dir; !p.empty() && !std::filesystem::exists(p, ec); p = p.parent_path()) {
            created_.push_back(p);
            if (p == p.parent_path())
                break;
        }
        if (!created_.empty() && !std::filesystem::create_directories(dir, ec) && ec)
            throw FileError(file.string() + ": cannot create directory " + dir.string() + ": " + ec.message());
    }
    ~CreatedDirectories()
    {
        std::error_code ec;
        if (!kept_)
            for (const auto& p : created_) // deepest first
                std::filesystem::remove(p, ec);
    }
    CreatedDirectories(const CreatedDirectories&) = delete;
    CreatedDirectories& operator=(const CreatedDirectories&) = delete;

    void keep() { kept_ = true; }

private:
    std::vector<std::filesystem::path> created_;
    bool kept_ = false;
};

void appendZeros(io::AtomicFileWriter& out, uint64_t n)
{
    static const char zeros[4096] = {};
    for (; n > 0; n -= std::min<uint64_t>(n, sizeof zeros))
        out.append(zeros, std::min<uint64_t>(n, sizeof zeros));
}

} // namespace

// Value storage, the GGUF value encoding, and their inverse (a friend of Value). Integers and bools are kept as
// the bit pattern of their 64-bit extension (an i8 -1 as 0xffff...ff); an element is written as its low bytes.
struct ValueCodec {
    static Value integer(ValueType t, uint64_t bits)
    {
        Value v;
        v.type_ = t;
        v.ints_.push_back(bits);
        return v;
    }

    static Value real(ValueType t, double x)
    {
        Value v;
        v.type_ = t;
        v.floats_.push_back(x);
        return v;
    }

    static Value array(ValueType elementType)
    {
        Value v;
        v.type_ = ValueType::Array;
        v.elementType_ = elementType;
        return v;
    }

    // Element i of an integer or bool value (a default-constructed Value reads as u8 0).
    static uint64_t bits(const Value& v, size_t i) { return i < v.ints_.size() ? v.ints_[i] : 0; }

    static double number(const Value& v, ValueType t, size_t i)
    {
        if (isFloat(t))
            return v.floats_[i];
        return isSignedInt(t) ? double(static_cast<int64_t>(bits(v, i))) : double(bits(v, i));
    }

    static std::string text(const Value& v, ValueType t, size_t i)
    {
        switch (t) {
        case ValueType::String:
            return quoted(v.strings_[i]);
        case ValueType::F32:
            return shortestText(narrow(v.floats_[i]));
        case ValueType::F64:
            return shortestText(v.floats_[i]);
        case ValueType::Bool:
            return bits(v, i) ? "true" : "false";
        default:
            return integerText(t, bits(v, i));
        }
    }

    static bool sameElement(const Value& a, const Value& b, ValueType t, size_t i)
    {
        if (t == ValueType::String)
            return a.strings_[i] == b.strings_[i];
        if (isFloat(t))
            return std::bit_cast<uint64_t>(a.floats_[i]) == std::bit_cast<uint64_t>(b.floats_[i]);
        return bits(a, i) == bits(b, i);
    }

    static void writeElement(const Value& v, ValueType t, size_t i, std::string& out)
    {
        if (t == ValueType::String) {
            putString(out, v.strings_[i]);
        } else if (t == ValueType::F32) {
            put(out, narrow(v.floats_[i]));
        } else if (t == ValueType::F64) {
            put(out, v.floats_[i]);
        } else {
            const uint64_t b = bits(v, i);
            out.append(reinterpret_cast<const char*>(&b), fixedSize(t));
        }
    }

    static void write(const Value& v, std::string& out)
    {
        put(out, static_cast<uint32_t>(v.type_));
        if (!v.isArray()) {
            writeElement(v, v.type_, 0, out);
            return;
        }
        put(out, static_cast<uint32_t>(v.elementType_));
        put<uint64_t>(out, v.size());
        for (size_t i = 0; i < v.size(); ++i)
            writeElement(v, v.elementType_, i, out);
    }

    static uint64_t readInteger(Cursor& in, ValueType t, const std::string& where)
    {
        switch (t) {
        case ValueType::U8: return in.read<uint8_t>(where);
        case ValueType::I8: return static_cast<uint64_t>(in.read<int8_t>(where));
        case ValueType::U16: return in.read<uint16_t>(where);
        case ValueType::I16: return static_cast<uint64_t>(in.read<int16_t>(where));
        case ValueType::U32: return in.read<uint32_t>(where);
        case ValueType::I32: return static_cast<uint64_t>(in.read<int32_t>(where));
        case ValueType::U64: return in.read<uint64_t>(where);
        case ValueType::I64: return static_cast<uint64_t>(in.read<int64_t>(where));
        default: break;
        }
        const auto b = in.read<uint8_t>(where); // bool
        if (b > 1)
            in.fail(where + ": bool byte " + std::to_string(b) + " (expected 0 or 1)");
        return b;
    }

    static void readElement(Cursor& in, ValueType t, Value& v, const std::string& where)
    {
        if (t == ValueType::String)
            v.strings_.push_back(in.string(where));
        else if (t == ValueType::F32)
            v.floats_.push_back(widen(in.read<float>(where)));
        else if (t == ValueType::F64)
            v.floats_.push_back(in.read<double>(where));
        else
            v.ints_.push_back(readInteger(in, t, where));
    }

    static ValueType readType(Cursor& in, const std::string& where)
    {
        const auto id = in.read<uint32_t>(where);
        if (id > kLastValueType)
            in.fail(where + ": unknown value type " + std::to_string(id));
        return static_cast<ValueType>(id);
    }

    static Value read(Cursor& in, const std::string& where)
    {
        Value v;
        v.type_ = readType(in, where);
        if (!v.isArray()) {
            readElement(in, v.type_, v, where);
            return v;
        }
        v.elementType_ = readType(in, where);
        if (v.elementType_ == ValueType::Array)
            in.fail(where + ": nested array (GGUF array elements are scalars or strings)");
        const auto n = in.read<uint64_t>(where);
        const ValueType t = v.elementType_;
        in.checkCount(n, t == ValueType::String ? 8 : fixedSize(t), where + ": array length");
        if (n > kMaxArrayLength)
            in.fail(where + ": array length " + std::to_string(n) + " exceeds 2^30 elements");
        for (uint64_t i = 0; i < n; ++i)
            readElement(in, t, v, where);
        return v;
    }
};

const char* valueTypeName(ValueType type)
{
    switch (type) {
    case ValueType::U8: return "u8";
    case ValueType::I8: return "i8";
    case ValueType::U16: return "u16";
    case ValueType::I16: return "i16";
    case ValueType::U32: return "u32";
    case ValueType::I32: return "i32";
    case ValueType::F32: return "f32";
    case ValueType::Bool: return "bool";
    case ValueType::String: return "string";
    case ValueType::Array: return "array";
    case ValueType::U64: return "u64";
    case ValueType::I64: return "i64";
    case ValueType::F64: return "f64";
    }
    return "unknown";
}

// --- Value ---

Value Value::u8(uint8_t v) { return ValueCodec::integer(ValueType::U8, v); }
Value Value::i8(int8_t v) { return ValueCodec::integer(ValueType::I8, static_cast<uint64_t>(v)); }
Value Value::u16(uint16_t v) { return ValueCodec::integer(ValueType::U16, v); }
Value Value::i16(int16_t v) { return ValueCodec::integer(ValueType::I16, static_cast<uint64_t>(v)); }
Value Value::u32(uint32_t v) { return ValueCodec::integer(ValueType::U32, v); }
Value Value::i32(int32_t v) { return ValueCodec::integer(ValueType::I32, static_cast<uint64_t>(v)); }
Value Value::u64(uint64_t v) { return ValueCodec::integer(ValueType::U64, v); }
Value Value::i64(int64_t v) { return ValueCodec::integer(ValueType::I64, static_cast<uint64_t>(v)); }
Value Value::f32(float v) { return ValueCodec::real(ValueType::F32, widen(v)); }
Value Value::f64(double v) { return ValueCodec::real(ValueType::F64, v); }
Value Value::boolean(bool v) { return ValueCodec::integer(ValueType::Bool, v ? 1 : 0); }

Value Value::string(std::string v)
{
    Value r;
    r.type_ = ValueType::String;
    r.strings_.push_back(std::move(v));
    return r;
}

Value Value::stringArray(std::vector<std::string> v)
{
    Value r = ValueCodec::array(ValueType::String);
    r.strings_ = std::move(v);
    return r;
}

Value Value::f32Array(std::vector<float> v)
{
    Value r = ValueCodec::array(ValueType::F32);
    r.floats_.reserve(v.size());
    for (const float x : v)
        r.floats_.push_back(widen(x));
    return r;
}

Value Value::i32Array(std::vector<int32_t> v)
{
    Value r = ValueCodec::array(ValueType::I32);
    r.ints_.reserve(v.size());
    for (const int32_t x : v)
        r.ints_.push_back(static_cast<uint64_t>(x));
    return r;
}

Value Value::u32Array(std::vector<uint32_t> v)
{
    Value r = ValueCodec::array(ValueType::U32);
    r.ints_.assign(v.begin(), v.end());
    return r;
}

size_t Value::size() const
{
    if (!isArray())
        return 1;
    if (elementType_ == ValueType::String)
        return strings_.size();
    return isFloat(elementType_) ? floats_.size() : ints_.size();
}

uint64_t Value::asUInt(std::string_view what) const
{
    if (!isInteger(type_))
        conversionError(what, "an unsigned integer", *this);
    const uint64_t b = ValueCodec::bits(*this, 0);
    if (isSignedInt(type_) && static_cast<int64_t>(b) < 0)
        conversionError(what, "an unsigned integer", *this);
    return b;
}

int64_t Value::asInt(std::string_view what) const
{
    if (!isInteger(type_))
        conversionError(what, "an integer", *this);
    const auto v = signedValue(type_, ValueCodec::bits(*this, 0));
    if (!v)
        conversionError(what, "a signed 64-bit integer", *this);
    return *v;
}

double Value::asFloat(std::string_view what) const
{
    if (!isInteger(type_) && !isFloat(type_))
        conversionError(what, "a number", *this);
    return ValueCodec::number(*this, type_, 0);
}

bool Value::asBool(std::string_view what) const
{
    if (type_ != ValueType::Bool)
        conversionError(what, "a bool", *this);
    return ValueCodec::bits(*this, 0) != 0;
}

const std::string& Value::asString(std::string_view what) const
{
    if (type_ != ValueType::String)
        conversionError(what, "a string", *this);
    return strings_.front();
}

std::vector<int64_t> Value::asIntArray(std::string_view what) const
{
    if (!isArray() || !isInteger(elementType_))
        conversionError(what, "an array of integers", *this);
    std::vector<int64_t> out;
    out.reserve(ints_.size());
    for (size_t i = 0; i < ints_.size(); ++i) {
        const auto v = signedValue(elementType_, ints_[i]);
        if (!v)
            throw FormatError(std::string(what) + "[" + std::to_string(i) + "]: expected a signed 64-bit integer, got " +
                              valueTypeName(elementType_) + " " + integerText(elementType_, ints_[i]));
        out.push_back(*v);
    }
    return out;
}

std::vector<double> Value::asFloatArray(std::string_view what) const
{
    if (!isArray() || !(isInteger(elementType_) || isFloat(elementType_)))
        conversionError(what, "an array of numbers", *this);
    std::vector<double> out(size());
    for (size_t i = 0; i < out.size(); ++i)
        out[i] = ValueCodec::number(*this, elementType_, i);
    return out;
}

const std::vector<std::string>& Value::asStringArray(std::string_view what) const
{
    if (!isArray() || elementType_ != ValueType::String)
        conversionError(what, "an array of strings", *this);
    return strings_;
}

std::string Value::toString() const
{
    if (!isArray())
        return ValueCodec::text(*this, type_, 0);
    if (size() > kShownElements)
        return "[" + std::to_string(size()) + " x " + valueTypeName(elementType_) + "]";
    std::string out = "[";
    for (size_t i = 0; i < size(); ++i)
        out += (i ? ", " : "") + ValueCodec::text(*this, elementType_, i);
    return out + "]";
}

bool Value::operator==(const Value& other) const
{
    if (type_ != other.type_ || elementType_ != other.elementType_ || size() != other.size())
        return false;
    const ValueType t = isArray() ? elementType_ : type_;
    for (size_t i = 0; i < size(); ++i)
        if (!ValueCodec::sameElement(*this, other, t, i))
            return false;
    return true;
}

// --- TensorInfo ---

int64_t TensorInfo::elements() const
{
    int64_t n = 1;
    for (const int64_t d : ne)
        n *= d;
    return n;
}

int64_t TensorInfo::rows() const
{
    int64_t n = 1;
    for (size_t i = 1; i < ne.size(); ++i)
        n *= ne[i];
    return n;
}

uint64_t TensorInfo::bytes() const
{
    return static_cast<uint64_t>(ggmlTensorBytes(type, rows(), ne.empty() ? 1 : ne[0]));
}

// --- GgufWriter ---

namespace {

std::string encodeHeader(const Metadata& metadata, const std::vector<TensorInfo>& tensors)
{
    std::string out(kMagic, sizeof kMagic);
    put(out, kWrittenVersion);
    put<uint64_t>(out, tensors.size());
    put<uint64_t>(out, metadata.size());
    for (const auto& [key, value] : metadata) {
        putString(out, key);
        ValueCodec::write(value, out);
    }
    for (const TensorInfo& t : tensors) {
        putString(out, t.name);
        put(out, static_cast<uint32_t>(t.ne.size()));
        for (const int64_t d : t.ne)
            put(out, d);
        put(out, static_cast<uint32_t>(t.type));
        put(out, t.offset);
    }
    return out;
}

} // namespace

GgufWriter::GgufWriter() = default;

void GgufWriter::set(const std::string& key, Value value)
{
    if (key.empty())
        throw ConfigError("GGUF metadata key is empty");
    if (key == kAlignmentKey)
        if (const auto fault = alignmentFault(value))
            throw ConfigError("GGUF metadata: " + *fault);
    const auto it = std::find_if(metadata_.begin(), metadata_.end(), [&](const auto& kv) { return kv.first == key; });
    if (it != metadata_.end())
        it->second = std::move(value);
    else
        metadata_.emplace_back(key, std::move(value));
}

void GgufWriter::addTensor(const std::string& name, GgmlType type, std::vector<int64_t> ne, Fill fill)
{
    const std::string where = "GGUF tensor '" + name + "'";
    if (std::any_of(tensors_.begin(), tensors_.end(), [&](const Pending& p) { return p.info.name == name; }))
        throw ConfigError(where + " is added twice");
    if (const auto fault = tensorFault(name, ne, type))
        throw ConfigError(where + ": " + *fault);
    tensors_.push_back({TensorInfo{name, std::move(ne), type, 0}, std::move(fill)});
}

uint32_t GgufWriter::alignment() const
{
    const auto it = std::find_if(metadata_.begin(), metadata_.end(),
                                 [](const auto& kv) { return kv.first == kAlignmentKey; });
    return it == metadata_.end() ? kDefaultAlignment : static_cast<uint32_t>(it->second.asUInt());
}

std::vector<TensorInfo> GgufWriter::tensors() const
{
    const uint64_t a = alignment();
    std::vector<TensorInfo> out;
    out.reserve(tensors_.size());
    uint64_t offset = 0;
    for (const Pending& p : tensors_) {
        out.push_back(p.info);
        out.back().offset = offset;
        offset += padTo(p.info.bytes(), a);
    }
    return out;
}

uint64_t GgufWriter::fileSize() const
{
    const uint64_t a = alignment();
    const std::vector<TensorInfo> infos = tensors();
    const uint64_t dataStart = padTo(encodeHeader(metadata_, infos).size(), a);
    return infos.empty() ? dataStart : dataStart + infos.back().offset + padTo(infos.back().bytes(), a);
}

void GgufWriter::write(const std::filesystem::path& path,
                       const std::function<void(size_t done, size_t total)>& progress) const
{
    const uint64_t a = alignment();
    const std::vector<TensorInfo> infos = tensors();
    const std::string header = encodeHeader(metadata_, infos);

    CreatedDirectories directories(path.parent_path(), path);
    io::AtomicFileWriter out(path);
    out.append(header.data(), header.size());
    appendZeros(out, padTo(header.size(), a) - header.size());
    std::vector<uint8_t> buffer;
    for (size_t i = 0; i < tensors_.size(); ++i) {
        const uint64_t bytes = infos[i].bytes();
        buffer.assign(bytes, 0);
        tensors_[i].fill(buffer.data());
        out.append(buffer.data(), buffer.size());
        appendZeros(out, padTo(bytes, a) - bytes);
        if (progress)
            progress(i + 1, tensors_.size());
    }
    out.commit();
    directories.keep();
}

// --- GgufFile ---

GgufFile GgufFile::open(const std::filesystem::path& path)
{
    GgufFile f;
    f.file_ = io::MappedFile::open(path);
    Cursor in(*f.file_);

    const uint8_t* magic = in.bytes(sizeof kMagic, "the magic");
    if (std::memcmp(magic, kMagic, sizeof kMagic) != 0) {
        std::string shown;
        for (size_t i = 0; i < sizeof kMagic; ++i)
            shown += (magic[i] >= 0x20 && magic[i] < 0x7f) ? char(magic[i]) : '?';
        in.fail("not a GGUF file (magic '" + shown + "', expected 'GGUF')");
    }
    f.version_ = in.read<uint32_t>("the version");
    if (f.version_ != 2 && f.version_ != 3)
        in.fail("unsupported GGUF version " + std::to_string(f.version_) +
                ((f.version_ & 0xffffu) == 0 ? " (a big-endian file?)" : "") + "; versions 2 and 3 are read");
    const auto tensorCount = in.read<uint64_t>("the tensor count");
    const auto kvCount = in.read<uint64_t>("the key/value count");

    in.checkCount(kvCount, kMinKvBytes, "key/value count");
    std::unordered_set<std::string> keys;
    for (uint64_t i = 0; i < kvCount; ++i) {
        std::string key = in.string("key #" + std::to_string(i));
        if (key.empty())
            in.fail("key #" + std::to_string(i) + " is empty");
        const std::string where = "key '" + key + "'";
        if (!keys.insert(key).second)
            in.fail("duplicate " + where);
        Value value = ValueCodec::read(in, where);
        f.metadata_.emplace_back(std::move(key), std::move(value));
    }
    if (const Value* a = f.find(kAlignmentKey)) {
        if (const auto fault = alignmentFault(*a))
            in.fail(*fault);
        f.alignment_ = static_cast<uint32_t>(a->asUInt());
    }

    in.checkCount(tensorCount, kMinTensorInfoBytes, "tensor count");
    std::unordered_set<std::string> names;
    for (uint64_t i = 0; i < tensorCount; ++i) {
        TensorInfo t;
        t.name = in.string("tensor #" + std::to_string(i));
        const std::string where = "tensor '" + t.name + "'";
        if (!names.insert(t.name).second)
            in.fail("duplicate " + where);
        const auto dims = in.read<uint32_t>(where);
        if (const auto fault = dimsFault(dims))
            in.fail(where + ": " + *fault);
        t.ne.resize(dims);
        for (int64_t& d : t.ne)
            d = in.read<int64_t>(where);
        const auto typeId = in.read<uint32_t>(where);
        const auto type = ggmlTypeFromId(typeId);
        if (!type)
            in.fail(where + ": unknown ggml type id " + std::to_string(typeId));
        t.type = *type;
        if (const auto fault = tensorFault(t.name, t.ne, t.type))
            in.fail(where + ": " + *fault);
        t.offset = in.read<uint64_t>(where);
        f.tensors_.push_back(std::move(t));
    }

    // gguf.cpp pads to the data section only when there are tensors.
    f.dataOffset_ = f.tensors_.empty() ? in.pos() : padTo(in.pos(), f.alignment_);
    for (const TensorInfo& t : f.tensors_) {
        const std::string where = "tensor '" + t.name + "'";
        if (t.offset % f.alignment_ != 0)
            in.fail(where + ": offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
                    std::to_string(f.alignment_));
        // Its data and the padding after it, as gguf.cpp reads the data section.
        const uint64_t padded = padTo(t.bytes(), f.alignment_);
        if (t.offset > in.size())
            in.fail(where + ": offset " + std::to_string(t.offset) + " lies past the end of the file (" +
                    std::to_string(in.size()) + " bytes)");
        const uint64_t begin = f.dataOffset_ + t.offset;
        if (padded > in.size() || begin > in.size() - padded)
            in.fail("truncated: " + where + " needs bytes " + std::to_string(begin) + ".." +
                    std::to_string(begin + padded) + ", the file has " + std::to_string(in.size()));
    }
    std::vector<const TensorInfo*> byOffset;
    for (const TensorInfo& t : f.tensors_)
        byOffset.push_back(&t);
    std::sort(byOffset.begin(), byOffset.end(), [](const TensorInfo* x, const TensorInfo* y) {
        return x->offset != y->offset ? x->offset < y->offset : x->bytes() < y->bytes();
    });
    for (size_t i = 1; i < byOffset.size(); ++i) {
        const TensorInfo& prev = *byOffset[i - 1];
        const TensorInfo& next = *byOffset[i];
        if (next.offset < prev.offset + prev.bytes())
            in.fail("tensors '" + prev.name + "' (data bytes " + std::to_string(prev.offset) + ".." +
                    std::to_string(prev.offset + prev.bytes()) + ") and '" + next.name + "' (from data byte " +
                    std::to_string(next.offset) + ") overlap");
    }
    return f;
}

const std::filesystem::path& GgufFile::path() const { return file_->path(); }

uint64_t GgufFile::fileSize() const { return file_->size(); }

const Value* GgufFile::find(std::string_view key) const
{
    const auto it = std::find_if(metadata_.begin(), metadata_.end(), [&](const auto& kv) { return kv.first == key; });
    return it == metadata_.end() ? nullptr : &it->second;
}

const Value& GgufFile::get(std::string_view key) const
{
    if (const Value* v = find(key))
        return *v;
    throw FormatError(path().string() + ": metadata key '" + std::string(key) + "' is missing");
}

const TensorInfo* GgufFile::findTensor(std::string_view name) const
{
    const auto it = std::find_if(tensors_.begin(), tensors_.end(), [&](const TensorInfo& t) { return t.name == name; });
    return it == tensors_.end() ? nullptr : &*it;
}

const TensorInfo& GgufFile::tensor(std::string_view name) const
{
    if (const TensorInfo* t = findTensor(name))
        return *t;
    throw FormatError(path().string() + ": tensor '" + std::string(name) + "' is missing");
}

const uint8_t* GgufFile::data(const TensorInfo& info) const { return file_->data() + dataOffset_ + info.offset; }

std::vector<float> GgufFile::toFloat(const TensorInfo& info) const
{
    std::vector<float> out(static_cast<size_t>(info.elements()));
    if (!out.empty())
        dequantizeRows(info.type, data(info), info.rows(), info.ne[0], out.data());
    return out;
}

} // namespace qpruner::gguf

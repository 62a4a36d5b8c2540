// Tests of the GGUF container: the exact bytes of a tiny file (two keys, one 2x2 f32 tensor) against bytes written
// out by hand; the encoding of every value type compared byte for byte, read back and compared bitwise (NaN
// payloads, u64 max, i64 min, empty and non-ASCII strings, empty arrays); the array kinds only a file can hold,
// read and written back to the same bytes; tensors of nine ggml types with general.alignment = 64 (offsets, zero
// padding, data bytes, fileSize() against the file on disk, dequantized values); every prefix of a small file
// refused; each corruption with its named error; writer failures leaving no file, no temporary file and an
// existing file untouched; and Value's conversions and their errors.
#include "export/gguf_file.h"
#include "qpruner/error.h"

#include <QTemporaryDir>
#include <QtTest/QtTest>

#include "test_data.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <unistd.h>

using qpruner::gguf::GgmlType;
using qpruner::gguf::GgufFile;
using qpruner::gguf::GgufWriter;
using qpruner::gguf::TensorInfo;
using qpruner::gguf::Value;
using qpruner::gguf::ValueType;
namespace fs = std::filesystem;

namespace {

using Bytes = std::vector<uint8_t>;

// A GGUF file (or a piece of one) written by hand, little-endian.
struct Builder {
    Bytes b;

    Builder& u8(uint8_t v)
    {
        b.push_back(v);
        return *this;
    }
    Builder& u32(uint32_t v)
    {
        for (int i = 0; i < 4; ++i)
            b.push_back(uint8_t(v >> (8 * i)));
        return *this;
    }
    Builder& u64(uint64_t v)
    {
        for (int i = 0; i < 8; ++i)
            b.push_back(uint8_t(v >> (8 * i)));
        return *this;
    }
    Builder& raw(std::string_view s)
    {
        b.insert(b.end(), s.begin(), s.end());
        return *this;
    }
    Builder& bytes(const Bytes& more)
    {
        b.insert(b.end(), more.begin(), more.end());
        return *this;
    }
    Builder& str(std::string_view s) { return u64(s.size()).raw(s); }
    Builder& header(uint32_t version, uint64_t tensors, uint64_t kvs)
    {
        return raw("GGUF").u32(version).u64(tensors).u64(kvs);
    }
    Builder& tensor(std::string_view name, const std::vector<int64_t>& ne, uint32_t type, uint64_t offset)
    {
        str(name).u32(uint32_t(ne.size()));
        for (const int64_t d : ne)
            u64(uint64_t(d));
        return u32(type).u64(offset);
    }
    Builder& zeros(size_t n)
    {
        b.insert(b.end(), n, 0);
        return *this;
    }
    Builder& pad(size_t alignment) { return zeros((alignment - b.size() % alignment) % alignment); }
};

void writeBytes(const fs::path& path, const Bytes& bytes)
{
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

Bytes readBytes(const fs::path& path)
{
    std::ifstream in(path, std::ios::binary);
    return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

QByteArray qbytes(const Bytes& b) { return QByteArray(reinterpret_cast<const char*>(b.data()), qsizetype(b.size())); }

// Sorted names in a directory (temporary files included: they start with a dot).
QStringList entries(const fs::path& dir)
{
    QStringList names;
    for (const auto& e : fs::directory_iterator(dir))
        names << QString::fromStdString(e.path().filename().string());
    names.sort();
    return names;
}

// What open() throws for `path`: the message of a FormatError or FileError, else "NO THROW" / "WRONG TYPE: ...".
QString openError(const fs::path& path)
{
    try {
        (void)GgufFile::open(path);
    } catch (const qpruner::FormatError& e) {
        return QString::fromStdString(e.what());
    } catch (const qpruner::FileError& e) {
        return QString::fromStdString(e.what());
    } catch (const std::exception& e) {
        return QStringLiteral("WRONG TYPE: ") + e.what();
    }
    return QStringLiteral("NO THROW");
}

float floatBits(uint32_t bits) { return std::bit_cast<float>(bits); }

// A fill writing `bytes` deterministic bytes that depend on `seed`.
GgufWriter::Fill patternFill(int seed, size_t bytes)
{
    return [seed, bytes](uint8_t* out) {
        for (size_t i = 0; i < bytes; ++i)
            out[i] = uint8_t(seed * 31 + int(i) * 7 + 1);
    };
}

Bytes pattern(int seed, size_t bytes)
{
    Bytes b(bytes);
    patternFill(seed, bytes)(b.data());
    return b;
}

template <class T>
GgufWriter::Fill copyFill(std::vector<T> values)
{
    return [values](uint8_t* out) { std::memcpy(out, values.data(), values.size() * sizeof(T)); };
}

} // namespace

class TestGguf : public QObject {
    Q_OBJECT

private:
    QTemporaryDir tmp_;
    fs::path dir() const { return tmp_.path().toStdString(); }

    // Writes `bytes` (extended with a hole to `size` bytes when given) and checks that open() throws FormatError
    // naming the file and every needle.
    void expectFormatError(const char* name, const Bytes& bytes, std::initializer_list<std::string> needles,
                           uint64_t size = 0)
    {
        const fs::path path = dir() / (std::string(name) + ".gguf");
        writeBytes(path, bytes);
        if (size > 0)
            fs::resize_file(path, size);
        std::vector<std::string> all(needles);
        all.push_back(path.string() + ": ");
        std::string why;
        bool ok = false;
        try {
            (void)GgufFile::open(path);
            why = "nothing was thrown";
        } catch (const qpruner::FormatError& e) {
            ok = true;
            for (const std::string& needle : all)
                if (std::string(e.what()).find(needle) == std::string::npos) {
                    ok = false;
                    why = "message lacks '" + needle + "': " + e.what();
                }
        } catch (const std::exception& e) {
            why = std::string("wrong exception: ") + e.what();
        }
        QVERIFY2(ok, (std::string(name) + ": " + why).c_str());
        fs::remove(path);
    }

private Q_SLOTS:
    void initTestCase() { QVERIFY(tmp_.isValid()); }

    void exactBytes()
    {
        GgufWriter w;
        w.set("a.n", Value::u32(7));
        w.set("name", Value::string("tiny"));
        w.addTensor("w", GgmlType::F32, {2, 2}, copyFill(std::vector<float>{1.0f, 2.0f, 3.0f, 4.0f}));

        const Bytes expected = {
            'G', 'G', 'U', 'F', 3, 0, 0, 0,                          // magic, version 3
            1, 0, 0, 0, 0, 0, 0, 0,                                  // 1 tensor
            2, 0, 0, 0, 0, 0, 0, 0,                                  // 2 keys
            3, 0, 0, 0, 0, 0, 0, 0, 'a', '.', 'n',                   // key "a.n"
            4, 0, 0, 0, 7, 0, 0, 0,                                  // u32 7
            4, 0, 0, 0, 0, 0, 0, 0, 'n', 'a', 'm', 'e',              // key "name"
            8, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 't', 'i', 'n', 'y',  // string "tiny"
            1, 0, 0, 0, 0, 0, 0, 0, 'w',                             // tensor "w"
            2, 0, 0, 0,                                              // 2 dimensions
            2, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0,          // ne = {2, 2}
            0, 0, 0, 0,                                              // f32
            0, 0, 0, 0, 0, 0, 0, 0,                                  // offset 0
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,          // 112 -> 128 (alignment 32)
            0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 0, 0, 0x40, 0x40, 0, 0, 0x80, 0x40, // 1, 2, 3, 4
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,          // 144 -> 160, as gguf.cpp pads
        };
        QCOMPARE(qsizetype(expected.size()), qsizetype(160));
        QCOMPARE(w.alignment(), 32u);
        QCOMPARE(w.fileSize(), uint64_t(160));
        QCOMPARE(w.tensors().size(), size_t(1));
        QCOMPARE(w.tensors()[0].offset, uint64_t(0));
        QCOMPARE(w.tensors()[0].bytes(), uint64_t(16));

        const fs::path path = dir() / "tiny.gguf";
        w.write(path);
        QCOMPARE(qbytes(readBytes(path)), qbytes(expected));

        // The hand-written bytes read back.
        const fs::path byHand = dir() / "tiny-by-hand.gguf";
        writeBytes(byHand, expected);
        const GgufFile f = GgufFile::open(byHand);
        QCOMPARE(f.version(), 3u);
        QCOMPARE(f.alignment(), 32u);
        QCOMPARE(f.dataOffset(), uint64_t(128));
        QCOMPARE(f.fileSize(), uint64_t(160));
        QCOMPARE(f.path(), byHand);
        QCOMPARE(f.metadata().size(), size_t(2));
        QCOMPARE(f.metadata()[0].first, std::string("a.n"));
        QVERIFY(f.metadata()[0].second == Value::u32(7));
        QCOMPARE(f.get("name").asString(), std::string("tiny"));
        const TensorInfo& t = f.tensor("w");
        QCOMPARE(t.ne, (std::vector<int64_t>{2, 2}));
        QCOMPARE(t.type, GgmlType::F32);
        QCOMPARE(t.offset, uint64_t(0));
        QCOMPARE(t.elements(), int64_t(4));
        QCOMPARE(t.rows(), int64_t(2));
        QCOMPARE(std::memcmp(f.data(t), expected.data() + 128, 16), 0);
        QCOMPARE(f.toFloat(t), (std::vector<float>{1.0f, 2.0f, 3.0f, 4.0f}));
    }

    // Each value type's encoding, byte for byte, and its value read back bitwise.
    void valueEncodings()
    {
        struct Case {
            const char* name;
            Value value;
            Bytes encoded; // type id and payload
        };
        const std::string utf8 = "\xc3\xa9\xf0\x9f\xa6\x99"; // "é🦙"
        const std::vector<Case> cases = {
            {"u8", Value::u8(255), Builder().u32(0).u8(0xff).b},
            {"i8", Value::i8(-2), Builder().u32(1).u8(0xfe).b},
            {"u16", Value::u16(0xbeef), Builder().u32(2).u8(0xef).u8(0xbe).b},
            {"i16", Value::i16(-32768), Builder().u32(3).u8(0x00).u8(0x80).b},
            {"u32", Value::u32(0xdeadbeef), Builder().u32(4).u32(0xdeadbeef).b},
            {"i32", Value::i32(-1), Builder().u32(5).u32(0xffffffff).b},
            {"f32 signalling NaN", Value::f32(floatBits(0x7f800001u)), Builder().u32(6).u32(0x7f800001u).b},
            {"f32 negative NaN", Value::f32(floatBits(0xffc12345u)), Builder().u32(6).u32(0xffc12345u).b},
            {"f32 0.1", Value::f32(0.1f), Builder().u32(6).u32(0x3dcccccdu).b},
            {"bool true", Value::boolean(true), Builder().u32(7).u8(1).b},
            {"bool false", Value::boolean(false), Builder().u32(7).u8(0).b},
            {"empty string", Value::string(""), Builder().u32(8).str("").b},
            {"utf-8 string", Value::string(utf8), Builder().u32(8).u64(6).raw(utf8).b},
            {"u64 max", Value::u64(std::numeric_limits<uint64_t>::max()), Builder().u32(10).u64(~0ull).b},
            {"i64 min", Value::i64(std::numeric_limits<int64_t>::min()), Builder().u32(11).u64(1ull << 63).b},
            {"i64 -1", Value::i64(-1), Builder().u32(11).u64(~0ull).b},
            {"f64 -0", Value::f64(-0.0), Builder().u32(12).u64(1ull << 63).b},
            {"f64 0.1", Value::f64(0.1), Builder().u32(12).u64(0x3fb999999999999aull).b},
            {"string array", Value::stringArray({"", "ab", utf8}),
             Builder().u32(9).u32(8).u64(3).str("").str("ab").str(utf8).b},
            {"empty string array", Value::stringArray({}), Builder().u32(9).u32(8).u64(0).b},
            {"f32 array", Value::f32Array({1.5f, -0.0f, floatBits(0x7fc00001u)}),
             Builder().u32(9).u32(6).u64(3).u32(0x3fc00000u).u32(0x80000000u).u32(0x7fc00001u).b},
            {"i32 array", Value::i32Array({-2, 7, std::numeric_limits<int32_t>::min()}),
             Builder().u32(9).u32(5).u64(3).u32(0xfffffffeu).u32(7).u32(0x80000000u).b},
            {"u32 array", Value::u32Array({4000000000u}), Builder().u32(9).u32(4).u64(1).u32(4000000000u).b},
            {"empty u32 array", Value::u32Array({}), Builder().u32(9).u32(4).u64(0).b},
        };
        for (const Case& c : cases) {
            GgufWriter w;
            w.set("k", c.value);
            const fs::path path = dir() / "value.gguf";
            w.write(path);
            const Bytes expected = Builder().header(3, 0, 1).str("k").bytes(c.encoded).pad(32).b;
            QVERIFY2(readBytes(path) == expected, c.name);
            QCOMPARE(w.fileSize(), uint64_t(expected.size()));
            const GgufFile f = GgufFile::open(path);
            QCOMPARE(f.metadata().size(), size_t(1));
            QVERIFY2(f.get("k") == c.value, c.name);
            QCOMPARE(f.get("k").type(), c.value.type());
            QCOMPARE(f.get("k").toString(), c.value.toString());
        }
        // Bitwise: a NaN read back keeps its payload, -0 is not +0.
        GgufWriter w;
        w.set("nan", Value::f32(floatBits(0x7f800001u)));
        w.set("u64", Value::u64(std::numeric_limits<uint64_t>::max()));
        w.set("i64", Value::i64(-5));
        w.write(dir() / "bits.gguf");
        const GgufFile f = GgufFile::open(dir() / "bits.gguf");
        QVERIFY(f.get("nan") == Value::f32(floatBits(0x7f800001u)));
        QVERIFY(!(f.get("nan") == Value::f32(floatBits(0x7fc00000u))));
        QVERIFY(std::isnan(f.get("nan").asFloat()));
        QCOMPARE(f.get("u64").asUInt(), std::numeric_limits<uint64_t>::max());
        QCOMPARE(f.get("i64").asInt(), int64_t(-5));
    }

    // The array kinds Value has no constructor for (u8, i8, u16, i16, bool, u64, i64, f64) come from a file; read
    // and written back they give the same bytes. Metadata keeps its order, set() replaces in place.
    void arrayKindsAndOrder()
    {
        const Bytes file = Builder()
                               .header(3, 0, 9)
                               .str("u8s").u32(9).u32(0).u64(2).u8(0).u8(255)
                               .str("i8s").u32(9).u32(1).u64(2).u8(0x80).u8(0x7f)
                               .str("u16s").u32(9).u32(2).u64(1).u8(0xff).u8(0xff)
                               .str("i16s").u32(9).u32(3).u64(1).u8(0xfe).u8(0xff)
                               .str("bools").u32(9).u32(7).u64(3).u8(1).u8(0).u8(1)
                               .str("u64s").u32(9).u32(10).u64(2).u64(1).u64(~0ull)
                               .str("i64s").u32(9).u32(11).u64(2).u64(1ull << 63).u64(42)
                               .str("f64s").u32(9).u32(12).u64(2).u64(0x3ff8000000000000ull).u64(0x7ff0000000000001ull)
                               .str("empty").u32(9).u32(2).u64(0)
                               .pad(32)
                               .b;
        const fs::path path = dir() / "arrays.gguf";
        writeBytes(path, file);
        const GgufFile f = GgufFile::open(path);
        const QStringList order = {"u8s", "i8s", "u16s", "i16s", "bools", "u64s", "i64s", "f64s", "empty"};
        QCOMPARE(int(f.metadata().size()), int(order.size()));
        for (int i = 0; i < order.size(); ++i)
            QCOMPARE(QString::fromStdString(f.metadata()[size_t(i)].first), order[i]);
        QCOMPARE(f.get("u8s").elementType(), ValueType::U8);
        QCOMPARE(f.get("u8s").asIntArray(), (std::vector<int64_t>{0, 255}));
        QCOMPARE(f.get("i8s").asIntArray(), (std::vector<int64_t>{-128, 127}));
        QCOMPARE(f.get("u16s").asIntArray(), (std::vector<int64_t>{65535}));
        QCOMPARE(f.get("i16s").asIntArray(), (std::vector<int64_t>{-2}));
        QCOMPARE(f.get("bools").elementType(), ValueType::Bool);
        QCOMPARE(f.get("bools").toString(), std::string("[true, false, true]"));
        QCOMPARE(f.get("i64s").asIntArray(), (std::vector<int64_t>{std::numeric_limits<int64_t>::min(), 42}));
        QCOMPARE(f.get("i64s").asFloatArray(), (std::vector<double>{-9223372036854775808.0, 42.0}));
        QCOMPARE(f.get("f64s").asFloatArray()[0], 1.5);
        QCOMPARE(std::bit_cast<uint64_t>(f.get("f64s").asFloatArray()[1]), 0x7ff0000000000001ull);
        QCOMPARE(f.get("empty").size(), size_t(0));
        QCOMPARE(f.get("empty").toString(), std::string("[]"));
        VERIFY_THROWS(qpruner::FormatError, f.get("u64s").asIntArray("u64s"), "u64s[1]",
                      "expected a signed 64-bit integer, got u64 18446744073709551615");
        VERIFY_THROWS(qpruner::FormatError, f.get("bools").asIntArray("bools"), "bools",
                      "expected an array of integers, got an array of 3 bool");

        // Written back: the same bytes.
        GgufWriter w;
        for (const auto& [key, value] : f.metadata())
            w.set(key, value);
        w.write(dir() / "arrays-again.gguf");
        QCOMPARE(qbytes(readBytes(dir() / "arrays-again.gguf")), qbytes(file));

        // set() of an existing key replaces its value in place.
        w.set("i8s", Value::string("replaced"));
        w.set("last", Value::u8(1));
        QCOMPARE(w.metadata().size(), size_t(10));
        QCOMPARE(w.metadata()[1].first, std::string("i8s"));
        QVERIFY(w.metadata()[1].second == Value::string("replaced"));
        QCOMPARE(w.metadata()[9].first, std::string("last"));
    }

    // Tensors of several types, general.alignment = 64: offsets, padding, bytes, sizes, values.
    void tensorRoundTrip()
    {
        struct Spec {
            const char* name;
            GgmlType type;
            std::vector<int64_t> ne;
            uint64_t bytes; // from ggml_types.h's block layouts
        };
        const std::vector<Spec> specs = {
            {"q4_0", GgmlType::Q4_0, {64, 3}, 2 * 18 * 3},
            {"q4_1", GgmlType::Q4_1, {32, 1}, 20},
            {"q2_k", GgmlType::Q2_K, {256, 1}, 84},
            {"q3_k", GgmlType::Q3_K, {512, 1}, 2 * 110},
            {"iq4_nl", GgmlType::IQ4_NL, {32, 2}, 2 * 18},
            {"bf16", GgmlType::BF16, {2, 2}, 4 * 2},
        };
        const std::vector<float> f32 = {0.5f, -1.0f, 2.0f, 1e-3f, -0.0f, 7.25f};
        const std::vector<uint16_t> f16 = {0x3c00, 0xc000, 0x3800, 0x7bff}; // 1, -2, 0.5, 65504
        // Q8_0, 4 rows of one block: d = 0.5, 1, 1.5, 2 and q = i - 16, so x = d * (i - 16).
        const uint16_t q8Scales[4] = {0x3800, 0x3c00, 0x3e00, 0x4000};
        Bytes q8;
        for (int r = 0; r < 4; ++r) {
            q8.push_back(uint8_t(q8Scales[r] & 0xff));
            q8.push_back(uint8_t(q8Scales[r] >> 8));
            for (int i = 0; i < 32; ++i)
                q8.push_back(uint8_t(int8_t(i - 16)));
        }

        GgufWriter w;
        w.set("general.alignment", Value::u32(64));
        w.set("general.name", Value::string("round trip"));
        w.addTensor("f32", GgmlType::F32, {3, 2}, copyFill(f32));
        w.addTensor("f16", GgmlType::F16, {4, 1}, copyFill(f16));
        w.addTensor("q8_0", GgmlType::Q8_0, {32, 2, 2}, copyFill(q8));
        for (size_t i = 0; i < specs.size(); ++i)
            w.addTensor(specs[i].name, specs[i].type, specs[i].ne, patternFill(int(i), specs[i].bytes));
        QCOMPARE(w.alignment(), 64u);

        const std::vector<TensorInfo> planned = w.tensors();
        QCOMPARE(planned.size(), specs.size() + 3);
        QCOMPARE(planned[0].bytes(), uint64_t(24));
        QCOMPARE(planned[1].bytes(), uint64_t(8));
        QCOMPARE(planned[2].bytes(), uint64_t(4 * 34));
        for (size_t i = 0; i < specs.size(); ++i)
            QCOMPARE(planned[i + 3].bytes(), specs[i].bytes);
        // Each tensor starts at the previous one's end rounded up to 64.
        uint64_t offset = 0;
        for (const TensorInfo& t : planned) {
            QCOMPARE(t.offset, offset);
            offset += (t.bytes() + 63) / 64 * 64;
        }

        std::vector<std::pair<size_t, size_t>> progress;
        const fs::path path = dir() / "tensors.gguf";
        w.write(path, [&](size_t done, size_t total) { progress.emplace_back(done, total); });
        QCOMPARE(progress.size(), planned.size());
        for (size_t i = 0; i < progress.size(); ++i)
            QCOMPARE(progress[i], std::make_pair(i + 1, planned.size()));
        QCOMPARE(uint64_t(fs::file_size(path)), w.fileSize());

        const GgufFile f = GgufFile::open(path);
        QCOMPARE(f.alignment(), 64u);
        QCOMPARE(f.dataOffset() % 64, uint64_t(0));
        QCOMPARE(f.fileSize(), w.fileSize());
        QCOMPARE(f.dataOffset() + offset, f.fileSize());
        QCOMPARE(f.get("general.name").asString(), std::string("round trip"));
        QCOMPARE(f.tensors().size(), planned.size());
        for (size_t i = 0; i < planned.size(); ++i) {
            const TensorInfo& t = f.tensors()[i];
            QCOMPARE(t.name, planned[i].name);
            QCOMPARE(t.type, planned[i].type);
            QCOMPARE(t.ne, planned[i].ne);
            QCOMPARE(t.offset, planned[i].offset);
            QCOMPARE(t.offset % 64, uint64_t(0));
        }
        for (size_t i = 0; i < specs.size(); ++i) {
            const TensorInfo& t = f.tensor(specs[i].name);
            QVERIFY2(std::memcmp(f.data(t), pattern(int(i), specs[i].bytes).data(), specs[i].bytes) == 0,
                     specs[i].name);
        }
        QCOMPARE(std::memcmp(f.data(f.tensor("q8_0")), q8.data(), q8.size()), 0);

        // Everything between and after the tensors is zero.
        const Bytes bytes = readBytes(path);
        std::vector<bool> used(bytes.size(), false);
        for (const TensorInfo& t : f.tensors())
            std::fill_n(used.begin() + std::ptrdiff_t(f.dataOffset() + t.offset), t.bytes(), true);
        size_t nonZeroPadding = 0;
        for (size_t i = f.dataOffset(); i < bytes.size(); ++i)
            if (!used[i] && bytes[i] != 0)
                ++nonZeroPadding;
        QCOMPARE(nonZeroPadding, size_t(0));

        QCOMPARE(f.toFloat(f.tensor("f32")), f32);
        QCOMPARE(f.toFloat(f.tensor("f16")), (std::vector<float>{1.0f, -2.0f, 0.5f, 65504.0f}));
        const std::vector<float> q8Values = f.toFloat(f.tensor("q8_0"));
        QCOMPARE(q8Values.size(), size_t(128));
        for (int r = 0; r < 4; ++r)
            for (int i = 0; i < 32; ++i)
                QCOMPARE(q8Values[size_t(r * 32 + i)], 0.5f * float(r + 1) * float(i - 16));

        // Without tensors: the metadata is still padded, as gguf.cpp writes it.
        GgufWriter empty;
        empty.set("general.alignment", Value::u32(64));
        empty.write(dir() / "empty.gguf");
        QCOMPARE(empty.fileSize(), uint64_t(64));
        QCOMPARE(uint64_t(fs::file_size(dir() / "empty.gguf")), uint64_t(64));
        QVERIFY(GgufFile::open(dir() / "empty.gguf").tensors().empty());
    }

    void everyTruncation()
    {
        GgufWriter w;
        w.set("a.n", Value::u32(7));
        w.set("name", Value::string("tiny"));
        w.set("tokens", Value::stringArray({"a", "bc"}));
        w.set("scores", Value::f32Array({0.5f, -1.0f}));
        w.addTensor("w", GgmlType::F32, {2, 2}, copyFill(std::vector<float>{1.0f, 2.0f, 3.0f, 4.0f}));
        w.addTensor("v", GgmlType::Q8_0, {32, 1}, patternFill(1, 34));
        const fs::path full = dir() / "full.gguf";
        w.write(full);
        const Bytes bytes = readBytes(full);
        const GgufFile f = GgufFile::open(full);
        QCOMPARE(uint64_t(bytes.size()), f.fileSize());
        const uint64_t w0 = f.dataOffset() + f.tensor("w").offset;
        const uint64_t v0 = f.dataOffset() + f.tensor("v").offset;
        QCOMPARE(v0, w0 + 32);
        QCOMPARE(uint64_t(bytes.size()), v0 + 64);

        const fs::path cut = dir() / "cut.gguf";
        for (size_t n = 0; n < bytes.size(); ++n) {
            writeBytes(cut, Bytes(bytes.begin(), bytes.begin() + std::ptrdiff_t(n)));
            const QString error = openError(cut);
            QVERIFY2(error != "NO THROW" && !error.startsWith("WRONG TYPE"),
                     qPrintable(QString("prefix of %1 bytes: %2").arg(n).arg(error)));
            QVERIFY2(error.contains(QString::fromStdString(cut.string())), qPrintable(error));
        }

        const auto messageAt = [&](size_t n) {
            writeBytes(cut, Bytes(bytes.begin(), bytes.begin() + std::ptrdiff_t(n)));
            return openError(cut);
        };
        QCOMPARE(messageAt(10), QString::fromStdString(cut.string() +
                                                       ": truncated: the tensor count needs bytes 8..16, the file has 10"));
        // Into the first tensor's data, and into the last one's padding.
        QVERIFY2(messageAt(size_t(w0 + 5)).contains(QString("truncated: tensor 'w' needs bytes %1..%2, the file has %3")
                                                      .arg(w0).arg(w0 + 32).arg(w0 + 5)),
                 qPrintable(messageAt(size_t(w0 + 5))));
        QVERIFY2(messageAt(bytes.size() - 1).contains(QString("truncated: tensor 'v' needs bytes %1..%2, the file has %3")
                                                          .arg(v0).arg(v0 + 64).arg(bytes.size() - 1)),
                 qPrintable(messageAt(bytes.size() - 1)));
        // Inside the string array: the key is named.
        QVERIFY2(messageAt(24 + 19 + 28 + 8 + 6 + 4 + 4 + 8 + 8 + 1).contains("key 'tokens'"), "string array cut");
    }

    void corruptions()
    {
        const auto kv = [](Builder b) { return b.str("k"); };
        const auto f32Tensor = [](uint32_t type = 0, uint64_t offset = 0) {
            return Builder().header(3, 1, 0).tensor("w", {8}, type, offset).pad(32).zeros(64).b;
        };

        expectFormatError("magic", Builder().raw("GGML").u32(3).u64(0).u64(0).b,
                          {"not a GGUF file (magic 'GGML', expected 'GGUF')"});
        expectFormatError("binary magic", Builder().u32(0x0201fe00).u32(3).u64(0).u64(0).b,
                          {"not a GGUF file (magic '\?\?\?\?', expected 'GGUF')"});
        expectFormatError("version 1", Builder().header(1, 0, 0).b, {"unsupported GGUF version 1;"});
        expectFormatError("version 4", Builder().header(4, 0, 0).b, {"unsupported GGUF version 4;"});
        expectFormatError("big-endian", Builder().header(0x03000000, 0, 0).b, {"(a big-endian file?)"});
        expectFormatError("unknown value type", kv(Builder().header(3, 0, 1)).u32(13).u32(0).b,
                          {"key 'k': unknown value type 13"});
        expectFormatError("unknown element type", kv(Builder().header(3, 0, 1)).u32(9).u32(77).u64(0).b,
                          {"key 'k': unknown value type 77"});
        expectFormatError("nested array", kv(Builder().header(3, 0, 1)).u32(9).u32(9).u64(1).u32(4).u64(0).b,
                          {"key 'k': nested array"});
        expectFormatError("bool 2", kv(Builder().header(3, 0, 1)).u32(7).u8(2).b, {"key 'k': bool byte 2"});
        expectFormatError("bool array 255", kv(Builder().header(3, 0, 1)).u32(9).u32(7).u64(2).u8(1).u8(255).b,
                          {"key 'k': bool byte 255"});
        expectFormatError("duplicate key",
                          Builder().header(3, 0, 2).str("k").u32(4).u32(1).str("k").u32(4).u32(2).b,
                          {"duplicate key 'k'"});
        expectFormatError("empty key", Builder().header(3, 0, 1).str("").u32(4).u32(1).b, {"key #0 is empty"});
        expectFormatError("string length 2^63", Builder().header(3, 0, 1).u64(1ull << 63).raw("abcdefgh").b,
                          {"key #0: string length 9223372036854775808 at byte 24 exceeds the 8 bytes left"});
        expectFormatError("string value 2^63", kv(Builder().header(3, 0, 1)).u32(8).u64(1ull << 63).b,
                          {"key 'k': string length 9223372036854775808"});
        expectFormatError("key count", Builder().header(3, 0, 1ull << 40).zeros(40).b,
                          {"key/value count 1099511627776 cannot fit in the 40 bytes left"});
        expectFormatError("tensor count", Builder().header(3, 1ull << 40, 0).zeros(40).b,
                          {"tensor count 1099511627776 cannot fit in the 40 bytes left"});
        expectFormatError("array length", kv(Builder().header(3, 0, 1)).u32(9).u32(4).u64(1ull << 61).zeros(16).b,
                          {"key 'k': array length 2305843009213693952 cannot fit in the 16 bytes left"});
        expectFormatError("string array length",
                          kv(Builder().header(3, 0, 1)).u32(9).u32(8).u64(3).zeros(16).b,
                          {"key 'k': array length 3 cannot fit in the 16 bytes left"});
        expectFormatError("alignment type", Builder().header(3, 0, 1).str("general.alignment").u32(5).u32(64).b,
                          {"general.alignment must be a u32, not i32 64"});
        expectFormatError("alignment 48", Builder().header(3, 0, 1).str("general.alignment").u32(4).u32(48).b,
                          {"general.alignment 48 is not a power of two"});
        expectFormatError("alignment 0", Builder().header(3, 0, 1).str("general.alignment").u32(4).u32(0).b,
                          {"general.alignment 0 is not a power of two"});

        expectFormatError("unknown ggml type", f32Tensor(6), {"tensor 'w': unknown ggml type id 6"});
        expectFormatError("ggml type 99", f32Tensor(99), {"tensor 'w': unknown ggml type id 99"});
        expectFormatError("misaligned", f32Tensor(0, 4),
                          {"tensor 'w': offset 4 is not a multiple of the alignment 32"});
        expectFormatError("row does not fit", f32Tensor(uint32_t(GgmlType::Q4_0)),
                          {"tensor 'w': a row of 8 elements does not fit q4_0 (blocks of 32)"});
        expectFormatError("no dimensions", Builder().header(3, 1, 0).str("w").u32(0).u32(0).u64(0).pad(32).b,
                          {"tensor 'w': no dimensions"});
        expectFormatError("five dimensions", Builder().header(3, 1, 0).tensor("w", {1, 1, 1, 1, 1}, 0, 0).pad(32).zeros(32).b,
                          {"tensor 'w': 5 dimensions (at most 4)"});
        expectFormatError("negative dimension", Builder().header(3, 1, 0).tensor("w", {4, -1}, 0, 0).pad(32).b,
                          {"tensor 'w': dimension 1 is negative (-1)"});
        expectFormatError("too many elements",
                          Builder().header(3, 1, 0).tensor("w", {1ll << 31, 1ll << 31, 1ll << 31}, 0, 0).pad(32).b,
                          {"tensor 'w': too many elements (more than 2^60)"});
        expectFormatError("long name", Builder().header(3, 1, 0).tensor(std::string(64, 'x'), {8}, 0, 0).pad(32).zeros(32).b,
                          {"name of 64 bytes is too long"});
        expectFormatError("duplicate tensor",
                          Builder().header(3, 2, 0).tensor("w", {8}, 0, 0).tensor("w", {8}, 0, 32).pad(32).zeros(64).b,
                          {"duplicate tensor 'w'"});
        expectFormatError("overlap",
                          Builder().header(3, 2, 0).tensor("a", {16}, 0, 0).tensor("b", {8}, 0, 32).pad(32).zeros(96).b,
                          {"tensors 'a' (data bytes 0..64) and 'b' (from data byte 32) overlap"});
        expectFormatError("overlap out of order",
                          Builder().header(3, 2, 0).tensor("b", {8}, 0, 32).tensor("a", {16}, 0, 0).pad(32).zeros(96).b,
                          {"tensors 'a' (data bytes 0..64) and 'b' (from data byte 32) overlap"});
        expectFormatError("offset past the end", f32Tensor(0, 1ull << 62),
                          {"tensor 'w': offset 4611686018427387904 lies past the end of the file"});
        // gguf.cpp's limits, in sparse files large enough that the bytes left do not decide.
        const uint64_t large = (1ull << 30) + 4096;
        expectFormatError("string of 2^30 + 1 bytes", kv(Builder().header(3, 0, 1)).u32(8).u64((1ull << 30) + 1).b,
                          {"key 'k': string length 1073741825 exceeds 2^30 bytes"}, large);
        expectFormatError("array of 2^30 + 1 elements",
                          kv(Builder().header(3, 0, 1)).u32(9).u32(0).u64((1ull << 30) + 1).b,
                          {"key 'k': array length 1073741825 exceeds 2^30 elements"}, large);
        // general.alignment 64 decides the data start and the offsets.
        expectFormatError("alignment 64",
                          Builder().header(3, 1, 1).str("general.alignment").u32(4).u32(64)
                              .tensor("w", {8}, 0, 32).pad(64).zeros(128).b,
                          {"offset 32 is not a multiple of the alignment 64"});

        // Accepted: version 2, tensors out of order (not gguf.cpp's packing), an unpadded data start without
        // tensors, bytes after the last tensor.
        const fs::path ok = dir() / "v2.gguf";
        const Bytes v2 = Builder().header(2, 2, 1).str("general.alignment").u32(4).u32(64)
                             .tensor("b", {8}, 0, 64).tensor("a", {16}, 0, 0).pad(64).zeros(128 + 5).b;
        writeBytes(ok, v2);
        const GgufFile f = GgufFile::open(ok);
        QCOMPARE(f.version(), 2u);
        QCOMPARE(f.alignment(), 64u);
        QCOMPARE(f.dataOffset(), uint64_t(128));
        QCOMPARE(f.tensor("b").offset, uint64_t(64));
        const Bytes noTensors = kv(Builder().header(3, 0, 1)).u32(4).u32(9).b;
        writeBytes(ok, noTensors);
        QCOMPARE(GgufFile::open(ok).dataOffset(), uint64_t(noTensors.size()));
        QCOMPARE(GgufFile::open(ok).get("k").asUInt(), uint64_t(9));

        VERIFY_THROWS(qpruner::FileError, GgufFile::open(dir() / "missing.gguf"), "missing.gguf");
        VERIFY_THROWS(qpruner::FormatError, f.get("general.name"), ok.string(), "metadata key 'general.name' is missing");
        VERIFY_THROWS(qpruner::FormatError, f.tensor("c"), ok.string(), "tensor 'c' is missing");
        QVERIFY(f.find("general.name") == nullptr);
        QVERIFY(f.findTensor("c") == nullptr);
        QVERIFY(f.findTensor("a") == &f.tensors()[1]);
    }

    void writerFailures()
    {
        const fs::path base = dir() / "failures";
        fs::create_directories(base);
        const fs::path path = base / "model.gguf";
        const auto failing = [](int failAt) {
            GgufWriter w;
            w.set("a", Value::u32(1));
            for (int i = 0; i < 3; ++i)
                w.addTensor("t" + std::to_string(i), GgmlType::F32, {256, 64}, [i, failAt](uint8_t* out) {
                    if (i == failAt)
                        throw std::runtime_error("fill " + std::to_string(i) + " failed");
                    out[0] = 1;
                });
            return w;
        };
        const auto expectFillError = [](const GgufWriter& w, const fs::path& p, const std::string& message) {
            try {
                w.write(p);
            } catch (const std::runtime_error& e) {
                return std::string(e.what()) == message;
            }
            return false;
        };

        // No file before: none after, and no temporary sibling.
        QVERIFY(expectFillError(failing(0), path, "fill 0 failed"));
        QCOMPARE(entries(base), QStringList());
        QVERIFY(expectFillError(failing(2), path, "fill 2 failed"));
        QCOMPARE(entries(base), QStringList());

        // An existing file keeps its bytes.
        const Bytes old = {'o', 'l', 'd'};
        writeBytes(path, old);
        QVERIFY(expectFillError(failing(1), path, "fill 1 failed"));
        QCOMPARE(entries(base), QStringList{"model.gguf"});
        QVERIFY(readBytes(path) == old);

        // Replaced by a complete file.
        const GgufWriter good = failing(-1);
        good.write(path);
        QCOMPARE(entries(base), QStringList{"model.gguf"});
        QCOMPARE(uint64_t(fs::file_size(path)), good.fileSize());
        QCOMPARE(GgufFile::open(path).tensors().size(), size_t(3));

        // Missing directories are created, and removed again when the write fails.
        QVERIFY(expectFillError(failing(1), base / "new" / "sub" / "m.gguf", "fill 1 failed"));
        QCOMPARE(entries(base), QStringList{"model.gguf"});
        good.write(base / "new" / "sub" / "m.gguf");
        QCOMPARE(GgufFile::open(base / "new" / "sub" / "m.gguf").tensors().size(), size_t(3));

        // Unwritable places: FileError naming the path, nothing left.
        writeBytes(base / "file", old);
        VERIFY_THROWS(qpruner::FileError, good.write(base / "file" / "m.gguf"), (base / "file" / "m.gguf").string());
        fs::create_directories(base / "adir");
        VERIFY_THROWS(qpruner::FileError, good.write(base / "adir"), (base / "adir").string(),
                      "cannot rename into place");
        QCOMPARE(entries(base), (QStringList{"adir", "file", "model.gguf", "new"}));
        if (::geteuid() != 0) { // root writes into read-only directories
            fs::create_directories(base / "ro");
            fs::permissions(base / "ro", fs::perms::owner_read | fs::perms::owner_exec);
            VERIFY_THROWS(qpruner::FileError, good.write(base / "ro" / "m.gguf"), (base / "ro" / "m.gguf").string(),
                          "cannot create temporary file");
            fs::permissions(base / "ro", fs::perms::owner_all);
            QCOMPARE(entries(base / "ro"), QStringList());
        }

        // Configuration errors name the tensor or key.
        GgufWriter w;
        w.addTensor("w", GgmlType::F32, {4}, patternFill(0, 16));
        VERIFY_THROWS(qpruner::ConfigError, w.addTensor("w", GgmlType::F16, {4}, patternFill(0, 8)),
                      "GGUF tensor 'w' is added twice");
        VERIFY_THROWS(qpruner::ConfigError, w.addTensor("q", GgmlType::Q4_0, {48, 2}, patternFill(0, 1)),
                      "GGUF tensor 'q': a row of 48 elements does not fit q4_0 (blocks of 32)");
        VERIFY_THROWS(qpruner::ConfigError, w.addTensor("k", GgmlType::Q2_K, {128}, patternFill(0, 1)),
                      "tensor 'k'", "does not fit q2_K (blocks of 256)");
        VERIFY_THROWS(qpruner::ConfigError, w.addTensor("e", GgmlType::F32, {}, patternFill(0, 1)),
                      "tensor 'e': no dimensions");
        VERIFY_THROWS(qpruner::ConfigError, w.addTensor("n", GgmlType::F32, {4, -2}, patternFill(0, 1)),
                      "tensor 'n': dimension 1 is negative");
        VERIFY_THROWS(qpruner::ConfigError, w.addTensor("d", GgmlType::F32, {1, 1, 1, 1, 1}, patternFill(0, 1)),
                      "GGUF tensor 'd': 5 dimensions (at most 4)");
        VERIFY_THROWS(qpruner::ConfigError, w.addTensor(std::string(64, 'x'), GgmlType::F32, {4}, patternFill(0, 1)),
                      "name of 64 bytes is too long");
        VERIFY_THROWS(qpruner::ConfigError, w.set("general.alignment", Value::u32(48)),
                      "general.alignment 48 is not a power of two");
        VERIFY_THROWS(qpruner::ConfigError, w.set("general.alignment", Value::i32(64)),
                      "general.alignment must be a u32, not i32 64");
        VERIFY_THROWS(qpruner::ConfigError, w.set("", Value::u8(1)), "key is empty");
        QCOMPARE(w.tensors().size(), size_t(1));
        QVERIFY(w.metadata().empty());
    }

    void valueConversions()
    {
        using qpruner::FormatError;
        VERIFY_THROWS(FormatError, Value::string("abc").asUInt("llama.block_count"),
                      "llama.block_count: expected an unsigned integer, got string \"abc\"");
        VERIFY_THROWS(FormatError, Value::i32(-3).asUInt("k"), "k: expected an unsigned integer, got i32 -3");
        VERIFY_THROWS(FormatError, Value::u64(std::numeric_limits<uint64_t>::max()).asInt("k"),
                      "k: expected a signed 64-bit integer, got u64 18446744073709551615");
        VERIFY_THROWS(FormatError, Value::f32(1.5f).asInt("k"), "k: expected an integer, got f32 1.5");
        VERIFY_THROWS(FormatError, Value::f64(2.0).asUInt(), "value: expected an unsigned integer, got f64 2");
        VERIFY_THROWS(FormatError, Value::u8(1).asBool("flag"), "flag: expected a bool, got u8 1");
        VERIFY_THROWS(FormatError, Value::boolean(true).asFloat("x"), "x: expected a number, got bool true");
        VERIFY_THROWS(FormatError, Value::u32(7).asString("name"), "name: expected a string, got u32 7");
        VERIFY_THROWS(FormatError, Value::i32Array({1}).asUInt("n"), "n: expected an unsigned integer, got an array of 1 i32");
        VERIFY_THROWS(FormatError, Value::f32Array({1.0f, 2.0f}).asIntArray("a"),
                      "a: expected an array of integers, got an array of 2 f32");
        VERIFY_THROWS(FormatError, Value::stringArray({"x"}).asFloatArray("a"),
                      "a: expected an array of numbers, got an array of 1 string");
        VERIFY_THROWS(FormatError, Value::string("x").asStringArray("a"),
                      "a: expected an array of strings, got string \"x\"");

        QCOMPARE(Value::u8(200).asInt(), int64_t(200));
        QCOMPARE(Value::i16(-5).asInt(), int64_t(-5));
        QCOMPARE(Value::i64(std::numeric_limits<int64_t>::min()).asInt(), std::numeric_limits<int64_t>::min());
        QCOMPARE(Value::u16(65535).asUInt(), uint64_t(65535));
        QCOMPARE(Value::i8(0).asUInt(), uint64_t(0));
        QCOMPARE(Value::i32(-3).asFloat(), -3.0);
        QCOMPARE(Value::u64(1ull << 53).asFloat(), 9007199254740992.0);
        QCOMPARE(Value::f32(0.1f).asFloat(), double(0.1f));
        QCOMPARE(Value::f64(0.1).asFloat(), 0.1);
        QCOMPARE(Value::boolean(true).asBool(), true);
        QCOMPARE(Value::string("x").asString(), std::string("x"));
        QCOMPARE(Value::i32Array({-1, 5}).asIntArray(), (std::vector<int64_t>{-1, 5}));
        QCOMPARE(Value::u32Array({4000000000u}).asIntArray(), (std::vector<int64_t>{4000000000}));
        QCOMPARE(Value::i32Array({-1, 5}).asFloatArray(), (std::vector<double>{-1.0, 5.0}));
        QCOMPARE(Value::f32Array({0.25f}).asFloatArray(), (std::vector<double>{0.25}));
        QCOMPARE(Value::stringArray({"a", ""}).asStringArray(), (std::vector<std::string>{"a", ""}));
        QCOMPARE(Value::stringArray({"a", ""}).size(), size_t(2));
        QCOMPARE(Value::f32Array({}).size(), size_t(0));
        QCOMPARE(Value::i32Array({1, 2, 3}).elementType(), ValueType::I32);
        QVERIFY(Value::i32Array({}).isArray());
        QVERIFY(!Value::string("").isArray());

        QCOMPARE(Value::u32(7).toString(), std::string("7"));
        QCOMPARE(Value::i8(-2).toString(), std::string("-2"));
        QCOMPARE(Value::u64(std::numeric_limits<uint64_t>::max()).toString(), std::string("18446744073709551615"));
        QCOMPARE(Value::f32(0.1f).toString(), std::string("0.1"));
        QCOMPARE(Value::f64(0.1).toString(), std::string("0.1"));
        QCOMPARE(Value::f64(1e300).toString(), std::string("1e+300"));
        QCOMPARE(Value::f32(floatBits(0x7fc00000u)).toString(), std::string("nan"));
        QCOMPARE(Value::boolean(false).toString(), std::string("false"));
        QCOMPARE(Value::string("a\"b\\c\n").toString(), std::string("\"a\\\"b\\\\c\\n\""));
        QCOMPARE(Value::i32Array({1, -2}).toString(), std::string("[1, -2]"));
        QCOMPARE(Value::stringArray({"x", "y"}).toString(), std::string("[\"x\", \"y\"]"));
        QCOMPARE(Value::u32Array({1, 2, 3, 4, 5, 6, 7, 8}).toString(), std::string("[1, 2, 3, 4, 5, 6, 7, 8]"));
        QCOMPARE(Value::u32Array({1, 2, 3, 4, 5, 6, 7, 8, 9}).toString(), std::string("[9 x u32]"));
        QCOMPARE(Value::stringArray(std::vector<std::string>(512)).toString(), std::string("[512 x string]"));
        QCOMPARE(Value::u32Array({}).toString(), std::string("[]"));

        const float nanA = floatBits(0x7fc00001u);
        QVERIFY(Value::f32(nanA) == Value::f32(nanA));
        QVERIFY(!(Value::f32(nanA) == Value::f32(floatBits(0x7fc00002u))));
        QVERIFY(!(Value::f64(0.0) == Value::f64(-0.0)));
        QVERIFY(!(Value::f32(1.0f) == Value::f64(1.0)));
        QVERIFY(!(Value::u32(1) == Value::i32(1)));
        QVERIFY(!(Value::i32Array({1}) == Value::u32Array({1})));
        QVERIFY(!(Value::i32Array({1}) == Value::i32Array({1, 1})));
        QVERIFY(Value::stringArray({}) == Value::stringArray({}));
        QVERIFY(!(Value::stringArray({}) == Value::f32Array({})));
        QVERIFY(Value::string("ü") == Value::string("ü"));

        QCOMPARE(std::string(qpruner::gguf::valueTypeName(ValueType::String)), std::string("string"));
        QCOMPARE(std::string(qpruner::gguf::valueTypeName(ValueType::F64)), std::string("f64"));
        QCOMPARE(std::string(qpruner::gguf::valueTypeName(ValueType::Bool)), std::string("bool"));
    }
};

QTEST_GUILESS_MAIN(TestGguf)
#include "test_gguf.moc"

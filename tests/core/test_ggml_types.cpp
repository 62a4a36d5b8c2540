// ggml's block formats for the GGUF export (core/src/export/ggml_types.h): the type table and row sizes with
// their errors; golden bytes of blocks whose reference arithmetic is worked out by hand (Q8_0, Q4_0, Q4_1, IQ4_NL,
// Q2_K, Q3_K, and fp16 / bf16 rounding: ties to even, NaN, infinity, subnormals); fingerprints of ggml's own
// output on portable pseudo-random weights, which pin the search arithmetic of the K-quants and IQ4_NL;
// llama.cpp's own accuracy check (tests/test-quantize-fns.cpp: its synthetic data, array_rmse and thresholds);
// re-quantization where it is idempotent by construction; all-zero, outlier and negative-only blocks; the
// rows x blocks layout; and the relative RMSE of every type on N(0, 1) weights, for the export documentation.
#include <QtTest/QtTest>

#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "export/ggml_types.h"
#include "qpruner/error.h"
#include "test_data.h"

using qpruner::ConfigError;
using namespace qpruner::gguf;

namespace {

using Bytes = std::vector<uint8_t>;

const std::vector<GgmlType>& quantizedTypes()
{
    static const std::vector<GgmlType> types = {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0,
                                                GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::IQ4_NL};
    return types;
}

Bytes quantize(GgmlType type, const std::vector<float>& x, int64_t rows = 1)
{
    const auto rowLength = int64_t(x.size()) / rows;
    Bytes out(size_t(ggmlTensorBytes(type, rows, rowLength)));
    quantizeRows(type, x.data(), rows, rowLength, out.data());
    return out;
}

std::vector<float> dequantize(GgmlType type, const Bytes& b, int64_t elements, int64_t rows = 1)
{
    std::vector<float> out(static_cast<size_t>(elements));
    dequantizeRows(type, b.data(), rows, elements / rows, out.data());
    return out;
}

void appendHalf(Bytes& b, uint16_t h)
{
    b.push_back(uint8_t(h & 0xff));
    b.push_back(uint8_t(h >> 8));
}

uint16_t halfAt(const Bytes& b, size_t offset) { return uint16_t(b[offset] | (b[offset + 1] << 8)); }

// kvalues_iq4nl, written out here so that the test does not read the table it checks.
constexpr int kIq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

// llama.cpp tests/test-quantize-fns.cpp, generate_data: 0.1 + amplitude * cosf(i + offset), summed in double.
std::vector<float> generateData(float offset, size_t n, float amplitude = 2.0f)
{
    std::vector<float> dst(n);
    for (size_t i = 0; i < n; i++)
        dst[i] = static_cast<float>(0.1 + amplitude * std::cos(static_cast<float>(i) + offset));
    return dst;
}

// llama.cpp tests/test-quantize-fns.cpp, array_rmse: sqrt of the summed squares over n (not over sqrt(n)).
float arrayRmse(const float* a1, const float* a2, size_t n)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        const double diff = a1[i] - a2[i];
        sum += diff * diff;
    }
    return std::sqrt(static_cast<float>(sum)) / static_cast<float>(n);
}

double relativeRmse(const std::vector<float>& x, const std::vector<float>& y)
{
    double err = 0, ref = 0;
    for (size_t i = 0; i < x.size(); ++i) {
        err += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
        ref += double(x[i]) * x[i];
    }
    return std::sqrt(err / ref);
}

std::vector<float> gaussian(size_t n, uint64_t seed)
{
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal(0.0, 1.0);
    std::vector<float> x(n);
    for (float& v : x)
        v = static_cast<float>(normal(rng));
    return x;
}

// Weights from integer arithmetic alone (no libm approximations), so that every platform quantizes the same
// floats. Per 32 elements one of: a constant block (1/16), small integers -8..8 (2/16: ties for every rounding
// rule), uniform values (4/16) or near-Gaussian ones (9/16), the last two 21-bit integers times 2^-20 scaled per 16
// elements by 2^-4..2^4, with 2% exact zeros, 2% values cut to multiples of 1/8 and 0.5% outliers of 64x.
std::vector<float> portableWeights(size_t n, uint64_t seed)
{
    uint64_t s = seed;
    const auto next = [&s] {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        return uint32_t(s >> 33);
    };
    std::vector<float> x(n);
    float scale = 1.0f, constant = 0.0f;
    uint32_t mode = 0;
    for (size_t i = 0; i < n; ++i) {
        if (i % 32 == 0) {
            mode = next() % 16;
            constant = float(int(next() % 17) - 8) * 0.25f;
        }
        if (i % 16 == 0)
            scale = std::ldexp(1.0f, int(next() % 9) - 4);
        if (mode == 0) {
            x[i] = constant;
            continue;
        }
        if (mode <= 2) {
            x[i] = float(int(next() % 17) - 8);
            continue;
        }
        int k = 0;
        for (int t = 0; t < (mode <= 6 ? 1 : 4); ++t) // one term: uniform; a sum of four: near Gaussian
            k += int(next() % (1u << 21)) - (1 << 20);
        float v = float(k) * 0x1.0p-20f * scale;
        const uint32_t r = next() % 200;
        if (r < 4)
            v = 0.0f;
        else if (r < 8)
            v = std::trunc(v * 8.0f) / 8.0f;
        else if (r == 8)
            v *= 64.0f;
        x[i] = v;
    }
    return x;
}

// FNV-1a, 64 bits.
uint64_t fnv1a(const void* data, size_t size)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < size; ++i) {
        h ^= static_cast<const uint8_t*>(data)[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

// Hex text of bytes, so that a mismatch prints both sides.
QByteArray hex(const Bytes& b)
{
    return QByteArray(reinterpret_cast<const char*>(b.data()), qsizetype(b.size())).toHex(' ');
}

// A float with all its digits and its bits, for bit-exact comparisons (QCOMPARE on floats is fuzzy).
QString exactText(float v)
{
    return QString::number(double(v), 'g', 9) + " (" + QString::number(std::bit_cast<uint32_t>(v), 16) + ")";
}

} // namespace

#define COMPARE_BYTES(actual, expected) QCOMPARE(hex(actual), hex(expected))
#define COMPARE_EXACT(actual, expected) QCOMPARE(exactText(actual), exactText(expected))

class TestGgmlTypes : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void typeTable()
    {
        struct Row {
            GgmlType type;
            uint32_t id;
            const char* name;
            int blockSize, blockBytes;
            bool quantized;
            double bits;
        };
        const Row rows[] = {
            {GgmlType::F32, 0, "f32", 1, 4, false, 32.0},         {GgmlType::F16, 1, "f16", 1, 2, false, 16.0},
            {GgmlType::Q4_0, 2, "q4_0", 32, 18, true, 4.5},       {GgmlType::Q4_1, 3, "q4_1", 32, 20, true, 5.0},
            {GgmlType::Q8_0, 8, "q8_0", 32, 34, true, 8.5},       {GgmlType::Q2_K, 10, "q2_K", 256, 84, true, 2.625},
            {GgmlType::Q3_K, 11, "q3_K", 256, 110, true, 3.4375}, {GgmlType::IQ4_NL, 20, "iq4_nl", 32, 18, true, 4.5},
            {GgmlType::BF16, 30, "bf16", 1, 2, false, 16.0},
        };
        QCOMPARE(ggmlTypes().size(), std::size(rows));
        for (size_t i = 0; i < std::size(rows); ++i) {
            const Row& r = rows[i];
            QCOMPARE(ggmlTypes()[i], r.type); // id order
            QCOMPARE(static_cast<uint32_t>(r.type), r.id);
            const GgmlTypeTraits& t = ggmlTypeTraits(r.type);
            QCOMPARE(std::string(t.name), std::string(r.name));
            QCOMPARE(std::string(ggmlTypeName(r.type)), std::string(r.name));
            QCOMPARE(t.blockSize, r.blockSize);
            QCOMPARE(t.blockBytes, r.blockBytes);
            QCOMPARE(t.quantized, r.quantized);
            QCOMPARE(ggmlBitsPerElement(r.type), r.bits);
            QCOMPARE(ggmlTypeFromId(r.id), std::optional<GgmlType>(r.type));
            QCOMPARE(ggmlTypeFromName(r.name), std::optional<GgmlType>(r.type));
        }
        QCOMPARE(ggmlTypeFromName("Q4_0"), std::optional<GgmlType>(GgmlType::Q4_0));
        QCOMPARE(ggmlTypeFromName("IQ4_NL"), std::optional<GgmlType>(GgmlType::IQ4_NL));
        QCOMPARE(ggmlTypeFromName("Q2_k"), std::optional<GgmlType>(GgmlType::Q2_K));
        QCOMPARE(ggmlTypeFromName("BF16"), std::optional<GgmlType>(GgmlType::BF16));
        QCOMPARE(ggmlTypeFromName("q4_k"), std::optional<GgmlType>());
        QCOMPARE(ggmlTypeFromName("q4_0 "), std::optional<GgmlType>());
        QCOMPARE(ggmlTypeFromName(""), std::optional<GgmlType>());
        for (uint32_t unknown : {4u, 6u, 7u, 9u, 12u, 19u, 21u, 29u, 31u, 1000u})
            QCOMPARE(ggmlTypeFromId(unknown), std::optional<GgmlType>());
        VERIFY_THROWS(ConfigError, ggmlTypeTraits(static_cast<GgmlType>(12)), "unknown ggml type id 12");
    }

    void rowSizesAndErrors()
    {
        QVERIFY(!ggmlRowFits(GgmlType::Q4_0, 48));
        QVERIFY(ggmlRowFits(GgmlType::Q4_0, 64));
        QVERIFY(!ggmlRowFits(GgmlType::Q2_K, 64));
        QVERIFY(ggmlRowFits(GgmlType::Q2_K, 512));
        QVERIFY(!ggmlRowFits(GgmlType::Q3_K, 4064));
        QVERIFY(ggmlRowFits(GgmlType::F32, 7));
        QVERIFY(ggmlRowFits(GgmlType::BF16, 1));
        QVERIFY(!ggmlRowFits(GgmlType::F16, -2));
        QVERIFY(!ggmlRowFits(GgmlType::IQ4_NL, 33));

        QCOMPARE(ggmlRowBytes(GgmlType::F32, 7), int64_t(28));
        QCOMPARE(ggmlRowBytes(GgmlType::F16, 7), int64_t(14));
        QCOMPARE(ggmlRowBytes(GgmlType::BF16, 4096), int64_t(8192));
        QCOMPARE(ggmlRowBytes(GgmlType::Q4_0, 4096), int64_t(128 * 18));
        QCOMPARE(ggmlRowBytes(GgmlType::Q4_1, 4096), int64_t(128 * 20));
        QCOMPARE(ggmlRowBytes(GgmlType::Q8_0, 4096), int64_t(128 * 34));
        QCOMPARE(ggmlRowBytes(GgmlType::IQ4_NL, 4096), int64_t(128 * 18));
        QCOMPARE(ggmlRowBytes(GgmlType::Q2_K, 4096), int64_t(16 * 84));
        QCOMPARE(ggmlRowBytes(GgmlType::Q3_K, 11008), int64_t(43 * 110));
        QCOMPARE(ggmlTensorBytes(GgmlType::Q8_0, 3, 64), int64_t(3 * 2 * 34));
        QCOMPARE(ggmlTensorBytes(GgmlType::Q2_K, 4096, 4096), int64_t(4096) * 16 * 84);
        QCOMPARE(ggmlTensorBytes(GgmlType::Q4_0, 0, 32), int64_t(0));

        VERIFY_THROWS(ConfigError, ggmlRowBytes(GgmlType::Q4_0, 48), "q4_0", "row of 48 elements",
                      "blocks of 32 elements");
        VERIFY_THROWS(ConfigError, ggmlRowBytes(GgmlType::Q2_K, 64), "q2_K", "row of 64 elements",
                      "blocks of 256 elements");
        VERIFY_THROWS(ConfigError, ggmlTensorBytes(GgmlType::Q3_K, 2, 100), "q3_K", "row of 100 elements", "256");
        VERIFY_THROWS(ConfigError, ggmlTensorBytes(GgmlType::Q8_0, -1, 32), "q8_0", "-1 rows");

        std::vector<float> x(96, 1.0f);
        Bytes out(256, 0xAB);
        std::vector<float> back(96, 7.0f);
        VERIFY_THROWS(ConfigError, quantizeRows(GgmlType::Q4_0, x.data(), 2, 48, out.data()), "q4_0",
                      "row of 48 elements", "blocks of 32 elements");
        VERIFY_THROWS(ConfigError, dequantizeRows(GgmlType::Q2_K, out.data(), 1, 64, back.data()), "q2_K",
                      "row of 64 elements", "blocks of 256 elements");
        QVERIFY(std::all_of(out.begin(), out.end(), [](uint8_t b) { return b == 0xAB; })); // nothing written
        QVERIFY(std::all_of(back.begin(), back.end(), [](float v) { return v == 7.0f; }));
    }

    // absmax 127 gives d = 127 / 127 = 1 (fp16 0x3C00), id = 1 and q = roundf(x): halves round away from zero.
    // absmax 63.5 gives d = 0.5 (0x3800), id = 2: 0.75 -> roundf(1.5) = 2, -0.25 -> roundf(-0.5) = -1.
    void q8_0GoldenBlocks()
    {
        std::vector<float> x(64);
        for (int j = 0; j < 32; ++j) {
            x[size_t(j)] = float(j - 16);
            x[size_t(32 + j)] = 0.5f * float(j - 16);
        }
        x[0] = 127.0f, x[1] = -100.0f, x[2] = 2.5f, x[3] = -2.5f;
        x[32] = -63.5f, x[33] = 0.75f, x[34] = -0.25f, x[35] = 0.2f;
        Bytes expected;
        appendHalf(expected, 0x3C00);
        for (int q : {127, -100, 3, -3})
            expected.push_back(uint8_t(int8_t(q)));
        for (int j = 4; j < 32; ++j)
            expected.push_back(uint8_t(int8_t(j - 16)));
        appendHalf(expected, 0x3800);
        for (int q : {-127, 2, -1, 0})
            expected.push_back(uint8_t(int8_t(q)));
        for (int j = 4; j < 32; ++j)
            expected.push_back(uint8_t(int8_t(j - 16)));
        const Bytes q = quantize(GgmlType::Q8_0, x);
        COMPARE_BYTES(q, expected);

        const std::vector<float> y = dequantize(GgmlType::Q8_0, q, 64);
        COMPARE_EXACT(y[0], 127.0f);
        COMPARE_EXACT(y[2], 3.0f);
        COMPARE_EXACT(y[3], -3.0f);
        COMPARE_EXACT(y[32], -63.5f);
        COMPARE_EXACT(y[33], 1.0f);
        COMPARE_EXACT(y[34], -0.5f);
        COMPARE_EXACT(y[63], 7.5f);
    }

    // Q4_0: d = max / -8 for the first element of largest magnitude; nibble = min(15, (int8)(x / d + 8.5)),
    // element j in the low nibble of qs[j], element j + 16 in its high nibble.
    void q4_0GoldenBlocks()
    {
        // Block A: x[j] = j - 8, x[16 + j] = 7 - j, but x[31] = +8: the first largest magnitude is x[0] = -8, so
        // d = 1 and nibble = x + 8, clamped to 15 for x[31] (int8(16.5) = 16).
        // Block B: x = 0.5 k - 3 (k = j % 16), but x[3] = 8: max = 8, d = -1 (0xBC00), nibble = trunc(8.5 - x).
        std::vector<float> x(64);
        for (int j = 0; j < 16; ++j) {
            x[size_t(j)] = float(j - 8);
            x[size_t(16 + j)] = float(7 - j);
            x[size_t(32 + j)] = x[size_t(48 + j)] = 0.5f * float(j) - 3.0f;
        }
        x[31] = 8.0f;
        x[32 + 3] = 8.0f;
        Bytes expected;
        appendHalf(expected, 0x3C00);
        for (int j = 0; j < 16; ++j)
            expected.push_back(uint8_t(j | ((j == 15 ? 15 : 15 - j) << 4)));
        appendHalf(expected, 0xBC00);
        const uint8_t blockB[16] = {0xBB, 0xBB, 0xAA, 0xA0, 0x99, 0x99, 0x88, 0x88,
                                    0x77, 0x77, 0x66, 0x66, 0x55, 0x55, 0x44, 0x44};
        expected.insert(expected.end(), std::begin(blockB), std::end(blockB));
        const Bytes q = quantize(GgmlType::Q4_0, x);
        COMPARE_BYTES(q, expected);

        const std::vector<float> y = dequantize(GgmlType::Q4_0, q, 64);
        for (int j = 0; j < 31; ++j)
            COMPARE_EXACT(y[size_t(j)], x[size_t(j)]); // block A is exact up to the clamped x[31]
        COMPARE_EXACT(y[31], 7.0f);
        COMPARE_EXACT(y[32], -3.0f);                   // (11 - 8) * -1
        COMPARE_EXACT(y[33], -3.0f);                   // -2.5 rounded to the level above
        COMPARE_EXACT(y[35], 8.0f);                    // (0 - 8) * -1
        COMPARE_EXACT(y[63], 4.0f);                    // 4.5 -> nibble 4
    }

    // Q4_1: d = (max - min) / 15, m = min, nibble = min(15, (int8)((x - min) / d + 0.5)).
    void q4_1GoldenBlocks()
    {
        // Block A: x[j] = j, x[16 + j] = 15 - j: d = 1, m = 0, nibble = x.
        // Block B: x = 0.5 k - 3, hi half 0.5 (15 - k) - 3, x[4] = -0.75: d = 0.5 (0x3800), m = -3 (0xC200), nibble = k
        // except x[4]: (2.25 * 2 + 0.5) = 5 (a tie rounds up).
        std::vector<float> x(64);
        for (int j = 0; j < 16; ++j) {
            x[size_t(j)] = float(j);
            x[size_t(16 + j)] = float(15 - j);
            x[size_t(32 + j)] = 0.5f * float(j) - 3.0f;
            x[size_t(48 + j)] = 0.5f * float(15 - j) - 3.0f;
        }
        x[32 + 4] = -0.75f;
        Bytes expected;
        appendHalf(expected, 0x3C00);
        appendHalf(expected, 0x0000);
        for (int j = 0; j < 16; ++j)
            expected.push_back(uint8_t(j | ((15 - j) << 4)));
        appendHalf(expected, 0x3800);
        appendHalf(expected, 0xC200);
        for (int j = 0; j < 16; ++j)
            expected.push_back(uint8_t((j == 4 ? 5 : j) | ((15 - j) << 4)));
        const Bytes q = quantize(GgmlType::Q4_1, x);
        COMPARE_BYTES(q, expected);

        const std::vector<float> y = dequantize(GgmlType::Q4_1, q, 64);
        for (int j = 0; j < 64; ++j)
            if (j != 36)
                COMPARE_EXACT(y[size_t(j)], x[size_t(j)]);
        COMPARE_EXACT(y[36], -0.5f);
    }

    // A block that is exactly 0.5 * kvalues_iq4nl[idx]: with -127 * 0.5 as the first largest magnitude, the try
    // with id = -127 / max = 2 fits every element exactly, so its scale sumqx / sumq2 is exactly 0.5 (each term
    // of sumqx is half the matching term of sumq2) and it beats every other try; the levels are then idx.
    // An all-zero block has scale 0 and every level at kvalues 1 (index 8), the level nearest to 0.
    void iq4_nlGoldenBlocks()
    {
        int idx[32];
        for (int j = 0; j < 16; ++j) {
            idx[j] = j;
            idx[16 + j] = (5 * j + 3) % 16;
        }
        std::vector<float> x(64, 0.0f);
        for (int j = 0; j < 32; ++j)
            x[size_t(j)] = 0.5f * float(kIq4nl[idx[j]]);
        Bytes expected;
        appendHalf(expected, 0x3800);
        for (int j = 0; j < 16; ++j)
            expected.push_back(uint8_t(idx[j] | (idx[16 + j] << 4)));
        appendHalf(expected, 0x0000);
        expected.insert(expected.end(), 16, 0x88);
        const Bytes q = quantize(GgmlType::IQ4_NL, x);
        COMPARE_BYTES(q, expected);

        const std::vector<float> y = dequantize(GgmlType::IQ4_NL, q, 64);
        for (int j = 0; j < 64; ++j)
            COMPARE_EXACT(y[size_t(j)], x[size_t(j)]);
    }

    // Q2_K: sub-block j holds x = c_j * q - m_j with levels q in 0..3 (each present), c_j = 2^-(j % 5) and
    // m_j = 0.125 (j = 0, 10), 0.75 (j % 4 == 1, except those) or 0. make_qkx2_quants then fits scale c_j and
    // min m_j with zero error (no other candidate can beat it; every step is exact in float), so the largest
    // scale is 1 and the largest min 0.75: d = fp16(1 / 15) = 0x2C44, dmin = fp16(0.75 / 15) = 0x2A66. Scale
    // codes nearest(15 c_j) = 15, 8 (7.5 ties to even), 4, 2, 1; min codes nearest(20 m_j) = 15, 0 and 2 for
    // m_j = 0.125 (2.5 ties to even). Re-quantizing with the rounded scales and mins keeps every level (x / d
    // stays within 0.19 of q; the min code 2 misses 0.125 by 0.025, but only where c_j = 1). qs: element e of a
    // 128-element half h sits in byte 32 h + e % 32 at bit 2 ((e % 128) / 32).
    void q2_KGoldenBlock()
    {
        std::vector<float> x(256);
        int level[256];
        Bytes expected(84, 0);
        const auto minOf = [](int j) { return j % 10 == 0 ? 0.125f : j % 4 == 1 ? 0.75f : 0.0f; };
        for (int j = 0; j < 16; ++j) {
            const float c = std::ldexp(1.0f, -(j % 5));
            const float m = minOf(j);
            for (int ii = 0; ii < 16; ++ii) {
                const int q = (3 * ii + ii / 4 + j) % 4;
                level[16 * j + ii] = q;
                x[size_t(16 * j + ii)] = c * float(q) - m;
            }
            const int scaleCode[5] = {15, 8, 4, 2, 1};
            const int minCode = m == 0.75f ? 15 : m == 0.125f ? 2 : 0;
            expected[size_t(j)] = uint8_t(scaleCode[j % 5] | (minCode << 4));
        }
        for (int e = 0; e < 256; ++e)
            expected[size_t(16 + 32 * (e / 128) + e % 32)] |= uint8_t(level[e] << (2 * ((e % 128) / 32)));
        expected[80] = 0x44, expected[81] = 0x2C; // d
        expected[82] = 0x66, expected[83] = 0x2A; // dmin
        const Bytes q = quantize(GgmlType::Q2_K, x);
        COMPARE_BYTES(q, expected);

        // y = d * sc * q - dmin * mc: the rounded step d * sc is at most 1.0664 c_j, so y is off by at most
        // 3 * 0.0664 c_j, plus the rounded min (0.025 off for 0.125, 2^-12 for 0.75).
        const std::vector<float> y = dequantize(GgmlType::Q2_K, q, 256);
        for (int e = 0; e < 256; ++e) {
            const int j = e / 16;
            const float bound = 0.2f * std::ldexp(1.0f, -(j % 5)) + (minOf(j) == 0.125f ? 0.026f : 0.0005f);
            QVERIFY2(std::fabs(y[size_t(e)] - x[size_t(e)]) <= bound,
                     qPrintable(QString("element %1: %2 vs %3").arg(e).arg(y[size_t(e)]).arg(x[size_t(e)])));
        }
    }

    // Q3_K: sub-block j holds x = -s_j v / 4 with signed levels v in -4..3, v = -4 first (x = s_j is the first
    // largest magnitude), s_j = 2^-(j % 7). make_q3_quants fits v exactly with scale -s_j / 4 (no coordinate move
    // helps), the block scale is -1/4, d = fp16(1/128) = 0x2000 and the 6-bit codes nearest(-32 s_j) + 32 =
    // 0, 16, 24, 28, 30, 31 and, for s_j = 1/64, nearest(-0.5) + 32 = 32 (a tie, to even): scale 0, so those
    // sub-blocks keep make_q3_quants' levels and dequantize to 0. Level L = v + 4: bit 2 in hmask[e % 32] at bit
    // e / 32, the low two bits in qs as Q2_K. Scales: code low nibble in byte j (j < 8) or the high nibble of byte
    // j - 8, top bits in byte 8 + j % 4 at bit 2 (j / 4). Every other step is exact, so the rest dequantizes to x.
    void q3_KGoldenBlock()
    {
        std::vector<float> x(256);
        int level[256];
        Bytes expected(110, 0);
        const int code[7] = {0, 16, 24, 28, 30, 31, 32};
        for (int j = 0; j < 16; ++j) {
            const float s = std::ldexp(1.0f, -(j % 7));
            for (int ii = 0; ii < 16; ++ii) {
                const int v = ii == 0 ? -4 : (5 * ii + j) % 8 - 4;
                level[16 * j + ii] = v + 4;
                x[size_t(16 * j + ii)] = -0.25f * s * float(v);
            }
            const int k = code[j % 7];
            if (j < 8)
                expected[96 + size_t(j)] |= uint8_t(k & 0xF);
            else
                expected[96 + size_t(j - 8)] |= uint8_t((k & 0xF) << 4);
            expected[96 + 8 + size_t(j % 4)] |= uint8_t((k >> 4) << (2 * (j / 4)));
        }
        for (int e = 0; e < 256; ++e) {
            if (level[e] > 3)
                expected[size_t(e % 32)] |= uint8_t(1 << (e / 32));
            expected[size_t(32 + 32 * (e / 128) + e % 32)] |= uint8_t((level[e] & 3) << (2 * ((e % 128) / 32)));
        }
        expected[108] = 0x00, expected[109] = 0x20;
        const Bytes q = quantize(GgmlType::Q3_K, x);
        COMPARE_BYTES(q, expected);

        const std::vector<float> y = dequantize(GgmlType::Q3_K, q, 256);
        for (int e = 0; e < 256; ++e)
            if ((e / 16) % 7 == 6)
                QVERIFY(y[size_t(e)] == 0.0f);
            else
                COMPARE_EXACT(y[size_t(e)], x[size_t(e)]);
    }

    void halfRounding()
    {
        const float nan = std::numeric_limits<float>::quiet_NaN();
        const float inf = std::numeric_limits<float>::infinity();
        struct Case {
            float x;
            uint16_t h;
        };
        const Case cases[] = {
            {1.0f, 0x3C00},
            {-2.0f, 0xC000},
            {1.0f + 0x1.0p-11f, 0x3C00},            // tie: to the even 0x3C00
            {1.0f + 0x3.0p-11f, 0x3C02},            // tie: to the even 0x3C02
            {1.0f + 0x1.0p-11f + 0x1.0p-20f, 0x3C01}, // just above the tie
            {65504.0f, 0x7BFF},                     // largest finite half
            {65519.99f, 0x7BFF},
            {65520.0f, 0x7C00}, // the tie between 65504 and 65536 goes to the even: infinity
            {inf, 0x7C00},
            {-inf, 0xFC00},
            {nan, 0x7E00},
            {-nan, 0xFE00},
            {0.0f, 0x0000},
            {-0.0f, 0x8000},
            {0x1.0p-14f, 0x0400},  // smallest normal
            {0x1.0p-24f, 0x0001},  // smallest subnormal
            {0x1.0p-25f, 0x0000},  // tie: to the even 0
            {0x3.0p-25f, 0x0002},  // 1.5 units: to the even 2
            {-0x1.8p-24f, 0x8002}, // -1.5 units
            {0x1.0p-26f, 0x0000},
        };
        std::vector<float> x;
        Bytes expected;
        for (const Case& c : cases) {
            x.push_back(c.x);
            appendHalf(expected, c.h);
        }
        const Bytes q = quantize(GgmlType::F16, x);
        COMPARE_BYTES(q, expected);

        const std::vector<float> y = dequantize(GgmlType::F16, q, int64_t(x.size()));
        COMPARE_EXACT(y[0], 1.0f);
        COMPARE_EXACT(y[4], 1.0f + 0x1.0p-10f);
        COMPARE_EXACT(y[5], 65504.0f);
        COMPARE_EXACT(y[7], inf);
        COMPARE_EXACT(y[9], -inf);
        QVERIFY(std::isnan(y[10]) && std::isnan(y[11]));
        QVERIFY(y[13] == 0.0f && std::signbit(y[13]));
        COMPARE_EXACT(y[15], 0x1.0p-24f);
        COMPARE_EXACT(y[17], 0x1.0p-23f);
        COMPARE_EXACT(y[18], -0x1.0p-23f);
    }

    void bfloat16Rounding()
    {
        const auto f = [](uint32_t bits) { return std::bit_cast<float>(bits); };
        struct Case {
            float x;
            uint16_t h;
        };
        const Case cases[] = {
            {1.0f, 0x3F80},
            {-1.5f, 0xBFC0},
            {1.0f + 0x1.0p-8f, 0x3F80},             // tie: to the even 0x3F80
            {1.0f + 0x3.0p-8f, 0x3F82},             // tie: to the even 0x3F82
            {1.0f + 0x1.0p-8f + 0x1.0p-20f, 0x3F81}, // just above the tie
            {FLT_MAX, 0x7F80},                      // rounds up to infinity
            {f(0x7F800000u), 0x7F80},
            {f(0xFF800000u), 0xFF80},
            {f(0x7FC00000u), 0x7FC0}, // quiet NaN
            {f(0x7F800001u), 0x7FC0}, // signalling NaN: made quiet, low payload dropped
            {f(0xFFA00000u), 0xFFE0}, // negative signalling NaN keeps sign and high payload
            {f(0x00008000u), 0x0000}, // subnormal tie: to the even 0
            {f(0x00018000u), 0x0002}, // subnormal tie: to the even 2
            {f(0x00400000u), 0x0040}, // 2^-127 stays (not flushed to zero)
            {f(0x80000001u), 0x8000},
        };
        std::vector<float> x;
        Bytes expected;
        for (const Case& c : cases) {
            x.push_back(c.x);
            appendHalf(expected, c.h);
            QCOMPARE(fp32ToBf16(c.x), c.h);
        }
        const Bytes q = quantize(GgmlType::BF16, x);
        COMPARE_BYTES(q, expected);

        COMPARE_EXACT(bf16ToFp32(0x3F81), 1.0078125f);
        COMPARE_EXACT(bf16ToFp32(0xBFC0), -1.5f);
        COMPARE_EXACT(bf16ToFp32(0x0040), 0x1.0p-127f);
        COMPARE_EXACT(bf16ToFp32(0x7F80), std::numeric_limits<float>::infinity());
        QVERIFY(std::isnan(bf16ToFp32(0x7FC0)));
        const std::vector<float> y = dequantize(GgmlType::BF16, q, int64_t(x.size()));
        for (size_t i = 0; i < x.size(); ++i)
            QCOMPARE(std::bit_cast<uint32_t>(y[i]), uint32_t(halfAt(expected, 2 * i)) << 16);
    }

    // llama.cpp tests/test-quantize-fns.cpp, "absolute quantization error": 4096 values of generate_data(0),
    // quantize + dequantize, array_rmse below MAX_QUANTIZATION_TOTAL_ERROR (0.002), _2BITS (0.0075) for Q2_K and
    // _3BITS (0.0040) for Q3_K.
    void llamaCppTotalError()
    {
        const size_t testSize = 32 * 128;
        const std::vector<float> data = generateData(0.0f, testSize);
        for (GgmlType type : ggmlTypes()) {
            const float limit = type == GgmlType::Q2_K ? 0.0075f : type == GgmlType::Q3_K ? 0.0040f : 0.002f;
            const std::vector<float> back = dequantize(type, quantize(type, data), int64_t(testSize));
            const float err = arrayRmse(data.data(), back.data(), testSize);
            qInfo("%-6s absolute quantization error %.6f (limit %.4f)", ggmlTypeName(type), double(err), double(limit));
            QVERIFY2(err < limit, ggmlTypeName(type));
        }
    }

    // Fingerprints of ggml's own output on portableWeights(256 x 256, seed 20240601): the bytes that ggml-quants.c
    // (quantize_row_*_ref, quantize_iq4_nl without imatrix; ggml_compute_fp32_to_fp16 / _bf16) writes, and the float
    // bits its dequantize_row_* returns, with ggml's C built as ISO C11 (no fused multiply-add contraction) on x86-64.
    // They pin the whole search arithmetic of Q2_K, Q3_K and IQ4_NL, which no hand-made block can: for instance the
    // fifth refinement pass of make_q3_quants and the tie rule of best_index_int8 each change them.
    void ggmlReferenceFingerprints()
    {
        struct Fingerprint {
            GgmlType type;
            uint64_t bytes, values;
        };
        const Fingerprint expected[] = {
            {GgmlType::F32, 0xd3367afe9d9e8090ULL, 0xd3367afe9d9e8090ULL},
            {GgmlType::F16, 0x62691c5e6cec16d1ULL, 0x5f32281a21f48462ULL},
            {GgmlType::Q4_0, 0xfa377949b7728e8eULL, 0x6f34db4028f9d681ULL},
            {GgmlType::Q4_1, 0x7163a1708b927769ULL, 0x7e15bbb65a1695efULL},
            {GgmlType::Q8_0, 0xfc105b6494bcf1e6ULL, 0x018561ae293144c4ULL},
            {GgmlType::Q2_K, 0x6983e5fe9b65c0e2ULL, 0x589b1ed65ae33ea4ULL},
            {GgmlType::Q3_K, 0x035bdc0ae167e57bULL, 0xf0ec4625a27b9c18ULL},
            {GgmlType::IQ4_NL, 0x5f6b7ec1d03fde82ULL, 0x86dc75729c59f92bULL},
            {GgmlType::BF16, 0xdece2204d6d32f73ULL, 0x4fad818c214067cbULL},
        };
        const int64_t rows = 256, n = rows * 256;
        const std::vector<float> x = portableWeights(size_t(n), 20240601);
        for (const Fingerprint& f : expected) {
            const Bytes q = quantize(f.type, x, rows);
            const std::vector<float> y = dequantize(f.type, q, n, rows);
            QCOMPARE(QString::number(fnv1a(q.data(), q.size()), 16), QString::number(f.bytes, 16));
            QCOMPARE(QString::number(fnv1a(y.data(), y.size() * sizeof(float)), 16), QString::number(f.values, 16));
        }
    }

    // quantize(dequantize(quantize(x))) == quantize(x) holds by construction for F32, F16, BF16 (a stored value
    // converts back to itself), Q8_0 (the absmax element stores +-127, so the new absmax is 127 d' exactly and
    // d' / d' rounds back to every q) and Q4_0 (the first largest element stores nibble 0, so the new max is
    // -8 d' and each (q - 8) d' / d' + 8.5 truncates to q). It does not hold in general for Q4_1 (max - min of the
    // dequantized block is rounded again), IQ4_NL, Q2_K or Q3_K (their scales come from a search).
    void requantizationIsIdempotent()
    {
        const std::vector<float> cosine = generateData(0.0f, 4096);
        const std::vector<float> normal = gaussian(4096, 7);
        for (GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0}) {
            for (const std::vector<float>* x : {&cosine, &normal}) {
                const Bytes q = quantize(type, *x);
                const Bytes again = quantize(type, dequantize(type, q, int64_t(x->size())));
                QVERIFY2(again == q, ggmlTypeName(type));
            }
        }
    }

    void allZeroBlocks()
    {
        const std::vector<float> zeros(256, 0.0f);
        for (GgmlType type : ggmlTypes()) {
            const Bytes q = quantize(type, zeros);
            Bytes expected(q.size(), 0);
            if (type == GgmlType::Q4_0 || type == GgmlType::IQ4_NL) {
                for (size_t b = 0; b < q.size(); b += 18) {
                    // Q4_0: d = 0 / -8 = -0 (fp16 0x8000), nibble (int8)(0 + 8.5) = 8. IQ4_NL: d = +0, level 8.
                    expected[b + 1] = type == GgmlType::Q4_0 ? 0x80 : 0x00;
                    std::fill(expected.begin() + long(b) + 2, expected.begin() + long(b) + 18, 0x88);
                }
            }
            COMPARE_BYTES(q, expected);
            const std::vector<float> y = dequantize(type, q, 256);
            QVERIFY2(std::all_of(y.begin(), y.end(), [](float v) { return v == 0.0f; }), ggmlTypeName(type));
        }
    }

    // Values of +-1e-16, below GROUP_MAX_EPS (1e-15): IQ4_NL and Q3_K treat the groups as all zero (IQ4_NL scale
    // 0 with every level 8, Q3_K all bytes 0), while Q8_0 divides by its scale anyway: d = 1e-16 / 127 underflows
    // to fp16 0 but id = 1 / d still maps the values to +-127. Every type dequantizes them to 0.
    void tinyBlocks()
    {
        std::vector<float> tiny(256);
        for (size_t i = 0; i < tiny.size(); ++i)
            tiny[i] = (i * 7 % 5 < 2 ? -1.0f : 1.0f) * 1e-16f;
        Bytes iq4(size_t(ggmlRowBytes(GgmlType::IQ4_NL, 256)), 0x88), q8;
        for (size_t b = 0; b < iq4.size(); b += 18)
            iq4[b] = iq4[b + 1] = 0;
        for (size_t i = 0; i < tiny.size(); ++i) {
            if (i % 32 == 0)
                appendHalf(q8, 0x0000);
            q8.push_back(uint8_t(int8_t(tiny[i] < 0 ? -127 : 127)));
        }
        COMPARE_BYTES(quantize(GgmlType::IQ4_NL, tiny), iq4);
        COMPARE_BYTES(quantize(GgmlType::Q3_K, tiny), Bytes(110, 0));
        COMPARE_BYTES(quantize(GgmlType::Q8_0, tiny), q8);
        for (GgmlType type : quantizedTypes()) {
            const std::vector<float> y = dequantize(type, quantize(type, tiny), 256);
            QVERIFY2(std::all_of(y.begin(), y.end(), [](float v) { return v == 0.0f; }), ggmlTypeName(type));
        }
    }

    // One value of 1000 among values below 0.01: the outlier comes back within 2^-10 relatively (fp16 rounding
    // of the scale that it sets is 2^-11), every output is finite, and for the 32-element types the other blocks
    // are exactly what they are without the outlier.
    void outlierBlock()
    {
        std::vector<float> x(256);
        for (size_t i = 0; i < x.size(); ++i)
            x[i] = 0.01f * std::sin(0.37f * float(i));
        std::vector<float> withOutlier = x;
        withOutlier[37] = 1000.0f;
        for (GgmlType type : quantizedTypes()) {
            const Bytes q = quantize(type, withOutlier);
            const std::vector<float> y = dequantize(type, q, 256);
            QVERIFY2(std::all_of(y.begin(), y.end(), [](float v) { return std::isfinite(v); }), ggmlTypeName(type));
            QVERIFY2(std::fabs(y[37] - 1000.0f) <= 1000.0f * 0x1.0p-10f,
                     qPrintable(QString("%1: %2").arg(ggmlTypeName(type)).arg(double(y[37]))));
            const int block = ggmlTypeTraits(type).blockSize;
            if (block == 32) {
                const Bytes plain = quantize(type, x);
                const size_t bb = size_t(ggmlTypeTraits(type).blockBytes);
                QVERIFY(std::equal(q.begin(), q.begin() + long(bb), plain.begin()));
                QVERIFY(std::equal(q.begin() + long(2 * bb), q.end(), plain.begin() + long(2 * bb)));
                QVERIFY(!std::equal(q.begin() + long(bb), q.begin() + long(2 * bb), plain.begin() + long(bb)));
            }
        }
    }

    // Values in [-4, -0.5]. Q8_0, Q4_0 and Q4_1 stay within half a step plus the fp16 rounding (2^-11 relative) of
    // the step times the largest level magnitude (127, 8, 15), and of Q4_1's min. Every type stays below a relative
    // RMSE ceiling about 1.5 times what ggml's reference gives on these values; a sign or min mistake would cost
    // errors of order 1.
    void negativeOnlyBlocks()
    {
        std::vector<float> x(512);
        for (size_t i = 0; i < x.size(); ++i)
            x[i] = -2.25f - 1.75f * std::cos(0.91f * float(i) + 0.3f);
        struct Limit {
            GgmlType type;
            double relRmse;
            int maxLevel; // 0: no per-element bound
        };
        const Limit limits[] = {{GgmlType::Q8_0, 0.006, 127}, {GgmlType::Q4_0, 0.08, 8}, {GgmlType::Q4_1, 0.04, 15},
                                {GgmlType::IQ4_NL, 0.08, 0},  {GgmlType::Q3_K, 0.16, 0}, {GgmlType::Q2_K, 0.18, 0}};
        for (const Limit& l : limits) {
            const std::vector<float> y = dequantize(l.type, quantize(l.type, x), int64_t(x.size()));
            const double rel = relativeRmse(x, y);
            QVERIFY2(rel < l.relRmse, qPrintable(QString("%1: %2").arg(ggmlTypeName(l.type)).arg(rel)));
            if (l.maxLevel == 0)
                continue;
            for (size_t b = 0; b < x.size(); b += 32) {
                const auto [lo, hi] = std::minmax_element(x.begin() + long(b), x.begin() + long(b) + 32);
                // amax / 127, amax / 8 (every value is negative) or (max - min) / 15
                const float step = l.type == GgmlType::Q4_1 ? (*hi - *lo) / 15 : -*lo / float(l.maxLevel);
                const float minRounding = l.type == GgmlType::Q4_1 ? std::fabs(*lo) * 0x1.0p-11f : 0.0f;
                const float bound = 0.5f * step + float(l.maxLevel) * step * 0x1.0p-11f + minRounding;
                for (size_t i = b; i < b + 32; ++i)
                    QVERIFY2(std::fabs(y[i] - x[i]) <= bound, qPrintable(QString("%1 element %2: %3 vs %4")
                                                                             .arg(ggmlTypeName(l.type))
                                                                             .arg(i)
                                                                             .arg(double(y[i]))
                                                                             .arg(double(x[i]))));
            }
        }
    }

    // A tensor of 3 rows x 512 is its rows one after another, each row its blocks one after another, and every
    // block is the quantization of its own elements alone; dequantizing is the same per row.
    void rowsAndBlocksLayout()
    {
        const int64_t rows = 3, rowLength = 512;
        const std::vector<float> x = gaussian(size_t(rows * rowLength), 11);
        for (GgmlType type : ggmlTypes()) {
            const Bytes all = quantize(type, x, rows);
            const int64_t rowBytes = ggmlRowBytes(type, rowLength);
            QCOMPARE(int64_t(all.size()), rows * rowBytes);
            const std::vector<float> back = dequantize(type, all, rows * rowLength, rows);
            const GgmlTypeTraits& t = ggmlTypeTraits(type);
            for (int64_t r = 0; r < rows; ++r) {
                const std::vector<float> row(x.begin() + r * rowLength, x.begin() + (r + 1) * rowLength);
                const Bytes alone = quantize(type, row);
                QVERIFY2(std::equal(alone.begin(), alone.end(), all.begin() + r * rowBytes), ggmlTypeName(type));
                const std::vector<float> rowBack = dequantize(type, alone, rowLength);
                QVERIFY(std::equal(rowBack.begin(), rowBack.end(), back.begin() + r * rowLength));
                for (int64_t b = 0; b < rowLength / t.blockSize; ++b) {
                    const std::vector<float> block(row.begin() + b * t.blockSize, row.begin() + (b + 1) * t.blockSize);
                    const Bytes one = quantize(type, block);
                    QVERIFY(std::equal(one.begin(), one.end(), all.begin() + r * rowBytes + b * t.blockBytes));
                }
            }
        }
    }

    // Relative RMSE sqrt(sum (x - y)^2 / sum x^2) on 4096 x 256 N(0, 1) weights, for the export documentation.
    // More bits must mean less error: F32 exact < F16 < BF16 < Q8_0 < the 4-bit types < Q3_K < Q2_K.
    void gaussianRelativeRmse()
    {
        const int64_t rows = 4096, rowLength = 256;
        const std::vector<float> x = gaussian(size_t(rows * rowLength), 2024);
        std::map<GgmlType, double> rel;
        for (GgmlType type : ggmlTypes()) {
            const std::vector<float> y = dequantize(type, quantize(type, x, rows), rows * rowLength, rows);
            rel[type] = relativeRmse(x, y);
            qInfo("%-6s %6.3f bits/weight  relative RMSE on N(0,1) %.5f", ggmlTypeName(type), ggmlBitsPerElement(type),
                  rel[type]);
        }
        QVERIFY(rel[GgmlType::F32] == 0.0);
        QVERIFY(rel[GgmlType::F16] > 0 && rel[GgmlType::F16] < rel[GgmlType::BF16]);
        QVERIFY(rel[GgmlType::BF16] < rel[GgmlType::Q8_0]);
        for (GgmlType four : {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::IQ4_NL}) {
            QVERIFY(rel[GgmlType::Q8_0] < rel[four]);
            QVERIFY(rel[four] < rel[GgmlType::Q3_K]);
        }
        QVERIFY(rel[GgmlType::Q3_K] < rel[GgmlType::Q2_K]);
    }
};

QTEST_GUILESS_MAIN(TestGgmlTypes)
#include "test_ggml_types.moc"

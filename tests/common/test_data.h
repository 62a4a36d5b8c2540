// Locating ../shared/data from tests. A test that needs it skips with a clear message when it is absent,
// and fails instead when QPRUNER_REQUIRE_DATA=1 (as .ci/run sets).
#pragma once

#include <QtTest/QtTest>

#include <cstdlib>
#include <exception>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <string>

#include "qpruner/error.h"
#include "qpruner/model_config.h"

namespace qpruner::testing {

inline std::filesystem::path sharedDataDir()
{
    if (const char* env = std::getenv("QPRUNER_SHARED_DATA"); env && *env)
        return env;
    return QPRUNER_SHARED_DATA_DIR; // compile definition from the CMake cache variable
}

inline bool dataRequired()
{
    const char* env = std::getenv("QPRUNER_REQUIRE_DATA");
    return env && std::string(env) == "1";
}

// Directory with test fixtures committed to the repository (tests/data).
inline std::filesystem::path fixtureDir() { return QPRUNER_TEST_FIXTURES_DIR; }

// The message of the E that `f` throws, or "NO THROW" / "WRONG TYPE: ..." for a QCOMPARE or contains() check.
template <typename E>
QString expectThrow(const std::function<void()>& f)
{
    try {
        f();
    } catch (const E& e) {
        return QString::fromStdString(e.what());
    } catch (const std::exception& e) {
        return QStringLiteral("WRONG TYPE: ") + e.what();
    }
    return QStringLiteral("NO THROW");
}

// Decoder layers of stories260K's shape: D=64, 8 heads over 4 KV heads (head_dim 8), ffn 172, vocab 512, so
// q/o [64, 64], k/v [32, 64], gate/up [172, 64], down [64, 172].
inline ModelConfig storiesShapedConfig(int layers = 2, bool tied = false, bool bias = false)
{
    ModelConfig c;
    c.hiddenSize = 64;
    c.headDim = 8;
    c.vocabSize = 512;
    c.maxSeqLen = 256;
    c.tiedEmbeddings = tied;
    c.attentionBias = bias;
    c.layers.assign(static_cast<size_t>(layers), LayerShape{8, 4, 172});
    return c;
}

// Runs `fn`, which must throw exactly `E` (not another qpruner::Error) with every needle in its message.
template <class E>
bool throwsWith(const std::function<void()>& fn, std::initializer_list<std::string> needles, std::string* why)
{
    try {
        fn();
        *why = "nothing was thrown";
    } catch (const std::exception& e) {
        if (!dynamic_cast<const E*>(&e)) {
            *why = std::string(dynamic_cast<const qpruner::Error*>(&e) ? "wrong error type: " : "untyped exception: ") +
                   e.what();
            return false;
        }
        for (const std::string& needle : needles)
            if (std::string(e.what()).find(needle) == std::string::npos) {
                *why = "message lacks '" + needle + "': " + e.what();
                return false;
            }
        return true;
    }
    return false;
}

} // namespace qpruner::testing

// Fails the test unless `expr` throws exactly E with every given needle in its message.
#define VERIFY_THROWS(E, expr, ...)                                                                       \
    do {                                                                                                 \
        std::string why_;                                                                                \
        const bool ok_ = qpruner::testing::throwsWith<E>([&] { (void)(expr); }, {__VA_ARGS__}, &why_); \
        QVERIFY2(ok_, (std::string(#E " expected from " #expr ": ") + why_).c_str());                    \
    } while (0)

// Declares `var` as the absolute path of `rel` under the shared data directory, or skips/fails the test.
#define QPRUNER_SHARED_FILE(var, rel)                                                                   \
    const std::filesystem::path var = qpruner::testing::sharedDataDir() / (rel);                        \
    do {                                                                                                \
        if (!std::filesystem::exists(var)) {                                                            \
            const QByteArray msg_ = QByteArray("shared data file missing: ") +                          \
                                    QByteArray::fromStdString(var.string()) +                           \
                                    " (set QPRUNER_SHARED_DATA or the CMake cache variable)";           \
            if (qpruner::testing::dataRequired())                                                       \
                QFAIL(msg_.constData());                                                                \
            QSKIP(msg_.constData());                                                                    \
        }                                                                                               \
    } while (0)

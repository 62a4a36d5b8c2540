// Locating ../shared/data from tests. A test that needs it skips with a clear message when it is absent,
// and fails instead when QPRUNER_REQUIRE_DATA=1 (as .ci/run sets).
#pragma once

#include <QtTest/QtTest>

#include <cstdlib>
#include <exception>
#include <filesystem>
#include <functional>
#include <string>

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

} // namespace qpruner::testing

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

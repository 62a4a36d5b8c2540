// Our tokenizer.json encoder against Hugging Face's own tokenizers: every tokenizer under
// <shared data>/tokenizers/ (Mistral-7B, Qwen3, Gemma 3, Llama-3.1, DeepSeek-V3) encodes the same texts with
// qpruner::loadTokenizer and with npm @huggingface/tokenizers (tests/tools/hf_encode.mjs, run with node), and the
// ids must be identical: (a) the first 200 KB of WikiText-2 raw test as one string, (b) each of its lines,
// (c) an adversarial set (whitespace runs, CR/LF, accents in NFC and NFD, CJK, emoji and ZWJ sequences, digit
// runs, special-token strings whole and cut, BOM, U+000B / U+0085, control characters). The agreement is
// printed per file; decode(encode(x)) must give WikiText back.
// Llama-2's tokenizer.model has no tokenizer.json: its ids are checked against libsentencepiece's in test_tokenizer.
// The npm package lives in the build directory (scripts/run-tests.sh installs it there; QPRUNER_NODE_MODULES
// overrides the place). Without node or the package the test skips, or fails when QPRUNER_REQUIRE_DATA=1.
#include <QtTest/QtTest>

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "qpruner/tokenizer.h"
#include "test_data.h"

namespace {

std::string readAll(const std::filesystem::path& path)
{
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// The first `bytes` bytes of `text`, cut back to a character boundary.
std::string prefixOf(const std::string& text, std::size_t bytes)
{
    std::string out = text.substr(0, bytes);
    std::size_t end = out.size();
    while (end > 0 && (static_cast<unsigned char>(out[end - 1]) & 0xC0) == 0x80)
        --end;
    if (end > 0 && static_cast<unsigned char>(out[end - 1]) >= 0xC0) {
        const auto lead = static_cast<unsigned char>(out[end - 1]);
        const std::size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
        if (out.size() - (end - 1) < need)
            out.resize(end - 1);
    }
    return out;
}

std::vector<std::string> adversarial(const std::vector<std::string>& specials)
{
    std::vector<std::string> t = {
        " ", "  ", "   ", "\t", "\t\t x", "\n", "\r\n", "\r", "a\r\nb\rc\nd", "\n\n\n", " \n \n ",
        "Hello world", " Hello world", "Hello world ", "  Hello   world  ", "Hello\tworld", "Hello\n\nworld",
        "x  \n  y", "trailing spaces   ", "   leading spaces", "tab\t\tend\t",
        "caf\xC3\xA9", "cafe\xCC\x81", "\xC3\x85ngstr\xC3\xB6m", "A\xCC\x8Angstro\xCC\x88m", "\xEF\xAC\x81nance",
        "\xE2\x84\xAB", "\xE1\xBA\x9B\xCC\xA3",
        "\xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C\xE3\x80\x82",
        "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x81\xAE\xE3\x83\x86\xE3\x82\xAD\xE3\x82\xB9\xE3\x83\x88 and English",
        "\xED\x95\x9C\xEA\xB5\xAD\xEC\x96\xB4 \xED\x85\x8C\xEC\x8A\xA4\xED\x8A\xB8",
        "\xF0\x9F\x98\x80", "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7 family",
        "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD ok", "\xF0\x9F\x87\xAB\xF0\x9F\x87\xB7 flag", "a\xE2\x80\x8B" "b",
        "1", "12", "123", "1234", "12345678901234567890", "3.14159", "1,000,000", "x1y22z333", "\xD9\xA1\xD9\xA2\xD9\xA3",
        "I'm you're he'll they've it's we'd SHE'S", "don't DON'T", "'s 'S", "(a) [b] {c} <d>", "!!!???...",
        "@user #tag $100 %50 ^_^ &&", "e-mail: a.b@c.de, https://x.y/z?q=1#f", "a--b__c", "\"quoted\" 'single'",
        "\xEF\xBB\xBF" "BOM at start", "mid\xEF\xBB\xBF" "BOM", " \xEF\xBB\xBF x", "a\x0B" "b", "a \x0B b", "x\xC2\x85y", "x \xC2\x85 y", "ctl\x01\x02\x03\x7F", "nul\x1F unit sep",
        "\xC2\xA0nbsp\xC2\xA0", "\xE3\x80\x80ideographic space", "line\xE2\x80\xA8sep", "\xE2\x80\x83" "em space",
        "\xCE\xA3\xCE\xB9\xCF\x83\xCF\x85\xCF\x86\xCE\xBF\xCF\x82 \xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82",
        "\xD8\xA7\xD9\x84\xD8\xB9\xD8\xB1\xD8\xA8\xD9\x8A\xD8\xA9", "\xE0\xA4\xB9\xE0\xA4\xBF\xE0\xA4\x82\xE0\xA4\xA6\xE0\xA5\x80",
        "\xE2\x96\x81" "already\xE2\x96\x81" "escaped", "<0x41>", "<unk>", "<s>", "</s>", "<s>Hello</s>", " <s> x",
        "x<s>", "<|endoftext|>", "<|begin_of_text|>hi", "<start_of_turn>user\nhi<end_of_turn>",
        "<\xEF\xBD\x9C" "begin\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>", "<|im_start|>", "<|im_", "<start_of", "</",
    };
    for (const std::string& s : specials) {
        t.push_back(s);
        t.push_back("a " + s + " b");
        t.push_back(s + s);
        t.push_back(prefixOf(s, s.size() / 2));
        t.push_back(" " + s + "\n");
    }
    return t;
}

struct Agreement {
    std::size_t same = 0;
    std::size_t total = 0;
    std::string firstMismatch;
};

std::string escaped(const std::string& s)
{
    std::string out;
    for (const char c : s.substr(0, 120)) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7F) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02X", u);
            out += buf;
        } else {
            out += c;
        }
    }
    return out + (s.size() > 120 ? "..." : "");
}

std::string idsText(const std::vector<std::int32_t>& ids, std::size_t from)
{
    std::string out;
    for (std::size_t i = from; i < ids.size() && i < from + 12; ++i)
        out += std::to_string(ids[i]) + " ";
    return out;
}

} // namespace

// Skips the test function with `msg`, or fails it when QPRUNER_REQUIRE_DATA=1.
#define SKIP_OR_FAIL(msg)                                                                                  \
    do {                                                                                                   \
        const QByteArray msg_ = (msg);                                                                     \
        if (qpruner::testing::dataRequired())                                                              \
            QFAIL(msg_.constData());                                                                       \
        QSKIP(msg_.constData());                                                                           \
    } while (0)

class TestTokenizerReference : public QObject {
    Q_OBJECT

private:
    std::filesystem::path modules_;
    std::string wikitext_;


private slots:
    void initTestCase()
    {
        const char* env = std::getenv("QPRUNER_NODE_MODULES");
        modules_ = env && *env ? std::filesystem::path(env) : std::filesystem::path(QPRUNER_NODE_MODULES_DIR);
    }

    void matchesHuggingFace_data()
    {
        QTest::addColumn<QString>("dir");
        const auto root = qpruner::testing::sharedDataDir() / "tokenizers";
        for (const char* name : {"mistral-7b-v0.1", "qwen3", "gemma-3", "llama-3.1", "deepseek-v3"})
            QTest::newRow(name) << QString::fromStdString((root / name).string());
    }

    void matchesHuggingFace()
    {
        QFETCH(QString, dir);
        const std::filesystem::path tokDir = dir.toStdString();
        QPRUNER_SHARED_FILE(wiki, "text/wikitext-2-raw/wiki.test.raw");
        if (!std::filesystem::exists(tokDir / "tokenizer.json"))
            SKIP_OR_FAIL(QByteArray("shared data file missing: ") + QByteArray::fromStdString((tokDir / "tokenizer.json").string()));
        const QString node = QStandardPaths::findExecutable("node");
        if (node.isEmpty())
            SKIP_OR_FAIL("node is not on PATH: cannot run Hugging Face's @huggingface/tokenizers");
        if (!std::filesystem::exists(modules_ / "@huggingface/tokenizers/package.json"))
            SKIP_OR_FAIL(QByteArray("npm package @huggingface/tokenizers is not installed under ") +
                       QByteArray::fromStdString(modules_.string()) +
                       " (scripts/run-tests.sh installs it; or set QPRUNER_NODE_MODULES)");

        if (wikitext_.empty())
            wikitext_ = prefixOf(readAll(wiki), 200 * 1000);
        const auto tok = qpruner::loadTokenizer(tokDir / "tokenizer.json");
        const nlohmann::json tj = nlohmann::json::parse(readAll(tokDir / "tokenizer.json"));
        std::vector<std::string> specials;
        for (const auto& t : tj["added_tokens"])
            if (t.value("special", false) && specials.size() < 8)
                specials.push_back(t["content"].get<std::string>());

        // Texts: [0] the whole 200 KB, then its lines (with their newline), then the adversarial set.
        std::vector<std::string> texts{wikitext_};
        std::size_t lineCount = 0;
        for (std::size_t start = 0; start < wikitext_.size();) {
            std::size_t end = wikitext_.find('\n', start);
            end = end == std::string::npos ? wikitext_.size() : end + 1;
            texts.push_back(wikitext_.substr(start, end - start));
            ++lineCount;
            start = end;
        }
        const std::vector<std::string> adv = adversarial(specials);
        texts.insert(texts.end(), adv.begin(), adv.end());

        QTemporaryDir tmp;
        const std::filesystem::path in = std::filesystem::path(tmp.path().toStdString()) / "texts.json";
        const std::filesystem::path out = std::filesystem::path(tmp.path().toStdString()) / "ids.json";
        std::ofstream(in, std::ios::binary) << nlohmann::json(texts).dump();
        QProcess proc;
        proc.setProcessChannelMode(QProcess::MergedChannels);
        const auto t0 = std::chrono::steady_clock::now();
        proc.start(node, {QStringLiteral(QPRUNER_HF_ENCODE_SCRIPT), QString::fromStdString(modules_.string()),
                          dir, QString::fromStdString(in.string()), QString::fromStdString(out.string())});
        QVERIFY2(proc.waitForFinished(120000), "node hf_encode.mjs did not finish in 120 s");
        QVERIFY2(proc.exitStatus() == QProcess::NormalExit && proc.exitCode() == 0,
                 (QByteArray("node hf_encode.mjs failed: ") + proc.readAll()).constData());
        const double nodeSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const nlohmann::json reference = nlohmann::json::parse(readAll(out));
        const auto& refIds = reference.at("ids");
        QCOMPARE(refIds.size(), texts.size());

        Agreement whole, lines, adversarialSet;
        std::size_t roundTrips = 0;
        std::string firstRoundTripFailure;
        for (std::size_t i = 0; i < texts.size(); ++i) {
            Agreement& a = i == 0 ? whole : i <= lineCount ? lines : adversarialSet;
            const std::vector<std::int32_t> ours = tok->encode(texts[i]);
            const auto theirs = refIds[i].get<std::vector<std::int32_t>>();
            // The decoder gives WikiText back exactly (each file's decoder undoes its normalizer).
            if (i <= lineCount) {
                if (tok->decode(ours) == texts[i])
                    ++roundTrips;
                else if (firstRoundTripFailure.empty())
                    firstRoundTripFailure = "decode(encode(x)) != x for '" + escaped(texts[i]) + "': '" +
                                            escaped(tok->decode(ours)) + "'";
            }
            ++a.total;
            if (ours == theirs) {
                ++a.same;
                continue;
            }
            if (a.firstMismatch.empty()) {
                std::size_t at = 0;
                while (at < ours.size() && at < theirs.size() && ours[at] == theirs[at])
                    ++at;
                a.firstMismatch = "text '" + escaped(texts[i]) + "': first difference at id " + std::to_string(at) +
                                  ": ours " + idsText(ours, at) + "| HF " + idsText(theirs, at);
            }
        }
        const auto pct = [](const Agreement& a) { return 100.0 * static_cast<double>(a.same) / static_cast<double>(a.total); };
        qInfo("%s vs @huggingface/tokenizers %s: whole 200 KB %s; lines %zu/%zu (%.2f%%); adversarial %zu/%zu "
              "(%.2f%%); decode round trip %zu/%zu; node %.1f s",
              tokDir.filename().string().c_str(), reference.value("version", std::string("?")).c_str(),
              whole.same ? "identical" : "DIFFERENT", lines.same, lines.total, pct(lines), adversarialSet.same,
              adversarialSet.total, pct(adversarialSet), roundTrips, lineCount + 1, nodeSeconds);
        QVERIFY2(roundTrips == lineCount + 1, firstRoundTripFailure.c_str());
        for (const Agreement* a : {&whole, &lines, &adversarialSet})
            QVERIFY2(a->same == a->total, a->firstMismatch.c_str());
    }
};

QTEST_GUILESS_MAIN(TestTokenizerReference)
#include "test_tokenizer_reference.moc"

// Tests of the recovery fine-tune's training data (finetune/train_data): the Alpaca prompt template, alpaca-lora's
// tokenization (masking, EOS, cutoff, dropped records) with a byte-level fake tokenizer whose ids can be written
// out by hand, the train/validation split of both formats, every error path, and the real shared data
// (alpaca_small_2000.json and the TinyStories subset with the stories260K tokenizer).
#include "test_data.h"

#include "finetune/train_data.h"
#include "qpruner/error.h"
#include "qpruner/tokenizer.h"

#include <nlohmann/json.hpp>

#include <QTemporaryDir>
#include <QtTest/QtTest>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <set>

using namespace qpruner::finetune;
using qpruner::ConfigError;
using qpruner::FileError;
using qpruner::FormatError;
using qpruner::testing::expectThrow;
using Ids = std::vector<int32_t>;

namespace {

// One token per byte: id = byte + 3; BOS = 1, EOS = 2 (0 unused).
class ByteTokenizer : public qpruner::Tokenizer {
public:
    explicit ByteTokenizer(int32_t eos = 2) : eos_(eos) {}
    Ids encode(std::string_view text, bool addBos = false, bool addEos = false) const override
    {
        Ids out;
        if (addBos)
            out.push_back(1);
        for (const char c : text)
            out.push_back(static_cast<int32_t>(static_cast<unsigned char>(c)) + 3);
        if (addEos && eos_ >= 0)
            out.push_back(eos_);
        return out;
    }
    std::string decode(const Ids& ids) const override
    {
        std::string out;
        for (const auto id : ids)
            if (id >= 3)
                out += static_cast<char>(id - 3);
        return out;
    }
    int32_t vocabSize() const override { return 259; }
    int32_t bosId() const override { return 1; }
    int32_t eosId() const override { return eos_; }
    std::string piece(int32_t id) const override { return id >= 3 ? std::string(1, char(id - 3)) : "<s>"; }
    std::string kind() const override { return "bytes"; }

private:
    int32_t eos_;
};

Ids bytesOf(const std::string& text)
{
    Ids out;
    for (const char c : text)
        out.push_back(static_cast<int32_t>(static_cast<unsigned char>(c)) + 3);
    return out;
}

Ids concat(Ids a, const Ids& b)
{
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

nlohmann::json record(const std::string& instruction, const std::string& input, const std::string& output)
{
    return {{"instruction", instruction}, {"input", input}, {"output", output}};
}

// n records "task k" / "" / "answer k".
std::string numberedRecords(int n)
{
    auto j = nlohmann::json::array();
    for (int k = 0; k < n; ++k)
        j.push_back(record("task " + std::to_string(k), "", "answer " + std::to_string(k)));
    return j.dump();
}

// The record index an example of numberedRecords came from (its tokens are BOS, prompt, output, EOS).
int recordOf(const TrainExample& e, int n)
{
    for (int k = 0; k < n; ++k)
        if (e.tokens == concat(concat({1}, bytesOf(alpacaPrompt("task " + std::to_string(k), "") + "answer " +
                                                    std::to_string(k))),
                               {2}))
            return k;
    return -1;
}

std::vector<int> recordsOf(const std::vector<TrainExample>& examples, int n)
{
    std::vector<int> out;
    for (const auto& e : examples)
        out.push_back(recordOf(e, n));
    return out;
}

DataOptions alpacaOptions(int seqLen = 1024, int64_t validationCount = 0)
{
    DataOptions o;
    o.format = DataFormat::Alpaca;
    o.seqLen = seqLen;
    o.validationCount = validationCount;
    return o;
}

Ids iota(int n)
{
    Ids out(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i)
        out[static_cast<size_t>(i)] = i;
    return out;
}

void writeFile(const std::filesystem::path& path, const std::string& bytes)
{
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string readFile(const std::filesystem::path& path)
{
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

const char* kWithInput = "Below is an instruction that describes a task, paired with an input that provides further "
                         "context. Write a response that appropriately completes the request.\n\n"
                         "### Instruction:\nDo X.\n\n### Input:\nsome input\n\n### Response:\n";
const char* kNoInput = "Below is an instruction that describes a task. Write a response that appropriately completes "
                       "the request.\n\n### Instruction:\nDo X.\n\n### Response:\n";

} // namespace

class TestFinetuneData : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void formatNames()
    {
        QCOMPARE(int(parseDataFormat("text")), int(DataFormat::Text));
        QCOMPARE(int(parseDataFormat("alpaca")), int(DataFormat::Alpaca));
        QCOMPARE(dataFormatName(DataFormat::Text), std::string("text"));
        QCOMPARE(dataFormatName(DataFormat::Alpaca), std::string("alpaca"));
        const QString msg = expectThrow<ConfigError>([] { parseDataFormat("jsonl"); });
        QVERIFY2(msg.contains("'jsonl'") && msg.contains("alpaca"), qPrintable(msg));
    }

    void promptTemplate()
    {
        QCOMPARE(QString::fromStdString(alpacaPrompt("Do X.", "some input")), QString::fromUtf8(kWithInput));
        QCOMPARE(QString::fromStdString(alpacaPrompt("Do X.", "")), QString::fromUtf8(kNoInput));
    }

    void tokenizationAndMasking()
    {
        const ByteTokenizer tok;
        const std::string prompt = alpacaPrompt("Do X.", "some input");
        const auto json = nlohmann::json::array({record("Do X.", "some input", "yes")}).dump();
        const auto data = buildAlpacaData(json, tok, alpacaOptions());
        QCOMPARE(data.records, int64_t(1));
        QCOMPARE(data.droppedRecords, int64_t(0));
        QCOMPARE(data.truncatedRecords, int64_t(0));
        QCOMPARE(data.train.size(), size_t(1));
        QVERIFY(data.validation.empty());
        const auto& e = data.train[0];
        const Ids want = concat(concat({1}, bytesOf(prompt + "yes")), {2});
        QVERIFY(e.tokens == want);
        QCOMPARE(e.promptTokens, int32_t(prompt.size() + 1)); // BOS + the prompt's bytes
        // Targets: the response's 3 bytes and EOS.
        QCOMPARE(TrainData::targetCount(data.train), int64_t(4));
        QCOMPARE(TrainData::targetCount(data.validation), int64_t(0));

        // Input absent or null: the no-input template.
        auto absent = nlohmann::json::array({{{"instruction", "Do X."}, {"output", "yes"}},
                                             {{"instruction", "Do X."}, {"input", nullptr}, {"output", "yes"}}});
        const auto d2 = buildAlpacaData(absent.dump(), tok, alpacaOptions());
        QCOMPARE(d2.train.size(), size_t(2));
        for (const auto& ex : d2.train) {
            QVERIFY(ex.tokens == concat(concat({1}, bytesOf(std::string(kNoInput) + "yes")), {2}));
            QCOMPARE(ex.promptTokens, int32_t(std::string(kNoInput).size() + 1));
        }

        // addEos off: no EOS; a tokenizer without EOS: none either.
        auto noEos = alpacaOptions();
        noEos.addEos = false;
        QVERIFY(buildAlpacaData(json, tok, noEos).train[0].tokens == concat({1}, bytesOf(prompt + "yes")));
        const ByteTokenizer eosless(-1);
        QVERIFY(buildAlpacaData(json, eosless, alpacaOptions()).train[0].tokens == concat({1}, bytesOf(prompt + "yes")));

        // trainOnInputs: nothing masked; the loss starts at token 1.
        auto onInputs = alpacaOptions();
        onInputs.trainOnInputs = true;
        const auto d3 = buildAlpacaData(json, tok, onInputs);
        QCOMPARE(d3.train[0].promptTokens, int32_t(0));
        QVERIFY(d3.train[0].tokens == want);
        QCOMPARE(TrainData::targetCount(d3.train), int64_t(want.size() - 1));
    }

    void cutoff()
    {
        const ByteTokenizer tok;
        const std::string p0 = alpacaPrompt("a", "");
        const std::string p1 = alpacaPrompt("a much longer instruction", "");
        const int lp0 = int(p0.size()) + 1; // with BOS
        const int lp1 = int(p1.size()) + 1;
        QVERIFY(lp1 > lp0 + 5);
        const auto json = nlohmann::json::array({record("a", "", "xyz"), record("a much longer instruction", "", "q")}).dump();

        // Cutoff cuts record 0's response after two bytes (no EOS, truncated) and leaves record 1 no response
        // token: dropped.
        {
            const auto d = buildAlpacaData(json, tok, alpacaOptions(lp0 + 2));
            QCOMPARE(d.records, int64_t(2));
            QCOMPARE(d.droppedRecords, int64_t(1));
            QCOMPARE(d.truncatedRecords, int64_t(2)); // both full encodings were cut
            QCOMPARE(d.train.size(), size_t(1));
            QVERIFY(d.train[0].tokens == concat({1}, bytesOf(p0 + "xy")));
            QCOMPARE(d.train[0].promptTokens, int32_t(lp0));
            QCOMPARE(TrainData::targetCount(d.train), int64_t(2));
        }
        // Exactly at the cutoff without EOS: kept whole, no EOS (no room), not truncated.
        {
            const auto d = buildAlpacaData(json, tok, alpacaOptions(lp0 + 3));
            QCOMPARE(d.truncatedRecords, int64_t(1)); // only record 1
            QCOMPARE(d.droppedRecords, int64_t(1));
            QVERIFY(d.train[0].tokens == concat({1}, bytesOf(p0 + "xyz")));
        }
        // One more token of room: EOS appended.
        {
            const auto d = buildAlpacaData(json, tok, alpacaOptions(lp0 + 4));
            QCOMPARE(d.truncatedRecords, int64_t(1));
            QVERIFY(d.train[0].tokens == concat(concat({1}, bytesOf(p0 + "xyz")), {2}));
        }
        // Record 1's prompt fits exactly, one token of response too: kept with 1 target.
        {
            const auto d = buildAlpacaData(json, tok, alpacaOptions(lp1 + 1));
            QCOMPARE(d.droppedRecords, int64_t(0));
            QCOMPARE(d.truncatedRecords, int64_t(0)); // record 1 fills the cutoff exactly: no room for EOS, nothing cut
            QCOMPARE(d.train.size(), size_t(2));
            QVERIFY(d.train[1].tokens == concat({1}, bytesOf(p1 + "q")));
            QCOMPARE(d.train[1].promptTokens, int32_t(lp1));
            QCOMPARE(TrainData::targetCount({d.train[1]}), int64_t(1));
        }
        // trainOnInputs keeps the record the prompt fills (promptTokens 0), cut at the cutoff.
        {
            auto o = alpacaOptions(lp0 + 2);
            o.trainOnInputs = true;
            const auto d = buildAlpacaData(json, tok, o);
            QCOMPARE(d.droppedRecords, int64_t(0));
            QCOMPARE(d.train.size(), size_t(2));
            QCOMPARE(d.train[1].tokens.size(), size_t(lp0 + 2));
            QCOMPARE(d.train[1].promptTokens, int32_t(0));
            QCOMPARE(TrainData::targetCount(d.train), int64_t(2 * (lp0 + 1)));
        }
    }

    void targetCountArithmetic()
    {
        std::vector<TrainExample> ex(3);
        ex[0].tokens = {1, 5, 6, 7};
        ex[0].promptTokens = 0; // max(0, 1) = 1 -> 3
        ex[1].tokens = {1, 5, 6, 7, 8};
        ex[1].promptTokens = 3; // 2
        ex[2].tokens = {1, 5};
        ex[2].promptTokens = 1; // 1
        QCOMPARE(TrainData::targetCount(ex), int64_t(6));
        QCOMPARE(TrainData::targetCount({}), int64_t(0));
    }

    void alpacaSplit()
    {
        const ByteTokenizer tok;
        const int n = 20;
        const auto json = numberedRecords(n);
        auto o = alpacaOptions(1024, 5);
        const auto a = buildAlpacaData(json, tok, o);
        QCOMPARE(a.records, int64_t(n));
        QCOMPARE(a.validation.size(), size_t(5));
        QCOMPARE(a.train.size(), size_t(15));
        const auto ta = recordsOf(a.train, n), va = recordsOf(a.validation, n);
        // Union is every record, no overlap, each set in file order.
        std::set<int> all(ta.begin(), ta.end());
        all.insert(va.begin(), va.end());
        QCOMPARE(all.size(), size_t(n));
        QVERIFY(!all.count(-1));
        QVERIFY(std::is_sorted(ta.begin(), ta.end()));
        QVERIFY(std::is_sorted(va.begin(), va.end()));
        // A seeded random subset, not simply the first or the last records.
        QVERIFY(va != std::vector<int>({0, 1, 2, 3, 4}));
        QVERIFY(va != std::vector<int>({15, 16, 17, 18, 19}));

        // Same seed: same split; another seed: another split.
        const auto b = buildAlpacaData(json, tok, o);
        QVERIFY(recordsOf(b.validation, n) == va);
        QVERIFY(recordsOf(b.train, n) == ta);
        o.seed = 7;
        const auto c = buildAlpacaData(json, tok, o);
        QCOMPARE(c.validation.size(), size_t(5));
        QVERIFY(recordsOf(c.validation, n) != va);

        // Fraction: round(0.25 * 20) = 5, round(0.1 * 20) = 2, round(0.33 * 20) = 7; 0 -> none.
        auto f = alpacaOptions(1024, -1);
        f.validationFraction = 0.25;
        QCOMPARE(buildAlpacaData(json, tok, f).validation.size(), size_t(5));
        f.validationFraction = 0.1;
        QCOMPARE(buildAlpacaData(json, tok, f).validation.size(), size_t(2));
        f.validationFraction = 0.33;
        QCOMPARE(buildAlpacaData(json, tok, f).validation.size(), size_t(7));
        f.validationFraction = 0.0;
        const auto none = buildAlpacaData(json, tok, f);
        QVERIFY(none.validation.empty());
        std::vector<int> everyRecord;
        for (int k = 0; k < n; ++k)
            everyRecord.push_back(k);
        QVERIFY(recordsOf(none.train, n) == everyRecord);
        // validationCount wins over the fraction.
        f.validationFraction = 0.5;
        f.validationCount = 3;
        QCOMPARE(buildAlpacaData(json, tok, f).validation.size(), size_t(3));

        // maxExamples: the first records, before the split (round(0.5 * 8) = 4).
        auto m = alpacaOptions(1024, -1);
        m.validationFraction = 0.5;
        m.maxExamples = 8;
        const auto d = buildAlpacaData(json, tok, m);
        QCOMPARE(d.records, int64_t(8));
        QCOMPARE(d.train.size() + d.validation.size(), size_t(8));
        QCOMPARE(d.validation.size(), size_t(4));
        for (const int k : recordsOf(d.train, n))
            QVERIFY(k >= 0 && k < 8);
        for (const int k : recordsOf(d.validation, n))
            QVERIFY(k >= 0 && k < 8);
    }

    void alpacaSplitAfterDropping()
    {
        // The split counts kept examples: 4 records, 1 dropped, fraction 0.34 of 3 -> 1.
        const ByteTokenizer tok;
        const std::string longInstr(300, 'i');
        auto j = nlohmann::json::array({record("a", "", "x"), record(longInstr, "", "x"), record("b", "", "y"),
                                        record("c", "", "z")});
        auto o = alpacaOptions(200, -1);
        o.validationFraction = 0.34;
        const auto d = buildAlpacaData(j.dump(), tok, o);
        QCOMPARE(d.records, int64_t(4));
        QCOMPARE(d.droppedRecords, int64_t(1));
        QCOMPARE(d.truncatedRecords, int64_t(1));
        QCOMPARE(d.validation.size(), size_t(1));
        QCOMPARE(d.train.size(), size_t(2));
    }

    void textWindows()
    {
        const Ids stream = iota(42); // 10 windows of 4, 2 tokens left over
        DataOptions o;
        o.seqLen = 4;
        o.validationFraction = 0.2;
        const auto d = buildTextData(stream, o);
        QCOMPARE(d.streamTokens, int64_t(42));
        QCOMPARE(d.records, int64_t(10));
        QCOMPARE(d.train.size(), size_t(8));
        QCOMPARE(d.validation.size(), size_t(2));
        for (size_t w = 0; w < 8; ++w) {
            QVERIFY(d.train[w].tokens == Ids(stream.begin() + long(4 * w), stream.begin() + long(4 * w + 4)));
            QCOMPARE(d.train[w].promptTokens, int32_t(0));
        }
        QVERIFY(d.validation[0].tokens == Ids({32, 33, 34, 35})); // the last windows
        QVERIFY(d.validation[1].tokens == Ids({36, 37, 38, 39}));
        QCOMPARE(TrainData::targetCount(d.train), int64_t(8 * 3));

        // validationCount, zero validation, maxExamples (first windows, before the split).
        o.validationCount = 3;
        QCOMPARE(buildTextData(stream, o).validation.size(), size_t(3));
        o.validationCount = 0;
        const auto all = buildTextData(stream, o);
        QCOMPARE(all.train.size(), size_t(10));
        QVERIFY(all.validation.empty());
        o.validationCount = -1;
        o.maxExamples = 5; // round(0.2 * 5) = 1
        const auto m = buildTextData(stream, o);
        QCOMPARE(m.records, int64_t(5));
        QCOMPARE(m.train.size(), size_t(4));
        QCOMPARE(m.validation.size(), size_t(1));
        QVERIFY(m.validation[0].tokens == Ids({16, 17, 18, 19}));
        // One window and a fraction that rounds to no validation: fine.
        o.maxExamples = -1;
        const auto one = buildTextData(iota(5), o);
        QCOMPARE(one.train.size(), size_t(1));
        QVERIFY(one.validation.empty());
    }

    void optionErrors()
    {
        const ByteTokenizer tok;
        const auto json = numberedRecords(4);
        DataOptions t;
        t.seqLen = 1;
        QString msg = expectThrow<ConfigError>([&] { buildTextData(iota(100), t); });
        QVERIFY2(msg.contains("seqLen") && msg.contains("got 1"), qPrintable(msg));
        auto a = alpacaOptions(1);
        msg = expectThrow<ConfigError>([&] { buildAlpacaData(json, tok, a); });
        QVERIFY2(msg.contains("seqLen") && msg.contains("got 1"), qPrintable(msg));

        for (const double bad : {1.0, -0.1, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
            DataOptions o;
            o.seqLen = 4;
            o.validationFraction = bad;
            msg = expectThrow<ConfigError>([&] { buildTextData(iota(100), o); });
            QVERIFY2(msg.contains("validation fraction") && msg.contains("[0, 1)"), qPrintable(msg));
            auto ao = alpacaOptions(1024, -1);
            ao.validationFraction = bad;
            msg = expectThrow<ConfigError>([&] { buildAlpacaData(json, tok, ao); });
            QVERIFY2(msg.contains("validation fraction"), qPrintable(msg));
        }

        // Stream too short for one window.
        DataOptions s;
        s.seqLen = 4;
        s.validationCount = 0;
        msg = expectThrow<ConfigError>([&] { buildTextData(iota(3), s); });
        QVERIFY2(msg.contains("3 tokens") && msg.contains("too short"), qPrintable(msg));
        msg = expectThrow<ConfigError>([&] { buildTextData({}, s); });
        QVERIFY2(msg.contains("0 tokens"), qPrintable(msg));
        // Enough for one window, not for one training and one validation window.
        s.validationCount = 1;
        msg = expectThrow<ConfigError>([&] { buildTextData(iota(7), s); });
        QVERIFY2(msg.contains("7 tokens") && msg.contains("1 validation"), qPrintable(msg));
        s.validationCount = 10;
        msg = expectThrow<ConfigError>([&] { buildTextData(iota(40), s); });
        QVERIFY2(msg.contains("validationCount 10") && msg.contains("10 window"), qPrintable(msg));
        // A fraction rounding to every window.
        s.validationCount = -1;
        s.validationFraction = 0.9;
        msg = expectThrow<ConfigError>([&] { buildTextData(iota(4), s); });
        QVERIFY2(msg.contains("fraction 0.9"), qPrintable(msg));

        // Alpaca: validation takes every example.
        msg = expectThrow<ConfigError>([&] { buildAlpacaData(json, tok, alpacaOptions(1024, 4), "mine.json"); });
        QVERIFY2(msg.contains("mine.json") && msg.contains("validationCount 4") && msg.contains("no training example"),
                 qPrintable(msg));
        // No example left after dropping.
        msg = expectThrow<ConfigError>([&] { buildAlpacaData(json, tok, alpacaOptions(20), "mine.json"); });
        QVERIFY2(msg.contains("mine.json") && msg.contains("4 of 4") && msg.contains("cutoff of 20"), qPrintable(msg));
        // maxExamples 0.
        auto z = alpacaOptions();
        z.maxExamples = 0;
        msg = expectThrow<ConfigError>([&] { buildAlpacaData(json, tok, z); });
        QVERIFY2(msg.contains("maxExamples"), qPrintable(msg));
    }

    void formatErrors()
    {
        const ByteTokenizer tok;
        const auto o = alpacaOptions();
        auto check = [&](const std::string& json, const std::vector<const char*>& needles) {
            const QString msg = expectThrow<FormatError>([&] { buildAlpacaData(json, tok, o, "alpaca.json"); });
            bool ok = msg.startsWith("alpaca.json: ");
            for (const char* n : needles)
                ok = ok && msg.contains(QString::fromUtf8(n));
            return std::make_pair(ok, msg);
        };
        const auto good = record("i", "", "o").dump();
        const std::vector<std::pair<std::string, std::vector<const char*>>> cases = {
            {"{\"instruction\": \"i\"}", {"expected a JSON array", "object"}},
            {"[" + good + ", 17]", {"record 1 is not an object", "number"}},
            {"[" + good + ", {\"output\": \"o\"}]", {"record 1: \"instruction\" is missing"}},
            {"[{\"instruction\": \"i\"}]", {"record 0: \"output\" is missing"}},
            {"[" + good + "," + good + ", {\"instruction\": \"i\", \"output\": 3}]",
             {"record 2: \"output\" must be a string", "number"}},
            {"[{\"instruction\": null, \"output\": \"o\"}]", {"record 0: \"instruction\" must be a string", "null"}},
            {"[{\"instruction\": \"i\", \"input\": [1], \"output\": \"o\"}]",
             {"record 0: \"input\" must be a string", "array"}},
            {"[" + good + ", {\"instruction\": \"i\", \"output\": \"o\"", {"invalid JSON at byte "}},
            {"", {"invalid JSON at byte 1"}},
        };
        for (const auto& [json, needles] : cases) {
            const auto [ok, msg] = check(json, needles);
            QVERIFY2(ok, qPrintable(QString::fromStdString(json) + " -> " + msg));
        }
        // A malformed record past maxExamples still fails.
        auto m = alpacaOptions();
        m.maxExamples = 1;
        const QString msg = expectThrow<FormatError>(
            [&] { buildAlpacaData("[" + good + ", {\"instruction\": 1, \"output\": \"o\"}]", tok, m, "x.json"); });
        QVERIFY2(msg.contains("x.json: record 1: \"instruction\""), qPrintable(msg));
    }

    void loadFromFiles()
    {
        const ByteTokenizer tok;
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        const std::filesystem::path root = dir.path().toStdString();

        // Text: encoded without BOS/EOS, cut into windows.
        writeFile(root / "t.txt", "abcdefghij");
        DataOptions t;
        t.seqLen = 3;
        t.validationCount = 1;
        const auto d = loadTrainData(root / "t.txt", tok, t);
        QCOMPARE(d.streamTokens, int64_t(10));
        QCOMPARE(d.train.size(), size_t(2));
        QVERIFY(d.train[0].tokens == bytesOf("abc"));
        QVERIFY(d.validation[0].tokens == bytesOf("ghi"));
        // A config error of the text names the file.
        t.seqLen = 20;
        QString msg = expectThrow<ConfigError>([&] { loadTrainData(root / "t.txt", tok, t); });
        QVERIFY2(msg.contains("t.txt") && msg.contains("10 tokens"), qPrintable(msg));
        // Not UTF-8.
        writeFile(root / "bad.txt", std::string("ab\xff\xfe", 4));
        t.seqLen = 2;
        msg = expectThrow<FormatError>([&] { loadTrainData(root / "bad.txt", tok, t); });
        QVERIFY2(msg.contains("bad.txt") && msg.contains("UTF-8"), qPrintable(msg));
        // Missing.
        msg = expectThrow<FileError>([&] { loadTrainData(root / "none.txt", tok, t); });
        QVERIFY2(msg.contains("none.txt"), qPrintable(msg));

        // Alpaca: errors name the file path.
        writeFile(root / "a.json", numberedRecords(6));
        auto a = alpacaOptions(1024, 2);
        const auto ad = loadTrainData(root / "a.json", tok, a);
        QCOMPARE(ad.records, int64_t(6));
        QCOMPARE(ad.validation.size(), size_t(2));
        QCOMPARE(ad.train.size(), size_t(4));
        writeFile(root / "b.json", "[{\"instruction\": \"i\"}]");
        msg = expectThrow<FormatError>([&] { loadTrainData(root / "b.json", tok, a); });
        QVERIFY2(msg.contains(QString::fromStdString((root / "b.json").string()) + ": record 0: \"output\" is missing"),
                 qPrintable(msg));
        msg = expectThrow<FileError>([&] { loadTrainData(root / "none.json", tok, a); });
        QVERIFY2(msg.contains("none.json"), qPrintable(msg));
    }

    void realAlpaca()
    {
        QPRUNER_SHARED_FILE(file, "finetune/alpaca_small_2000.json");
        QPRUNER_SHARED_FILE(tokFile, "models/stories260K/tok512.model");
        const auto tok = qpruner::loadTokenizer(tokFile);
        const auto records = nlohmann::json::parse(readFile(file));
        QCOMPARE(records.size(), size_t(2000));

        auto o = alpacaOptions(256, 200);
        const auto d = loadTrainData(file, *tok, o);
        QCOMPARE(d.records, int64_t(2000));
        QCOMPARE(d.validation.size(), size_t(200));
        QCOMPARE(int64_t(d.train.size() + d.validation.size()) + d.droppedRecords, int64_t(2000));
        QVERIFY(d.truncatedRecords > 0); // the tiny vocabulary makes long encodings
        for (const auto* set : {&d.train, &d.validation})
            for (const auto& e : *set) {
                QVERIFY(e.tokens.size() >= 2 && e.tokens.size() <= 256);
                QCOMPARE(e.tokens[0], tok->bosId());
                QVERIFY(e.promptTokens > 0 && size_t(e.promptTokens) < e.tokens.size());
            }
        QVERIFY(TrainData::targetCount(d.train) > 0);

        // The first records unsplit: the decoded prompt part is the template's rendering of the record.
        auto first = alpacaOptions(1024, 0);
        first.maxExamples = 4;
        const auto f = loadTrainData(file, *tok, first);
        QCOMPARE(f.droppedRecords, int64_t(0));
        QCOMPARE(f.train.size(), size_t(4));
        bool sawInput = false, sawNoInput = false;
        for (size_t k = 0; k < 4; ++k) {
            const auto& r = records[k];
            const std::string input = r.value("input", std::string());
            (input.empty() ? sawNoInput : sawInput) = true;
            const std::string prompt = alpacaPrompt(r.at("instruction").get<std::string>(), input);
            const auto& e = f.train[k];
            const Ids head(e.tokens.begin(), e.tokens.begin() + e.promptTokens);
            QCOMPARE(QString::fromStdString(tok->decode(head)), QString::fromStdString(prompt));
            QCOMPARE(QString::fromStdString(tok->decode(e.tokens)),
                     QString::fromStdString(prompt + r.at("output").get<std::string>()));
            QCOMPARE(e.tokens.back(), tok->eosId());
        }
        QVERIFY(sawInput && sawNoInput);
    }

    void realText()
    {
        QPRUNER_SHARED_FILE(file, "text/tinystories/tinystories_valid_subset.txt");
        QPRUNER_SHARED_FILE(tokFile, "models/stories260K/tok512.model");
        const auto tok = qpruner::loadTokenizer(tokFile);
        DataOptions o;
        o.seqLen = 256;
        o.validationFraction = 0.1;
        const auto d = loadTrainData(file, *tok, o);
        const Ids stream = tok->encode(readFile(file));
        QCOMPARE(d.streamTokens, int64_t(stream.size()));
        const int64_t windows = d.streamTokens / 256;
        QVERIFY(windows > 10);
        QCOMPARE(d.records, windows);
        QCOMPARE(int64_t(d.validation.size()), int64_t(std::llround(0.1 * double(windows))));
        QCOMPARE(int64_t(d.train.size() + d.validation.size()), windows);
        Ids joined;
        for (const auto* set : {&d.train, &d.validation})
            for (const auto& e : *set) {
                QCOMPARE(e.tokens.size(), size_t(256));
                joined.insert(joined.end(), e.tokens.begin(), e.tokens.end());
            }
        QVERIFY(joined == Ids(stream.begin(), stream.begin() + static_cast<std::ptrdiff_t>(windows * 256)));
    }
};

QTEST_APPLESS_MAIN(TestFinetuneData)
#include "test_finetune_data.moc"

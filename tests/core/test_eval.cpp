// Evaluation against the independent float64 implementation (tests/data/reference, scripts/reference):
// perplexity windows and NLL, multiple-choice scores per item (lm-evaluation-harness protocol), HellaSwag
// preprocessing, task file errors, and generation (greedy reference ids, seeded sampling).
#include <QtTest/QtTest>

#include <cmath>
#include <fstream>

#include "eval/generation.h"
#include "eval/multiple_choice.h"
#include "eval/perplexity.h"
#include "eval/task_data.h"
#include "io/json_file.h"
#include "model/checkpoint.h"
#include "model/dtype.h"
#include "model_fixtures.h"
#include "qpruner/error.h"
#include "qpruner/tokenizer.h"

using namespace qpruner;
using namespace qpruner::testing;

namespace {

std::filesystem::path modelPath(const std::string& key)
{
    return sharedDataDir() / (key == "stories260K" ? "models/stories260K/stories260K.bin" : "models/llama2xs-64d/model.bin");
}

bool closeRel(double a, double b, double rel) { return std::abs(a - b) <= rel * std::max(std::abs(a), std::abs(b)); }

} // namespace

class TestEval : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase() { model::setIntraOpThreads(0); }

    void perplexityMatchesReference()
    {
        QPRUNER_SHARED_FILE(tokPath, "models/stories260K/tok512.model");
        const auto ref = referenceJson("ppl.json");
        const auto tok = loadTokenizer(tokPath);
        std::map<std::string, std::vector<int32_t>> streams;
        for (const auto& c : ref["cases"]) {
            const std::string key = c["model"], file = c["file"];
            QPRUNER_SHARED_FILE(textPath, file);
            if (!streams.count(file))
                streams[file] = tok->encode(io::readFileBytes(textPath));
            const auto& stream = streams[file];
            QCOMPARE(int64_t(stream.size()), c["n_stream_tokens"].get<int64_t>());
            const auto m = model::loadModel(modelPath(key));
            eval::PerplexityOptions o;
            o.seqLen = c["seq_len"];
            o.bos = c["bos"];
            o.maxWindows = c["max_windows"];
            o.batchSize = 4;
            const auto r = eval::evaluatePerplexity(*m, stream, o);
            const QString label = QString::fromStdString(key + " " + file + (o.bos ? " bos" : ""));
            QCOMPARE(r.windows, c["n_windows"].get<int64_t>());
            QCOMPARE(r.predictedTokens, c["n_predicted"].get<int64_t>());
            // 4 significant digits is the requirement; fp32 against fp64 gives ~1e-6 relative.
            QVERIFY2(closeRel(r.ppl, c["ppl"].get<double>(), 1e-5),
                     qPrintable(label + QString(": ppl %1 vs %2").arg(r.ppl, 0, 'g', 10).arg(c["ppl"].get<double>(), 0, 'g', 10)));
            const auto sums = c["window_nll_sums"].get<std::vector<double>>();
            QCOMPARE(r.windowNll.size(), sums.size());
            for (size_t w = 0; w < sums.size(); ++w)
                QVERIFY2(closeRel(r.windowNll[w], sums[w], 1e-5), qPrintable(label + QString(" window %1").arg(w)));
        }
    }

    void perplexityBatchSizeDoesNotChangeResult()
    {
        QPRUNER_SHARED_FILE(tokPath, "models/stories260K/tok512.model");
        QPRUNER_SHARED_FILE(textPath, "text/tinystories/tinystories_valid_subset.txt");
        const auto tok = loadTokenizer(tokPath);
        auto stream = tok->encode(io::readFileBytes(textPath).substr(0, 20000));
        const auto m = model::loadModel(modelPath("stories260K"));
        eval::PerplexityOptions o;
        o.seqLen = 128;
        o.batchSize = 1;
        const auto a = eval::evaluatePerplexity(*m, stream, o);
        o.batchSize = 5;
        const auto b = eval::evaluatePerplexity(*m, stream, o);
        QCOMPARE(a.windows, b.windows);
        QVERIFY(closeRel(a.ppl, b.ppl, 1e-6));
        // Errors: too long for the model, fewer tokens than one window, progress and cancel.
        o.seqLen = 4096;
        QVERIFY_THROWS_EXCEPTION(ConfigError, eval::evaluatePerplexity(*m, stream, o));
        o.seqLen = 128;
        QVERIFY_THROWS_EXCEPTION(ConfigError, eval::evaluatePerplexity(*m, std::vector<int32_t>(50, 5), o));
        CancelToken cancel;
        int calls = 0;
        QVERIFY_THROWS_EXCEPTION(CancelledError, eval::evaluatePerplexity(*m, stream, o, [&](const Progress& p) {
            ++calls;
            if (p.done >= 5)
                cancel.cancel();
        }, &cancel));
        QVERIFY(calls >= 1);
    }

    void taskScoresMatchReference()
    {
        QPRUNER_SHARED_FILE(tokPath, "models/stories260K/tok512.model");
        QPRUNER_SHARED_FILE(evalDir, "eval");
        const auto ref = referenceJson("tasks.json");
        const auto tok = loadTokenizer(tokPath);
        const auto m = model::loadModel(modelPath("stories260K"));
        for (const auto& [name, t] : ref["tasks"].items()) {
            const auto set = eval::loadTaskSet(name, eval::taskFile(name, evalDir), t["n_items"].get<int64_t>());
            QCOMPARE(int64_t(set.items.size()), t["n_items"].get<int64_t>());
            eval::MultipleChoiceOptions o;
            o.batchSize = 3;
            const auto r = eval::evaluateTask(*m, *tok, set, o);
            for (size_t i = 0; i < set.items.size(); ++i) {
                const auto& ri = t["items"][i];
                const auto scores = ri["scores"].get<std::vector<double>>();
                QCOMPARE(r.perItem[i].choices.size(), scores.size());
                for (size_t c = 0; c < scores.size(); ++c) {
                    const auto& got = r.perItem[i].choices[c];
                    const QString where = QString("%1 item %2 choice %3").arg(name.c_str()).arg(i).arg(c);
                    QVERIFY2(std::abs(got.logprob - scores[c]) < 1e-3 * std::max(1.0, std::abs(scores[c])),
                             qPrintable(where + QString(": %1 vs %2").arg(got.logprob).arg(scores[c])));
                    QCOMPARE(got.contextTokens, ri["ctx_tokens"][c].get<int>());
                    QCOMPARE(got.continuationTokens, ri["cont_tokens"][c].get<int>());
                    QCOMPARE(int(set.items[i].choices[c].continuation.size()), ri["cont_bytes"][c].get<int>());
                }
                QCOMPARE(r.perItem[i].predicted, ri["pred"].get<int>());
                QCOMPARE(r.perItem[i].predictedNorm, ri["pred_norm"].get<int>());
                if (name == "hellaswag")
                    QCOMPARE(QString::fromStdString(set.items[i].choices[0].context),
                             QString::fromStdString(ri["context"].get<std::string>()));
            }
            QCOMPARE(r.acc, t["acc"].get<double>());
            QCOMPARE(r.accNorm, t["acc_norm"].get<double>());
        }
    }

    void hellaswagPreprocessing()
    {
        // strip, " [title]" -> ". ", drop "[header]", then "  " -> " "
        QCOMPARE(eval::hellaswagPreprocess("  How to bake [header] a cake [title] Mix it.  "),
                 std::string("How to bake a cake. Mix it."));
        QCOMPARE(eval::hellaswagPreprocess("a [step] b"), std::string("a b"));
        QCOMPARE(eval::pythonCapitalize("the WOMAN then"), std::string("The woman then"));
        QCOMPARE(eval::pythonCapitalize(""), std::string(""));
    }

    void badTaskFilesFailClearly()
    {
        QTemporaryDir tmp;
        auto write = [&](const std::string& name, const std::string& body) {
            const std::filesystem::path p = tmp.path().toStdString() + "/" + name;
            std::ofstream(p) << body;
            return p;
        };
        auto msgOf = [](const std::function<void()>& f) -> QString {
            try {
                f();
            } catch (const Error& e) {
                return e.what();
            }
            return "NO THROW";
        };
        const auto a = write("a.jsonl", "{\"query\": \"q\", \"choices\": [\"x\", \"y\"], \"gold\": 0}\n{bad json\n");
        QVERIFY(msgOf([&] { eval::loadTaskSet("t", a); }).contains("a.jsonl:2"));
        // The limit stops before the bad line.
        QCOMPARE(eval::loadTaskSet("t", a, 1).items.size(), size_t(1));
        const auto b = write("b.jsonl", "{\"query\": \"q\", \"choices\": [\"x\", \"y\"], \"gold\": 5}\n");
        QVERIFY(msgOf([&] { eval::loadTaskSet("t", b); }).contains("gold index 5"));
        const auto c = write("c.jsonl", "{\"question\": \"q\"}\n");
        QVERIFY(msgOf([&] { eval::loadTaskSet("t", c); }).contains("unknown item format"));
        QVERIFY(msgOf([&] { eval::loadTaskSet("t", "/nonexistent.jsonl"); }).contains("/nonexistent.jsonl"));
        QVERIFY(msgOf([&] { eval::taskFile("mmlu", "/x"); }).contains("unknown task 'mmlu'"));
    }

    void greedyGenerationReproducesReference()
    {
        QPRUNER_SHARED_FILE(tokPath, "models/stories260K/tok512.model");
        const auto tok = loadTokenizer(tokPath);
        const auto ref = referenceJson("logits.json")["models"];
        for (const std::string key : {"stories260K", "llama2xs-64d"}) {
            const auto m = model::loadModel(modelPath(key));
            for (const auto& g : ref[key]["greedy"]) {
                std::vector<int32_t> prompt = tok->encode(g["prompt"].get<std::string>());
                prompt.insert(prompt.begin(), 1);
                QCOMPARE(prompt, g["prompt_ids"].get<std::vector<int32_t>>());
                eval::GenerateOptions o;
                o.steps = g["steps"];
                o.temperature = 0;
                o.stopIds = {1};
                const auto r = eval::generate(*m, prompt, o);
                const std::vector<int32_t> after(r.tokens.begin() + 1, r.tokens.end());
                QCOMPARE(after, g["tokens"].get<std::vector<int32_t>>());
                QCOMPARE(QString::fromStdString(tok->decode(r.tokens)), QString::fromStdString(g["text"].get<std::string>()));
            }
        }
    }

    void sampledGenerationIsSeeded()
    {
        QPRUNER_SHARED_FILE(path, "models/stories260K/stories260K.bin");
        const auto m = model::loadModel(path);
        eval::GenerateOptions o;
        o.steps = 40;
        o.temperature = 1.0;
        o.topP = 0.9;
        o.seed = 42;
        const auto a = eval::generate(*m, {1}, o);
        const auto b = eval::generate(*m, {1}, o);
        QCOMPARE(a.tokens, b.tokens);
        o.seed = 43;
        QVERIFY(eval::generate(*m, {1}, o).tokens != a.tokens);
        // A nucleus this small keeps only the most probable token: sampling becomes greedy.
        o.topP = 1e-9;
        eval::GenerateOptions greedy = o;
        greedy.temperature = 0;
        QCOMPARE(eval::generate(*m, {1}, o).tokens, eval::generate(*m, {1}, greedy).tokens);
    }
};

QTEST_APPLESS_MAIN(TestEval)
#include "test_eval.moc"

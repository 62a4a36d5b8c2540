// The `qpruner` executable end to end: MANIFEST reference generation, JSON outputs against the independent
// reference, make-random -> info -> eval round trip, and exit codes/messages for bad input.
#include <QtTest/QtTest>
#include <QThread>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "io/sha256.h"
#include "qpruner/store.h"
#include "test_data.h"

namespace {

struct Run {
    int exitCode = -1;
    QByteArray out, err;
    nlohmann::json json() const { return nlohmann::json::parse(out.toStdString()); }
};

Run runCli(const QStringList& args)
{
    QProcess p;
    // Named sources ("tinystories", "${data}/...") resolve against the shared data directory the tests use.
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert("QPRUNER_SHARED_DATA", QString::fromStdString(qpruner::testing::sharedDataDir().string()));
    p.setProcessEnvironment(env);
    p.start(QStringLiteral(QPRUNER_CLI_PATH), args);
    if (!p.waitForFinished(300000))
        qFatal("qpruner did not finish");
    return {p.exitCode(), p.readAllStandardOutput(), p.readAllStandardError()};
}

QString shared(const char* rel) { return QString::fromStdString((qpruner::testing::sharedDataDir() / rel).string()); }

nlohmann::json reference(const char* name)
{
    std::ifstream in(qpruner::testing::fixtureDir() / "reference" / name);
    return nlohmann::json::parse(in);
}

} // namespace

class TestCli : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void generateReproducesManifest()
    {
        QPRUNER_SHARED_FILE(model, "models/stories260K/stories260K.bin");
        const auto r = runCli({"generate", shared("models/stories260K/stories260K.bin"), "--tokenizer",
                                shared("models/stories260K/tok512.model"), "--steps", "64", "--temperature", "0",
                                "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        // MANIFEST.md: stories260K, BOS only, first 64 generated ids.
        const std::vector<int> manifest = {
            403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 410, 408,
            419, 292, 411, 322, 265, 282, 295, 433, 426, 385, 328, 432, 358, 394, 261, 370, 432, 352, 266, 268, 388, 426,
            338, 391, 266, 267, 337, 335, 312, 432, 398, 312, 286, 267, 414, 270, 333, 415, 426, 13,  438, 310};
        const auto j = r.json();
        QCOMPARE(j["ids"].get<std::vector<int>>(), manifest);
        QCOMPARE(j["generated_ids"].get<std::vector<int>>(), manifest);
        QVERIFY(j["text"].get<std::string>().rfind("Once upon a time, there was a little girl named Lily.", 0) == 0);
    }

    void evalPplMatchesReference()
    {
        QPRUNER_SHARED_FILE(model, "models/stories260K/stories260K.bin");
        const auto ref = reference("ppl.json")["cases"][1]; // stories260K, TinyStories, seq 256, BOS, 6 windows
        QVERIFY(ref["bos"].get<bool>());
        const auto r = runCli({"eval-ppl", shared("models/stories260K/stories260K.bin"), "--tokenizer",
                                shared("models/stories260K/tok512.model"), "--file", shared(ref["file"].get<std::string>().c_str()),
                                "--seq-len", "256", "--bos", "--max-windows", "6", "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const auto j = r.json();
        QCOMPARE(j["windows"].get<int>(), 6);
        QCOMPARE(j["predicted_tokens"].get<int>(), ref["n_predicted"].get<int>());
        QVERIFY(std::abs(j["ppl"].get<double>() / ref["ppl"].get<double>() - 1) < 1e-5);
    }

    void evalTasksMatchesReference()
    {
        QPRUNER_SHARED_FILE(model, "models/stories260K/stories260K.bin");
        const auto ref = reference("tasks.json")["tasks"];
        const auto r = runCli({"eval-tasks", shared("models/stories260K/stories260K.bin"), "--tokenizer",
                                shared("models/stories260K/tok512.model"), "--eval-dir", shared("eval"), "--tasks",
                                "winogrande,piqa,hellaswag", "--limit", "10", "--json", "--per-item"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const auto j = r.json();
        for (const char* t : {"winogrande", "piqa", "hellaswag"}) {
            QCOMPARE(j["tasks"][t]["acc"].get<double>(), ref[t]["acc"].get<double>());
            QCOMPARE(j["tasks"][t]["acc_norm"].get<double>(), ref[t]["acc_norm"].get<double>());
            QCOMPARE(j["tasks"][t]["per_item"].size(), size_t(10));
        }
    }

    void infoAndTokenize()
    {
        QPRUNER_SHARED_FILE(model, "models/stories260K/stories260K.bin");
        auto r = runCli({"info", shared("models/stories260K/stories260K.bin"), "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        auto j = r.json();
        QCOMPARE(j["parameters"].get<int64_t>(), int64_t(260032));
        QCOMPARE(j["layers"].size(), size_t(5));
        QCOMPARE(j["format"].get<std::string>(), std::string("llama2c"));
        r = runCli({"tokenize", "--tokenizer", shared("models/stories260K/tok512.model"), "Once upon a time", "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QCOMPARE(r.json()["ids"].get<std::vector<int>>(), (std::vector<int>{403, 407, 261, 378}));
        r = runCli({"tokenize", "--tokenizer", shared("models/llama2-tokenizer/tokenizer.model"), "Once upon a time", "--json"});
        QCOMPARE(r.json()["ids"].get<std::vector<int>>(), (std::vector<int>{9038, 2501, 263, 931}));
        r = runCli({"tokenize", "--tokenizer", shared("models/stories260K/tok512.model"), "--decode", "403,407,261,378"});
        QCOMPARE(r.out.trimmed(), QByteArray("Once upon a time"));
        // A lone byte piece (0xE6, the start of a 3-byte character) is invalid UTF-8 on its own: JSON output
        // carries U+FFFD for it instead of failing (a model's generated text can end inside a character).
        r = runCli({"tokenize", "--tokenizer", shared("models/stories260K/tok512.model"), "--decode", "233", "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QCOMPARE(r.json()["text"].get<std::string>(), std::string("\xEF\xBF\xBD"));
    }

    // info names what a family adds and which layers slide.
    void infoOfAFamily()
    {
        QTemporaryDir tmp;
        const QString out = tmp.path() + "/gemma";
        auto r = runCli({"make-random", "--preset", "tiny-gemma3", "--out", out});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        r = runCli({"info", out, "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const auto j = r.json();
        QCOMPARE(j["architecture"].get<std::string>(), std::string("gemma3_text"));
        QCOMPARE(j["sliding_window"].get<int>(), 8);
        QCOMPARE(j["layers"][4]["attention"].get<std::string>(), std::string("sliding"));
        QCOMPARE(j["layers"][5]["attention"].get<std::string>(), std::string("global"));
        const auto features = j["family_features"].get<std::vector<std::string>>();
        QVERIFY(std::find(features.begin(), features.end(), "q/k norms") != features.end());
        QVERIFY(std::find(features.begin(), features.end(), "sliding window 8 on 5 of 6 layers (RoPE base 10000)") !=
                features.end());
        r = runCli({"make-random", "--preset", "gemma-2b", "--out", out});
        QCOMPARE(r.exitCode, 1); // a configuration error (usage errors are 2)
        QVERIFY2(r.err.contains("unknown preset 'gemma-2b'") && r.err.contains("gemma-3-1b"), r.err.constData());
    }

    void makeRandomRoundTrip()
    {
        QPRUNER_SHARED_FILE(tok, "models/stories260K/tok512.model");
        QTemporaryDir tmp;
        const QString out = tmp.path() + "/tiny";
        auto r = runCli({"make-random", "--preset", "tiny", "--out", out, "--seed", "3", "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const auto made = r.json();
        r = runCli({"info", out, "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const auto info = r.json();
        QCOMPARE(info["format"].get<std::string>(), std::string("native"));
        QCOMPARE(info["parameters"].get<int64_t>(), made["parameters"].get<int64_t>());
        // A random model is near-uniform over the 512-token vocabulary: ppl close to 512.
        QTemporaryFile text;
        QVERIFY(text.open());
        text.write(QByteArray("Once upon a time there was a cat. ").repeated(40));
        text.close();
        r = runCli({"eval-ppl", out, "--tokenizer", shared("models/stories260K/tok512.model"), "--file",
                     text.fileName(), "--seq-len", "64", "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const double ppl = r.json()["ppl"].get<double>();
        QVERIFY2(ppl > 400 && ppl < 650, qPrintable(QString::number(ppl)));
    }

    // A bf16 checkpoint (bf16 matrices beside float32 norms, as make-random and most HF checkpoints store them) is
    // "bfloat16" to info, and prune keeps it so: bf16 matrices and float32 norms, not a float32 copy twice the size.
    void pruneKeepsABf16CheckpointBf16()
    {
        QPRUNER_SHARED_FILE(tok, "models/stories260K/tok512.model");
        QTemporaryDir tmp;
        const QString src = tmp.path() + "/bf16", out = tmp.path() + "/pruned";
        auto r = runCli({"make-random", "--preset", "tiny", "--dtype", "bfloat16", "--out", src});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        r = runCli({"info", src, "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QCOMPARE(r.json()["dtype"].get<std::string>(), std::string("bfloat16"));
        r = runCli({"prune", src, "--tokenizer", shared("models/stories260K/tok512.model"), "--samples", "2",
                    "--seq-len", "32", "--ratio", "0.25", "--mlp-layers", "0:2", "--out", out, "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const auto pruned = r.json();
        r = runCli({"info", out, "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const auto info = r.json();
        QCOMPARE(info["dtype"].get<std::string>(), std::string("bfloat16"));
        // 2 bytes per parameter, 4 for the norms' (2 L + 1) D weights.
        const int64_t P = info["parameters"].get<int64_t>(), D = info["hidden_size"].get<int64_t>(),
                      L = info["num_layers"].get<int64_t>();
        QCOMPARE(P, pruned["after"]["parameters"].get<int64_t>());
        QVERIFY(P < pruned["before"]["parameters"].get<int64_t>());
        QCOMPARE(info["weight_bytes"].get<int64_t>(), 2 * P + 2 * (2 * L + 1) * D);
        QCOMPARE(pruned["after"]["weight_bytes"].get<int64_t>(), info["weight_bytes"].get<int64_t>());
    }

    void pruneWritesASmallerModelAndAReport()
    {
        QPRUNER_SHARED_FILE(model, "models/stories260K/stories260K.bin");
        QPRUNER_SHARED_FILE(text, "text/tinystories/tinystories_valid_subset.txt");
        QTemporaryDir tmp;
        const QString out = tmp.path() + "/pruned";
        auto r = runCli({"prune", shared("models/stories260K/stories260K.bin"), "--tokenizer",
                         shared("models/stories260K/tok512.model"), "--calib",
                         shared("text/tinystories/tinystories_valid_subset.txt"), "--ratio", "0.25", "--out", out,
                         "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const auto j = r.json();
        QCOMPARE(j["before"]["parameters"].get<int64_t>(), int64_t(260032));
        QCOMPARE(j["after"]["parameters"].get<int64_t>(), int64_t(226048));
        QCOMPARE(j["after"]["weight_bytes"].get<int64_t>(), int64_t(226048) * 4);
        QCOMPARE(j["settings"]["criterion"].get<std::string>(), std::string("taylor-first"));
        const auto& layers = j["layers"];
        QCOMPARE(layers.size(), size_t(5));
        QCOMPARE(layers[0]["attention"]["pruned"].get<bool>(), false);
        const auto& l1 = layers[1];
        QCOMPARE(l1["attention"]["group_scores"].size(), size_t(4));
        QCOMPARE(l1["attention"]["kept_groups"].size(), size_t(3));
        QCOMPARE(l1["attention"]["removed_groups"].size(), size_t(1));
        QCOMPARE(l1["attention"]["heads"], nlohmann::json({8, 6}));
        QCOMPARE(l1["mlp"]["channel_scores"].size(), size_t(172));
        QCOMPARE(l1["mlp"]["removed_channels"].size(), size_t(43));
        // The removed KV group is the lowest-scoring one.
        const auto scores = l1["attention"]["group_scores"].get<std::vector<double>>();
        const int removed = l1["attention"]["removed_groups"][0].get<int>();
        QCOMPARE(int(std::min_element(scores.begin(), scores.end()) - scores.begin()), removed);
        // The result is a normal native checkpoint with per-layer shapes.
        r = runCli({"info", out, "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QCOMPARE(r.json()["parameters"].get<int64_t>(), int64_t(226048));
        r = runCli({"eval-ppl", out, "--tokenizer", shared("models/stories260K/tok512.model"), "--file",
                    shared("text/tinystories/tinystories_valid_subset.txt"), "--seq-len", "128", "--max-windows",
                    "4", "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QVERIFY(r.json()["ppl"].get<double>() > 1.0);

        // Bad options fail before anything is written.
        const QString none = tmp.path() + "/never";
        r = runCli({"prune", shared("models/stories260K/stories260K.bin"), "--calib",
                    shared("text/tinystories/tinystories_valid_subset.txt"), "--ratio", "1.5", "--out", none});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("pruning ratio"), r.err.constData());
        r = runCli({"prune", shared("models/stories260K/stories260K.bin"), "--attn-layers", "3", "--out", none});
        QCOMPARE(r.exitCode, 2);
        QVERIFY2(r.err.contains("--attn-layers"), r.err.constData());
        r = runCli({"prune", shared("models/stories260K/stories260K.bin"), "--criterion", "taylor", "--out", none});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("unknown criterion 'taylor'"), r.err.constData());
        r = runCli({"prune", shared("models/stories260K/stories260K.bin"), "--calib", "/nonexistent/calib.txt",
                    "--out", none});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("/nonexistent/calib.txt"), r.err.constData());
        QVERIFY(!QFileInfo::exists(none));
    }

    void quantizeMemoryAndQuantError()
    {
        QPRUNER_SHARED_FILE(model, "models/stories260K/stories260K.bin");
        QTemporaryDir tmp;
        const QString map = tmp.path() + "/map.json";
        {
            QFile f(map);
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write(R"({"version": 1, "default": "nf4", "layers": {"0": "int8", "4": {"default": "nf4-dq", "down": "bf16"}}})");
        }
        auto r = runCli({"memory", shared("models/stories260K/stories260K.bin"), "--map", map, "--json",
                         "--llama-quantize"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const auto mem = r.json();
        const int64_t analytic = mem["memory"]["total_bytes"].get<int64_t>();
        QVERIFY(mem["finetune"]["total_bytes"].get<int64_t>() > analytic);
        QCOMPARE(mem["llama_quantize"]["base_type"].get<std::string>(), std::string("IQ4_NL"));
        r = runCli({"memory", shared("models/stories260K/stories260K.bin"), "--map", map, "--measure", "--steps", "2",
                    "--batch-size", "2", "--seq-len", "32", "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const auto measured = r.json()["measured"];
        QVERIFY(measured["peak_rss_bytes"].get<int64_t>() >= measured["rss_before_bytes"].get<int64_t>());
        QCOMPARE(measured["steps"].get<int>(), 2);
        QVERIFY(measured["loss_after"].get<double>() < measured["loss_before"].get<double>());

        const QString out = tmp.path() + "/q";
        r = runCli({"quantize", shared("models/stories260K/stories260K.bin"), "--map", map, "--out", out, "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QCOMPARE(r.json()["held_bytes"].get<int64_t>(), analytic);
        r = runCli({"info", out, "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QCOMPARE(r.json()["weight_bytes"].get<int64_t>(), analytic);
        r = runCli({"eval-ppl", out, "--tokenizer", shared("models/stories260K/tok512.model"), "--file",
                    shared("text/tinystories/tinystories_valid_subset.txt"), "--seq-len", "128", "--max-windows",
                    "4", "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QVERIFY(r.json()["ppl"].get<double>() > 1.0);

        r = runCli({"quant-error", shared("models/stories260K/stories260K.bin"), "--tokenizer",
                    shared("models/stories260K/tok512.model"), "--calib",
                    shared("text/tinystories/tinystories_valid_subset.txt"), "--format", "int4", "--samples", "4",
                    "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const auto qe = r.json();
        QCOMPARE(qe["modules"].size(), size_t(35));
        QVERIFY(qe["quantized_nll"].get<double>() > qe["dense_nll"].get<double>());

        // Bad maps and formats: exit 1 naming the problem, nothing written.
        {
            QFile f(map);
            QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
            f.write(R"({"version": 1, "default": "nf4", "layers": {"7": "int8"}})");
        }
        const QString none = tmp.path() + "/never";
        r = runCli({"quantize", shared("models/stories260K/stories260K.bin"), "--map", map, "--out", none});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("7"), r.err.constData());
        r = runCli({"quantize", shared("models/stories260K/stories260K.bin"), "--format", "nf3", "--out", none});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("unknown format 'nf3'"), r.err.constData());
        r = runCli({"quantize", shared("models/stories260K/stories260K.bin"), "--out", none});
        QCOMPARE(r.exitCode, 2);
        r = runCli({"quantize", out, "--format", "int8", "--out", none});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("already quantized"), r.err.constData());
        QVERIFY(!QFileInfo::exists(none));
    }

    void importanceAllocateAndEvaluateAMap()
    {
        QPRUNER_SHARED_FILE(modelFile, "models/stories260K/stories260K.bin");
        QPRUNER_SHARED_FILE(alpacaFile, "finetune/alpaca_small_2000.json");
        const QString model = shared("models/stories260K/stories260K.bin");
        const QString alpaca = shared("finetune/alpaca_small_2000.json");
        QTemporaryDir tmp;
        const QString scores = tmp.path() + "/scores.json", map = tmp.path() + "/map.json";
        const QString tok = shared("models/stories260K/tok512.model");
        auto r = runCli({"importance", model, "--tokenizer", tok, "--calib", alpaca, "--calib-format", "alpaca",
                         "--samples", "4", "--seq-len", "32", "--kl-modules", "--out", scores, "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const auto j = r.json();
        QCOMPARE(j["layers"].get<int>(), 5);
        QCOMPARE(j["calibration"]["format"].get<std::string>(), std::string("alpaca"));
        QCOMPARE(j["calibration"]["tokens"].get<int>(), 128);
        for (const char* m : {"mi", "bi", "quant-kl", "taylor"}) {
            const auto norm = j["metrics"][m]["normalized"].get<std::vector<double>>();
            QCOMPARE(norm.size(), size_t(5));
            QCOMPARE(*std::min_element(norm.begin(), norm.end()), 0.0);
            QCOMPARE(*std::max_element(norm.begin(), norm.end()), 1.0);
        }
        QCOMPARE(j["metrics"]["quant-kl"]["modules"].size(), size_t(5));
        {
            std::ifstream in(scores.toStdString());
            QCOMPARE(nlohmann::json::parse(in), j);
        }

        r = runCli({"allocate", model, "--scores", scores, "--metric", "quant-kl", "--budget", "6bpw", "--method",
                    "greedy", "--out", map, "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const auto best = r.json()["best"];
        QVERIFY(best["linear_bits_per_weight"].get<double>() <= 6.0);
        r = runCli({"memory", model, "--map", map, "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QCOMPARE(r.json()["memory"]["total_bytes"].get<int64_t>(), best["total_bytes"].get<int64_t>());
        r = runCli({"eval-ppl", model, "--tokenizer", tok, "--file", shared("text/tinystories/tinystories_valid_subset.txt"),
                    "--seq-len", "128", "--max-windows", "4", "--map", map, "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QCOMPARE(r.json()["memory"]["total_bytes"].get<int64_t>(), best["total_bytes"].get<int64_t>());
        QVERIFY(r.json()["ppl"].get<double>() > 1.0);

        // An impossible budget names the smallest feasible one; nothing is written.
        const QString none = tmp.path() + "/never.json";
        r = runCli({"allocate", model, "--scores", scores, "--metric", "mi", "--budget", "3bpw", "--out", none});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("smallest feasible") && r.err.contains("4.5"), r.err.constData());
        QVERIFY(!QFileInfo::exists(none));
        r = runCli({"importance", model, "--tokenizer", tok, "--metrics", "mi,entropy"});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("unknown importance metric 'entropy'"), r.err.constData());
        r = runCli({"eval-ppl", model, "--tokenizer", tok, "--file", tok, "--map", map, "--format", "nf4"});
        QCOMPARE(r.exitCode, 2);
    }

    void searchRunsParetoAndRecordedStages()
    {
        QPRUNER_SHARED_FILE(modelFile, "models/stories260K/stories260K.bin");
        const QString model = shared("models/stories260K/stories260K.bin");
        const QString tok = shared("models/stories260K/tok512.model");
        QTemporaryDir tmp;
        const QString db = tmp.path() + "/study.db";
        auto r = runCli({"search", model, "--tokenizer", tok, "--db", db, "--budget", "6.5bpw", "--trials", "6",
                         "--granularity", "group", "--val-windows", "4", "--calib-samples", "8", "--threads", "1",
                         "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const auto j = r.json();
        QCOMPARE(j["run"].get<int>(), 1);
        QCOMPARE(j["stages"]["search"]["trials_complete"].get<int>(), 6);
        for (const char* stage : {"importance", "allocate", "search"})
            QVERIFY2(j["stages"].contains(stage), stage);

        r = runCli({"runs", "--db", db, "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const auto runs = r.json();
        QCOMPARE(runs.size(), size_t(1));
        QCOMPARE(runs[0]["kind"].get<std::string>(), std::string("search"));
        QCOMPARE(runs[0]["status"].get<std::string>(), std::string("done"));
        QCOMPARE(runs[0]["trials_complete"].get<int>(), 6);

        r = runCli({"pareto", "--db", db, "--run", "1", "--json", "--all"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const auto pj = r.json();
        QCOMPARE(pj["complete"].get<int>(), 6);
        QCOMPARE(pj["hypervolume_trace"].size(), size_t(6));
        QVERIFY(!pj["front"].empty());
        QCOMPARE(pj["hypervolume"].get<double>(), pj["hypervolume_trace"].back().get<double>());
        // The chosen map is the best complete trial within the budget: no listed trial beats it.
        const double best = pj["chosen"]["objective"].get<double>();
        for (const auto& t : pj["all"]) {
            QVERIFY(t["metrics"]["memory"]["linear_bits_per_weight"].get<double>() <= 6.5);
            QVERIFY(t["objective"].get<double>() >= best);
        }
        // The default bayes leads with the knapsack's answer at the budget (from the per-unit error table, whose
        // cost the stage reports), then up to 3 more points of the knapsack's front, then the importance map.
        QCOMPARE(pj["all"][0]["source"].get<std::string>(), std::string("initial:knapsack"));
        QVERIFY(j["stages"]["search"]["unit_errors"]["tokens"].get<int64_t>() > 0);
        QCOMPARE(j["stages"]["search"]["tokens"].get<int64_t>(),
                 j["stages"]["search"]["unit_errors"]["tokens"].get<int64_t>() + 6 * 4 * 255);
        r = runCli({"pareto", "--db", db, "--run", "1", "--csv"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const auto lines = r.out.trimmed().split('\n');
        QCOMPARE(lines[0], QByteArray("number,state,source,memory_bytes,objective,on_front,encoding,fidelity,tokens"));
        QCOMPARE(lines.size(), qsizetype(pj["front"].size() + 1));

        // Resuming a finished search adds nothing; a run that does not exist is named.
        r = runCli({"search", "--db", db, "--resume", "1", "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QCOMPARE(qpruner::store::Store(db.toStdString()).trials(1).size(), size_t(6));
        r = runCli({"pareto", "--db", db, "--run", "99"});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("run 99"), r.err.constData());

        // --db records a stage command with its artifact's sha256.
        const QString map = tmp.path() + "/map.json";
        const QString scores = QString::fromStdString(
            qpruner::store::Store(db.toStdString()).artifacts(1).front().path); // the search's scores.json
        r = runCli({"allocate", model, "--scores", scores, "--budget", "6bpw", "--out", map, "--db", db,
                    "--experiment", "manual"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        qpruner::store::Store st(db.toStdString());
        const auto rec = st.run(2);
        QCOMPARE(rec.kind, std::string("allocate"));
        QCOMPARE(rec.experiment, std::string("manual"));
        QCOMPARE(rec.config["budget"].get<std::string>(), std::string("6bpw"));
        QCOMPARE(rec.status, qpruner::store::RunStatus::Done);
        const auto arts = st.artifacts(2);
        QCOMPARE(arts.size(), size_t(1));
        QCOMPARE(arts[0].sha256, qpruner::io::sha256FileHex(map.toStdString()));
        QCOMPARE(arts[0].bytes, int64_t(QFileInfo(map).size()));
        // A failing recorded command is recorded as failed, with its message.
        r = runCli({"allocate", model, "--scores", scores, "--budget", "3bpw", "--out", map, "--db", db});
        QCOMPARE(r.exitCode, 1);
        const auto failed = qpruner::store::Store(db.toStdString()).run(3);
        QCOMPARE(failed.status, qpruner::store::RunStatus::Failed);
        QVERIFY2(QString::fromStdString(failed.error).contains("smallest feasible"), failed.error.c_str());
    }

    // A candidate the weights already hold exactly (bf16 for a model stored or loaded in bf16) changes no unit:
    // its column of the error table is 0 without a quantized pass, and the table charges the other formats only.
    void losslessFormatSkipsItsErrorPass()
    {
        QPRUNER_SHARED_FILE(modelFile, "models/stories260K/stories260K.bin");
        QTemporaryDir tmp;
        const QString db = tmp.path() + "/study.db";
        for (const char* dtype : {"bf16", "fp32"}) {
            auto r = runCli({"search", shared("models/stories260K/stories260K.bin"), "--tokenizer",
                             shared("models/stories260K/tok512.model"), "--db", db, "--dtype", dtype, "--budget", "8bpw",
                             "--candidates", "nf4,int8,bf16", "--trials", "2", "--strategy", "lagrangian",
                             "--error-fidelity", "0.25", "--val-windows", "8", "--val-seq-len", "64", "--calib-samples",
                             "4", "--threads", "1", "--json"});
            QVERIFY2(r.exitCode == 0, r.err.constData());
            const auto ue = r.json()["stages"]["search"]["unit_errors"];
            std::ifstream in(ue["file"].get<std::string>());
            const auto table = nlohmann::json::parse(in);
            QCOMPARE(table["errors"].size(), size_t(5));
            const bool bf16 = std::string(dtype) == "bf16";
            // formats measured x 2 windows x 63 tokens x (5 + 1) / 2 full-pass equivalents
            QCOMPARE(ue["tokens"].get<int64_t>(), int64_t((bf16 ? 2 : 3) * 2 * 63 * 6 / 2));
            QCOMPARE(ue["lossless"], bf16 ? nlohmann::json({"bf16"}) : nlohmann::json::array());
            QCOMPARE(table["lossless"], ue["lossless"]);
            double bf16Sum = 0;
            for (const auto& row : table["errors"]) {
                QVERIFY(row[1].get<double>() > 0); // int8 is measured either way
                bf16Sum += row[2].get<double>();
            }
            if (bf16)
                QCOMPARE(bf16Sum, 0.0);
            else
                QVERIFY2(bf16Sum > 0, qPrintable(QString::number(bf16Sum)));
        }
    }

    // Every strategy on stories260K at module granularity (35 units: 5 layers x 7 linears), stopped by the same
    // token budget: trials within the budget, no (map, fidelity) twice, tokens recorded per trial and summed by the
    // stage; evopress's stages at their fidelities, bayes multi-fidelity promotions, the lagrangian's error table
    // (measured, saved, charged to its budget), ap-ratio's depth schedules; pareto counts full fidelity only.
    void searchStrategiesOnStories260K()
    {
        QPRUNER_SHARED_FILE(modelFile, "models/stories260K/stories260K.bin");
        const QString model = shared("models/stories260K/stories260K.bin");
        const QString tok = shared("models/stories260K/tok512.model");
        QTemporaryDir tmp;
        const QString db = tmp.path() + "/study.db";
        const int64_t fullTokens = 8 * 63; // 8 windows of 64 tokens
        const int64_t budget = 60 * fullTokens;
        struct Case {
            const char* strategy;
            QStringList extra;
        };
        const std::vector<Case> cases = {
            {"evopress", {"--evopress-offspring", "6", "--evopress-fidelities", "0.25,0.5,1", "--evopress-survivors", "2,1"}},
            {"nsga2", {"--nsga2-population", "4", "--nsga2-prefilter", "3"}},
            {"lagrangian", {"--error-fidelity", "0.25"}},
            {"ap-ratio", {}},
            {"bayes", {"--fidelities", "0.25,1"}},
            {"random", {}}};
        int run = 0;
        for (const Case& c : cases) {
            ++run;
            QStringList args = {"search", model, "--tokenizer", tok, "--db", db, "--budget", "6bpw", "--trials", "200",
                                "--granularity", "module", "--val-windows", "8", "--val-seq-len", "64",
                                "--calib-samples", "8", "--threads", "1", "--strategy", c.strategy, "--token-budget",
                                QString::number(budget), "--json"};
            args += c.extra;
            auto r = runCli(args);
            QVERIFY2(r.exitCode == 0, (std::string(c.strategy) + ": " + r.err.toStdString()).c_str());
            const auto j = r.json()["stages"]["search"];
            QCOMPARE(j["strategy"].get<std::string>(), std::string(c.strategy));
            qpruner::store::Store st(db.toStdString());
            const auto trials = st.trials(run);
            QVERIFY2(!trials.empty(), c.strategy);
            std::set<std::pair<std::string, double>> keys;
            int64_t tokens = 0;
            const int64_t budgetBytes = j["budget_bytes"].get<int64_t>();
            for (const auto& t : trials) {
                QCOMPARE(t.encoding.size(), size_t(35));
                QVERIFY2(t.budgetedBytes <= budgetBytes, c.strategy);
                QVERIFY2(keys.insert({t.encoding, t.fidelity}).second, c.strategy);
                QCOMPARE(t.state, qpruner::store::TrialState::Complete);
                // Tokens: the first ceil(fidelity * 8) windows of 63 predicted tokens.
                QCOMPARE(t.tokens, int64_t(std::ceil(t.fidelity * 8 - 1e-9)) * 63);
                if (t.fidelity < 1)
                    QCOMPARE(t.metrics["fidelity"].get<double>(), t.fidelity);
                tokens += t.tokens;
            }
            const int64_t spent = j.contains("unit_errors") ? j["unit_errors"]["tokens"].get<int64_t>() : 0;
            QCOMPARE(j["tokens"].get<int64_t>(), tokens + spent);
            const std::string s = c.strategy;
            if (s != "ap-ratio" && s != "lagrangian") { // those two may run out of maps before the budget
                QVERIFY2(j["token_budget_reached"].get<bool>(), c.strategy);
                QVERIFY(tokens + spent - trials.back().tokens < budget);
            }
            if (s == "evopress") {
                QCOMPARE(trials.front().source, std::string("initial:importance"));
                std::set<double> f;
                for (const auto& t : trials)
                    f.insert(t.fidelity);
                QVERIFY(f == (std::set<double>{0.25, 0.5, 1.0}));
            }
            if (s == "bayes")
                for (const auto& t : trials)
                    QVERIFY(t.fidelity == 0.25 || t.source.rfind("promote:", 0) == 0);
            if (s == "lagrangian") {
                const auto ue = j["unit_errors"];
                QCOMPARE(ue["reused"].get<bool>(), false);
                // 3 formats x 2 windows x 63 tokens x (1 + 7 linears) x (5 + 1) / 2 full-pass equivalents.
                QCOMPARE(ue["tokens"].get<int64_t>(), int64_t(3 * 2 * 63 * 8 * 6 / 2));
                std::ifstream in(ue["file"].get<std::string>());
                const auto table = nlohmann::json::parse(in);
                QCOMPARE(table["errors"].size(), size_t(35));
                double nf4 = 0, int8 = 0;
                for (const auto& row : table["errors"]) {
                    QCOMPARE(row.size(), size_t(3));
                    nf4 += row[0].get<double>();
                    int8 += row[1].get<double>();
                    for (const auto& v : row)
                        QVERIFY(v.get<double>() >= 0);
                }
                QVERIFY(nf4 > 10 * int8); // nf4 costs far more than int8, summed over the linears
                QCOMPARE(ue["lossless"], nlohmann::json::array()); // fp32 weights: bf16 rounds them
                QCOMPARE(table["lossless"], nlohmann::json::array());
                QCOMPARE(trials.front().source, std::string("lagrangian:budget"));
            }
            if (s == "ap-ratio")
                for (const auto& t : trials)
                    QVERIFY(t.source.rfind("ap-ratio:slope=", 0) == 0);

            r = runCli({"pareto", "--db", db, "--run", QString::number(run), "--json", "--all"});
            QVERIFY2(r.exitCode == 0, r.err.constData());
            const auto pj = r.json();
            QCOMPARE(pj["tokens"].get<int64_t>(), tokens);
            for (const auto& f : pj["front"])
                QCOMPARE(f["fidelity"].get<double>(), 1.0);
            size_t full = 0;
            for (const auto& t : trials)
                full += t.fidelity >= 1 ? 1 : 0;
            QCOMPARE(pj["complete_full_fidelity"].get<size_t>(), full);
            QCOMPARE(pj["hypervolume_trace"].size(), full);
            if (!pj["chosen"].is_null())
                QCOMPARE(trials[pj["chosen"]["trial"].get<size_t>()].fidelity, 1.0);
        }
        // Bad strategy settings are named before anything runs.
        auto r = runCli({"search", model, "--tokenizer", tok, "--db", db, "--strategy", "cma-es"});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("search.strategy") && r.err.contains("cma-es") && r.err.contains("evopress"),
                 r.err.constData());
        r = runCli({"search", model, "--tokenizer", tok, "--db", db, "--fidelities", "0.5,0.25,1"});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("ascend"), r.err.constData());
        r = runCli({"search", model, "--tokenizer", tok, "--db", db, "--strategy", "evopress", "--evopress-survivors",
                    "4"});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("survivor"), r.err.constData());
        r = runCli({"search", model, "--tokenizer", tok, "--db", db, "--fidelities", "a,1"});
        QCOMPARE(r.exitCode, 2);
        QVERIFY2(r.err.contains("--fidelities"), r.err.constData());
    }

    void runConfigRecordsEveryStage()
    {
        QPRUNER_SHARED_FILE(modelFile, "models/stories260K/stories260K.bin");
        QTemporaryDir tmp;
        const QString db = tmp.path() + "/study.db", config = tmp.path() + "/run.json";
        nlohmann::json c = {
            {"version", 1},
            {"experiment", "cli-test"},
            {"model", "${data}/models/stories260K/stories260K.bin"},
            {"importance", {{"metric", "bi"}, {"calibration", {{"samples", 4}, {"seq_len", 64}}}}},
            {"allocate", {{"budget", "7bpw"}}},
            {"search", {{"trials", 4}, {"validation", {{"windows", 2}}}}},
            {"evaluate", {{"ppl", {{{"windows", 2}, {"skip", 2}}}}}}};
        auto write = [&](const nlohmann::json& j) {
            std::ofstream(config.toStdString()) << j.dump(2);
        };
        write(c);
        auto r = runCli({"run", config, "--db", db, "--threads", "1", "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        qpruner::store::Store st(db.toStdString());
        const auto run = st.run(1);
        QCOMPARE(run.kind, std::string("pipeline"));
        QCOMPARE(run.status, qpruner::store::RunStatus::Done);
        // The stored config is normalised: paths resolved, defaults filled.
        QVERIFY(std::filesystem::path(run.config["model"].get<std::string>()).is_absolute());
        QCOMPARE(run.config["search"]["objective"].get<std::string>(), std::string("ppl"));
        QCOMPARE(run.config["allocate"]["method"].get<std::string>(), std::string("probabilistic"));
        std::vector<std::string> names;
        for (const auto& s : st.stages(1)) {
            names.push_back(s.name);
            QCOMPARE(s.status, qpruner::store::RunStatus::Done);
        }
        QCOMPARE(names, (std::vector<std::string>{"importance", "allocate", "search", "evaluate"}));
        QCOMPARE(st.layerScores(1, "bi").size(), size_t(5));
        std::vector<std::string> kinds;
        for (const auto& a : st.artifacts(1)) {
            kinds.push_back(a.kind);
            QCOMPARE(a.sha256, qpruner::io::sha256FileHex(a.path));
        }
        QCOMPARE(kinds, (std::vector<std::string>{"scores", "precision-map", "precision-map"}));
        QCOMPARE(st.trials(1).size(), size_t(4));
        const auto result = r.json()["stages"];
        QCOMPARE(result["evaluate"]["ppl"][0]["windows"].get<int>(), 2);
        QCOMPARE(result["evaluate"]["map"], result["search"]["chosen"]["map"]);
        QCOMPARE(result["search"]["variant_cache"].get<std::string>(), std::string("memory")); // auto, a small model

        // The same search with its variants in mapped files under the run's workdir: the same trials, number for
        // number, and no file left there.
        c["search"]["variant_cache"] = "disk";
        write(c);
        r = runCli({"run", config, "--db", tmp.path() + "/disk.db", "--threads", "1", "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const std::string where = r.json()["stages"]["search"]["variant_cache"];
        QVERIFY2(where.rfind("disk: ", 0) == 0 && where.find("/variants") != std::string::npos, where.c_str());
        QVERIFY(std::filesystem::is_empty(where.substr(6)));
        const auto diskTrials = qpruner::store::Store((tmp.path() + "/disk.db").toStdString()).trials(1);
        QCOMPARE(diskTrials.size(), st.trials(1).size());
        for (size_t i = 0; i < diskTrials.size(); ++i)
            QCOMPARE(diskTrials[i].objective, st.trials(1)[i].objective);
        c["search"]["variant_cache"] = "swap";
        write(c);
        r = runCli({"run", config, "--db", db});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("search.variant_cache: expected auto, memory or disk, got 'swap'"), r.err.constData());
        c["search"].erase("variant_cache");

        // Bad configs name the key; nothing is recorded for a config that does not parse.
        c["search"]["trails"] = 3;
        write(c);
        r = runCli({"run", config, "--db", db});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("search.trails: unknown key"), r.err.constData());
        c["search"].erase("trails");
        c["search"]["validation"]["windows"] = 0;
        write(c);
        r = runCli({"run", config, "--db", db});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("search.validation.windows: expected an integer >= 1"), r.err.constData());
        std::ofstream(config.toStdString()) << "{\"version\": 1,";
        r = runCli({"run", config, "--db", db});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("run.json"), r.err.constData());
        QCOMPARE(qpruner::store::Store(db.toStdString()).runs().size(), size_t(1));

        // --compute-dtype sets the new run's compute_dtype (stored, and in every stage's "compute"); a resumed run
        // keeps its own; float16 is refused by name. None of these add a run to the first store.
        c["search"]["trials"] = 2;
        c["search"]["validation"]["windows"] = 1;
        c["evaluate"] = nullptr;
        write(c);
        const QString bf16Db = tmp.path() + "/bf16.db";
        r = runCli({"run", config, "--db", bf16Db, "--threads", "1", "--compute-dtype", "bf16", "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QCOMPARE(qpruner::store::Store(bf16Db.toStdString()).run(1).config["compute_dtype"].get<std::string>(),
                 std::string("bfloat16"));
        QCOMPARE(r.json()["stages"]["search"]["compute"]["quantized"]["dtype"].get<std::string>(),
                 std::string("bfloat16"));
        r = runCli({"run", "--resume", "1", "--db", bf16Db, "--compute-dtype", "float32"});
        QCOMPARE(r.exitCode, 2);
        QVERIFY2(r.err.contains("a resumed run keeps the compute dtype it started with"), r.err.constData());
        r = runCli({"run", config, "--db", db, "--compute-dtype", "float16"});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("compute_dtype: float16 has no matmul on the CPU"), r.err.constData());
        QCOMPARE(qpruner::store::Store(db.toStdString()).runs().size(), size_t(1));
    }

    // SIGTERM (what Slurm sends before a time limit, and what Ctrl-C's SIGINT does too) mid-search: the process
    // stops between steps and exits 143, the run and its stage are recorded "cancelled" with no trial left running,
    // and --resume completes the search to the asked number of trials.
    void sigtermCancelsRunAndResumeCompletes()
    {
        QPRUNER_SHARED_FILE(modelFile, "models/stories260K/stories260K.bin");
        QTemporaryDir tmp;
        const QString db = tmp.path() + "/study.db", config = tmp.path() + "/run.json";
        const int trials = 12;
        const nlohmann::json c = {
            {"version", 1},
            {"model", "${data}/models/stories260K/stories260K.bin"},
            {"importance", {{"metric", "bi"}, {"calibration", {{"samples", 4}, {"seq_len", 64}}}}},
            {"allocate", {{"budget", "7bpw"}}},
            {"search", {{"trials", trials}, {"granularity", "group"}, {"validation", {{"windows", 16}}}}},
            {"evaluate", nullptr}};
        std::ofstream(config.toStdString()) << c.dump(2);
        QProcess p;
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert("QPRUNER_SHARED_DATA", QString::fromStdString(qpruner::testing::sharedDataDir().string()));
        p.setProcessEnvironment(env);
        p.start(QStringLiteral(QPRUNER_CLI_PATH), {"run", config, "--db", db, "--threads", "1"});
        QVERIFY(p.waitForStarted());
        // Wait for the search to have completed a trial, then signal.
        bool started = false;
        for (int i = 0; i < 1200 && !started && p.state() == QProcess::Running; ++i) {
            QThread::msleep(100);
            if (!std::filesystem::exists(db.toStdString()))
                continue;
            try {
                for (const auto& t : qpruner::store::Store(db.toStdString()).trials(1))
                    started = started || t.state == qpruner::store::TrialState::Complete;
            } catch (const std::exception&) { // the schema may not exist yet
            }
        }
        QVERIFY2(started, "no trial completed before the process ended");
        p.terminate(); // SIGTERM
        QVERIFY(p.waitForFinished(120000));
        const QByteArray err = p.readAllStandardError();
        QCOMPARE(p.exitStatus(), QProcess::NormalExit);
        QVERIFY2(p.exitCode() == 143, err.constData());
        QVERIFY2(err.contains("cancelled by signal 15"), err.constData());
        {
            qpruner::store::Store st(db.toStdString());
            QCOMPARE(st.run(1).status, qpruner::store::RunStatus::Cancelled);
            for (const auto& s : st.stages(1))
                QVERIFY2(s.status != qpruner::store::RunStatus::Running, s.name.c_str());
            QCOMPARE(st.stages(1).back().name, std::string("search"));
            QCOMPARE(st.stages(1).back().status, qpruner::store::RunStatus::Cancelled);
            int complete = 0;
            for (const auto& t : st.trials(1)) {
                QVERIFY(t.state != qpruner::store::TrialState::Running);
                complete += t.state == qpruner::store::TrialState::Complete;
            }
            QVERIFY2(complete >= 1 && complete < trials, qPrintable(QString::number(complete)));
        }
        const auto r = runCli({"run", "--resume", "1", "--db", db, "--threads", "1", "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        qpruner::store::Store st(db.toStdString());
        QCOMPARE(st.run(1).status, qpruner::store::RunStatus::Done);
        int complete = 0;
        for (const auto& t : st.trials(1))
            complete += t.state == qpruner::store::TrialState::Complete;
        QCOMPARE(complete, trials);
    }

    // finetune writes a PEFT adapter directory and records curves and memory in the store; eval-ppl --adapter
    // scores the adapted model; a finished run resumes to nothing more; the pipeline runs a finetune stage (and a
    // short recovery inside each search trial) and evaluates with the adapter.
    void finetuneAdapterAndPipelineStage()
    {
        QPRUNER_SHARED_FILE(modelFile, "models/stories260K/stories260K.bin");
        QTemporaryDir tmp;
        const QString db = tmp.path() + "/study.db", out = tmp.path() + "/adapter";
        const QStringList common = {"finetune", shared("models/stories260K/stories260K.bin"), "--uniform", "nf4",
                                    "--data", "tinystories", "--seq-len", "64", "--max-examples", "60",
                                    "--steps", "4", "--batch-size", "4", "--warmup", "1", "--lr", "1e-3",
                                    "--eval-every", "2", "--threads", "1", "--out", out, "--json"};
        auto r = runCli(common + QStringList{"--db", db});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const auto j = r.json();
        QCOMPARE(j["train"]["steps"].get<int>(), 4);
        QCOMPARE(j["train"]["train"].size(), size_t(4));
        QCOMPARE(j["train"]["validation"].size(), size_t(3)); // steps 0, 2, 4
        QCOMPARE(j["data"]["validation_examples"].get<int>(), 6);
        QVERIFY(j["memory"]["measured_peak_rss_bytes"].get<int64_t>() > 0);
        QVERIFY(j["memory"]["predicted"]["total_bytes"].get<int64_t>() > 0);
        QCOMPARE(j["init"]["layers"].size(), size_t(5));
        for (const char* f : {"adapter_model.safetensors", "adapter_config.json", "training.json", "base/config.json",
                              "checkpoint/trainer_state.json"})
            QVERIFY2(QFile::exists(out + "/" + f), f);
        {
            qpruner::store::Store st(db.toStdString());
            const auto stages = st.stages(1);
            QCOMPARE(stages.size(), size_t(1));
            QCOMPARE(stages[0].name, std::string("finetune"));
            QCOMPARE(stages[0].result["train"]["train"].size(), size_t(4)); // the curves are in the store
            std::vector<std::string> kinds;
            for (const auto& a : st.artifacts(1))
                kinds.push_back(a.kind);
            QCOMPARE(kinds, (std::vector<std::string>{"adapter", "training", "base"}));
        }

        const QStringList eval = {"eval-ppl", shared("models/stories260K/stories260K.bin"), "--file",
                                  shared("text/tinystories/tinystories_valid_subset.txt"), "--seq-len", "64",
                                  "--max-windows", "8", "--threads", "1", "--json"};
        r = runCli(eval + QStringList{"--adapter", out});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const double adapted = r.json()["ppl"];
        r = runCli(eval + QStringList{"--format", "nf4"});
        const double plain = r.json()["ppl"];
        QVERIFY2(std::abs(adapted - plain) > 1e-4, qPrintable(QString("%1 vs %2").arg(adapted).arg(plain)));
        r = runCli(eval + QStringList{"--adapter", out, "--format", "nf4"});
        QCOMPARE(r.exitCode, 2);
        QVERIFY2(r.err.contains("--adapter brings its own precision map"), r.err.constData());

        r = runCli(common + QStringList{"--resume"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QCOMPARE(r.json()["train"]["resumed_from"].get<int>(), 4);
        QCOMPARE(r.json()["train"]["train"].size(), size_t(4));
        r = runCli(common + QStringList{"--resume", "--batch-size", "3"});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("batch_size"), r.err.constData());

        const QString config = tmp.path() + "/run.json";
        nlohmann::json c = {
            {"version", 1},
            {"experiment", "cli-test"},
            {"model", "${data}/models/stories260K/stories260K.bin"},
            {"importance", {{"metric", "bi"}, {"calibration", {{"samples", 4}, {"seq_len", 64}}}}},
            {"allocate", {{"budget", "7bpw"}}},
            {"search",
             {{"trials", 2},
              {"validation", {{"windows", 2}, {"seq_len", 64}, {"skip", 200}}},
              {"recovery", {{"steps", 2}, {"seq_len", 64}, {"max_examples", 16}, {"batch_size", 4}}}}},
            {"finetune", {{"steps", 3}, {"seq_len", 64}, {"max_examples", 40}, {"batch_size", 4}, {"warmup", 1}}},
            {"evaluate", {{"ppl", {{{"windows", 2}, {"seq_len", 64}, {"skip", 200}}}}}}};
        std::ofstream(config.toStdString()) << c.dump(2);
        r = runCli({"run", config, "--db", db, "--threads", "1", "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        qpruner::store::Store st(db.toStdString());
        std::vector<std::string> names;
        for (const auto& s : st.stages(2))
            names.push_back(s.name);
        QCOMPARE(names, (std::vector<std::string>{"importance", "allocate", "search", "finetune", "evaluate"}));
        const auto stages = r.json()["stages"];
        QCOMPARE(stages["finetune"]["train"]["steps"].get<int>(), 3);
        QVERIFY(stages["evaluate"]["adapter"].is_string());
        const auto trials = st.trials(2);
        QCOMPARE(trials.size(), size_t(2));
        for (const auto& t : trials) // each trial recovered for 2 steps before it was scored
            QCOMPARE(t.metrics["recovery"]["steps"].get<int>(), 2);
        QCOMPARE(st.run(2).config["finetune"]["init"].get<std::string>(), std::string("loftq"));
        QCOMPARE(st.run(2).config["search"]["recovery"]["init"].get<std::string>(), std::string("lora"));
        c["finetune"]["rnak"] = 4;
        std::ofstream(config.toStdString()) << c.dump(2);
        r = runCli({"run", config, "--db", db});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("finetune.rnak: unknown key"), r.err.constData());
    }

    // qpruner trial: each action a stage of the run; its numbers those of the stage commands; bad input named.
    void trialActionsFromTheCommandLine()
    {
        QPRUNER_SHARED_FILE(modelFile, "models/stories260K/stories260K.bin");
        QTemporaryDir tmp;
        const QString db = tmp.path() + "/study.db", config = tmp.path() + "/run.json";
        const nlohmann::json c = {{"version", 1},
                                  {"model", "${data}/models/stories260K/stories260K.bin"},
                                  {"importance", {{"metric", "bi"}, {"calibration", {{"samples", 4}, {"seq_len", 64}}}}},
                                  {"allocate", {{"budget", "6bpw"}}},
                                  {"search", {{"trials", 3}, {"validation", {{"windows", 2}, {"seq_len", 64}}}}},
                                  {"evaluate", nullptr}};
        std::ofstream(config.toStdString()) << c.dump(2);
        auto r = runCli({"run", config, "--db", db, "--threads", "1", "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const int trial = r.json()["stages"]["search"]["chosen"]["trial"].get<int>();
        const QString t = QString::number(trial);

        // Evaluate without recovery: the map alone, as eval-tasks --map gives it.
        r = runCli({"trial", "evaluate", "--db", db, "--run", "1", "--trial", t, "--tasks", "piqa", "--limit", "12",
                    "--evaluate", R"({"ppl": [{"source": "tinystories", "windows": 2, "seq_len": 64}]})", "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const auto ev = r.json();
        QVERIFY(ev["adapter"].is_null());
        QCOMPARE(ev["ppl"].size(), size_t(1));
        QCOMPARE(ev["ppl"][0]["windows"].get<int>(), 2);
        const QString map = tmp.path() + "/map.json";
        {
            qpruner::store::Store st(db.toStdString());
            std::ofstream(map.toStdString()) << st.trial(1, trial).map.dump(2);
        }
        r = runCli({"eval-tasks", shared("models/stories260K/stories260K.bin"), "--tokenizer",
                    shared("models/stories260K/tok512.bin"), "--map", map, "--tasks", "piqa", "--limit", "12", "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QCOMPARE(ev["tasks"][0]["acc"].get<double>(), r.json()["tasks"]["piqa"]["acc"].get<double>());
        QCOMPARE(ev["tasks"][0]["acc_norm"].get<double>(), r.json()["tasks"]["piqa"]["acc_norm"].get<double>());

        // Recover, then export: the dry run's size is the file's.
        r = runCli({"trial", "recover", "--db", db, "--run", "1", "--trial", t, "--steps", "3", "--finetune",
                    R"({"seq_len": 64, "max_examples": 32, "batch_size": 4, "max_val": 4, "init": "lora"})"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QVERIFY(r.out.contains("recovered: 3 steps"));
        r = runCli({"trial", "export", "--db", db, "--run", "1", "--trial", t, "--dry-run", "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const int64_t planned = r.json()["total_bytes"].get<int64_t>();
        const QString gguf = tmp.path() + "/t.gguf";
        r = runCli({"trial", "export", "--db", db, "--run", "1", "--trial", t, "--out", gguf});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QCOMPARE(QFileInfo(gguf).size(), qint64(planned));
        // Generate with the map alone (--no-adapter): the ids of `generate --map`.
        r = runCli({"trial", "generate", "--db", db, "--run", "1", "--trial", t, "--steps", "12", "--no-base",
                    "--no-adapter", "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QVERIFY(r.json()["base"].is_null());
        QVERIFY(r.json()["compressed"]["adapter"].is_null());
        const auto generated = r.json()["compressed"]["ids"];
        QVERIFY(generated.size() > 4);
        r = runCli({"generate", shared("models/stories260K/stories260K.bin"), "--tokenizer",
                    shared("models/stories260K/tok512.bin"), "--map", map, "--steps", "12", "--temperature", "0",
                    "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QCOMPARE(generated.dump(), r.json()["ids"].dump());
        {
            qpruner::store::Store st(db.toStdString());
            std::vector<std::string> names;
            for (const auto& s : st.stages(1))
                if (s.name.rfind("trial-", 0) == 0)
                    names.push_back(s.name);
            QCOMPARE(names, (std::vector<std::string>{"trial-evaluate", "trial-recover", "trial-export",
                                                      "trial-generate"}));
        }

        // Bad input: named, exit codes 1 (error) and 2 (usage); nothing recorded for them.
        r = runCli({"trial", "evaluate", "--db", db, "--run", "1", "--trial", "77"});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("run 1, trial 77: no such trial"), r.err.constData());
        r = runCli({"trial", "recover", "--db", db, "--run", "1", "--trial", t, "--resume"});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("no interrupted recovery to continue"), r.err.constData());
        r = runCli({"trial", "recover", "--db", db, "--run", "1", "--trial", t, "--finetune", "{steps: 3"});
        QCOMPARE(r.exitCode, 2);
        QVERIFY2(r.err.contains("--finetune: not valid JSON"), r.err.constData());
        r = runCli({"trial", "recover", "--db", db, "--run", "1", "--trial", t, "--finetune", R"({"rnak": 4})"});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("finetune.rnak: unknown key"), r.err.constData());
        r = runCli({"trial", "evaluate", "--db", db, "--run", "1", "--trial", t, "--tasks", "bogus"});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("evaluate.tasks: unknown task \"bogus\""), r.err.constData());
        r = runCli({"trial", "export", "--db", db, "--run", "1", "--trial", t});
        QCOMPARE(r.exitCode, 2);
        QVERIFY2(r.err.contains("--out is required"), r.err.constData());
        r = runCli({"trial", "bake", "--db", db});
        QCOMPARE(r.exitCode, 2);
        QVERIFY2(r.err.contains("unknown action 'bake'"), r.err.constData());
        qpruner::store::Store st(db.toStdString());
        QCOMPARE(st.stages(1).back().name, std::string("trial-generate"));
    }

    void errorsHaveExitCodesAndMessages()
    {
        auto r = runCli({"info", "/nonexistent/model.bin"});
        QCOMPARE(r.exitCode, 1);
        QVERIFY(r.err.contains("/nonexistent/model.bin"));
        r = runCli({"eval-ppl", "x", "--no-such-option"});
        QCOMPARE(r.exitCode, 2);
        QVERIFY(r.err.contains("--no-such-option"));
        r = runCli({"generate", "x", "--steps", "many"});
        QCOMPARE(r.exitCode, 2);
        QVERIFY(r.err.contains("--steps"));
        r = runCli({"frobnicate"});
        QCOMPARE(r.exitCode, 2);
        r = runCli({"eval-tasks", "x", "--tasks", "mmlu", "--eval-dir", "/tmp"});
        QCOMPARE(r.exitCode, 1);
        QVERIFY(r.err.contains("unknown task 'mmlu'"));
        QPRUNER_SHARED_FILE(model, "models/stories260K/stories260K.bin");
        QTemporaryDir tmp;
        const QString cut = tmp.path() + "/cut.bin";
        QFile::copy(shared("models/stories260K/stories260K.bin"), cut);
        QFile(cut).resize(4000);
        r = runCli({"generate", cut, "--tokenizer", shared("models/stories260K/tok512.model"), "--steps", "4"});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("truncated") && r.err.contains("cut.bin"), r.err.constData());
        r = runCli({"eval-ppl", shared("models/stories260K/stories260K.bin"), "--tokenizer",
                     shared("models/stories260K/tok512.model"), "--file", shared("models/stories260K/stories260K.bin")});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("UTF-8"), r.err.constData());
        // --help prints usage and succeeds for every command.
        for (const char* c : {"info", "tokenize", "generate", "eval-ppl", "eval-tasks", "make-random", "prune",
                              "quantize", "memory", "quant-error", "importance", "allocate", "search", "run", "runs",
                              "pareto"}) {
            r = runCli({c, "--help"});
            QCOMPARE(r.exitCode, 0);
            QVERIFY(r.out.contains("usage: qpruner"));
        }
    }
};

QTEST_GUILESS_MAIN(TestCli)
#include "test_cli.moc"

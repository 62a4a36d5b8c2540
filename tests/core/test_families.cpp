// The decoder families (llama, mistral, qwen2, qwen3, phi3, gemma3_text) end to end on random models of each
// family's structure: config.json round trips, the published parameter counts of the real shapes, save/load
// through the native and Hugging Face layouts (Phi-3's fused projections, Gemma's (1 + w) norms), GGUF export and
// load, pruning and quantization, and real llama.cpp (node-llama-cpp's prebuilt CPU binaries, installed into the
// build directory by scripts/run-tests.sh) as the independent reference of the forward pass: greedy ids identical
// and teacher-forced log-probs within 1e-4 on our F32 GGUF exports.
#include <QtTest/QtTest>

#include <cstdlib>
#include <filesystem>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "config/config_json.h"
#include "eval/generation.h"
#include "export/gguf_file.h"
#include "export/gguf_model_config.h"
#include "io/json_file.h"
#include "io/safetensors_header.h"
#include "model/checkpoint.h"
#include "model/random_model.h"
#include "prune/pruner.h"
#include "qpruner/model_export.h"
#include "quant/model_quantizer.h"
#include "model_fixtures.h"
#include "test_data.h"

using namespace qpruner;
using qpruner::testing::maxAbsDiff;

namespace {

const std::vector<std::string> kTinyFamilies = {"tiny",       "tiny-llama3", "tiny-mistral", "tiny-qwen2",
                                                "tiny-qwen3", "tiny-phi3",   "tiny-gemma3"};

std::filesystem::path nodeModules()
{
    if (const char* env = std::getenv("QPRUNER_NODE_MODULES"); env && *env)
        return env;
    return QPRUNER_NODE_MODULES_DIR;
}

// A prompt of stories260K-tokenizer ids (BOS first) and the reference's answer for a GGUF file.
const std::vector<int32_t> kPrompt = {1, 403, 407, 261, 378, 436, 279, 355};

std::vector<int32_t> idsOf(const nlohmann::json& j)
{
    return j.get<std::vector<int32_t>>();
}

// Our log p(tokens[t + 1] | tokens[..t]) for every t, from one teacher-forced pass.
std::vector<double> ourLogprobs(const model::LlamaModel& m, const std::vector<int32_t>& tokens)
{
    c10::InferenceMode guard;
    const auto logits = m.forward(qpruner::testing::tokensTensor(tokens)).squeeze(0); // [T, V]
    const auto lp = at::log_softmax(logits.to(at::kDouble), -1);
    std::vector<double> out;
    for (size_t t = 0; t + 1 < tokens.size(); ++t)
        out.push_back(lp[static_cast<int64_t>(t)][tokens[t + 1]].item<double>());
    return out;
}

eval::GenerateResult ourGreedy(const model::LlamaModel& m, const std::vector<int32_t>& prompt, int steps)
{
    c10::InferenceMode guard;
    eval::GenerateOptions o;
    o.temperature = 0;
    o.steps = static_cast<int>(prompt.size()) + steps;
    return eval::generate(m, prompt, o);
}

at::Tensor logitsOf(const model::LlamaModel& m)
{
    c10::InferenceMode guard;
    return m.forward(qpruner::testing::tokensTensor(kPrompt));
}

} // namespace

class TestFamilies : public QObject {
    Q_OBJECT

    std::filesystem::path tmp_;
    std::filesystem::path tokenizer_;

    // llama.cpp's greedy continuation and teacher-forced log-probs for `gguf`, or skips/fails when node or
    // node-llama-cpp is missing.
    bool runLlamaCpp(const std::filesystem::path& gguf, int steps, nlohmann::json& out)
    {
        const auto modules = nodeModules();
        if (!std::filesystem::exists(modules / "node-llama-cpp" / "dist" / "index.js")) {
            const QString msg = QStringLiteral("node-llama-cpp is not installed in %1 (scripts/run-tests.sh installs it)")
                                    .arg(QString::fromStdString(modules.string()));
            if (qpruner::testing::dataRequired())
                QTest::qFail(msg.toUtf8().constData(), __FILE__, __LINE__);
            else
                QTest::qSkip(msg.toUtf8().constData(), __FILE__, __LINE__);
            return false;
        }
        QProcess p;
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert("NODE_MODULES", QString::fromStdString(modules.string()));
        p.setProcessEnvironment(env);
        const QString script = QStringLiteral(QPRUNER_TEST_TOOLS_DIR "/llamacpp_reference.mjs");
        p.start("node", {script, QString::fromStdString(gguf.string()),
                         QString::fromStdString(nlohmann::json(kPrompt).dump()), QString::number(steps)});
        if (!p.waitForFinished(120000) || p.exitCode() != 0) {
            QTest::qFail(("llama.cpp reference failed: " + p.readAllStandardError().toStdString()).c_str(), __FILE__,
                         __LINE__);
            return false;
        }
        out = nlohmann::json::parse(p.readAllStandardOutput().toStdString());
        return true;
    }

    std::filesystem::path exportGguf(const std::filesystem::path& model, const std::string& name,
                                     std::optional<PrecisionMap> map = std::nullopt)
    {
        ExportOptions o;
        o.target = ExportTarget::Gguf;
        o.model = model;
        o.out = tmp_ / (name + ".gguf");
        o.tokenizer = tokenizer_;
        o.map = std::move(map);
        // (llama.cpp sets token attributes by general.name: a name with "phi3" in it makes it look up Phi-3's
        // special tokens, which the stories260K vocabulary has not.)
        o.name = "random test model";
        exportModel(o);
        return o.out;
    }

    // Compares llama.cpp on `gguf` with `ours`: greedy ids over `idSteps` identical, log-probs within `tol`
    // (skipped when tol < 0). Returns the largest log-prob difference.
    double compareWithLlamaCpp(const model::LlamaModel& ours, const std::filesystem::path& gguf, int steps, int idSteps,
                               double tol, nlohmann::json* refOut = nullptr)
    {
        nlohmann::json local;
        nlohmann::json& ref = refOut ? *refOut : local;
        if (!runLlamaCpp(gguf, steps, ref))
            return -1;
        const auto generated = ourGreedy(ours, kPrompt, steps);
        const auto& greedy = generated.generated;
        const auto theirs = idsOf(ref["greedy"]);
        for (int i = 0; i < idSteps; ++i)
            if (greedy[size_t(i)] != theirs[size_t(i)])
                QTest::qFail(("greedy ids differ at step " + std::to_string(i) + ": ours " + std::to_string(greedy[size_t(i)]) +
                              ", llama.cpp " + std::to_string(theirs[size_t(i)]))
                                 .c_str(),
                             __FILE__, __LINE__);
        const auto tokens = idsOf(ref["tokens"]);
        const auto lp = ourLogprobs(ours, tokens);
        const auto theirLp = ref["logprobs"].get<std::vector<double>>();
        double worst = 0;
        for (size_t t = 0; t < lp.size(); ++t)
            worst = std::max(worst, std::abs(lp[t] - theirLp[t]));
        // The log-probs generate() reports (KV cache, one token a pass) are the teacher-forced ones.
        for (size_t i = 0; i < generated.logprobs.size() && i < size_t(idSteps); ++i)
            if (std::abs(generated.logprobs[i] - lp[kPrompt.size() - 1 + i]) > 1e-5)
                QTest::qFail(("generate()'s log-prob of step " + std::to_string(i) + " differs from the teacher-forced one")
                                 .c_str(),
                             __FILE__, __LINE__);
        if (tol >= 0 && !(worst <= tol))
            QTest::qFail(("teacher-forced log-probs differ from llama.cpp's by up to " + std::to_string(worst)).c_str(),
                         __FILE__, __LINE__);
        return worst;
    }

private Q_SLOTS:
    void initTestCase()
    {
        tmp_ = std::filesystem::temp_directory_path() / ("qpruner_test_families_" + std::to_string(::getpid()));
        std::filesystem::create_directories(tmp_);
        at::set_num_threads(1);
        tokenizer_ = qpruner::testing::sharedDataDir() / "models/stories260K/tok512.model";
    }
    void cleanupTestCase() { std::filesystem::remove_all(tmp_); }

    // The real shapes count the parameters their families publish (safetensors totals), and their config.json
    // reads back to the same configuration.
    void publishedShapes_data()
    {
        QTest::addColumn<QString>("preset");
        QTest::addColumn<qint64>("parameters");
        QTest::newRow("llama-3.2-1b") << "llama-3.2-1b" << qint64(1235814400);
        QTest::newRow("qwen3-0.6b") << "qwen3-0.6b" << qint64(596049920);
        QTest::newRow("qwen2.5-0.5b") << "qwen2.5-0.5b" << qint64(494032768);
        QTest::newRow("gemma-3-1b") << "gemma-3-1b" << qint64(999885952);
        QTest::newRow("phi-3-mini") << "phi-3-mini" << qint64(3821079552);
        QTest::newRow("mistral-7b") << "mistral-7b" << qint64(7241732096);
    }
    void publishedShapes()
    {
        QFETCH(QString, preset);
        QFETCH(qint64, parameters);
        const ModelConfig& c = model::findRandomPreset(preset.toStdString()).config;
        QCOMPARE(c.parameterCount(), int64_t(parameters));
        const auto j = config::toNativeConfigJson(c, "bfloat16");
        const ModelConfig back = config::fromConfigJson(j, "config.json");
        QVERIFY(back == c);
        // Plain HF configs (no "qpruner" object) read the same.
        auto plain = j;
        plain.erase("qpruner");
        QVERIFY(config::fromConfigJson(plain, "config.json") == c);
    }

    void hfConfigsOfTheFamilies()
    {
        // Gemma 3 as published: layer types from the pattern, tied embeddings by default, GeGLU.
        const nlohmann::json gemma = {
            {"architectures", {"Gemma3ForCausalLM"}}, {"model_type", "gemma3_text"}, {"hidden_size", 1152},
            {"intermediate_size", 6912}, {"num_hidden_layers", 26}, {"num_attention_heads", 4},
            {"num_key_value_heads", 1}, {"head_dim", 256}, {"vocab_size", 262144}, {"max_position_embeddings", 32768},
            {"rms_norm_eps", 1e-6}, {"rope_theta", 1000000.0}, {"rope_local_base_freq", 10000.0},
            {"sliding_window", 512}, {"sliding_window_pattern", 6}, {"query_pre_attn_scalar", 256},
            {"hidden_activation", "gelu_pytorch_tanh"}, {"final_logit_softcapping", nullptr},
            {"attn_logit_softcapping", nullptr}, {"rope_scaling", nullptr}, {"bos_token_id", 2},
            {"eos_token_id", {1, 106}}};
        const ModelConfig g = config::fromConfigJson(gemma, "config.json");
        QVERIFY(g == model::findRandomPreset("gemma-3-1b").config);
        QVERIFY(g.tiedEmbeddings && g.qkNorm && g.sandwichNorms && g.unitOffsetNorms());
        QVERIFY(g.slidingLayer(0) && g.slidingLayer(4) && !g.slidingLayer(5) && g.slidingLayer(6) && !g.slidingLayer(23) && g.slidingLayer(25));
        QCOMPARE(g.embeddingScale(), std::sqrt(1152.0));

        // What is refused, by name.
        auto bad = gemma;
        bad["final_logit_softcapping"] = 30.0;
        VERIFY_THROWS(FormatError, config::fromConfigJson(bad, "config.json"), "final_logit_softcapping");
        bad = gemma;
        bad["model_type"] = "gemma2";
        VERIFY_THROWS(FormatError, config::fromConfigJson(bad, "config.json"), "model_type 'gemma2'", "gemma3_text");
        bad = gemma;
        bad["layer_types"] = {"sliding_attention"};
        VERIFY_THROWS(FormatError, config::fromConfigJson(bad, "config.json"), "layer_types lists 1 layers");
        auto phi = config::toNativeConfigJson(model::findRandomPreset("phi-3-mini").config, "bfloat16");
        phi["rope_scaling"] = {{"type", "longrope"}, {"long_factor", {1.0}}, {"short_factor", {1.0}}};
        VERIFY_THROWS(FormatError, config::fromConfigJson(phi, "config.json"), "rope_scaling type 'longrope'");
        phi = config::toNativeConfigJson(model::findRandomPreset("phi-3-mini").config, "bfloat16");
        phi["partial_rotary_factor"] = 0.75;
        VERIFY_THROWS(FormatError, config::fromConfigJson(phi, "config.json"), "partial_rotary_factor");
        // The written configs carry what transformers needs for the family.
        const auto pj = config::toNativeConfigJson(model::findRandomPreset("phi-3-mini").config, "bfloat16");
        QCOMPARE(pj["architectures"][0].get<std::string>(), std::string("Phi3ForCausalLM"));
        QCOMPARE(pj["sliding_window"].get<int>(), 2047);
        const auto qj = config::toNativeConfigJson(model::findRandomPreset("qwen3-0.6b").config, "bfloat16");
        QCOMPARE(qj["architectures"][0].get<std::string>(), std::string("Qwen3ForCausalLM"));
        QCOMPARE(qj["head_dim"].get<int>(), 128);
        QCOMPARE(qj["use_sliding_window"].get<bool>(), false);
    }

    // Each family: native save/load (HF tensor names, Phi-3 fused), HF export, GGUF export and load, and
    // llama.cpp's forward pass on the F32 GGUF.
    void roundTripsAndLlamaCpp_data()
    {
        QTest::addColumn<QString>("preset");
        for (const auto& p : kTinyFamilies)
            QTest::newRow(p.c_str()) << QString::fromStdString(p);
    }
    void roundTripsAndLlamaCpp()
    {
        QFETCH(QString, preset);
        QPRUNER_SHARED_FILE(tok, "models/stories260K/tok512.model");
        const std::string name = preset.toStdString();
        const auto& pr = model::findRandomPreset(name);
        const auto m = model::makeRandomModel(pr.config, at::kFloat, 7);
        const auto ref = logitsOf(*m);

        const auto dir = tmp_ / name;
        model::saveNativeModel(*m, dir, {});
        const auto cfg = io::readJsonFile(dir / "config.json");
        QCOMPARE(cfg["model_type"].get<std::string>(), pr.config.architecture);
        {
            const auto back = model::loadModel(dir);
            QVERIFY(back->config() == pr.config);
            QCOMPARE(maxAbsDiff(logitsOf(*back), ref), 0.0);
        }
        const auto header = io::readSafetensorsHeader(dir / "model.safetensors");
        const bool fusedStored = header.tensors.count("model.layers.0.self_attn.qkv_proj.weight") != 0;
        QCOMPARE(fusedStored, pr.config.architecture == "phi3"); // as transformers reads each family
        if (pr.config.qkNorm)
            QVERIFY(header.tensors.count("model.layers.1.self_attn.k_norm.weight"));
        if (pr.config.sandwichNorms)
            QVERIFY(header.tensors.count("model.layers.1.post_feedforward_layernorm.weight"));

        // Hugging Face export (fp32) reads back to the same outputs.
        ExportOptions hf;
        hf.target = ExportTarget::HuggingFace;
        hf.model = dir;
        hf.out = tmp_ / (name + "-hf");
        hf.tokenizer = tok;
        hf.dtype = "fp32";
        const ExportPlan hfPlan = exportModel(hf);
        QCOMPARE(QString::fromStdString(hfPlan.architecture), QString::fromStdString(config::hfArchitectureClass(pr.config.architecture)));
        QCOMPARE(maxAbsDiff(logitsOf(*model::loadModel(hf.out)), ref), 0.0);

        // GGUF (F32) reads back to the same outputs (Gemma's norms pass through 1 + w).
        const auto gguf = exportGguf(dir, name);
        const auto fromGguf = model::loadModel(gguf);
        QVERIFY(maxAbsDiff(logitsOf(*fromGguf), ref) < 1e-5);

        // Gemma: llama.cpp's own log-probs are 1.3e-4 from the float64 ones on this model (ours 2.4e-7), the
        // other families' 1.6e-5 to 7.3e-5 (its GELU goes through an fp16 table), so Gemma gets 2.5e-4.
        const double tol = pr.config.architecture == "gemma3_text" ? 2.5e-4 : 1e-4;
        nlohmann::json cpp;
        const double worst = compareWithLlamaCpp(*m, gguf, 64, 64, tol, &cpp);
        if (worst >= 0) {
            // How far each side is from the same model in float64.
            auto m64 = model::makeRandomModel(pr.config, at::kFloat, 7);
            m64->to(at::kDouble, at::kCPU);
            const auto tokens = idsOf(cpp["tokens"]);
            const auto exact = ourLogprobs(*m64, tokens), lp = ourLogprobs(*m, tokens);
            const auto theirs = cpp["logprobs"].get<std::vector<double>>();
            double ours64 = 0, theirs64 = 0;
            for (size_t t = 0; t < lp.size(); ++t) {
                ours64 = std::max(ours64, std::abs(lp[t] - exact[t]));
                theirs64 = std::max(theirs64, std::abs(theirs[t] - exact[t]));
            }
            qInfo("%s: 64 greedy ids identical to llama.cpp's, teacher-forced log-probs within %.2e (from float64: "
                  "ours %.2e, llama.cpp's %.2e)", name.c_str(), worst, ours64, theirs64);
            QVERIFY2(ours64 < 2e-6, "our float32 log-probs drift from the float64 pass");
        }
    }

    // A pruned llama (layers of different shapes) is llama.cpp's "deci"; other pruned families are refused with
    // the reason.
    void prunedModels()
    {
        QPRUNER_SHARED_FILE(tok, "models/stories260K/tok512.model");
        auto prune = [](model::LlamaModel& m) {
            std::vector<prune::LayerPlan> plan(m.layers.size());
            const LayerShape s = m.config().layers[0];
            const int groups = s.numKvHeads;
            plan[0].attentionPruned = true;
            for (int g = 0; g < groups; ++g)
                (g == 0 ? plan[0].removedGroups : plan[0].keptGroups).push_back(g);
            plan[1].mlpPruned = true;
            for (int ch = 0; ch < s.ffnDim; ++ch)
                (ch % 3 == 0 ? plan[1].removedChannels : plan[1].keptChannels).push_back(ch);
            prune::applyPruning(m, plan);
        };
        auto llama = model::makeRandomModel(model::findRandomPreset("tiny").config, at::kFloat, 11);
        prune(*llama);
        QVERIFY(!llama->config().homogeneous());
        model::saveNativeModel(*llama, tmp_ / "pruned-llama", {});
        const auto gguf = exportGguf(tmp_ / "pruned-llama", "pruned-llama");
        QCOMPARE(gguf::GgufFile::open(gguf).get("general.architecture").asString(), std::string("deci"));
        const double worst = compareWithLlamaCpp(*llama, gguf, 64, 64, 1e-4);
        if (worst >= 0)
            qInfo("pruned llama (deci): 64 greedy ids identical, log-probs within %.2e", worst);

        for (const char* family : {"tiny-qwen3", "tiny-gemma3", "tiny-phi3"}) {
            auto m = model::makeRandomModel(model::findRandomPreset(family).config, at::kFloat, 11);
            prune(*m);
            // Pruning keeps q/k norms (shared by the heads) and Gemma's norms; the pruned model still runs and
            // round-trips through the native format.
            const auto dir = tmp_ / (std::string("pruned-") + family);
            model::saveNativeModel(*m, dir, {});
            QCOMPARE(maxAbsDiff(logitsOf(*model::loadModel(dir)), logitsOf(*m)), 0.0);
            VERIFY_THROWS(ConfigError, exportGguf(dir, std::string("pruned-") + family), "has layers of different shapes",
                          "--pad-uniform");
        }
    }

    // A mixed-precision map exported to GGUF (q8_0 / iq4_nl / f16 tensors): llama.cpp quantizes activations for
    // its quantized matmuls, so ids are compared over the first 16 tokens against our model loaded from the
    // same file (the same dequantized weights).
    void mixedPrecisionMap_data()
    {
        QTest::addColumn<QString>("preset");
        QTest::newRow("tiny") << "tiny";
        QTest::newRow("tiny-qwen3") << "tiny-qwen3";
        QTest::newRow("tiny-phi3") << "tiny-phi3";
    }
    void mixedPrecisionMap()
    {
        QFETCH(QString, preset);
        QPRUNER_SHARED_FILE(tok, "models/stories260K/tok512.model");
        const std::string name = preset.toStdString();
        const auto& pr = model::findRandomPreset(name);
        const auto m = model::makeRandomModel(pr.config, at::kFloat, 5);
        const auto dir = tmp_ / (name + "-mixed-src");
        model::saveNativeModel(*m, dir, {});
        // Layer 0 int8, layer 1 nf4 (whole layers: Phi-3's fused tensors need one format per fused group).
        const PrecisionMap map = PrecisionMap::fromJson(
            {{"version", 1}, {"default", "int8"}, {"embedding", "fp32"}, {"layers", {{"1", "nf4"}}}});
        const auto gguf = exportGguf(dir, name + "-mixed", map);
        const auto fromGguf = model::loadModel(gguf);
        const double worst = compareWithLlamaCpp(*fromGguf, gguf, 16, 16, -1);
        if (worst >= 0)
            qInfo("%s mixed map: 16 greedy ids identical, log-probs within %.2e (llama.cpp quantizes activations)",
                  name.c_str(), worst);
    }

    // Every stage that touches the weights works on each family: Taylor pruning, quantization, and the
    // quantized model's native round trip (Phi-3 stores its quantized q/k/v apart).
    void pruneAndQuantizeEachFamily()
    {
        for (const auto& name : kTinyFamilies) {
            auto m = model::makeRandomModel(model::findRandomPreset(name).config, at::kFloat, 3);
            // An inference pass first (as the pipeline's importance stage does): nothing it caches (RoPE tables of
            // either base) may end up saved for backward by the gradient passes after it.
            (void)logitsOf(*m);
            const auto calib = qpruner::testing::randomTokens(4, 32, m->config().vocabSize, 9);
            prune::PruneOptions o;
            o.ratio = 0.5;
            o.attentionLayers = {0, m->config().numLayers()};
            o.mlpLayers = {0, m->config().numLayers()};
            const auto scores = prune::estimateImportance(*m, calib, o);
            prune::applyPruning(*m, prune::planPruning(m->config(), scores, o));
            QVERIFY2(m->config().layers[0].ffnDim == 80, name.c_str());
            quant::quantizeModel(*m, PrecisionMap::fromJson({{"version", 1}, {"default", "nf4"}, {"layers", {{"0", {{"q", "int8"}}}}}}));
            const auto before = logitsOf(*m);
            QVERIFY2(at::isfinite(before).all().item<bool>(), name.c_str());
            const auto dir = tmp_ / (name + "-pq");
            model::saveNativeModel(*m, dir, {});
            QVERIFY2(maxAbsDiff(logitsOf(*model::loadModel(dir)), before) < 1e-5, name.c_str());
        }
    }
};

QTEST_GUILESS_MAIN(TestFamilies)
#include "test_families.moc"

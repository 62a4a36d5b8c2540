// Model export (qpruner/model_export.h): GGUF files read back by our GGUF reader with identical metadata and
// tensors, q/k rows in llama.cpp's (Meta's) RoPE layout checked against llama2.c's own file, perplexity recomputed
// from the exported file within each mapping's documented error (docs/export.md), pruned models as llama.cpp's
// "deci" architecture, merged LoRA adapters, the Hugging Face directory, the dry-run preview's exact sizes, and
// refusals that leave an existing output untouched.
#include <QtTest/QtTest>

#include <cmath>
#include <algorithm>
#include <cstring>
#include <fstream>
#include <set>
#include <tuple>

#include <ATen/ATen.h>

#include "config/llama2c_layout.h"
#include "eval/perplexity.h"
#include "export/gguf_file.h"
#include "export/gguf_vocab.h"
#include "finetune/adapter_io.h"
#include "finetune/lora.h"
#include "io/file_bytes.h"
#include "io/json_file.h"
#include "io/safetensors_header.h"
#include "model/checkpoint.h"
#include "model/random_model.h"
#include "qpruner/model_export.h"
#include "qpruner/tokenizer.h"
#include "quant/model_quantizer.h"
#include "model_fixtures.h"
#include "test_data.h"

namespace fs = std::filesystem;
using namespace qpruner;

namespace {

at::Tensor logitsOf(const model::LlamaModel& m, const at::Tensor& tokens)
{
    c10::InferenceMode guard;
    return m.forward(tokens);
}

// Pruned-looking shapes: three layers of different head and FFN counts (GQA group 2 everywhere).
ModelConfig heterogeneousConfig()
{
    ModelConfig c;
    c.hiddenSize = 64;
    c.headDim = 8;
    c.vocabSize = 512;
    c.maxSeqLen = 128;
    c.layers = {LayerShape{8, 4, 160}, LayerShape{6, 3, 96}, LayerShape{4, 2, 128}};
    return c;
}

double relDiff(double a, double b) { return std::abs(a - b) / std::abs(b); }

} // namespace

class TestExport : public QObject {
    Q_OBJECT

    QTemporaryDir tmp_;
    fs::path dir() const { return tmp_.path().toStdString(); }

private Q_SLOTS:
    void initTestCase() { QVERIFY(tmp_.isValid()); }

    // stories260K (llama2.c, fp32) as an all-fp32 GGUF: metadata as llama.cpp reads it, the vocabulary, q/k rows
    // equal to llama2.c's own (Meta-layout) bytes, every other tensor equal to the source, the dry run's size
    // exact, and the model read back computing the same logits bit for bit.
    void ggufRoundTripIsExact()
    {
        QPRUNER_SHARED_FILE(bin, "models/stories260K/stories260K.bin");
        QPRUNER_SHARED_FILE(tok, "models/stories260K/tok512.model");
        ExportOptions o;
        o.model = bin;
        o.tokenizer = tok;
        o.out = dir() / "fp32.gguf";
        o.map = PrecisionMap::fromJson({{"version", 1}, {"default", "fp32"}, {"embedding", "fp32"}});
        const ExportPlan plan = planExport(o);
        QVERIFY(!fs::exists(o.out)); // a dry run writes nothing
        const ExportPlan wrote = exportModel(o);
        QCOMPARE(static_cast<int64_t>(fs::file_size(o.out)), plan.totalBytes);
        QCOMPARE(wrote.totalBytes, plan.totalBytes);
        for (const std::string& w : plan.warnings) // only the tokenizer's note on whitespace (gguf_vocab.h)
            QVERIFY2(w.find("whitespace") != std::string::npos, w.c_str());

        const gguf::GgufFile f = gguf::GgufFile::open(o.out);
        QCOMPARE(f.get("general.architecture").asString(), std::string("llama"));
        QCOMPARE(f.get("llama.block_count").asUInt(), uint64_t(5));
        QCOMPARE(f.get("llama.embedding_length").asUInt(), uint64_t(64));
        QCOMPARE(f.get("llama.attention.head_count").asUInt(), uint64_t(8));
        QCOMPARE(f.get("llama.attention.head_count_kv").asUInt(), uint64_t(4));
        QCOMPARE(f.get("llama.feed_forward_length").asUInt(), uint64_t(172));
        QCOMPARE(f.get("llama.rope.dimension_count").asUInt(), uint64_t(8));
        QCOMPARE(f.get("llama.attention.key_length").asUInt(), uint64_t(8));
        QCOMPARE(f.get("general.file_type").asUInt(), uint64_t(0)); // LLAMA_FTYPE_ALL_F32
        QCOMPARE(f.get("tokenizer.ggml.model").asString(), std::string("llama"));
        QCOMPARE(f.get("tokenizer.ggml.tokens").size(), size_t(512));
        // The tensors the plan listed, in order, with its types and sizes: 3 + 9 per layer (tied output).
        QCOMPARE(f.tensors().size(), plan.tensors.size());
        QCOMPARE(f.tensors().size(), size_t(2 + 9 * 5));
        for (size_t i = 0; i < plan.tensors.size(); ++i) {
            QCOMPARE(f.tensors()[i].name, plan.tensors[i].name);
            QCOMPARE(std::string(gguf::ggmlTypeName(f.tensors()[i].type)), plan.tensors[i].type);
            QCOMPARE(static_cast<int64_t>(f.tensors()[i].bytes()), plan.tensors[i].bytes);
        }

        // llama2.c stores wq/wk in Meta's interleaved layout, which is llama.cpp's: the bytes must be identical.
        const auto lay = config::readLlama2cLayout(bin);
        const std::string raw = io::readFileBytes(bin);
        for (const char* key : {"wq", "wk", "w2", "tok_embeddings"}) {
            const auto& a = lay.arrays.at(key);
            int64_t perLayer = 1;
            for (size_t d = (std::string(key) == "tok_embeddings" ? 0 : 1); d < a.shape.size(); ++d)
                perLayer *= a.shape[d];
            const std::string name = std::string(key) == "wq"   ? "blk.0.attn_q.weight"
                                     : std::string(key) == "wk" ? "blk.0.attn_k.weight"
                                     : std::string(key) == "w2" ? "blk.0.ffn_down.weight"
                                                                : "token_embd.weight";
            const gguf::TensorInfo& t = f.tensor(name);
            QCOMPARE(static_cast<int64_t>(t.bytes()), perLayer * 4);
            QVERIFY2(std::memcmp(f.data(t), raw.data() + a.offset, t.bytes()) == 0, name.c_str());
        }

        // inspectModel and loadModel read the file back; logits identical to the source.
        const ModelSummary s = inspectModel(o.out);
        QCOMPARE(s.format, std::string("gguf"));
        QCOMPARE(s.dtype, std::string("float32"));
        ModelConfig expected = inspectModel(bin).config;
        expected.normEps = static_cast<float>(expected.normEps); // GGUF stores it as f32, as llama.cpp reads it
        QCOMPARE(s.config, expected);
        const auto src = model::loadModel(bin);
        const auto back = model::loadModel(o.out);
        const at::Tensor tokens = testing::randomTokens(2, 24, 512, 3);
        QVERIFY(at::equal(logitsOf(*src, tokens), logitsOf(*back, tokens)));
        // The vocabulary inside the file tokenizes like the .model it came from.
        const auto fromGguf = loadTokenizer(o.out);
        const auto original = loadTokenizer(tok);
        const std::string text = "Once upon a time, a little girl named Lily found a shiny red ball.";
        QCOMPARE(fromGguf->encode(text, true), original->encode(text, true));
    }

    // Perplexity of the exported file, recomputed by our runtime, against the source: the documented bound of
    // each mapping (docs/export.md) is that the file deviates from the unquantized model's perplexity by no more
    // than the map's own format does, plus a slack: 1e-6 for the exact types, 0.5% for int8 -> q8_0, 1% for the
    // 4-bit mappings (ggml's 32-element blocks are finer than nf4's 64 and int4's g64, so they usually do better).
    void ggufPerplexityWithinMappingError()
    {
        QPRUNER_SHARED_FILE(bin, "models/stories260K/stories260K.bin");
        QPRUNER_SHARED_FILE(tok, "models/stories260K/tok512.model");
        QPRUNER_SHARED_FILE(text, "text/tinystories/tinystories_valid_subset.txt");
        const auto tokenizer = loadTokenizer(tok);
        const std::vector<int32_t> stream = tokenizer->encode(io::readFileBytes(text).substr(0, 60000));
        eval::PerplexityOptions po;
        po.seqLen = 256;
        po.maxWindows = 24;
        auto ppl = [&](const model::LlamaModel& m) { return eval::evaluatePerplexity(m, stream, po).ppl; };
        const double source = ppl(*model::loadModel(bin));

        struct Case {
            const char* format;
            const char* nf4Type;
            const char* ggmlType; // of the linears whose rows fit it
            double slack;
        };
        const Case cases[] = {{"fp32", "iq4_nl", "f32", 1e-6},  {"bf16", "iq4_nl", "bf16", 1e-6},
                              {"int8", "iq4_nl", "q8_0", 0.005}, {"nf4", "iq4_nl", "iq4_nl", 0.01},
                              {"nf4", "q4_0", "q4_0", 0.01},     {"int4", "iq4_nl", "q4_1", 0.01}};
        for (const Case& k : cases) {
            ExportOptions o;
            o.model = bin;
            o.tokenizer = tok;
            o.nf4Type = k.nf4Type;
            o.out = dir() / (std::string(k.format) + "-" + k.ggmlType + ".gguf");
            o.map = PrecisionMap(parseQuantSpec(k.format));
            const ExportPlan plan = exportModel(o);
            // ffn_down's rows are 172 long: not a multiple of 32, so they fall back to f16, with a warning.
            const bool blocks = gguf::ggmlTypeTraits(*gguf::ggmlTypeFromName(k.ggmlType)).quantized;
            int fellBack = 0;
            for (const ExportTensor& t : plan.tensors) {
                if (t.name.find("attn_q.weight") != std::string::npos)
                    QCOMPARE(t.type, std::string(k.ggmlType));
                if (t.name.find("ffn_down.weight") != std::string::npos && blocks) {
                    QCOMPARE(t.type, std::string("f16"));
                    QVERIFY(!t.note.empty());
                    ++fellBack;
                }
            }
            QCOMPARE(static_cast<int>(std::count_if(plan.warnings.begin(), plan.warnings.end(), [](const std::string& w) {
                         return w.find("ffn_down") != std::string::npos;
                     })),
                     fellBack);

            auto ours = model::loadModel(bin);
            quant::quantizeModel(*ours, *o.map);
            const double reference = ppl(*ours);
            const double exported = ppl(*model::loadModel(o.out));
            qInfo("%s -> %s: ppl source %.6f, ours %.6f (%+.3f%%), gguf %.6f (%+.3f%%)", k.format, k.ggmlType, source,
                  reference, 100.0 * (reference / source - 1.0), exported, 100.0 * (exported / source - 1.0));
            QVERIFY2(relDiff(exported, source) <= relDiff(reference, source) + k.slack,
                     qPrintable(QString("%1 -> %2: %3 vs source %4, ours %5")
                                    .arg(k.format, k.ggmlType)
                                    .arg(exported)
                                    .arg(source)
                                    .arg(reference)));
        }
    }

    // A pruned (heterogeneous) model goes out as "deci" with per-layer arrays, and comes back identical; HF export
    // refuses it unless padded, and the padded directory computes the same logits.
    void heterogeneousModel()
    {
        QPRUNER_SHARED_FILE(tok, "models/stories260K/tok512.model");
        const ModelConfig c = heterogeneousConfig();
        const auto src = model::makeRandomModel(c, at::kFloat, 7);
        const fs::path native = dir() / "pruned";
        model::saveNativeModel(*src, native);
        ExportOptions o;
        o.model = native;
        o.tokenizer = tok;
        o.out = dir() / "pruned.gguf";
        const ExportPlan plan = exportModel(o); // no map: the checkpoint's own fp32
        QCOMPARE(plan.architecture, std::string("deci"));
        const gguf::GgufFile f = gguf::GgufFile::open(o.out);
        QCOMPARE(f.get("deci.attention.head_count").asIntArray(), (std::vector<int64_t>{8, 6, 4}));
        QCOMPARE(f.get("deci.attention.head_count_kv").asIntArray(), (std::vector<int64_t>{4, 3, 2}));
        QCOMPARE(f.get("deci.feed_forward_length").asIntArray(), (std::vector<int64_t>{160, 96, 128}));
        QCOMPARE(f.tensor("blk.1.attn_q.weight").ne, (std::vector<int64_t>{64, 48}));
        QCOMPARE(f.tensor("blk.1.ffn_down.weight").ne, (std::vector<int64_t>{96, 64}));
        const auto back = model::loadModel(o.out);
        QCOMPARE(back->config().layers, c.layers);
        const at::Tensor tokens = testing::randomTokens(2, 16, 512, 5);
        const at::Tensor expected = logitsOf(*src, tokens);
        QVERIFY(at::equal(expected, logitsOf(*back, tokens)));

        ExportOptions h = o;
        h.target = ExportTarget::HuggingFace;
        h.out = dir() / "pruned-hf";
        VERIFY_THROWS(ConfigError, planExport(h), "--pad-uniform", "--to gguf", "layer 1: 6 heads / 3 KV heads / FFN 96");
        QVERIFY(!fs::exists(h.out));
        h.padUniform = true;
        const ExportPlan hp = exportModel(h);
        int64_t onDisk = 0;
        for (const std::string& name : hp.files)
            onDisk += static_cast<int64_t>(fs::file_size(h.out / name));
        QCOMPARE(onDisk, planExport(h).totalBytes);
        const auto cfg = io::readJsonFile(h.out / "config.json");
        QCOMPARE(cfg["num_attention_heads"].get<int>(), 8);
        QCOMPARE(cfg["num_key_value_heads"].get<int>(), 4);
        QCOMPARE(cfg["intermediate_size"].get<int>(), 160);
        const auto padded = model::loadModel(h.out);
        QVERIFY(padded->config().homogeneous());
        QVERIFY(at::allclose(logitsOf(*padded, tokens), expected, 1e-5, 1e-5));
    }

    // The Hugging Face directory of stories260K: config.json as transformers' LlamaConfig reads it, the tensor
    // names LlamaForCausalLM expects, the tokenizer copied byte for byte, quantized formats stored as their
    // dequantized values (the directory computes what our quantized model computes).
    void huggingFaceDirectory()
    {
        QPRUNER_SHARED_FILE(bin, "models/stories260K/stories260K.bin");
        QPRUNER_SHARED_FILE(tok, "models/stories260K/tok512.model");
        ExportOptions o;
        o.target = ExportTarget::HuggingFace;
        o.model = bin;
        o.tokenizer = tok;
        o.out = dir() / "hf";
        o.map = PrecisionMap::fromJson({{"version", 1}, {"default", "bf16"}, {"layers", {{"2", "nf4"}}}});
        const ExportPlan plan = exportModel(o);
        QCOMPARE(plan.architecture, std::string("LlamaForCausalLM"));
        QCOMPARE(plan.files, (std::vector<std::string>{"config.json", "model.safetensors", "tokenizer.model",
                                                       "tokenizer_config.json"}));
        int64_t onDisk = 0;
        for (const std::string& name : plan.files)
            onDisk += static_cast<int64_t>(fs::file_size(o.out / name));
        QCOMPARE(onDisk, plan.totalBytes);
        QCOMPARE(onDisk, planExport(o).totalBytes);
        QCOMPARE(io::readFileBytes(o.out / "tokenizer.model"), io::readFileBytes(tok));

        const auto cfg = io::readJsonFile(o.out / "config.json");
        QCOMPARE(cfg["architectures"][0].get<std::string>(), std::string("LlamaForCausalLM"));
        QCOMPARE(cfg["model_type"].get<std::string>(), std::string("llama"));
        QCOMPARE(cfg["hidden_size"].get<int>(), 64);
        QCOMPARE(cfg["intermediate_size"].get<int>(), 172);
        QCOMPARE(cfg["num_hidden_layers"].get<int>(), 5);
        QCOMPARE(cfg["num_attention_heads"].get<int>(), 8);
        QCOMPARE(cfg["num_key_value_heads"].get<int>(), 4);
        QCOMPARE(cfg["head_dim"].get<int>(), 8);
        QCOMPARE(cfg["vocab_size"].get<int>(), 512);
        QCOMPARE(cfg["tie_word_embeddings"].get<bool>(), true);
        QCOMPARE(cfg["torch_dtype"].get<std::string>(), std::string("bfloat16"));
        QCOMPARE(cfg["hidden_act"].get<std::string>(), std::string("silu"));

        // Exactly LlamaForCausalLM's parameter names (tied: no lm_head), all bf16 but the fp32 norms.
        const auto header = io::readSafetensorsHeader(o.out / "model.safetensors");
        std::set<std::string> names;
        for (const auto& [name, e] : header.tensors) {
            names.insert(name);
            QCOMPARE(e.dtype, std::string(name.find("norm") != std::string::npos ? "F32" : "BF16"));
        }
        std::set<std::string> expected{"model.embed_tokens.weight", "model.norm.weight"};
        for (int l = 0; l < 5; ++l) {
            const std::string p = "model.layers." + std::to_string(l) + ".";
            for (const char* part : {"input_layernorm.weight", "post_attention_layernorm.weight",
                                     "self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
                                     "self_attn.o_proj.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight",
                                     "mlp.down_proj.weight"})
                expected.insert(p + part);
        }
        QCOMPARE(names, expected);

        auto ours = model::loadModel(bin);
        quant::quantizeModel(*ours, *o.map);
        const auto back = model::loadModel(o.out);
        const at::Tensor tokens = testing::randomTokens(2, 16, 512, 4);
        QVERIFY(at::allclose(logitsOf(*back, tokens), logitsOf(*ours, tokens), 2e-2, 2e-2));
        // The nf4 layer holds exactly the dequantized nf4 values (bf16 holds them: absmax * code, rounded once).
        const at::Tensor nf4 = model::layerLinear(ours->layers[2], LinearModule::Up)->denseWeight().to(at::kBFloat16);
        QVERIFY(at::equal(model::layerLinear(back->layers[2], LinearModule::Up)->denseWeight(), nf4));
    }

    // A LoRA adapter is merged first: the GGUF (fp32) computes what the adapted model computes.
    void mergesAdapter()
    {
        QPRUNER_SHARED_FILE(tok, "models/stories260K/tok512.model");
        ModelConfig c = heterogeneousConfig();
        c.layers.assign(2, LayerShape{8, 4, 128});
        const auto base = model::makeRandomModel(c, at::kFloat, 11);
        const fs::path native = dir() / "adapter-base";
        model::saveNativeModel(*base, native);

        const PrecisionMap map = PrecisionMap::fromJson({{"version", 1}, {"default", "nf4"}, {"embedding", "fp32"},
                                                         {"modules", {{"down", "int8"}}}});
        auto adapted = model::loadModel(native);
        quant::quantizeModel(*adapted, map);
        const auto params = finetune::attachLora(*adapted, FinetuneSettings{});
        {
            at::NoGradGuard g;
            for (size_t i = 0; i < params.size(); ++i)
                params[i].copy_(testing::normalTensor(params[i].sizes().vec(), 100 + i, 0.05));
        }
        finetune::AdapterConfig ac;
        ac.targets = {kLinearModules.begin(), kLinearModules.end()};
        ac.precisionMap = map.toJson();
        const fs::path adapterDir = dir() / "adapter";
        finetune::saveAdapter(*adapted, adapterDir, ac);

        ExportOptions o;
        o.model = native;
        o.adapter = adapterDir;
        o.tokenizer = tok;
        o.out = dir() / "merged.gguf";
        o.map = PrecisionMap::fromJson({{"version", 1}, {"default", "fp32"}, {"embedding", "fp32"}});
        exportModel(o);
        const auto reference = finetune::loadModelWithAdapter(native, adapterDir);
        const at::Tensor tokens = testing::randomTokens(2, 16, 512, 6);
        const at::Tensor want = logitsOf(*reference, tokens);
        QVERIFY(at::allclose(logitsOf(*model::loadModel(o.out), tokens), want, 1e-4, 1e-4));
        // The quantized base alone computes clearly different logits: the adapter is in the file.
        auto baseOnly = model::loadModel(native);
        quant::quantizeModel(*baseOnly, map);
        QVERIFY(!at::allclose(logitsOf(*baseOnly, tokens), want, 1e-2, 1e-2));

        // HF: the adapter's own formats are the base; --map with --adapter is refused.
        ExportOptions h = o;
        h.target = ExportTarget::HuggingFace;
        h.out = dir() / "merged-hf";
        VERIFY_THROWS(ConfigError, planExport(h), "drop --map");
        h.map.reset();
        h.dtype = "fp32";
        exportModel(h);
        QVERIFY(at::allclose(logitsOf(*model::loadModel(h.out), tokens), want, 1e-4, 1e-4));
    }

    // Bad requests are refused with the problem named, before anything is written; an existing output survives a
    // failed or cancelled export.
    void refusalsKeepExistingOutput()
    {
        QPRUNER_SHARED_FILE(bin, "models/stories260K/stories260K.bin");
        QPRUNER_SHARED_FILE(tok, "models/stories260K/tok512.model");
        ExportOptions o;
        o.model = bin;
        o.tokenizer = tok;
        o.out = dir() / "keep.gguf";
        { std::ofstream(o.out) << "previous export"; }

        o.map = PrecisionMap(parseQuantSpec("int8"));
        o.strict = true;
        VERIFY_THROWS(ConfigError, planExport(o), "--strict", "blk.0.ffn_down.weight", "q8_0", "172");
        o.strict = false;
        o.nf4Type = "q5_0";
        VERIFY_THROWS(ConfigError, planExport(o), "q5_0", "iq4_nl, q4_0");
        o.nf4Type = "iq4_nl";
        o.map = PrecisionMap::fromJson({{"version", 1}, {"default", "int8"}, {"layers", {{"9", "nf4"}}}});
        VERIFY_THROWS(ConfigError, planExport(o), "9");
        o.map = PrecisionMap(parseQuantSpec("int8"));
        o.tokenizer = dir() / "missing.model";
        VERIFY_THROWS(FileError, planExport(o), "missing.model");
        o.tokenizer = tok;
        VERIFY_THROWS(ConfigError, parseExportTarget("onnx"), "onnx", "gguf, hf");

        CancelToken cancel;
        cancel.cancel();
        VERIFY_THROWS(CancelledError, exportModel(o, {}, &cancel));
        QCOMPARE(io::readFileBytes(o.out), std::string("previous export"));
        int entries = 0;
        for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir()))
            ++entries;
        const int before = entries;
        exportModel(o); // and a real export replaces it
        QVERIFY(io::readFileBytes(o.out).substr(0, 4) == "GGUF");
        entries = 0;
        for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir()))
            ++entries;
        QCOMPARE(entries, before); // no temporary file left behind
    }

    // The command line: --dry-run --json previews exactly what planExport says and writes nothing; the export
    // then writes that many bytes; `qpruner info` and `eval-ppl` read the GGUF file (its own vocabulary, no
    // --tokenizer) and score it as the library does; a bad request exits 1 naming the problem.
    void commandLine()
    {
        QPRUNER_SHARED_FILE(bin, "models/stories260K/stories260K.bin");
        QPRUNER_SHARED_FILE(text, "text/tinystories/tinystories_valid_subset.txt");
        const fs::path out = dir() / "cli.gguf";
        auto run = [](const QStringList& args) {
            QProcess p;
            p.start(QStringLiteral(QPRUNER_CLI_PATH), args);
            if (!p.waitForFinished(300000))
                qFatal("qpruner did not finish");
            return std::make_tuple(p.exitCode(), p.readAllStandardOutput().toStdString(),
                                   p.readAllStandardError().toStdString());
        };
        const QString model = QString::fromStdString(bin.string());
        const QString outArg = QString::fromStdString(out.string());
        auto [code, stdoutText, stderrText] =
            run({"export", model, "--format", "int8", "--to", "gguf", "--out", outArg, "--dry-run", "--json"});
        QVERIFY2(code == 0, stderrText.c_str());
        QVERIFY(!fs::exists(out));
        const auto preview = nlohmann::json::parse(stdoutText);
        ExportOptions o;
        o.model = bin;
        o.out = out;
        o.map = PrecisionMap(parseQuantSpec("int8"));
        const ExportPlan plan = planExport(o);
        QCOMPARE(preview["total_bytes"].get<int64_t>(), plan.totalBytes);
        QCOMPARE(preview["tensors"].size(), plan.tensors.size());
        QCOMPARE(preview["tensors"][4]["type"].get<std::string>(), plan.tensors[4].type);
        QCOMPARE(preview["warnings"].size(), plan.warnings.size());

        std::tie(code, stdoutText, stderrText) = run({"export", model, "--format", "int8", "--to", "gguf", "--out", outArg});
        QVERIFY2(code == 0, stderrText.c_str());
        QCOMPARE(static_cast<int64_t>(fs::file_size(out)), plan.totalBytes);
        std::tie(code, stdoutText, stderrText) = run({"info", outArg, "--json"});
        QVERIFY2(code == 0, stderrText.c_str());
        QCOMPARE(nlohmann::json::parse(stdoutText)["format"].get<std::string>(), std::string("gguf"));

        std::tie(code, stdoutText, stderrText) =
            run({"eval-ppl", outArg, "--file", QString::fromStdString(text.string()), "--seq-len", "128",
                 "--max-windows", "4", "--json", "--threads", QString::number(at::get_num_threads())});
        QVERIFY2(code == 0, stderrText.c_str());
        const auto tok = loadTokenizer(out);
        eval::PerplexityOptions po;
        po.seqLen = 128;
        po.maxWindows = 4;
        // fp32 BLAS products split across threads round differently: the same thread count as the child.
        const double expected =
            eval::evaluatePerplexity(*model::loadModel(out), tok->encode(io::readFileBytes(text)), po).ppl;
        QCOMPARE(nlohmann::json::parse(stdoutText)["ppl"].get<double>(), expected);

        std::tie(code, stdoutText, stderrText) =
            run({"export", model, "--format", "int8", "--to", "hf", "--out", outArg, "--dtype", "fp8"});
        QCOMPARE(code, 1);
        QVERIFY2(stderrText.find("error") != std::string::npos && stderrText.find("fp8") != std::string::npos,
                 stderrText.c_str());
        QCOMPARE(static_cast<int64_t>(fs::file_size(out)), plan.totalBytes); // untouched
    }
};

QTEST_APPLESS_MAIN(TestExport)
#include "test_export.moc"

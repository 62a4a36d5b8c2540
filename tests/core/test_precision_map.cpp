// Tests of the torch-free precision map and memory model: module names, precedence, the JSON form (canonical
// text, round trips, files, every validation error), compaction from resolved tables, the llama-quantize
// export, the exact stored bytes of a stories260K-shaped model (D=64, 8 heads, 4 KV heads, head_dim 8, ffn 172,
// vocab 512) under each format, a mixed map, biases and a pruned heterogeneous model, and the fine-tuning
// estimate. Every expected byte count is written out as arithmetic from quant_format.h's layouts.
#include "qpruner/error.h"
#include "qpruner/memory_model.h"
#include "qpruner/precision_map.h"

#include <nlohmann/json.hpp>

#include <QTemporaryDir>
#include <QtTest/QtTest>

#include "test_data.h"

#include <fstream>
#include <functional>
#include <initializer_list>

using qpruner::LinearModule;
using qpruner::ModelConfig;
using qpruner::PrecisionMap;
using qpruner::QuantSpec;
using nlohmann::json;

namespace {

QuantSpec spec(const char* name) { return qpruner::parseQuantSpec(name); }

ModelConfig tinyConfig(bool tied = false, bool bias = false, int layers = 2)
{
    return qpruner::testing::storiesShapedConfig(layers, tied, bias);
}

std::string readText(const std::filesystem::path& path)
{
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}


// fromJson of a JSON text.
PrecisionMap parse(const char* text) { return PrecisionMap::fromJson(json::parse(text)); }

// A bytes-per-layer table of the tiny model in one format, from the per-module byte counts.
struct TinyLayer {
    int64_t q, k, v, o, gate, up, down;
    int64_t sum() const { return q + k + v + o + gate + up + down; }
};

// Linear parameters of one tiny layer: q, k, v, o, gate, up, down.
constexpr int64_t kTinyLinearParams = 64 * 64 + 32 * 64 + 32 * 64 + 64 * 64 + 172 * 64 + 172 * 64 + 64 * 172;
constexpr int64_t kTinyEmbeddingBf16 = 512 * 64 * 2;
constexpr int64_t kTinyNorms = 2 * (2 * 64 * 4) + 64 * 4; // two per layer, plus the final norm, fp32

} // namespace

class TestPrecisionMap : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void moduleNamesAndShapes()
    {
        QCOMPARE(qpruner::parseLinearModule("gate"), LinearModule::Gate);
        QCOMPARE(qpruner::parseLinearModule("gate_proj"), LinearModule::Gate);
        QCOMPARE(qpruner::parseLinearModule("o_proj"), LinearModule::O);
        QCOMPARE(std::string(qpruner::linearModuleName(LinearModule::Down)), std::string("down"));
        QCOMPARE(std::string(qpruner::linearModuleHfPath(LinearModule::K)), std::string("self_attn.k_proj"));
        QCOMPARE(std::string(qpruner::linearModuleHfPath(LinearModule::Up)), std::string("mlp.up_proj"));
        VERIFY_THROWS(qpruner::ConfigError, qpruner::parseLinearModule("gaet"), "'gaet'", "did you mean 'gate'?");
        VERIFY_THROWS(qpruner::ConfigError, qpruner::parseLinearModule("gate_prj"), "did you mean 'gate'?");
        VERIFY_THROWS(qpruner::ConfigError, qpruner::parseLinearModule("self_attention.query"), "expected one of",
                      "'down'");

        const ModelConfig c = tinyConfig();
        using S = qpruner::LinearShape;
        QCOMPARE(qpruner::linearShape(c, 0, LinearModule::Q), (S{64, 64}));
        QCOMPARE(qpruner::linearShape(c, 0, LinearModule::K), (S{32, 64}));
        QCOMPARE(qpruner::linearShape(c, 1, LinearModule::V), (S{32, 64}));
        QCOMPARE(qpruner::linearShape(c, 1, LinearModule::O), (S{64, 64}));
        QCOMPARE(qpruner::linearShape(c, 0, LinearModule::Gate), (S{172, 64}));
        QCOMPARE(qpruner::linearShape(c, 0, LinearModule::Down), (S{64, 172}));

        QCOMPARE(qpruner::biasSpec(spec("bf16")), spec("bf16"));
        QCOMPARE(qpruner::biasSpec(spec("fp16")), spec("fp16"));
        QCOMPARE(qpruner::biasSpec(spec("nf4")), spec("fp32"));
        QCOMPARE(qpruner::biasSpec(spec("int8")), spec("fp32"));
    }

    void precedence()
    {
        PrecisionMap m(spec("int8"));
        m.setModuleDefault(LinearModule::Down, spec("nf4"));
        m.setLayer(1, spec("int4"));
        m.setLayerModule(1, LinearModule::Q, spec("fp16"));
        m.setLayerModule(0, LinearModule::K, spec("int3"));
        QCOMPARE(m.spec(0, LinearModule::Q), spec("int8"));  // default
        QCOMPARE(m.spec(0, LinearModule::Down), spec("nf4")); // per-module default
        QCOMPARE(m.spec(0, LinearModule::K), spec("int3"));   // per-layer-module
        QCOMPARE(m.spec(1, LinearModule::Q), spec("fp16"));   // per-layer-module beats per-layer
        QCOMPARE(m.spec(1, LinearModule::K), spec("int4"));   // per-layer beats default
        QCOMPARE(m.spec(1, LinearModule::Down), spec("int4")); // per-layer beats per-module
        QCOMPARE(m.spec(7, LinearModule::Down), spec("nf4"));
        QCOMPARE(m.spec(7, LinearModule::Up), spec("int8"));

        // The same map written by hand, with HF aliases.
        const PrecisionMap j = parse(R"({"version": 1, "default": "int8", "modules": {"down_proj": "nf4"},
            "layers": {"1": {"default": "int4", "q_proj": "fp16"}, "0": {"k": "int3"}}})");
        QVERIFY(j == m);

        const auto r = m.resolve(tinyConfig());
        QCOMPARE(int(r.layers.size()), 2);
        const qpruner::LayerSpecs l0 = {spec("int8"), spec("int3"), spec("int8"), spec("int8"),
                                        spec("int8"), spec("int8"), spec("nf4")};
        const qpruner::LayerSpecs l1 = {spec("fp16"), spec("int4"), spec("int4"), spec("int4"),
                                        spec("int4"), spec("int4"), spec("int4")};
        QVERIFY(r.layers[0] == l0);
        QVERIFY(r.layers[1] == l1);
        QCOMPARE(r.embedding, spec("bf16"));
        QCOMPARE(r.lmHead, spec("bf16"));

        // Clearing entries; an entry with nothing left disappears.
        m.setLayerModule(1, LinearModule::Q, std::nullopt);
        QCOMPARE(m.spec(1, LinearModule::Q), spec("int4"));
        m.setLayer(1, std::nullopt);
        QCOMPARE(int(m.layers().count(1)), 0);
        QCOMPARE(m.spec(1, LinearModule::Down), spec("nf4"));
        m.setModuleDefault(LinearModule::Down, std::nullopt);
        QCOMPARE(m.spec(1, LinearModule::Down), spec("int8"));

        // lm_head: bf16 when absent, the embedding when tied, the entry otherwise.
        PrecisionMap h(spec("nf4"));
        h.setEmbedding(spec("fp16"));
        QCOMPARE(h.resolve(tinyConfig(false)).lmHead, spec("bf16"));
        QCOMPARE(h.resolve(tinyConfig(true)).lmHead, spec("fp16"));
        h.setLmHead(spec("int8"));
        QCOMPARE(h.resolve(tinyConfig(false)).lmHead, spec("int8"));
        h.setLmHead(spec("fp16"));
        QCOMPARE(h.resolve(tinyConfig(true)).lmHead, spec("fp16"));
    }

    void canonicalJson()
    {
        QCOMPARE(QString::fromStdString(parse(R"({"version": 1, "default": "nf4"})").toJson().dump()),
                 QString(R"({"version":1,"default":"nf4"})"));
        QVERIFY(PrecisionMap(spec("nf4")) == parse(R"({"version":1,"default":"nf4","embedding":"bf16","norms":"fp32"})"));

        // Keys reordered, names normalised, aliases resolved, layers in numeric order, single-format layers as
        // strings, default embedding dropped, lm_head kept as set.
        const char* messy = R"({"lm_head": "BF16", "norms": "f32",
            "layers": {"10": {"q_proj": "INT8", "default": "nf4"}, "2": {"default": "fp16"}, "3": {"down": "int4-g64"}},
            "embedding": "float32", "modules": {"up": "int3-g128", "q": "bf16"}, "default": "Int8", "version": 1})";
        const char* canonical = R"({"version":1,"default":"int8","modules":{"q":"bf16","up":"int3-g128"},)"
                                R"("layers":{"2":"fp16","3":{"down":"int4"},"10":{"default":"nf4","q":"int8"}},)"
                                R"("embedding":"fp32","lm_head":"bf16"})";
        const PrecisionMap m = parse(messy);
        QCOMPARE(QString::fromStdString(m.toJson().dump()), QString(canonical));
        QCOMPARE(QString::fromStdString(parse(canonical).toJson().dump()), QString(canonical));
        QVERIFY(PrecisionMap::fromJson(m.toJson()) == m);

        // Entries equal to their fallback are kept (they shadow lower-precedence entries).
        const PrecisionMap shadow = parse(R"({"version":1,"default":"nf4","modules":{"down":"int8"},"layers":{"0":"nf4"}})");
        QCOMPARE(shadow.spec(0, LinearModule::Down), spec("nf4"));
        QCOMPARE(QString::fromStdString(shadow.toJson().dump()),
                 QString(R"({"version":1,"default":"nf4","modules":{"down":"int8"},"layers":{"0":"nf4"}})"));

        // Built with setters: round trip.
        PrecisionMap b(spec("nf4-dq"));
        b.setLayer(0, spec("bf16"));
        b.setLayerModule(31, LinearModule::V, spec("int2-g128"));
        b.setModuleDefault(LinearModule::O, spec("int8"));
        b.setEmbedding(spec("fp16"));
        b.setLmHead(spec("int4"));
        QVERIFY(PrecisionMap::fromJson(b.toJson()) == b);
        QCOMPARE(QString::fromStdString(b.toJson().dump()),
                 QString(R"({"version":1,"default":"nf4-dq","modules":{"o":"int8"},)"
                         R"("layers":{"0":"bf16","31":{"v":"int2-g128"}},"embedding":"fp16","lm_head":"int4"})"));
        QVERIFY(!(PrecisionMap::fromJson(b.toJson()) == PrecisionMap(spec("nf4-dq"))));
    }

    void files()
    {
        QTemporaryDir tmp;
        QVERIFY(tmp.isValid());
        const std::filesystem::path dir = tmp.path().toStdString();
        PrecisionMap m(spec("nf4"));
        m.setLayer(3, spec("int8"));
        m.save(dir / "map.json");
        QCOMPARE(QString::fromStdString(readText(dir / "map.json")),
                 QString("{\n  \"version\": 1,\n  \"default\": \"nf4\",\n  \"layers\": {\n    \"3\": \"int8\"\n  }\n}\n"));
        QVERIFY(PrecisionMap::load(dir / "map.json") == m);

        VERIFY_THROWS(qpruner::FileError, PrecisionMap::load(dir / "missing.json"), "missing.json");
        std::ofstream(dir / "bad.json") << "{\"version\": 1,";
        VERIFY_THROWS(qpruner::FormatError, PrecisionMap::load(dir / "bad.json"), "bad.json");
        std::ofstream(dir / "typo.json") << R"({"version": 1, "default": "nf4", "layers": {"2": {"gate_prj": "int8"}}})";
        VERIFY_THROWS(qpruner::FormatError, PrecisionMap::load(dir / "typo.json"), "typo.json", "layers.2.gate_prj",
                      "did you mean 'gate'?");
    }

    void validationErrors()
    {
        using qpruner::ConfigError;
        VERIFY_THROWS(ConfigError, PrecisionMap::fromJson(json::array()), "expected a JSON object, got array");
        VERIFY_THROWS(ConfigError, parse(R"({"default": "nf4"})"), "missing \"version\"");
        VERIFY_THROWS(ConfigError, parse(R"({"version": 2, "default": "nf4"})"), "version 2 is not supported");
        VERIFY_THROWS(ConfigError, parse(R"({"version": "1", "default": "nf4"})"), "version: expected the integer 1");
        VERIFY_THROWS(ConfigError, parse(R"({"version": 1.5, "default": "nf4"})"), "version: expected the integer 1");
        VERIFY_THROWS(ConfigError, parse(R"({"version": 1})"), "missing \"default\"");
        VERIFY_THROWS(ConfigError, parse(R"({"version": 1, "default": 4})"), "default: expected a format name");
        VERIFY_THROWS(ConfigError, parse(R"({"version": 1, "default": "nf5"})"), "default: unknown format 'nf5'",
                      "nf4-dq");
        VERIFY_THROWS(ConfigError, parse(R"({"version": 1, "default": "nf4", "defualt": "int8"})"),
                      "unknown key 'defualt'", "did you mean 'default'?");
        VERIFY_THROWS(ConfigError, parse(R"({"version": 1, "default": "nf4", "layer": {}})"),
                      "unknown key 'layer'", "did you mean 'layers'?");
        VERIFY_THROWS(ConfigError, parse(R"({"version": 1, "default": "nf4", "comment": "x"})"),
                      "unknown key 'comment'", "expected one of 'version', 'default'");
        // modules
        VERIFY_THROWS(ConfigError, parse(R"({"version": 1, "default": "nf4", "modules": ["down"]})"),
                      "modules: expected an object");
        VERIFY_THROWS(ConfigError, parse(R"({"version": 1, "default": "nf4", "modules": {"dwn": "int8"}})"),
                      "modules.dwn: unknown module 'dwn'", "did you mean 'down'?");
        VERIFY_THROWS(ConfigError, parse(R"({"version": 1, "default": "nf4", "modules": {"down": "int9"}})"),
                      "modules.down: unknown format 'int9'");
        VERIFY_THROWS(ConfigError, parse(R"({"version": 1, "default": "nf4", "modules": {"default": "int8"}})"),
                      "modules.default: unknown module 'default'");
        // layers
        VERIFY_THROWS(ConfigError, parse(R"({"version": 1, "default": "nf4", "layers": ["bf16"]})"),
                      "layers: expected an object keyed by layer index, got array");
        VERIFY_THROWS(ConfigError, parse(R"({"version": 1, "default": "nf4", "layers": {"x": "bf16"}})"),
                      "layers: key 'x' is not a layer index");
        VERIFY_THROWS(ConfigError, parse(R"({"version": 1, "default": "nf4", "layers": {"03": "bf16"}})"),
                      "key '03' is not a layer index");
        VERIFY_THROWS(ConfigError, parse(R"({"version": 1, "default": "nf4", "layers": {"-1": "bf16"}})"),
                      "key '-1' is not a layer index");
        VERIFY_THROWS(ConfigError, parse(R"({"version": 1, "default": "nf4", "layers": {"1.5": "bf16"}})"),
                      "key '1.5' is not a layer index");
        VERIFY_THROWS(ConfigError, parse(R"({"version": 1, "default": "nf4", "layers": {"1": 16}})"),
                      "layers.1: expected a format name or an object, got number");
        VERIFY_THROWS(ConfigError, parse(R"({"version": 1, "default": "nf4", "layers": {"1": {}}})"),
                      "layers.1: empty layer entry");
        VERIFY_THROWS(ConfigError, parse(R"({"version": 1, "default": "nf4", "layers": {"3": {"q": "nf5"}}})"),
                      "layers.3.q: unknown format 'nf5'");
        VERIFY_THROWS(ConfigError, parse(R"({"version": 1, "default": "nf4", "layers": {"3": {"gate_prj": "int8"}}})"),
                      "layers.3.gate_prj: unknown module 'gate_prj'", "did you mean 'gate'?");
        VERIFY_THROWS(ConfigError, parse(R"({"version": 1, "default": "nf4", "layers": {"3": {"defualt": "int8"}}})"),
                      "layers.3.defualt", "did you mean 'default'?");
        VERIFY_THROWS(ConfigError, parse(R"({"version": 1, "default": "nf4", "layers": {"3": {"q": "int8", "q_proj": "nf4"}}})"),
                      "module q is given twice");
        VERIFY_THROWS(ConfigError, parse(R"({"version": 1, "default": "nf4", "layers": {"3": {"q": ["int8"]}}})"),
                      "layers.3.q: expected a format name string, got array");
        // embedding, lm_head, norms
        VERIFY_THROWS(ConfigError, parse(R"({"version": 1, "default": "nf4", "embedding": "nf4"})"),
                      "embedding: 'nf4' is not allowed");
        VERIFY_THROWS(ConfigError, parse(R"({"version": 1, "default": "nf4", "embedding": null})"),
                      "embedding: expected a format name string, got null");
        VERIFY_THROWS(ConfigError, parse(R"({"version": 1, "default": "nf4", "lm_head": "q4"})"),
                      "lm_head: unknown format 'q4'");
        VERIFY_THROWS(ConfigError, parse(R"({"version": 1, "default": "nf4", "norms": "bf16"})"),
                      "norms: only \"fp32\" is supported");
        // setters
        PrecisionMap m(spec("nf4"));
        VERIFY_THROWS(ConfigError, m.setEmbedding(spec("int8")), "embedding: 'int8' is not allowed");
        VERIFY_THROWS(ConfigError, m.setLayer(-1, spec("int8")), "layer index -1 is negative");
        VERIFY_THROWS(ConfigError, m.setLayerModule(-2, LinearModule::Q, spec("int8")), "layer index -2");

        // Against a model: layers out of range, lm_head of a tied model.
        const PrecisionMap far = parse(R"({"version": 1, "default": "nf4", "layers": {"1": "bf16", "2": "int8"}})");
        VERIFY_THROWS(ConfigError, far.validate(tinyConfig()), "layers.2: layer 2 does not exist",
                      "the model has 2 layers, 0-1");
        VERIFY_THROWS(ConfigError, far.resolve(tinyConfig()), "layers.2");
        VERIFY_THROWS(ConfigError, qpruner::memoryReport(tinyConfig(), far), "layers.2");
        far.validate(tinyConfig(false, false, 3));
        const PrecisionMap head = parse(R"({"version": 1, "default": "nf4", "lm_head": "nf4"})");
        head.validate(tinyConfig(false));
        VERIFY_THROWS(ConfigError, head.validate(tinyConfig(true)), "lm_head", "ties lm_head to the embedding",
                      "(bf16), got nf4");
    }

    void fromResolvedTables()
    {
        const auto layerMap = PrecisionMap::fromLayerSpecs(
            {spec("nf4"), spec("int8"), spec("nf4"), spec("bf16"), spec("nf4")});
        QCOMPARE(QString::fromStdString(layerMap.toJson().dump()),
                 QString(R"({"version":1,"default":"nf4","layers":{"1":"int8","3":"bf16"}})"));
        const auto r5 = layerMap.resolve(tinyConfig(false, false, 5));
        QCOMPARE(r5.layers[1][3], spec("int8"));
        QCOMPARE(r5.layers[3][6], spec("bf16"));
        QCOMPARE(r5.layers[4][0], spec("nf4"));
        // Ties go to the first.
        QCOMPARE(QString::fromStdString(PrecisionMap::fromLayerSpecs({spec("int8"), spec("nf4")}).toJson().dump()),
                 QString(R"({"version":1,"default":"int8","layers":{"1":"nf4"}})"));
        VERIFY_THROWS(qpruner::ConfigError, PrecisionMap::fromLayerSpecs({}), "without layers");

        // A mixed table: 8 int8, 5 nf4, 1 bf16.
        qpruner::ResolvedPrecision r;
        qpruner::LayerSpecs all8;
        all8.fill(spec("int8"));
        r.layers = {all8, {spec("int8"), spec("nf4"), spec("nf4"), spec("nf4"), spec("nf4"), spec("nf4"), spec("bf16")}};
        r.embedding = spec("fp16");
        r.lmHead = spec("nf4");
        const PrecisionMap m = PrecisionMap::fromResolved(r);
        QCOMPARE(QString::fromStdString(m.toJson().dump()),
                 QString(R"({"version":1,"default":"int8","layers":{"1":{"default":"nf4","q":"int8","down":"bf16"}},)"
                         R"("embedding":"fp16","lm_head":"nf4"})"));
        QVERIFY(m.resolve(tinyConfig()) == r);
        r.embedding = spec("nf4");
        VERIFY_THROWS(qpruner::ConfigError, PrecisionMap::fromResolved(r), "embedding");

        // resolve -> fromResolved -> resolve is the identity, tied or not.
        const PrecisionMap p = parse(R"({"version":1,"default":"int4","modules":{"down":"int8"},
            "layers":{"0":{"default":"bf16","k":"nf4-dq"},"1":{"up":"int3"}},"embedding":"fp32"})");
        for (const bool tied : {false, true}) {
            const auto resolved = p.resolve(tinyConfig(tied));
            QVERIFY(PrecisionMap::fromResolved(resolved).resolve(tinyConfig(tied)) == resolved);
        }
    }

    void llamaQuantizeExport()
    {
        // Layer 0 bf16, layer 1 nf4 with an int8 down projection: 6 iq4_nl, 1 q8_0, 7 bf16 -> base IQ4_NL.
        const PrecisionMap m = parse(R"({"version": 1, "default": "nf4", "layers": {"0": "bf16", "1": {"down": "int8"}},
            "embedding": "fp16", "lm_head": "int4-g128"})");
        const auto a = qpruner::llamaQuantizeArgs(m, tinyConfig());
        QCOMPARE(QString::fromStdString(a.baseType), QString("IQ4_NL"));
        const std::vector<std::string> want = {
            "--token-embedding-type", "f16",
            "--output-tensor-type", "q4_1",
            "--tensor-type", "^blk\\.0\\.attn_q\\.weight$=bf16",
            "--tensor-type", "^blk\\.0\\.attn_k\\.weight$=bf16",
            "--tensor-type", "^blk\\.0\\.attn_v\\.weight$=bf16",
            "--tensor-type", "^blk\\.0\\.attn_output\\.weight$=bf16",
            "--tensor-type", "^blk\\.0\\.ffn_gate\\.weight$=bf16",
            "--tensor-type", "^blk\\.0\\.ffn_up\\.weight$=bf16",
            "--tensor-type", "^blk\\.0\\.ffn_down\\.weight$=bf16",
            "--tensor-type", "^blk\\.1\\.ffn_down\\.weight$=q8_0"};
        QVERIFY2(a.args == want, json(a.args).dump().c_str());

        // Every tensor listed: layer 1's base-typed tensors too.
        const auto every = qpruner::llamaQuantizeArgs(m, tinyConfig(), true);
        QCOMPARE(int(every.args.size()), 4 + 2 * 14);
        QCOMPARE(QString::fromStdString(every.args[4 + 2 * 7 + 1]), QString("^blk\\.1\\.attn_q\\.weight$=iq4_nl"));
        QCOMPARE(QString::fromStdString(every.args.back()), QString("^blk\\.1\\.ffn_down\\.weight$=q8_0"));

        // Tied: no output tensor in the GGUF.
        const auto tied = qpruner::llamaQuantizeArgs(parse(R"({"version": 1, "default": "nf4-dq"})"), tinyConfig(true));
        QCOMPARE(QString::fromStdString(tied.baseType), QString("IQ4_NL"));
        QVERIFY(tied.args == (std::vector<std::string>{"--token-embedding-type", "bf16"}));

        // int3 and int2 tie (7 each): the first seen wins; group sizes do not change the ggml type.
        const auto k = qpruner::llamaQuantizeArgs(
            parse(R"({"version": 1, "default": "int3-g128", "layers": {"1": "int2"}, "lm_head": "int4"})"), tinyConfig());
        QCOMPARE(QString::fromStdString(k.baseType), QString("Q3_K_S"));
        QCOMPARE(int(k.args.size()), 4 + 2 * 7);
        QCOMPARE(QString::fromStdString(k.args[5]), QString("^blk\\.1\\.attn_q\\.weight$=q2_k"));
        QCOMPARE(QString::fromStdString(k.args[3]), QString("q4_1"));
        const auto g = qpruner::llamaQuantizeArgs(
            parse(R"({"version": 1, "default": "int4", "layers": {"1": "int4-g128"}, "lm_head": "fp32"})"), tinyConfig());
        QCOMPARE(QString::fromStdString(g.baseType), QString("Q4_1"));
        QVERIFY(g.args == (std::vector<std::string>{"--token-embedding-type", "bf16", "--output-tensor-type", "f32"}));

        // Dense only: a uniform dense base works, a dense mixture cannot be expressed.
        const auto dense = qpruner::llamaQuantizeArgs(PrecisionMap(spec("bf16")), tinyConfig(), true);
        QCOMPARE(QString::fromStdString(dense.baseType), QString("BF16"));
        QVERIFY(dense.args == (std::vector<std::string>{"--token-embedding-type", "bf16", "--output-tensor-type", "bf16"}));
        VERIFY_THROWS(qpruner::ConfigError,
                      qpruner::llamaQuantizeArgs(parse(R"({"version": 1, "default": "bf16", "layers": {"1": {"q": "fp32"}}})"),
                                                 tinyConfig()),
                      "dense formats only (bf16 and fp32)");
        VERIFY_THROWS(qpruner::ConfigError,
                      qpruner::llamaQuantizeArgs(parse(R"({"version": 1, "default": "nf4", "layers": {"5": "int8"}})"),
                                                 tinyConfig()),
                      "layers.5");
    }

    void memoryUniformFormats()
    {
        // Per-module stored bytes of one tiny layer, from quant_format.h's layouts.
        const TinyLayer nf4 = {64 * 64 / 2 + (64 * 64 / 64) * 4, 32 * 64 / 2 + (32 * 64 / 64) * 4,
                               32 * 64 / 2 + (32 * 64 / 64) * 4, 64 * 64 / 2 + (64 * 64 / 64) * 4,
                               172 * 64 / 2 + (172 * 64 / 64) * 4, 172 * 64 / 2 + (172 * 64 / 64) * 4,
                               64 * 172 / 2 + (64 * 172 / 64) * 4};
        // codes + absmax_q (1 byte per 64-block) + absmax_scale (1 per 256 blocks, fp32) + absmax_offset (fp32).
        const TinyLayer nf4dq = {2048 + 64 + 4 + 4, 1024 + 32 + 4 + 4, 1024 + 32 + 4 + 4, 2048 + 64 + 4 + 4,
                                 5504 + 172 + 4 + 4, 5504 + 172 + 4 + 4, 5504 + 172 + 4 + 4};
        // int8 codes + one fp32 scale per row.
        const TinyLayer int8 = {64 * 64 + 64 * 4, 32 * 64 + 32 * 4, 32 * 64 + 32 * 4, 64 * 64 + 64 * 4,
                                172 * 64 + 172 * 4, 172 * 64 + 172 * 4, 64 * 172 + 64 * 4};
        // int4 group 128: rows * ceil(cols*4/8) codes + fp16 scale and zero per row and ceil(cols/128) groups.
        const TinyLayer int4g128 = {64 * 32 + 2 * (64 * 1 * 2), 32 * 32 + 2 * (32 * 1 * 2), 32 * 32 + 2 * (32 * 1 * 2),
                                    64 * 32 + 2 * (64 * 1 * 2), 172 * 32 + 2 * (172 * 1 * 2),
                                    172 * 32 + 2 * (172 * 1 * 2), 64 * 86 + 2 * (64 * 2 * 2)};
        // int3 group 64: ceil(64*3/8) = 24 and ceil(172*3/8) = 65 bytes per row; ceil(172/64) = 3 groups.
        const TinyLayer int3 = {64 * 24 + 2 * (64 * 1 * 2), 32 * 24 + 2 * (32 * 1 * 2), 32 * 24 + 2 * (32 * 1 * 2),
                                64 * 24 + 2 * (64 * 1 * 2), 172 * 24 + 2 * (172 * 1 * 2),
                                172 * 24 + 2 * (172 * 1 * 2), 64 * 65 + 2 * (64 * 3 * 2)};
        const TinyLayer bf16 = {64 * 64 * 2, 32 * 64 * 2, 32 * 64 * 2, 64 * 64 * 2, 172 * 64 * 2, 172 * 64 * 2,
                                64 * 172 * 2};
        QCOMPARE(nf4.sum(), int64_t(25488));
        QCOMPARE(nf4dq.sum(), int64_t(23420));
        QCOMPARE(int8.sum(), int64_t(47712));
        QCOMPARE(int4g128.sum(), int64_t(25312));
        QCOMPARE(int3.sum(), int64_t(19936));
        QCOMPARE(bf16.sum(), int64_t(90624));

        const ModelConfig c = tinyConfig();
        const int64_t params = 512 * 64 * 2 + 2 * (kTinyLinearParams + 2 * 64) + 64;
        QCOMPARE(params, c.parameterCount());
        const std::pair<const char*, TinyLayer> cases[] = {{"nf4", nf4},           {"nf4-dq", nf4dq}, {"int8", int8},
                                                           {"int4-g128", int4g128}, {"int3", int3},    {"bf16", bf16}};
        for (const auto& [name, layer] : cases) {
            const auto rep = qpruner::memoryReport(c, PrecisionMap(spec(name)));
            const QByteArray what = QByteArray("format ") + name;
            QVERIFY2(rep.layers.size() == 2, what.constData());
            const std::array<int64_t, 7> modules = {layer.q, layer.k, layer.v, layer.o, layer.gate, layer.up, layer.down};
            QVERIFY2(rep.layers[1].moduleBytes == modules, what.constData());
            QCOMPARE(rep.layers[0].linearBytes, layer.sum());
            QCOMPARE(rep.layers[0].normBytes, int64_t(2 * 64 * 4));
            QCOMPARE(rep.layers[0].bytes, layer.sum() + 2 * 64 * 4);
            QCOMPARE(rep.layers[0].parameters, c.layerParameterCount(0));
            QCOMPARE(rep.linearBytes, 2 * layer.sum());
            QCOMPARE(rep.embeddingBytes, kTinyEmbeddingBf16);
            QCOMPARE(rep.lmHeadBytes, kTinyEmbeddingBf16);
            QCOMPARE(rep.normBytes, kTinyNorms);
            QCOMPARE(rep.biasBytes, int64_t(0));
            QCOMPARE(rep.totalBytes, 2 * kTinyEmbeddingBf16 + kTinyNorms + 2 * layer.sum());
            QCOMPARE(rep.parameters, params);
            QCOMPARE(rep.linearParameters, 2 * kTinyLinearParams);
            QCOMPARE(rep.linearBitsPerWeight, 8.0 * double(2 * layer.sum()) / double(2 * kTinyLinearParams));
            QCOMPARE(rep.bitsPerWeight, 8.0 * double(rep.totalBytes) / double(params));
            int64_t sum = 0;
            for (const auto& t : rep.tensors)
                sum += t.bytes;
            QCOMPARE(sum, rep.totalBytes);
        }
        // Exact bit widths: NF4 = 4 + 32/64, bf16 = 16.
        QCOMPARE(qpruner::memoryReport(c, PrecisionMap(spec("nf4"))).linearBitsPerWeight, 4.5);
        QCOMPARE(qpruner::memoryReport(c, PrecisionMap(spec("bf16"))).linearBitsPerWeight, 16.0);

        // Tied: the head is the embedding, counted once.
        const auto tied = qpruner::memoryReport(tinyConfig(true), PrecisionMap(spec("nf4")));
        QCOMPARE(tied.lmHeadBytes, int64_t(0));
        QCOMPARE(tied.totalBytes, kTinyEmbeddingBf16 + kTinyNorms + 2 * nf4.sum());
        QCOMPARE(tied.parameters, tinyConfig(true).parameterCount());
        QCOMPARE(QString::fromStdString(tied.tensors.back().name), QString("model.norm.weight"));
    }

    void memoryMixedMap()
    {
        const PrecisionMap m = parse(R"({"version": 1, "default": "nf4", "layers": {"0": "bf16", "1": {"q": "int8"}},
            "embedding": "fp32", "lm_head": "int4-g128"})");
        const auto rep = qpruner::memoryReport(tinyConfig(), m);
        const int64_t layer0 = (64 * 64 + 32 * 64 + 32 * 64 + 64 * 64 + 172 * 64 + 172 * 64 + 64 * 172) * 2;
        const int64_t layer1 = (64 * 64 + 64 * 4)                                           // q int8
                               + (32 * 64 / 2 + (32 * 64 / 64) * 4) * 2                     // k, v nf4
                               + (64 * 64 / 2 + (64 * 64 / 64) * 4)                         // o nf4
                               + (172 * 64 / 2 + (172 * 64 / 64) * 4) * 3;                  // gate, up, down nf4
        const int64_t embedding = 512 * 64 * 4;
        const int64_t head = 512 * 32 + 2 * (512 * 1 * 2); // int4-g128 [512, 64]
        QCOMPARE(rep.layers[0].linearBytes, layer0);
        QCOMPARE(rep.layers[1].linearBytes, layer1);
        QCOMPARE(rep.embeddingBytes, embedding);
        QCOMPARE(rep.lmHeadBytes, head);
        QCOMPARE(rep.totalBytes, embedding + head + kTinyNorms + layer0 + layer1);
        QCOMPARE(rep.linearBitsPerWeight, 8.0 * double(layer0 + layer1) / double(2 * kTinyLinearParams));
        QCOMPARE(rep.layers[1].linearBitsPerWeight, 8.0 * double(layer1) / double(kTinyLinearParams));

        // The tensor list, in order, with HF names, dtypes and shapes.
        QCOMPARE(int(rep.tensors.size()), 1 + 9 + 16 + 1 + 3);
        auto find = [&](const std::string& name) -> const qpruner::TensorMemory& {
            for (const auto& t : rep.tensors)
                if (t.name == name)
                    return t;
            static const qpruner::TensorMemory none;
            return none;
        };
        using Shape = std::vector<int64_t>;
        const auto& emb = rep.tensors.front();
        QCOMPARE(QString::fromStdString(emb.name), QString("model.embed_tokens.weight"));
        QCOMPARE(QString::fromStdString(emb.dtype), QString("F32"));
        QVERIFY(emb.shape == (Shape{512, 64}));
        QCOMPARE(QString::fromStdString(rep.tensors[1].name), QString("model.layers.0.input_layernorm.weight"));
        QCOMPARE(QString::fromStdString(rep.tensors[2].name), QString("model.layers.0.self_attn.q_proj.weight"));
        QCOMPARE(QString::fromStdString(rep.tensors[5].name), QString("model.layers.0.self_attn.o_proj.weight"));
        QCOMPARE(QString::fromStdString(rep.tensors[6].name),
                 QString("model.layers.0.post_attention_layernorm.weight"));
        const auto& down0 = find("model.layers.0.mlp.down_proj.weight");
        QCOMPARE(QString::fromStdString(down0.dtype), QString("BF16"));
        QVERIFY(down0.shape == (Shape{64, 172}));
        QCOMPARE(down0.bytes, int64_t(64 * 172 * 2));
        QCOMPARE(down0.layer, 0);
        const auto& q1 = find("model.layers.1.self_attn.q_proj.qweight");
        QCOMPARE(QString::fromStdString(q1.dtype), QString("I8"));
        QCOMPARE(q1.spec, spec("int8"));
        QCOMPARE(q1.bytes, int64_t(64 * 64));
        const auto& scale1 = find("model.layers.1.self_attn.q_proj.scale");
        QVERIFY(scale1.shape == (Shape{64}));
        QCOMPARE(QString::fromStdString(scale1.dtype), QString("F32"));
        const auto& codes = find("model.layers.1.mlp.up_proj.codes");
        QVERIFY(codes.shape == (Shape{172 * 64 / 2}));
        QCOMPARE(find("model.layers.1.mlp.up_proj.absmax").bytes, int64_t(172 * 64 / 64 * 4));
        const auto& headCodes = find("lm_head.qweight");
        QVERIFY(headCodes.shape == (Shape{512, 32}));
        QCOMPARE(headCodes.layer, -1);
        QVERIFY(find("lm_head.zero").shape == (Shape{512, 1}));
        QCOMPARE(QString::fromStdString(find("lm_head.scale").dtype), QString("F16"));
        QCOMPARE(QString::fromStdString(find("model.norm.weight").dtype), QString("F32"));

        const auto j = rep.toJson();
        QCOMPARE(j.at("total_bytes").get<int64_t>(), rep.totalBytes);
        QCOMPARE(j.at("lm_head_bytes").get<int64_t>(), head);
        QCOMPARE(QString::fromStdString(j.at("layers")[1].at("formats").at("q").get<std::string>()), QString("int8"));
        QCOMPARE(j.at("layers")[1].at("module_bytes").at("q").get<int64_t>(), int64_t(64 * 64 + 64 * 4));
        QCOMPARE(j.at("tensors").size(), rep.tensors.size());
        QCOMPARE(QString::fromStdString(j.at("tensors")[0].dump()),
                 QString(R"({"name":"model.embed_tokens.weight","format":"fp32","dtype":"F32","shape":[512,64],"bytes":131072})"));
    }

    void memoryBiases()
    {
        const ModelConfig c = tinyConfig(false, true);
        const auto quantized = qpruner::memoryReport(c, PrecisionMap(spec("nf4")));
        QCOMPARE(quantized.biasBytes, int64_t(2 * (64 + 32 + 32) * 4)); // fp32 beside quantized weights
        QCOMPARE(quantized.parameters, c.parameterCount());
        const auto dense = qpruner::memoryReport(c, parse(R"({"version": 1, "default": "bf16", "layers": {"1": {"k": "fp32"}}})"));
        QCOMPARE(dense.biasBytes, int64_t((64 + 32 + 32) * 2 + (64 + 32) * 2 + 32 * 4)); // the weight's own dtype
        QCOMPARE(dense.layers[1].biasBytes, int64_t((64 + 32) * 2 + 32 * 4));
        QCOMPARE(dense.totalBytes, 2 * kTinyEmbeddingBf16 + kTinyNorms + dense.biasBytes + 90624 + 90624 + 32 * 64 * 2);
        for (const auto& t : quantized.tensors)
            if (t.name == "model.layers.0.self_attn.k_proj.bias") {
                QCOMPARE(QString::fromStdString(t.dtype), QString("F32"));
                QVERIFY(t.shape == (std::vector<int64_t>{32}));
                QCOMPARE(t.spec, spec("fp32"));
                return;
            }
        QFAIL("no k_proj.bias tensor");
    }

    void memoryPrunedModel()
    {
        ModelConfig c = tinyConfig(true);
        c.layers = {{8, 4, 172}, {4, 2, 96}, {6, 3, 40}};
        const auto rep = qpruner::memoryReport(c, parse(R"({"version": 1, "default": "int4", "layers": {"2": "nf4-dq"}})"));
        // Layer 0, int4 group 64: 32 code bytes per 64 columns; down has ceil(172/64) = 3 groups.
        const int64_t l0 = (64 * 32 + 2 * (64 * 1 * 2)) * 2 + (32 * 32 + 2 * (32 * 1 * 2)) * 2 +
                           (172 * 32 + 2 * (172 * 1 * 2)) * 2 + (64 * 86 + 2 * (64 * 3 * 2));
        // Layer 1: q [32, 64], k/v [16, 64], o [64, 32], gate/up [96, 64], down [64, 96] (2 groups).
        const int64_t l1 = (32 * 32 + 2 * (32 * 1 * 2)) + (16 * 32 + 2 * (16 * 1 * 2)) * 2 +
                           (64 * 16 + 2 * (64 * 1 * 2)) + (96 * 32 + 2 * (96 * 1 * 2)) * 2 + (64 * 48 + 2 * (64 * 2 * 2));
        // Layer 2, nf4-dq: q/o 3072 weights (48 blocks), k/v 1536 (24 blocks), gate/up/down 2560 (40 blocks).
        const int64_t l2 = (3072 / 2 + 48 + 4 + 4) * 2 + (1536 / 2 + 24 + 4 + 4) * 2 + (2560 / 2 + 40 + 4 + 4) * 3;
        QCOMPARE(l0, int64_t(25568));
        QCOMPARE(l1, int64_t(14080));
        QCOMPARE(l2, int64_t(8768));
        QCOMPARE(rep.layers[0].linearBytes, l0);
        QCOMPARE(rep.layers[1].linearBytes, l1);
        QCOMPARE(rep.layers[2].linearBytes, l2);
        const int64_t p1 = 32 * 64 + 16 * 64 * 2 + 64 * 32 + 96 * 64 * 3;
        const int64_t p2 = 48 * 64 + 24 * 64 * 2 + 64 * 48 + 40 * 64 * 3;
        QCOMPARE(rep.layers[1].linearParameters, p1);
        QCOMPARE(rep.layers[2].linearParameters, p2);
        for (int l = 0; l < 3; ++l)
            QCOMPARE(rep.layers[size_t(l)].parameters, c.layerParameterCount(l));
        QCOMPARE(rep.parameters, c.parameterCount());
        QCOMPARE(rep.totalBytes, kTinyEmbeddingBf16 + 3 * (2 * 64 * 4) + 64 * 4 + l0 + l1 + l2);
        QCOMPARE(rep.linearBitsPerWeight, 8.0 * double(l0 + l1 + l2) / double(kTinyLinearParams + p1 + p2));
        QCOMPARE(rep.layers[2].specs[0], spec("nf4-dq"));
    }

    void finetuneEstimate()
    {
        const ModelConfig c = tinyConfig();
        const PrecisionMap nf4(spec("nf4"));
        qpruner::FinetuneSettings s;
        s.rank = 4;
        s.targets = {"q", "v_proj"};
        s.batchSize = 2;
        s.seqLen = 16;
        const auto e = qpruner::estimateFinetune(c, nf4, s);
        const int64_t loraParams = 2 * (4 * (64 + 64) + 4 * (64 + 32)); // q [64, 64], v [32, 64], two layers
        QCOMPARE(e.loraParams, loraParams);
        QCOMPARE(e.loraBytes, 4 * loraParams);
        QCOMPARE(e.gradientBytes, 4 * loraParams);
        QCOMPARE(e.optimizerBytes, 8 * loraParams);
        // Per token (c = 2, bf16): norm inputs fp32, normed inputs, q/k/v, attention output, four FFN tensors,
        // x*A^T of two adapters; attention probabilities fp32 + bf16 per head.
        const int64_t perToken = 4 * 64 + 2 * 64 + 2 * (64 + 2 * 32) + 2 * 64 + 4 * 64 + 2 * 64 + 4 * 2 * 172 + 2 * (2 * 4);
        const int64_t layer = 2 * 16 * perToken + 2 * 8 * 16 * 16 * (4 + 2);
        QCOMPARE(layer, int64_t(105984));
        QVERIFY(e.layerActivationBytes == (std::vector<int64_t>{layer, layer}));
        const int64_t head = 2 * 16 * (4 * 64 + 2 * 64 + 8 * 512);
        QCOMPARE(e.headActivationBytes, head);
        QCOMPARE(e.activationBytes, 2 * layer + head);
        QCOMPARE(e.transientBytes, int64_t(2 * 172 * 64)); // the largest dequantized weight, bf16
        const int64_t base = 2 * kTinyEmbeddingBf16 + kTinyNorms + 2 * 25488;
        QCOMPARE(e.baseWeightBytes, base);
        QCOMPARE(e.totalBytes, base + 4 * loraParams + 4 * loraParams + 8 * loraParams + 2 * layer + head + 2 * 172 * 64);
        QCOMPARE(e.toJson().at("total_bytes").get<int64_t>(), e.totalBytes);
        QCOMPARE(e.toJson().at("layer_activation_bytes").size(), size_t(2));

        // Gradient checkpointing: each layer's bf16 input, one layer recomputed, the head.
        s.gradientCheckpointing = true;
        QCOMPARE(qpruner::estimateFinetune(c, nf4, s).activationBytes, 2 * (2 * 2 * 16 * 64) + layer + head);
        s.gradientCheckpointing = false;

        // Dropout: the dropped adapter input (bf16) and its bool mask, q and v both read [.., 64].
        s.dropout = 0.05;
        QCOMPARE(qpruner::estimateFinetune(c, nf4, s).layerActivationBytes[0],
                 2 * 16 * (perToken + (2 + 1) * 64 * 2) + 2 * 8 * 16 * 16 * (4 + 2));
        s.dropout = 0;

        // fp32 compute: probabilities once, every activation 4 bytes; a dense base has no transient weight.
        s.computeDtype = spec("fp32");
        s.adapterDtype = spec("bf16");
        const auto f = qpruner::estimateFinetune(c, PrecisionMap(spec("bf16")), s);
        const int64_t perToken32 = 4 * 64 + 4 * 64 + 4 * (64 + 2 * 32) + 4 * 64 + 4 * 64 + 4 * 64 + 4 * 4 * 172 + 2 * (4 * 4);
        QCOMPARE(f.layerActivationBytes[1], 2 * 16 * perToken32 + 2 * 8 * 16 * 16 * 4);
        QCOMPARE(f.headActivationBytes, 2 * 16 * (4 * 64 + 4 * 64 + 8 * 512));
        QCOMPARE(f.transientBytes, int64_t(0));
        QCOMPARE(f.loraBytes, 2 * loraParams);
        QCOMPARE(f.optimizerBytes, 8 * loraParams);

        // Defaults: rank 8 on all seven modules.
        const auto d = qpruner::estimateFinetune(c, nf4);
        QCOMPARE(d.loraParams, 2 * 8 * ((64 + 64) + (64 + 32) * 2 + (64 + 64) + (64 + 172) * 2 + (172 + 64)));

        using qpruner::ConfigError;
        qpruner::FinetuneSettings bad;
        bad.rank = 0;
        VERIFY_THROWS(ConfigError, qpruner::estimateFinetune(c, nf4, bad), "rank must be positive, got 0");
        bad = {};
        bad.batchSize = -1;
        VERIFY_THROWS(ConfigError, qpruner::estimateFinetune(c, nf4, bad), "batch size");
        bad = {};
        bad.seqLen = 0;
        VERIFY_THROWS(ConfigError, qpruner::estimateFinetune(c, nf4, bad), "sequence length");
        bad = {};
        bad.dropout = 1.0;
        VERIFY_THROWS(ConfigError, qpruner::estimateFinetune(c, nf4, bad), "dropout");
        bad = {};
        bad.adapterDtype = spec("nf4");
        VERIFY_THROWS(ConfigError, qpruner::estimateFinetune(c, nf4, bad), "adapter dtype must be fp32, bf16 or fp16, got nf4");
        bad = {};
        bad.computeDtype = spec("int8");
        VERIFY_THROWS(ConfigError, qpruner::estimateFinetune(c, nf4, bad), "compute dtype");
        bad = {};
        bad.targets = {"q", "gate_prj"};
        VERIFY_THROWS(ConfigError, qpruner::estimateFinetune(c, nf4, bad), "targets: unknown module 'gate_prj'",
                      "did you mean 'gate'?");
        bad.targets = {"q", "q_proj"};
        VERIFY_THROWS(ConfigError, qpruner::estimateFinetune(c, nf4, bad), "module q is listed twice");
        bad.targets = {};
        VERIFY_THROWS(ConfigError, qpruner::estimateFinetune(c, nf4, bad), "targets");
        VERIFY_THROWS(ConfigError, qpruner::estimateFinetune(c, parse(R"({"version":1,"default":"nf4","layers":{"9":"int8"}})")),
                      "layers.9");
    }
};

QTEST_APPLESS_MAIN(TestPrecisionMap)
#include "test_precision_map.moc"

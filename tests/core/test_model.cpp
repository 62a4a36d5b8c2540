// The LLaMA runtime and checkpoints: logits against an independent float64 implementation, the KV cache,
// llama2.c / Hugging Face / native loading (RoPE layout conversion), dtypes, and clear errors on bad files.
#include <QtTest/QtTest>

#include <cstring>
#include <fstream>
#include <functional>

#include "config/llama2c_layout.h"
#include "io/json_file.h"
#include "io/safetensors_header.h"
#include "model/checkpoint.h"
#include "model/dtype.h"
#include "model/random_model.h"
#include "model_fixtures.h"
#include "qpruner/error.h"

using namespace qpruner;
using namespace qpruner::testing;

namespace {

std::vector<int32_t> ids(const nlohmann::json& j) { return j.get<std::vector<int32_t>>(); }

// Writes a Hugging Face directory from a loaded model, converting rotate-half rows back to the interleaved
// layout first and then applying the permutation transformers' convert_llama_weights_to_hf.py applies, so the
// HF loader is checked against HF's own convention rather than against our writer.
void writeHfFromLlama2c(const std::filesystem::path& bin, const std::filesystem::path& dir, const std::string& dtype,
                        bool sharded)
{
    const auto lay = config::readLlama2cLayout(bin);
    std::ifstream in(bin, std::ios::binary);
    std::vector<char> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto arr = [&](const std::string& k) {
        const auto& a = lay.arrays.at(k);
        auto t = at::empty(a.shape, at::kFloat);
        std::memcpy(t.data_ptr(), raw.data() + a.offset, static_cast<size_t>(t.numel()) * 4);
        return t;
    };
    const auto& c = lay.config;
    const int64_t D = c.hiddenSize, hd = c.headDim;
    auto hfPermute = [&](const at::Tensor& w, int64_t heads) { // HF's permute(w, n_heads, dim1, dim2)
        return w.view({heads, hd / 2, 2, D}).transpose(1, 2).reshape({heads * hd, D});
    };
    std::map<std::string, at::Tensor> t;
    t["model.embed_tokens.weight"] = arr("tok_embeddings");
    t["model.norm.weight"] = arr("rms_final");
    const auto wq = arr("wq"), wk = arr("wk"), wv = arr("wv"), wo = arr("wo"), w1 = arr("w1"), w2 = arr("w2"),
               w3 = arr("w3"), ra = arr("rms_att"), rf = arr("rms_ffn");
    for (int l = 0; l < c.numLayers(); ++l) {
        auto n = [&](const std::string& p) { return model::layerTensorName(l, p); };
        t[n("self_attn.q_proj.weight")] = hfPermute(wq[l], c.layers[0].numHeads);
        t[n("self_attn.k_proj.weight")] = hfPermute(wk[l], c.layers[0].numKvHeads);
        t[n("self_attn.v_proj.weight")] = wv[l];
        t[n("self_attn.o_proj.weight")] = wo[l];
        t[n("mlp.gate_proj.weight")] = w1[l];
        t[n("mlp.down_proj.weight")] = w2[l];
        t[n("mlp.up_proj.weight")] = w3[l];
        t[n("input_layernorm.weight")] = ra[l];
        t[n("post_attention_layernorm.weight")] = rf[l];
    }
    const auto st = model::parseDtype(dtype);
    std::filesystem::create_directories(dir);
    nlohmann::json cfg = {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"hidden_size", D},
                          {"intermediate_size", c.layers[0].ffnDim}, {"num_hidden_layers", c.numLayers()},
                          {"num_attention_heads", c.layers[0].numHeads},
                          {"num_key_value_heads", c.layers[0].numKvHeads}, {"vocab_size", c.vocabSize},
                          {"max_position_embeddings", c.maxSeqLen}, {"rms_norm_eps", 1e-5}, {"rope_theta", 10000.0},
                          {"tie_word_embeddings", true}, {"torch_dtype", dtype}};
    std::ofstream(dir / "config.json") << cfg.dump(2);
    auto writeShard = [&](const std::filesystem::path& file, const std::vector<std::string>& names) {
        std::map<std::string, io::SafetensorsEntry> e;
        std::map<std::string, at::Tensor> conv;
        for (const auto& name : names) {
            conv[name] = t.at(name).to(name.find("norm") != std::string::npos ? at::kFloat : st).contiguous();
            e[name] = {model::safetensorsDtype(conv[name].scalar_type()),
                       std::vector<int64_t>(conv[name].sizes().begin(), conv[name].sizes().end()), 0, 0};
        }
        const auto header = io::buildSafetensorsHeader(e, {{"format", "pt"}});
        std::ofstream out(file, std::ios::binary);
        out.write(header.data(), static_cast<std::streamsize>(header.size()));
        for (const auto& [name, x] : conv)
            out.write(static_cast<const char*>(x.data_ptr()), x.numel() * static_cast<int64_t>(x.element_size()));
    };
    std::vector<std::string> names;
    for (const auto& [k, v] : t)
        names.push_back(k);
    if (!sharded) {
        writeShard(dir / "model.safetensors", names);
        return;
    }
    const size_t half = names.size() / 2;
    std::vector<std::string> a(names.begin(), names.begin() + static_cast<std::ptrdiff_t>(half)),
        b(names.begin() + static_cast<std::ptrdiff_t>(half), names.end());
    writeShard(dir / "model-00001-of-00002.safetensors", a);
    writeShard(dir / "model-00002-of-00002.safetensors", b);
    nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::json::object()}};
    for (const auto& n : a)
        index["weight_map"][n] = "model-00001-of-00002.safetensors";
    for (const auto& n : b)
        index["weight_map"][n] = "model-00002-of-00002.safetensors";
    std::ofstream(dir / "model.safetensors.index.json") << index.dump(2);
}


} // namespace

class TestModel : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase() { model::setIntraOpThreads(0); }

    void logitsMatchReference_data()
    {
        QTest::addColumn<QString>("key");
        QTest::addColumn<QString>("file");
        QTest::newRow("stories260K") << "stories260K" << "models/stories260K/stories260K.bin";
        QTest::newRow("llama2xs-64d") << "llama2xs-64d" << "models/llama2xs-64d/model.bin";
    }
    void logitsMatchReference()
    {
        QFETCH(QString, key);
        QFETCH(QString, file);
        QPRUNER_SHARED_FILE(path, file.toStdString());
        const auto ref = referenceJson("logits.json")["models"][key.toStdString()];
        const auto m = model::loadModel(path);
        QCOMPARE(m->config().parameterCount(), key == "stories260K" ? 260032 : 279232);
        const auto in = ids(ref["input_ids"]);
        const auto logits = m->forward(tokensTensor(in)).squeeze(0);
        for (const auto& [pos, vals] : ref["logits"].items()) {
            const auto expect = at::tensor(vals.get<std::vector<double>>(), at::kDouble);
            const double diff = maxAbsDiff(logits[std::stoi(pos)], expect);
            QVERIFY2(diff < 1e-4, qPrintable(QString("position %1: max |diff| %2").arg(pos.c_str()).arg(diff)));
        }
        // Next-token NLL per position, and the mean over the sentence.
        const auto logp = at::log_softmax(logits, -1);
        const auto nll = ref["nll"].get<std::vector<double>>();
        double mean = 0;
        for (size_t t = 0; t < nll.size(); ++t) {
            const double got = -logp[static_cast<int64_t>(t)][in[t + 1]].item<double>();
            QVERIFY2(std::abs(got - nll[t]) < 1e-5, qPrintable(QString("t=%1 got %2 want %3").arg(t).arg(got).arg(nll[t])));
            mean += got;
        }
        QVERIFY(std::abs(mean / double(nll.size()) - ref["mean_nll"].get<double>()) < 1e-6);
    }

    void kvCacheMatchesFullForward()
    {
        QPRUNER_SHARED_FILE(path, "models/stories260K/stories260K.bin");
        const auto m = model::loadModel(path);
        const std::vector<int32_t> in = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376};
        const auto full = m->forward(tokensTensor(in)).squeeze(0);
        auto cache = m->makeCache(1, 16);
        // Prompt of 4 in one pass, then one token at a time.
        auto first = m->forward(tokensTensor({in.begin(), in.begin() + 4}), &cache).squeeze(0);
        QVERIFY(maxAbsDiff(first, full.narrow(0, 0, 4)) < 1e-5);
        for (size_t t = 4; t < in.size(); ++t) {
            auto step = m->forward(tokensTensor({in[t]}), &cache).squeeze(0);
            QVERIFY2(maxAbsDiff(step[0], full[static_cast<int64_t>(t)]) < 1e-5, qPrintable(QString("t=%1").arg(t)));
        }
        QCOMPARE(cache.length, int64_t(in.size()));
        // Overflowing the cache is an error, not a crash.
        QVERIFY(expectThrow<ConfigError>([&] { m->forward(tokensTensor(std::vector<int32_t>(7, 5)), &cache); })
                    .contains("KV cache"));
    }

    void batchedForwardMatchesSingle()
    {
        QPRUNER_SHARED_FILE(path, "models/stories260K/stories260K.bin");
        const auto m = model::loadModel(path);
        const std::vector<int32_t> a = {1, 403, 407, 261, 378, 432}, b = {1, 410, 469, 347, 286, 261};
        auto batch = at::cat({tokensTensor(a), tokensTensor(b)}, 0);
        const auto lb = m->forward(batch);
        // Different BLAS blockings: fp32 rounding only (logits are O(10)).
        QVERIFY(maxAbsDiff(lb[0], m->forward(tokensTensor(a))[0]) < 1e-4);
        QVERIFY(maxAbsDiff(lb[1], m->forward(tokensTensor(b))[0]) < 1e-4);
    }

    void huggingFaceDirectoryMatchesLlama2c_data()
    {
        QTest::addColumn<QString>("dtype");
        QTest::addColumn<bool>("sharded");
        QTest::addColumn<double>("tolerance");
        QTest::newRow("F32 single file") << "float32" << false << 1e-5;
        QTest::newRow("F32 sharded") << "float32" << true << 1e-5;
        QTest::newRow("BF16") << "bfloat16" << false << 0.35;
        QTest::newRow("F16") << "float16" << false << 0.05;
    }
    void huggingFaceDirectoryMatchesLlama2c()
    {
        QFETCH(QString, dtype);
        QFETCH(bool, sharded);
        QFETCH(double, tolerance);
        QPRUNER_SHARED_FILE(path, "models/stories260K/stories260K.bin");
        QTemporaryDir tmp;
        const std::filesystem::path dir = tmp.path().toStdString() + "/hf";
        writeHfFromLlama2c(path, dir, dtype.toStdString(), sharded);
        const auto summary = inspectModel(dir);
        QCOMPARE(QString::fromStdString(summary.format), QString("hf"));
        QCOMPARE(QString::fromStdString(summary.dtype), dtype); // the matrices' dtype (the norms are float32)
        const auto hf = model::loadModel(dir);
        QCOMPARE(hf->weightDtype(), model::parseDtype(dtype.toStdString()));
        const auto bin = model::loadModel(path);
        const std::vector<int32_t> in = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315};
        const double diff = maxAbsDiff(hf->forward(tokensTensor(in)), bin->forward(tokensTensor(in)));
        QVERIFY2(diff < tolerance, qPrintable(QString("max |diff| %1").arg(diff)));
        // Loading with an explicit dtype converts.
        model::LoadOptions o;
        o.dtype = at::kFloat;
        QCOMPARE(model::loadModel(dir, o)->weightDtype(), at::kFloat);
    }

    void nativeRoundTripIsBitIdentical()
    {
        QPRUNER_SHARED_FILE(path, "models/stories260K/stories260K.bin");
        QTemporaryDir tmp;
        const std::filesystem::path dir = tmp.path().toStdString() + "/native";
        const auto m = model::loadModel(path);
        model::saveNativeModel(*m, dir, {{"source", "test"}});
        const auto j = io::readJsonFile(dir / "config.json");
        QCOMPARE(j["qpruner"]["source"].get<std::string>(), std::string("test"));
        const auto back = model::loadModel(dir);
        QVERIFY(back->config() == m->config());
        const std::vector<int32_t> in = {1, 403, 407, 261, 378};
        QVERIFY(at::equal(back->forward(tokensTensor(in)), m->forward(tokensTensor(in))));
        QCOMPARE(QString::fromStdString(inspectModel(dir).format), QString("native"));
        // Saving over an existing directory replaces it whole, and leaves no staging directories behind.
        model::saveNativeModel(*back, dir);
        int entries = 0;
        for (const auto& e : std::filesystem::directory_iterator(tmp.path().toStdString()))
            ++entries, (void)e;
        QCOMPARE(entries, 1);
    }

    void heterogeneousLayersAndBias()
    {
        ModelConfig c = model::findRandomPreset("tiny").config;
        c.attentionBias = true;
        c.layers = {{4, 2, 160}, {2, 1, 96}, {4, 4, 40}};
        const auto m = model::makeRandomModel(c, at::kFloat, 7);
        int64_t numel = m->embedding.numel() + m->finalNorm.numel() + m->lmHead->denseWeight().numel();
        for (const auto& l : m->layers) {
            numel += l.attnNorm.numel() + l.ffnNorm.numel();
            for (const auto* p : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down})
                numel += (*p)->denseWeight().numel() + ((*p)->bias() ? (*p)->bias()->numel() : 0);
        }
        QCOMPARE(numel, c.parameterCount()); // the closed form counts exactly what is held
        QTemporaryDir tmp;
        const std::filesystem::path dir = tmp.path().toStdString() + "/hetero";
        model::saveNativeModel(*m, dir);
        const auto back = model::loadModel(dir);
        QVERIFY(back->config() == c);
        const std::vector<int32_t> in = {1, 5, 9, 200, 17, 3};
        QVERIFY(at::equal(back->forward(tokensTensor(in)), m->forward(tokensTensor(in))));
        auto cache = back->makeCache(1, 8);
        back->forward(tokensTensor({in.begin(), in.begin() + 5}), &cache);
        const auto step = back->forward(tokensTensor({in[5]}), &cache);
        QVERIFY(maxAbsDiff(step[0][0], m->forward(tokensTensor(in))[0][5]) < 1e-5);
    }

    void dtypesAgreeWithFloat32()
    {
        QPRUNER_SHARED_FILE(path, "models/stories260K/stories260K.bin");
        const std::vector<int32_t> in = {1, 403, 407, 261, 378, 432, 383, 286};
        const auto ref = at::log_softmax(model::loadModel(path)->forward(tokensTensor(in)), -1);
        for (auto dt : {at::kBFloat16, at::kHalf}) {
            model::LoadOptions o;
            o.dtype = dt;
            const auto m = model::loadModel(path, o);
            QCOMPARE(m->weightDtype(), dt);
            QCOMPARE(m->weightBytes(), int64_t(260032 - 64 * 11) * 2 + 64 * 11 * 4); // norms stay fp32
            const auto lp = at::log_softmax(m->forward(tokensTensor(in)), -1);
            QCOMPARE(lp.scalar_type(), at::kFloat);
            // Mean NLL of the sentence within 0.05 nats of fp32.
            double a = 0, b = 0;
            for (size_t t = 0; t + 1 < in.size(); ++t) {
                a -= ref[0][static_cast<int64_t>(t)][in[t + 1]].item<double>();
                b -= lp[0][static_cast<int64_t>(t)][in[t + 1]].item<double>();
            }
            QVERIFY2(std::abs(a - b) / double(in.size() - 1) < 0.05, qPrintable(QString("%1 vs %2").arg(a).arg(b)));
        }
    }

    void truncatedLlama2cFilesFailClearly()
    {
        QPRUNER_SHARED_FILE(path, "models/stories260K/stories260K.bin");
        std::ifstream in(path, std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        QTemporaryDir tmp;
        for (size_t cut : {size_t(0), size_t(10), size_t(28), size_t(5000), bytes.size() - 4}) {
            const std::filesystem::path f = tmp.path().toStdString() + "/cut" + std::to_string(cut) + ".bin";
            std::ofstream(f, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(cut));
            const QString msg = expectThrow<FileError>([&] { model::loadModel(f); });
            QVERIFY2(msg.contains("truncated") && msg.contains(QString::fromStdString(f.filename().string())),
                     qPrintable(msg));
        }
        // Garbage header and a trailing surplus are format errors.
        std::string garbage = bytes;
        const int32_t bad = -7;
        std::memcpy(garbage.data() + 12, &bad, 4); // n_heads
        const std::filesystem::path g = tmp.path().toStdString() + "/garbage.bin";
        std::ofstream(g, std::ios::binary) << garbage;
        QVERIFY(expectThrow<FormatError>([&] { model::loadModel(g); }).contains("n_heads"));
        const std::filesystem::path longer = tmp.path().toStdString() + "/longer.bin";
        std::ofstream(longer, std::ios::binary) << bytes << "xxxx";
        QVERIFY(expectThrow<FormatError>([&] { model::loadModel(longer); }).contains("size mismatch"));
        QVERIFY(expectThrow<FileError>([&] { model::loadModel("/nonexistent/model.bin"); }).contains("not found"));
    }

    void badHuggingFaceDirectoriesFailClearly()
    {
        QPRUNER_SHARED_FILE(path, "models/stories260K/stories260K.bin");
        QTemporaryDir tmp;
        const std::filesystem::path base = tmp.path().toStdString();
        auto fresh = [&](const std::string& name) {
            const auto d = base / name;
            writeHfFromLlama2c(path, d, "float32", false);
            return d;
        };
        // Bad JSON in config.json: the file is named.
        auto d1 = fresh("badjson");
        std::ofstream(d1 / "config.json") << "{\"hidden_size\": 64,";
        QVERIFY(expectThrow<FormatError>([&] { model::loadModel(d1); }).contains("config.json"));
        // Missing field.
        auto d2 = fresh("nofield");
        auto cfg = io::readJsonFile(d2 / "config.json");
        cfg.erase("num_hidden_layers");
        std::ofstream(d2 / "config.json") << cfg.dump();
        QVERIFY(expectThrow<FormatError>([&] { model::loadModel(d2); }).contains("num_hidden_layers"));
        // Config disagrees with the tensors: wrong shape, named.
        auto d3 = fresh("shape");
        cfg = io::readJsonFile(d3 / "config.json");
        cfg["intermediate_size"] = 100;
        std::ofstream(d3 / "config.json") << cfg.dump();
        const QString shapeMsg = expectThrow<FormatError>([&] { model::loadModel(d3); });
        QVERIFY2(shapeMsg.contains("mlp") && shapeMsg.contains("[172, 64]") && shapeMsg.contains("[100, 64]"),
                 qPrintable(shapeMsg));
        // More layers than tensors: the missing tensor is named.
        auto d4 = fresh("missing");
        cfg = io::readJsonFile(d4 / "config.json");
        cfg["num_hidden_layers"] = 6;
        std::ofstream(d4 / "config.json") << cfg.dump();
        QVERIFY(expectThrow<FormatError>([&] { model::loadModel(d4); }).contains("model.layers.5."));
        // Truncated safetensors.
        auto d5 = fresh("trunc");
        const auto st = d5 / "model.safetensors";
        std::filesystem::resize_file(st, std::filesystem::file_size(st) - 100);
        QVERIFY(expectThrow<FileError>([&] { model::loadModel(d5); }).contains("truncated"));
        // Unknown dtype in the header.
        auto d6 = fresh("dtype");
        {
            std::fstream f(d6 / "model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
            std::string head(4096, '\0');
            f.read(head.data(), 4096);
            const auto pos = head.find("\"F32\"");
            QVERIFY(pos != std::string::npos);
            f.seekp(static_cast<std::streamoff>(pos));
            f.write("\"Q32\"", 5);
        }
        QVERIFY(expectThrow<FormatError>([&] { model::loadModel(d6); }).contains("Q32"));
        // No weights at all.
        auto d7 = fresh("noweights");
        std::filesystem::remove(d7 / "model.safetensors");
        QVERIFY(expectThrow<FileError>([&] { model::loadModel(d7); }).contains("model.safetensors"));
        // Unsupported model type.
        auto d8 = fresh("gpt2");
        cfg = io::readJsonFile(d8 / "config.json");
        cfg["model_type"] = "gpt2";
        std::ofstream(d8 / "config.json") << cfg.dump();
        QVERIFY(expectThrow<FormatError>([&] { model::loadModel(d8); }).contains("gpt2"));
    }

    void unknownDtypeAndDeviceAreConfigErrors()
    {
        QVERIFY(expectThrow<ConfigError>([] { model::parseDtype("int5"); }).contains("int5"));
        QVERIFY(expectThrow<ConfigError>([] { model::parseDevice("tpu"); }).contains("tpu"));
        if (!at::hasCUDA())
            QVERIFY(expectThrow<ConfigError>([] { model::parseDevice("cuda"); }).contains("CUDA"));
    }
};

QTEST_APPLESS_MAIN(TestModel)
#include "test_model.moc"

// Quantized models: a precision map applied to a real model holds exactly the bytes the memory model predicts
// (in memory and tensor by tensor on disk), quantize -> save -> load gives identical logits, mixed and pruned
// models included, and damaged quantized checkpoints fail with errors naming the tensor.
#include <QtTest/QtTest>

#include <QTemporaryDir>

#include "io/json_file.h"
#include "io/safetensors_header.h"
#include "model/checkpoint.h"
#include "model/dtype.h"
#include "model/random_model.h"
#include "model_fixtures.h"
#include "prune/calibration.h"
#include "prune/pruner.h"
#include "qpruner/tokenizer.h"
#include "quant/model_quantizer.h"
#include "quant/quant_error.h"
#include "quant/quant_linear.h"
#include "qpruner/error.h"
#include "qpruner/memory_model.h"

using namespace qpruner;
using namespace qpruner::testing;

namespace {

std::unique_ptr<model::LlamaModel> loadStories()
{
    return model::loadModel(sharedDataDir() / "models/stories260K/stories260K.bin");
}

// Untied head, q/k/v bias, GQA, an FFN width that is no multiple of 8 or 64.
ModelConfig untiedBiasConfig()
{
    ModelConfig c;
    c.hiddenSize = 72;
    c.headDim = 12;
    c.vocabSize = 97;
    c.maxSeqLen = 32;
    c.attentionBias = true;
    c.tiedEmbeddings = false;
    c.layers = {LayerShape{6, 2, 100}, LayerShape{6, 3, 52}};
    return c;
}

at::Tensor tokens(int64_t vocab, uint64_t seed)
{
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    return at::randint(vocab, {2, 24}, gen, at::TensorOptions().dtype(at::kLong));
}

// Checks held bytes == analytic bytes, then save -> header bytes per tensor == analytic, load -> same logits.
void checkRoundTrip(model::LlamaModel& m, const PrecisionMap& map, const QString& label)
{
    const MemoryReport analytic = memoryReport(m.config(), map);
    quant::quantizeModel(m, map);
    QVERIFY2(m.weightBytes() == analytic.totalBytes,
             qPrintable(label + QString(": held %1, analytic %2").arg(m.weightBytes()).arg(analytic.totalBytes)));
    QVERIFY(quant::heldPrecision(m) == map.resolve(m.config()));

    QTemporaryDir dir;
    const auto out = std::filesystem::path(dir.path().toStdString()) / "q";
    model::saveNativeModel(m, out);
    const auto header = io::readSafetensorsHeader(out / "model.safetensors");
    std::map<std::string, int64_t> onDisk;
    for (const auto& [name, e] : header.tensors)
        onDisk[name] = int64_t(e.end - e.begin);
    std::map<std::string, int64_t> expected;
    for (const auto& t : analytic.tensors)
        expected[t.name] = t.bytes;
    QCOMPARE(onDisk, expected);
    QCOMPARE(inspectModel(out).weightBytes, analytic.totalBytes);

    const auto x = tokens(m.config().vocabSize, 5);
    const auto loaded = model::loadModel(out);
    QCOMPARE(loaded->weightBytes(), analytic.totalBytes);
    QVERIFY(quant::heldPrecision(*loaded) == map.resolve(m.config()));
    QVERIFY2(at::equal(m.forward(x), loaded->forward(x)), qPrintable(label + ": logits differ after reload"));
}

} // namespace

class TestQuantModel : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase() { model::setIntraOpThreads(0); }

    void everyFormatIsExactAndReloads_data()
    {
        QTest::addColumn<QString>("format");
        for (const auto& n : quantSpecNames())
            QTest::newRow(n.c_str()) << QString::fromStdString(n);
    }
    void everyFormatIsExactAndReloads()
    {
        QFETCH(QString, format);
        QPRUNER_SHARED_FILE(bin, "models/stories260K/stories260K.bin");
        auto m = loadStories();
        checkRoundTrip(*m, PrecisionMap(parseQuantSpec(format.toStdString())), "stories260K " + format);
        auto u = model::makeRandomModel(untiedBiasConfig(), at::kFloat, 3);
        PrecisionMap map(parseQuantSpec(format.toStdString()));
        map.setLmHead(parseQuantSpec(format.toStdString()));
        map.setEmbedding(parseQuantSpec("fp32"));
        checkRoundTrip(*u, map, "untied+bias " + format);
    }

    void mixedMapOnPrunedModel()
    {
        QPRUNER_SHARED_FILE(bin, "models/stories260K/stories260K.bin");
        auto m = loadStories();
        prune::PruneOptions o;
        o.ratio = 0.5;
        o.criterion = prune::Criterion::L2;
        prune::applyPruning(*m, prune::planPruning(m->config(), prune::estimateImportance(*m, at::Tensor(), o), o));
        QVERIFY(!m->config().homogeneous());
        const auto map = PrecisionMap::fromJson(nlohmann::json::parse(R"({
            "version": 1, "default": "nf4",
            "modules": {"down": "int8"},
            "layers": {"0": "bf16", "2": {"default": "int3-g128", "q": "nf4-dq", "v": "int2"}, "4": "fp16"},
            "embedding": "fp32"})"));
        checkRoundTrip(*m, map, "pruned mixed");
        // The mix really is mixed: per-module formats as the precedence says.
        const auto r = quant::heldPrecision(*m);
        QCOMPARE(r.layers[2][size_t(LinearModule::Q)].name(), std::string("nf4-dq"));
        QCOMPARE(r.layers[2][size_t(LinearModule::Down)].name(), std::string("int3-g128"));
        QCOMPARE(r.layers[1][size_t(LinearModule::Down)].name(), std::string("int8"));
        QCOMPARE(r.layers[0][size_t(LinearModule::Up)].name(), std::string("bf16"));
    }

    void quantizedModelStaysClose()
    {
        QPRUNER_SHARED_FILE(bin, "models/stories260K/stories260K.bin");
        auto dense = loadStories();
        const auto x = tokens(512, 9);
        const auto ref = at::log_softmax(dense->forward(x), -1);
        // Mean absolute log-prob change grows as bits shrink.
        double previous = 0;
        for (const char* f : {"int8", "nf4", "int3", "int2"}) {
            auto m = loadStories();
            PrecisionMap map(parseQuantSpec(f));
            map.setEmbedding(parseQuantSpec("fp32"));
            quant::quantizeModel(*m, map);
            const double d = (at::log_softmax(m->forward(x), -1) - ref).abs().mean().item<double>();
            QVERIFY2(d > previous, qPrintable(QString("%1: %2 <= %3").arg(f).arg(d).arg(previous)));
            previous = d;
        }
        QVERIFY(previous < 3.0);
    }

    void quantErrorReportsPerModule()
    {
        QPRUNER_SHARED_FILE(bin, "models/stories260K/stories260K.bin");
        auto m = loadStories();
        const auto x = tokens(512, 11);
        const auto before = m->forward(x);
        QPRUNER_SHARED_FILE(tokFile, "models/stories260K/tok512.model");
        QPRUNER_SHARED_FILE(text, "text/tinystories/tinystories_valid_subset.txt");
        std::ifstream in(text);
        const std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        prune::CalibrationOptions co;
        co.samples = 8;
        co.seqLen = 64;
        const auto calib = prune::sampleCalibration(loadTokenizer(tokFile)->encode(body.substr(0, 40000)), co);
        const auto r8 = quant::measureQuantError(*m, parseQuantSpec("int8"), calib, 3);
        const auto r4 = quant::measureQuantError(*m, parseQuantSpec("nf4"), calib, 3);
        QVERIFY(at::equal(before, m->forward(x))); // the model is left as it was
        QCOMPARE(r4.modules.size(), size_t(35));
        QCOMPARE(r4.denseNll, r8.denseNll);
        for (size_t i = 0; i < r4.modules.size(); ++i) {
            const auto &a = r8.modules[i], &b = r4.modules[i];
            // int8 row-wise: error ~ step/sqrt(12) relative to the row scale; nf4 about ten times more.
            QVERIFY2(a.weightRelError > 0 && a.weightRelError < 0.02, qPrintable(QString::number(a.weightRelError)));
            QVERIFY2(b.weightRelError > 0.04 && b.weightRelError < 0.15, qPrintable(QString::number(b.weightRelError)));
            QVERIFY(b.outputRelError > a.outputRelError);
            QCOMPARE(b.quantBytes, storedBytes(parseQuantSpec("nf4"), b.rows, b.cols));
            // The quantized layer's own weight error, recomputed here.
            const auto& L = m->layers[size_t(b.layer)];
            const model::LinearPtr lins[] = {L.q, L.k, L.v, L.o, L.gate, L.up, L.down};
            const auto w = lins[size_t(b.module)]->denseWeight().to(at::kDouble);
            const auto q = quant::quantizeLinear(*lins[size_t(b.module)], parseQuantSpec("nf4"))->denseWeight();
            const double want = (w - q.to(at::kDouble)).norm().item<double>() / w.norm().item<double>();
            QVERIFY(std::abs(b.weightRelError - want) < 1e-12);
        }
        QVERIFY(r4.quantizedNll > r8.quantizedNll);
        QVERIFY(std::abs(r8.quantizedNll - r8.denseNll) < 0.01);
    }

    void errorsNameTheProblem()
    {
        QPRUNER_SHARED_FILE(bin, "models/stories260K/stories260K.bin");
        auto m = loadStories();
        PrecisionMap tooDeep(parseQuantSpec("nf4"));
        tooDeep.setLayer(9, parseQuantSpec("int8"));
        QVERIFY_THROWS_EXCEPTION(ConfigError, quant::quantizeModel(*m, tooDeep));
        quant::quantizeModel(*m, PrecisionMap(parseQuantSpec("nf4")));
        try {
            quant::quantizeModel(*m, PrecisionMap(parseQuantSpec("int8")));
            QFAIL("re-quantizing was accepted");
        } catch (const ConfigError& e) {
            QVERIFY2(std::string(e.what()).find("already quantized") != std::string::npos, e.what());
        }
        QTemporaryDir dir;
        const auto out = std::filesystem::path(dir.path().toStdString()) / "q";
        model::saveNativeModel(*m, out);
        // A config whose map disagrees with the stored tensors: the loader names the missing part.
        auto cfg = io::readJsonFile(out / "config.json");
        cfg["qpruner"]["precision_map"]["default"] = "int4";
        std::ofstream(out / "config.json") << cfg.dump(2);
        try {
            model::loadModel(out);
            QFAIL("mismatched map was accepted");
        } catch (const FormatError& e) {
            QVERIFY2(std::string(e.what()).find("model.layers.0.self_attn.q_proj.qweight") != std::string::npos,
                     e.what());
        }
        cfg["qpruner"]["precision_map"]["default"] = "nf5";
        std::ofstream(out / "config.json") << cfg.dump(2);
        try {
            model::loadModel(out);
            QFAIL("bad map was accepted");
        } catch (const FormatError& e) {
            QVERIFY2(std::string(e.what()).find("nf5") != std::string::npos &&
                         std::string(e.what()).find("config.json") != std::string::npos,
                     e.what());
        }
    }
};

QTEST_GUILESS_MAIN(TestQuantModel)
#include "test_quant_model.moc"

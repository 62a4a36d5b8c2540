// LoftQ adapter initialisation: on stories260K every format's error falls with the iterations and starts below
// plain LoRA's, the returned layer is exactly what the errors claim (and T = 1 reuses q(W) bit for bit), the rank
// is clamped, fp32 gives zero errors, bad arguments are refused; on a whole model the LoftQ init brings the logits
// closer to the dense model than plain LoRA (which leaves the quantized model's forward untouched), the returned
// parameters are the adapters' own tensors, the report's aggregates are right, a bad `dense` changes nothing, and
// a mixed map initialises each layer in its own format.
#include <QtTest/QtTest>

#include <cmath>

#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>
#include <c10/core/InferenceMode.h>

#include "finetune/loftq.h"
#include "finetune/lora.h"
#include "model/checkpoint.h"
#include "model/dtype.h"
#include "model/random_model.h"
#include "model_fixtures.h"
#include "qpruner/error.h"
#include "qpruner/precision_map.h"
#include "quant/model_quantizer.h"
#include "quant/quant_linear.h"

using namespace qpruner;
using namespace qpruner::testing;
using finetune::LoraLinear;

namespace {

double relNorm(const at::Tensor& residual, const at::Tensor& w)
{
    return residual.to(at::kDouble).norm().item<double>() / w.to(at::kDouble).norm().item<double>();
}

// ||W - (deq(base) + scale * B A)||_F / ||W||_F of a LoftQ result.
double claimedError(const model::Linear& dense, const finetune::LoftqLayer& r, double scale)
{
    c10::NoGradGuard noGrad;
    const at::Tensor w = dense.denseWeight().to(at::kFloat);
    const at::Tensor approx = r.base->denseWeight().to(at::kFloat) + scale * at::mm(r.b, r.a);
    return relNorm(w - approx, w);
}

bool sameParts(const model::Linear& a, const model::Linear& b)
{
    const auto* qa = dynamic_cast<const quant::QuantLinear*>(&a);
    const auto* qb = dynamic_cast<const quant::QuantLinear*>(&b);
    if (!qa || !qb)
        return false;
    const auto& pa = qa->quantized().parts;
    const auto& pb = qb->quantized().parts;
    if (pa.size() != pb.size())
        return false;
    for (const auto& [name, t] : pa) {
        const auto it = pb.find(name);
        if (it == pb.end() || !at::equal(t, it->second))
            return false;
    }
    return true;
}

std::unique_ptr<model::LlamaModel> loadStories()
{
    return model::loadModel(sharedDataDir() / "models/stories260K/stories260K.bin");
}

std::vector<LoraLinear*> loraLayers(model::LlamaModel& m)
{
    std::vector<LoraLinear*> out;
    for (auto& layer : m.layers)
        for (const LinearModule mod : kLinearModules)
            if (auto* l = dynamic_cast<LoraLinear*>(model::layerLinear(layer, mod).get()))
                out.push_back(l);
    return out;
}

at::Tensor logitsOf(const model::LlamaModel& m, const at::Tensor& tokens)
{
    c10::InferenceMode guard;
    return m.forward(tokens);
}

double mse(const at::Tensor& a, const at::Tensor& b)
{
    return (a.to(at::kDouble) - b.to(at::kDouble)).square().mean().item<double>();
}

// sqrt(sum err^2 ||W||^2 / sum ||W||^2) over the entries of one layer, by hand.
double handAggregate(const finetune::InitReport& r, int layer, int iteration /* -1: lora */)
{
    double num = 0, den = 0;
    for (const auto& e : r.entries)
        if (e.layer == layer) {
            const double err = iteration < 0 ? e.loraInitError : e.loftqErrors.at(size_t(iteration));
            num += err * err * e.weightNormSq;
            den += e.weightNormSq;
        }
    return std::sqrt(num / den);
}

const char* const kFormats[] = {"nf4", "nf4-dq", "int8", "int4", "int3", "int2", "bf16", "fp16"};

} // namespace

class TestLoftq : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase() { model::setIntraOpThreads(0); }

    void errorsFallOnStories_data()
    {
        QTest::addColumn<QString>("format");
        for (const char* f : kFormats)
            QTest::newRow(f) << QString(f);
    }
    void errorsFallOnStories()
    {
        QFETCH(QString, format);
        QPRUNER_SHARED_FILE(bin, "models/stories260K/stories260K.bin");
        auto m = loadStories();
        QVERIFY(m->layers.size() >= 2);
        const QuantSpec spec = parseQuantSpec(format.toStdString());
        const double scale = 16.0 / 8;
        const int layers[] = {0, int(m->layers.size()) - 1};
        // Every violation is collected, so a failure shows them all.
        QStringList rising, iterateRises;
        for (const int l : layers)
            for (const LinearModule mod : {LinearModule::Q, LinearModule::K, LinearModule::Gate, LinearModule::Down}) {
                const model::LinearPtr dense = model::layerLinear(m->layers[size_t(l)], mod);
                const model::LinearPtr q = quant::convertLinear(*dense, spec);
                const QString where = QString("%1 layer %2 %3").arg(format).arg(l).arg(linearModuleName(mod));
                std::vector<double> last;
                double loraError = 0;
                for (int t = 1; t <= 5; ++t) {
                    const auto r = finetune::loftqDecompose(*dense, q, spec, 8, t, scale);
                    QCOMPARE(r.errors.size(), size_t(t));
                    // The first t - 1 iterations are those of the shorter run.
                    for (size_t i = 0; i < last.size(); ++i)
                        QCOMPARE(r.errors[i], last[i]);
                    last = r.errors;
                    loraError = r.loraInitError;
                    QVERIFY2(r.errors[0] < r.loraInitError,
                             qPrintable(where + QString(": LoftQ %1 vs LoRA %2").arg(r.errors[0]).arg(r.loraInitError)));
                    if (t > 1 && !(r.errors[size_t(t - 1)] <= r.errors[size_t(t - 2)] * (1 + 1e-6)))
                        rising << where + QString(": T=%1 %2 > T=%3 %4")
                                              .arg(t)
                                              .arg(r.errors[size_t(t - 1)], 0, 'g', 6)
                                              .arg(t - 1)
                                              .arg(r.errors[size_t(t - 2)], 0, 'g', 6);
                    // errors is the running best of the iterates, and what is returned really has that error
                    // (also where an iterate rose and an earlier one is kept).
                    QCOMPARE(r.iterateErrors.size(), size_t(t));
                    QCOMPARE(r.errors.back(), *std::min_element(r.iterateErrors.begin(), r.iterateErrors.end()));
                    const double claimed = claimedError(*dense, r, scale);
                    QVERIFY2(std::abs(claimed - r.errors.back()) < 1e-5,
                             qPrintable(where + QString(" T=%1: measured %2, reported %3").arg(t).arg(claimed)
                                                    .arg(r.errors.back())));
                    if (t == 5)
                        for (size_t i = 1; i < r.iterateErrors.size(); ++i)
                            if (r.iterateErrors[i] > r.iterateErrors[i - 1])
                                iterateRises << where + QString(" T=%1").arg(i + 1);
                }
                if (l == 0 && mod == LinearModule::Gate) {
                    QString row = QString("%1 layer 0 gate: lora %2 | loftq T=1..5").arg(format, -6).arg(loraError, 0, 'f', 5);
                    for (const double e : last)
                        row += QString(" %1").arg(e, 0, 'f', 5);
                    qInfo().noquote() << row;
                }
            }
        QVERIFY2(rising.isEmpty(), qPrintable("LoftQ error rose with T: " + rising.join("; ")));
        // For the 4-bit and 16-bit formats every iterate improves on the last on these layers (int8/int3/int2 have
        // iterates that do not, which the best-iterate rule absorbs).
        if (format == "nf4" || format == "nf4-dq" || format == "int4" || format == "bf16" || format == "fp16")
            QVERIFY2(iterateRises.isEmpty(), qPrintable("iterate rose: " + iterateRises.join("; ")));
        else if (!iterateRises.isEmpty())
            qInfo().noquote() << format << "iterates that rose (best kept):" << iterateRises.join("; ");
    }

    void layerReproducesItsErrors_data()
    {
        QTest::addColumn<QString>("format");
        for (const char* f : {"nf4", "int4", "int2", "int8", "bf16"})
            QTest::newRow(f) << QString(f);
    }
    void layerReproducesItsErrors()
    {
        QFETCH(QString, format);
        const QuantSpec spec = parseQuantSpec(format.toStdString());
        // A biased layer, as q/k/v with attention_bias; 72 columns so the int formats have a short last group.
        const auto dense = std::make_shared<model::DenseLinear>(normalTensor({48, 72}, 1, 0.05), normalTensor({48}, 2, 0.1));
        const auto q = quant::convertLinear(*dense, spec);
        for (const int t : {1, 3}) {
            const double scale = 32.0 / 4;
            const auto r = finetune::loftqDecompose(*dense, q, spec, 4, t, scale);
            QCOMPARE(r.a.sizes(), at::IntArrayRef({4, 72}));
            QCOMPARE(r.b.sizes(), at::IntArrayRef({48, 4}));
            QCOMPARE(r.a.scalar_type(), at::kFloat);
            QCOMPARE(r.b.scalar_type(), at::kFloat);
            QVERIFY(!r.a.requires_grad() && !r.b.requires_grad());
            const double claimed = claimedError(*dense, r, scale);
            QVERIFY2(std::abs(claimed - r.errors.back()) < 1e-5,
                     qPrintable(QString("T=%1: measured %2, reported %3").arg(t).arg(claimed).arg(r.errors.back())));
            QCOMPARE(r.weightNormSq, std::pow(dense->weight().to(at::kDouble).norm().item<double>(), 2));
            QVERIFY(std::abs(r.loraInitError - relNorm(dense->weight() - q->denseWeight().to(at::kFloat),
                                                       dense->weight())) < 1e-6);
            // The format and the bias follow the map's conversion.
            QCOMPARE(quant::heldSpec(*r.base), spec);
            QVERIFY(r.base->bias().has_value());
            QVERIFY(at::equal(*r.base->bias(), *q->bias()));
            if (t == 1) {
                if (spec.isQuantized())
                    QVERIFY(sameParts(*r.base, *quant::convertLinear(*dense, spec)));
                else
                    QVERIFY(at::equal(r.base->denseWeight(), q->denseWeight()));
            } else if (spec.isQuantized()) {
                QVERIFY(!sameParts(*r.base, *q)); // Q_3 quantizes W - L R, not W
            }
        }
    }

    void rankClampZeroErrorsAndBadArguments()
    {
        // Rank above min(out, in) = 16: clamped, and the residual is then approximated exactly.
        const auto dense = std::make_shared<model::DenseLinear>(normalTensor({16, 40}, 3, 0.05));
        const QuantSpec nf4 = parseQuantSpec("nf4");
        const auto q = quant::convertLinear(*dense, nf4);
        const auto r = finetune::loftqDecompose(*dense, q, nf4, 64, 2, 0.25);
        QCOMPARE(r.a.sizes(), at::IntArrayRef({16, 40}));
        QCOMPARE(r.b.sizes(), at::IntArrayRef({16, 16}));
        QVERIFY2(r.errors[0] < 1e-5, qPrintable(QString::number(r.errors[0])));
        QVERIFY(r.loraInitError > 0.01);

        // fp32: q is the identity, nothing to approximate.
        const QuantSpec fp32 = parseQuantSpec("fp32");
        const auto f = finetune::loftqDecompose(*dense, quant::convertLinear(*dense, fp32), fp32, 4, 3, 2.0);
        QCOMPARE(f.loraInitError, 0.0);
        QCOMPARE(f.errors, std::vector<double>({0.0, 0.0, 0.0}));
        QCOMPARE(f.a.abs().max().item<double>(), 0.0);
        QCOMPARE(f.b.abs().max().item<double>(), 0.0);
        QVERIFY(at::equal(f.base->denseWeight(), dense->weight()));

        // A zero weight: errors 0 (no division by ||W|| = 0).
        const auto zero = std::make_shared<model::DenseLinear>(at::zeros({8, 64}));
        const auto z = finetune::loftqDecompose(*zero, quant::convertLinear(*zero, nf4), nf4, 4, 2, 2.0);
        QCOMPARE(z.weightNormSq, 0.0);
        QCOMPARE(z.loraInitError, 0.0);
        QCOMPARE(z.errors, std::vector<double>({0.0, 0.0}));

        VERIFY_THROWS(ConfigError, finetune::loftqDecompose(*dense, q, nf4, 0, 1, 2.0), "rank", "0");
        VERIFY_THROWS(ConfigError, finetune::loftqDecompose(*dense, q, nf4, 4, 0, 2.0), "iterations", "0");
        VERIFY_THROWS(ConfigError, finetune::loftqDecompose(*dense, q, nf4, 4, 1, 0.0), "scale");
        const auto other = std::make_shared<model::DenseLinear>(normalTensor({40, 16}, 4, 0.05));
        VERIFY_THROWS(ConfigError, finetune::loftqDecompose(*other, q, nf4, 4, 1, 2.0), "[40, 16]", "[16, 40]");
        VERIFY_THROWS(ConfigError, finetune::loftqDecompose(*dense, q, parseQuantSpec("int4"), 4, 1, 2.0), "nf4",
                      "int4");
        VERIFY_THROWS(ConfigError, finetune::loftqDecompose(*dense, nullptr, nf4, 4, 1, 2.0), "quantized");

        // LoraLinear::setBase (how the init swaps in Q_T) refuses another shape.
        LoraLinear wrapped(q, LoraLinear::Options{});
        wrapped.setBase(r.base);
        QCOMPARE(wrapped.base().get(), r.base.get());
        VERIFY_THROWS(ConfigError, wrapped.setBase(quant::convertLinear(*other, nf4)), "[40, 16]", "[16, 40]");
        VERIFY_THROWS(ConfigError, wrapped.setBase(nullptr), "no base");
        QCOMPARE(wrapped.base().get(), r.base.get());
    }

    void parsesInitNames()
    {
        QCOMPARE(finetune::parseLoraInit("lora"), finetune::LoraInit::Lora);
        QCOMPARE(finetune::parseLoraInit("loftq"), finetune::LoraInit::Loftq);
        QCOMPARE(finetune::loraInitName(finetune::LoraInit::Lora), std::string("lora"));
        QCOMPARE(finetune::loraInitName(finetune::LoraInit::Loftq), std::string("loftq"));
        VERIFY_THROWS(ConfigError, finetune::parseLoraInit("lofq"), "lofq", "lora", "loftq");
    }

    void modelInitLoftqBeatsLora()
    {
        const ModelConfig cfg = storiesShapedConfig(2, /*tied=*/false, /*bias=*/true);
        auto m = model::makeRandomModel(cfg, at::kFloat, 11);
        const auto tokens = randomTokens(2, 24, cfg.vocabSize, 12);
        const at::Tensor denseLogits = logitsOf(*m, tokens);
        const finetune::LayerLinears dense = finetune::captureLinears(*m);
        QCOMPARE(dense.size(), size_t(2));
        PrecisionMap map(parseQuantSpec("int3"));
        map.setEmbedding(parseQuantSpec("fp32")); // compute in fp32, so comparisons are exact
        quant::quantizeModel(*m, map);
        const at::Tensor quantLogits = logitsOf(*m, tokens);

        FinetuneSettings s;
        s.rank = 8;
        s.targets = {"q", "v_proj", "gate", "down"};
        finetune::LoraOptions lo;
        lo.alpha = 16;
        lo.seed = 3;
        finetune::InitOptions init;
        init.loftqIterations = 3;

        // Bad inputs first: nothing changes.
        finetune::LayerLinears shortDense(dense.begin(), dense.begin() + 1);
        VERIFY_THROWS(ConfigError, finetune::attachLoraWithInit(*m, shortDense, s, lo, init), "1 layers", "2");
        QVERIFY(loraLayers(*m).empty());
        finetune::LayerLinears swapped = dense;
        std::swap(swapped[1][size_t(LinearModule::Gate)], swapped[1][size_t(LinearModule::Down)]);
        VERIFY_THROWS(ConfigError, finetune::attachLoraWithInit(*m, swapped, s, lo, init), "layer 1 gate");
        QVERIFY(loraLayers(*m).empty());
        finetune::InitOptions zeroIter = init;
        zeroIter.loftqIterations = 0;
        VERIFY_THROWS(ConfigError, finetune::attachLoraWithInit(*m, dense, s, lo, zeroIter), "iterations");
        QVERIFY(loraLayers(*m).empty());
        FinetuneSettings badTarget = s;
        badTarget.targets = {"q", "gaet"};
        VERIFY_THROWS(ConfigError, finetune::attachLoraWithInit(*m, dense, badTarget, lo, init), "gaet");
        QVERIFY(loraLayers(*m).empty());
        QVERIFY(at::equal(logitsOf(*m, tokens), quantLogits));
        // A cancel (SIGINT/SIGTERM in the CLI) after the second linear: progress was reported per linear, the
        // adapters are gone again.
        CancelToken cancel;
        std::vector<int64_t> seen;
        const ProgressSink stopAfterTwo = [&](const Progress& p) {
            QCOMPARE(p.stage, std::string("lora-init"));
            QCOMPARE(p.total, int64_t(2 * 4));
            seen.push_back(p.done);
            if (p.done == 2)
                cancel.cancel();
        };
        VERIFY_THROWS(CancelledError, finetune::attachLoraWithInit(*m, dense, s, lo, init, stopAfterTwo, &cancel));
        QCOMPARE(seen, (std::vector<int64_t>{1, 2}));
        QVERIFY(loraLayers(*m).empty());

        // Plain LoRA (with the LoftQ errors in the report): B = 0, the quantized model's forward exactly.
        finetune::InitOptions loraInit = init;
        loraInit.init = finetune::LoraInit::Lora;
        const auto pl = finetune::attachLoraWithInit(*m, dense, s, lo, loraInit);
        const at::Tensor loraLogits = logitsOf(*m, tokens);
        QVERIFY(at::equal(loraLogits, quantLogits));
        std::vector<at::Tensor> loraA;
        for (auto* l : loraLayers(*m)) {
            QCOMPARE(l->loraB().abs().max().item<double>(), 0.0);
            loraA.push_back(l->loraA().detach().clone());
        }
        QCOMPARE(pl.report.init, finetune::LoraInit::Lora);
        QCOMPARE(pl.report.loftqIterations, 3);
        QCOMPARE(finetune::detachLora(*m), 8);

        // Without reportBoth the lora report has no LoftQ errors.
        loraInit.reportBoth = false;
        const auto plain = finetune::attachLoraWithInit(*m, dense, s, lo, loraInit);
        QCOMPARE(plain.report.loftqIterations, 0);
        QCOMPARE(plain.report.entries.size(), size_t(8));
        for (size_t i = 0; i < plain.report.entries.size(); ++i) {
            QVERIFY(plain.report.entries[i].loftqErrors.empty());
            QCOMPARE(plain.report.entries[i].loraInitError, pl.report.entries[i].loraInitError);
        }
        QVERIFY(plain.report.toJson()["model"]["loftq_errors"].empty());
        QCOMPARE(finetune::detachLora(*m), 8);

        // LoftQ.
        const auto pq = finetune::attachLoraWithInit(*m, dense, s, lo, init);
        const at::Tensor loftqLogits = logitsOf(*m, tokens);
        const double loraMse = mse(loraLogits, denseLogits), loftqMse = mse(loftqLogits, denseLogits);
        qInfo() << "logit MSE to the dense model: lora" << loraMse << "loftq" << loftqMse;
        QVERIFY2(loftqMse < loraMse, qPrintable(QString("loftq %1, lora %2").arg(loftqMse).arg(loraMse)));

        // The parameters are the adapters' own tensors, trainable, and hold LoftQ's A and B.
        const auto layers = loraLayers(*m);
        QCOMPARE(layers.size(), size_t(2 * 4));
        QCOMPARE(pq.params.size(), 2 * layers.size());
        for (size_t i = 0; i < layers.size(); ++i) {
            QVERIFY(pq.params[2 * i].is_same(layers[i]->loraA()));
            QVERIFY(pq.params[2 * i + 1].is_same(layers[i]->loraB()));
            QCOMPARE(pq.params[2 * i].data_ptr(), layers[i]->loraA().data_ptr());
            QCOMPARE(pq.params[2 * i + 1].data_ptr(), layers[i]->loraB().data_ptr());
            QVERIFY(pq.params[2 * i].requires_grad() && pq.params[2 * i + 1].requires_grad());
            QVERIFY(pq.params[2 * i].is_leaf() && pq.params[2 * i + 1].is_leaf());
            QVERIFY(layers[i]->loraB().abs().max().item<double>() > 0);
            QVERIFY(!at::equal(layers[i]->loraA(), loraA[i]));
            // The merged layer is where the report says it starts.
            const auto& e = pq.report.entries[i];
            const at::Tensor w = dense[size_t(e.layer)][size_t(e.module)]->denseWeight();
            const double measured = relNorm(w - layers[i]->denseWeight(), w);
            QVERIFY2(std::abs(measured - e.loftqErrors.back()) < 1e-5,
                     qPrintable(QString("%1: %2 vs %3").arg(i).arg(measured).arg(e.loftqErrors.back())));
            QCOMPARE(layers[i]->base()->formatName(), std::string("int3"));
        }

        // The report: layers x targets entries in layer, module order, both initialisations, aggregates by hand.
        const auto& r = pq.report;
        QCOMPARE(r.init, finetune::LoraInit::Loftq);
        QCOMPARE(r.loftqIterations, 3);
        QCOMPARE(r.entries.size(), size_t(2 * 4));
        const LinearModule order[] = {LinearModule::Q, LinearModule::V, LinearModule::Gate, LinearModule::Down};
        for (size_t i = 0; i < r.entries.size(); ++i) {
            const auto& e = r.entries[i];
            QCOMPARE(e.layer, int(i / 4));
            QCOMPARE(e.module, order[i % 4]);
            QCOMPARE(e.format, std::string("int3"));
            QCOMPARE(e.loftqErrors.size(), size_t(3));
            QVERIFY(e.loftqErrors[0] < e.loraInitError);
            QVERIFY(e.weightNormSq > 0);
            // Same numbers as the lora init's report computed.
            QCOMPARE(e.loraInitError, pl.report.entries[i].loraInitError);
            QCOMPARE(e.loftqErrors, pl.report.entries[i].loftqErrors);
        }
        QCOMPARE(r.layerLoraInitError.size(), size_t(2));
        QCOMPARE(r.layerLoftqErrors.size(), size_t(2));
        for (int l = 0; l < 2; ++l) {
            QVERIFY(std::abs(r.layerLoraInitError[size_t(l)] - handAggregate(r, l, -1)) < 1e-12);
            QCOMPARE(r.layerLoftqErrors[size_t(l)].size(), size_t(3));
            for (int t = 0; t < 3; ++t)
                QVERIFY(std::abs(r.layerLoftqErrors[size_t(l)][size_t(t)] - handAggregate(r, l, t)) < 1e-12);
        }

        // JSON form.
        const auto j = r.toJson();
        QCOMPARE(j["init"].get<std::string>(), std::string("loftq"));
        QCOMPARE(j["loftq_iterations"].get<int>(), 3);
        QCOMPARE(j["layers"].size(), size_t(2));
        const auto& j1 = j["layers"][1];
        QCOMPARE(j1["layer"].get<int>(), 1);
        QCOMPARE(j1["lora_init_error"].get<double>(), r.layerLoraInitError[1]);
        QCOMPARE(j1["loftq_errors"].get<std::vector<double>>(), r.layerLoftqErrors[1]);
        std::vector<std::string> keys;
        for (const auto& [k, v] : j1["modules"].items())
            keys.push_back(k);
        QCOMPARE(keys, std::vector<std::string>({"q", "v", "gate", "down"}));
        QCOMPARE(j1["modules"]["gate"]["format"].get<std::string>(), std::string("int3"));
        QCOMPARE(j1["modules"]["gate"]["lora_init_error"].get<double>(), r.entries[6].loraInitError);
        QCOMPARE(j1["modules"]["gate"]["loftq_errors"].get<std::vector<double>>(), r.entries[6].loftqErrors);
        double num = 0, den = 0;
        for (const auto& e : r.entries) {
            num += e.loftqErrors[2] * e.loftqErrors[2] * e.weightNormSq;
            den += e.weightNormSq;
        }
        QVERIFY(std::abs(j["model"]["loftq_errors"][2].get<double>() - std::sqrt(num / den)) < 1e-12);
        QCOMPARE(j["model"]["loftq_errors"].size(), size_t(3));
        QVERIFY(j["model"]["lora_init_error"].get<double>() > j["model"]["loftq_errors"][0].get<double>());

        // Training starts from there: one backward reaches every A and B.
        const at::Tensor loss = m->forward(tokens).square().mean();
        loss.backward();
        for (const auto& p : pq.params)
            QVERIFY(p.grad().defined() && p.grad().abs().max().item<double>() > 0);

        // A model that already has adapters is refused by attachLora, unchanged.
        VERIFY_THROWS(ConfigError, finetune::attachLoraWithInit(*m, dense, s, lo, init), "already");
        QCOMPARE(finetune::detachLora(*m), 8);
    }

    void mixedMapUsesEachLayersFormat()
    {
        const ModelConfig cfg = storiesShapedConfig(3);
        auto m = model::makeRandomModel(cfg, at::kFloat, 21);
        const finetune::LayerLinears dense = finetune::captureLinears(*m);
        PrecisionMap map(parseQuantSpec("nf4"));
        map.setLayer(0, parseQuantSpec("int4"));
        map.setLayerModule(1, LinearModule::Q, parseQuantSpec("int8"));
        map.setLayerModule(1, LinearModule::Down, parseQuantSpec("int2-g128"));
        map.setLayer(2, parseQuantSpec("bf16"));
        map.setLayerModule(2, LinearModule::K, parseQuantSpec("fp32"));
        map.setEmbedding(parseQuantSpec("fp32"));
        quant::quantizeModel(*m, map);
        const ResolvedPrecision resolved = map.resolve(cfg);

        FinetuneSettings s;
        s.rank = 4;
        finetune::LoraOptions lo;
        lo.seed = 9;
        finetune::InitOptions init;
        init.loftqIterations = 2;
        init.init = finetune::LoraInit::Lora;
        finetune::attachLoraWithInit(*m, dense, s, lo, init);
        std::vector<at::Tensor> loraA;
        for (auto* l : loraLayers(*m))
            loraA.push_back(l->loraA().detach().clone());
        finetune::detachLora(*m);

        init.init = finetune::LoraInit::Loftq;
        const auto p = finetune::attachLoraWithInit(*m, dense, s, lo, init);
        QCOMPARE(p.report.entries.size(), size_t(3 * 7));
        const auto layers = loraLayers(*m);
        for (size_t i = 0; i < p.report.entries.size(); ++i) {
            const auto& e = p.report.entries[i];
            const QuantSpec spec = resolved.layers[size_t(e.layer)][size_t(e.module)];
            const QString where = QString("layer %1 %2").arg(e.layer).arg(linearModuleName(e.module));
            QVERIFY2(e.format == spec.name(), qPrintable(where + ": " + QString::fromStdString(e.format)));
            QVERIFY2(quant::heldSpec(*layers[i]->base()) == spec, qPrintable(where));
            if (spec.isQuantized())
                QCOMPARE(layers[i]->base()->formatName(), spec.name());
            if (spec.kind == QuantKind::F32) {
                // Nothing to approximate: the base is W and the adapter stays trainable (A keeps its random
                // init, B = 0) instead of A = B = 0, which would never get a gradient.
                QCOMPARE(e.loraInitError, 0.0);
                QCOMPARE(e.loftqErrors, std::vector<double>({0.0, 0.0}));
                QCOMPARE(layers[i]->loraB().abs().max().item<double>(), 0.0);
                QVERIFY(at::equal(layers[i]->loraA(), loraA[i]));
            } else {
                QVERIFY2(e.loftqErrors[0] < e.loraInitError, qPrintable(where));
                QVERIFY(layers[i]->loraB().abs().max().item<double>() > 0);
            }
        }
        QCOMPARE(p.report.toJson()["layers"][1]["modules"]["down"]["format"].get<std::string>(),
                 std::string("int2-g128"));
    }
};

QTEST_GUILESS_MAIN(TestLoftq)
#include "test_loftq.moc"

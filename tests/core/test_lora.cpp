// LoRA fine-tuning: a zero B leaves the model bit-identical, the adapter output and the merged weight equal an
// explicit computation, gradients reach only A and B, the re-dequantizing backward of the frozen base equals
// plain autograd (dense and NF4 bases, one block and several), AdamW equals a hand computation, training lowers
// the loss, micro-batching equals one pass, detaching restores the layers, bad settings are refused, and the
// memory measurement returns sane numbers.
#include <QtTest/QtTest>

#include <cmath>

#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>
#include <c10/core/InferenceMode.h>

#include "finetune/lora.h"
#include "finetune/train_step.h"
#include "model/dtype.h"
#include "model/random_model.h"
#include "model_fixtures.h"
#include "qpruner/error.h"
#include "qpruner/precision_map.h"
#include "quant/quant_linear.h"

using namespace qpruner;
using namespace qpruner::testing;
using finetune::LoraLinear;

namespace {

std::vector<model::LinearPtr*> linearsOf(model::DecoderLayer& l)
{
    return {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down};
}

// Every adapter's B set to random values, so A gets gradients and the adapters change the output.
void randomizeB(model::LlamaModel& m, uint64_t seed)
{
    c10::NoGradGuard noGrad;
    for (auto& l : m.layers)
        for (auto* p : linearsOf(l))
            if (auto* lora = dynamic_cast<LoraLinear*>(p->get()))
                lora->loraB().copy_(normalTensor(lora->loraB().sizes().vec(), seed++, 0.05));
}

std::vector<at::Tensor> gradsOf(const std::vector<at::Tensor>& params)
{
    std::vector<at::Tensor> g;
    for (const auto& p : params)
        g.push_back(p.grad().defined() ? p.grad().clone() : at::Tensor());
    return g;
}

double maxGradDiff(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b)
{
    double d = 0;
    for (size_t i = 0; i < a.size(); ++i)
        d = std::max(d, maxAbsDiff(a[i], b[i]));
    return d;
}

// A [out, in] DenseLinear with bias, its NF4 QuantLinear in one block, and the same in blocks of 32 rows.
model::LinearPtr makeBase(const QString& kind, int64_t out, int64_t in, uint64_t seed)
{
    auto dense = std::make_shared<model::DenseLinear>(normalTensor({out, in}, seed, 0.05), normalTensor({out}, seed + 1, 0.1));
    if (kind == "dense")
        return dense;
    const QuantSpec nf4 = parseQuantSpec("nf4");
    if (kind == "nf4")
        return quant::quantizeLinear(*dense, nf4);
    return std::make_shared<quant::QuantLinear>(quant::quantize(dense->weight(), nf4), dense->bias(),
                                                /*chunkBytes=*/32 * in * 4);
}

template <typename F>
void expectConfigError(F&& f, const std::string& fragment)
{
    try {
        f();
        QFAIL(("no error, expected one mentioning: " + fragment).c_str());
    } catch (const ConfigError& e) {
        QVERIFY2(std::string(e.what()).find(fragment) != std::string::npos, e.what());
    }
}

} // namespace

class TestLora : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase() { model::setIntraOpThreads(0); }

    void zeroBLeavesLogitsIdentical()
    {
        auto m = model::makeRandomModel(tinyGqaConfig(), at::kFloat, 1);
        const auto tokens = randomTokens(2, 12, 50, 2);
        at::Tensor before;
        {
            c10::InferenceMode guard;
            before = m->forward(tokens);
        }
        const auto params = finetune::attachLora(*m, FinetuneSettings{});
        QCOMPARE(params.size(), size_t(3 * 7 * 2));
        {
            c10::InferenceMode guard;
            QVERIFY(at::equal(before, m->forward(tokens)));
        }
        // A training forward (the re-dequantizing base path, grad on) gives the same values too, up to the
        // rounding of libtorch's matmuls and softmax against the inference kernels (packed GEMM, fused attention).
        const auto trained = m->forward(tokens);
        QVERIFY(trained.requires_grad());
        const double diff = (before - trained.detach()).abs().max().item<double>();
        QVERIFY2(diff <= 1e-5 * before.abs().max().item<double>(), qPrintable(QString::number(diff)));
    }

    void outputEqualsExplicitComputation_data()
    {
        QTest::addColumn<QString>("kind");
        QTest::newRow("dense") << "dense";
        QTest::newRow("nf4") << "nf4";
    }
    void outputEqualsExplicitComputation()
    {
        QFETCH(QString, kind);
        const auto base = makeBase(kind, 40, 64, 3);
        LoraLinear::Options o;
        o.rank = 4;
        o.alpha = 12.0;
        o.seed = 5;
        LoraLinear lora(base, o);
        QCOMPARE(lora.scale(), 3.0);
        // kaiming_uniform(a = sqrt(5)): |A| <= 1/sqrt(in) and spread over that range; B starts at zero.
        QVERIFY(lora.loraA().abs().max().item<double>() <= 1.0 / 8.0);
        QVERIFY(lora.loraA().abs().max().item<double>() > 0.1);
        QCOMPARE(lora.loraB().abs().sum().item<double>(), 0.0);
        {
            c10::NoGradGuard noGrad;
            lora.loraB().copy_(normalTensor({40, 4}, 7, 0.1));
        }
        const auto x = normalTensor({2, 5, 64}, 8);
        at::Tensor expected;
        {
            c10::NoGradGuard noGrad;
            expected = base->forward(x) + 3.0 * at::matmul(at::matmul(x, lora.loraA().t()), lora.loraB().t());
        }
        const auto y = lora.forward(x);
        QVERIFY2(maxAbsDiff(y, expected) < 1e-5, qPrintable(QString::number(maxAbsDiff(y, expected))));
        // The merged weight reproduces the layer.
        const auto merged = at::linear(x, lora.denseWeight(), *base->bias());
        QVERIFY2(maxAbsDiff(merged, expected) < 1e-5, qPrintable(QString::number(maxAbsDiff(merged, expected))));
        QCOMPARE(lora.storageBytes(), base->storageBytes() + (4 * 64 + 40 * 4) * 4);
        QCOMPARE(QString::fromStdString(lora.formatName()), (kind == "dense" ? "float32" : "nf4") + QString("+lora4"));
        // bf16 activations: the adapter runs in bf16, the output stays bf16, A's gradient is fp32.
        const auto xb = x.to(at::kBFloat16);
        const auto yb = lora.forward(xb);
        QCOMPARE(yb.scalar_type(), at::kBFloat16);
        QVERIFY(maxAbsDiff(yb, expected) < 0.05);
        yb.to(at::kFloat).sum().backward();
        QCOMPARE(lora.loraA().grad().scalar_type(), at::kFloat);
    }

    void gradientsReachOnlyAdapters_data()
    {
        QTest::addColumn<bool>("bf16");
        QTest::newRow("float32") << false;
        QTest::newRow("bfloat16") << true;
    }
    void gradientsReachOnlyAdapters()
    {
        QFETCH(bool, bf16);
        auto m = model::makeRandomModel(tinyGqaConfig(), bf16 ? at::kBFloat16 : at::kFloat, 11);
        FinetuneSettings s;
        s.targets = {"q_proj", "v", "down"};
        const auto params = finetune::attachLora(*m, s);
        QCOMPARE(params.size(), size_t(3 * 3 * 2));
        randomizeB(*m, 12);
        finetune::causalLmLoss(*m, randomTokens(2, 10, 50, 13)).backward();
        for (const auto& p : params) {
            QVERIFY(p.grad().defined());
            QCOMPARE(p.grad().scalar_type(), at::kFloat);
            QVERIFY(p.grad().abs().sum().item<double>() > 0);
        }
        QVERIFY(!m->embedding.requires_grad() && !m->embedding.grad().defined());
        for (auto& l : m->layers) {
            QVERIFY(dynamic_cast<LoraLinear*>(l.q.get()) && dynamic_cast<LoraLinear*>(l.down.get()));
            QVERIFY(!dynamic_cast<LoraLinear*>(l.k.get()) && !dynamic_cast<LoraLinear*>(l.gate.get()));
            for (auto* p : linearsOf(l)) {
                const auto* lora = dynamic_cast<LoraLinear*>(p->get());
                auto& dense = dynamic_cast<model::DenseLinear&>(lora ? *lora->base() : **p);
                QVERIFY(!dense.weight().requires_grad() && !dense.weight().grad().defined());
                QVERIFY(!dense.mutableBias() || !dense.mutableBias()->grad().defined());
            }
        }
    }

    void recomputedBaseGradientEqualsAutograd_data()
    {
        QTest::addColumn<QString>("kind");
        QTest::newRow("dense") << "dense";
        QTest::newRow("nf4 one block") << "nf4";
        QTest::newRow("nf4 four blocks") << "nf4-blocks";
    }
    void recomputedBaseGradientEqualsAutograd()
    {
        QFETCH(QString, kind);
        const auto base = makeBase(kind, 128, 96, 21);
        if (kind == "nf4-blocks")
            QCOMPARE(dynamic_cast<quant::QuantLinear&>(*base).chunkRows(at::kFloat), int64_t(32));
        const auto gy = normalTensor({3, 7, 128}, 22);
        // Directly: dL/dy W with W the dense (dequantized) weight.
        const auto direct = finetune::linearInputGradient(*base, gy);
        const auto reference = at::matmul(gy, base->denseWeight());
        QVERIFY2(maxAbsDiff(direct, reference) < 1e-5, qPrintable(QString::number(maxAbsDiff(direct, reference))));

        // Through a LoRA layer: custom backward versus plain autograd, for x, A and B.
        auto run = [&](bool recompute) {
            LoraLinear::Options o;
            o.rank = 3;
            o.seed = 23;
            o.recomputeBaseGradient = recompute;
            LoraLinear lora(base, o);
            {
                c10::NoGradGuard noGrad;
                lora.loraB().copy_(normalTensor({128, 3}, 24, 0.1));
            }
            const auto x = normalTensor({3, 7, 96}, 25).requires_grad_(true);
            (lora.forward(x) * gy).sum().backward();
            return std::vector<at::Tensor>{x.grad(), lora.loraA().grad(), lora.loraB().grad()};
        };
        const auto custom = run(true), plain = run(false);
        for (size_t i = 0; i < 3; ++i)
            QVERIFY2(maxAbsDiff(custom[i], plain[i]) < 1e-5,
                     qPrintable(QString("tensor %1: %2").arg(i).arg(maxAbsDiff(custom[i], plain[i]))));
    }

    void recomputedBaseGradientEqualsAutogradInQuantizedModel()
    {
        auto m = model::makeRandomModel(tinyGqaConfig(), at::kFloat, 31);
        const QuantSpec nf4 = parseQuantSpec("nf4");
        for (auto& l : m->layers)
            for (auto* p : linearsOf(l))
                *p = quant::quantizeLinear(**p, nf4);
        const auto tokens = randomTokens(2, 12, 50, 32);
        auto grads = [&](bool recompute) {
            finetune::LoraOptions o;
            o.recomputeBaseGradient = recompute;
            const auto params = finetune::attachLora(*m, FinetuneSettings{}, o);
            randomizeB(*m, 33);
            finetune::causalLmLoss(*m, tokens).backward();
            const auto g = gradsOf(params);
            finetune::detachLora(*m);
            return g;
        };
        const auto custom = grads(true), plain = grads(false);
        QVERIFY2(maxGradDiff(custom, plain) < 1e-5, qPrintable(QString::number(maxGradDiff(custom, plain))));
    }

    void adamWEqualsHandComputation()
    {
        const double lr = 0.1, wd = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8;
        auto p = at::tensor({1.0f, -2.0f, 3.0f, 0.5f}).view({2, 2}).requires_grad_(true);
        finetune::AdamW opt({p}, {lr, b1, b2, eps, wd});
        const double g1[4] = {0.1, -0.2, 0.3, 0.0}, g2[4] = {-0.05, 0.4, 0.3, 0.2};
        double w[4] = {1.0, -2.0, 3.0, 0.5}, m[4] = {}, v[4] = {};
        for (int t = 1; t <= 2; ++t) {
            const double* g = t == 1 ? g1 : g2;
            p.mutable_grad() = at::tensor({float(g[0]), float(g[1]), float(g[2]), float(g[3])}).view({2, 2});
            opt.step();
            for (int i = 0; i < 4; ++i) {
                const double gi = double(float(g[i]));
                w[i] *= 1 - lr * wd;
                m[i] = b1 * m[i] + (1 - b1) * gi;
                v[i] = b2 * v[i] + (1 - b2) * gi * gi;
                const double mh = m[i] / (1 - std::pow(b1, t)), vh = v[i] / (1 - std::pow(b2, t));
                w[i] -= lr * mh / (std::sqrt(vh) + eps);
            }
            const auto got = p.detach().reshape({4});
            for (int i = 0; i < 4; ++i) {
                const double value = got[i].item<double>();
                QVERIFY2(std::abs(value - w[i]) < 1e-6,
                         qPrintable(QString("step %1 element %2: %3 vs %4").arg(t).arg(i).arg(value).arg(w[i])));
            }
        }
        opt.zeroGrad();
        QVERIFY(!p.grad().defined());
        expectConfigError([] { finetune::AdamW({at::zeros({2})}, {-1.0}); }, "learning rate");
        expectConfigError([] { finetune::AdamW({at::zeros({2}, at::kLong)}); }, "parameter 0");
    }

    void trainingLowersLoss()
    {
        auto m = model::makeRandomModel(tinyGqaConfig(), at::kFloat, 41);
        FinetuneSettings s;
        s.rank = 4;
        finetune::AdamW opt(finetune::attachLora(*m, s), {1e-2});
        const auto tokens = randomTokens(4, 16, 50, 42);
        double previous = 1e30;
        for (int i = 0; i < 6; ++i) {
            const auto r = finetune::trainStep(*m, opt, tokens, 2);
            QVERIFY2(r.loss < previous, qPrintable(QString("step %1: %2 after %3").arg(i).arg(r.loss).arg(previous)));
            QVERIFY(r.seconds > 0);
            previous = r.loss;
        }
        c10::InferenceMode guard;
        QVERIFY(finetune::causalLmLoss(*m, tokens).item<double>() < previous);
    }

    void microBatchingEqualsOnePass_data()
    {
        QTest::addColumn<bool>("masked");
        QTest::newRow("no mask") << false;
        QTest::newRow("prompt mask") << true;
    }
    void microBatchingEqualsOnePass()
    {
        QFETCH(bool, masked);
        auto m = model::makeRandomModel(tinyGqaConfig(), at::kFloat, 51);
        FinetuneSettings s;
        s.dropout = 0.0;
        finetune::AdamW opt(finetune::attachLora(*m, s), {0.0}); // lr 0: the step keeps the weights
        randomizeB(*m, 52);
        const auto tokens = randomTokens(4, 14, 50, 53);
        std::optional<at::Tensor> mask;
        if (masked) { // prompts of different lengths: the sequences hold 11, 7, 13 and 3 targets
            mask = at::ones({4, 14}, at::kBool);
            const int64_t prompt[4] = {3, 7, 1, 11};
            for (int64_t b = 0; b < 4; ++b)
                mask->select(0, b).narrow(0, 0, prompt[b]).fill_(false);
        }
        const auto whole = finetune::trainStep(*m, opt, tokens, 4, mask);
        const auto g4 = gradsOf(opt.params());
        for (int64_t micro : {2, 3, 1}) {
            const auto r = finetune::trainStep(*m, opt, tokens, micro, mask);
            const double d = maxGradDiff(g4, gradsOf(opt.params()));
            QVERIFY2(d < 1e-6, qPrintable(QString("micro-batch %1: %2").arg(micro).arg(d)));
            QVERIFY(std::abs(r.loss - whole.loss) < 1e-6);
        }
        // The loss is the mean over the kept targets.
        c10::InferenceMode guard;
        QVERIFY(std::abs(finetune::causalLmLoss(*m, tokens, mask).item<double>() - whole.loss) < 1e-6);
        if (masked) // a different mean than without the mask
            QVERIFY(std::abs(finetune::causalLmLoss(*m, tokens).item<double>() - whole.loss) > 1e-4);
    }

    void dropoutIsSeededAndTrainingOnly()
    {
        const auto base = makeBase("dense", 40, 64, 61);
        LoraLinear::Options o;
        o.rank = 4;
        o.dropout = 0.5;
        o.seed = 62;
        LoraLinear a(base, o), b(base, o);
        o.dropout = 0.0;
        LoraLinear plain(base, o);
        for (auto* l : {&a, &b, &plain}) {
            c10::NoGradGuard noGrad;
            l->loraB().copy_(normalTensor({40, 4}, 63, 0.1));
        }
        const auto x = normalTensor({3, 64}, 64);
        const auto ya = a.forward(x), yb = b.forward(x);
        QVERIFY(at::equal(ya, yb));                        // same seed, same masks
        QVERIFY(maxAbsDiff(ya, plain.forward(x)) > 1e-3);  // the masks change the output
        QVERIFY(maxAbsDiff(ya, a.forward(x)) > 1e-3);      // a fresh mask per call
        c10::InferenceMode guard;                          // evaluation: no dropout
        QVERIFY(at::equal(a.forward(x), plain.forward(x)));
    }

    void detachRestoresLayers()
    {
        auto m = model::makeRandomModel(tinyGqaConfig(), at::kFloat, 71);
        std::vector<model::LinearPtr> original;
        for (auto& l : m->layers)
            for (auto* p : linearsOf(l))
                original.push_back(*p);
        const auto params = finetune::attachLora(*m, FinetuneSettings{});
        randomizeB(*m, 72);
        size_t i = 0;
        for (auto& l : m->layers)
            for (auto* p : linearsOf(l)) {
                const auto* lora = dynamic_cast<LoraLinear*>(p->get());
                QVERIFY(lora && lora->base() == original[i++]);
            }
        QCOMPARE(finetune::detachLora(*m), 21);
        QCOMPARE(finetune::detachLora(*m), 0);
        i = 0;
        for (auto& l : m->layers)
            for (auto* p : linearsOf(l))
                QVERIFY(*p == original[i++]);
    }

    void badSettingsAreRefused()
    {
        auto m = model::makeRandomModel(tinyGqaConfig(), at::kFloat, 81);
        auto attach = [&](auto edit) {
            return [&m, edit] {
                FinetuneSettings s;
                edit(s);
                finetune::attachLora(*m, s);
            };
        };
        expectConfigError(attach([](FinetuneSettings& s) { s.rank = 0; }), "rank must be at least 1, got 0");
        expectConfigError(attach([](FinetuneSettings& s) { s.targets = {"q", "gaet"}; }), "did you mean 'gate'");
        expectConfigError(attach([](FinetuneSettings& s) { s.targets = {"v", "v_proj"}; }), "v is listed twice");
        expectConfigError(attach([](FinetuneSettings& s) { s.targets = {}; }), "no module");
        expectConfigError(attach([](FinetuneSettings& s) { s.dropout = 1.0; }), "dropout");
        expectConfigError(attach([](FinetuneSettings& s) { s.adapterDtype = parseQuantSpec("nf4"); }),
                          "adapter dtype must be fp32, bf16 or fp16, got nf4");
        expectConfigError([&] { finetune::attachLora(*m, FinetuneSettings{}, {0.0}); }, "alpha");
        // Nothing was attached by the failures; a second attach is refused and leaves the first in place.
        QCOMPARE(finetune::detachLora(*m), 0);
        finetune::attachLora(*m, FinetuneSettings{});
        expectConfigError([&] { finetune::attachLora(*m, FinetuneSettings{}); }, "already has LoRA layers");
        FinetuneSettings small;
        small.seqLen = 16;
        small.computeDtype = parseQuantSpec("fp32");
        expectConfigError([&] { finetune::measureFinetuneStep(*m, small, 1); }, "already has LoRA");
        QCOMPARE(finetune::detachLora(*m), 21);
        expectConfigError([&] { LoraLinear(std::make_shared<LoraLinear>(m->layers[0].q, LoraLinear::Options{}), {}); },
                          "already is a LoRA layer");

        finetune::AdamW opt({});
        const auto tokens = randomTokens(2, 8, 50, 82);
        expectConfigError([&] { finetune::trainStep(*m, opt, tokens, 0); }, "micro-batch");
        expectConfigError([&] { finetune::trainStep(*m, opt, tokens, 2); }, "no trainable tensor");
        expectConfigError([&] { finetune::causalLmLoss(*m, tokens.narrow(1, 0, 1)); }, "time >= 2");
        expectConfigError([&] { finetune::causalLmLoss(*m, tokens, at::zeros({2, 8}, at::kBool)); }, "no target");
        FinetuneSettings s = small;
        s.gradientCheckpointing = true;
        expectConfigError([&] { finetune::measureFinetuneStep(*m, s, 1); }, "checkpointing");
        s.gradientCheckpointing = false;
        s.seqLen = 33;
        expectConfigError([&] { finetune::measureFinetuneStep(*m, s, 1); }, "sequence length must be in [2, 32]");
        s = {};
        s.seqLen = 16;
        expectConfigError([&] { finetune::measureFinetuneStep(*m, s, 1); }, "compute dtype bf16");
    }

    void measurementIsSane()
    {
        auto m = model::makeRandomModel(tinyGqaConfig(), at::kFloat, 91);
        FinetuneSettings s;
        s.batchSize = 2;
        s.seqLen = 16;
        s.computeDtype = parseQuantSpec("fp32");
        s.adapterDtype = parseQuantSpec("fp32");
        finetune::AdamWOptions adam;
        adam.lr = 1e-2;
        const auto r = finetune::measureFinetuneStep(*m, s, 5, 3, {}, adam);
        QVERIFY(r.rssBeforeBytes > (int64_t(10) << 20)); // libtorch alone is larger than that
        QVERIFY(r.peakRssBytes >= r.rssBeforeBytes);
        QVERIFY(r.peakRssBytes < r.rssBeforeBytes + (int64_t(1) << 30));
        QCOMPARE(QString::fromStdString(r.peakRssSource), QString("VmHWM")); // Linux >= 4.0
        QCOMPARE(r.peakCudaBytes, int64_t(0));
        PrecisionMap map(parseQuantSpec("fp32"));
        map.setEmbedding(parseQuantSpec("fp32"));
        QCOMPARE(r.loraParams, estimateFinetune(m->config(), map, s).loraParams);
        QCOMPARE(r.steps, 3);
        QVERIFY(r.secondsPerStep > 0 && r.secondsPerStep < 10);
        QVERIFY(std::isfinite(r.lossBefore) && r.lossBefore > 0.5 * std::log(50.0));
        QVERIFY(r.lossAfter < r.lossBefore);
        const auto j = r.toJson();
        QCOMPARE(j["peak_rss_delta_bytes"].get<int64_t>(), r.peakRssBytes - r.rssBeforeBytes);
        QCOMPARE(j["lora_params"].get<int64_t>(), r.loraParams);
        // The adapters are gone again.
        QCOMPARE(finetune::detachLora(*m), 0);
    }
};

QTEST_GUILESS_MAIN(TestLora)
#include "test_lora.moc"

// Structured pruning: ratio 0 is the identity, masking equals slicing, shapes and parameter counts follow the
// closed form, GQA stays valid, Taylor scores equal an explicit |grad*weight| computation, and a pruned model
// saved and reloaded gives the same perplexity.
#include <QtTest/QtTest>

#include <QTemporaryDir>

#include <c10/core/GradMode.h>

#include "eval/perplexity.h"
#include "model/checkpoint.h"
#include "model/dtype.h"
#include "model/random_model.h"
#include "model_fixtures.h"
#include "prune/calibration.h"
#include "prune/pruner.h"
#include "qpruner/error.h"
#include "qpruner/tokenizer.h"

using namespace qpruner;
using namespace qpruner::testing;

namespace {

int64_t heldParameters(const model::LlamaModel& m)
{
    int64_t n = m.embedding.numel() + m.finalNorm.numel();
    for (const auto& l : m.layers) {
        n += l.attnNorm.numel() + l.ffnNorm.numel();
        for (const auto* p : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) {
            n += (*p)->denseWeight().numel();
            if (auto b = (*p)->bias())
                n += b->numel();
        }
    }
    if (!m.config().tiedEmbeddings)
        n += m.lmHead->denseWeight().numel();
    return n;
}

at::Tensor& weightOf(const model::LinearPtr& l) { return dynamic_cast<model::DenseLinear&>(*l).weight(); }

// Mean next-token NLL, written independently of the pruner (log_softmax + gather).
at::Tensor meanNll(const model::LlamaModel& m, const at::Tensor& tokens)
{
    const int64_t T = tokens.size(1);
    const auto logp = at::log_softmax(m.forward(tokens).narrow(1, 0, T - 1), -1);
    return -logp.gather(-1, tokens.narrow(1, 1, T - 1).unsqueeze(-1)).mean();
}

std::unique_ptr<model::LlamaModel> loadStories()
{
    model::LoadOptions o;
    o.dtype = at::kFloat;
    return model::loadModel(sharedDataDir() / "models/stories260K/stories260K.bin", o);
}

} // namespace

class TestPrune : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase() { model::setIntraOpThreads(0); }

    void ratioZeroIsIdentity()
    {
        QPRUNER_SHARED_FILE(bin, "models/stories260K/stories260K.bin");
        auto m = loadStories();
        const auto tokens = randomTokens(2, 16, 512, 1);
        const auto before = m->forward(tokens);
        prune::PruneOptions o;
        o.ratio = 0.0;
        const auto calib = randomTokens(4, 16, 512, 2);
        const auto plan = prune::planPruning(m->config(), prune::estimateImportance(*m, calib, o), o);
        prune::applyPruning(*m, plan);
        QVERIFY(at::equal(before, m->forward(tokens)));
        QCOMPARE(m->config().parameterCount(), int64_t(260032));
    }

    void maskEqualsSlice_data()
    {
        QTest::addColumn<QString>("criterion");
        QTest::addColumn<bool>("stories");
        QTest::newRow("taylor-first stories260K") << "taylor-first" << true;
        QTest::newRow("taylor-mix stories260K") << "taylor-mix" << true;
        QTest::newRow("l2 tiny-gqa-bias") << "l2" << false;
        QTest::newRow("taylor-vector tiny-gqa-bias") << "taylor-vector" << false;
    }
    void maskEqualsSlice()
    {
        QFETCH(QString, criterion);
        QFETCH(bool, stories);
        if (stories) {
            QPRUNER_SHARED_FILE(bin, "models/stories260K/stories260K.bin");
        }
        auto make = [&] { return stories ? loadStories() : model::makeRandomModel(tinyGqaConfig(), at::kFloat, 7); };
        auto sliced = make(), masked = make();
        prune::PruneOptions o;
        o.ratio = 0.5;
        o.criterion = prune::parseCriterion(criterion.toStdString());
        const int64_t vocab = sliced->config().vocabSize;
        const auto calib = randomTokens(6, 16, vocab, 3);
        const auto plan = prune::planPruning(sliced->config(), prune::estimateImportance(*sliced, calib, o), o);
        prune::applyPruning(*sliced, plan);
        prune::applyPruningMask(*masked, plan);
        const auto tokens = randomTokens(2, 20, vocab, 4);
        const auto a = sliced->forward(tokens), b = masked->forward(tokens);
        QVERIFY2(maxAbsDiff(a, b) < 1e-4, qPrintable(QString::number(maxAbsDiff(a, b))));
        // Something was really removed, and it changed the model.
        QVERIFY(sliced->config().parameterCount() < masked->config().parameterCount());
        QCOMPARE(heldParameters(*sliced), sliced->config().parameterCount());
    }

    void shapesFollowClosedForm()
    {
        QPRUNER_SHARED_FILE(bin, "models/stories260K/stories260K.bin");
        auto m = loadStories();
        prune::PruneOptions o; // ratio 0.25, layers 1..3 (first and last dense)
        const auto calib = randomTokens(4, 32, 512, 5);
        prune::applyPruning(*m, prune::planPruning(m->config(), prune::estimateImportance(*m, calib, o), o));
        // 4 KV groups: 4 - int(4*0.75) = 1 removed -> 3 groups of 2 heads; 172 channels: 172 - int(129) = 43 gone.
        for (int l = 0; l < 5; ++l) {
            const bool pruned = l >= 1 && l <= 3;
            QCOMPARE(m->config().layers[size_t(l)], pruned ? (LayerShape{6, 3, 129}) : (LayerShape{8, 4, 172}));
        }
        // D = 64, head_dim 8: per pruned layer norms 2*64, q 64*48, k,v 2*64*24, o 48*64, MLP 3*64*129.
        const int64_t prunedLayer = 2 * 64 + 64 * 48 + 2 * 64 * 24 + 48 * 64 + 3 * 64 * 129;
        const int64_t denseLayer = 2 * 64 + 64 * 64 + 2 * 64 * 32 + 64 * 64 + 3 * 64 * 172;
        const int64_t expected = 512 * 64 + 64 + 2 * denseLayer + 3 * prunedLayer; // tied head
        QCOMPARE(m->config().parameterCount(), expected);
        QCOMPARE(heldParameters(*m), expected);
        QCOMPARE(m->weightBytes(), expected * 4);
    }

    void gqaStaysValidAndChannelMultiple()
    {
        ModelConfig c = tinyGqaConfig();
        c.layers.assign(4, LayerShape{6, 2, 100});
        auto m = model::makeRandomModel(c, at::kFloat, 11);
        prune::PruneOptions o;
        o.ratio = 0.3;
        o.channelMultiple = 8;
        o.attentionLayers = {0, 4};
        o.mlpLayers = {0, 4};
        const auto calib = randomTokens(3, 12, c.vocabSize, 6);
        prune::applyPruning(*m, prune::planPruning(m->config(), prune::estimateImportance(*m, calib, o), o));
        for (const auto& s : m->config().layers) {
            // 2 KV groups: 2 - int(1.4) = 1 removed -> 1 group of 3 heads. 100 channels: 70 kept -> 72 (x8).
            QCOMPARE(s.numKvHeads, 1);
            QCOMPARE(s.numHeads, 3);
            QCOMPARE(s.numHeads % s.numKvHeads, 0);
            QCOMPARE(s.ffnDim, 72);
        }
        QCOMPARE(heldParameters(*m), m->config().parameterCount());
        const auto logits = m->forward(randomTokens(1, 8, c.vocabSize, 8));
        QVERIFY(at::isfinite(logits).all().item<bool>());
    }

    void taylorScoresEqualExplicitComputation()
    {
        const ModelConfig c = tinyGqaConfig();
        const auto calib = randomTokens(5, 12, c.vocabSize, 9);
        const int layer = 1;
        const int64_t hd = c.headDim, g = 3;

        // Explicit gradients of the mean NLL of the whole calibration batch, and per-sample ones.
        auto ref = model::makeRandomModel(c, at::kFloat, 21);
        auto& L = ref->layers[layer];
        std::vector<model::LinearPtr> lins = {L.q, L.k, L.v, L.o, L.gate, L.up, L.down};
        std::vector<at::Tensor> grad(7), fisher(7);
        {
            c10::AutoGradMode on(true);
            for (auto& l : lins)
                weightOf(l).requires_grad_(true);
            meanNll(*ref, calib).backward();
            for (size_t i = 0; i < 7; ++i) {
                grad[i] = weightOf(lins[i]).grad().clone();
                fisher[i] = at::zeros_like(grad[i]);
            }
            for (int64_t n = 0; n < calib.size(0); ++n) {
                for (auto& l : lins)
                    weightOf(l).mutable_grad() = at::Tensor();
                meanNll(*ref, calib.narrow(0, n, 1)).backward();
                for (size_t i = 0; i < 7; ++i)
                    fisher[i] += weightOf(lins[i]).grad().pow(2) / double(calib.size(0));
            }
            for (auto& l : lins) {
                weightOf(l).mutable_grad() = at::Tensor();
                weightOf(l).requires_grad_(false);
            }
        }
        // Per-channel scores of a member (one value per output row, or per input column for o and down), then
        // the member's score of KV group u / MLP channel ch by slicing those channels explicitly.
        auto attnMember = [&](const at::Tensor& ch, size_t i, int64_t u) {
            const bool wide = i == 0 || i == 3; // q rows and o columns: g heads per group
            return ch.narrow(0, u * (wide ? g : 1) * hd, (wide ? g : 1) * hd).sum().item<double>();
        };
        auto mlpMember = [&](const at::Tensor& ch, size_t, int64_t c) { return ch[c].item<double>(); };
        auto inputSide = [](size_t i) { return i == 3 || i == 6; };
        auto elementwise = [&](const std::function<at::Tensor(size_t)>& elem) {
            return [=](size_t i) { return elem(i).sum(inputSide(i) ? 0 : 1); };
        };
        auto check = [&](prune::Criterion crit, prune::Aggregation agg,
                         const std::function<at::Tensor(size_t)>& channels) {
            auto m = model::makeRandomModel(c, at::kFloat, 21);
            prune::PruneOptions o;
            o.criterion = crit;
            o.aggregation = agg;
            o.attentionLayers = {layer, layer + 1};
            o.mlpLayers = {layer, layer + 1};
            o.microBatch = 2; // 5 samples in micro-batches of 2, 2, 1: accumulation must still give the mean
            const auto s = prune::estimateImportance(*m, calib, o);
            QVERIFY(s[0].attention.empty() && s[2].mlp.empty());
            auto combine = [&](std::vector<double> v) {
                double r = agg == prune::Aggregation::Prod ? 1.0 : 0.0;
                for (double x : v) {
                    if (agg == prune::Aggregation::Sum || agg == prune::Aggregation::Mean)
                        r += x;
                    else if (agg == prune::Aggregation::Prod)
                        r *= x;
                    else if (agg == prune::Aggregation::Max)
                        r = std::max(r, x);
                }
                if (agg == prune::Aggregation::Mean)
                    r /= double(v.size());
                if (agg == prune::Aggregation::Last)
                    r = v.back();
                return r;
            };
            std::vector<at::Tensor> e(7);
            for (size_t i = 0; i < 7; ++i)
                e[i] = channels(i).to(at::kDouble);
            QCOMPARE(s[layer].attention.size(), size_t(2));
            for (int64_t u = 0; u < 2; ++u) {
                const double want = combine({attnMember(e[0], 0, u), attnMember(e[1], 1, u), attnMember(e[2], 2, u),
                                             attnMember(e[3], 3, u)});
                QVERIFY2(std::abs(s[layer].attention[size_t(u)] - want) <= 1e-5 * std::abs(want),
                         qPrintable(QString("group %1: %2 vs %3").arg(u).arg(s[layer].attention[size_t(u)]).arg(want)));
            }
            QCOMPARE(s[layer].mlp.size(), size_t(40));
            for (int64_t ch = 0; ch < 40; ++ch) {
                const double want = combine({mlpMember(e[4], 4, ch), mlpMember(e[5], 5, ch), mlpMember(e[6], 6, ch)});
                QVERIFY2(std::abs(s[layer].mlp[size_t(ch)] - want) <= 1e-5 * std::abs(want),
                         qPrintable(QString("channel %1: %2 vs %3").arg(ch).arg(s[layer].mlp[size_t(ch)]).arg(want)));
            }
        };
        auto w = [&](size_t i) { return weightOf(lins[i]).detach(); };
        const auto first = elementwise([&](size_t i) { return (grad[i] * w(i)).abs(); });
        check(prune::Criterion::TaylorFirst, prune::Aggregation::Sum, first);
        check(prune::Criterion::TaylorFirst, prune::Aggregation::Max, first);
        check(prune::Criterion::TaylorFirst, prune::Aggregation::Prod, first);
        check(prune::Criterion::TaylorFirst, prune::Aggregation::Last, first);
        // Vector-wise: the sum runs over the channel before the absolute value.
        check(prune::Criterion::TaylorVector, prune::Aggregation::Sum,
              [&](size_t i) { return (grad[i] * w(i)).sum(inputSide(i) ? 0 : 1).abs(); });
        check(prune::Criterion::TaylorSecond, prune::Aggregation::Mean,
              elementwise([&](size_t i) { return (0.5 * w(i) * w(i) * fisher[i]).abs(); }));
        check(prune::Criterion::TaylorMix, prune::Aggregation::Sum,
              elementwise([&](size_t i) { return (grad[i] * w(i) - 0.5 * w(i) * w(i) * fisher[i]).abs(); }));
        check(prune::Criterion::L1, prune::Aggregation::Sum, elementwise([&](size_t i) { return w(i).abs(); }));
        check(prune::Criterion::L2, prune::Aggregation::Sum, elementwise([&](size_t i) { return w(i) * w(i); }));
    }

    void pruneSaveLoadSamePerplexity()
    {
        QPRUNER_SHARED_FILE(bin, "models/stories260K/stories260K.bin");
        QPRUNER_SHARED_FILE(tokFile, "models/stories260K/tok512.model");
        QPRUNER_SHARED_FILE(text, "text/tinystories/tinystories_valid_subset.txt");
        auto m = loadStories();
        const auto tok = loadTokenizer(tokFile);
        std::ifstream in(text);
        const std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        const auto stream = tok->encode(body.substr(0, 60000));
        prune::CalibrationOptions co;
        const auto calib = prune::sampleCalibration(stream, co);
        prune::PruneOptions o;
        o.ratio = 0.5;
        const auto plan = prune::planPruning(m->config(), prune::estimateImportance(*m, calib, o), o);
        prune::applyPruning(*m, plan);
        eval::PerplexityOptions po;
        po.seqLen = 128;
        po.maxWindows = 20;
        const auto before = eval::evaluatePerplexity(*m, stream, po);
        QTemporaryDir dir;
        model::saveNativeModel(*m, dir.filePath("pruned").toStdString());
        const auto loaded = model::loadModel(dir.filePath("pruned").toStdString());
        QCOMPARE(loaded->config(), m->config());
        const auto after = eval::evaluatePerplexity(*loaded, stream, po);
        QCOMPARE(after.ppl, before.ppl);
        QVERIFY(before.ppl > 1.0 && std::isfinite(before.ppl));
    }

    void calibrationIsSeededWindowsOfTheStream()
    {
        std::vector<int32_t> stream(1000);
        for (size_t i = 0; i < stream.size(); ++i)
            stream[i] = int32_t(i);
        prune::CalibrationOptions o;
        o.samples = 8;
        o.seqLen = 16;
        o.seed = 42;
        const auto a = prune::sampleCalibration(stream, o), b = prune::sampleCalibration(stream, o);
        QVERIFY(at::equal(a, b));
        QCOMPARE(a.sizes().vec(), (std::vector<int64_t>{8, 16}));
        for (int64_t s = 0; s < 8; ++s) // consecutive tokens of the stream
            QVERIFY(at::equal(a[s], at::arange(a[s][0].item<int64_t>(), a[s][0].item<int64_t>() + 16, at::kLong)));
        o.seed = 43;
        QVERIFY(!at::equal(a, prune::sampleCalibration(stream, o)));
        o.seqLen = 2000;
        QVERIFY_THROWS_EXCEPTION(ConfigError, prune::sampleCalibration(stream, o));
    }

    void badOptionsNameTheProblem()
    {
        const ModelConfig c = tinyGqaConfig();
        auto expectError = [&](const prune::PruneOptions& o, const char* fragment) {
            try {
                prune::resolveRatios(c, o);
                QFAIL(qPrintable(QString("no error for ") + fragment));
            } catch (const ConfigError& e) {
                QVERIFY2(std::string(e.what()).find(fragment) != std::string::npos, e.what());
            }
        };
        prune::PruneOptions o;
        o.ratio = 1.0;
        expectError(o, "pruning ratio");
        o = {};
        o.layerRatios = {0.1, 0.2};
        expectError(o, "2 values given, the model has 3 layers");
        o = {};
        o.attentionLayers = {1, 9};
        expectError(o, "attention layers 1:9");
        o = {};
        o.channelMultiple = 0;
        expectError(o, "channel multiple");
        try {
            prune::parseCriterion("taylor");
            QFAIL("no error");
        } catch (const ConfigError& e) {
            QVERIFY(std::string(e.what()).find("taylor-first") != std::string::npos);
        }
        QVERIFY_THROWS_EXCEPTION(ConfigError, prune::parseAggregation("median"));
        // Defaults keep the first and last layers dense; layer ratios switch the ranges to all layers.
        o = {};
        auto r = prune::resolveRatios(c, o);
        QCOMPARE(r.attention, (std::vector<double>{0.0, 0.25, 0.0}));
        o.layerRatios = {0.1, 0.0, 0.3};
        r = prune::resolveRatios(c, o);
        QCOMPARE(r.mlp, (std::vector<double>{0.1, 0.0, 0.3}));
    }
};

QTEST_GUILESS_MAIN(TestPrune)
#include "test_prune.moc"

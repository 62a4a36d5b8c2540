// Layer importance: the MI estimator against closed-form values (independent variables, a deterministic
// function of a discrete variable, Gaussian pairs of known correlation), quantile binning, block influence of an
// identity layer, quant-kl and taylor against explicit computations, the residual-stream hook, rank
// correlation, calibration text formats, and the errors.
#include <QtTest/QtTest>

#include <QTemporaryDir>

#include <cmath>
#include <fstream>
#include <random>

#include <c10/core/GradMode.h>

#include "finetune/train_data.h"
#include "importance/kl_rows.h"
#include "importance/layer_importance.h"
#include "importance/mutual_information.h"
#include "model/random_model.h"
#include "model_fixtures.h"
#include "prune/calibration.h"
#include "qpruner/error.h"
#include "quant/model_quantizer.h"

using namespace qpruner;
using namespace qpruner::testing;
using importance::Metric;

namespace {

at::Tensor& weightOf(const model::LinearPtr& l) { return dynamic_cast<model::DenseLinear&>(*l).weight(); }

std::unique_ptr<model::LlamaModel> tinyModel(uint64_t seed = 7)
{
    auto m = model::makeRandomModel(tinyGqaConfig(), at::kFloat, seed);
    // Larger weights than the GPT-2 init so the layers matter and the output distribution is far from uniform.
    c10::NoGradGuard noGrad;
    for (auto& L : m->layers)
        for (auto* p : {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down})
            weightOf(*p).mul_(10.0);
    m->embedding.mul_(20.0);
    return m;
}

double log2Of(double x) { return std::log(x) / std::log(2.0); }

} // namespace

class TestImportance : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void entropyOfKnownDistributions()
    {
        // 1000 samples, 4 equally frequent values: exactly 2 bits plug-in; Miller-Madow adds 3 / (2000 ln 2).
        std::vector<int64_t> x;
        for (int i = 0; i < 1000; ++i)
            x.push_back(i % 4);
        QVERIFY(std::abs(importance::entropyBits(x, false) - 2.0) < 1e-12);
        QVERIFY(std::abs(importance::entropyBits(x, true) - (2.0 + 3.0 / (2000.0 * std::log(2.0)))) < 1e-12);
        // p = (1/2, 1/4, 1/4): 1.5 bits.
        std::vector<int64_t> y;
        for (int i = 0; i < 1000; ++i)
            y.push_back(i % 4 == 3 ? 2 : i % 2);
        QVERIFY(std::abs(importance::entropyBits(y, false) - 1.5) < 1e-12);
        QVERIFY(expectThrow<ConfigError>([] { importance::entropyBits({}); }).contains("empty"));
    }

    void miOfIndependentVariablesIsNearZero()
    {
        std::mt19937_64 rng(1);
        std::uniform_int_distribution<int64_t> dx(0, 7), dy(0, 15);
        std::vector<int64_t> x, y;
        for (int i = 0; i < 20000; ++i) {
            x.push_back(dx(rng));
            y.push_back(dy(rng));
        }
        const double plugIn = importance::mutualInformationBits(x, y, false);
        const double mm = importance::mutualInformationBits(x, y, true);
        // The plug-in bias is about (8*16 - 8 - 16 + 1) / (2 N ln 2) = 0.0038 bits; Miller-Madow removes it.
        const double bias = (128.0 - 8 - 16 + 1) / (2.0 * 20000 * std::log(2.0));
        QVERIFY2(std::abs(plugIn - bias) < 0.6 * bias, qPrintable(QString::number(plugIn)));
        QVERIFY2(std::abs(mm) < 0.4 * bias, qPrintable(QString::number(mm)));
    }

    void miOfDeterministicFunctionIsItsEntropy()
    {
        // X uniform over 12 values, Y = X mod 3: I(X;Y) = H(Y) = log2 3 exactly for the plug-in estimate.
        std::vector<int64_t> x, y;
        for (int i = 0; i < 1200; ++i) {
            x.push_back(i % 12);
            y.push_back((i % 12) % 3);
        }
        QVERIFY(std::abs(importance::mutualInformationBits(x, y, false) - log2Of(3.0)) < 1e-12);
        QVERIFY(std::abs(importance::mutualInformationBits(x, y, false) - importance::entropyBits(y, false)) < 1e-12);
        // Miller-Madow: + (m_X + m_Y - m_XY - 1) / (2 N ln 2) = (12 + 3 - 12 - 1) / (2400 ln 2).
        QVERIFY(std::abs(importance::mutualInformationBits(x, y, true) -
                         (log2Of(3.0) + 2.0 / (2400.0 * std::log(2.0)))) < 1e-12);
        // Symmetric, and I(X;X) = H(X).
        QVERIFY(std::abs(importance::mutualInformationBits(y, x, false) - log2Of(3.0)) < 1e-12);
        QVERIFY(std::abs(importance::mutualInformationBits(x, x, false) - log2Of(12.0)) < 1e-12);
        QVERIFY(expectThrow<ConfigError>([&] { importance::mutualInformationBits(x, {1, 2}); }).contains("same"));
    }

    void miOfGaussianPairsMatchesClosedForm()
    {
        // Bivariate normal with correlation rho: I = -1/2 log2(1 - rho^2). Quantile-binned into 32 x 32 cells the
        // estimate converges to the binned MI, a little below the continuous one.
        for (double rho : {0.5, 0.9}) {
            std::mt19937_64 rng(42);
            std::normal_distribution<double> n01(0.0, 1.0);
            const int N = 200000;
            std::vector<float> a(N), b(N);
            for (int i = 0; i < N; ++i) {
                const double u = n01(rng), v = n01(rng);
                a[size_t(i)] = float(u);
                b[size_t(i)] = float(rho * u + std::sqrt(1 - rho * rho) * v);
            }
            const auto x = importance::quantileBins(a.data(), N, 32);
            const auto y = importance::quantileBins(b.data(), N, 32);
            const double estimate = importance::mutualInformationBits(x, y, true);
            const double exact = -0.5 * log2Of(1 - rho * rho);
            QVERIFY2(estimate < exact && estimate > 0.95 * exact,
                     qPrintable(QString("rho %1: %2 vs %3").arg(rho).arg(estimate).arg(exact)));
        }
    }

    void quantileBinsAreEqualCountAndKeepTies()
    {
        std::vector<float> v;
        for (int i = 0; i < 100; ++i)
            v.push_back(float((i * 37) % 100)); // a permutation of 0..99
        const auto bins = importance::quantileBins(v.data(), 100, 4);
        for (int i = 0; i < 100; ++i)
            QCOMPARE(bins[size_t(i)], int64_t(v[size_t(i)]) / 25);
        // Ties: 60 zeros and 40 ones into 4 bins: the zeros never split, so only two bins are used.
        std::vector<float> t(100, 0.0f);
        std::fill(t.begin() + 60, t.end(), 1.0f);
        const auto tb = importance::quantileBins(t.data(), 100, 4);
        for (int i = 0; i < 100; ++i)
            QCOMPARE(tb[size_t(i)], i < 60 ? int64_t(2) : int64_t(3));
        // Joint cells of two columns.
        const float m[] = {0, 10, 1, 11, 2, 12, 3, 13};
        const auto cells = importance::jointQuantileCells(m, 4, 2, 2);
        QCOMPARE(cells, (std::vector<int64_t>{0, 0, 3, 3}));
        QVERIFY(expectThrow<ConfigError>([&] { importance::quantileBins(v.data(), 100, 0); }).contains("bin"));
    }

    void spearmanRankCorrelation()
    {
        QCOMPARE(importance::spearman({1, 2, 3, 4}, {10, 20, 30, 40}), 1.0);
        QCOMPARE(importance::spearman({1, 2, 3, 4}, {4, 3, 2, 1}), -1.0);
        // Ties get average ranks: ranks (0.5, 0.5, 2) vs (0, 1, 2): r = 0.75 / sqrt(1.5 * 2) = sqrt(3)/2.
        QVERIFY(std::abs(importance::spearman({1, 1, 2}, {1, 2, 3}) - std::sqrt(3.0) / 2) < 1e-12);
        QVERIFY(std::isnan(importance::spearman({1, 1, 1}, {1, 2, 3})));
    }

    void residualHookGivesEveryLayersOutput()
    {
        auto m = tinyModel();
        const auto tokens = randomTokens(2, 9, 50, 3);
        std::vector<at::Tensor> residuals;
        c10::NoGradGuard noGrad;
        const auto hidden = m->forwardHidden(tokens, nullptr, &residuals);
        QCOMPARE(int(residuals.size()), 4);
        QVERIFY(maxAbsDiff(residuals[0], at::embedding(m->embedding, tokens)) == 0.0);
        const auto x = residuals[3];
        const auto normed = x * at::rsqrt(x.pow(2).mean(-1, true) + m->config().normEps) * m->finalNorm;
        QVERIFY(maxAbsDiff(normed, hidden) < 1e-5);
        // Without the hook the result is the same.
        QVERIFY(maxAbsDiff(m->forwardHidden(tokens), hidden) == 0.0);
    }

    void blockInfluenceOfIdentityLayerIsZero()
    {
        auto m = tinyModel();
        {
            c10::NoGradGuard noGrad;
            weightOf(m->layers[1].o).zero_(); // attention adds nothing
            weightOf(m->layers[1].down).zero_(); // nor does the MLP: layer 1 is the identity
        }
        importance::ImportanceOptions o;
        o.metrics = {Metric::BI};
        const auto s = importance::layerImportance(*m, randomTokens(6, 12, 50, 4), o);
        const auto& bi = s.at("bi");
        QVERIFY2(std::abs(bi.layers[1]) < 1e-12, qPrintable(QString::number(bi.layers[1])));
        QVERIFY(bi.layers[0] > 1e-3 && bi.layers[2] > 1e-3);
        QCOMPARE(bi.normalized[1], 0.0);
        QCOMPARE(s.count("mi"), size_t(0));
    }

    // cosine: per block 1 - mean cos(input, output) at the predicted positions; a block that adds nothing scores 0,
    // the layer is the sum of its two blocks, and the states agree with the residual hook.
    void sublayerCosineOfKnownBlocks()
    {
        auto m = tinyModel();
        {
            c10::NoGradGuard noGrad;
            weightOf(m->layers[1].o).zero_();    // layer 1's attention adds nothing; its MLP still does
            weightOf(m->layers[2].down).zero_(); // layer 2's MLP adds nothing
        }
        const auto tokens = randomTokens(6, 12, 50, 4);
        c10::NoGradGuard noGrad;
        const auto states = m->sublayerStates(tokens);
        QCOMPARE(int(states.size()), 2 * 3 + 1);
        std::vector<at::Tensor> residuals;
        m->forwardHidden(tokens, nullptr, &residuals);
        for (int l = 0; l <= 3; ++l)
            QVERIFY(maxAbsDiff(states[size_t(2 * l)], residuals[size_t(l)]) == 0.0);
        importance::ImportanceOptions o;
        o.metrics = {Metric::Cosine};
        o.microBatch = 4; // two micro-batches (6 windows)
        const auto c = importance::layerImportance(*m, tokens, o).at("cosine");
        // Explicit: one pass over all windows, double precision.
        auto block = [&](size_t a) {
            const auto x = states[a].narrow(1, 0, 11).reshape({-1, states[a].size(2)}).to(at::kDouble);
            const auto y = states[a + 1].narrow(1, 0, 11).reshape({-1, states[a].size(2)}).to(at::kDouble);
            return 1.0 - at::cosine_similarity(x, y, 1, 1e-12).mean().item<double>();
        };
        for (int l = 0; l < 3; ++l) {
            const double a = block(size_t(2 * l)), mlp = block(size_t(2 * l + 1));
            QVERIFY(std::abs(c.layers[size_t(l)] - (a + mlp)) < 1e-9);
            QVERIFY(std::abs(c.modules[size_t(l)][size_t(LinearModule::Q)] - a) < 1e-9);
            QVERIFY(std::abs(c.modules[size_t(l)][size_t(LinearModule::Down)] - mlp) < 1e-9);
        }
        QVERIFY(std::abs(c.modules[1][size_t(LinearModule::O)]) < 1e-12);
        QVERIFY(c.modules[1][size_t(LinearModule::Up)] > 1e-3);
        QVERIFY(std::abs(c.modules[2][size_t(LinearModule::Gate)]) < 1e-12);
        QVERIFY(c.modules[2][size_t(LinearModule::V)] > 1e-3);
        QCOMPARE(c.options["tokens"].get<int64_t>(), int64_t(6 * 11));
    }

    // outlier: the fraction of each linear's weights beyond 3 sd of its mean; exact on a planted pattern, and
    // weight-count weighted per layer.
    void weightOutliersCountPlantedOutliers()
    {
        auto m = tinyModel();
        {
            c10::NoGradGuard noGrad;
            for (auto& L : m->layers)
                for (auto* p : {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down}) {
                    // +-1 alternating: no weight beyond 3 sd (|z| = 1 everywhere).
                    auto& w = weightOf(*p);
                    w.copy_(at::arange(w.numel(), at::kFloat).remainder(2).mul(2).sub(1).view_as(w));
                }
            // 3 outliers in layer 0's up projection: far beyond 3 sd.
            auto& up = weightOf(m->layers[0].up);
            up.view({-1}).narrow(0, 0, 3).fill_(1000.0);
        }
        importance::ImportanceOptions o;
        o.metrics = {Metric::Outlier};
        const auto r = importance::layerImportance(*m, randomTokens(2, 4, 50, 1), o).at("outlier");
        const double upCount = double(weightOf(m->layers[0].up).numel());
        QCOMPARE(r.modules[0][size_t(LinearModule::Up)], 3.0 / upCount);
        QCOMPARE(r.modules[0][size_t(LinearModule::Q)], 0.0);
        QCOMPARE(r.modules[1][size_t(LinearModule::Up)], 0.0);
        double total = 0;
        for (auto* p : {&m->layers[0].q, &m->layers[0].k, &m->layers[0].v, &m->layers[0].o, &m->layers[0].gate,
                        &m->layers[0].up, &m->layers[0].down})
            total += double(weightOf(*p).numel());
        QCOMPARE(r.layers[0], 3.0 / total);
        QCOMPARE(r.layers[1], 0.0);
        QCOMPARE(r.normalized[0], 1.0);
        // Quantized weights are refused, as for quant-kl and taylor.
        quant::quantizeModel(*m, PrecisionMap(parseQuantSpec("nf4")));
        try {
            importance::layerImportance(*m, randomTokens(2, 4, 50, 1), o);
            QFAIL("no error");
        } catch (const ConfigError& e) {
            QVERIFY(std::string(e.what()).find("outlier needs dense weights") != std::string::npos);
        }
        QCOMPARE(importance::metricName(importance::parseMetric("cosine")), std::string("cosine"));
    }

    void miOnTheModelIsDeterministicAndBounded()
    {
        auto m = tinyModel();
        const auto calib = randomTokens(16, 16, 50, 5);
        importance::ImportanceOptions o;
        o.metrics = {Metric::MI};
        const auto a = importance::layerImportance(*m, calib, o).at("mi");
        const auto b = importance::layerImportance(*m, calib, o).at("mi");
        QCOMPARE(a.layers, b.layers);
        // I(X;Y) <= H(Y) and <= H(X) <= log2(bins^dims) (up to the Miller-Madow terms).
        const double hy = a.options.at("target_entropy_bits").get<double>();
        for (double v : a.layers) {
            QVERIFY(std::isfinite(v));
            QVERIFY(v <= hy + 1e-9);
            QVERIFY(v <= log2Of(64.0) + 0.5);
        }
        // The layer MI equals a direct computation from the hook's residual stream.
        std::vector<int64_t> y;
        std::vector<at::Tensor> res;
        at::Tensor proj = importance::miProjection(24, 2, 0);
        std::vector<at::Tensor> last;
        {
            c10::NoGradGuard noGrad;
            for (int64_t s = 0; s < 16; s += 4) {
                const auto batch = calib.narrow(0, s, 4);
                const auto hidden = m->forwardHidden(batch, nullptr, &res);
                const auto pred = m->logits(hidden).argmax(-1).narrow(1, 0, 15).reshape({-1});
                y.insert(y.end(), pred.data_ptr<int64_t>(), pred.data_ptr<int64_t>() + pred.numel());
                last.push_back(at::matmul(res[3].narrow(1, 0, 15).reshape({-1, 24}), proj));
            }
        }
        const auto x = at::cat(last).contiguous();
        const auto cells = importance::jointQuantileCells(x.data_ptr<float>(), x.size(0), 2, 8);
        QVERIFY(std::abs(importance::mutualInformationBits(cells, y, true) - a.layers[2]) < 1e-12);
        // Another projection seed or the gold target changes the estimate.
        o.mi.seed = 1;
        QVERIFY(importance::layerImportance(*m, calib, o).at("mi").layers != a.layers);
        o.mi.seed = 0;
        o.mi.goldTarget = true;
        QVERIFY(importance::layerImportance(*m, calib, o).at("mi").layers != a.layers);
        // Unit-norm projection columns.
        QVERIFY(maxAbsDiff(proj.norm(2, {0}), at::ones({2})) < 1e-6);
    }

    // quant-kl's fused row sums against the float64 tensor formula: widths that are and are not multiples of the
    // vector width, logits far apart (exp's range ends), the same bits for 1-3 threads.
    void klRowsSumMatchesTensorFormula()
    {
        for (const int64_t V : {1, 7, 37, 64, 32000}) {
            const int64_t n = 9;
            auto gen = at::detail::createCPUGenerator(uint64_t(V));
            auto z = at::randn({n, V}, gen, at::TensorOptions().dtype(at::kFloat)) * 6.0;
            if (V > 8) {
                z[0][3] = -700.0f; // exp underflows next to the row's maximum
                z[1][V - 1] = 85.0f;
                z[2].fill_(-3.0f); // a flat row
            }
            const auto ref = at::log_softmax(at::randn({n, V}, gen, at::TensorOptions().dtype(at::kDouble)) * 2.0, -1);
            const auto p = ref.exp(), pLogP = (p * ref).sum(-1);
            const auto zd = z.to(at::kDouble);
            const double want = (pLogP - (p * zd).sum(-1) + zd.logsumexp(-1)).sum().item<double>();
            const double scale = (pLogP.abs() + (p * zd).sum(-1).abs()).sum().item<double>(); // the terms' size
            double first = 0;
            for (int threads : {1, 2, 3}) {
                at::set_num_threads(threads);
                const double got = importance::klRowsSum(z.data_ptr<float>(), p.data_ptr<double>(),
                                                         pLogP.data_ptr<double>(), n, V);
                QVERIFY2(std::abs(got - want) <= 1e-14 * scale,
                         qPrintable(QString("V %1: %2 vs %3").arg(V).arg(got, 0, 'g', 17).arg(want, 0, 'g', 17)));
                if (threads == 1)
                    first = got;
                else
                    QCOMPARE(got, first);
            }
            at::set_num_threads(1);
        }
    }

    void quantKlEqualsExplicitComputation()
    {
        auto m = tinyModel();
        const auto calib = randomTokens(5, 10, 50, 6);
        c10::NoGradGuard noGrad;
        const auto before = m->forward(calib);
        importance::ImportanceOptions o;
        o.metrics = {Metric::QuantKl};
        o.klFormat = parseQuantSpec("int3");
        o.klModules = true;
        o.microBatch = 5; // one pass, the same batch shape as the explicit computation below
        const auto s = importance::layerImportance(*m, calib, o).at("quant-kl");
        QVERIFY(maxAbsDiff(m->forward(calib), before) == 0.0); // the model is left as it was
        auto klOf = [&](const PrecisionMap& map) {
            auto q = tinyModel();
            quant::quantizeModel(*q, map);
            // The float32 logits taken to float64 before the log-softmax, as quant-kl does. The head runs on the
            // predicted positions' rows only, as there: a product of another shape may differ in the last bits of
            // float32, which a KL of nearly equal distributions feels at ~1e-8.
            const auto logitsAt = [&](const model::LlamaModel& mm) {
                const auto h = mm.forwardHidden(calib).narrow(1, 0, 9);
                return mm.logits(h.reshape({-1, h.size(-1)})).to(at::kDouble);
            };
            const auto p = at::log_softmax(logitsAt(*m), -1);
            const auto lq = at::log_softmax(logitsAt(*q), -1);
            return (p.exp() * (p - lq)).sum(-1).mean().item<double>();
        };
        for (int l = 0; l < 3; ++l) {
            PrecisionMap layerMap(parseQuantSpec("fp32"));
            layerMap.setEmbedding(parseQuantSpec("fp32")); // everything else as the scored model holds it
            layerMap.setLmHead(parseQuantSpec("fp32"));
            layerMap.setLayer(l, parseQuantSpec("int3"));
            const double want = klOf(layerMap);
            QVERIFY2(std::abs(s.layers[size_t(l)] - want) < 1e-9 * want && want > 1e-4,
                     qPrintable(QString("layer %1: %2 vs %3").arg(l).arg(s.layers[size_t(l)], 0, 'g', 17).arg(want, 0, 'g', 17)));
        }
        PrecisionMap moduleMap(parseQuantSpec("fp32"));
        moduleMap.setEmbedding(parseQuantSpec("fp32"));
        moduleMap.setLmHead(parseQuantSpec("fp32"));
        moduleMap.setLayerModule(2, LinearModule::Up, parseQuantSpec("int3"));
        const double up = klOf(moduleMap);
        QVERIFY2(std::abs(s.modules[2][size_t(LinearModule::Up)] - up) < 1e-9 * up,
                 qPrintable(QString("%1 vs %2").arg(s.modules[2][size_t(LinearModule::Up)]).arg(up)));
        QCOMPARE(s.options.at("format").get<std::string>(), std::string("int3"));
        // The KL sums in chunks of 4 logit rows (45 rows: 11 chunks and a remainder of 1) give the same scores, up to
        // the last bits of float32 head products of other shapes (~1e-8 relative; a lost or shifted chunk is O(1)).
        o.klChunkRows = 4;
        const auto chunked = importance::layerImportance(*m, calib, o).at("quant-kl");
        for (int l = 0; l < 3; ++l)
            QVERIFY(std::abs(chunked.layers[size_t(l)] - s.layers[size_t(l)]) < 1e-6 * s.layers[size_t(l)]);
        QVERIFY(std::abs(chunked.modules[2][size_t(LinearModule::Up)] - s.modules[2][size_t(LinearModule::Up)]) <
                1e-6 * s.modules[2][size_t(LinearModule::Up)]);
        o.klChunkRows = 0;
        // Micro-batches of 2 (uneven: 2 + 2 + 1) average the same per-token KL; fp32 logits of other batch shapes
        // differ in the last bits, which KLs of nearly equal distributions feel at ~1e-3.
        o.microBatch = 2;
        const auto split = importance::layerImportance(*m, calib, o).at("quant-kl");
        for (int l = 0; l < 3; ++l)
            QVERIFY(std::abs(split.layers[size_t(l)] - s.layers[size_t(l)]) < 1e-2 * s.layers[size_t(l)]);
        // Layers only: no module table.
        o.klModules = false;
        QVERIFY(importance::layerImportance(*m, calib, o).at("quant-kl").modules.empty());
    }

    void taylorEqualsExplicitGradientTimesWeight()
    {
        auto m = tinyModel();
        const auto calib = randomTokens(6, 10, 50, 8);
        importance::ImportanceOptions o;
        o.metrics = {Metric::Taylor};
        o.microBatch = 4; // two micro-batches of unequal size: accumulation must weight them
        const auto s = importance::layerImportance(*m, calib, o).at("taylor");
        // Independent: one pass over all windows, autograd gradient of the mean NLL.
        auto& w = weightOf(m->layers[1].gate);
        w.requires_grad_(true);
        {
            c10::AutoGradMode grad(true);
            const auto logp = at::log_softmax(m->forward(calib).narrow(1, 0, 9), -1);
            const auto nll = -logp.gather(-1, calib.narrow(1, 1, 9).unsqueeze(-1)).mean();
            nll.backward();
        }
        const double want = (w.grad().to(at::kDouble) * w.detach().to(at::kDouble)).abs().sum().item<double>();
        w.mutable_grad() = at::Tensor();
        w.requires_grad_(false);
        const double got = s.modules[1][size_t(LinearModule::Gate)];
        QVERIFY2(std::abs(got - want) < 1e-5 * want, qPrintable(QString("%1 vs %2").arg(got).arg(want)));
        double sum = 0;
        for (double v : s.modules[1])
            sum += v;
        QVERIFY(std::abs(s.layers[1] - sum) < 1e-12 * sum);
        QVERIFY(!weightOf(m->layers[1].gate).requires_grad()); // gradients released
    }

    void normalisedScoresAreMinMax()
    {
        auto m = tinyModel();
        const auto s = importance::layerImportance(*m, randomTokens(4, 8, 50, 9));
        QCOMPARE(s.size(), size_t(4));
        for (const auto& [name, scores] : s) {
            QCOMPARE(scores.normalized, minMaxNormalize(scores.layers));
            QCOMPARE(*std::min_element(scores.normalized.begin(), scores.normalized.end()), 0.0);
            QCOMPARE(*std::max_element(scores.normalized.begin(), scores.normalized.end()), 1.0);
        }
    }

    void errorsNameTheProblem()
    {
        auto m = tinyModel();
        const auto calib = randomTokens(2, 8, 50, 1);
        importance::ImportanceOptions o;
        o.mi.bins = 1;
        QVERIFY(expectThrow<ConfigError>([&] { importance::layerImportance(*m, calib, o); }).contains("bins"));
        o = {};
        QVERIFY(expectThrow<ConfigError>([&] { importance::layerImportance(*m, calib.narrow(1, 0, 1), o); })
                    .contains("length >= 2"));
        QVERIFY(expectThrow<ConfigError>([] { importance::parseMetrics({"mi", "kl"}); }).contains("quant-kl"));
        QVERIFY(expectThrow<ConfigError>([] { importance::parseMetrics({"mi", "mi"}); }).contains("twice"));
        o.klFormat = parseQuantSpec("fp32");
        QVERIFY(expectThrow<ConfigError>([&] { importance::layerImportance(*m, calib, o); }).contains("fp32"));
        // A quantized model cannot be scored by quant-kl or taylor.
        quant::quantizeModel(*m, PrecisionMap(parseQuantSpec("int8")));
        o = {};
        o.metrics = {Metric::Taylor};
        QVERIFY(expectThrow<ConfigError>([&] { importance::layerImportance(*m, calib, o); })
                    .contains("layer 0 q is int8"));
        // mi and bi work on it.
        o.metrics = {Metric::MI, Metric::BI};
        QCOMPARE(importance::layerImportance(*m, calib, o).size(), size_t(2));
    }

    void calibrationTextFormats()
    {
        QTemporaryDir dir;
        const auto path = [&](const char* name) { return std::filesystem::path(dir.filePath(name).toStdString()); };
        {
            std::ofstream(path("a.json")) << R"([{"instruction": "Add.", "input": "1 2", "output": "3"},
                                                 {"instruction": "Greet.", "output": "Hi"}])";
            std::ofstream(path("t.jsonl")) << R"({"query": "Q1:", "choices": ["a", "b"], "gold": 1})" << "\n"
                                           << R"({"query": "Q2:", "choices": ["c", "d"], "gold": 0})" << "\n";
            std::ofstream(path("bad.json")) << R"([{"instruction": 3, "output": "x"}])";
            std::ofstream(path("empty.json")) << "[]";
        }
        const std::string alpaca = prune::calibrationText(path("a.json"), prune::CalibrationFormat::Alpaca);
        QCOMPARE(alpaca, finetune::alpacaPrompt("Add.", "1 2") + "3\n\n" + finetune::alpacaPrompt("Greet.", "") + "Hi");
        QCOMPARE(finetune::alpacaPrompt("Greet.", ""),
                 std::string("Below is an instruction that describes a task. Write a response that appropriately "
                             "completes the request.\n\n### Instruction:\nGreet.\n\n### Response:\n"));
        QVERIFY(finetune::alpacaPrompt("Add.", "1 2").find("### Input:\n1 2\n\n### Response:\n") != std::string::npos);
        QCOMPARE(prune::calibrationText(path("t.jsonl"), prune::CalibrationFormat::Task),
                 std::string("Q1: b\n\nQ2: c"));
        QVERIFY(expectThrow<FormatError>([&] {
                    prune::calibrationText(path("bad.json"), prune::CalibrationFormat::Alpaca);
                }).contains("record 0: \"instruction\""));
        QVERIFY(expectThrow<FormatError>([&] {
                    prune::calibrationText(path("empty.json"), prune::CalibrationFormat::Alpaca);
                }).contains("no calibration text"));
        QVERIFY(expectThrow<FileError>([&] {
                    prune::calibrationText(path("missing.txt"), prune::CalibrationFormat::Text);
                }).contains("missing.txt"));
        QVERIFY(expectThrow<ConfigError>([] { prune::parseCalibrationFormat("csv"); }).contains("alpaca"));
    }
};

QTEST_APPLESS_MAIN(TestImportance)
#include "test_importance.moc"

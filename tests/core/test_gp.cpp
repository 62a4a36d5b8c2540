// Tests of the Gaussian process surrogate (gaussian_process.h):
//   handPosterior     condition() on 3 points in 1-D against the posterior written out in plain doubles (Matern
//                     5/2, cofactor inverse of the 3x3 K_y, output normalisation with the sample std)
//   handLikelihood    the log marginal likelihood of the same problem (log det of the 3x3 K_y)
//   interpolation     with tiny noise the mean at a training point is its output and the variance ~0
//   gradient          the analytic gradient against central differences on random 2-D 8-point problems
//   fit               a 5-D function of x0 and x1 only: relevance found, LML >= the default start's, bounds,
//                     determinism, warm start, held-out RMSE
//   singlePoint       n == 1 and equal outputs
//   duplicatePoints   repeated inputs without noise: the jitter path
//   badInput          every ConfigError
//   timing            prints fit() (n = 40, d = 13 and 30) and predict() (2000 candidates) times
#include "search/gaussian_process.h"

#include "qpruner/error.h"

#include <QtTest/QtTest>

#include "test_data.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <random>

using qpruner::ConfigError;
using qpruner::search::GaussianProcess;
using qpruner::search::GpFitOptions;
using qpruner::search::GpHyperparameters;
using qpruner::search::GpPrediction;

namespace {

using Matrix = std::vector<std::vector<double>>;

double matern(double a, double b, double l, double sf)
{
    const double r = std::abs(a - b) / l;
    return sf * sf * (1 + std::sqrt(5.0) * r + 5.0 / 3.0 * r * r) * std::exp(-std::sqrt(5.0) * r);
}

double det3(const double m[3][3])
{
    return m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
           m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
}

// Inverse by the adjugate: inv[j][i] = cofactor(i, j) / det.
void inverse3(const double m[3][3], double inv[3][3])
{
    const double det = det3(m);
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) {
            const int r0 = (i + 1) % 3, r1 = (i + 2) % 3, c0 = (j + 1) % 3, c1 = (j + 2) % 3;
            inv[j][i] = (m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0]) / det; // cyclic order carries the sign
        }
}

struct HandProblem {
    std::vector<double> x{0, 0.5, 1};
    std::vector<double> y{1, 3, -0.5};
    double l = 0.3, sf = 1.2, sn = 0.1;
    double mean = 0, std = 0;
    std::vector<double> yn;
    double K[3][3], Kinv[3][3];

    explicit HandProblem(double noise = 0.1) : sn(noise)
    {
        mean = (y[0] + y[1] + y[2]) / 3;
        std = std::sqrt(((y[0] - mean) * (y[0] - mean) + (y[1] - mean) * (y[1] - mean) +
                         (y[2] - mean) * (y[2] - mean)) / 2);
        for (double v : y)
            yn.push_back((v - mean) / std);
        for (int i = 0; i < 3; ++i)
            for (int j = 0; j < 3; ++j)
                K[i][j] = matern(x[size_t(i)], x[size_t(j)], l, sf) + (i == j ? sn * sn : 0);
        inverse3(K, Kinv);
    }
    Matrix X() const { return {{x[0]}, {x[1]}, {x[2]}}; }
    GpHyperparameters h() const { return {{std::log(l)}, std::log(sf), std::log(sn)}; }

    // Posterior mean and variance in output units at xs.
    std::pair<double, double> posterior(double xs) const
    {
        double k[3], Kk[3] = {0, 0, 0}, m = 0, quad = 0;
        for (int i = 0; i < 3; ++i)
            k[i] = matern(xs, x[size_t(i)], l, sf);
        for (int i = 0; i < 3; ++i)
            for (int j = 0; j < 3; ++j)
                Kk[i] += Kinv[i][j] * k[j];
        for (int i = 0; i < 3; ++i) {
            double alpha = 0;
            for (int j = 0; j < 3; ++j)
                alpha += Kinv[i][j] * yn[size_t(j)];
            m += k[i] * alpha;
            quad += k[i] * Kk[i];
        }
        return {m * std + mean, (sf * sf - quad) * std * std};
    }

    double logLikelihood() const
    {
        double quad = 0;
        for (int i = 0; i < 3; ++i)
            for (int j = 0; j < 3; ++j)
                quad += yn[size_t(i)] * Kinv[i][j] * yn[size_t(j)];
        return -0.5 * quad - 0.5 * std::log(det3(K)) - 1.5 * std::log(2 * M_PI);
    }
};

Matrix randomInputs(std::mt19937_64& gen, size_t n, size_t d)
{
    std::uniform_real_distribution<double> u(0, 1);
    Matrix X(n, std::vector<double>(d));
    for (auto& row : X)
        for (double& v : row)
            v = u(gen);
    return X;
}

double twoDimensional(const std::vector<double>& x) { return std::sin(3 * x[0]) + std::cos(4 * x[1]); }

std::vector<double> normalised(const std::vector<double>& y)
{
    double m = 0, ss = 0;
    for (double v : y)
        m += v;
    m /= double(y.size());
    for (double v : y)
        ss += (v - m) * (v - m);
    const double s = std::sqrt(ss / double(y.size() - 1));
    std::vector<double> yn;
    for (double v : y)
        yn.push_back((v - m) / s);
    return yn;
}

double sampleStd(const std::vector<double>& y)
{
    double m = 0, ss = 0;
    for (double v : y)
        m += v;
    m /= double(y.size());
    for (double v : y)
        ss += (v - m) * (v - m);
    return std::sqrt(ss / double(y.size() - 1));
}

template <class F>
double medianMs(int repeats, F&& f)
{
    std::vector<double> ms;
    for (int i = 0; i < repeats; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        f();
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
}

} // namespace

class TestGp : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void handPosterior()
    {
        const HandProblem p;
        GaussianProcess gp;
        gp.condition(p.X(), p.y, p.h());
        QVERIFY(std::abs(gp.outputMean() - p.mean) < 1e-15);
        QVERIFY(std::abs(gp.outputStd() - p.std) < 1e-15);
        const GpPrediction pred = gp.predict({{0.25}, {0.9}});
        QCOMPARE(pred.mean.size(), size_t(2));
        QCOMPARE(pred.variance.size(), size_t(2));
        for (size_t i = 0; i < 2; ++i) {
            const auto [mean, variance] = p.posterior(i == 0 ? 0.25 : 0.9);
            QVERIFY2(std::abs(pred.mean[i] - mean) < 1e-9,
                     qPrintable(QString("mean %1 vs %2").arg(pred.mean[i], 0, 'g', 17).arg(mean, 0, 'g', 17)));
            QVERIFY2(std::abs(pred.variance[i] - variance) < 1e-9,
                     qPrintable(QString("var %1 vs %2").arg(pred.variance[i], 0, 'g', 17).arg(variance, 0, 'g', 17)));
        }
        // Far from the data: the prior (mean of the outputs, variance sf^2 std^2).
        const GpPrediction far = gp.predict({{40.0}});
        QVERIFY(std::abs(far.mean[0] - p.mean) < 1e-12);
        QVERIFY(std::abs(far.variance[0] - p.sf * p.sf * p.std * p.std) < 1e-12);
        QVERIFY(gp.predict({}).mean.empty());
    }

    void handLikelihood()
    {
        const HandProblem p;
        GaussianProcess gp;
        gp.condition(p.X(), p.y, p.h());
        const double expected = p.logLikelihood();
        QVERIFY2(std::abs(gp.logMarginalLikelihood() - expected) < 1e-9,
                 qPrintable(QString("%1 vs %2").arg(gp.logMarginalLikelihood(), 0, 'g', 17).arg(expected, 0, 'g', 17)));
        QVERIFY(std::abs(GaussianProcess::logMarginalLikelihood(p.X(), p.yn, p.h()) - expected) < 1e-9);
    }

    void interpolation()
    {
        const HandProblem p(1e-4);
        GaussianProcess gp;
        gp.condition(p.X(), p.y, p.h());
        const GpPrediction pred = gp.predict(p.X());
        for (size_t i = 0; i < 3; ++i) {
            QVERIFY2(std::abs(pred.mean[i] - p.y[i]) < 1e-6, qPrintable(QString::number(pred.mean[i] - p.y[i])));
            QVERIFY(pred.variance[i] >= 0 && pred.variance[i] < 1e-6);
        }
    }

    void gradient()
    {
        std::mt19937_64 gen(11);
        std::normal_distribution<double> normal;
        std::uniform_real_distribution<double> u(-1.5, 0.5);
        for (int trial = 0; trial < 4; ++trial) {
            const Matrix X = randomInputs(gen, 8, 2);
            std::vector<double> yn(8);
            for (double& v : yn)
                v = normal(gen);
            GpHyperparameters h{{u(gen), u(gen)}, u(gen) + 0.5, u(gen) - 0.5};
            std::vector<double> grad;
            const double lml = GaussianProcess::logMarginalLikelihood(X, yn, h, &grad);
            QVERIFY(std::isfinite(lml));
            QCOMPARE(grad.size(), size_t(4));
            auto param = [&](GpHyperparameters& hh, size_t j) -> double& {
                return j < 2 ? hh.logLengthscales[j] : (j == 2 ? hh.logSignalStd : hh.logNoiseStd);
            };
            for (size_t j = 0; j < 4; ++j) {
                const double step = 1e-5;
                GpHyperparameters plus = h, minus = h;
                param(plus, j) += step;
                param(minus, j) -= step;
                const double fd = (GaussianProcess::logMarginalLikelihood(X, yn, plus) -
                                   GaussianProcess::logMarginalLikelihood(X, yn, minus)) / (2 * step);
                QVERIFY2(std::abs(grad[j] - fd) <= 1e-5 * std::max({std::abs(fd), std::abs(grad[j]), 1e-2}),
                         qPrintable(QString("trial %1 parameter %2: analytic %3, central differences %4")
                                        .arg(trial).arg(j).arg(grad[j], 0, 'g', 12).arg(fd, 0, 'g', 12)));
            }
        }
    }

    void fit()
    {
        std::mt19937_64 gen(5);
        const Matrix X = randomInputs(gen, 30, 5);
        std::vector<double> y;
        for (const auto& x : X)
            y.push_back(twoDimensional(x));
        GpFitOptions options;
        options.seed = 1;
        GaussianProcess gp;
        gp.fit(X, y, options);
        const GpHyperparameters& h = gp.hyperparameters();
        QCOMPARE(h.logLengthscales.size(), size_t(5));
        std::vector<double> l;
        for (double v : h.logLengthscales)
            l.push_back(std::exp(v));
        qInfo("fitted length scales %.3g %.3g %.3g %.3g %.3g, sf %.3g, sn %.3g, LML %.4f, %d evaluations", l[0], l[1],
              l[2], l[3], l[4], std::exp(h.logSignalStd), std::exp(h.logNoiseStd), gp.logMarginalLikelihood(),
              gp.evaluations());
        QVERIFY(std::max(l[0], l[1]) < std::min({l[2], l[3], l[4]}));
        for (double v : l)
            QVERIFY(v >= options.minLengthscale * (1 - 1e-12) && v <= options.maxLengthscale * (1 + 1e-12));
        QVERIFY(std::exp(h.logNoiseStd) >= options.minNoiseStd * (1 - 1e-12));
        QVERIFY(std::exp(h.logSignalStd) <= options.maxSignalStd * (1 + 1e-12));

        // The optimum beats the default start and is what logMarginalLikelihood() reports.
        const std::vector<double> yn = normalised(y);
        const GpHyperparameters start{std::vector<double>(5, std::log(0.5)), 0, std::log(0.1)};
        QVERIFY(gp.logMarginalLikelihood() >= GaussianProcess::logMarginalLikelihood(X, yn, start));
        QVERIFY(std::abs(gp.logMarginalLikelihood() - GaussianProcess::logMarginalLikelihood(X, yn, h)) < 1e-9);

        // Deterministic for a seed.
        GaussianProcess again;
        again.fit(X, y, options);
        QCOMPARE(again.hyperparameters().logLengthscales, h.logLengthscales);
        QCOMPARE(again.hyperparameters().logSignalStd, h.logSignalStd);
        QCOMPARE(again.hyperparameters().logNoiseStd, h.logNoiseStd);
        QCOMPARE(again.evaluations(), gp.evaluations());

        // A warm start at the optimum cannot end lower.
        GpFitOptions warm = options;
        warm.restarts = 0;
        warm.warmStart = h;
        GaussianProcess warmed;
        warmed.fit(X, y, warm);
        QVERIFY(warmed.logMarginalLikelihood() >= gp.logMarginalLikelihood() - 1e-9);

        // Held out: once x2..x4 are found irrelevant the problem is a smooth noise-free 2-D interpolation from 30
        // points, whose error is set by the gaps between random points (~0.1 of the output std here); a GP that
        // has not learnt the relevance (isotropic, the default start's l = 0.5 in 5-D) sees 30 points spread
        // over 5 dimensions and errs ~0.5 std. The bound 0.2 std sits between with a factor of 2 on each side.
        const Matrix test = randomInputs(gen, 200, 5);
        std::vector<double> truth;
        for (const auto& x : test)
            truth.push_back(twoDimensional(x));
        const GpPrediction pred = gp.predict(test);
        double se = 0;
        for (size_t i = 0; i < test.size(); ++i) {
            se += (pred.mean[i] - truth[i]) * (pred.mean[i] - truth[i]);
            QVERIFY(pred.variance[i] >= 0);
        }
        const double rmse = std::sqrt(se / double(test.size()));
        GaussianProcess isotropic;
        isotropic.condition(X, y, start);
        const GpPrediction iso = isotropic.predict(test);
        double seIso = 0;
        for (size_t i = 0; i < test.size(); ++i)
            seIso += (iso.mean[i] - truth[i]) * (iso.mean[i] - truth[i]);
        qInfo("held-out RMSE %.4g (isotropic default start %.4g), output std %.4g", rmse,
              std::sqrt(seIso / double(test.size())), sampleStd(truth));
        QVERIFY(rmse < 0.2 * sampleStd(truth));
    }

    void singlePoint()
    {
        GaussianProcess gp;
        gp.fit({{0.3, 0.7}}, {2.5});
        QCOMPARE(gp.outputMean(), 2.5);
        QCOMPARE(gp.outputStd(), 1.0);
        const GpPrediction pred = gp.predict({{0.3, 0.7}, {50, -50}});
        QCOMPARE(pred.mean[0], 2.5);
        QCOMPARE(pred.mean[1], 2.5);
        const double sf2 = std::exp(2 * gp.hyperparameters().logSignalStd);
        QVERIFY(std::abs(pred.variance[1] - sf2) < 1e-15);
        QVERIFY(pred.variance[0] < sf2);

        GaussianProcess conditioned;
        const GpHyperparameters h{{std::log(0.5), std::log(0.5)}, std::log(2.0), std::log(0.5)};
        conditioned.condition({{0.3, 0.7}}, {-1.0}, h);
        const GpPrediction c = conditioned.predict({{0.3, 0.7}});
        QVERIFY(std::abs(c.variance[0] - (4 - 16 / 4.25)) < 1e-12);
        QVERIFY(std::abs(conditioned.logMarginalLikelihood() - (-0.5 * std::log(4.25) - 0.5 * std::log(2 * M_PI))) <
                1e-12);

        // Equal outputs: std 1, the mean everywhere.
        GaussianProcess flat;
        flat.fit({{0.1}, {0.5}, {0.9}}, {3, 3, 3});
        QCOMPARE(flat.outputStd(), 1.0);
        const GpPrediction f = flat.predict({{0.2}, {0.7}});
        QVERIFY(std::abs(f.mean[0] - 3) < 1e-12 && std::abs(f.mean[1] - 3) < 1e-12);
    }

    void duplicatePoints()
    {
        // Repeated inputs with conflicting outputs and (almost) no noise make K_y singular to working precision:
        // the jitter must rescue the factorisation, and the mean at the repeated input is the outputs' average.
        const Matrix X{{0.2}, {0.2}, {0.2}, {0.8}};
        const std::vector<double> y{1, 2, 3, 5};
        GaussianProcess gp;
        gp.condition(X, y, GpHyperparameters{{std::log(0.3)}, 0, -40});
        QVERIFY(std::isfinite(gp.logMarginalLikelihood()));
        const GpPrediction pred = gp.predict({{0.2}, {0.8}, {0.5}});
        for (size_t i = 0; i < 3; ++i)
            QVERIFY(std::isfinite(pred.mean[i]) && std::isfinite(pred.variance[i]) && pred.variance[i] >= 0);
        QVERIFY(std::abs(pred.mean[0] - 2) < 1e-3);
        QVERIFY(std::abs(pred.mean[1] - 5) < 1e-3);

        GaussianProcess fitted;
        fitted.fit(X, y);
        QVERIFY(std::isfinite(fitted.logMarginalLikelihood()));
    }

    void badInput()
    {
        const GpHyperparameters h1{{0.0}, 0, -2};
        GaussianProcess gp;
        VERIFY_THROWS(ConfigError, gp.predict({{0.5}}), "fit()");
        VERIFY_THROWS(ConfigError, gp.fit({}, {}), "no rows");
        VERIFY_THROWS(ConfigError, gp.fit({{}, {}}, {1, 2}), "no features");
        VERIFY_THROWS(ConfigError, gp.fit({{0, 1}, {0}}, {1, 2}), "row 1", "1 features");
        VERIFY_THROWS(ConfigError, gp.fit({{0}, {1}}, {1}), "y has 1 values for 2 rows");
        VERIFY_THROWS(ConfigError, gp.fit({{0}, {std::nan("")}}, {1, 2}), "row 1", "non-finite");
        VERIFY_THROWS(ConfigError, gp.fit({{0}, {1}}, {1, std::nan("")}), "y[1]");
        VERIFY_THROWS(ConfigError, gp.fit({{0}, {1}}, {std::numeric_limits<double>::infinity(), 1}), "y[0]");
        VERIFY_THROWS(ConfigError, gp.condition({{0}, {1}}, {1, std::nan("")}, h1), "y[1]");
        VERIFY_THROWS(ConfigError, gp.condition({{0, 1}, {1, 0}}, {1, 2}, h1), "1 length scales for 2");
        VERIFY_THROWS(ConfigError, GaussianProcess::logMarginalLikelihood({{0}, {1}}, {1}, h1), "y has 1");
        GpHyperparameters nanH = h1;
        nanH.logNoiseStd = std::nan("");
        VERIFY_THROWS(ConfigError, gp.condition({{0}, {1}}, {1, 2}, nanH), "finite");

        GpFitOptions o;
        o.restarts = -1;
        VERIFY_THROWS(ConfigError, gp.fit({{0}, {1}}, {1, 2}, o), "restarts");
        o = {};
        o.minLengthscale = 0;
        VERIFY_THROWS(ConfigError, gp.fit({{0}, {1}}, {1, 2}, o), "length scale");
        o = {};
        o.minNoiseStd = 2;
        VERIFY_THROWS(ConfigError, gp.fit({{0}, {1}}, {1, 2}, o), "noise std");
        o = {};
        o.warmStart = GpHyperparameters{{0.0, 0.0}, 0, -2};
        VERIFY_THROWS(ConfigError, gp.fit({{0}, {1}}, {1, 2}, o), "warm start", "2 length scales for 1");

        gp.condition({{0}, {1}}, {1, 2}, h1);
        VERIFY_THROWS(ConfigError, gp.predict({{0.5, 0.5}}), "2 features", "training inputs 1");
        VERIFY_THROWS(ConfigError, gp.predict({{0.5}, {std::nan("")}}), "non-finite");
    }

    void timing()
    {
        for (size_t d : {13, 30}) {
            std::mt19937_64 gen(d);
            std::normal_distribution<double> noise(0, 0.05);
            const Matrix X = randomInputs(gen, 40, d);
            std::vector<double> y;
            for (const auto& x : X) {
                double v = 0;
                for (size_t i = 0; i < d; ++i)
                    v += std::sin(3 * x[i]) / double(i + 1);
                y.push_back(v + noise(gen));
            }
            GaussianProcess gp;
            const auto t0 = std::chrono::steady_clock::now();
            gp.fit(X, y);
            const double first =
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
            const double median = medianMs(7, [&] { gp.fit(X, y); });
            const Matrix pool = randomInputs(gen, 2000, d);
            const double predictMs = medianMs(7, [&] { (void)gp.predict(pool); });
            qInfo("n=40 d=%zu: fit() %.2f ms (first call %.2f ms, %d likelihood evaluations), predict(2000) %.2f ms",
                  d, median, first, gp.evaluations(), predictMs);
        }
    }
};

QTEST_GUILESS_MAIN(TestGp)
#include "test_gp.moc"

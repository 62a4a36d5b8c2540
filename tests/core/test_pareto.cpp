// Tests of the Pareto front and hypervolume (pareto.h) and the acquisition math (acquisition.h), all against
// independent brute force or numeric integration:
//   front           random point sets (ties, duplicates, NaN) against the O(n^2) definition of dominance
//   hypervolume     random sets against the area of the covered cells of the coordinate-compressed grid; the
//                   trace against hypervolume() of every prefix (exactly); hand examples
//   budget          bestWithinBudget's ties, NaN and boundary cases
//   normal          Phi and phi at known values
//   EI, SEI         against adaptive Simpson integration of the improvement times the normal density; closed
//                   form at a hand point; sd == 0, wy == 0, wy == 1, rho == 0
//   ParEGO          determinism, weights on the 1/divisions grid summing to 1, variety over iterations
#include "qpruner/error.h"
#include "qpruner/pareto.h"
#include "search/acquisition.h"

#include <QtTest/QtTest>

#include "test_data.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <set>

using qpruner::ObjectivePoint;
namespace search = qpruner::search;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

bool dominates(const ObjectivePoint& a, const ObjectivePoint& b)
{
    return a.memory <= b.memory && a.objective <= b.objective && (a.memory < b.memory || a.objective < b.objective);
}

std::vector<size_t> bruteFront(const std::vector<ObjectivePoint>& p)
{
    std::vector<size_t> front;
    for (size_t i = 0; i < p.size(); ++i) {
        if (std::isnan(p[i].memory) || std::isnan(p[i].objective))
            continue;
        bool keep = true;
        for (size_t j = 0; j < p.size() && keep; ++j) {
            if (std::isnan(p[j].memory) || std::isnan(p[j].objective))
                continue;
            if (dominates(p[j], p[i]))
                keep = false;
            if (j < i && p[j].memory == p[i].memory && p[j].objective == p[i].objective)
                keep = false;
        }
        if (keep)
            front.push_back(i);
    }
    std::sort(front.begin(), front.end(), [&](size_t a, size_t b) {
        return p[a].memory != p[b].memory ? p[a].memory < p[b].memory : p[a].objective < p[b].objective;
    });
    return front;
}

// The union of the rectangles [p, ref) on the grid of all coordinates: a cell is covered when some point lies
// at or below its lower-left corner.
double bruteHypervolume(const std::vector<ObjectivePoint>& p, ObjectivePoint ref)
{
    std::vector<ObjectivePoint> in;
    for (const ObjectivePoint& q : p)
        if (q.memory < ref.memory && q.objective < ref.objective)
            in.push_back(q);
    std::vector<double> xs{ref.memory}, ys{ref.objective};
    for (const ObjectivePoint& q : in) {
        xs.push_back(q.memory);
        ys.push_back(q.objective);
    }
    std::sort(xs.begin(), xs.end());
    xs.erase(std::unique(xs.begin(), xs.end()), xs.end());
    std::sort(ys.begin(), ys.end());
    ys.erase(std::unique(ys.begin(), ys.end()), ys.end());
    double area = 0;
    for (size_t a = 0; a + 1 < xs.size(); ++a)
        for (size_t b = 0; b + 1 < ys.size(); ++b) {
            bool covered = false;
            for (const ObjectivePoint& q : in)
                covered = covered || (q.memory <= xs[a] && q.objective <= ys[b]);
            if (covered)
                area += (xs[a + 1] - xs[a]) * (ys[b + 1] - ys[b]);
        }
    return area;
}

// Random sets that mix a coarse integer grid (duplicates, ties in one coordinate) with continuous points, some
// beyond the reference (10, 10).
std::vector<ObjectivePoint> randomPoints(uint64_t seed, size_t n)
{
    std::mt19937_64 gen(seed);
    std::uniform_real_distribution<double> cont(0.0, 12.0);
    std::uniform_int_distribution<int> grid(0, 11);
    std::vector<ObjectivePoint> p(n);
    for (ObjectivePoint& q : p) {
        switch (gen() % 3) {
        case 0: q = {double(grid(gen)), double(grid(gen))}; break;
        case 1: q = {cont(gen), cont(gen)}; break;
        default: q = {double(grid(gen)), cont(gen)}; break;
        }
    }
    return p;
}

bool closeRel(double a, double b, double rel)
{
    return std::abs(a - b) <= rel * std::max({std::abs(a), std::abs(b), 1e-300});
}

// Adaptive Simpson on [a, b], first split into `pieces` so narrow features are not missed.
double integrate(const std::function<double(double)>& f, double a, double b, int pieces = 64, double eps = 1e-14)
{
    std::function<double(double, double, double, double, double, double, int)> rec =
        [&](double l, double r, double fl, double fm, double fr, double whole, int depth) {
            const double m = 0.5 * (l + r), lm = 0.5 * (l + m), rm = 0.5 * (m + r);
            const double flm = f(lm), frm = f(rm);
            const double left = (m - l) / 6 * (fl + 4 * flm + fm), right = (r - m) / 6 * (fm + 4 * frm + fr);
            if (depth <= 0 || std::abs(left + right - whole) <= 15 * eps)
                return left + right + (left + right - whole) / 15;
            return rec(l, m, fl, flm, fm, left, depth - 1) + rec(m, r, fm, frm, fr, right, depth - 1);
        };
    double total = 0;
    const double h = (b - a) / pieces;
    for (int i = 0; i < pieces; ++i) {
        const double l = a + i * h, r = l + h, m = 0.5 * (l + r);
        const double fl = f(l), fm = f(m), fr = f(r);
        total += rec(l, r, fl, fm, fr, h / 6 * (fl + 4 * fm + fr), 40);
    }
    return total;
}

double gaussian(double y, double mean, double sd)
{
    const double z = (y - mean) / sd;
    return std::exp(-0.5 * z * z) / (sd * std::sqrt(2 * M_PI));
}

} // namespace

class TestPareto : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void frontAgainstBruteForce()
    {
        for (uint64_t seed = 1; seed <= 12; ++seed)
            for (size_t n : {0, 1, 2, 3, 5, 10, 25, 60}) {
                std::vector<ObjectivePoint> p = randomPoints(seed * 100 + n, n);
                if (seed % 3 == 0 && n > 2) {
                    p[1] = p[0];            // exact duplicate
                    p[n - 1] = {kNaN, 1.0}; // skipped
                    p.push_back({2.0, kNaN});
                }
                QCOMPARE(qpruner::paretoFront(p), bruteFront(p));
            }
    }

    void frontHandCases()
    {
        // (2,2) twice: only the first; (1,5) and (1,3): same memory, the lower objective wins; (4,2) is dominated
        // by (2,2) through a tie in the objective.
        const std::vector<ObjectivePoint> p{{2, 2}, {1, 5}, {2, 2}, {1, 3}, {4, 2}, {5, 1}, {0.5, 9}};
        QCOMPARE(qpruner::paretoFront(p), (std::vector<size_t>{6, 3, 0, 5}));
        QVERIFY(qpruner::paretoFront({}).empty());
        QCOMPARE(qpruner::paretoFront({{kNaN, kNaN}, {1, 1}}), (std::vector<size_t>{1}));
    }

    void hypervolumeAgainstBruteForce()
    {
        const ObjectivePoint ref{10, 10};
        for (uint64_t seed = 1; seed <= 12; ++seed)
            for (size_t n : {0, 1, 2, 3, 5, 10, 25, 60}) {
                const std::vector<ObjectivePoint> p = randomPoints(seed * 7919 + n, n);
                const double hv = qpruner::hypervolume(p, ref);
                const double expected = bruteHypervolume(p, ref);
                QVERIFY2(closeRel(hv, expected, 1e-12) || (hv == 0 && expected == 0),
                         qPrintable(QString("seed %1 n %2: %3 vs %4").arg(seed).arg(n).arg(hv).arg(expected)));
            }
    }

    void hypervolumeTraceIsPrefixHypervolume()
    {
        const ObjectivePoint ref{10, 10};
        for (uint64_t seed = 1; seed <= 12; ++seed)
            for (size_t n : {0, 1, 4, 17, 60}) {
                std::vector<ObjectivePoint> p = randomPoints(seed * 31 + n, n);
                if (n > 4)
                    p[3] = {kNaN, 0.0};
                const std::vector<double> trace = qpruner::hypervolumeTrace(p, ref);
                QCOMPARE(trace.size(), n);
                for (size_t i = 0; i < n; ++i) {
                    const std::vector<ObjectivePoint> prefix(p.begin(), p.begin() + long(i) + 1);
                    QCOMPARE(trace[i], qpruner::hypervolume(prefix, ref)); // the same sums, so exact
                    QVERIFY(i == 0 || trace[i] >= trace[i - 1]);
                }
            }
    }

    void hypervolumeHandCases()
    {
        const std::vector<ObjectivePoint> p{{1, 3}, {2, 2}, {3, 1}};
        QCOMPARE(qpruner::hypervolume(p, {4, 4}), 6.0);
        QCOMPARE(qpruner::hypervolumeTrace(p, {4, 4}), (std::vector<double>{3, 5, 6}));
        // On or beyond the reference adds nothing; a dominated point adds nothing; nothing gives 0.
        QCOMPARE(qpruner::hypervolume({{4, 1}, {1, 4}, {5, 5}}, {4, 4}), 0.0);
        QCOMPARE(qpruner::hypervolume({{1, 3}, {2, 2}, {3, 1}, {3, 3}, {2, 2}}, {4, 4}), 6.0);
        QCOMPARE(qpruner::hypervolume({}, {4, 4}), 0.0);
        QCOMPARE(qpruner::hypervolume({{0.5, 0.25}}, {1, 1}), 0.375);
        QCOMPARE(qpruner::hypervolumeTrace({{4, 1}, {3, 3}, {1, 1}, {2, 2}}, {4, 4}),
                 (std::vector<double>{0, 1, 9, 9}));
    }

    void bestWithinBudgetCases()
    {
        using qpruner::bestWithinBudget;
        QCOMPARE(bestWithinBudget({}, 10), -1L);
        QCOMPARE(bestWithinBudget({{11, 1}, {12, 0}}, 10), -1L);
        const std::vector<ObjectivePoint> p{{5, 3}, {8, 2}, {12, 1}, {6, 2}, {6, 2}, {kNaN, 0}, {1, kNaN}};
        QCOMPARE(bestWithinBudget(p, 100), 2L);
        QCOMPARE(bestWithinBudget(p, 12), 2L);     // memory == budget fits
        QCOMPARE(bestWithinBudget(p, 11.99), 3L);  // objective tie: less memory, then the lower index
        QCOMPARE(bestWithinBudget(p, 5.5), 0L);
        QCOMPARE(bestWithinBudget(p, 4), -1L);     // the NaN-objective point at memory 1 is skipped
    }

    void normalDistribution()
    {
        QCOMPARE(search::normalCdf(0), 0.5);
        QVERIFY(std::abs(search::normalCdf(1.96) - 0.9750021048517795) < 1e-15);
        QVERIFY(std::abs(search::normalCdf(-1.96) - (1 - 0.9750021048517795)) < 1e-15);
        QVERIFY(std::abs(search::normalPdf(0) - 0.3989422804014327) < 1e-16);
        QVERIFY(std::abs(search::normalPdf(1) - 0.24197072451914337) < 1e-16);
        QVERIFY(std::abs(search::normalCdf(-10) - 7.619853024160526e-24) < 1e-36);
    }

    void expectedImprovementAgainstIntegral()
    {
        struct Case {
            double mean, sd, best;
        };
        for (const Case& c : {Case{0, 1, 0}, Case{1, 0.5, 0.2}, Case{-2, 3, 1}, Case{5, 0.1, 5.3}, Case{0, 1, -3},
                              Case{0, 1, 4}, Case{100, 25, 80}}) {
            const double lo = c.mean - 12 * c.sd, hi = std::min(c.best, c.mean + 12 * c.sd);
            const double expected =
                lo < hi ? integrate([&](double y) { return (c.best - y) * gaussian(y, c.mean, c.sd); }, lo, hi) : 0;
            const double ei = search::expectedImprovement(c.mean, c.sd, c.best);
            QVERIFY2(std::abs(ei - expected) <= 1e-9 * std::max(expected, 1e-3 * c.sd),
                     qPrintable(QString("EI(%1, %2, %3) = %4, integral %5")
                                    .arg(c.mean).arg(c.sd).arg(c.best).arg(ei, 0, 'g', 17).arg(expected, 0, 'g', 17)));
            QCOMPARE(search::expectedShortfall(c.best, c.mean, c.sd), ei);
        }
        // Closed form at mean 1, sd 2, best 0: z = -0.5, 2 (z Phi(z) + phi(z)).
        const double hand = 2 * (-0.5 * 0.3085375387259869 + 0.3520653267642995);
        QVERIFY(std::abs(search::expectedImprovement(1, 2, 0) - hand) < 1e-14);
        QCOMPARE(search::expectedImprovement(1, 0, 3), 2.0);
        QCOMPARE(search::expectedImprovement(3, 0, 1), 0.0);
        QCOMPARE(search::expectedShortfall(3, 1, 0), 2.0);
        QVERIFY(search::expectedImprovement(0, 1, -40) >= 0);
    }

    void scalarizedExpectedImprovementAgainstIntegral()
    {
        struct Case {
            double wy, wm, rho, memory, mean, sd, best;
        };
        // s(kink) = (1 + rho) wm m: 0.21 for the first cases, so best 0.15 lies below the kink, 0.4 above it.
        const Case cases[] = {
            {0.5, 0.5, 0.05, 0.4, 0.3, 0.2, 0.15}, {0.5, 0.5, 0.05, 0.4, 0.3, 0.2, 0.4},
            {0.5, 0.5, 0.05, 0.4, 0.9, 0.1, 0.15}, {0.5, 0.5, 0.05, 0.4, -0.5, 0.5, 0.4},
            {0.3, 0.7, 0.05, 0.8, 0.6, 0.3, 0.5},  {0.3, 0.7, 0.05, 0.8, 0.6, 0.3, 0.62},
            {1.0, 0.0, 0.05, 0.8, 0.6, 0.3, 0.5},  {1.0, 0.0, 0.05, 0.8, -0.2, 0.3, 0.1},
            {0.5, 0.5, 0.0, 0.4, 0.3, 0.2, 0.15},  {0.5, 0.5, 0.0, 0.4, 0.3, 0.2, 0.4},
            {0.5, 0.5, 0.0, 0.4, 0.1, 0.2, 0.21},  {0.9, 0.1, 0.2, 0.5, 0.2, 1.0, 0.3},
        };
        for (const Case& c : cases) {
            const search::Scalarization s{c.wy, c.wm, c.rho};
            auto improvement = [&](double y) {
                return std::max(c.best - s.value(y, c.memory), 0.0) * gaussian(y, c.mean, c.sd);
            };
            const double expected = integrate(improvement, c.mean - 12 * c.sd, c.mean + 12 * c.sd, 256);
            const double sei = search::scalarizedExpectedImprovement(s, c.mean, c.sd, c.memory, c.best);
            QVERIFY2(std::abs(sei - expected) <= 1e-9 * std::max(expected, 1e-4),
                     qPrintable(QString("wy %1 rho %2 best %3: %4 vs %5")
                                    .arg(c.wy).arg(c.rho).arg(c.best).arg(sei, 0, 'g', 17).arg(expected, 0, 'g', 17)));
        }
        // wy == 0: s does not depend on y.
        const search::Scalarization memoryOnly{0, 1, 0.05};
        QCOMPARE(search::scalarizedExpectedImprovement(memoryOnly, 0.3, 0.5, 0.4, 0.5), 0.5 - 0.4 * 1.05);
        QCOMPARE(search::scalarizedExpectedImprovement(memoryOnly, 0.3, 0.5, 0.4, 0.3), 0.0);
        // sd == 0.
        const search::Scalarization s{0.5, 0.5, 0.05};
        QCOMPARE(search::scalarizedExpectedImprovement(s, 0.1, 0, 0.4, 0.5), 0.5 - s.value(0.1, 0.4));
        QCOMPARE(search::scalarizedExpectedImprovement(s, 0.9, 0, 0.4, 0.1), 0.0);
        // wy == 1, wm == 0, rho == 0 on positive outputs is plain EI.
        const search::Scalarization plain{1, 0, 0};
        QVERIFY(std::abs(search::scalarizedExpectedImprovement(plain, 30, 2, 0.4, 29) -
                         search::expectedImprovement(30, 2, 29)) < 1e-13);
        QCOMPARE(s.value(0.2, 0.6), std::max(0.1, 0.3) + 0.05 * (0.1 + 0.3));
    }

    void parEgoWeights()
    {
        std::set<int> seen;
        for (int it = 0; it < 200; ++it) {
            const search::Scalarization a = search::parEgoScalarization(42, it);
            const search::Scalarization b = search::parEgoScalarization(42, it);
            QCOMPARE(a.weightObjective, b.weightObjective);
            QCOMPARE(a.weightMemory, b.weightMemory);
            QCOMPARE(a.rho, 0.05);
            QVERIFY(a.weightObjective >= 0 && a.weightMemory >= 0);
            QVERIFY(std::abs(a.weightObjective + a.weightMemory - 1) < 1e-15);
            const double k = a.weightObjective * 10;
            QVERIFY(std::abs(k - std::round(k)) < 1e-12);
            QVERIFY(std::abs(a.weightMemory * 10 - (10 - std::round(k))) < 1e-12);
            seen.insert(int(std::round(k)));
        }
        QVERIFY2(seen.size() >= 8, qPrintable(QString("only %1 distinct weights").arg(seen.size())));

        // Other seeds give other sequences; divisions and rho are honoured.
        int differences = 0;
        for (int it = 0; it < 50; ++it)
            differences += search::parEgoScalarization(42, it).weightObjective !=
                           search::parEgoScalarization(43, it).weightObjective;
        QVERIFY(differences > 10);
        const search::Scalarization s = search::parEgoScalarization(7, 3, 4, 0.1);
        QCOMPARE(s.rho, 0.1);
        QVERIFY(std::abs(s.weightObjective * 4 - std::round(s.weightObjective * 4)) < 1e-12);
        const search::Scalarization one = search::parEgoScalarization(7, 3, 1);
        QVERIFY(one.weightObjective == 0 || one.weightObjective == 1);
        VERIFY_THROWS(qpruner::ConfigError, search::parEgoScalarization(1, 0, 0), "divisions");
        VERIFY_THROWS(qpruner::ConfigError, search::parEgoScalarization(1, 0, 10, -0.1), "rho");
    }
};

QTEST_GUILESS_MAIN(TestPareto)
#include "test_pareto.moc"

#include "search/acquisition.h"

#include "qpruner/error.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <string>

namespace qpruner::search {

double normalPdf(double z)
{
    constexpr double invSqrt2Pi = 0.3989422804014326779399460599343819;
    return invSqrt2Pi * std::exp(-0.5 * z * z);
}

double normalCdf(double z) { return 0.5 * std::erfc(-z * 0.7071067811865475244008443621048490); }

double expectedShortfall(double v, double mean, double sd)
{
    if (!(sd > 0))
        return std::max(v - mean, 0.0);
    const double z = (v - mean) / sd;
    // z Phi(z) + phi(z) > 0 always; rounding can make it slightly negative far in the lower tail.
    return std::max(sd * (z * normalCdf(z) + normalPdf(z)), 0.0);
}

double expectedImprovement(double mean, double sd, double best) { return expectedShortfall(best, mean, sd); }

double Scalarization::value(double y, double m) const
{
    const double a = weightObjective * y;
    const double b = weightMemory * m;
    return std::max(a, b) + rho * (a + b);
}

Scalarization parEgoScalarization(uint64_t seed, int iteration, int divisions, double rho)
{
    if (divisions < 1)
        throw ConfigError("parEgoScalarization: divisions must be >= 1, got " + std::to_string(divisions));
    if (!(rho >= 0))
        throw ConfigError("parEgoScalarization: rho must be >= 0, got " + std::to_string(rho));
    // splitmix64 of (seed, iteration), so neighbouring seeds and iterations give unrelated streams.
    uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (uint64_t(uint32_t(iteration)) + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    std::mt19937_64 generator(z);
    // Modulo bias is below 2^-50 for any sensible number of divisions.
    const uint64_t k = generator() % (uint64_t(divisions) + 1);
    Scalarization s;
    s.weightObjective = double(k) / divisions;
    s.weightMemory = double(uint64_t(divisions) - k) / divisions;
    s.rho = rho;
    return s;
}

double scalarizedExpectedImprovement(const Scalarization& s, double mean, double sd, double memory, double best)
{
    const double a = s.weightObjective;
    const double b = s.weightMemory * memory;
    if (a == 0 || !(sd > 0))
        return std::max(best - s.value(mean, memory), 0.0);
    // s(y) = (1 + rho) a y + rho b + a max(k - y, 0) with the kink k = b / a.
    const double rho = s.rho;
    const double kink = b / a;
    if (s.value(kink, memory) >= best) {
        // Only y below the kink can improve, where s(y) = rho a y + (1 + rho) b: a single shortfall term.
        if (rho * a == 0)
            return 0;
        const double y1 = (best - (1 + rho) * b) / (rho * a);
        return rho * a * expectedShortfall(y1, mean, sd);
    }
    // The improvement best - s(y) = (1 + rho) a (y2 - y) - a max(k - y, 0) for y < y2, with y2 > k.
    const double y2 = (best - rho * b) / ((1 + rho) * a);
    return std::max((1 + rho) * a * expectedShortfall(y2, mean, sd) - a * expectedShortfall(kink, mean, sd), 0.0);
}

} // namespace qpruner::search

// A known function over 12 binary search units, for the search's tests (test_search, test_strategies):
// f(x) = 1 + sum_u w_u [x_u = 0] + sum_{u<v} c_uv [x_u = 0][x_v = 0] (c = 0 when `additive`), unit u's expensive
// candidate (1) costing 1 + u % 3 bytes more than its cheap one (0), the budget fitting about half of them. At a
// fidelity f < 1 the score is perturbed by a fixed pseudo-random amount of size (1 - f) * noise (a cheap, noisy
// estimate of the same map). Minimised under the budget; optimum() finds the best feasible map by brute force.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "search/bayes_search.h"

namespace qpruner::testing {

struct SyntheticObjective {
    int units = 12;
    std::vector<double> w;
    std::vector<std::vector<double>> c;
    search::SearchSpace space;
    double noise = 0.3;

    explicit SyntheticObjective(uint64_t seed, bool additive = false)
    {
        std::mt19937_64 rng(seed);
        std::uniform_real_distribution<double> U(0, 1);
        w.resize(size_t(units));
        for (auto& x : w)
            x = std::pow(U(rng), 2) * 2;
        c.assign(size_t(units), std::vector<double>(size_t(units), 0));
        for (int a = 0; a < units; ++a)
            for (int b = a + 1; b < units; ++b)
                c[size_t(a)][size_t(b)] = !additive && U(rng) < 0.2 ? U(rng) * 0.5 : 0;
        space.units = units;
        space.candidates = {"lo", "hi"};
        space.position = {0, 1};
        for (int u = 0; u < units; ++u)
            space.unitBytes.push_back({10, 10 + 1 + u % 3});
        space.fixedBytes = 100;
        space.budgetBytes = space.minBytes() + 12; // about half the units can be "hi"
        const double mx = *std::max_element(w.begin(), w.end());
        for (double x : w)
            space.importance.push_back(x / mx);
    }
    double value(const search::Choice& x) const
    {
        double f = 1;
        for (int a = 0; a < units; ++a) {
            if (x[size_t(a)] == 0)
                f += w[size_t(a)];
            for (int b = a + 1; b < units; ++b)
                if (x[size_t(a)] == 0 && x[size_t(b)] == 0)
                    f += c[size_t(a)][size_t(b)];
        }
        return f;
    }
    double value(const search::Choice& x, double fidelity) const
    {
        if (fidelity >= 1)
            return value(x);
        uint64_t h = std::hash<std::string>()(space.encode(x)) ^ uint64_t(fidelity * 1e6);
        h = (h ^ (h >> 31)) * 0x9E3779B97F4A7C15ULL;
        const double u = double(h >> 11) / double(1ULL << 53); // [0, 1)
        return value(x) + (1 - fidelity) * noise * (2 * u - 1);
    }
    // The best feasible map by brute force, and how many maps are feasible.
    std::pair<std::string, int> optimum() const
    {
        double best = 1e300;
        std::string arg;
        int feasible = 0;
        for (int m = 0; m < (1 << units); ++m) {
            search::Choice x(static_cast<size_t>(units));
            for (int u = 0; u < units; ++u)
                x[size_t(u)] = (m >> u) & 1;
            if (!space.feasible(x))
                continue;
            ++feasible;
            if (const double v = value(x); v < best) {
                best = v;
                arg = space.encode(x);
            }
        }
        return {arg, feasible};
    }
};

} // namespace qpruner::testing

// Acquisition functions of the Bayesian search (torch-free scalar math). Everything is minimised.
#pragma once

#include <cstdint>

namespace qpruner::search {

double normalPdf(double z);
double normalCdf(double z);

// psi(v; mean, sd) = E[max(v - Y, 0)] for Y ~ N(mean, sd^2) = sd * (z Phi(z) + phi(z)), z = (v - mean) / sd;
// max(v - mean, 0) when sd == 0.
double expectedShortfall(double v, double mean, double sd);

// Expected improvement below the incumbent `best` for a minimised Y ~ N(mean, sd^2): E[max(best - Y, 0)].
double expectedImprovement(double mean, double sd, double best);

// ParEGO's augmented Chebyshev scalarisation of (objective y, memory m), both normalised to about [0, 1]:
// s(y, m) = max(wy * y, wm * m) + rho * (wy * y + wm * m), wy + wm = 1, wy, wm >= 0.
struct Scalarization {
    double weightObjective = 1;
    double weightMemory = 0;
    double rho = 0.05;
    double value(double y, double m) const;
};

// The weights of iteration `iteration`: wy = k / divisions with k drawn uniformly from 0..divisions by a
// generator seeded from (seed, iteration) (so a resumed or repeated search draws the same weights).
Scalarization parEgoScalarization(uint64_t seed, int iteration, int divisions = 10, double rho = 0.05);

// E[max(best - s(Y, m), 0)] for Y ~ N(mean, sd^2) and a memory m known exactly. s is increasing and piecewise
// linear in y (slope (1+rho) wy above the kink y = wm m / wy, rho wy below), so the expectation is a sum of
// expectedShortfall terms (closed form, no sampling). sd == 0 gives max(best - s(mean, m), 0). With wy == 0
// s does not depend on Y and the result is max(best - s, 0).
double scalarizedExpectedImprovement(const Scalarization& s, double mean, double sd, double memory, double best);

} // namespace qpruner::search

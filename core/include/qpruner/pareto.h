// Accuracy-memory trade-offs of a search: the Pareto front of trials and its hypervolume (2-D, both
// coordinates minimised: memory in bytes and the objective, e.g. perplexity). Torch-free, for the GUI's plots.
#pragma once

#include <cstddef>
#include <vector>

namespace qpruner {

struct ObjectivePoint {
    double memory = 0;    // minimised
    double objective = 0; // minimised
};

// Indices of the non-dominated points (no other point is <= in both coordinates and < in one), ordered by
// ascending memory (then objective). Of exact duplicates only the first index is kept. NaN points are skipped.
std::vector<size_t> paretoFront(const std::vector<ObjectivePoint>& points);

// The area dominated by the points and bounded above by `reference`: the measure of
// { z : some point p has p <= z (both coordinates) and z < reference }. Points not strictly below the
// reference in both coordinates add nothing; no points gives 0.
double hypervolume(const std::vector<ObjectivePoint>& points, ObjectivePoint reference);

// trace[i] = hypervolume(points[0..i], reference), in O(n log n) overall... or O(n^2) for small n; the
// result equals calling hypervolume() on each prefix.
std::vector<double> hypervolumeTrace(const std::vector<ObjectivePoint>& points, ObjectivePoint reference);

// Index of the point with the lowest objective among those with memory <= budget (ties: less memory, then
// the lower index); -1 when none fits.
long bestWithinBudget(const std::vector<ObjectivePoint>& points, double budget);

} // namespace qpruner

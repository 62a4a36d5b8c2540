#include "qpruner/pareto.h"

#include <algorithm>
#include <cmath>

namespace qpruner {

namespace {

bool valid(const ObjectivePoint& p) { return !std::isnan(p.memory) && !std::isnan(p.objective); }

bool inside(const ObjectivePoint& p, const ObjectivePoint& reference)
{
    return p.memory < reference.memory && p.objective < reference.objective;
}

// Area dominated by a front sorted by ascending memory (so strictly descending objective), every point strictly
// inside the reference. hypervolume() and hypervolumeTrace() both sum through here, so they agree exactly.
double frontArea(const std::vector<ObjectivePoint>& front, const ObjectivePoint& reference)
{
    double area = 0;
    for (size_t i = 0; i < front.size(); ++i) {
        const double nextMemory = i + 1 < front.size() ? front[i + 1].memory : reference.memory;
        area += (nextMemory - front[i].memory) * (reference.objective - front[i].objective);
    }
    return area;
}

} // namespace

std::vector<size_t> paretoFront(const std::vector<ObjectivePoint>& points)
{
    std::vector<size_t> order;
    order.reserve(points.size());
    for (size_t i = 0; i < points.size(); ++i)
        if (valid(points[i]))
            order.push_back(i);
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        if (points[a].memory != points[b].memory)
            return points[a].memory < points[b].memory;
        if (points[a].objective != points[b].objective)
            return points[a].objective < points[b].objective;
        return a < b;
    });
    // In this order a point is non-dominated iff its objective is strictly below every earlier one's: an earlier
    // point has less or equal memory, and an equal objective there means it dominates or duplicates this one.
    std::vector<size_t> front;
    for (size_t i : order)
        if (front.empty() || points[i].objective < points[front.back()].objective)
            front.push_back(i);
    return front;
}

double hypervolume(const std::vector<ObjectivePoint>& points, ObjectivePoint reference)
{
    std::vector<ObjectivePoint> inner;
    inner.reserve(points.size());
    for (const ObjectivePoint& p : points)
        if (valid(p) && inside(p, reference))
            inner.push_back(p);
    std::vector<ObjectivePoint> front;
    for (size_t i : paretoFront(inner))
        front.push_back(inner[i]);
    return frontArea(front, reference);
}

std::vector<double> hypervolumeTrace(const std::vector<ObjectivePoint>& points, ObjectivePoint reference)
{
    // The front of the prefix, kept sorted by ascending memory; each new point is inserted and the points it
    // dominates removed, then the area is summed again (O(front) per point).
    std::vector<ObjectivePoint> front;
    std::vector<double> trace;
    trace.reserve(points.size());
    double area = 0;
    for (const ObjectivePoint& p : points) {
        if (valid(p) && inside(p, reference)) {
            // First front point with memory > p.memory; the one before it (if any) has memory <= p.memory.
            auto it = std::upper_bound(front.begin(), front.end(), p.memory,
                                       [](double m, const ObjectivePoint& q) { return m < q.memory; });
            const bool dominated = it != front.begin() && std::prev(it)->objective <= p.objective;
            if (!dominated) {
                // Points with memory >= p.memory and objective >= p.objective are dominated by p. Those with
                // equal memory sit just before `it` (and have a larger objective, since p is not dominated).
                auto first = it;
                while (first != front.begin() && std::prev(first)->memory == p.memory)
                    --first;
                auto last = it;
                while (last != front.end() && last->objective >= p.objective)
                    ++last;
                first = front.erase(first, last);
                front.insert(first, p);
                area = frontArea(front, reference);
            }
        }
        trace.push_back(area);
    }
    return trace;
}

long bestWithinBudget(const std::vector<ObjectivePoint>& points, double budget)
{
    long best = -1;
    for (size_t i = 0; i < points.size(); ++i) {
        const ObjectivePoint& p = points[i];
        if (!valid(p) || !(p.memory <= budget))
            continue;
        if (best < 0) {
            best = long(i);
            continue;
        }
        const ObjectivePoint& b = points[size_t(best)];
        if (p.objective < b.objective || (p.objective == b.objective && p.memory < b.memory))
            best = long(i);
    }
    return best;
}

} // namespace qpruner

#include "importance/mutual_information.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "qpruner/error.h"

namespace qpruner::importance {

namespace {

// Plug-in entropy (bits) and the number of occupied cells of the labels.
std::pair<double, int64_t> plugIn(const std::vector<int64_t>& labels)
{
    std::unordered_map<int64_t, int64_t> counts;
    counts.reserve(labels.size());
    for (int64_t v : labels)
        ++counts[v];
    const double n = static_cast<double>(labels.size());
    double h = 0;
    for (const auto& [v, c] : counts) {
        const double p = static_cast<double>(c) / n;
        h -= p * std::log2(p);
    }
    return {h, static_cast<int64_t>(counts.size())};
}

double corrected(const std::pair<double, int64_t>& h, size_t n, bool millerMadow)
{
    return millerMadow ? h.first + static_cast<double>(h.second - 1) / (2.0 * static_cast<double>(n) * std::log(2.0))
                       : h.first;
}

} // namespace

double entropyBits(const std::vector<int64_t>& labels, bool millerMadow)
{
    if (labels.empty())
        throw ConfigError("entropy of an empty sample");
    return corrected(plugIn(labels), labels.size(), millerMadow);
}

double mutualInformationBits(const std::vector<int64_t>& x, const std::vector<int64_t>& y, bool millerMadow)
{
    if (x.size() != y.size() || x.empty())
        throw ConfigError("mutual information needs two samples of the same non-zero size, got " +
                          std::to_string(x.size()) + " and " + std::to_string(y.size()));
    // Joint labels: pair (x, y) mapped to a dense index.
    std::unordered_map<int64_t, int64_t> xi, yi;
    for (int64_t v : x)
        xi.try_emplace(v, static_cast<int64_t>(xi.size()));
    for (int64_t v : y)
        yi.try_emplace(v, static_cast<int64_t>(yi.size()));
    const auto ny = static_cast<int64_t>(yi.size());
    std::vector<int64_t> joint(x.size());
    for (size_t i = 0; i < x.size(); ++i)
        joint[i] = xi[x[i]] * ny + yi[y[i]];
    const size_t n = x.size();
    return corrected(plugIn(x), n, millerMadow) + corrected(plugIn(y), n, millerMadow) -
           corrected(plugIn(joint), n, millerMadow);
}

std::vector<int64_t> quantileBins(const float* values, int64_t n, int bins, int64_t stride)
{
    if (bins < 1 || n < 1)
        throw ConfigError("quantile binning needs at least one bin and one value (bins " + std::to_string(bins) +
                          ", values " + std::to_string(n) + ")");
    std::vector<float> sorted(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
        sorted[size_t(i)] = values[i * stride];
    std::sort(sorted.begin(), sorted.end());
    std::vector<float> edges;
    for (int j = 1; j < bins; ++j)
        edges.push_back(sorted[size_t(int64_t(j) * n / bins)]);
    std::vector<int64_t> out(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
        out[size_t(i)] = std::upper_bound(edges.begin(), edges.end(), values[i * stride]) - edges.begin();
    return out;
}

std::vector<int64_t> jointQuantileCells(const float* values, int64_t n, int k, int bins)
{
    std::vector<int64_t> cells(static_cast<size_t>(n), 0);
    int64_t scale = 1;
    for (int j = 0; j < k; ++j) {
        const auto b = quantileBins(values + j, n, bins, k);
        for (int64_t i = 0; i < n; ++i)
            cells[size_t(i)] += b[size_t(i)] * scale;
        scale *= bins;
    }
    return cells;
}

} // namespace qpruner::importance

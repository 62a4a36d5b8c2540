// The allocation stage (allocation.h): importance -> initial precision map under a memory budget. Everything
// works on a per-(searched layer, candidate) table of exact byte costs taken from memoryReport once per
// candidate; every returned map is re-measured with memoryReport and must agree with the table to the byte.
#include "qpruner/allocation.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <queue>
#include <random>
#include <set>
#include <stdexcept>

#include "qpruner/error.h"
#include "qpruner/memory_model.h"

namespace qpruner {

namespace {

const QuantSpec kBf16{QuantKind::BF16, 0, false};

// The problem reduced to a table. Searched layers are indexed i = 0..n-1 (ascending layer index), candidates
// c = 0..C-1 (sorted by their bytes over the searched layers).
struct Table {
    const ModelConfig* config = nullptr;
    PrecisionMap base;             // the base map without module overrides in searched layers
    std::vector<int> layers;       // searched layers, ascending
    std::vector<QuantSpec> cands;  // sorted
    std::vector<double> logBits;   // log2 code bits per candidate
    std::vector<std::vector<int64_t>> cost; // [i][c]: linear (+ bias) bytes of searched layer i in candidate c
    std::vector<double> importance; // s~ per searched layer
    std::vector<double> weight;     // s~ + eps per searched layer
    bool limitsTotal = true;        // the budget limits totalBytes (else linearBytes)
    int64_t fixedBytes = 0;         // budgeted bytes that do not depend on the searched layers' formats
    int64_t budget = 0;             // limit on budgeted bytes
    MemoryBudget budgetSpec;
    int64_t linearParameters = 0;   // for bpw conversions
    int64_t bf16TotalBytes = 0;     // for fraction conversions

    size_t n() const { return layers.size(); }
    size_t numCands() const { return cands.size(); }

    int64_t bytesOf(const std::vector<int>& choice) const
    {
        int64_t b = fixedBytes;
        for (size_t i = 0; i < n(); ++i)
            b += cost[i][static_cast<size_t>(choice[i])];
        return b;
    }
};

int64_t budgetedOf(const MemoryReport& r, bool limitsTotal) { return limitsTotal ? r.totalBytes : r.linearBytes; }

int64_t floorLimit(long double v)
{
    if (!(v < 9.0e18L))
        return std::numeric_limits<int64_t>::max();
    return static_cast<int64_t>(std::floor(v));
}

// x rounded up at the 4th decimal, without trailing zeros: 4.53125 -> "4.5313", 4.5 -> "4.5".
std::string ceilText(long double x)
{
    const long double y = std::ceil(x * 1e4L - 1e-6L) / 1e4L;
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.4Lf", y);
    std::string s = buf;
    while (!s.empty() && s.back() == '0')
        s.pop_back();
    if (!s.empty() && s.back() == '.')
        s.pop_back();
    return s;
}

// `bytes` of budgeted memory in the budget's own unit.
std::string inUnit(const Table& t, int64_t bytes)
{
    switch (t.budgetSpec.unit) {
    case BudgetUnit::Bytes: return std::to_string(bytes) + " B";
    case BudgetUnit::BitsPerWeight:
        return ceilText(8.0L * static_cast<long double>(bytes) / static_cast<long double>(t.linearParameters)) +
               " bpw";
    case BudgetUnit::Fraction:
        return ceilText(static_cast<long double>(bytes) / static_cast<long double>(t.bf16TotalBytes)) + "x";
    }
    return std::to_string(bytes);
}

PrecisionMap withSearched(const PrecisionMap& base, const std::vector<int>& layers, const std::vector<QuantSpec>& specs)
{
    PrecisionMap m = base;
    for (size_t i = 0; i < layers.size(); ++i)
        m.setLayer(layers[i], specs[i]);
    return m;
}

// The most frequent format among a layer's seven linears (ties: the first in module order).
QuantSpec representative(const LayerSpecs& specs)
{
    QuantSpec best = specs[0];
    int bestCount = 0;
    for (const QuantSpec& s : specs) {
        const int count = static_cast<int>(std::count(specs.begin(), specs.end(), s));
        if (count > bestCount) {
            best = s;
            bestCount = count;
        }
    }
    return best;
}

double log2Bits(const QuantSpec& s) { return std::log2(static_cast<double>(s.codeBits())); }

// A map with the searched layers in `specs`, measured by the memory model. `predicted` (>= 0) is the table's
// byte count, which must agree exactly.
Allocation makeAllocation(const Table& t, const std::vector<QuantSpec>& specs, int64_t predicted)
{
    Allocation a;
    a.map = withSearched(t.base, t.layers, specs);
    const MemoryReport r = memoryReport(*t.config, a.map);
    a.budgetedBytes = budgetedOf(r, t.limitsTotal);
    if (predicted >= 0 && predicted != a.budgetedBytes)
        throw std::logic_error("allocation: the cost table predicts " + std::to_string(predicted) +
                               " bytes but the memory model measures " + std::to_string(a.budgetedBytes));
    a.totalBytes = r.totalBytes;
    a.linearBitsPerWeight = r.linearBitsPerWeight;
    a.layerSpecs.reserve(r.layers.size());
    for (const LayerMemory& l : r.layers)
        a.layerSpecs.push_back(representative(l.specs));
    for (size_t i = 0; i < t.n(); ++i) {
        a.layerSpecs[static_cast<size_t>(t.layers[i])] = specs[i];
        a.objective += t.weight[i] * log2Bits(specs[i]);
    }
    return a;
}

Allocation makeAllocation(const Table& t, const std::vector<int>& choice)
{
    std::vector<QuantSpec> specs;
    specs.reserve(choice.size());
    for (int c : choice)
        specs.push_back(t.cands[static_cast<size_t>(c)]);
    return makeAllocation(t, specs, t.bytesOf(choice));
}

// Per searched layer, its cheapest candidate (ties: more bits, then the earlier candidate).
std::vector<int> cheapestChoice(const Table& t)
{
    std::vector<int> choice(t.n(), 0);
    for (size_t i = 0; i < t.n(); ++i)
        for (size_t c = 1; c < t.numCands(); ++c) {
            const size_t b = static_cast<size_t>(choice[i]);
            if (t.cost[i][c] < t.cost[i][b] || (t.cost[i][c] == t.cost[i][b] && t.logBits[c] > t.logBits[b]))
                choice[i] = static_cast<int>(c);
        }
    return choice;
}

// ---------------------------------------------------------------------------------------------------------
// Validation and the cost table

void check(bool ok, const std::string& message)
{
    if (!ok)
        throw ConfigError("allocation: " + message);
}

Table buildTable(const AllocationProblem& p, const AllocationOptions& o)
{
    p.config.validate();
    const int numLayers = p.config.numLayers();
    check(p.importance.size() == static_cast<size_t>(numLayers),
          "importance has " + std::to_string(p.importance.size()) +
              " values, expected one per decoder layer (" + std::to_string(numLayers) + ")");
    for (size_t l = 0; l < p.importance.size(); ++l) {
        const double s = p.importance[l];
        check(!std::isnan(s), "importance[" + std::to_string(l) + "] is not a number");
        check(s >= 0 && s <= 1, "importance[" + std::to_string(l) + "] = " + std::to_string(s) +
                                    " is outside [0, 1] (expected normalised importance)");
    }
    Table t;
    t.config = &p.config;
    if (p.layers.empty()) {
        t.layers.resize(static_cast<size_t>(numLayers));
        std::iota(t.layers.begin(), t.layers.end(), 0);
    } else {
        std::set<int> seen;
        for (int l : p.layers) {
            check(l >= 0 && l < numLayers, "layer " + std::to_string(l) + " is out of range (the model has " +
                                               std::to_string(numLayers) + " decoder layers: 0.." +
                                               std::to_string(numLayers - 1) + ")");
            check(seen.insert(l).second, "layer " + std::to_string(l) + " is listed twice");
        }
        t.layers.assign(seen.begin(), seen.end());
    }
    std::vector<QuantSpec> cands = p.candidates;
    if (cands.empty())
        cands = {parseQuantSpec("nf4"), parseQuantSpec("int8"), kBf16};
    for (size_t a = 0; a < cands.size(); ++a)
        for (size_t b = a + 1; b < cands.size(); ++b)
            check(!(cands[a] == cands[b]), "candidate " + cands[a].name() + " is listed twice");

    const MemoryBudget& budget = p.budget;
    check(std::isfinite(budget.value) && budget.value > 0,
          "budget must be a positive finite value, got " + std::to_string(budget.value));
    check(o.samples >= 0, "the number of samples must be >= 0, got " + std::to_string(o.samples));
    check(std::isfinite(o.temperature) && o.temperature > 0,
          "temperature must be positive, got " + std::to_string(o.temperature));
    check(std::isfinite(o.repairSlack) && o.repairSlack >= 0,
          "repair slack must be >= 0, got " + std::to_string(o.repairSlack));
    check(std::isfinite(o.epsilon) && o.epsilon >= 0, "epsilon must be >= 0, got " + std::to_string(o.epsilon));

    p.base.validate(p.config);
    t.base = p.base;
    for (int l : t.layers)
        for (LinearModule m : kLinearModules)
            t.base.setLayerModule(l, m, std::nullopt);
    t.limitsTotal = budget.unit != BudgetUnit::BitsPerWeight;
    t.budgetSpec = budget;
    for (int l : t.layers) {
        t.importance.push_back(p.importance[static_cast<size_t>(l)]);
        t.weight.push_back(p.importance[static_cast<size_t>(l)] + o.epsilon);
    }

    // One memory report per candidate: every searched layer in it.
    const size_t n = t.n(), numC = cands.size();
    std::vector<std::vector<int64_t>> cost(n, std::vector<int64_t>(numC));
    std::vector<int64_t> fixed(numC);
    for (size_t c = 0; c < numC; ++c) {
        const std::vector<QuantSpec> all(n, cands[c]);
        const MemoryReport r = memoryReport(p.config, withSearched(t.base, t.layers, all));
        int64_t sum = 0;
        for (size_t i = 0; i < n; ++i) {
            const LayerMemory& lm = r.layers[static_cast<size_t>(t.layers[i])];
            cost[i][c] = lm.linearBytes + (t.limitsTotal ? lm.biasBytes : 0);
            sum += cost[i][c];
        }
        fixed[c] = budgetedOf(r, t.limitsTotal) - sum;
        if (c == 0)
            t.linearParameters = r.linearParameters;
        if (fixed[c] != fixed[0])
            throw std::logic_error("allocation: the fixed bytes depend on the searched layers' formats");
    }
    t.fixedBytes = fixed[0];

    // Candidates sorted by their bytes over the searched layers (ties: fewer bits, then the name).
    std::vector<int64_t> total(numC, 0);
    for (size_t c = 0; c < numC; ++c)
        for (size_t i = 0; i < n; ++i)
            total[c] += cost[i][c];
    std::vector<size_t> order(numC);
    std::iota(order.begin(), order.end(), size_t(0));
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        if (total[a] != total[b])
            return total[a] < total[b];
        if (cands[a].codeBits() != cands[b].codeBits())
            return cands[a].codeBits() < cands[b].codeBits();
        return cands[a].name() < cands[b].name();
    });
    t.cost.assign(n, std::vector<int64_t>(numC));
    for (size_t k = 0; k < numC; ++k) {
        t.cands.push_back(cands[order[k]]);
        t.logBits.push_back(log2Bits(cands[order[k]]));
        for (size_t i = 0; i < n; ++i)
            t.cost[i][k] = cost[i][order[k]];
    }

    t.bf16TotalBytes = memoryReport(p.config, PrecisionMap(kBf16)).totalBytes;
    switch (budget.unit) {
    case BudgetUnit::Bytes: t.budget = floorLimit(static_cast<long double>(budget.value)); break;
    case BudgetUnit::BitsPerWeight:
        t.budget = floorLimit(static_cast<long double>(budget.value) * static_cast<long double>(t.linearParameters) /
                              8.0L);
        break;
    case BudgetUnit::Fraction:
        t.budget = floorLimit(static_cast<long double>(budget.value) * static_cast<long double>(t.bf16TotalBytes));
        break;
    }
    return t;
}

// ---------------------------------------------------------------------------------------------------------
// Greedy

// The layer's upper convex hull over (bytes, weight * log2 bits): cheapest point first, dominated points
// removed, collinear points kept.
std::vector<int> hull(const Table& t, size_t i)
{
    std::vector<int> idx(t.numCands());
    std::iota(idx.begin(), idx.end(), 0);
    const auto value = [&](int c) { return t.weight[i] * t.logBits[static_cast<size_t>(c)]; };
    const auto cost = [&](int c) { return t.cost[i][static_cast<size_t>(c)]; };
    std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) {
        if (cost(a) != cost(b))
            return cost(a) < cost(b);
        return value(a) > value(b);
    });
    std::vector<int> undominated;
    for (int c : idx)
        if (undominated.empty() || value(c) > value(undominated.back()))
            undominated.push_back(c);
    std::vector<int> h;
    for (int c : undominated) {
        while (h.size() >= 2) {
            const int a = h[h.size() - 2], b = h.back();
            // b lies strictly below the segment a -> c: the slope increases at b, so b is not on the hull.
            using LD = long double;
            const LD left = LD(value(b) - value(a)) * LD(cost(c) - cost(b));
            const LD right = LD(value(c) - value(b)) * LD(cost(b) - cost(a));
            if (left < right)
                h.pop_back();
            else
                break;
        }
        h.push_back(c);
    }
    return h;
}

std::vector<int> runGreedy(const Table& t)
{
    const size_t n = t.n();
    std::vector<std::vector<int>> hulls(n);
    std::vector<size_t> pos(n, 0);
    std::vector<int> choice(n);
    for (size_t i = 0; i < n; ++i) {
        hulls[i] = hull(t, i);
        choice[i] = hulls[i][0];
    }
    int64_t used = t.bytesOf(choice);
    struct Step {
        double ratio;
        size_t layer;
    };
    const auto after = [](const Step& a, const Step& b) { // priority: larger ratio, then lower layer
        if (a.ratio != b.ratio)
            return a.ratio < b.ratio;
        return a.layer > b.layer;
    };
    std::priority_queue<Step, std::vector<Step>, decltype(after)> queue(after);
    const auto push = [&](size_t i) {
        if (pos[i] + 1 >= hulls[i].size())
            return;
        const size_t a = static_cast<size_t>(hulls[i][pos[i]]), b = static_cast<size_t>(hulls[i][pos[i] + 1]);
        const double gain = t.weight[i] * (t.logBits[b] - t.logBits[a]);
        queue.push({gain / static_cast<double>(t.cost[i][b] - t.cost[i][a]), i});
    };
    for (size_t i = 0; i < n; ++i)
        push(i);
    while (!queue.empty()) {
        const size_t i = queue.top().layer;
        queue.pop();
        const size_t a = static_cast<size_t>(hulls[i][pos[i]]), b = static_cast<size_t>(hulls[i][pos[i] + 1]);
        const int64_t extra = t.cost[i][b] - t.cost[i][a];
        if (used + extra > t.budget)
            continue; // never fits later either (the budget only fills up): the layer stays
        used += extra;
        ++pos[i];
        choice[i] = static_cast<int>(b);
        push(i);
    }
    return choice;
}

// ---------------------------------------------------------------------------------------------------------
// Probabilistic

class Distribution {
public:
    Distribution(const Table& t, double temperature) : t_(t), temperature_(temperature)
    {
        const auto [lo, hi] = std::minmax_element(t.logBits.begin(), t.logBits.end());
        for (double lb : t.logBits)
            position_.push_back(*hi > *lo ? (lb - *lo) / (*hi - *lo) : 1.0);
        bitOrder_.resize(t.numCands());
        std::iota(bitOrder_.begin(), bitOrder_.end(), 0);
        std::stable_sort(bitOrder_.begin(), bitOrder_.end(),
                         [&](int a, int b) { return t.logBits[size_t(a)] < t.logBits[size_t(b)]; });
    }

    // log P(c | i) for every searched layer i and candidate c at shift `delta`.
    std::vector<std::vector<double>> logProbabilities(double delta) const
    {
        std::vector<std::vector<double>> out(t_.n(), std::vector<double>(t_.numCands()));
        for (size_t i = 0; i < t_.n(); ++i) {
            const double target = std::clamp(t_.importance[i] + delta, 0.0, 1.0);
            double top = -std::numeric_limits<double>::infinity();
            for (size_t c = 0; c < t_.numCands(); ++c) {
                const double d = position_[c] - target;
                out[i][c] = -d * d / temperature_;
                top = std::max(top, out[i][c]);
            }
            double sum = 0;
            for (double a : out[i])
                sum += std::exp(a - top);
            const double logZ = top + std::log(sum);
            for (double& a : out[i])
                a -= logZ;
        }
        return out;
    }

    double expectedBytes(const std::vector<std::vector<double>>& logp) const
    {
        long double e = static_cast<long double>(t_.fixedBytes);
        for (size_t i = 0; i < t_.n(); ++i)
            for (size_t c = 0; c < t_.numCands(); ++c)
                e += static_cast<long double>(std::exp(logp[i][c])) * static_cast<long double>(t_.cost[i][c]);
        return static_cast<double>(e);
    }
    double expectedBytes(double delta) const { return expectedBytes(logProbabilities(delta)); }

    // The shift whose expected memory equals the budget (clamped to [-1, 1]). Non-decreasing in the budget:
    // two budgets take the same bisection steps until the larger one goes right where the smaller goes left.
    double calibrate() const
    {
        const double budget = static_cast<double>(t_.budget);
        if (expectedBytes(1.0) <= budget)
            return 1.0;
        if (expectedBytes(-1.0) > budget)
            return -1.0;
        double lo = -1.0, hi = 1.0; // E(lo) <= budget < E(hi)
        for (int it = 0; it < 200 && hi - lo > 0; ++it) {
            const double mid = lo + (hi - lo) / 2;
            if (mid <= lo || mid >= hi)
                break;
            if (expectedBytes(mid) <= budget)
                lo = mid;
            else
                hi = mid;
        }
        return lo;
    }

    // Inverse CDF with the candidates in increasing bits.
    int draw(const std::vector<double>& logp, double u) const
    {
        double acc = 0;
        for (int c : bitOrder_) {
            acc += std::exp(logp[size_t(c)]);
            if (u < acc)
                return c;
        }
        // Rounding left u above the last partial sum: the last candidate with non-zero probability.
        for (auto it = bitOrder_.rbegin(); it != bitOrder_.rend(); ++it)
            if (std::exp(logp[size_t(*it)]) > 0)
                return *it;
        return bitOrder_.back();
    }

    // The most probable candidate (ties: fewer bits).
    int mode(const std::vector<double>& logp) const
    {
        int best = bitOrder_.front();
        for (int c : bitOrder_)
            if (logp[size_t(c)] > logp[size_t(best)])
                best = c;
        return best;
    }

private:
    const Table& t_;
    double temperature_;
    std::vector<double> position_;
    std::vector<int> bitOrder_;
};

// A uniform double in [0, 1) from the top 53 bits (the same on every platform, unlike std::uniform_real_distribution).
double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

// Downgrades until the map fits: each step the (layer, cheaper candidate) that loses the least objective per
// byte saved (ties: the smaller step, then the lower layer). Always ends: every step saves bytes and the map
// with every layer at its cheapest candidate fits (checked before).
void repair(const Table& t, std::vector<int>& choice)
{
    int64_t bytes = t.bytesOf(choice);
    while (bytes > t.budget) {
        size_t bestLayer = 0;
        int bestCand = -1;
        double bestRatio = 0;
        int64_t bestSaved = 0;
        for (size_t i = 0; i < t.n(); ++i) {
            const size_t cur = static_cast<size_t>(choice[i]);
            for (size_t g = 0; g < t.numCands(); ++g) {
                const int64_t saved = t.cost[i][cur] - t.cost[i][g];
                if (saved <= 0)
                    continue;
                const double ratio = t.weight[i] * (t.logBits[cur] - t.logBits[g]) / static_cast<double>(saved);
                if (bestCand < 0 || ratio < bestRatio || (ratio == bestRatio && saved < bestSaved)) {
                    bestLayer = i;
                    bestCand = static_cast<int>(g);
                    bestRatio = ratio;
                    bestSaved = saved;
                }
            }
        }
        if (bestCand < 0)
            throw std::logic_error("allocation: repair found no downgrade although the map is over budget");
        choice[bestLayer] = bestCand;
        bytes -= bestSaved;
    }
}

double logProbabilityOf(const std::vector<std::vector<double>>& logp, const std::vector<int>& choice)
{
    double s = 0;
    for (size_t i = 0; i < choice.size(); ++i)
        s += logp[i][static_cast<size_t>(choice[i])];
    return s;
}

void runProbabilistic(const Table& t, const AllocationOptions& o, AllocationResult& result)
{
    const Distribution dist(t, o.temperature);
    result.shift = dist.calibrate();
    const auto logp = dist.logProbabilities(result.shift);
    result.expectedBytes = dist.expectedBytes(logp);

    std::vector<int> mode(t.n());
    for (size_t i = 0; i < t.n(); ++i)
        mode[i] = dist.mode(logp[i]);
    bool modeRepaired = false;
    if (t.bytesOf(mode) > t.budget) {
        repair(t, mode);
        modeRepaired = true;
    }
    result.mode = makeAllocation(t, mode);
    result.mode.logProbability = logProbabilityOf(logp, mode);
    result.mode.repaired = modeRepaired;
    result.best = result.mode;

    std::mt19937_64 rng(o.seed);
    const long double slack = static_cast<long double>(o.repairSlack) * static_cast<long double>(t.budget);
    for (int k = 0; k < o.samples; ++k) {
        std::vector<int> choice(t.n());
        for (size_t i = 0; i < t.n(); ++i)
            choice[i] = dist.draw(logp[i], uniform01(rng));
        const int64_t bytes = t.bytesOf(choice);
        bool repaired = false;
        if (bytes > t.budget) {
            if (static_cast<long double>(bytes - t.budget) > slack) {
                ++result.rejected;
                continue;
            }
            repair(t, choice);
            repaired = true;
        }
        Allocation a = makeAllocation(t, choice);
        a.logProbability = logProbabilityOf(logp, choice);
        a.repaired = repaired;
        a.draw = k;
        if (a.logProbability > result.best.logProbability)
            result.best = a;
        result.samples.push_back(std::move(a));
    }
}

// ---------------------------------------------------------------------------------------------------------
// Random

void runRandom(const Table& t, const AllocationOptions& o, AllocationResult& result)
{
    std::mt19937_64 rng(o.seed);
    const size_t numC = t.numCands();
    for (int k = 0; k < o.samples; ++k) {
        std::vector<int> choice(t.n());
        for (size_t i = 0; i < t.n(); ++i)
            choice[i] = static_cast<int>(std::min(numC - 1, static_cast<size_t>(uniform01(rng) * double(numC))));
        if (t.bytesOf(choice) > t.budget) {
            ++result.rejected;
            continue;
        }
        Allocation a = makeAllocation(t, choice);
        a.draw = k;
        result.samples.push_back(std::move(a));
    }
    if (result.samples.empty())
        throw ConfigError("allocation: none of the " + std::to_string(o.samples) +
                          " random maps fits the budget " + t.budgetSpec.text() + " (the smallest feasible is " +
                          inUnit(t, result.minFeasibleBytes) + "); raise the number of samples or the budget");
    const Allocation* best = &result.samples.front();
    for (const Allocation& a : result.samples)
        if (a.budgetedBytes > best->budgetedBytes ||
            (a.budgetedBytes == best->budgetedBytes && a.objective > best->objective))
            best = &a;
    result.best = *best;
}

// ---------------------------------------------------------------------------------------------------------
// ap-ratio

std::vector<int> runApRatio(const Table& t, const AllocationOptions& o)
{
    const int numLayers = t.config->numLayers();
    const double lo = *std::min_element(t.logBits.begin(), t.logBits.end());
    const double hi = *std::max_element(t.logBits.begin(), t.logBits.end());
    std::vector<size_t> order(t.numCands()); // least to most precise
    std::iota(order.begin(), order.end(), size_t(0));
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return t.logBits[a] < t.logBits[b]; });
    auto at = [&](double c) {
        std::vector<int> choice(t.n());
        for (size_t i = 0; i < t.n(); ++i) {
            const double depth = numLayers > 1 ? double(t.layers[i]) / double(numLayers - 1) : 0.5;
            const double target = c + o.apSlope * (depth - 0.5);
            size_t pick = order.front();
            for (size_t k : order)
                if ((hi > lo ? (t.logBits[k] - lo) / (hi - lo) : 1.0) <= target + 1e-12)
                    pick = k;
            choice[i] = int(pick);
        }
        return choice;
    };
    double cLo = -std::abs(o.apSlope) - 1, cHi = std::abs(o.apSlope) + 2;
    if (t.bytesOf(at(cHi)) <= t.budget)
        return at(cHi);
    for (int i = 0; i < 60; ++i) {
        const double mid = 0.5 * (cLo + cHi);
        (t.bytesOf(at(mid)) <= t.budget ? cLo : cHi) = mid;
    }
    return at(cLo);
}

nlohmann::ordered_json allocationJson(const Allocation& a)
{
    nlohmann::ordered_json formats = nlohmann::ordered_json::array();
    for (const QuantSpec& s : a.layerSpecs)
        formats.push_back(s.name());
    return {{"formats", formats},
            {"map", a.map.toJson()},
            {"budgeted_bytes", a.budgetedBytes},
            {"total_bytes", a.totalBytes},
            {"linear_bits_per_weight", a.linearBitsPerWeight},
            {"objective", a.objective},
            {"log_probability", a.logProbability},
            {"repaired", a.repaired},
            {"draw", a.draw}};
}

} // namespace

nlohmann::ordered_json AllocationResult::toJson() const
{
    nlohmann::ordered_json candidateNames = nlohmann::ordered_json::array();
    for (const QuantSpec& s : candidates)
        candidateNames.push_back(s.name());
    nlohmann::ordered_json sampleJson = nlohmann::ordered_json::array();
    for (const Allocation& a : samples)
        sampleJson.push_back(allocationJson(a));
    nlohmann::ordered_json j;
    j["method"] = allocationMethodName(method);
    j["budget"] = budget.text();
    j["budget_bytes"] = budgetBytes;
    j["min_feasible_bytes"] = minFeasibleBytes;
    j["max_bytes"] = maxBytes;
    j["layers"] = layers;
    j["candidates"] = candidateNames;
    j["best"] = allocationJson(best);
    j["samples"] = sampleJson;
    j["rejected"] = rejected;
    j["shift"] = shift;
    j["expected_bytes"] = expectedBytes;
    j["mode"] = method == AllocationMethod::Probabilistic ? allocationJson(mode) : nlohmann::ordered_json();
    return j;
}

AllocationResult allocate(const AllocationProblem& problem, const AllocationOptions& options)
{
    const Table t = buildTable(problem, options);
    AllocationResult result;
    result.method = options.method;
    result.budget = problem.budget;
    result.budgetBytes = t.budget;
    result.layers = t.layers;
    result.candidates = t.cands;
    const std::vector<int> cheapest = cheapestChoice(t);
    result.minFeasibleBytes = t.bytesOf(cheapest);
    result.maxBytes = t.fixedBytes;
    for (size_t i = 0; i < t.n(); ++i)
        result.maxBytes += *std::max_element(t.cost[i].begin(), t.cost[i].end());

    if (options.method == AllocationMethod::Uniform) {
        const std::vector<QuantSpec> specs(t.n(), options.uniformFormat);
        result.best = makeAllocation(t, specs, -1);
        if (result.best.budgetedBytes > t.budget)
            throw ConfigError("allocation: uniform " + options.uniformFormat.name() + " needs " +
                              inUnit(t, result.best.budgetedBytes) + ", over the budget " + problem.budget.text() +
                              " (" + std::to_string(result.best.budgetedBytes) + " > " + std::to_string(t.budget) +
                              " bytes)");
        return result;
    }

    if (result.minFeasibleBytes > t.budget) {
        bool same = true;
        for (int c : cheapest)
            same = same && c == cheapest.front();
        const std::string how = same ? "every searched layer " + t.cands[static_cast<size_t>(cheapest.front())].name()
                                     : std::string("every searched layer at its cheapest candidate");
        throw ConfigError("budget " + problem.budget.text() + " is below the smallest feasible " +
                          inUnit(t, result.minFeasibleBytes) + " (" + how + ")");
    }
    switch (options.method) {
    case AllocationMethod::Greedy: result.best = makeAllocation(t, runGreedy(t)); break;
    case AllocationMethod::Probabilistic: runProbabilistic(t, options, result); break;
    case AllocationMethod::Random:
        if (options.samples < 1)
            throw ConfigError("allocation: the random method needs at least one sample");
        runRandom(t, options, result);
        break;
    case AllocationMethod::Uniform: break;
    case AllocationMethod::ApRatio: result.best = makeAllocation(t, runApRatio(t, options)); break;
    }
    return result;
}

} // namespace qpruner

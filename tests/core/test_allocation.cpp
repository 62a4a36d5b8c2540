// Tests of the allocation stage (allocation.h) and of the importance score files it reads
// (importance_scores.h). Everything is checked against the exact memory model (memoryReport of the returned
// maps) or against hand arithmetic for a stories260K-shaped model (D=64, 8 heads, 4 KV heads, head_dim 8,
// ffn 172, vocab 512): per layer 45,312 linear weights; bf16 90,624 bytes, int8 47,712, nf4 25,488.
//   parseBudget        every accepted form to its exact value, every rejection with its message
//   conversions        bpw and fraction budgets to bytes, smallest-feasible messages in each unit
//   feasibility        every method on many random (seeded) problems: within budget, bytes == memoryReport,
//                      searched layers in one candidate, everything else as in the base map
//   greedy             brute force on 3-6 layers: optimal at the breakpoints, within the largest hull-step gain
//                      elsewhere; monotone bytes/objective over budget sweeps, per-layer formats monotone over
//                      breakpoints; hand cases where a layer gets cheaper with a larger budget and where greedy
//                      is strictly suboptimal
//   probabilistic      calibration (expected bytes == budget, clamping), probabilities and log-probabilities,
//                      mode order by importance, seeds, repair/rejection bookkeeping, monotone shift and draws;
//                      the mode, draws, repairs, rejections and best map replayed from the header's recipe
//   uniform, random    exact bytes, errors, determinism
//   validation         every ConfigError of allocate()
//   importance scores  JSON and file round trips, normalisation, malformed files, absent metric
#include "qpruner/allocation.h"
#include "qpruner/error.h"
#include "qpruner/importance_scores.h"
#include "qpruner/memory_model.h"
#include "qpruner/precision_map.h"

#include <nlohmann/json.hpp>

#include <QTemporaryDir>
#include <QtTest/QtTest>

#include "test_data.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <map>
#include <random>
#include <set>

using qpruner::Allocation;
using qpruner::AllocationMethod;
using qpruner::AllocationOptions;
using qpruner::AllocationProblem;
using qpruner::AllocationResult;
using qpruner::BudgetUnit;
using qpruner::LinearModule;
using qpruner::MemoryBudget;
using qpruner::ModelConfig;
using qpruner::PrecisionMap;
using qpruner::testing::throwsWith;
using qpruner::QuantSpec;
using nlohmann::json;

namespace {

QuantSpec spec(const char* name) { return qpruner::parseQuantSpec(name); }

LinearModule moduleAt(uint64_t i) { return qpruner::kLinearModules[size_t(i % 7)]; }

ModelConfig tinyConfig(int layers = 2, bool tied = false)
{
    return qpruner::testing::storiesShapedConfig(layers, tied);
}

constexpr int64_t kTinyLinearParams = 64 * 64 + 32 * 64 + 32 * 64 + 64 * 64 + 172 * 64 + 172 * 64 + 64 * 172;
constexpr int64_t kTinyBf16Layer = 2 * kTinyLinearParams;                               // 90,624
constexpr int64_t kTinyInt8Layer = kTinyLinearParams + 4 * (64 + 32 + 32 + 64 + 172 + 172 + 64); // 47,712
constexpr int64_t kTinyNf4Layer = kTinyLinearParams / 2 + 4 * (kTinyLinearParams / 64);  // 25,488
constexpr int64_t kTinyEmbeddingBf16 = 512 * 64 * 2;


#define VERIFY_OK(msg)                                                                                    \
    do {                                                                                                 \
        const std::string m_ = (msg);                                                                    \
        QVERIFY2(m_.empty(), m_.c_str());                                                                \
    } while (0)

int64_t budgeted(const qpruner::MemoryReport& r, BudgetUnit unit)
{
    return unit == BudgetUnit::BitsPerWeight ? r.linearBytes : r.totalBytes;
}

int64_t bf16Total(const ModelConfig& c) { return qpruner::memoryReport(c, PrecisionMap(spec("bf16"))).totalBytes; }

// The limit on budgeted bytes, by the header's formulas.
int64_t expectedLimit(const AllocationProblem& p)
{
    const long double v = p.budget.value;
    switch (p.budget.unit) {
    case BudgetUnit::Bytes: return static_cast<int64_t>(std::floor(v));
    case BudgetUnit::BitsPerWeight:
        return static_cast<int64_t>(
            std::floor(v * static_cast<long double>(qpruner::memoryReport(p.config, p.base).linearParameters) / 8.0L));
    case BudgetUnit::Fraction:
        return static_cast<int64_t>(std::floor(v * static_cast<long double>(bf16Total(p.config))));
    }
    return -1;
}

std::vector<int> searchedLayers(const AllocationProblem& p)
{
    if (!p.layers.empty()) {
        std::vector<int> l = p.layers;
        std::sort(l.begin(), l.end());
        return l;
    }
    std::vector<int> l(static_cast<size_t>(p.config.numLayers()));
    for (size_t i = 0; i < l.size(); ++i)
        l[i] = static_cast<int>(i);
    return l;
}

double objectiveOf(const AllocationProblem& p, const std::vector<QuantSpec>& layerSpecs, double eps)
{
    double u = 0;
    for (int l : searchedLayers(p))
        u += (p.importance[static_cast<size_t>(l)] + eps) *
             std::log2(double(layerSpecs[static_cast<size_t>(l)].codeBits()));
    return u;
}

// Every invariant of one returned map, checked with the memory model. Empty when fine.
std::string checkAllocation(const AllocationProblem& p, const AllocationResult& r, const Allocation& a,
                            double eps, bool candidatesOnly = true)
{
    const auto rep = qpruner::memoryReport(p.config, a.map);
    const std::string where = " (" + r.budget.text() + ", " + qpruner::allocationMethodName(r.method) + ")";
    if (budgeted(rep, p.budget.unit) != a.budgetedBytes)
        return "budgetedBytes " + std::to_string(a.budgetedBytes) + " != memoryReport " +
               std::to_string(budgeted(rep, p.budget.unit)) + where;
    if (a.budgetedBytes > r.budgetBytes)
        return "over budget: " + std::to_string(a.budgetedBytes) + " > " + std::to_string(r.budgetBytes) + where;
    if (a.totalBytes != rep.totalBytes || a.linearBitsPerWeight != rep.linearBitsPerWeight)
        return "totalBytes/linearBitsPerWeight differ from memoryReport" + where;
    if (a.layerSpecs.size() != static_cast<size_t>(p.config.numLayers()))
        return "layerSpecs has the wrong size" + where;
    const auto resolved = a.map.resolve(p.config);
    const auto baseResolved = p.base.resolve(p.config);
    const std::vector<int> searched = searchedLayers(p);
    for (int l = 0; l < p.config.numLayers(); ++l) {
        const bool isSearched = std::find(searched.begin(), searched.end(), l) != searched.end();
        const auto& specs = resolved.layers[static_cast<size_t>(l)];
        if (isSearched) {
            for (const QuantSpec& s : specs)
                if (!(s == a.layerSpecs[static_cast<size_t>(l)]))
                    return "layer " + std::to_string(l) + " mixes formats" + where;
            if (candidatesOnly && std::find(r.candidates.begin(), r.candidates.end(),
                                            a.layerSpecs[static_cast<size_t>(l)]) == r.candidates.end())
                return "layer " + std::to_string(l) + " is not in a candidate" + where;
        } else if (specs != baseResolved.layers[static_cast<size_t>(l)]) {
            return "unsearched layer " + std::to_string(l) + " differs from the base map" + where;
        }
    }
    if (!(resolved.embedding == baseResolved.embedding) || !(resolved.lmHead == baseResolved.lmHead))
        return "embedding/lm_head differ from the base map" + where;
    if (std::abs(objectiveOf(p, a.layerSpecs, eps) - a.objective) > 1e-9)
        return "objective " + std::to_string(a.objective) + " != " + std::to_string(objectiveOf(p, a.layerSpecs, eps)) +
               where;
    return {};
}

// A random LLaMA-shaped config: 2..maxLayers layers, pruned (heterogeneous) shapes, sometimes tied, sometimes
// with q/k/v biases.
ModelConfig randomConfig(std::mt19937_64& rng, int minLayers, int maxLayers)
{
    ModelConfig c;
    c.hiddenSize = 64;
    c.headDim = 8;
    c.vocabSize = 96 + int(rng() % 400);
    c.maxSeqLen = 64;
    c.tiedEmbeddings = rng() % 2 == 0;
    c.attentionBias = rng() % 3 == 0;
    const int n = minLayers + int(rng() % uint64_t(maxLayers - minLayers + 1));
    for (int l = 0; l < n; ++l) {
        const int kv = 1 << int(rng() % 3);
        c.layers.push_back({kv * (1 + int(rng() % 2)), kv, 8 + int(rng() % 190)});
    }
    return c;
}

const std::vector<QuantSpec>& formatPool()
{
    static const std::vector<QuantSpec> pool = {spec("nf4"),  spec("nf4-dq"),    spec("int8"), spec("bf16"),
                                                spec("int4"), spec("int4-g128"), spec("int3"), spec("int2"),
                                                spec("fp16"), spec("fp32")};
    return pool;
}

// A random problem without its budget: random searched layers, candidates (2..4, sometimes the default),
// importance, and a base map with overrides everywhere (the searched layers' overrides must be dropped).
AllocationProblem randomProblem(std::mt19937_64& rng, int minLayers = 2, int maxLayers = 8)
{
    AllocationProblem p;
    p.config = randomConfig(rng, minLayers, maxLayers);
    const int n = p.config.numLayers();
    std::uniform_real_distribution<double> u01(0.0, 1.0);
    for (int l = 0; l < n; ++l)
        p.importance.push_back(rng() % 7 == 0 ? 0.0 : u01(rng));
    if (rng() % 2 == 0)
        for (int l = 0; l < n; ++l)
            if (rng() % 3 != 0)
                p.layers.push_back(l);
    if (rng() % 4 != 0) {
        std::vector<QuantSpec> pool = formatPool();
        std::shuffle(pool.begin(), pool.end(), rng);
        pool.resize(2 + rng() % 3);
        p.candidates = pool;
    }
    const auto& pool = formatPool();
    p.base = PrecisionMap(pool[rng() % pool.size()]);
    if (rng() % 2 == 0)
        p.base.setModuleDefault(LinearModule::Down, pool[rng() % pool.size()]);
    for (int l = 0; l < n; ++l) {
        if (rng() % 2 == 0)
            p.base.setLayer(l, pool[rng() % pool.size()]);
        if (rng() % 3 == 0)
            p.base.setLayerModule(l, moduleAt(rng()), pool[rng() % pool.size()]);
    }
    if (rng() % 3 == 0)
        p.base.setEmbedding(spec("fp32"));
    if (!p.config.tiedEmbeddings && rng() % 2 == 0)
        p.base.setLmHead(pool[rng() % pool.size()]);
    return p;
}

// Puts a budget of about `bytes` budgeted bytes into `p`, in a random unit.
void setBudget(AllocationProblem& p, std::mt19937_64& rng, int64_t bytes)
{
    switch (rng() % 3) {
    case 0: p.budget = {BudgetUnit::Bytes, double(bytes)}; break;
    case 1: {
        const auto r = qpruner::memoryReport(p.config, p.base);
        // A bpw budget limits linear bytes: rescale from total to linear bytes of the same map.
        const int64_t fixed = r.totalBytes - r.linearBytes;
        p.budget = {BudgetUnit::BitsPerWeight, 8.0 * double(std::max<int64_t>(1, bytes - fixed)) /
                                                   double(r.linearParameters)};
        break;
    }
    default: p.budget = {BudgetUnit::Fraction, double(bytes) / double(bf16Total(p.config))}; break;
    }
}

// Per searched layer and candidate (in `cands` order): the layer's cost in budgeted bytes, measured with maps
// that put every searched layer in one candidate; and the fixed rest.
struct Costs {
    std::vector<std::vector<int64_t>> cost;
    int64_t fixed = 0;
};
Costs measureCosts(const AllocationProblem& p, const std::vector<QuantSpec>& cands)
{
    const std::vector<int> layers = searchedLayers(p);
    Costs k;
    k.cost.assign(layers.size(), std::vector<int64_t>(cands.size()));
    for (size_t c = 0; c < cands.size(); ++c) {
        PrecisionMap m = p.base;
        for (int l : layers) {
            for (LinearModule mod : qpruner::kLinearModules)
                m.setLayerModule(l, mod, std::nullopt);
            m.setLayer(l, cands[c]);
        }
        const auto r = qpruner::memoryReport(p.config, m);
        int64_t sum = 0;
        for (size_t i = 0; i < layers.size(); ++i) {
            const auto& lm = r.layers[static_cast<size_t>(layers[i])];
            k.cost[i][c] = lm.linearBytes + (p.budget.unit == BudgetUnit::BitsPerWeight ? 0 : lm.biasBytes);
            sum += k.cost[i][c];
        }
        k.fixed = budgeted(r, p.budget.unit) - sum;
    }
    return k;
}

// The greedy's upgrade order, written from the header: per layer the upper hull of (bytes, w * log2 bits)
// (dominated points dropped, collinear kept), steps merged by gain per byte (ties: lower layer first).
struct Step {
    size_t layer;
    int to;
    int64_t extra;
    double gain;
    double ratio;
};
std::vector<Step> greedySteps(const Costs& k, const std::vector<double>& w, const std::vector<QuantSpec>& cands,
                              std::vector<int>* start)
{
    std::vector<Step> steps;
    start->assign(w.size(), 0);
    for (size_t i = 0; i < w.size(); ++i) {
        std::vector<int> idx(cands.size());
        for (size_t c = 0; c < cands.size(); ++c)
            idx[c] = int(c);
        const auto value = [&](int c) { return w[i] * std::log2(double(cands[size_t(c)].codeBits())); };
        const auto cost = [&](int c) { return k.cost[i][size_t(c)]; };
        std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) {
            return cost(a) != cost(b) ? cost(a) < cost(b) : value(a) > value(b);
        });
        std::vector<int> pts;
        for (int c : idx)
            if (pts.empty() || value(c) > value(pts.back()))
                pts.push_back(c);
        std::vector<int> h;
        for (int c : pts) {
            while (h.size() >= 2) {
                const int a = h[h.size() - 2], b = h.back();
                if ((long double)(value(b) - value(a)) * (long double)(cost(c) - cost(b)) <
                    (long double)(value(c) - value(b)) * (long double)(cost(b) - cost(a)))
                    h.pop_back();
                else
                    break;
            }
            h.push_back(c);
        }
        (*start)[i] = h[0];
        for (size_t s = 1; s < h.size(); ++s) {
            const double lbA = std::log2(double(cands[size_t(h[s - 1])].codeBits()));
            const double lbB = std::log2(double(cands[size_t(h[s])].codeBits()));
            const double gain = w[i] * (lbB - lbA);
            const int64_t extra = cost(h[s]) - cost(h[s - 1]);
            steps.push_back({i, h[s], extra, gain, gain / double(extra)});
        }
    }
    std::stable_sort(steps.begin(), steps.end(), [](const Step& a, const Step& b) {
        return a.ratio != b.ratio ? a.ratio > b.ratio : a.layer < b.layer;
    });
    return steps;
}

std::vector<double> weightsOf(const AllocationProblem& p, double eps)
{
    std::vector<double> w;
    for (int l : searchedLayers(p))
        w.push_back(p.importance[size_t(l)] + eps);
    return w;
}

// log P(c | layer) per searched layer, written from the header's formula.
std::vector<std::vector<double>> testLogP(const AllocationProblem& p, const std::vector<QuantSpec>& cands,
                                          double shift, double temperature)
{
    double lo = 1e9, hi = -1e9;
    for (const auto& c : cands) {
        lo = std::min(lo, std::log2(double(c.codeBits())));
        hi = std::max(hi, std::log2(double(c.codeBits())));
    }
    std::vector<std::vector<double>> out;
    for (int l : searchedLayers(p)) {
        const double t = std::clamp(p.importance[size_t(l)] + shift, 0.0, 1.0);
        std::vector<double> a;
        double z = 0;
        for (const auto& c : cands) {
            const double k = hi > lo ? (std::log2(double(c.codeBits())) - lo) / (hi - lo) : 1.0;
            a.push_back(-(k - t) * (k - t) / temperature);
            z += std::exp(a.back());
        }
        for (double& v : a)
            v -= std::log(z);
        out.push_back(a);
    }
    return out;
}

double testExpectedBytes(const Costs& k, const std::vector<std::vector<double>>& logp)
{
    double e = double(k.fixed);
    for (size_t i = 0; i < logp.size(); ++i)
        for (size_t c = 0; c < logp[i].size(); ++c)
            e += std::exp(logp[i][c]) * double(k.cost[i][c]);
    return e;
}


// The header's sampling recipe: one u = top 53 bits of mt19937_64 per draw and searched layer (ascending),
// inverted through the CDF with the candidates in increasing bits.
double uniform01(std::mt19937_64& rng) { return double(rng() >> 11) * 0x1.0p-53; }

std::vector<size_t> bitOrder(const std::vector<QuantSpec>& cands)
{
    std::vector<size_t> order(cands.size());
    for (size_t c = 0; c < cands.size(); ++c)
        order[c] = c;
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return cands[a].codeBits() < cands[b].codeBits(); });
    return order;
}

// The header's repair: downgrade by the least (s~ + eps) * (log2 bits lost) per byte saved (ties: the smaller
// step, then the lower layer, then the earlier candidate) until the map fits.
void testRepair(const Costs& k, const std::vector<double>& w, const std::vector<QuantSpec>& cands, int64_t budget,
                std::vector<size_t>& choice)
{
    const auto bytes = [&] {
        int64_t b = k.fixed;
        for (size_t i = 0; i < choice.size(); ++i)
            b += k.cost[i][choice[i]];
        return b;
    };
    while (bytes() > budget) {
        bool found = false;
        size_t bi = 0, bg = 0;
        double br = 0;
        int64_t bs = 0;
        for (size_t i = 0; i < choice.size(); ++i)
            for (size_t g = 0; g < cands.size(); ++g) {
                const int64_t saved = k.cost[i][choice[i]] - k.cost[i][g];
                if (saved <= 0)
                    continue;
                const double r = w[i] *
                                 (std::log2(double(cands[choice[i]].codeBits())) - std::log2(double(cands[g].codeBits()))) /
                                 double(saved);
                if (!found || r < br || (r == br && saved < bs)) {
                    found = true;
                    bi = i, bg = g, br = r, bs = saved;
                }
            }
        QVERIFY(found);
        choice[bi] = bg;
    }
}

size_t candIndex(const std::vector<QuantSpec>& cands, const QuantSpec& s)
{
    return size_t(std::find(cands.begin(), cands.end(), s) - cands.begin());
}

AllocationResult run(const AllocationProblem& p, AllocationMethod m, uint64_t seed = 0, int samples = 16)
{
    AllocationOptions o;
    o.method = m;
    o.seed = seed;
    o.samples = samples;
    return qpruner::allocate(p, o);
}

} // namespace

class TestAllocation : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void parseBudgetForms()
    {
        const auto check = [](const char* text, BudgetUnit unit, double value) {
            const MemoryBudget b = qpruner::parseBudget(text);
            return b.unit == unit && b.value == value;
        };
        QVERIFY(check("123456", BudgetUnit::Bytes, 123456));
        QVERIFY(check("123456B", BudgetUnit::Bytes, 123456));
        QVERIFY(check("123456 b", BudgetUnit::Bytes, 123456));
        QVERIFY(check("350KiB", BudgetUnit::Bytes, 350 * 1024));
        QVERIFY(check("350kib", BudgetUnit::Bytes, 350 * 1024));
        QVERIFY(check("1.5MiB", BudgetUnit::Bytes, 1.5 * 1024 * 1024));
        QVERIFY(check("2GiB", BudgetUnit::Bytes, 2.0 * 1024 * 1024 * 1024));
        QVERIFY(check("10kB", BudgetUnit::Bytes, 10000));
        QVERIFY(check("10KB", BudgetUnit::Bytes, 10000));
        QVERIFY(check("1.1kB", BudgetUnit::Bytes, 1100)); // 1.1 is inexact in binary; still 1100 bytes
        QVERIFY(check("1.5MB", BudgetUnit::Bytes, 1500000));
        QVERIFY(check("2GB", BudgetUnit::Bytes, 2e9));
        QVERIFY(check("1TiB", BudgetUnit::Bytes, 1099511627776.0));
        QVERIFY(check("1e6", BudgetUnit::Bytes, 1e6));
        QVERIFY(check("1000.7", BudgetUnit::Bytes, 1000)); // fractional bytes round down
        QVERIFY(check("4.5bpw", BudgetUnit::BitsPerWeight, 4.5));
        QVERIFY(check("4.5 BPW", BudgetUnit::BitsPerWeight, 4.5));
        QVERIFY(check("  6bpw ", BudgetUnit::BitsPerWeight, 6));
        QVERIFY(check("0.4x", BudgetUnit::Fraction, 0.4));
        QVERIFY(check("0.4X", BudgetUnit::Fraction, 0.4));
        QVERIFY(check("40%", BudgetUnit::Fraction, 0.4));
        QVERIFY(check("12.5%", BudgetUnit::Fraction, 0.125));
        QVERIFY(check("1.2x", BudgetUnit::Fraction, 1.2)); // above 1: accepted, simply not binding
        QVERIFY(check(".5x", BudgetUnit::Fraction, 0.5));

        QCOMPARE(qpruner::parseBudget("1MiB").text(), std::string("1048576 B"));
        QCOMPARE(qpruner::parseBudget("4.5bpw").text(), std::string("4.5 bpw"));
        QCOMPARE(qpruner::parseBudget("40%").text(), std::string("0.40x"));
        QCOMPARE(qpruner::parseBudget("1x").text(), std::string("1.00x"));
        QCOMPARE(qpruner::parseBudget("0.125x").text(), std::string("0.125x"));
        // text() reads back as the same budget.
        for (const char* t : {"1MiB", "4.5bpw", "40%", "0.125x", "4.53bpw", "10kB"}) {
            const MemoryBudget a = qpruner::parseBudget(t);
            const MemoryBudget b = qpruner::parseBudget(a.text());
            QVERIFY2(a.unit == b.unit && a.value == b.value, t);
        }
    }

    void parseBudgetRejections()
    {
        using qpruner::ConfigError;
        VERIFY_THROWS(ConfigError, qpruner::parseBudget(""), "budget ''", "is empty", "4.5bpw");
        VERIFY_THROWS(ConfigError, qpruner::parseBudget("   "), "is empty");
        VERIFY_THROWS(ConfigError, qpruner::parseBudget("-5bpw"), "'-5bpw'", "must be positive");
        VERIFY_THROWS(ConfigError, qpruner::parseBudget("-1"), "must be positive");
        VERIFY_THROWS(ConfigError, qpruner::parseBudget("0"), "'0'", "must be positive");
        VERIFY_THROWS(ConfigError, qpruner::parseBudget("0bpw"), "must be positive");
        VERIFY_THROWS(ConfigError, qpruner::parseBudget("0.0x"), "must be positive");
        VERIFY_THROWS(ConfigError, qpruner::parseBudget("0%"), "must be positive");
        VERIFY_THROWS(ConfigError, qpruner::parseBudget("0.5"), "at least one byte");
        VERIFY_THROWS(ConfigError, qpruner::parseBudget("nan"), "'nan'", "does not start with a number");
        VERIFY_THROWS(ConfigError, qpruner::parseBudget("NaNbpw"), "does not start with a number");
        VERIFY_THROWS(ConfigError, qpruner::parseBudget("inf"), "does not start with a number");
        VERIFY_THROWS(ConfigError, qpruner::parseBudget("+5"), "does not start with a number");
        VERIFY_THROWS(ConfigError, qpruner::parseBudget("bpw"), "does not start with a number");
        VERIFY_THROWS(ConfigError, qpruner::parseBudget("0x10"), "unknown unit 'x10'");
        VERIFY_THROWS(ConfigError, qpruner::parseBudget("4.5bpwx"), "unknown unit 'bpwx'", "expected a byte count");
        VERIFY_THROWS(ConfigError, qpruner::parseBudget("4.5 bits"), "unknown unit 'bits'");
        VERIFY_THROWS(ConfigError, qpruner::parseBudget("350MiB extra"), "unknown unit 'MiB extra'");
        VERIFY_THROWS(ConfigError, qpruner::parseBudget("1.2.3x"), "unknown unit '.3x'");
        VERIFY_THROWS(ConfigError, qpruner::parseBudget("4.5e"), "unknown unit 'e'");
        VERIFY_THROWS(ConfigError, qpruner::parseBudget("1e999"), "out of range");
        VERIFY_THROWS(ConfigError, qpruner::parseBudget("4,5bpw"), "unknown unit ',5bpw'");
    }

    void methodNames()
    {
        QCOMPARE(qpruner::parseAllocationMethod("greedy"), AllocationMethod::Greedy);
        QCOMPARE(qpruner::parseAllocationMethod("Probabilistic"), AllocationMethod::Probabilistic);
        QCOMPARE(qpruner::parseAllocationMethod("uniform"), AllocationMethod::Uniform);
        QCOMPARE(qpruner::parseAllocationMethod("RANDOM"), AllocationMethod::Random);
        QCOMPARE(qpruner::parseAllocationMethod("ap-ratio"), AllocationMethod::ApRatio);
        for (auto m : {AllocationMethod::Greedy, AllocationMethod::Probabilistic, AllocationMethod::Uniform,
                       AllocationMethod::Random, AllocationMethod::ApRatio})
            QCOMPARE(qpruner::parseAllocationMethod(qpruner::allocationMethodName(m)), m);
        VERIFY_THROWS(qpruner::ConfigError, qpruner::parseAllocationMethod("gredy"), "'gredy'", "greedy",
                      "probabilistic", "uniform", "random");
    }

    // Budgets in bpw and fractions against hand arithmetic on two tiny layers.
    void budgetConversions()
    {
        AllocationProblem p;
        p.config = tinyConfig(2);
        p.importance = {0.3, 0.9};
        // bf16 total: embedding + head 2 * 65,536, norms (2 per layer + final) 5 * 256, linears 2 * 90,624.
        const int64_t bf16 = 2 * kTinyEmbeddingBf16 + 5 * 64 * 4 + 2 * kTinyBf16Layer;
        QCOMPARE(bf16, int64_t(313600));
        QCOMPARE(bf16Total(p.config), bf16);
        const int64_t fixedTotal = 2 * kTinyEmbeddingBf16 + 5 * 64 * 4;

        p.budget = qpruner::parseBudget("6bpw"); // linear bytes <= 6 * 90,624 / 8 = 67,968
        AllocationResult r = run(p, AllocationMethod::Greedy);
        QCOMPARE(r.budgetBytes, int64_t(6 * 2 * kTinyLinearParams / 8));
        QCOMPARE(r.budgetBytes, int64_t(67968));
        QCOMPARE(r.minFeasibleBytes, 2 * kTinyNf4Layer);
        QCOMPARE(r.maxBytes, 2 * kTinyBf16Layer);
        QCOMPARE(r.candidates, (std::vector<QuantSpec>{spec("nf4"), spec("int8"), spec("bf16")}));
        // nf4 + int8 = 73,200 does not fit, so both stay nf4 (4.5 bpw).
        QCOMPARE(r.best.budgetedBytes, 2 * kTinyNf4Layer);
        QCOMPARE(r.best.linearBitsPerWeight, 4.5);
        p.budget = qpruner::parseBudget("6.5bpw"); // 73,632: the more important layer 1 goes int8
        r = run(p, AllocationMethod::Greedy);
        QCOMPARE(r.budgetBytes, int64_t(73632));
        QCOMPARE(r.best.layerSpecs, (std::vector<QuantSpec>{spec("nf4"), spec("int8")}));
        QCOMPARE(r.best.budgetedBytes, kTinyNf4Layer + kTinyInt8Layer);

        p.budget = qpruner::parseBudget("0.75x"); // floor(0.75 * 313,600) = 235,200 total bytes
        r = run(p, AllocationMethod::Greedy);
        QCOMPARE(r.budgetBytes, int64_t(235200));
        QCOMPARE(r.minFeasibleBytes, fixedTotal + 2 * kTinyNf4Layer);
        // 132,352 fixed + 25,488 + 47,712 = 205,552; int8 + int8 = 227,776; bf16 + int8 = 270,688 is over.
        QCOMPARE(r.best.layerSpecs, (std::vector<QuantSpec>{spec("int8"), spec("int8")}));
        QCOMPARE(r.best.totalBytes, fixedTotal + 2 * kTinyInt8Layer);
        p.budget = qpruner::parseBudget("40%");
        VERIFY_THROWS(qpruner::ConfigError, run(p, AllocationMethod::Greedy), "budget 0.40x",
                      "below the smallest feasible 0.5846x", "(every searched layer nf4)");
        p.budget = {BudgetUnit::Fraction, 0.5846}; // the stated value is feasible
        QCOMPARE(run(p, AllocationMethod::Greedy).best.totalBytes, fixedTotal + 2 * kTinyNf4Layer);

        p.budget = qpruner::parseBudget("4bpw");
        VERIFY_THROWS(qpruner::ConfigError, run(p, AllocationMethod::Greedy), "budget 4 bpw",
                      "below the smallest feasible 4.5 bpw (every searched layer nf4)");
        p.budget = qpruner::parseBudget("180000");
        VERIFY_THROWS(qpruner::ConfigError, run(p, AllocationMethod::Probabilistic), "budget 180000 B",
                      "below the smallest feasible 183328 B (every searched layer nf4)");
        p.budget = qpruner::parseBudget("183328");
        QCOMPARE(run(p, AllocationMethod::Probabilistic).best.totalBytes, int64_t(183328));
        // The cheapest candidate differs per layer: int4-g128 packs rows of 172 better than nf4 (down: 64 rows
        // of 86 + 8 bytes against 5,504 + 688), nf4 packs odd rows of 129 better (int4 wastes half a byte).
        p.candidates = {spec("nf4"), spec("int4-g128")};
        p.config.layers[0] = {8, 4, 129};
        p.budget = qpruner::parseBudget("1000");
        VERIFY_THROWS(qpruner::ConfigError, run(p, AllocationMethod::Random), "budget 1000 B is below the smallest",
                      "(every searched layer at its cheapest candidate)");
    }

    // Exact stated minimum with a non-round bpw: one layer of the tiny model searched in int8, the other
    // fixed at bf16 by the base map.
    void infeasibleStatesMinimum()
    {
        AllocationProblem p;
        p.config = tinyConfig(2);
        p.importance = {0.5, 0.5};
        p.layers = {1};
        p.candidates = {spec("int8"), spec("bf16")};
        p.budget = qpruner::parseBudget("10bpw");
        // min linear bytes = 90,624 + 47,712 = 138,336 -> 8 * 138,336 / 90,624 = 12.2118... bpw (rounded up)
        VERIFY_THROWS(qpruner::ConfigError, run(p, AllocationMethod::Greedy),
                      "below the smallest feasible 12.2119 bpw (every searched layer int8)");
        p.budget = {BudgetUnit::BitsPerWeight, 12.2119};
        QCOMPARE(run(p, AllocationMethod::Greedy).best.budgetedBytes, kTinyBf16Layer + kTinyInt8Layer);
        p.budget = {BudgetUnit::BitsPerWeight, 12.2118};
        VERIFY_THROWS(qpruner::ConfigError, run(p, AllocationMethod::Greedy), "12.2119 bpw");
    }

    // Every method on many random problems and budgets: never over budget, bytes equal the memory model.
    void feasibilityRandomProblems()
    {
        std::mt19937_64 rng(20240611);
        int checked = 0, infeasible = 0, uniformOver = 0, randomNone = 0;
        for (int trial = 0; trial < 120; ++trial) {
            AllocationProblem p = randomProblem(rng);
            p.budget = {BudgetUnit::Bytes, 1e18};
            const AllocationResult wide = run(p, AllocationMethod::Greedy);
            // The widest budget: every layer at its most valuable candidate; the minimum checks by hand.
            const Costs k = measureCosts(p, wide.candidates);
            int64_t minB = k.fixed, maxB = k.fixed;
            for (const auto& row : k.cost) {
                minB += *std::min_element(row.begin(), row.end());
                maxB += *std::max_element(row.begin(), row.end());
            }
            QCOMPARE(wide.minFeasibleBytes, minB);
            QCOMPARE(wide.maxBytes, maxB);
            for (int b = 0; b < 6; ++b) {
                const double f = -0.05 + 1.15 * std::uniform_real_distribution<double>(0, 1)(rng);
                const int64_t target = minB + int64_t(f * double(maxB - minB));
                setBudget(p, rng, std::max<int64_t>(1, target));
                const int64_t limit = expectedLimit(p);
                for (auto m : {AllocationMethod::Greedy, AllocationMethod::Probabilistic, AllocationMethod::Uniform,
                               AllocationMethod::Random}) {
                    AllocationOptions o;
                    o.method = m;
                    o.seed = rng();
                    o.samples = 12;
                    o.uniformFormat = formatPool()[rng() % formatPool().size()];
                    AllocationResult r;
                    try {
                        r = qpruner::allocate(p, o);
                    } catch (const qpruner::ConfigError& e) {
                        const std::string what = e.what();
                        if (m == AllocationMethod::Uniform) {
                            QVERIFY2(what.find("over the budget") != std::string::npos, e.what());
                            ++uniformOver;
                        } else if (m == AllocationMethod::Random && what.find("random maps fits") != std::string::npos) {
                            ++randomNone;
                        } else {
                            QVERIFY2(what.find("below the smallest feasible") != std::string::npos, e.what());
                            // The minimum in this budget's limit really is over it.
                            const Costs kk = measureCosts(p, wide.candidates);
                            int64_t mn = kk.fixed;
                            for (const auto& row : kk.cost)
                                mn += *std::min_element(row.begin(), row.end());
                            QVERIFY2(mn > limit, e.what());
                            ++infeasible;
                        }
                        continue;
                    }
                    QCOMPARE(r.budgetBytes, limit);
                    QCOMPARE(r.method, m);
                    VERIFY_OK(checkAllocation(p, r, r.best, o.epsilon, m != AllocationMethod::Uniform));
                    for (const Allocation& a : r.samples)
                        VERIFY_OK(checkAllocation(p, r, a, o.epsilon));
                    if (m == AllocationMethod::Probabilistic)
                        VERIFY_OK(checkAllocation(p, r, r.mode, o.epsilon));
                    if (m == AllocationMethod::Uniform) {
                        for (int l : searchedLayers(p))
                            QCOMPARE(r.best.layerSpecs[size_t(l)], o.uniformFormat);
                    }
                    ++checked;
                }
            }
        }
        // Every branch was exercised.
        QVERIFY(checked > 1500);
        QVERIFY(infeasible > 0);
        QVERIFY(uniformOver > 0);
        qInfo("checked %d allocations; %d infeasible budgets, %d uniform over budget, %d random without a fit",
              checked, infeasible, uniformOver, randomNone);
    }

    // Greedy against exhaustive enumeration on 3..6 layers with 2..3 candidates.
    void greedyVersusBruteForce()
    {
        std::mt19937_64 rng(777);
        const double eps = AllocationOptions{}.epsilon;
        int breakpointsChecked = 0, strictlyWorse = 0;
        for (int trial = 0; trial < 40; ++trial) {
            AllocationProblem p = randomProblem(rng, 3, 6);
            p.layers.clear();
            std::vector<QuantSpec> pool = formatPool();
            std::shuffle(pool.begin(), pool.end(), rng);
            pool.resize(2 + rng() % 2);
            p.candidates = pool;
            p.budget = {BudgetUnit::Bytes, 1e18};
            const std::vector<QuantSpec> cands = run(p, AllocationMethod::Greedy).candidates;
            const size_t n = size_t(p.config.numLayers()), numC = cands.size();

            // Every map, measured with the memory model.
            std::vector<std::pair<int64_t, double>> all; // (total bytes, objective)
            std::vector<size_t> digits(n, 0);
            for (;;) {
                PrecisionMap m = p.base;
                std::vector<QuantSpec> specs;
                for (size_t i = 0; i < n; ++i) {
                    for (LinearModule mod : qpruner::kLinearModules)
                        m.setLayerModule(int(i), mod, std::nullopt);
                    m.setLayer(int(i), cands[digits[i]]);
                    specs.push_back(cands[digits[i]]);
                }
                all.push_back({qpruner::memoryReport(p.config, m).totalBytes, objectiveOf(p, specs, eps)});
                size_t d = 0;
                while (d < n && ++digits[d] == numC)
                    digits[d++] = 0;
                if (d == n)
                    break;
            }
            const auto optimum = [&](int64_t budget) {
                double best = -1e300;
                for (const auto& [bytes, u] : all)
                    if (bytes <= budget)
                        best = std::max(best, u);
                return best;
            };

            const Costs k = measureCosts(p, cands);
            std::vector<int> choice;
            const std::vector<Step> steps = greedySteps(k, weightsOf(p, eps), cands, &choice);
            double maxGain = 0;
            for (const Step& s : steps)
                maxGain = std::max(maxGain, s.gain);

            // Breakpoints: the prefix maps of the upgrade order. Greedy returns them and they are optimal.
            int64_t bytes = k.fixed;
            for (size_t i = 0; i < n; ++i)
                bytes += k.cost[i][size_t(choice[i])];
            std::vector<int> previous = choice;
            for (size_t s = 0; s <= steps.size(); ++s) {
                if (s > 0) {
                    choice[steps[s - 1].layer] = steps[s - 1].to;
                    bytes += steps[s - 1].extra;
                }
                p.budget = {BudgetUnit::Bytes, double(bytes)};
                const AllocationResult r = run(p, AllocationMethod::Greedy);
                QCOMPARE(r.best.totalBytes, bytes);
                for (size_t i = 0; i < n; ++i) {
                    QCOMPARE(r.best.layerSpecs[i], cands[size_t(choice[i])]);
                    // Per-layer monotone across breakpoints: never cheaper than at the previous one.
                    QVERIFY(k.cost[i][size_t(choice[i])] >= k.cost[i][size_t(previous[i])]);
                }
                QVERIFY2(std::abs(r.best.objective - optimum(bytes)) < 1e-9,
                         qPrintable(QString("breakpoint %1: greedy %2, optimum %3")
                                        .arg(bytes)
                                        .arg(r.best.objective, 0, 'g', 17)
                                        .arg(optimum(bytes), 0, 'g', 17)));
                previous = choice;
                ++breakpointsChecked;
            }
            // Any budget: within the largest single hull-step gain of the optimum.
            const int64_t lo = all.front().first, hi = bytes;
            for (int b = 0; b < 30; ++b) {
                const int64_t budget = lo + int64_t(rng() % uint64_t(std::max<int64_t>(1, hi - lo + 1)));
                p.budget = {BudgetUnit::Bytes, double(budget)};
                const AllocationResult r = run(p, AllocationMethod::Greedy);
                const double opt = optimum(budget);
                QVERIFY(r.best.objective <= opt + 1e-9);
                QVERIFY2(r.best.objective >= opt - maxGain - 1e-9,
                         qPrintable(QString("budget %1: greedy %2 < optimum %3 - max gain %4")
                                        .arg(budget)
                                        .arg(r.best.objective)
                                        .arg(opt)
                                        .arg(maxGain)));
                if (r.best.objective < opt - 1e-9)
                    ++strictlyWorse;
            }
        }
        QVERIFY(breakpointsChecked > 100);
        qInfo("%d breakpoints optimal; greedy strictly below the optimum at %d of 1200 other budgets",
              breakpointsChecked, strictlyWorse);
    }

    // Hand cases on a full layer 0 (cost of nf4 -> bf16: 90,624 - 25,488 = 65,136 bytes) and a pruned layer 1
    // (2 heads, 1 KV head, ffn 16: 6,144 weights; nf4 -> bf16 costs 12,288 - 3,456 = 8,832 bytes).
    void greedyHandCases()
    {
        AllocationProblem p;
        p.config = tinyConfig(2);
        p.config.layers[1] = {2, 1, 16};
        p.candidates = {spec("nf4"), spec("bf16")};
        const int64_t fixed = 2 * kTinyEmbeddingBf16 + 5 * 64 * 4;
        const int64_t minBytes = fixed + kTinyNf4Layer + 3456;
        const int64_t d0 = kTinyBf16Layer - kTinyNf4Layer, d1 = 12288 - 3456;
        QCOMPARE(d0, int64_t(65136));

        // (1) Strictly suboptimal: layer 1's upgrade has the higher gain per byte (0.501 * 2 / 8,832 against
        // 1.001 * 2 / 65,136) and takes the room layer 0's larger and more valuable upgrade needs.
        p.importance = {1.0, 0.5};
        p.budget = {BudgetUnit::Bytes, double(minBytes + d0)};
        AllocationResult r = run(p, AllocationMethod::Greedy);
        QCOMPARE(r.best.layerSpecs, (std::vector<QuantSpec>{spec("nf4"), spec("bf16")}));
        QCOMPARE(r.best.totalBytes, minBytes + d1);
        const double greedyU = 1.001 * 2 + 0.501 * 4, optimumU = 1.001 * 4 + 0.501 * 2;
        QVERIFY(std::abs(r.best.objective - greedyU) < 1e-12);
        QVERIFY(r.best.objective < optimumU - 0.9);                  // strictly worse than upgrading layer 0
        QVERIFY(r.best.objective >= optimumU - 1.001 * 2 - 1e-12);   // but within the largest step gain

        // (2) A layer gets cheaper as the budget grows: layer 0 now has the better ratio (1.001 * 2 / 65,136
        // against 0.001 * 2 / 8,832). Between the breakpoints (min + d1 < min + d0) only layer 1 fits; at
        // min + d0 layer 0 takes the room.
        p.importance = {1.0, 0.0};
        p.budget = {BudgetUnit::Bytes, double(minBytes + d1)};
        r = run(p, AllocationMethod::Greedy);
        QCOMPARE(r.best.layerSpecs, (std::vector<QuantSpec>{spec("nf4"), spec("bf16")}));
        const double u1 = r.best.objective;
        p.budget = {BudgetUnit::Bytes, double(minBytes + d0)};
        r = run(p, AllocationMethod::Greedy);
        QCOMPARE(r.best.layerSpecs, (std::vector<QuantSpec>{spec("bf16"), spec("nf4")}));
        QVERIFY(r.best.objective > u1);               // bytes and objective still grow
        QVERIFY(r.best.totalBytes > minBytes + d1);
        p.budget = {BudgetUnit::Bytes, double(minBytes + d0 + d1)};
        r = run(p, AllocationMethod::Greedy);
        QCOMPARE(r.best.layerSpecs, (std::vector<QuantSpec>{spec("bf16"), spec("bf16")}));

        // (3) Ties in gain per byte go to the lower layer: three equal layers, equal importance, room for one
        // nf4 -> int8 upgrade (22,224 bytes), then for a second.
        AllocationProblem q;
        q.config = tinyConfig(3);
        q.importance = {0.5, 0.5, 0.5};
        const int64_t min3 = 2 * kTinyEmbeddingBf16 + 7 * 256 + 3 * kTinyNf4Layer;
        q.budget = {BudgetUnit::Bytes, double(min3 + kTinyInt8Layer - kTinyNf4Layer)};
        QCOMPARE(run(q, AllocationMethod::Greedy).best.layerSpecs,
                 (std::vector<QuantSpec>{spec("int8"), spec("nf4"), spec("nf4")}));
        q.budget = {BudgetUnit::Bytes, double(min3 + 2 * (kTinyInt8Layer - kTinyNf4Layer))};
        QCOMPARE(run(q, AllocationMethod::Greedy).best.layerSpecs,
                 (std::vector<QuantSpec>{spec("int8"), spec("int8"), spec("nf4")}));
    }

    // Greedy over budget sweeps: bytes and objective never decrease.
    void greedyMonotoneInBudget()
    {
        std::mt19937_64 rng(99);
        for (int trial = 0; trial < 40; ++trial) {
            AllocationProblem p = randomProblem(rng, 2, 10);
            p.budget = {BudgetUnit::Bytes, 1e18};
            const AllocationResult wide = run(p, AllocationMethod::Greedy);
            int64_t lastBytes = -1;
            double lastU = -1e300;
            for (int s = 0; s <= 60; ++s) {
                const int64_t budget = wide.minFeasibleBytes + (wide.maxBytes - wide.minFeasibleBytes) * s / 60;
                p.budget = {BudgetUnit::Bytes, double(budget)};
                const AllocationResult r = run(p, AllocationMethod::Greedy);
                QVERIFY(r.best.totalBytes <= budget);
                QVERIFY(r.best.totalBytes >= lastBytes);
                QVERIFY(r.best.objective >= lastU);
                lastBytes = r.best.totalBytes;
                lastU = r.best.objective;
            }
            QCOMPARE(lastBytes, wide.best.totalBytes);
        }
    }

    // The shift puts the expected bytes on the budget; probabilities follow the header's formula.
    void probabilisticCalibration()
    {
        std::mt19937_64 rng(5);
        int interior = 0;
        for (int trial = 0; trial < 40; ++trial) {
            AllocationProblem p = randomProblem(rng, 2, 8);
            p.budget = {BudgetUnit::Bytes, 1e18};
            const AllocationResult wide = run(p, AllocationMethod::Probabilistic);
            QCOMPARE(wide.shift, 1.0); // above everything: clamped
            const std::vector<QuantSpec>& cands = wide.candidates;
            for (int b = 0; b < 5; ++b) {
                const double f = std::uniform_real_distribution<double>(0, 1)(rng);
                setBudget(p, rng, wide.minFeasibleBytes + int64_t(f * double(wide.maxBytes - wide.minFeasibleBytes)));
                AllocationOptions o;
                o.method = AllocationMethod::Probabilistic;
                o.temperature = 0.05 + 0.3 * std::uniform_real_distribution<double>(0, 1)(rng);
                o.seed = rng();
                AllocationResult r;
                try {
                    r = qpruner::allocate(p, o);
                } catch (const qpruner::ConfigError&) {
                    continue; // the unit's rounding put it below the minimum
                }
                const Costs k = measureCosts(p, cands);
                const auto logp = testLogP(p, cands, r.shift, o.temperature);
                const double expected = testExpectedBytes(k, logp);
                QVERIFY(std::abs(expected - r.expectedBytes) <= 1e-6 * expected);
                const double eLo = testExpectedBytes(k, testLogP(p, cands, -1, o.temperature));
                const double eHi = testExpectedBytes(k, testLogP(p, cands, 1, o.temperature));
                const double budget = double(r.budgetBytes);
                if (budget >= eHi) {
                    QCOMPARE(r.shift, 1.0);
                } else if (budget < eLo) {
                    QCOMPARE(r.shift, -1.0);
                } else {
                    QVERIFY2(std::abs(expected - budget) <= 1e-9 * budget + 1e-3,
                             qPrintable(QString("expected %1, budget %2").arg(expected, 0, 'f', 4).arg(budget)));
                    QVERIFY(r.expectedBytes <= budget + 1e-6);
                    ++interior;
                }
                // Log-probabilities of every map, from the formula.
                const std::vector<int> layers = searchedLayers(p);
                const auto logProb = [&](const Allocation& a) {
                    double s = 0;
                    for (size_t i = 0; i < layers.size(); ++i)
                        s += logp[i][candIndex(cands, a.layerSpecs[size_t(layers[i])])];
                    return s;
                };
                QVERIFY(std::abs(logProb(r.mode) - r.mode.logProbability) < 1e-9);
                for (const Allocation& a : r.samples)
                    QVERIFY(std::abs(logProb(a) - a.logProbability) < 1e-9);
                // The mode before repair is the most probable map: a repaired mode is the only way below it.
                double modeMax = 0;
                for (const auto& row : logp)
                    modeMax += *std::max_element(row.begin(), row.end());
                if (!r.mode.repaired)
                    QVERIFY(std::abs(r.mode.logProbability - modeMax) < 1e-9);
                // The best is the most probable feasible map among the mode and the samples.
                QVERIFY(r.best.logProbability >= r.mode.logProbability);
                for (const Allocation& a : r.samples)
                    QVERIFY(r.best.logProbability >= a.logProbability);
            }
        }
        QVERIFY(interior > 40);

        // Small budget: at the minimum the expectation at delta = -1 is over it, so the shift clamps at -1.
        AllocationProblem p;
        p.config = tinyConfig(4);
        p.importance = {0.1, 0.4, 0.6, 0.9};
        p.budget = {BudgetUnit::Bytes, double(2 * kTinyEmbeddingBf16 + 9 * 256 + 4 * kTinyNf4Layer)};
        const AllocationResult r = run(p, AllocationMethod::Probabilistic);
        QCOMPARE(r.shift, -1.0);
        QCOMPARE(r.best.totalBytes, int64_t(p.budget.value));
    }

    // Higher importance gets at least as many bits in the mode (equal layers, default candidates), before and
    // after repair.
    void probabilisticModeOrder()
    {
        std::mt19937_64 rng(11);
        int repaired = 0, unrepaired = 0;
        for (int trial = 0; trial < 60; ++trial) {
            AllocationProblem p;
            p.config = tinyConfig(3 + int(rng() % 6));
            for (int l = 0; l < p.config.numLayers(); ++l)
                p.importance.push_back(std::uniform_real_distribution<double>(0, 1)(rng));
            const int64_t fixed = 2 * kTinyEmbeddingBf16 + (2 * p.config.numLayers() + 1) * 256;
            const int64_t lo = fixed + p.config.numLayers() * kTinyNf4Layer;
            const int64_t hi = fixed + p.config.numLayers() * kTinyBf16Layer;
            p.budget = {BudgetUnit::Bytes, double(lo + int64_t(rng() % uint64_t(hi - lo)))};
            AllocationOptions o;
            o.method = AllocationMethod::Probabilistic;
            o.temperature = 0.02 + 0.3 * std::uniform_real_distribution<double>(0, 1)(rng);
            const AllocationResult r = qpruner::allocate(p, o);
            (r.mode.repaired ? repaired : unrepaired)++;
            for (int a = 0; a < p.config.numLayers(); ++a)
                for (int b = 0; b < p.config.numLayers(); ++b)
                    if (p.importance[size_t(a)] > p.importance[size_t(b)])
                        QVERIFY(r.mode.layerSpecs[size_t(a)].codeBits() >= r.mode.layerSpecs[size_t(b)].codeBits());
        }
        QVERIFY(repaired > 0 && unrepaired > 0);
    }

    // Seeds, sample bookkeeping, repair and rejection.
    void probabilisticSamples()
    {
        AllocationProblem p;
        p.config = tinyConfig(6);
        p.importance = {0.0, 0.2, 0.35, 0.5, 0.8, 1.0};
        p.budget = qpruner::parseBudget("7bpw");
        AllocationOptions o;
        o.method = AllocationMethod::Probabilistic;
        o.samples = 64;
        o.temperature = 0.2;
        o.seed = 3;
        const AllocationResult a = qpruner::allocate(p, o);
        const AllocationResult b = qpruner::allocate(p, o);
        QCOMPARE(a.toJson().dump(), b.toJson().dump()); // deterministic for a seed
        o.seed = 4;
        const AllocationResult c = qpruner::allocate(p, o);
        QVERIFY(a.toJson()["samples"].dump() != c.toJson()["samples"].dump()); // another seed, other draws
        QCOMPARE(a.shift, c.shift);

        for (const AllocationResult* r : {&a, &c}) {
            QCOMPARE(int(r->samples.size()) + r->rejected, o.samples);
            int lastDraw = -1;
            for (const Allocation& s : r->samples) {
                QVERIFY(s.draw > lastDraw && s.draw < o.samples);
                lastDraw = s.draw;
                VERIFY_OK(checkAllocation(p, *r, s, o.epsilon));
            }
            QVERIFY(r->best.draw >= -1);
            QCOMPARE(r->mode.draw, -1);
        }
        QVERIFY(a.rejected > 0);

        // The same draws with every over-budget map repaired (huge slack) and with none (slack 0): the
        // rejections at slack 0 are exactly the repaired maps at a huge slack, and at slack 0 nothing is
        // repaired.
        o.seed = 3;
        o.repairSlack = 0;
        const AllocationResult strict = qpruner::allocate(p, o);
        o.repairSlack = 100;
        const AllocationResult lenient = qpruner::allocate(p, o);
        QCOMPARE(lenient.rejected, 0);
        QCOMPARE(int(lenient.samples.size()), o.samples);
        int repairedCount = 0;
        std::set<int> repairedDraws;
        for (const Allocation& s : lenient.samples)
            if (s.repaired) {
                ++repairedCount;
                repairedDraws.insert(s.draw);
            }
        QCOMPARE(strict.rejected, repairedCount);
        for (const Allocation& s : strict.samples) {
            QVERIFY(!s.repaired);
            QVERIFY(!repairedDraws.count(s.draw));
            // An unrepaired draw is the same map under both slacks.
            const auto it = std::find_if(lenient.samples.begin(), lenient.samples.end(),
                                         [&](const Allocation& x) { return x.draw == s.draw; });
            QVERIFY(it != lenient.samples.end());
            QCOMPARE(it->layerSpecs, s.layerSpecs);
        }
        // The default slack (10%) sits between: repaired maps were over by at most 10% before repair, so their
        // count lies between the two extremes.
        QVERIFY(a.rejected <= strict.rejected);
        QVERIFY(strict.rejected > 0);
        // K = 0: only the mode.
        o.samples = 0;
        const AllocationResult none = qpruner::allocate(p, o);
        QVERIFY(none.samples.empty());
        QCOMPARE(none.rejected, 0);
        QCOMPARE(none.best.layerSpecs, none.mode.layerSpecs);
    }

    // What the probabilistic method guarantees over a budget sweep: a non-decreasing shift and expectation,
    // and per-layer bits of each draw (common random numbers) non-decreasing. The returned maps are not
    // monotone (repair and rejection), so draws are compared only where neither budget changed them.
    void probabilisticMonotoneInBudget()
    {
        std::mt19937_64 rng(8);
        int compared = 0;
        for (int trial = 0; trial < 10; ++trial) {
            AllocationProblem p;
            p.config = tinyConfig(2 + int(rng() % 6));
            for (int l = 0; l < p.config.numLayers(); ++l)
                p.importance.push_back(std::uniform_real_distribution<double>(0, 1)(rng));
            AllocationOptions o;
            o.method = AllocationMethod::Probabilistic;
            o.samples = 48;
            o.seed = rng();
            o.temperature = 0.05 + 0.3 * std::uniform_real_distribution<double>(0, 1)(rng);
            o.repairSlack = 0; // samples are raw draws
            double lastShift = -2, lastExpected = -1;
            std::map<int, std::vector<QuantSpec>> lastDraws;
            for (int s = 0; s <= 24; ++s) {
                p.budget = {BudgetUnit::BitsPerWeight, 4.5 + 11.5 * s / 24.0};
                const AllocationResult r = qpruner::allocate(p, o);
                QVERIFY(r.shift >= lastShift);
                QVERIFY(r.expectedBytes >= lastExpected - 1e-6);
                lastShift = r.shift;
                lastExpected = r.expectedBytes;
                std::map<int, std::vector<QuantSpec>> draws;
                for (const Allocation& a : r.samples) {
                    draws[a.draw] = a.layerSpecs;
                    if (const auto it = lastDraws.find(a.draw); it != lastDraws.end()) {
                        for (size_t l = 0; l < a.layerSpecs.size(); ++l)
                            QVERIFY(a.layerSpecs[l].codeBits() >= it->second[l].codeBits());
                        ++compared;
                    }
                }
                lastDraws = draws;
            }
        }
        QVERIFY(compared > 500);
    }

    // The probabilistic and random methods replayed from the header's recipe on random problems: the same
    // mode (and its repair), the same draws, repairs, rejections and best map.
    void samplingReproducesRecipe()
    {
        std::mt19937_64 rng(31337);
        int repairedSeen = 0, rejectedSeen = 0, modeRepairedSeen = 0;
        for (int trial = 0; trial < 60; ++trial) {
            AllocationProblem p = randomProblem(rng, 2, 7);
            p.budget = {BudgetUnit::Bytes, 1e18};
            const AllocationResult wide = run(p, AllocationMethod::Greedy);
            const std::vector<QuantSpec>& cands = wide.candidates;
            setBudget(p, rng,
                      wide.minFeasibleBytes + int64_t(std::uniform_real_distribution<double>(0, 0.8)(rng) *
                                                      double(wide.maxBytes - wide.minFeasibleBytes)));
            AllocationOptions o;
            o.method = AllocationMethod::Probabilistic;
            o.samples = 24;
            o.seed = rng();
            o.temperature = 0.05 + 0.5 * std::uniform_real_distribution<double>(0, 1)(rng);
            o.repairSlack = std::uniform_real_distribution<double>(0, 0.3)(rng);
            AllocationResult r;
            try {
                r = qpruner::allocate(p, o);
            } catch (const qpruner::ConfigError&) {
                continue;
            }
            const Costs k = measureCosts(p, cands);
            const std::vector<double> w = weightsOf(p, o.epsilon);
            const std::vector<int> layers = searchedLayers(p);
            const auto logp = testLogP(p, cands, r.shift, o.temperature);
            const auto order = bitOrder(cands);
            const auto bytesOf = [&](const std::vector<size_t>& ch) {
                int64_t b = k.fixed;
                for (size_t i = 0; i < ch.size(); ++i)
                    b += k.cost[i][ch[i]];
                return b;
            };
            const auto specsOf = [&](const std::vector<size_t>& ch) {
                std::vector<QuantSpec> out;
                for (size_t i = 0; i < ch.size(); ++i)
                    out.push_back(cands[ch[i]]);
                return out;
            };
            const auto searchedSpecs = [&](const Allocation& a) {
                std::vector<QuantSpec> out;
                for (int l : layers)
                    out.push_back(a.layerSpecs[size_t(l)]);
                return out;
            };
            // Mode: the closest position to the target (ties: fewer bits), repaired when over.
            std::vector<size_t> mode(layers.size());
            for (size_t i = 0; i < layers.size(); ++i) {
                size_t best = order.front();
                for (size_t c : order)
                    if (logp[i][c] > logp[i][best] + 1e-12)
                        best = c;
                mode[i] = best;
            }
            const bool modeOver = bytesOf(mode) > r.budgetBytes;
            testRepair(k, w, cands, r.budgetBytes, mode);
            QCOMPARE(r.mode.repaired, modeOver);
            QCOMPARE(searchedSpecs(r.mode), specsOf(mode));
            modeRepairedSeen += modeOver;
            // Draws.
            std::mt19937_64 g(o.seed);
            size_t next = 0;
            int rejected = 0;
            for (int d = 0; d < o.samples; ++d) {
                std::vector<size_t> ch(layers.size());
                for (size_t i = 0; i < layers.size(); ++i) {
                    const double u = uniform01(g);
                    double acc = 0;
                    ch[i] = order.back();
                    for (size_t c : order) {
                        acc += std::exp(logp[i][c]);
                        if (u < acc) {
                            ch[i] = c;
                            break;
                        }
                    }
                }
                const int64_t b = bytesOf(ch);
                bool repaired = false;
                if (b > r.budgetBytes) {
                    if (double(b - r.budgetBytes) > o.repairSlack * double(r.budgetBytes)) {
                        ++rejected;
                        continue;
                    }
                    testRepair(k, w, cands, r.budgetBytes, ch);
                    repaired = true;
                }
                QVERIFY(next < r.samples.size());
                const Allocation& a = r.samples[next++];
                QCOMPARE(a.draw, d);
                QCOMPARE(a.repaired, repaired);
                QCOMPARE(searchedSpecs(a), specsOf(ch));
                repairedSeen += repaired;
            }
            QCOMPARE(next, r.samples.size());
            QCOMPARE(r.rejected, rejected);
            rejectedSeen += rejected;
            // Best: the most probable of the mode and the samples (ties: the mode, then the earliest draw).
            const Allocation* best = &r.mode;
            for (const Allocation& a : r.samples)
                if (a.logProbability > best->logProbability + 1e-12)
                    best = &a;
            QCOMPARE(r.best.draw, best->draw);
            QCOMPARE(r.best.layerSpecs, best->layerSpecs);

            // Random: index floor(u * C) in the sorted candidates; the best uses most of the budget.
            o.method = AllocationMethod::Random;
            AllocationResult rr;
            try {
                rr = qpruner::allocate(p, o);
            } catch (const qpruner::ConfigError& e) {
                QVERIFY2(std::string(e.what()).find("random maps fits") != std::string::npos, e.what());
                continue;
            }
            std::mt19937_64 g2(o.seed);
            next = 0;
            rejected = 0;
            int64_t bestBytes = -1;
            for (int d = 0; d < o.samples; ++d) {
                std::vector<size_t> ch(layers.size());
                for (size_t i = 0; i < layers.size(); ++i)
                    ch[i] = std::min(cands.size() - 1, size_t(uniform01(g2) * double(cands.size())));
                if (bytesOf(ch) > rr.budgetBytes) {
                    ++rejected;
                    continue;
                }
                QVERIFY(next < rr.samples.size());
                QCOMPARE(rr.samples[next].draw, d);
                QCOMPARE(searchedSpecs(rr.samples[next]), specsOf(ch));
                ++next;
                bestBytes = std::max(bestBytes, bytesOf(ch));
            }
            QCOMPARE(rr.rejected, rejected);
            QCOMPARE(rr.best.budgetedBytes, bestBytes);
        }
        QVERIFY(repairedSeen > 0 && rejectedSeen > 0 && modeRepairedSeen > 0);
    }

    void uniformMethod()
    {
        AllocationProblem p;
        p.config = tinyConfig(3);
        p.importance = {0.2, 0.5, 0.9};
        p.layers = {0, 2};
        p.budget = qpruner::parseBudget("0.9x");
        AllocationOptions o;
        o.method = AllocationMethod::Uniform;
        o.uniformFormat = spec("int8");
        AllocationResult r = qpruner::allocate(p, o);
        PrecisionMap m(spec("bf16"));
        m.setLayer(0, spec("int8"));
        m.setLayer(2, spec("int8"));
        QCOMPARE(r.best.totalBytes, qpruner::memoryReport(p.config, m).totalBytes);
        QCOMPARE(r.best.totalBytes, 2 * kTinyEmbeddingBf16 + 7 * 256 + 2 * kTinyInt8Layer + kTinyBf16Layer);
        QCOMPARE(r.best.layerSpecs, (std::vector<QuantSpec>{spec("int8"), spec("bf16"), spec("int8")}));
        QVERIFY(std::abs(r.best.objective - (1.1 + 1e-3 * 2) * 3) < 1e-12);
        // A format outside the candidates is fine; over budget is an error in the budget's unit.
        o.uniformFormat = spec("int3");
        r = qpruner::allocate(p, o);
        QCOMPARE(r.best.layerSpecs[0], spec("int3"));
        o.uniformFormat = spec("fp32");
        VERIFY_THROWS(qpruner::ConfigError, qpruner::allocate(p, o), "uniform fp32 needs", "over the budget 0.90x");
        p.budget = qpruner::parseBudget("8bpw");
        o.uniformFormat = spec("bf16");
        // all bf16: 16 bpw (rounded up at the 4th decimal it is exactly 16)
        VERIFY_THROWS(qpruner::ConfigError, qpruner::allocate(p, o), "uniform bf16 needs 16 bpw, over the budget 8 bpw");
        // nf4 in layers 0 and 2, bf16 layer 1: 8 * (2 * 25,488 + 90,624) / (3 * 45,312) = 8.3333 bpw
        o.uniformFormat = spec("nf4");
        VERIFY_THROWS(qpruner::ConfigError, qpruner::allocate(p, o), "needs 8.3334 bpw");
        p.budget = qpruner::parseBudget("8.3334bpw");
        QCOMPARE(qpruner::allocate(p, o).best.budgetedBytes, 2 * kTinyNf4Layer + kTinyBf16Layer);
    }

    // ap-ratio: precision never falls with depth, the map is the most precise schedule of its slope that fits
    // (raising the offset any further breaks the budget), and a flat slope gives one format everywhere.
    void apRatioMethod()
    {
        AllocationProblem p;
        p.config = tinyConfig(6);
        p.importance = {0.9, 0.1, 0.5, 0.2, 0.8, 0.3}; // ignored by ap-ratio
        p.budget = qpruner::parseBudget("9bpw");
        AllocationOptions o;
        o.method = AllocationMethod::ApRatio;
        const auto rank = [](const QuantSpec& s) { return s == spec("nf4") ? 0 : s == spec("int8") ? 1 : 2; };
        for (double slope : {0.0, 0.5, 1.0, 2.0}) {
            o.apSlope = slope;
            const AllocationResult r = qpruner::allocate(p, o);
            QCOMPARE(r.method, AllocationMethod::ApRatio);
            QVERIFY(r.best.budgetedBytes <= r.budgetBytes);
            for (size_t l = 1; l < r.best.layerSpecs.size(); ++l)
                QVERIFY(rank(r.best.layerSpecs[l - 1]) <= rank(r.best.layerSpecs[l]));
            if (slope == 0.0) // one format everywhere: the most precise uniform map within 9 bpw (int8)
                for (const auto& s : r.best.layerSpecs)
                    QCOMPARE(s, spec("int8"));
            if (slope == 2.0) { // steep: the first layer at nf4, the last at bf16
                QCOMPARE(r.best.layerSpecs.front(), spec("nf4"));
                QCOMPARE(r.best.layerSpecs.back(), spec("bf16"));
            }
        }
        // The budget below every schedule: the usual error.
        p.budget = qpruner::parseBudget("3bpw");
        VERIFY_THROWS(qpruner::ConfigError, qpruner::allocate(p, o), "below the smallest feasible");
    }

    void randomMethod()
    {
        AllocationProblem p;
        p.config = tinyConfig(5);
        p.importance = {0.1, 0.2, 0.3, 0.4, 0.5};
        p.budget = qpruner::parseBudget("9bpw");
        AllocationOptions o;
        o.method = AllocationMethod::Random;
        o.samples = 40;
        o.seed = 1;
        const AllocationResult a = qpruner::allocate(p, o);
        QCOMPARE(qpruner::allocate(p, o).toJson().dump(), a.toJson().dump());
        o.seed = 2;
        QVERIFY(qpruner::allocate(p, o).toJson()["samples"].dump() != a.toJson()["samples"].dump());
        QCOMPARE(int(a.samples.size()) + a.rejected, 40);
        QVERIFY(a.rejected > 0 && !a.samples.empty());
        for (const Allocation& s : a.samples) {
            VERIFY_OK(checkAllocation(p, a, s, 1e-3));
            QVERIFY(s.budgetedBytes <= a.best.budgetedBytes);
        }
        // Every candidate shows up (uniform over them).
        std::set<std::string> used;
        for (const Allocation& s : a.samples)
            for (const auto& f : s.layerSpecs)
                used.insert(f.name());
        QCOMPARE(used.size(), size_t(3));

        o.samples = 0;
        VERIFY_THROWS(qpruner::ConfigError, qpruner::allocate(p, o), "at least one sample");
        // At the minimum, only all-nf4 fits (1 in 3^5): with one sample per seed, most seeds find none.
        p.budget = qpruner::parseBudget("4.5bpw");
        o.samples = 1;
        int none = 0;
        for (uint64_t seed = 0; seed < 10; ++seed) {
            o.seed = seed;
            std::string why;
            if (throwsWith<qpruner::ConfigError>([&] { qpruner::allocate(p, o); },
                                                {"none of the 1 random maps fits the budget 4.5 bpw",
                                                 "smallest feasible is 4.5 bpw"},
                                                &why))
                ++none;
        }
        QVERIFY(none >= 8);
    }

    // The base map: unsearched layers, the embedding and the head keep their formats; searched layers' module
    // overrides are replaced.
    void baseMapRespected()
    {
        AllocationProblem p;
        p.config = tinyConfig(4);
        p.importance = {1, 1, 0.5, 0};
        p.layers = {3, 1};
        p.base = PrecisionMap(spec("int8"));
        p.base.setModuleDefault(LinearModule::Down, spec("int4"));
        p.base.setLayerModule(0, LinearModule::Q, spec("fp16"));
        p.base.setLayerModule(1, LinearModule::K, spec("fp32"));
        p.base.setLayer(2, spec("nf4-dq"));
        p.base.setEmbedding(spec("fp32"));
        p.base.setLmHead(spec("int8"));
        p.budget = qpruner::parseBudget("10MiB");
        const AllocationResult r = run(p, AllocationMethod::Greedy);
        QCOMPARE(r.layers, (std::vector<int>{1, 3}));
        VERIFY_OK(checkAllocation(p, r, r.best, 1e-3));
        QCOMPARE(r.best.layerSpecs[1], spec("bf16"));
        QCOMPARE(r.best.layerSpecs[3], spec("bf16"));
        QCOMPARE(r.best.layerSpecs[0], spec("int8"));   // q fp16, down int4, the other five int8
        QCOMPARE(r.best.layerSpecs[2], spec("nf4-dq"));
        QCOMPARE(r.best.map.spec(1, LinearModule::K), spec("bf16"));
        QCOMPARE(r.best.map.spec(0, LinearModule::Q), spec("fp16"));
        QCOMPARE(r.best.map.spec(0, LinearModule::Down), spec("int4"));
        QCOMPARE(r.best.map.spec(3, LinearModule::Down), spec("bf16"));
        QCOMPARE(r.best.map.embedding(), spec("fp32"));
        QCOMPARE(*r.best.map.lmHead(), spec("int8"));
    }

    void validationErrors()
    {
        using qpruner::ConfigError;
        AllocationProblem p;
        p.config = tinyConfig(3);
        p.importance = {0.1, 0.2, 0.3};
        p.budget = qpruner::parseBudget("8bpw");
        QCOMPARE(run(p, AllocationMethod::Greedy).layers, (std::vector<int>{0, 1, 2}));

        AllocationProblem q = p;
        q.importance = {0.1, 0.2};
        VERIFY_THROWS(ConfigError, run(q, AllocationMethod::Greedy), "importance has 2 values",
                      "one per decoder layer (3)");
        q.importance = {0.1, 1.5, 0.2};
        VERIFY_THROWS(ConfigError, run(q, AllocationMethod::Greedy), "importance[1]", "outside [0, 1]");
        q.importance = {-0.1, 0.5, 0.2};
        VERIFY_THROWS(ConfigError, run(q, AllocationMethod::Greedy), "importance[0]", "outside [0, 1]");
        q.importance = {0.1, 0.5, std::nan("")};
        VERIFY_THROWS(ConfigError, run(q, AllocationMethod::Probabilistic), "importance[2] is not a number");
        q = p;
        q.layers = {0, 3};
        VERIFY_THROWS(ConfigError, run(q, AllocationMethod::Greedy), "layer 3 is out of range", "0..2");
        q.layers = {-1};
        VERIFY_THROWS(ConfigError, run(q, AllocationMethod::Greedy), "layer -1 is out of range");
        q.layers = {1, 2, 1};
        VERIFY_THROWS(ConfigError, run(q, AllocationMethod::Greedy), "layer 1 is listed twice");
        q = p;
        q.candidates = {spec("nf4"), spec("int8"), spec("nf4")};
        VERIFY_THROWS(ConfigError, run(q, AllocationMethod::Greedy), "candidate nf4 is listed twice");
        q = p;
        q.base.setLayer(5, spec("nf4"));
        VERIFY_THROWS(ConfigError, run(q, AllocationMethod::Greedy), "layer");
        q = p;
        q.budget = {BudgetUnit::Bytes, 0};
        VERIFY_THROWS(ConfigError, run(q, AllocationMethod::Greedy), "budget must be a positive");
        q.budget = {BudgetUnit::BitsPerWeight, std::nan("")};
        VERIFY_THROWS(ConfigError, run(q, AllocationMethod::Greedy), "budget must be a positive");
        q = p;
        q.config.layers[1].numKvHeads = 3;
        VERIFY_THROWS(ConfigError, run(q, AllocationMethod::Greedy), "model config");

        AllocationOptions o;
        o.method = AllocationMethod::Probabilistic;
        o.samples = -1;
        VERIFY_THROWS(ConfigError, qpruner::allocate(p, o), "samples must be >= 0");
        o.samples = 4;
        o.temperature = 0;
        VERIFY_THROWS(ConfigError, qpruner::allocate(p, o), "temperature must be positive");
        o.temperature = 0.1;
        o.repairSlack = -0.5;
        VERIFY_THROWS(ConfigError, qpruner::allocate(p, o), "repair slack");
        o.repairSlack = 0.1;
        o.epsilon = std::nan("");
        VERIFY_THROWS(ConfigError, qpruner::allocate(p, o), "epsilon");
    }

    void resultJson()
    {
        AllocationProblem p;
        p.config = tinyConfig(2);
        p.importance = {0.3, 0.9};
        p.candidates = {spec("bf16"), spec("nf4"), spec("int8")};
        p.budget = qpruner::parseBudget("6.5bpw");
        AllocationOptions o;
        o.method = AllocationMethod::Probabilistic;
        o.samples = 4;
        const AllocationResult r = qpruner::allocate(p, o);
        const auto j = r.toJson();
        std::vector<std::string> keys;
        for (auto it = j.begin(); it != j.end(); ++it)
            keys.push_back(it.key());
        QCOMPARE(keys, (std::vector<std::string>{"method", "budget", "budget_bytes", "min_feasible_bytes", "max_bytes",
                                                 "layers", "candidates", "best", "samples", "rejected", "shift",
                                                 "expected_bytes", "mode"}));
        QCOMPARE(j["method"].get<std::string>(), std::string("probabilistic"));
        QCOMPARE(j["budget"].get<std::string>(), std::string("6.5 bpw"));
        QCOMPARE(j["budget_bytes"].get<int64_t>(), int64_t(73632));
        QCOMPARE(j["candidates"].dump(), std::string(R"(["nf4","int8","bf16"])"));
        QCOMPARE(j["layers"].dump(), std::string("[0,1]"));
        QCOMPARE(int(j["samples"].size()) + j["rejected"].get<int>(), 4);
        std::vector<std::string> bestKeys;
        for (auto it = j["best"].begin(); it != j["best"].end(); ++it)
            bestKeys.push_back(it.key());
        QCOMPARE(bestKeys, (std::vector<std::string>{"formats", "map", "budgeted_bytes", "total_bytes",
                                                     "linear_bits_per_weight", "objective", "log_probability",
                                                     "repaired", "draw"}));
        QCOMPARE(PrecisionMap::fromJson(json::parse(j["best"]["map"].dump())), r.best.map);
        QCOMPARE(j["best"]["formats"].size(), size_t(2));
        o.method = AllocationMethod::Greedy;
        QVERIFY(qpruner::allocate(p, o).toJson()["mode"].is_null());
    }

    // ---- importance score files ----

    void scoresNormalize()
    {
        QCOMPARE(qpruner::minMaxNormalize({3, 1, 2}), (std::vector<double>{1, 0, 0.5}));
        QCOMPARE(qpruner::minMaxNormalize({-2, 6, 0, 2}), (std::vector<double>{0, 1, 0.25, 0.5}));
        QCOMPARE(qpruner::minMaxNormalize({2, 2, 2}), (std::vector<double>{1, 1, 1}));
        QCOMPARE(qpruner::minMaxNormalize({7}), (std::vector<double>{1}));
        QVERIFY(qpruner::minMaxNormalize({}).empty());
        qpruner::MetricScores s;
        s.layers = {1, 3};
        s.modules = {{0, 1, 2, 3, 4, 5, 6}, {8, 7, 6, 5, 4, 3, 2}};
        qpruner::normalizeScores(s);
        QCOMPARE(s.normalized, (std::vector<double>{0, 1}));
        QCOMPARE(s.modulesNormalized[0][0], 0.0);
        QCOMPARE(s.modulesNormalized[1][0], 1.0);
        QCOMPARE(s.modulesNormalized[0][4], 0.5);
    }

    void scoresRoundTrip()
    {
        qpruner::ImportanceScores s;
        s.model = "models/stories260K.bin";
        s.numLayers = 3;
        s.calibration = {"tinystories", "text", 8, 64, 42, 512};
        qpruner::MetricScores mi;
        mi.options = {{"bins", 32}};
        mi.seconds = 0.25;
        mi.layers = {0.5, 2.5, 1.5};
        qpruner::normalizeScores(mi);
        qpruner::MetricScores bi;
        bi.layers = {0.1, 0.1, 0.4};
        bi.modules = {{1, 2, 3, 4, 5, 6, 7}, {7, 6, 5, 4, 3, 2, 1}, {0, 0, 0, 0, 0, 0, 9}};
        qpruner::normalizeScores(bi);
        s.metrics["mi"] = mi;
        s.metrics["bi"] = bi;

        const auto j = s.toJson();
        const qpruner::ImportanceScores back = qpruner::ImportanceScores::fromJson(json::parse(j.dump()));
        QCOMPARE(back.toJson().dump(), j.dump());
        QCOMPARE(back.model, s.model);
        QCOMPARE(back.numLayers, 3);
        QCOMPARE(back.calibration.seed, uint64_t(42));
        QCOMPARE(back.calibration.tokens, int64_t(512));
        QCOMPARE(back.metric("mi").normalized, (std::vector<double>{0, 1, 0.5}));
        QCOMPARE(back.metric("mi").options.dump(), std::string(R"({"bins":32})"));
        QCOMPARE(back.metric("bi").modules, bi.modules);
        QCOMPARE(back.metric("bi").modulesNormalized, bi.modulesNormalized);
        QVERIFY(back.metric("mi").modules.empty());

        QTemporaryDir tmp;
        QVERIFY(tmp.isValid());
        const std::filesystem::path file = std::filesystem::path(tmp.path().toStdString()) / "scores.json";
        s.save(file);
        const auto loaded = qpruner::ImportanceScores::load(file);
        QCOMPARE(loaded.toJson().dump(), j.dump());
        std::ifstream in(file);
        const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        QVERIFY(!text.empty() && text.back() == '\n');

        VERIFY_THROWS(qpruner::ConfigError, back.metric("taylor"), "no metric 'taylor'", "bi, mi");
        VERIFY_THROWS(qpruner::FileError, qpruner::ImportanceScores::load(file.parent_path() / "absent.json"),
                      "absent.json");
    }

    void scoresMalformed()
    {
        const auto base = [] {
            return json::parse(R"({"version": 1, "model": "m", "layers": 3,
                "metrics": {"mi": {"layers": [1, 2, 3], "normalized": [0, 0.5, 1]}}})");
        };
        QCOMPARE(qpruner::ImportanceScores::fromJson(base()).metric("mi").layers, (std::vector<double>{1, 2, 3}));
        using qpruner::FormatError;
        using qpruner::ImportanceScores;
        json j = base();
        j["metrics"]["mi"]["layers"] = {1, 2};
        VERIFY_THROWS(FormatError, ImportanceScores::fromJson(j), "metrics.mi.layers", "2 values", "(3)");
        j = base();
        j["metrics"]["mi"]["layers"][1] = "two";
        VERIFY_THROWS(FormatError, ImportanceScores::fromJson(j), "metrics.mi.layers[1]", "expected a number");
        j = base();
        j["metrics"]["mi"]["normalized"][2] = 1.5;
        VERIFY_THROWS(FormatError, ImportanceScores::fromJson(j), "metrics.mi.normalized[2]", "outside [0, 1]");
        j = base();
        j["metrics"]["mi"].erase("normalized");
        VERIFY_THROWS(FormatError, ImportanceScores::fromJson(j), "missing \"normalized\"");
        j = base();
        j.erase("metrics");
        VERIFY_THROWS(FormatError, ImportanceScores::fromJson(j), "missing \"metrics\"");
        j = base();
        j["metrics"] = json::object();
        VERIFY_THROWS(FormatError, ImportanceScores::fromJson(j), "metrics", "non-empty");
        j = base();
        j["version"] = 2;
        VERIFY_THROWS(FormatError, ImportanceScores::fromJson(j), "version", "not supported");
        j = base();
        j["layers"] = 0;
        VERIFY_THROWS(FormatError, ImportanceScores::fromJson(j), "\"layers\"", "positive layer count");
        j = base();
        j["metrics"]["mi"]["modules"] = json::array({json::object(), json::object(), json::object()});
        VERIFY_THROWS(FormatError, ImportanceScores::fromJson(j), "metrics.mi.modules[0]", "missing \"q\"");

        QTemporaryDir tmp;
        QVERIFY(tmp.isValid());
        const std::filesystem::path file = std::filesystem::path(tmp.path().toStdString()) / "bad.json";
        j = base();
        j["metrics"]["mi"]["layers"] = {1, 2};
        std::ofstream(file) << j.dump();
        VERIFY_THROWS(FormatError, ImportanceScores::load(file), "bad.json", "metrics.mi.layers");
        std::ofstream(file) << "{not json";
        VERIFY_THROWS(FormatError, ImportanceScores::load(file), "bad.json");
    }
};

QTEST_APPLESS_MAIN(TestAllocation)
#include "test_allocation.moc"

// The search strategies besides bayes and random (bayes_search.h describes each): evopress, nsga2, lagrangian,
// ap-ratio, with the exact multiple-choice knapsack of the lagrangian.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <set>

#include "qpruner/error.h"
#include "search/gaussian_process.h"
#include "search/strategy_internal.h"

namespace qpruner::search {

namespace detail {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

Proposal waiting()
{
    Proposal p;
    p.wait = true;
    return p;
}

Proposal exhausted()
{
    Proposal p;
    p.exhausted = true;
    return p;
}

Proposal make(const Choice& c, const std::string& source, double fidelity)
{
    Proposal p;
    p.choice = c;
    p.source = source;
    p.fidelity = fidelity;
    return p;
}

std::string fidelityLabel(double f)
{
    if (f >= 1)
        return "1";
    // 1/8, 1/2, ... when the fraction is one over an integer; else the decimal.
    const double inv = 1.0 / f;
    if (std::abs(inv - std::round(inv)) < 1e-9)
        return "1/" + std::to_string(int64_t(std::llround(inv)));
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g", f);
    return buf;
}

// Non-dominated sorting of (objective, bytes) pairs, both minimised (+inf objectives last): the front rank of
// each point (0 = non-dominated) and its crowding distance within its front.
struct Ranking {
    std::vector<int> rank;
    std::vector<double> crowding;
};

Ranking rankPoints(const std::vector<double>& obj, const std::vector<double>& bytes)
{
    const size_t n = obj.size();
    Ranking r;
    r.rank.assign(n, -1);
    r.crowding.assign(n, 0);
    auto dominates = [&](size_t a, size_t b) {
        return obj[a] <= obj[b] && bytes[a] <= bytes[b] && (obj[a] < obj[b] || bytes[a] < bytes[b]);
    };
    size_t assigned = 0;
    for (int front = 0; assigned < n; ++front) {
        std::vector<size_t> members;
        for (size_t i = 0; i < n; ++i) {
            if (r.rank[i] >= 0)
                continue;
            bool dominated = false;
            for (size_t j = 0; j < n && !dominated; ++j)
                dominated = j != i && r.rank[j] < 0 && dominates(j, i);
            if (!dominated)
                members.push_back(i);
        }
        if (members.empty()) // only mutually equal points remain (cannot happen: equal points do not dominate)
            for (size_t i = 0; i < n; ++i)
                if (r.rank[i] < 0)
                    members.push_back(i);
        for (size_t i : members)
            r.rank[i] = front;
        assigned += members.size();
        // Crowding distance over the two objectives (infinite at each end).
        for (const std::vector<double>* v : {&obj, &bytes}) {
            std::vector<size_t> order = members;
            std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return (*v)[a] < (*v)[b]; });
            const double lo = (*v)[order.front()], hi = (*v)[order.back()];
            r.crowding[order.front()] = kInf;
            r.crowding[order.back()] = kInf;
            if (!(hi > lo) || !std::isfinite(hi - lo))
                continue;
            for (size_t k = 1; k + 1 < order.size(); ++k)
                r.crowding[order[k]] += ((*v)[order[k + 1]] - (*v)[order[k - 1]]) / (hi - lo);
        }
    }
    return r;
}

// The `count` best points by (rank, crowding descending, index).
std::vector<size_t> selectBest(const std::vector<double>& obj, const std::vector<double>& bytes, size_t count)
{
    const Ranking r = rankPoints(obj, bytes);
    std::vector<size_t> order(obj.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        if (r.rank[a] != r.rank[b])
            return r.rank[a] < r.rank[b];
        return r.crowding[a] > r.crowding[b];
    });
    order.resize(std::min(count, order.size()));
    return order;
}

} // namespace

uint64_t mix(uint64_t seed, uint64_t a, uint64_t b)
{
    uint64_t z = seed ^ (a * 0x9E3779B97F4A7C15ULL) ^ (b * 0xC2B2AE3D27D4EB4FULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

TrialIndex::TrialIndex(const std::vector<store::TrialRecord>& trials)
{
    for (const auto& t : trials) {
        held.insert(t.encoding);
        Entry& e = entries[{t.encoding, t.fidelity}];
        if (t.state == store::TrialState::Complete && t.objective) {
            e.state = State::Complete;
            e.value = std::min(e.value, *t.objective); // value stays +inf until a trial of the key completes
        } else if (t.state == store::TrialState::Running && e.state != State::Complete) {
            e.state = State::Running;
        } else if (t.state == store::TrialState::Failed && e.state == State::Missing) {
            e.state = State::Failed;
        }
    }
}

TrialIndex::Entry TrialIndex::at(const std::string& encoding, double fidelity) const
{
    const auto it = entries.find({encoding, fidelity});
    return it == entries.end() ? Entry{} : it->second;
}

std::vector<int> levelOrder(const SearchSpace& space)
{
    std::vector<int> order(space.candidates.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
        if (space.position[size_t(a)] != space.position[size_t(b)])
            return space.position[size_t(a)] < space.position[size_t(b)];
        return space.unitBytes[0][size_t(a)] < space.unitBytes[0][size_t(b)];
    });
    return order;
}

Levels::Levels(const SearchSpace& space) : order(levelOrder(space)), of(order.size())
{
    for (size_t i = 0; i < order.size(); ++i)
        of[size_t(order[i])] = int(i);
}

bool Levels::repair(const SearchSpace& space, Choice& c, std::mt19937_64& rng) const
{
    while (!space.feasible(c)) {
        std::vector<int> down;
        for (int u = 0; u < space.units; ++u)
            if (of[size_t(c[size_t(u)])] > 0)
                down.push_back(u);
        if (down.empty())
            return false;
        const int u = down[size_t(rng() % down.size())];
        c[size_t(u)] = shifted(c[size_t(u)], -1);
    }
    return true;
}

namespace {

std::vector<double> depthsOf(const SearchProblem& problem)
{
    const int U = problem.space.units;
    if (int(problem.unitDepth.size()) == U)
        return problem.unitDepth;
    std::vector<double> d(size_t(U), 0.5);
    for (int u = 0; u < U; ++u)
        d[size_t(u)] = U > 1 ? double(u) / double(U - 1) : 0.5;
    return d;
}

// The first initial point of the problem that fits, else the uniform-level map that fits (ap-ratio, slope 0).
std::pair<Choice, std::string> startingMap(const SearchProblem& problem)
{
    for (const auto& ip : problem.initial)
        if (int(ip.choice.size()) == problem.space.units && problem.space.feasible(ip.choice))
            return {ip.choice, ip.source};
    return {apRatioChoice(problem.space, depthsOf(problem), 0), "initial:uniform-level"};
}

} // namespace

Proposal proposeEvoPress(const TrialIndex& index, const SearchProblem& problem, const SearchOptions& options)
{
    const EvoPressOptions& E = options.evopress;
    const SearchSpace& space = problem.space;
    const int U = space.units;
    const Levels levels(space);
    const int top = levels.top();

    auto [parent, parentSource] = startingMap(problem);
    const auto pe = index.at(space.encode(parent), 1.0);
    if (pe.state == TrialIndex::State::Missing)
        return make(parent, parentSource, 1.0);
    if (pe.state == TrialIndex::State::Running)
        return waiting();
    double parentValue = pe.state == TrialIndex::State::Complete ? pe.value : kInf;

    // Keys (map, fidelity) some earlier generation of the replay needed: a generation that needs nothing new is
    // idle, and 50 idle generations in a row mean the mutations find nothing new (a small space, or the parent
    // boxed in by the budget).
    std::set<std::pair<std::string, double>> used;
    int idle = 0;
    for (int g = 0;; ++g) {
        std::mt19937_64 rng(mix(options.seed, uint64_t(g), 21));
        std::vector<Choice> kids;
        std::set<std::string> seen{space.encode(parent)};
        for (int tries = 0; int(kids.size()) < E.offspring && tries < 50 * E.offspring; ++tries) {
            Choice c = parent;
            const int switches = 1 + int(rng() % uint64_t(std::max(1, E.maxSwitches)));
            for (int s = 0; s < switches; ++s) {
                std::vector<int> up, down;
                for (int u = 0; u < U; ++u) {
                    if (levels.of[size_t(c[size_t(u)])] < top)
                        up.push_back(u);
                    if (levels.of[size_t(c[size_t(u)])] > 0)
                        down.push_back(u);
                }
                // A switch raises one unit and lowers another (EvoPress's level switch, which keeps the
                // compression level when levels cost the same everywhere); as unit costs differ here, one switch in
                // four only raises and one in four only lowers, so the number of precise units can change too.
                const uint64_t kind = rng() % 4; // 0, 1: switch; 2: raise only; 3: lower only
                const int a = kind != 3 && !up.empty() ? up[size_t(rng() % up.size())] : -1;
                std::vector<int> others;
                for (int u : down)
                    if (u != a)
                        others.push_back(u);
                const int b = kind != 2 && !others.empty() ? others[size_t(rng() % others.size())] : -1;
                if ((kind < 2 && (a < 0 || b < 0)) || (kind == 2 && a < 0) || (kind == 3 && b < 0))
                    break;
                if (a >= 0)
                    c[size_t(a)] = levels.shifted(c[size_t(a)], +1);
                if (b >= 0)
                    c[size_t(b)] = levels.shifted(c[size_t(b)], -1);
            }
            if (space.feasible(c) && seen.insert(space.encode(c)).second)
                kids.push_back(std::move(c));
        }
        if (kids.empty())
            return exhausted();
        std::vector<size_t> cand(kids.size());
        std::iota(cand.begin(), cand.end(), 0);
        std::vector<double> value(kids.size(), kInf);
        bool fresh = false;
        for (size_t s = 0; s < E.fidelities.size(); ++s) {
            const double f = E.fidelities[s];
            bool running = false;
            for (size_t i : cand) {
                const std::string enc = space.encode(kids[i]);
                fresh = used.insert({enc, f}).second || fresh;
                const auto e = index.at(enc, f);
                switch (e.state) {
                case TrialIndex::State::Missing:
                    return make(kids[i], "evopress:g" + std::to_string(g) + "@" + fidelityLabel(f), f);
                case TrialIndex::State::Running: running = true; break;
                case TrialIndex::State::Complete: value[i] = e.value; break;
                case TrialIndex::State::Failed: value[i] = kInf; break;
                }
            }
            if (running)
                return waiting();
            std::stable_sort(cand.begin(), cand.end(), [&](size_t a, size_t b) { return value[a] < value[b]; });
            if (s + 1 < E.fidelities.size())
                cand.resize(std::min(cand.size(), size_t(std::max(1, E.survivors[s]))));
        }
        if (value[cand.front()] < parentValue) {
            parent = kids[cand.front()];
            parentValue = value[cand.front()];
        }
        idle = fresh ? 0 : idle + 1;
        if (idle >= 50)
            return exhausted();
    }
}

namespace {

// NSGA-II offspring of generation g: bred from the population, repaired into the budget, not held by any trial
// of the earlier generations (`held`), ranked by the surrogate (fitted on those generations' complete trials).
std::vector<Choice> breed(const SearchProblem& problem, const SearchOptions& options, int g,
                          const std::vector<Choice>& pop, const std::vector<double>& popValue,
                          const std::set<std::string>& held, const std::vector<Choice>& fitX,
                          const std::vector<double>& fitY)
{
    const SearchSpace& space = problem.space;
    const Nsga2Options& N = options.nsga2;
    const int U = space.units, K = int(space.candidates.size());
    const Levels levels(space);
    std::mt19937_64 rng(mix(options.seed, uint64_t(g), 31));
    std::uniform_real_distribution<double> uniform(0, 1);
    const double pm = N.mutation > 0 ? N.mutation : 1.0 / U;

    std::vector<double> bytes;
    for (const Choice& c : pop)
        bytes.push_back(double(space.bytes(c)));
    const Ranking rk = rankPoints(popValue, bytes);
    auto tournament = [&] {
        const size_t a = rng() % pop.size(), b = rng() % pop.size();
        if (rk.rank[a] != rk.rank[b])
            return rk.rank[a] < rk.rank[b] ? a : b;
        return rk.crowding[a] >= rk.crowding[b] ? a : b;
    };
    const size_t want = size_t(std::max(1, N.population)) * size_t(std::max(1, N.prefilter));
    std::vector<Choice> cands;
    std::set<std::string> seen;
    for (size_t tries = 0; cands.size() < want && tries < 50 * want; ++tries) {
        const Choice& p1 = pop[tournament()];
        const Choice& p2 = pop[tournament()];
        Choice c(static_cast<size_t>(U));
        for (int u = 0; u < U; ++u) {
            c[size_t(u)] = (rng() & 1) ? p1[size_t(u)] : p2[size_t(u)];
            if (uniform(rng) < pm)
                c[size_t(u)] = int(rng() % uint64_t(K));
        }
        if (!levels.repair(space, c, rng))
            continue;
        const std::string e = space.encode(c);
        if (held.count(e) || !seen.insert(e).second)
            continue;
        cands.push_back(std::move(c));
    }
    const size_t P = size_t(std::max(1, N.population));
    if (cands.size() <= P || N.prefilter <= 1 || fitX.size() < 2)
        return cands.size() > P ? std::vector<Choice>(cands.begin(), cands.begin() + long(P)) : cands;
    // Surrogate pre-filter: the GP's predicted objective with the exact bytes, NSGA-II ranked.
    std::vector<std::vector<double>> X, Xs;
    for (const Choice& c : fitX)
        X.push_back(space.features(c));
    GaussianProcess gp;
    GpFitOptions fo;
    fo.restarts = options.gpRestarts;
    fo.maxIterations = options.gpIterations;
    fo.seed = mix(options.seed, uint64_t(g), 32);
    gp.fit(X, fitY, fo);
    for (const Choice& c : cands)
        Xs.push_back(space.features(c));
    const GpPrediction pred = gp.predict(Xs);
    std::vector<double> cb;
    for (const Choice& c : cands)
        cb.push_back(double(space.bytes(c)));
    std::vector<Choice> out;
    for (size_t i : selectBest(pred.mean, cb, P))
        out.push_back(cands[i]);
    return out;
}

} // namespace

Proposal proposeNsga2(const std::vector<store::TrialRecord>& trials, const TrialIndex& index,
                      const SearchProblem& problem, const SearchOptions& options)
{
    const SearchSpace& space = problem.space;
    const size_t P = size_t(std::max(1, options.nsga2.population));
    const auto tag = [](int g) { return "nsga2:g" + std::to_string(g); };
    auto valueOf = [&](const Choice& c) {
        const auto e = index.at(space.encode(c), 1.0);
        return e.state == TrialIndex::State::Complete ? e.value : kInf;
    };
    auto transform = [&](double v) { return options.logObjective ? std::log(std::max(v, 1e-300)) : v; };

    // Generation 0: the initial design, then random feasible maps.
    std::vector<Choice> gen;
    std::vector<std::string> sources;
    std::set<std::string> heldBefore; // maps of the generations before the current one
    {
        std::set<std::string> seen;
        for (const auto& ip : problem.initial)
            if (gen.size() < P && int(ip.choice.size()) == space.units && space.feasible(ip.choice) &&
                seen.insert(space.encode(ip.choice)).second) {
                gen.push_back(ip.choice);
                sources.push_back(ip.source);
            }
        std::mt19937_64 rng(mix(options.seed, 0, 30));
        const int K = int(space.candidates.size());
        for (size_t tries = 0; gen.size() < P && tries < 200 * P; ++tries) {
            Choice c(static_cast<size_t>(space.units));
            for (auto& v : c)
                v = int(rng() % uint64_t(K));
            if (space.feasible(c) && seen.insert(space.encode(c)).second) {
                gen.push_back(c);
                sources.push_back(tag(0));
            }
        }
    }
    std::vector<Choice> pop;
    std::vector<double> popValue;
    std::vector<Choice> fitX;
    std::vector<double> fitY;
    for (int g = 0;; ++g) {
        if (g > 0) {
            // The offspring as claimed when a later generation exists (this one finished), else bred now.
            bool later = false;
            std::vector<Choice> tagged;
            std::set<std::string> seen;
            for (const auto& t : trials) {
                if (t.source == tag(g + 1))
                    later = true;
                if (t.source == tag(g) && seen.insert(t.encoding).second)
                    tagged.push_back(space.decode(t.encoding));
            }
            gen = later ? tagged : breed(problem, options, g, pop, popValue, heldBefore, fitX, fitY);
            sources.assign(gen.size(), tag(g));
            if (gen.empty())
                return exhausted();
        }
        bool running = false;
        for (size_t i = 0; i < gen.size(); ++i) {
            const auto e = index.at(space.encode(gen[i]), 1.0);
            if (e.state == TrialIndex::State::Missing)
                return make(gen[i], sources[i], 1.0);
            running = running || e.state == TrialIndex::State::Running;
        }
        if (running)
            return waiting();
        // Selection of the next population; the generation's complete trials join the surrogate's data.
        for (const Choice& c : gen) {
            heldBefore.insert(space.encode(c));
            const double v = valueOf(c);
            if (std::isfinite(v)) {
                fitX.push_back(c);
                fitY.push_back(transform(v));
            }
        }
        std::vector<Choice> all = pop;
        all.insert(all.end(), gen.begin(), gen.end());
        std::vector<double> obj, bytes;
        for (const Choice& c : all) {
            obj.push_back(valueOf(c));
            bytes.push_back(double(space.bytes(c)));
        }
        std::vector<Choice> next;
        std::vector<double> nextValue;
        for (size_t i : selectBest(obj, bytes, P)) {
            next.push_back(all[i]);
            nextValue.push_back(obj[i]);
        }
        pop = std::move(next);
        popValue = std::move(nextValue);
        if (g > 10000)
            return exhausted();
    }
}

Proposal proposeLagrangian(const TrialIndex& index, const SearchProblem& problem, const SearchOptions& options)
{
    const SearchSpace& space = problem.space;
    if (problem.unitErrors.size() != size_t(space.units))
        throw ConfigError("search: the lagrangian strategy needs a per-unit error table (" +
                          std::to_string(space.units) + " units x " + std::to_string(space.candidates.size()) +
                          " candidates), e.g. quant-kl of each unit at each candidate format");
    // Every Pareto-optimal knapsack solution within the budget, by ascending bytes: first the run's budget (the
    // last), then budgets spread evenly down to the cheapest map (at most 64, each the best solution that fits
    // it), then the remaining solutions from the most bytes down.
    const std::vector<KnapsackSolution> front =
        knapsackFront(problem.unitErrors, space.unitBytes, space.budgetBytes - space.fixedBytes);
    if (front.empty())
        return exhausted();
    std::vector<size_t> order{front.size() - 1};
    const int steps = int(std::min<size_t>(64, front.size()));
    const double lo = double(front.front().bytes), hi = double(front.back().bytes);
    for (int i = 1; i < steps; ++i) {
        const double target = hi - (hi - lo) * i / double(steps - 1);
        size_t k = 0; // the last solution with bytes <= target
        while (k + 1 < front.size() && double(front[k + 1].bytes) <= target)
            ++k;
        order.push_back(k);
    }
    for (size_t k = front.size(); k-- > 0;)
        order.push_back(k);
    std::set<size_t> tried;
    for (size_t k : order) {
        if (!tried.insert(k).second)
            continue;
        const std::string enc = space.encode(front[k].choice);
        if (!index.held.count(enc))
            return make(front[k].choice, k + 1 == front.size() ? "lagrangian:budget" : "lagrangian:front", 1.0);
    }
    return exhausted();
}

Proposal proposeApRatio(const TrialIndex& index, const SearchProblem& problem, const SearchOptions& options)
{
    const auto depth = depthsOf(problem);
    for (double slope : options.apSlopes) {
        const Choice c = apRatioChoice(problem.space, depth, slope);
        const std::string enc = problem.space.encode(c);
        if (!index.held.count(enc)) {
            char buf[48];
            std::snprintf(buf, sizeof buf, "ap-ratio:slope=%g", slope);
            return make(c, buf, 1.0);
        }
    }
    return exhausted();
}

} // namespace detail

std::vector<KnapsackSolution> knapsackFront(const std::vector<std::vector<double>>& error,
                                            const std::vector<std::vector<int64_t>>& bytes, int64_t budget,
                                            size_t maxStates)
{
    if (error.size() != bytes.size())
        throw ConfigError("knapsack: " + std::to_string(error.size()) + " error rows for " +
                          std::to_string(bytes.size()) + " byte rows");
    for (size_t u = 0; u < error.size(); ++u) {
        if (error[u].size() != bytes[u].size() || error[u].empty())
            throw ConfigError("knapsack: unit " + std::to_string(u) + " has mismatched or no candidates");
        for (size_t k = 0; k < error[u].size(); ++k)
            if (!(error[u][k] >= 0) || !std::isfinite(error[u][k]) || bytes[u][k] < 0)
                throw ConfigError("knapsack: unit " + std::to_string(u) + " candidate " + std::to_string(k) +
                                  " has a negative or non-finite error or negative bytes");
    }
    // states[u]: Pareto-optimal partial sums after units 0..u-1, ascending bytes, strictly descending error; each
    // remembers the state it extends and the candidate taken.
    struct State {
        int64_t bytes;
        double error;
        uint32_t parent;
        int16_t k;
    };
    std::vector<std::vector<State>> layers(1, std::vector<State>{{0, 0.0, 0, -1}});
    for (size_t u = 0; u < error.size(); ++u) {
        const auto& prev = layers.back();
        std::vector<State> next;
        next.reserve(prev.size() * error[u].size());
        for (size_t i = 0; i < prev.size(); ++i)
            for (size_t k = 0; k < error[u].size(); ++k) {
                const int64_t b = prev[i].bytes + bytes[u][k];
                if (b <= budget)
                    next.push_back({b, prev[i].error + error[u][k], uint32_t(i), int16_t(k)});
            }
        if (next.empty())
            return {};
        // Ties are broken towards the lexicographically smaller choice by keeping the first of equal states in
        // (parent, k) order, which is the order they were generated in.
        std::stable_sort(next.begin(), next.end(), [](const State& a, const State& b) {
            if (a.bytes != b.bytes)
                return a.bytes < b.bytes;
            return a.error < b.error;
        });
        std::vector<State> kept;
        for (const State& s : next)
            if (kept.empty() || s.error < kept.back().error)
                kept.push_back(s);
        if (kept.size() > maxStates)
            throw ConfigError("knapsack: more than " + std::to_string(maxStates) +
                              " Pareto-optimal partial sums; use a coarser granularity");
        layers.push_back(std::move(kept));
    }
    std::vector<KnapsackSolution> out(layers.back().size());
    for (size_t j = 0; j < out.size(); ++j) {
        KnapsackSolution& s = out[j];
        s.error = layers.back()[j].error;
        s.bytes = layers.back()[j].bytes;
        s.choice.assign(error.size(), 0);
        size_t i = j;
        for (size_t u = error.size(); u > 0; --u) {
            const State& st = layers[u][i];
            s.choice[u - 1] = st.k;
            i = st.parent;
        }
    }
    return out;
}

KnapsackSolution solveKnapsack(const std::vector<std::vector<double>>& error,
                               const std::vector<std::vector<int64_t>>& bytes, int64_t budget, size_t maxStates)
{
    // The least error is the front's last solution (errors descend along it; ties in error go to fewer bytes).
    auto front = knapsackFront(error, bytes, budget, maxStates);
    return front.empty() ? KnapsackSolution{} : std::move(front.back());
}

Choice lagrangianChoice(const std::vector<std::vector<double>>& error, const std::vector<std::vector<int64_t>>& bytes,
                        double lambda)
{
    Choice c(error.size());
    for (size_t u = 0; u < error.size(); ++u) {
        size_t best = 0;
        for (size_t k = 1; k < error[u].size(); ++k) {
            const double a = error[u][k] + lambda * double(bytes[u][k]);
            const double b = error[u][best] + lambda * double(bytes[u][best]);
            if (a < b || (a == b && bytes[u][k] < bytes[u][best]))
                best = k;
        }
        c[u] = int(best);
    }
    return c;
}

Choice apRatioChoice(const SearchSpace& space, const std::vector<double>& depth, double slope)
{
    const std::vector<int> order = detail::levelOrder(space);
    const int U = space.units;
    auto at = [&](double c) {
        Choice x(static_cast<size_t>(U));
        for (int u = 0; u < U; ++u) {
            const double target = c + slope * (depth[size_t(u)] - 0.5);
            int pick = order.front();
            for (int k : order)
                if (space.position[size_t(k)] <= target + 1e-12)
                    pick = k;
            x[size_t(u)] = pick;
        }
        return x;
    };
    double lo = -std::abs(slope) - 1, hi = std::abs(slope) + 2; // at(lo): all cheapest; at(hi): all most precise
    if (space.feasible(at(hi)))
        return at(hi);
    if (!space.feasible(at(lo)))
        return at(lo);
    for (int i = 0; i < 60; ++i) {
        const double mid = 0.5 * (lo + hi);
        (space.feasible(at(mid)) ? lo : hi) = mid;
    }
    return at(lo);
}

} // namespace qpruner::search

#include "search/bayes_search.h"

#include <algorithm>
#include <iterator>
#include <chrono>
#include <cmath>
#include <limits>
#include <mutex>
#include <map>
#include <random>
#include <set>
#include <unordered_map>
#include <condition_variable>
#include <thread>
#include <unordered_set>

#include "model/dtype.h"
#include "qpruner/error.h"
#include "qpruner/pareto.h"
#include "search/acquisition.h"
#include "search/gaussian_process.h"
#include "search/strategy_internal.h"

namespace qpruner::search {

namespace {
const std::pair<const char*, Strategy> kStrategies[] = {
    {"bayes", Strategy::Bayes},           {"random", Strategy::Random},         {"evopress", Strategy::EvoPress},
    {"nsga2", Strategy::Nsga2},           {"lagrangian", Strategy::Lagrangian}, {"ap-ratio", Strategy::ApRatio}};
} // namespace

const std::vector<std::string>& strategyNames()
{
    static const std::vector<std::string> names = [] {
        std::vector<std::string> v;
        for (const auto& [n, s] : kStrategies)
            v.push_back(n);
        return v;
    }();
    return names;
}

Strategy parseStrategy(const std::string& name)
{
    std::string list;
    for (const auto& [n, s] : kStrategies) {
        if (name == n)
            return s;
        list += (list.empty() ? "" : ", ") + std::string(n);
    }
    throw ConfigError("unknown search strategy '" + name + "' (expected one of " + list + ")");
}

std::string strategyName(Strategy s)
{
    for (const auto& [n, v] : kStrategies)
        if (v == s)
            return n;
    return "?";
}

int64_t SearchSpace::bytes(const Choice& c) const
{
    int64_t b = fixedBytes;
    for (int u = 0; u < units; ++u)
        b += unitBytes[size_t(u)][size_t(c[size_t(u)])];
    return b;
}

int64_t SearchSpace::minBytes() const
{
    int64_t b = fixedBytes;
    for (const auto& row : unitBytes)
        b += *std::min_element(row.begin(), row.end());
    return b;
}

std::string SearchSpace::encode(const Choice& c) const
{
    std::string s(size_t(units), '0');
    for (int u = 0; u < units; ++u)
        s[size_t(u)] = char('0' + c[size_t(u)]);
    return s;
}

Choice SearchSpace::decode(const std::string& encoding) const
{
    if (int(encoding.size()) != units)
        throw FormatError("map encoding '" + encoding + "' has " + std::to_string(encoding.size()) +
                          " units, the search space " + std::to_string(units));
    Choice c(static_cast<size_t>(units));
    for (int u = 0; u < units; ++u) {
        const int k = encoding[size_t(u)] - '0';
        if (k < 0 || k >= int(candidates.size()))
            throw FormatError("map encoding '" + encoding + "': unit " + std::to_string(u) +
                              " names no candidate");
        c[size_t(u)] = k;
    }
    return c;
}

std::vector<double> SearchSpace::features(const Choice& c) const
{
    std::vector<double> x(size_t(units) + 1);
    double coverage = 0;
    for (int u = 0; u < units; ++u) {
        x[size_t(u)] = position[size_t(c[size_t(u)])];
        coverage += importance[size_t(u)] * x[size_t(u)];
    }
    x[size_t(units)] = units > 0 ? coverage / units : 0;
    return x;
}

void SearchSpace::validate() const
{
    const size_t k = candidates.size();
    if (units < 1)
        throw ConfigError("search space: no searched units");
    if (k < 2 || k > 10)
        throw ConfigError("search space: " + std::to_string(k) + " candidates (need 2 to 10)");
    if (position.size() != k)
        throw ConfigError("search space: positions do not match the candidates");
    if (unitBytes.size() != size_t(units) || importance.size() != size_t(units))
        throw ConfigError("search space: per-unit bytes or importance do not match the units");
    for (const auto& row : unitBytes)
        if (row.size() != k)
            throw ConfigError("search space: a unit's bytes do not match the candidates");
    if (budgetBytes < minBytes())
        throw ConfigError("search space: the budget (" + std::to_string(budgetBytes) +
                          " bytes) is below the cheapest map (" + std::to_string(minBytes()) + " bytes)");
}

namespace {

using detail::mix;

bool isComplete(const store::TrialRecord& t)
{
    return t.state == store::TrialState::Complete && t.objective.has_value();
}

struct PoolBuilder {
    const SearchSpace& space;
    const std::unordered_set<std::string>& held;
    std::unordered_set<std::string> seen;
    std::vector<Choice> pool;

    void add(const Choice& c)
    {
        if (!space.feasible(c))
            return;
        std::string e = space.encode(c);
        if (held.count(e) || !seen.insert(e).second)
            return;
        pool.push_back(c);
    }
};

Proposal acquisitionProposal(const std::vector<store::TrialRecord>& trials, const SearchProblem& problem,
                             const SearchOptions& options, int number,
                             const std::unordered_set<std::string>& held)
{
    const auto t0 = std::chrono::steady_clock::now(); // the surrogate's cost: pool, fit and acquisition
    const SearchSpace& space = problem.space;
    // Multi-fidelity: the GP also sees each trial's fidelity (log scale, f_0 -> 0, 1 -> 1) and predicts at 1.
    const double f0 = options.fidelities.front();
    const bool multi = options.fidelities.size() > 1;
    auto fidelityFeature = [&](double f) { return multi ? 1.0 - std::log(f) / std::log(f0) : 1.0; };
    std::vector<Choice> done;
    std::vector<double> y, m, fid;
    bool anyFull = false;
    for (const auto& t : trials)
        if (isComplete(t)) {
            done.push_back(space.decode(t.encoding));
            const double v = *t.objective;
            y.push_back(options.logObjective ? std::log(std::max(v, 1e-300)) : v);
            m.push_back(double(t.budgetedBytes));
            fid.push_back(t.fidelity);
            anyFull = anyFull || t.fidelity >= 1;
        }
    // The front and the incumbent come from full-fidelity trials once there are some.
    auto counts = [&](size_t i) { return !anyFull || fid[i] >= 1; };

    std::mt19937_64 rng(mix(options.seed, uint64_t(number), 1));
    PoolBuilder pb{space, held, {}, {}};
    const int K = int(space.candidates.size());
    // Uniform random maps kept when within budget; where the budget leaves few of them (a tight budget over many
    // units: 35 linears at 6 bpw of nf4/int8/bf16 are almost never feasible at random), the rest of the quota is
    // filled by repairing random maps: random units lowered one level at a time until the map fits.
    const detail::Levels levels(space);
    auto addRandom = [&] {
        int added = 0;
        for (int tries = 0; added < options.poolRandom && tries < 50 * options.poolRandom; ++tries) {
            Choice c(static_cast<size_t>(space.units));
            for (auto& v : c)
                v = int(rng() % uint64_t(K));
            const size_t before = pb.pool.size();
            pb.add(c);
            added += int(pb.pool.size() - before);
        }
        for (int tries = 0; added < options.poolRandom && tries < 10 * options.poolRandom; ++tries) {
            Choice c(static_cast<size_t>(space.units));
            for (auto& v : c)
                v = int(rng() % uint64_t(K));
            levels.repair(space, c, rng); // pb.add drops it if it still does not fit
            const size_t before = pb.pool.size();
            pb.add(c);
            added += int(pb.pool.size() - before);
        }
    };
    if (options.strategy == Strategy::Random) {
        addRandom();
        Proposal p;
        p.exhausted = pb.pool.empty();
        if (!p.exhausted) {
            p.choice = pb.pool.front();
            p.source = "random";
        }
        return p;
    }

    // Neighbours of the front (budgeted bytes against objective).
    std::vector<ObjectivePoint> points;
    std::vector<size_t> pointIndex;
    for (size_t i = 0; i < done.size(); ++i)
        if (counts(i)) {
            points.push_back({m[i], y[i]});
            pointIndex.push_back(i);
        }
    std::vector<size_t> front;
    for (size_t k : paretoFront(points))
        front.push_back(pointIndex[k]);
    for (size_t fi : front)
        for (int u = 0; u < space.units; ++u)
            for (int k = 0; k < K; ++k)
                if (k != done[fi][size_t(u)]) {
                    Choice c = done[fi];
                    c[size_t(u)] = k;
                    pb.add(c);
                }
    if (!front.empty() && space.units >= 2)
        for (int i = 0; i < options.poolTwoEdits; ++i) {
            Choice c = done[front[size_t(rng() % front.size())]];
            const int u1 = int(rng() % uint64_t(space.units));
            int u2 = int(rng() % uint64_t(space.units - 1));
            if (u2 >= u1)
                ++u2;
            c[size_t(u1)] = (c[size_t(u1)] + 1 + int(rng() % uint64_t(K - 1))) % K;
            c[size_t(u2)] = (c[size_t(u2)] + 1 + int(rng() % uint64_t(K - 1))) % K;
            pb.add(c);
        }
    if (problem.sampler && options.poolSamples > 0)
        for (const Choice& c : problem.sampler(mix(options.seed, uint64_t(number), 2), options.poolSamples))
            if (int(c.size()) == space.units)
                pb.add(c);
    addRandom();

    Proposal p;
    p.fidelity = f0;
    if (pb.pool.empty()) {
        p.exhausted = true;
        return p;
    }
    if (done.empty()) { // nothing to model yet: the first pool entry (random order above)
        p.choice = pb.pool.front();
        p.source = "random";
        return p;
    }

    const double yMin = *std::min_element(y.begin(), y.end()), yMax = *std::max_element(y.begin(), y.end());
    const double ySpan = yMax > yMin ? yMax - yMin : 1.0;
    const double mMin = double(space.minBytes()), mSpan = std::max(1.0, double(space.budgetBytes) - mMin);
    std::vector<std::vector<double>> X;
    std::vector<double> yn(y.size());
    for (size_t i = 0; i < done.size(); ++i) {
        X.push_back(space.features(done[i]));
        if (multi)
            X.back().push_back(fidelityFeature(fid[i]));
        yn[i] = (y[i] - yMin) / ySpan;
    }
    GaussianProcess gp;
    GpFitOptions fo;
    fo.restarts = options.gpRestarts;
    fo.maxIterations = options.gpIterations;
    fo.seed = mix(options.seed, uint64_t(number), 3);
    gp.fit(X, yn, fo);

    const Scalarization s = options.parEgo ? parEgoScalarization(options.seed, number, options.parEgoDivisions)
                                           : Scalarization{1.0, 0.0, 0.0};
    double best = std::numeric_limits<double>::infinity();
    for (size_t i = 0; i < done.size(); ++i)
        if (counts(i))
            best = std::min(best, s.value(yn[i], (m[i] - mMin) / mSpan));

    std::vector<std::vector<double>> Xs;
    Xs.reserve(pb.pool.size());
    for (const Choice& c : pb.pool) {
        Xs.push_back(space.features(c));
        if (multi)
            Xs.back().push_back(1.0);
    }
    const GpPrediction pred = gp.predict(Xs);
    size_t arg = 0;
    double bestEi = -1;
    for (size_t i = 0; i < pb.pool.size(); ++i) {
        const double mem = (double(space.bytes(pb.pool[i])) - mMin) / mSpan;
        const double sd = std::sqrt(std::max(0.0, pred.variance[i]));
        // Without ParEGO, plain EI below the best objective (the scalarisation max(y, 0) would clip every
        // improvement below the normalised best, 0).
        const double ei = options.parEgo ? scalarizedExpectedImprovement(s, pred.mean[i], sd, mem, best)
                                         : expectedImprovement(pred.mean[i], sd, best);
        if (ei > bestEi) {
            bestEi = ei;
            arg = i;
        }
    }
    p.choice = pb.pool[arg];
    p.source = "acquisition";
    p.secondsSurrogate = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return p;
}

} // namespace

namespace {

// Asynchronous successive halving over options.fidelities: the first map that earned a promotion and lacks
// its next fidelity (from the highest rung down); none: an empty choice.
Proposal promotion(const std::vector<store::TrialRecord>& trials, const SearchProblem& problem,
                   const SearchOptions& options, const detail::TrialIndex& index)
{
    const auto& F = options.fidelities;
    for (size_t k = F.size() - 1; k-- > 0;) {
        std::vector<std::pair<double, int>> rung; // (objective, number) of the maps complete at F[k]
        std::set<std::string> seen;
        for (const auto& t : trials)
            if (isComplete(t) && t.fidelity == F[k] && seen.insert(t.encoding).second)
                rung.push_back({*t.objective, t.number});
        const int eta = std::max(2, int(std::lround(F[k + 1] / F[k])));
        const size_t top = rung.size() / size_t(eta);
        std::sort(rung.begin(), rung.end());
        for (size_t i = 0; i < top; ++i) {
            const auto& t = *std::find_if(trials.begin(), trials.end(),
                                          [&](const store::TrialRecord& r) { return r.number == rung[i].second; });
            if (index.at(t.encoding, F[k + 1]).state == detail::TrialIndex::State::Missing) {
                Proposal p;
                p.choice = problem.space.decode(t.encoding);
                p.source = "promote:" + std::to_string(t.number);
                p.fidelity = F[k + 1];
                return p;
            }
        }
    }
    return {};
}

} // namespace

Proposal propose(const std::vector<store::TrialRecord>& stored, const SearchProblem& problem,
                 const SearchOptions& options, int number)
{
    // Manual trials (pipeline::evaluateMap) need not be points of the space: the search neither learns from
    // nor retries them.
    const auto manual = [](const store::TrialRecord& t) { return t.source == kManualTrialSource; };
    const bool anyManual = std::any_of(stored.begin(), stored.end(), manual);
    std::vector<store::TrialRecord> searched;
    if (anyManual)
        std::copy_if(stored.begin(), stored.end(), std::back_inserter(searched),
                     [&](const store::TrialRecord& t) { return !manual(t); });
    const std::vector<store::TrialRecord>& trials = anyManual ? searched : stored;
    const detail::TrialIndex index(trials);
    std::unordered_set<int> retried;
    for (const auto& t : trials)
        if (t.retryOf)
            retried.insert(*t.retryOf);
    // A failed trial is retried once; a retry that failed again is given up on (the map itself fails), unless
    // it was interrupted (its worker stopped or went away), which says nothing of the map: that one is retried
    // again, up to kMaxFailuresPerMap failures of the same map (at the same fidelity).
    constexpr int kMaxFailuresPerMap = 5;
    std::map<std::pair<std::string, double>, int> failures;
    for (const auto& t : trials)
        if (t.state == store::TrialState::Failed)
            ++failures[{t.encoding, t.fidelity}];
    const auto interrupted = [](const store::TrialRecord& t) {
        return t.error == "cancelled" || (t.error.rfind("worker ", 0) == 0 && t.error.find(" is gone") != std::string::npos);
    };
    for (const auto& t : trials) {
        if (t.state != store::TrialState::Failed || (t.retryOf && !interrupted(t)) || retried.count(t.number) ||
            failures[{t.encoding, t.fidelity}] >= kMaxFailuresPerMap)
            continue;
        const auto state = index.at(t.encoding, t.fidelity).state;
        if (state == detail::TrialIndex::State::Running || state == detail::TrialIndex::State::Complete)
            continue;
        Proposal p;
        p.choice = problem.space.decode(t.encoding);
        p.source = "retry";
        p.retryOf = t.number;
        p.fidelity = t.fidelity;
        return p;
    }
    switch (options.strategy) {
    case Strategy::EvoPress: return detail::proposeEvoPress(index, problem, options);
    case Strategy::Nsga2: return detail::proposeNsga2(trials, index, problem, options);
    case Strategy::Lagrangian: return detail::proposeLagrangian(index, problem, options);
    case Strategy::ApRatio: return detail::proposeApRatio(index, problem, options);
    case Strategy::Random: return acquisitionProposal(trials, problem, options, number, index.held);
    case Strategy::Bayes: break;
    }
    if (options.fidelities.size() > 1)
        if (Proposal p = promotion(trials, problem, options, index); !p.choice.empty())
            return p;
    for (const InitialPoint& ip : problem.initial) {
        if (int(ip.choice.size()) != problem.space.units || !problem.space.feasible(ip.choice))
            continue;
        if (!index.held.count(problem.space.encode(ip.choice))) {
            Proposal p{ip.choice, ip.source, std::nullopt, 0, false};
            p.fidelity = options.fidelities.front();
            return p;
        }
    }
    return acquisitionProposal(trials, problem, options, number, index.held);
}

int64_t fidelityCount(double fidelity, int64_t n)
{
    return std::clamp<int64_t>(int64_t(std::ceil(fidelity * double(n) - 1e-9)), 1, std::max<int64_t>(n, 1));
}

std::vector<size_t> trialFront(const std::vector<store::TrialRecord>& trials)
{
    std::vector<ObjectivePoint> points;
    std::vector<size_t> index;
    for (size_t i = 0; i < trials.size(); ++i)
        if (isComplete(trials[i]) && trials[i].fidelity >= 1) {
            points.push_back({double(trials[i].memoryBytes), *trials[i].objective});
            index.push_back(i);
        }
    std::vector<size_t> out;
    for (size_t f : paretoFront(points))
        out.push_back(index[f]);
    return out;
}

void validateSearchOptions(const SearchOptions& o)
{
    const auto& F = o.fidelities;
    if (F.empty() || F.back() != 1.0)
        throw ConfigError("search: fidelities must end at 1 (the full validation slice)");
    for (size_t i = 0; i < F.size(); ++i)
        if (!(F[i] > 0 && F[i] <= 1) || (i > 0 && !(F[i] > F[i - 1])))
            throw ConfigError("search: fidelities must ascend within (0, 1]");
    if (F.size() > 1 && o.strategy != Strategy::Bayes)
        throw ConfigError("search: multi-fidelity (fidelities) is for the bayes strategy; evopress has its own stages");
    const auto& E = o.evopress;
    if (E.offspring < 1 || E.maxSwitches < 1)
        throw ConfigError("search: evopress needs at least one offspring and one level switch");
    if (E.fidelities.empty() || E.fidelities.back() != 1.0)
        throw ConfigError("search: evopress stages must end at fidelity 1");
    for (size_t i = 0; i < E.fidelities.size(); ++i)
        if (!(E.fidelities[i] > 0 && E.fidelities[i] <= 1) || (i > 0 && !(E.fidelities[i] > E.fidelities[i - 1])))
            throw ConfigError("search: evopress stage fidelities must ascend within (0, 1]");
    if (E.survivors.size() + 1 != E.fidelities.size())
        throw ConfigError("search: evopress needs one survivor count per stage but the last (" +
                          std::to_string(E.fidelities.size() - 1) + "), got " + std::to_string(E.survivors.size()));
    for (int v : E.survivors)
        if (v < 1)
            throw ConfigError("search: evopress survivor counts must be at least 1");
    if (o.nsga2.population < 2 || o.nsga2.prefilter < 1 || o.nsga2.mutation < 0 || o.nsga2.mutation > 1)
        throw ConfigError("search: nsga2 needs a population of at least 2, a pre-filter factor of at least 1 and a "
                          "mutation rate in [0, 1]");
    if (o.apSlopes.empty())
        throw ConfigError("search: ap-ratio needs at least one slope");
    if (o.tokenBudget < 0 || o.spentTokens < 0)
        throw ConfigError("search: the token budget must not be negative");
}

SearchSummary runSearch(store::Store& store, int64_t runId, const SearchProblem& problem,
                        const EvaluatorFactory& evaluators, const SearchOptions& options,
                        const ProgressSink& progress, const CancelToken* cancel)
{
    problem.space.validate();
    if (options.trials < 1)
        throw ConfigError("search: --trials must be at least 1");
    if (options.workers < 1)
        throw ConfigError("search: --workers must be at least 1");
    validateSearchOptions(options);
    store.run(runId); // exists

    std::mutex mu; // guards the summary, the progress sink, the first error and the last reclaim
    SearchSummary summary;
    std::exception_ptr firstError;
    constexpr int kMaxConsecutiveFailures = 3;
    int evaluatedHere = 0;
    auto lastReclaim = std::chrono::steady_clock::now() - std::chrono::hours(1);

    // The heartbeat of this process while it searches (its row goes when it returns).
    std::mutex beatMu;
    std::condition_variable beatCv;
    bool stopBeating = false;
    std::thread beater;
    if (options.heartbeatSeconds > 0) {
        store.heartbeat(runId);
        beater = std::thread([&] {
            std::unique_lock lock(beatMu);
            while (!beatCv.wait_for(lock, std::chrono::duration<double>(options.heartbeatSeconds),
                                    [&] { return stopBeating; })) {
                lock.unlock();
                try {
                    store.heartbeat(runId);
                } catch (const std::exception&) {
                    // The store is unreachable: the search's own calls fail and report it.
                }
                lock.lock();
            }
        });
    }
    struct BeatStop {
        std::mutex& mu;
        std::condition_variable& cv;
        bool& stop;
        std::thread& t;
        store::Store& store;
        int64_t runId;
        ~BeatStop()
        {
            if (!t.joinable())
                return;
            {
                std::lock_guard lock(mu);
                stop = true;
            }
            cv.notify_all();
            t.join();
            try {
                store.retireWorker(runId);
            } catch (const std::exception&) {
            }
        }
    } beatStop{beatMu, beatCv, stopBeating, beater, store, runId};

    auto worker = [&](int w) {
        try {
            Evaluator evaluate = evaluators(w);
            int failuresInRow = 0;
            for (;;) {
                if (cancel)
                    cancel->throwIfCancelled();
                bool reclaim = false;
                {
                    std::lock_guard lock(mu);
                    if (firstError)
                        return;
                    if (options.maxEvaluations > 0 && evaluatedHere >= options.maxEvaluations)
                        return;
                    const auto now = std::chrono::steady_clock::now();
                    const double every = options.heartbeatSeconds > 0 ? options.heartbeatSeconds : 5.0;
                    if (now - lastReclaim >= std::chrono::duration<double>(every)) {
                        lastReclaim = now;
                        reclaim = true;
                    }
                }
                if (reclaim)
                    store.reclaimStaleTrials(runId, options.staleSeconds);
                const auto trials = store.trialSummaries(runId);
                int active = 0, number = 0, complete = 0, running = 0;
                int64_t tokens = options.spentTokens;
                for (const auto& t : trials) {
                    if (t.state != store::TrialState::Failed) {
                        ++active;
                        tokens += t.tokens;
                    }
                    complete += isComplete(t) ? 1 : 0;
                    running += t.state == store::TrialState::Running ? 1 : 0;
                    number = std::max(number, t.number + 1);
                }
                // The token budget ends the search once it has a result (spentTokens alone may exceed it).
                const bool spent = options.tokenBudget > 0 && tokens >= options.tokenBudget && active > 0;
                if (active >= options.trials || spent) {
                    if (!options.waitForRunning || running == 0)
                        return;
                    // Every trial is claimed and some run elsewhere: one may come back (its worker gone).
                    std::this_thread::sleep_for(std::chrono::milliseconds(200));
                    continue;
                }
                Proposal p = propose(trials, problem, options, number);
                if (p.wait) { // the strategy needs results that are still running
                    std::this_thread::sleep_for(std::chrono::milliseconds(100));
                    continue;
                }
                if (p.exhausted) {
                    std::lock_guard lock(mu);
                    summary.exhausted = true;
                    return;
                }
                store::TrialRecord rec;
                nlohmann::json knownMetrics = nlohmann::json::object();
                rec.encoding = problem.space.encode(p.choice);
                rec.source = p.source;
                rec.retryOf = p.retryOf;
                rec.secondsSurrogate = p.secondsSurrogate;
                rec.budgetedBytes = problem.space.bytes(p.choice);
                rec.fidelity = p.fidelity;
                rec.tokens = problem.tokensAt ? problem.tokensAt(p.fidelity) : 0;
                if (problem.describe) {
                    TrialDescription d = problem.describe(p.choice);
                    rec.map = std::move(d.map);
                    rec.memoryBytes = d.memoryBytes;
                    knownMetrics = std::move(d.metrics);
                } else {
                    rec.map = {{"encoding", rec.encoding}};
                    rec.memoryBytes = rec.budgetedBytes;
                }
                auto claimed = store.claimTrial(runId, rec, options.trials);
                if (!claimed) {
                    std::this_thread::sleep_for(std::chrono::milliseconds(5));
                    continue;
                }
                try {
                    EvaluationResult r = evaluate(p.choice, p.fidelity, cancel);
                    // A stop that arrived during the trial's last steps still cancels it: a stopped worker (SIGTERM,
                    // the GUI's Cancel) commits nothing after the signal, its trial goes back to the queue.
                    if (cancel)
                        cancel->throwIfCancelled();
                    if (!std::isfinite(r.objective))
                        throw Error("the objective is not finite (" + std::to_string(r.objective) + ")");
                    claimed->objective = r.objective;
                    claimed->metrics = std::move(r.metrics);
                    claimed->metrics.update(knownMetrics);
                    claimed->secondsQuantize = r.secondsQuantize;
                    claimed->secondsEvaluate = r.secondsEvaluate;
                    store.completeTrial(*claimed);
                    ++complete;
                    failuresInRow = 0;
                } catch (const CancelledError&) {
                    store.failTrial(claimed->id, "cancelled");
                    throw;
                } catch (const std::exception& e) {
                    store.failTrial(claimed->id, e.what());
                    if (++failuresInRow >= kMaxConsecutiveFailures)
                        throw Error("search: " + std::to_string(failuresInRow) +
                                    " trials failed in a row; the last: " + e.what());
                }
                std::lock_guard lock(mu);
                ++summary.evaluatedHere;
                ++evaluatedHere;
                if (progress) // complete trials as of this worker's snapshot plus its own
                    progress(Progress{"search", complete, options.trials,
                                      "trial " + std::to_string(claimed->number) + " (" + p.source +
                                          (p.fidelity < 1 ? ", fidelity " + std::to_string(p.fidelity).substr(0, 5)
                                                          : std::string()) +
                                          ")"});
            }
        } catch (...) {
            std::lock_guard lock(mu);
            if (!firstError)
                firstError = std::current_exception();
        }
    };

    if (options.workers == 1) {
        worker(0);
    } else {
        std::vector<std::thread> threads;
        const auto computeDtype = model::computeDtypeOverride(); // this thread's (the run's) choice, for each worker
        for (int w = 0; w < options.workers; ++w)
            threads.emplace_back([&worker, computeDtype, w] {
                const model::ScopedComputeDtype compute(computeDtype);
                worker(w);
            });
        for (auto& t : threads)
            t.join();
    }
    if (firstError)
        std::rethrow_exception(firstError);

    summary.tokens = options.spentTokens;
    for (const auto& t : store.trialSummaries(runId)) {
        if (t.state != store::TrialState::Failed)
            summary.tokens += t.tokens;
        if (t.state == store::TrialState::Running)
            ++summary.trialsRunning;
        else if (t.state == store::TrialState::Failed)
            ++summary.trialsFailed;
        else if (isComplete(t))
            ++summary.trialsComplete;
    }
    summary.tokenBudgetReached = options.tokenBudget > 0 && summary.tokens >= options.tokenBudget;
    if (summary.exhausted && progress) // done, not cut short: the last word of the stage says why it stopped early
        progress(Progress{"search", summary.trialsComplete, summary.trialsComplete,
                          "exhausted: every feasible map evaluated (" + std::to_string(summary.trialsComplete) +
                              " of the " + std::to_string(options.trials) + " trials asked)"});
    return summary;
}

} // namespace qpruner::search

// Trial points: sorting, the front (pareto.h), the hypervolume trace and the markers of a run's trials.
#include "plots/trial_points.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "workspace/run_snapshot.h"

namespace qpruner::ui {

namespace {

constexpr const char* kUniformPrefix = "initial:uniform:";

void mix(uint64_t& h, uint64_t v)
{
    // FNV-1a over the value's bytes.
    for (int i = 0; i < 8; ++i) {
        h ^= (v >> (8 * i)) & 0xff;
        h *= 1099511628211ull;
    }
}

} // namespace

uint64_t TrialInput::signature() const
{
    uint64_t h = 1469598103934665603ull;
    mix(h, uint64_t(runId));
    mix(h, uint64_t(budgetBytes));
    mix(h, std::hash<std::string>{}(objective));
    mix(h, uint64_t(exhausted));
    mix(h, trials.size());
    for (const TrialSample& t : trials) {
        mix(h, uint64_t(t.number));
        mix(h, uint64_t(t.state));
        mix(h, uint64_t(t.finishOrder));
        mix(h, uint64_t(t.memoryBytes));
    }
    return h;
}

TrialInput trialInput(const RunSnapshot& s)
{
    TrialInput in;
    in.runId = s.run.id;
    if (s.search) {
        in.objective = s.search->objective;
        in.budget = s.search->budget;
        in.budgetBytes = s.search->budgetBytes;
        in.trialsAsked = s.search->trials;
    }
    in.exhausted = s.searchExhausted();
    in.trials.reserve(s.trials.size());
    for (const store::TrialRecord& t : s.trials) {
        TrialSample x;
        x.number = t.number;
        x.state = t.state;
        x.memoryBytes = t.memoryBytes;
        x.budgetedBytes = t.budgetedBytes;
        x.hasObjective = t.objective.has_value() && std::isfinite(*t.objective);
        x.objective = x.hasObjective ? *t.objective : 0.0;
        x.finishOrder = t.finishOrder;
        x.fidelity = t.fidelity;
        if (t.source.rfind("initial:", 0) == 0 || t.source == "manual")
            x.source = t.source;
        in.trials.push_back(std::move(x));
    }
    return in;
}

TrialPoints trialPoints(const TrialInput& in)
{
    TrialPoints p;
    p.objective = in.objective;

    std::vector<const TrialSample*> done;
    done.reserve(in.trials.size());
    for (const TrialSample& t : in.trials) {
        switch (t.state) {
        case store::TrialState::Complete: ++p.complete; break;
        case store::TrialState::Running: ++p.running; break;
        case store::TrialState::Failed: ++p.failed; break;
        }
        // Only full-fidelity scores are points of the plot, its front and its hypervolume: a multi-fidelity
        // search's cheap scores estimate the objective on part of the validation slice.
        if (t.state == store::TrialState::Complete && t.hasObjective && t.fidelity < 1)
            ++p.lowFidelity;
        else if (t.state == store::TrialState::Complete && t.hasObjective)
            done.push_back(&t);
        if (!p.budgetMemory && in.budgetBytes > 0 && t.memoryBytes > 0)
            p.budgetMemory = double(in.budgetBytes + (t.memoryBytes - t.budgetedBytes));
    }

    std::sort(done.begin(), done.end(), [](const TrialSample* a, const TrialSample* b) {
        if (a->memoryBytes != b->memoryBytes)
            return a->memoryBytes < b->memoryBytes;
        if (a->objective != b->objective)
            return a->objective < b->objective;
        return a->number < b->number;
    });
    const size_t n = done.size();
    p.memory.resize(qsizetype(n));
    p.shown.resize(qsizetype(n));
    p.minimised.resize(n);
    p.number.resize(n);
    std::vector<ObjectivePoint> points(n);
    for (size_t i = 0; i < n; ++i) {
        const TrialSample& t = *done[i];
        p.memory[qsizetype(i)] = double(t.memoryBytes);
        p.minimised[i] = t.objective;
        p.shown[qsizetype(i)] = shownObjective(in.objective, t.objective);
        p.number[i] = t.number;
        points[i] = {double(t.memoryBytes), t.objective};
        if (t.source == "initial:importance" && !p.importance)
            p.importance = i;
        else if (t.source.rfind(kUniformPrefix, 0) == 0)
            p.uniform.push_back({i, QString::fromStdString(t.source.substr(std::char_traits<char>::length(kUniformPrefix)))});
        else if (t.source == "manual")
            p.manual.push_back(i);
    }
    p.front = paretoFront(points);
    p.bestInBudget = bestWithinBudget(points, p.budgetMemory.value_or(std::numeric_limits<double>::infinity()));

    if (n > 0) {
        double maxMemory = 0, minMemory = points[0].memory;
        double worst = points[0].objective, best = points[0].objective;
        for (const ObjectivePoint& q : points) {
            maxMemory = std::max(maxMemory, q.memory);
            minMemory = std::min(minMemory, q.memory);
            worst = std::max(worst, q.objective);
            best = std::min(best, q.objective);
        }
        p.reference.memory = 1.1 * maxMemory;
        // 1.1 x the worst objective; an objective of 0 or below (a perfect accuracy) still needs a margin.
        p.reference.objective = worst > 0 ? 1.1 * worst : worst + std::max(0.1 * (worst - best), 1e-9);
        const double box = (p.reference.memory - minMemory) * (p.reference.objective - best);
        p.hypervolumeScale = box > 0 ? box : 1.0;

        std::vector<const TrialSample*> finished(done);
        std::sort(finished.begin(), finished.end(), [](const TrialSample* a, const TrialSample* b) {
            return a->finishOrder != b->finishOrder ? a->finishOrder < b->finishOrder : a->number < b->number;
        });
        std::vector<ObjectivePoint> ordered(n);
        for (size_t i = 0; i < n; ++i)
            ordered[i] = {double(finished[i]->memoryBytes), finished[i]->objective};
        p.hypervolume = hypervolumeTrace(ordered, p.reference);
    }
    return p;
}

double shownObjective(const std::string& objective, double value)
{
    return objective == "accuracy" ? 1.0 - value : value;
}

QString objectiveAxisLabel(const std::string& objective)
{
    if (objective == "accuracy")
        return QStringLiteral("Accuracy (higher is better)");
    if (objective == "kl")
        return QStringLiteral("KL divergence to the unquantized model (lower is better)");
    if (objective == "ppl")
        return QStringLiteral("Perplexity (lower is better)");
    return QStringLiteral("%1 (lower is better)").arg(QString::fromStdString(objective));
}

QString objectiveShortName(const std::string& objective)
{
    if (objective == "kl")
        return QStringLiteral("KL");
    return QString::fromStdString(objective);
}

} // namespace qpruner::ui

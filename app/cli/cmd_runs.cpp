// qpruner runs --db study.db: the runs of a store; qpruner pareto --db study.db --run N: a search's trials, its
// Pareto front (memory against objective), the hypervolume after each completed trial, and the chosen map.
#include <algorithm>
#include <cstdio>
#include <limits>
#include <map>

#include "cli_context.h"
#include "commands.h"
#include "qpruner/pareto.h"
#include "qpruner/pipeline.h"
#include "qpruner/store.h"
#include "qpruner/trial_actions.h"

namespace qpruner::cli {

namespace {

store::OpenOptions readOnly()
{
    store::OpenOptions o;
    o.readOnly = true;
    return o;
}

std::optional<double> bestObjective(const std::vector<store::TrialRecord>& trials)
{
    std::optional<double> best;
    for (const auto& t : trials)
        if (t.state == store::TrialState::Complete && t.objective && (!best || *t.objective < *best))
            best = t.objective;
    return best;
}

} // namespace

int runRuns(const Args& args)
{
    ArgParser p("runs", "List the runs of an experiment store: id, experiment, kind, status, trials, best objective.");
    p.option("db", "FILE", "experiment store");
    p.option("experiment", "NAME", "only this experiment's runs");
    p.flag("json", "print one JSON array");
    if (!p.parse(args))
        return 0;
    const store::Store st(p.get("db"), readOnly());
    std::optional<int64_t> experiment;
    if (auto e = p.find("experiment")) {
        for (const auto& x : st.experiments())
            if (x.name == *e)
                experiment = x.id;
        if (!experiment)
            throw UsageError("--experiment: no experiment named '" + *e + "' in " + p.get("db"));
    }
    const auto runs = st.runs(experiment);
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : runs) {
        const auto best = r.trialsComplete > 0 ? bestObjective(st.trialSummaries(r.id)) : std::nullopt;
        // Every stage: the pipeline's and the trial actions' (trial-recover, ... with their trial).
        nlohmann::json stages = nlohmann::json::array();
        for (const auto& s : st.stages(r.id)) {
            nlohmann::json j = {{"name", s.name}, {"status", store::runStatusName(s.status)}, {"seconds", s.seconds}};
            if (const int n = pipeline::stageTrial(s); n >= 0)
                j["trial"] = n;
            stages.push_back(j);
        }
        out.push_back({{"id", r.id}, {"experiment", r.experiment}, {"kind", r.kind}, {"name", r.name},
                       {"status", store::runStatusName(r.status)}, {"base_model", r.baseModel},
                       {"created_at", r.createdAt}, {"finished_at", r.finishedAt}, {"error", r.error},
                       {"trials_complete", r.trialsComplete}, {"trials_running", r.trialsRunning},
                       {"trials_failed", r.trialsFailed},
                       {"best_objective", best ? nlohmann::json(*best) : nlohmann::json(nullptr)},
                       {"stages", stages}});
    }
    if (p.isSet("json")) {
        printJson(out);
        return 0;
    }
    std::printf("%5s  %-14s %-10s %-9s %-24s %8s %12s  %s\n", "run", "experiment", "kind", "status", "created",
                "trials", "best", "trial actions");
    for (const auto& r : out) {
        const std::string best = r["best_objective"].is_null()
                                     ? "-"
                                     : std::to_string(r["best_objective"].get<double>()).substr(0, 10);
        std::string actions;
        for (const auto& s : r["stages"])
            if (s.contains("trial"))
                actions += (actions.empty() ? "" : " ") + s["name"].get<std::string>().substr(6) + "#" +
                           std::to_string(s["trial"].get<int>()) +
                           (s["status"] == "done" ? "" : "(" + s["status"].get<std::string>() + ")");
        std::printf("%5lld  %-14s %-10s %-9s %-24s %8lld %12s  %s\n", static_cast<long long>(r["id"].get<int64_t>()),
                    r["experiment"].get<std::string>().c_str(), r["kind"].get<std::string>().c_str(),
                    r["status"].get<std::string>().c_str(), r["created_at"].get<std::string>().c_str(),
                    static_cast<long long>(r["trials_complete"].get<int64_t>()), best.c_str(),
                    actions.empty() ? "-" : actions.c_str());
    }
    return 0;
}

int runPareto(const Args& args)
{
    ArgParser p("pareto",
                "A search run's complete trials, its Pareto front (total bytes against the objective, both\n"
                "minimised), the hypervolume after each completed trial (completion order) and the chosen map for a\n"
                "budget. The hypervolume's reference point defaults to the largest memory and objective among the\n"
                "complete trials; pass --ref-memory/--ref-objective to compare runs on one reference.");
    p.option("db", "FILE", "experiment store");
    p.option("run", "N", "search run");
    p.option("budget", "B", "chosen map: best trial within this budget (default: the run's)");
    p.option("ref-memory", "BYTES", "hypervolume reference memory");
    p.option("ref-objective", "X", "hypervolume reference objective");
    p.flag("all", "list every trial, not just the front");
    p.flag("json", "print one JSON object");
    p.flag("csv", "print CSV: number,state,source,memory_bytes,objective,on_front,encoding,fidelity,tokens");
    if (!p.parse(args))
        return 0;
    if (p.isSet("json") && p.isSet("csv"))
        throw UsageError("--json and --csv exclude each other");
    const store::Store st(p.get("db"), readOnly());
    const int64_t runId = p.getInt64("run");
    const auto run = st.run(runId);
    const auto trials = st.trials(runId);

    std::vector<const store::TrialRecord*> complete;
    for (const auto& t : trials)
        if (t.state == store::TrialState::Complete && t.objective)
            complete.push_back(&t);
    std::vector<ObjectivePoint> points;
    for (const auto* t : complete)
        points.push_back({double(t->memoryBytes), *t->objective});
    // The front, the hypervolume and the chosen map count full-fidelity trials only (a multi-fidelity search's
    // cheap scores are estimates on part of the validation slice); --all lists the others with their fidelity.
    std::vector<size_t> full;
    std::vector<ObjectivePoint> fullPoints;
    int64_t tokens = 0;
    for (const auto& t : trials)
        tokens += t.state == store::TrialState::Failed ? 0 : t.tokens;
    for (size_t i = 0; i < complete.size(); ++i)
        if (complete[i]->fidelity >= 1) {
            full.push_back(i);
            fullPoints.push_back(points[i]);
        }
    std::vector<size_t> front;
    for (size_t k : paretoFront(fullPoints))
        front.push_back(full[k]);
    std::vector<bool> onFront(complete.size(), false);
    for (size_t i : front)
        onFront[i] = true;

    ObjectivePoint ref{0, 0};
    for (const auto& q : fullPoints) {
        ref.memory = std::max(ref.memory, q.memory);
        ref.objective = std::max(ref.objective, q.objective);
    }
    if (auto m = p.find("ref-memory"))
        ref.memory = p.getDouble("ref-memory");
    if (auto o = p.find("ref-objective"))
        ref.objective = p.getDouble("ref-objective");
    std::vector<size_t> order = full;
    std::sort(order.begin(), order.end(),
              [&](size_t a, size_t b) { return complete[a]->finishOrder < complete[b]->finishOrder; });
    std::vector<ObjectivePoint> byFinish;
    for (size_t i : order)
        byFinish.push_back(points[i]);
    const auto trace = hypervolumeTrace(byFinish, ref);
    const nlohmann::json chosen = pipeline::chosenMap(st, runId, p.find("budget").value_or(""));
    // What the trial actions did to each trial: "recovered", "evaluated", "exported", "generated" (done stages).
    std::map<int, std::vector<std::string>> actions;
    for (const auto& s : st.stages(runId)) {
        const int n = pipeline::stageTrial(s);
        if (n < 0 || s.status != store::RunStatus::Done)
            continue;
        const std::string what = s.name == pipeline::kTrialRecoverStage    ? "recovered"
                                 : s.name == pipeline::kTrialEvaluateStage ? "evaluated"
                                 : s.name == pipeline::kTrialExportStage   ? "exported"
                                                                           : "generated";
        auto& list = actions[n];
        if (std::find(list.begin(), list.end(), what) == list.end())
            list.push_back(what);
    }
    auto actionText = [&](int n) {
        std::string text;
        for (const auto& a : actions[n])
            text += (text.empty() ? "" : ",") + a;
        return text.empty() ? std::string("-") : text;
    };

    if (p.isSet("csv")) {
        std::printf("number,state,source,memory_bytes,objective,on_front,encoding,fidelity,tokens\n");
        for (size_t i = 0; i < complete.size(); ++i)
            if (onFront[i] || p.isSet("all"))
                std::printf("%d,%s,%s,%lld,%.9g,%d,%s,%.9g,%lld\n", complete[i]->number,
                            store::trialStateName(complete[i]->state), complete[i]->source.c_str(),
                            static_cast<long long>(complete[i]->memoryBytes), *complete[i]->objective,
                            onFront[i] ? 1 : 0, complete[i]->encoding.c_str(), complete[i]->fidelity,
                            static_cast<long long>(complete[i]->tokens));
        return 0;
    }
    auto row = [&](size_t i) {
        const auto* t = complete[i];
        return nlohmann::json{{"number", t->number},     {"source", t->source},
                              {"memory_bytes", t->memoryBytes}, {"objective", *t->objective},
                              {"encoding", t->encoding},  {"on_front", bool(onFront[i])},
                              {"fidelity", t->fidelity},  {"tokens", t->tokens},
                              {"metrics", t->metrics},    {"actions", actions[t->number]}};
    };
    if (p.isSet("json")) {
        nlohmann::json fr = nlohmann::json::array(), all = nlohmann::json::array();
        for (size_t i : front)
            fr.push_back(row(i));
        if (p.isSet("all"))
            for (size_t i = 0; i < complete.size(); ++i)
                all.push_back(row(i));
        nlohmann::json j = {{"run", runId},
                            {"status", store::runStatusName(run.status)},
                            {"trials", trials.size()},
                            {"complete", complete.size()},
                            {"complete_full_fidelity", full.size()},
                            {"tokens", tokens},
                            {"front", fr},
                            {"reference", {{"memory", ref.memory}, {"objective", ref.objective}}},
                            {"hypervolume", trace.empty() ? 0.0 : trace.back()},
                            {"hypervolume_trace", trace},
                            {"chosen", chosen}};
        if (p.isSet("all"))
            j["all"] = all;
        printJson(j);
        return 0;
    }
    std::printf("run %lld (%s): %zu trials, %zu complete (%zu at full fidelity), %zu on the front, %lld tokens "
                "scored\n",
                static_cast<long long>(runId), store::runStatusName(run.status), trials.size(), complete.size(),
                full.size(), front.size(), static_cast<long long>(tokens));
    std::printf("%6s  %-24s %8s %14s %12s  %-20s %s\n", "trial", "source", "fidelity", "memory", "objective", "actions",
                "formats");
    for (size_t i = 0; i < complete.size(); ++i)
        if (onFront[i] || p.isSet("all"))
            std::printf("%6d%s %-24s %8.4g %14s %12.6g  %-20s %s\n", complete[i]->number, onFront[i] ? "*" : " ",
                        complete[i]->source.c_str(), complete[i]->fidelity,
                        humanBytes(complete[i]->memoryBytes).c_str(), *complete[i]->objective,
                        actionText(complete[i]->number).c_str(), complete[i]->encoding.c_str());
    std::printf("hypervolume %.6g (reference: %.0f bytes, objective %.6g)\n", trace.empty() ? 0.0 : trace.back(),
                ref.memory, ref.objective);
    if (chosen.is_null())
        std::printf("no complete trial fits the budget\n");
    else
        std::printf("chosen for %s: trial %d, objective %.6g, %s\n", chosen["budget"].get<std::string>().c_str(),
                    chosen["trial"].get<int>(), chosen["objective"].get<double>(),
                    humanBytes(chosen["memory_bytes"].get<int64_t>()).c_str());
    return 0;
}

} // namespace qpruner::cli

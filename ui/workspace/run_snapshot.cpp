// RunSnapshot: one read of a run and what its stages recorded.
#include "workspace/run_snapshot.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <filesystem>

#include "common/workspace_location.h"
#include "qpruner/error.h"

namespace qpruner::ui {

namespace {

// The prune stage's checkpoint when the run pruned (and it finished), else the run's model.
std::string mapModelPath(const RunSnapshot& s)
{
    if (const store::StageRecord* prune = s.stage("prune");
        prune && prune->status == store::RunStatus::Done && prune->result.contains("checkpoint"))
        return prune->result["checkpoint"].get<std::string>();
    if (s.run.config.contains("model") && s.run.config["model"].is_string())
        return s.run.config["model"].get<std::string>();
    return s.run.baseModel;
}

void readModels(RunSnapshot& s)
{
    const std::string base = s.run.config.contains("model") && s.run.config["model"].is_string()
                                 ? s.run.config["model"].get<std::string>()
                                 : s.run.baseModel;
    const std::string mapped = mapModelPath(s);
    s.modelPath = QString::fromStdString(mapped);
    try {
        if (!base.empty())
            s.baseModel = inspectModel(base).config;
        s.model = mapped == base ? s.baseModel : std::optional<ModelConfig>(inspectModel(mapped).config);
    } catch (const std::exception& e) {
        s.modelError = QString::fromUtf8(e.what());
    }
}

void readMaps(RunSnapshot& s)
{
    try {
        if (const store::StageRecord* a = s.stage("allocate");
            a && a->status == store::RunStatus::Done && a->result.contains("best"))
            s.initialMap = PrecisionMap::fromJson(a->result["best"]["map"]);
        if (const store::StageRecord* search = s.stage("search");
            search && search->result.contains("chosen") && search->result["chosen"].is_object())
            s.chosenMap = PrecisionMap::fromJson(search->result["chosen"]["map"]);
        else if (s.initialMap)
            s.chosenMap = s.initialMap;
    } catch (const Error&) {
        // A stored map this build cannot read: the tabs show what they can without it.
    }
}

void readSearchSettings(RunSnapshot& s)
{
    const nlohmann::json& c = s.run.config;
    if (!c.contains("search") || !c["search"].is_object())
        return;
    SearchSettings ss;
    const nlohmann::json& sc = c["search"];
    ss.objective = sc.value("objective", std::string("ppl"));
    ss.trials = sc.value("trials", 0);
    if (sc.contains("strategy") && sc["strategy"].is_string())
        ss.strategy = sc["strategy"].get<std::string>();
    if (sc.contains("granularity") && sc["granularity"].is_string())
        ss.granularity = sc["granularity"].get<std::string>();
    if (sc.contains("token_budget") && sc["token_budget"].is_number_integer())
        ss.tokenBudget = sc["token_budget"].get<int64_t>();
    if (c.contains("allocate") && c["allocate"].is_object()) {
        ss.budget = c["allocate"].value("budget", std::string());
        if (c["allocate"].contains("candidates") && c["allocate"]["candidates"].is_array())
            for (const auto& name : c["allocate"]["candidates"])
                if (name.is_string())
                    ss.candidates.push_back(name.get<std::string>());
    }
    if (const store::StageRecord* a = s.stage("allocate"); a && a->result.contains("budget_bytes")) {
        ss.budgetBytes = a->result["budget_bytes"].get<int64_t>();
        if (a->result.contains("candidates") && a->result["candidates"].is_array())
            ss.candidates = a->result["candidates"].get<std::vector<std::string>>();
    }
    s.search = std::move(ss);
}

} // namespace

std::vector<std::string> RunSnapshot::metrics() const
{
    std::vector<std::string> out;
    for (const auto& row : scores)
        if (std::find(out.begin(), out.end(), row.metric) == out.end())
            out.push_back(row.metric);
    return out;
}

std::vector<double> RunSnapshot::layerScores(const std::string& metric, bool normalized) const
{
    std::vector<double> out;
    for (const auto& row : scores) {
        if (row.metric != metric || !row.module.empty() || row.layer < 0)
            continue;
        if (size_t(row.layer) >= out.size())
            out.resize(size_t(row.layer) + 1, 0.0);
        out[size_t(row.layer)] = normalized ? row.normalized : row.value;
    }
    return out;
}

std::vector<std::array<double, kLinearModuleCount>> RunSnapshot::moduleScores(const std::string& metric,
                                                                              bool normalized) const
{
    std::vector<std::array<double, kLinearModuleCount>> out;
    for (const auto& row : scores) {
        if (row.metric != metric || row.module.empty() || row.layer < 0)
            continue;
        LinearModule m;
        try {
            m = parseLinearModule(row.module);
        } catch (const Error&) {
            continue;
        }
        if (size_t(row.layer) >= out.size())
            out.resize(size_t(row.layer) + 1, std::array<double, kLinearModuleCount>{});
        out[size_t(row.layer)][size_t(m)] = normalized ? row.normalized : row.value;
    }
    return out;
}

const store::StageRecord* RunSnapshot::stage(const std::string& name) const
{
    for (auto it = stages.rbegin(); it != stages.rend(); ++it)
        if (it->name == name)
            return &*it;
    return nullptr;
}

bool RunSnapshot::searchExhausted() const
{
    const store::StageRecord* st = stage("search");
    return st && st->result.is_object() && st->result.value("exhausted", false);
}

std::shared_ptr<store::Store> openWorkspaceReadOnly(const QString& dbPath)
{
    store::OpenOptions options;
    options.readOnly = true;
    options.busyTimeoutMs = 10000;
    if (!isServerWorkspace(dbPath))
        return std::make_shared<store::Store>(std::filesystem::path(dbPath.toStdU16String()), options);
    static std::mutex mutex;
    static std::map<QString, std::shared_ptr<store::Store>> servers;
    const QString key = workspaceKey(dbPath);
    std::lock_guard lock(mutex);
    auto& shared = servers[key];
    if (!shared) // a failed connect throws and caches nothing
        shared = std::make_shared<store::Store>(std::filesystem::path(key.toStdU16String()), options);
    return shared;
}

RunSnapshot loadRunSnapshot(const QString& dbPath, int64_t runId)
{
    const auto store = openWorkspaceReadOnly(dbPath);
    const store::Store& db = *store;
    RunSnapshot s;
    s.dbPath = dbPath;
    s.run = db.run(runId);
    s.stages = db.stages(runId);
    s.artifacts = db.artifacts(runId);
    s.scores = db.layerScores(runId);
    s.trials = db.trialSummaries(runId);
    readModels(s);
    readMaps(s);
    readSearchSettings(s);
    return s;
}

void refreshRunSnapshot(RunSnapshot& s)
{
    const auto store = openWorkspaceReadOnly(s.dbPath);
    const store::Store& db = *store;
    s.run = db.run(s.run.id);
    s.stages = db.stages(s.run.id);
    s.trials = db.trialSummaries(s.run.id);
    if (s.scores.empty())
        s.scores = db.layerScores(s.run.id);
    if (!s.model) { // e.g. the pruned checkpoint appeared since
        s.modelError.clear();
        s.baseModel.reset();
        readModels(s);
    }
    readMaps(s);
    if (!s.search || s.search->budgetBytes == 0)
        readSearchSettings(s);
}

} // namespace qpruner::ui

#include "qpruner/trial_actions.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>

#include "eval/generation.h"
#include "eval/multiple_choice.h"
#include "eval/perplexity.h"
#include "eval/task_data.h"
#include "finetune/adapter_io.h"
#include "finetune/recovery.h"
#include "finetune/train_step.h"
#include "model/checkpoint.h"
#include "model/dtype.h"
#include "pipeline_internal.h"
#include "qpruner/error.h"
#include "qpruner/memory_model.h"
#include "qpruner/precision_map.h"
#include "quant/model_quantizer.h"

namespace qpruner::pipeline {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string trialText(int64_t runId, int trial)
{
    return "run " + std::to_string(runId) + ", trial " + std::to_string(trial);
}

// Text a tokenizer decoded may end inside a multi-byte character: stored as U+FFFD, as `qpruner generate --json`
// prints it, rather than failing the stage.
std::string validUtf8(const std::string& s)
{
    return json::parse(json(s).dump(-1, ' ', false, json::error_handler_t::replace)).get<std::string>();
}

// A stage of the run for trial `trial`: Running while `body` works, then Done with its result (plus peak RSS),
// Cancelled or Failed with the error.
template <typename F>
json trialStage(store::Store& store, int64_t runId, const std::string& name, json config, F&& body)
{
    const int64_t id = store.beginStage(runId, name, config);
    const auto t0 = std::chrono::steady_clock::now();
    auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
    const finetune::PeakMemory peak(at::Device(at::kCPU));
    try {
        json r = body(id);
        std::string source;
        r["peak_rss_bytes"] = peak.peakRssBytes(&source);
        r["peak_rss_source"] = source;
        store.finishStage(id, store::RunStatus::Done, r, seconds());
        return r;
    } catch (const CancelledError&) {
        store.finishStage(id, store::RunStatus::Cancelled, json::object(), seconds(), "cancelled");
        throw;
    } catch (const std::exception& e) {
        store.finishStage(id, store::RunStatus::Failed, json::object(), seconds(), e.what());
        throw;
    }
}

model::LoadOptions loadOptions(const TrialTarget& t)
{
    model::LoadOptions lo;
    lo.dtype = model::parseDtype(t.dtype);
    return lo;
}

// The trial's model: the map applied to the run's (pruned) checkpoint, or the recovered adapter on its base.
std::unique_ptr<model::LlamaModel> trialModel(const TrialTarget& t, bool withAdapter)
{
    if (withAdapter && !t.adapter.empty())
        return finetune::loadModelWithAdapter(t.modelPath, t.adapter, loadOptions(t));
    auto m = model::loadModel(t.modelPath, loadOptions(t));
    quant::quantizeModel(*m, PrecisionMap::fromJson(t.map));
    return m;
}

fs::path dataDirOf(const store::RunRecord& run)
{
    return run.config["data_dir"].get<std::string>();
}

} // namespace

TrialTarget trialTarget(const store::Store& store, int64_t runId, int trial)
{
    const store::RunRecord run = store.run(runId);
    const std::string what = trialText(runId, trial);
    if (!run.config.contains("search") || run.config["search"].is_null())
        throw ConfigError(what + ": the run has no search stage, so it has no trials to act on");
    store::TrialRecord rec;
    try {
        rec = store.trial(runId, trial);
    } catch (const ConfigError&) {
        throw ConfigError(what + ": no such trial");
    }
    if (rec.state != store::TrialState::Complete)
        throw ConfigError(what + ": the trial is " + store::trialStateName(rec.state) + ", not complete");
    TrialTarget t;
    t.runId = runId;
    t.trial = trial;
    t.modelPath = internal::runModelPath(store, runId, what);
    t.baseModel = run.config["model"];
    t.tokenizer = run.config["tokenizer"];
    t.dtype = run.config["dtype"];
    t.computeDtype = run.config.value("compute_dtype", "auto"); // runs stored before the key: auto
    t.map = rec.map;
    t.memoryBytes = rec.memoryBytes;
    t.objective = rec.objective ? json(*rec.objective) : json();
    t.dir = fs::path(run.config["workdir"].get<std::string>()) / "trials" / ("trial-" + std::to_string(trial));
    const fs::path adapter = t.dir / "adapter";
    std::optional<store::RunStatus> last; // of the latest recovery of this trial, which decides
    for (const auto& s : store.stages(runId))
        if (s.name == kTrialRecoverStage && stageTrial(s) == trial)
            last = s.status;
    if (last == store::RunStatus::Done && fs::exists(adapter / finetune::kAdapterWeightsFile))
        t.adapter = adapter;
    t.resumable = last && *last != store::RunStatus::Done && *last != store::RunStatus::Running &&
                  fs::exists(adapter / "checkpoint" / "trainer_state.json");
    return t;
}

// --- Recover ----------------------------------------------------------------------------------------------------

json recoveryDefaults(const store::Store& store, int64_t runId, int trial)
{
    const store::RunRecord run = store.run(runId);
    json fc = run.config.contains("finetune") ? run.config["finetune"] : json();
    if (trial >= 0)
        for (const auto& s : store.stages(runId))
            if (s.name == kTrialRecoverStage && stageTrial(s) == trial) { // the latest recovery of this trial
                fc = s.config;
                fc.erase("trial");
                fc.erase("resume");
            }
    return internal::normalizedFinetune(fc, false, dataDirOf(run), "finetune");
}

json recoverTrial(store::Store& store, int64_t runId, int trial, const json& finetune, bool resume,
                  const ProgressSink& progress, const CancelToken* cancel)
{
    const TrialTarget t = trialTarget(store, runId, trial);
    const internal::RunComputeScope compute(t.computeDtype);
    const store::RunRecord run = store.run(runId);
    const json fc = internal::normalizedFinetune(finetune, false, dataDirOf(run), "finetune");
    if (resume && !t.resumable)
        throw ConfigError(trialText(runId, trial) + ": there is no interrupted recovery to continue (no checkpoint of a cancelled or failed one in " +
                          (t.dir / "adapter").string() + ")");
    json config = fc;
    config["trial"] = trial;
    config["resume"] = resume;
    return trialStage(store, runId, kTrialRecoverStage, config, [&](int64_t stageId) {
        const fs::path dir = t.dir / "adapter";
        if (!resume && fs::exists(dir))
            fs::remove_all(dir); // a new recovery of this trial replaces the earlier adapter
        fs::create_directories(t.dir);
        const auto tok = loadTokenizer(t.tokenizer);
        finetune::RecoveryOptions o = internal::recoveryOptions(fc, dataDirOf(run), run.config["seed"].get<uint64_t>());
        o.train.padId = std::max(0, tok->eosId());
        o.outDir = dir;
        o.baseModel = t.modelPath;
        o.resume = resume;
        auto m = model::loadModel(t.modelPath, loadOptions(t));
        const auto r = finetune::runRecovery(*m, PrecisionMap::fromJson(t.map), *tok, o, progress, cancel);
        if (r.train.cancelled)
            throw CancelledError();
        store.addArtifact(runId, stageId, "adapter", dir / finetune::kAdapterWeightsFile);
        store.addArtifact(runId, stageId, "training", dir / "training.json");
        json out = r.toJson();
        out["data"]["file"] = o.dataFile.string();
        out["trial"] = trial;
        out["adapter_dir"] = dir.string();
        return out;
    });
}

// --- Evaluate ---------------------------------------------------------------------------------------------------

json evaluationDefaults(const store::Store& store, int64_t runId)
{
    const store::RunRecord run = store.run(runId);
    json ec = run.config.contains("evaluate") && !run.config["evaluate"].is_null() ? run.config["evaluate"]
                                                                                    : json::object();
    ec["batch_size"] = 8;
    ec["adapter"] = true;
    return internal::normalizedEvaluate(ec, {"batch_size", "adapter"}, dataDirOf(run), "evaluate");
}

json evaluateTrial(store::Store& store, int64_t runId, int trial, const json& evaluate, const ProgressSink& progress,
                   const CancelToken* cancel)
{
    const TrialTarget t = trialTarget(store, runId, trial);
    const internal::RunComputeScope compute(t.computeDtype);
    const store::RunRecord run = store.run(runId);
    const fs::path dataDir = dataDirOf(run);
    json ec = internal::normalizedEvaluate(evaluate, {"batch_size", "adapter"}, dataDir, "evaluate");
    if (!ec.contains("batch_size"))
        ec["batch_size"] = 8;
    if (!ec["batch_size"].is_number_integer() || ec["batch_size"].get<int64_t>() < 1)
        throw ConfigError("evaluate.batch_size: expected an integer >= 1");
    if (!ec.contains("adapter"))
        ec["adapter"] = true;
    if (!ec["adapter"].is_boolean())
        throw ConfigError("evaluate.adapter: expected true or false");
    // Every task file is read before the model is loaded, so a missing one fails at once.
    std::vector<eval::TaskSet> sets;
    for (const auto& name : ec["tasks"])
        sets.push_back(eval::loadTaskSet(name, eval::taskFile(name, dataDir / "eval"), ec["task_limit"].get<int64_t>()));
    json config = ec;
    config["trial"] = trial;
    return trialStage(store, runId, kTrialEvaluateStage, config, [&](int64_t) {
        const bool withAdapter = ec["adapter"].get<bool>() && !t.adapter.empty();
        const auto tok = loadTokenizer(t.tokenizer);
        const auto m = trialModel(t, withAdapter);
        const PrecisionMap map = PrecisionMap::fromJson(t.map);
        const MemoryReport memory = memoryReport(m->config(), map);
        json out = {{"trial", trial},
                    {"adapter", withAdapter ? json(t.adapter.string()) : json()},
                    {"memory", {{"total_bytes", memory.totalBytes},
                                {"linear_bits_per_weight", memory.linearBitsPerWeight}}},
                    {"ppl", json::array()},
                    {"tasks", json::array()}};
        for (const auto& slice : ec["ppl"]) {
            const at::Tensor w = internal::textWindows(slice, true, *tok, dataDir);
            eval::PerplexityOptions po;
            po.seqLen = slice["seq_len"];
            std::vector<int32_t> stream(w.data_ptr<int64_t>(), w.data_ptr<int64_t>() + w.numel());
            const auto r = eval::evaluatePerplexity(*m, stream, po, progress, cancel);
            out["ppl"].push_back({{"source", slice["source"]}, {"windows", r.windows}, {"seq_len", po.seqLen},
                                  {"ppl", r.ppl}, {"mean_nll", r.meanNll}});
        }
        double sumAcc = 0, sumNorm = 0;
        eval::MultipleChoiceOptions mo;
        mo.batchSize = ec["batch_size"];
        for (const auto& set : sets) {
            const auto r = eval::evaluateTask(*m, *tok, set, mo, progress, cancel);
            sumAcc += r.acc;
            sumNorm += r.accNorm;
            out["tasks"].push_back({{"task", set.name}, {"items", r.items}, {"acc", r.acc},
                                    {"acc_stderr", r.accStderr}, {"acc_norm", r.accNorm},
                                    {"acc_norm_stderr", r.accNormStderr}, {"seconds", r.seconds}});
        }
        out["average"] = sets.empty() ? json()
                                      : json{{"acc", sumAcc / double(sets.size())},
                                             {"acc_norm", sumNorm / double(sets.size())}};
        return out;
    });
}

// --- Export -----------------------------------------------------------------------------------------------------

ExportOptions trialExportOptions(const store::Store& store, int64_t runId, int trial, ExportOptions options,
                                 bool mergeAdapter)
{
    const TrialTarget t = trialTarget(store, runId, trial);
    options.model = t.modelPath;
    options.tokenizer = t.tokenizer;
    if (mergeAdapter && !t.adapter.empty()) {
        options.adapter = t.adapter; // it brings its own precision map: the trial's
        options.map.reset();
    } else {
        options.adapter.clear();
        options.map = PrecisionMap::fromJson(t.map);
    }
    if (options.name.empty())
        options.name = store.run(runId).name.empty() ? "run-" + std::to_string(runId) + "-trial-" + std::to_string(trial)
                                                     : store.run(runId).name + "-trial-" + std::to_string(trial);
    return options;
}

ExportPlan planTrialExport(const store::Store& store, int64_t runId, int trial, const ExportOptions& options,
                           bool mergeAdapter)
{
    return planExport(trialExportOptions(store, runId, trial, options, mergeAdapter));
}

ExportPlan exportTrial(store::Store& store, int64_t runId, int trial, const ExportOptions& options, bool mergeAdapter,
                       const ProgressSink& progress, const CancelToken* cancel)
{
    const internal::RunComputeScope compute(store.run(runId).config);
    const ExportOptions o = trialExportOptions(store, runId, trial, options, mergeAdapter);
    if (o.out.empty())
        throw ConfigError(trialText(runId, trial) + ": export needs an output path");
    json config = {{"trial", trial},
                   {"to", exportTargetName(o.target)},
                   {"out", fs::absolute(o.out).string()},
                   {"adapter", o.adapter.empty() ? json() : json(o.adapter.string())},
                   {"nf4_type", o.nf4Type},
                   {"dtype", o.dtype},
                   {"pad_uniform", o.padUniform},
                   {"strict", o.strict},
                   {"name", o.name}};
    ExportPlan plan;
    trialStage(store, runId, kTrialExportStage, config, [&](int64_t stageId) {
        plan = exportModel(o, progress, cancel);
        store.addArtifact(runId, stageId, o.target == ExportTarget::Gguf ? "gguf" : "hf-model", fs::absolute(o.out));
        json out = exportPlanJson(plan);
        out["trial"] = trial;
        out["out"] = fs::absolute(o.out).string();
        out["adapter"] = config["adapter"];
        return out;
    });
    return plan;
}

// --- Generate ---------------------------------------------------------------------------------------------------

namespace {

json generateSide(const model::LlamaModel& m, const Tokenizer& tok, const TrialGenerateRequest& rq,
                  const ProgressSink& progress, const CancelToken* cancel)
{
    eval::GenerateOptions o;
    o.steps = rq.steps;
    o.temperature = rq.temperature;
    o.topP = rq.topP;
    o.seed = rq.seed;
    const std::vector<int32_t> ids = eval::promptTokens(m, tok, rq.prompt, &o);
    const auto r = eval::generate(m, ids, o, progress, cancel);
    const std::vector<int32_t> afterBos(r.tokens.begin() + 1, r.tokens.end());
    return {{"prompt_ids", ids},        {"ids", afterBos},
            {"generated_ids", r.generated}, {"logprobs", r.logprobs},
            {"text", validUtf8(tok.decode(r.tokens))}, {"seconds", r.seconds},
            {"tokens_per_second", r.tokensPerSecond}};
}

} // namespace

json generateTrial(store::Store& store, int64_t runId, int trial, const TrialGenerateRequest& rq,
                   const ProgressSink& progress, const CancelToken* cancel)
{
    const TrialTarget t = trialTarget(store, runId, trial);
    const internal::RunComputeScope compute(t.computeDtype);
    if (rq.steps < 2)
        throw ConfigError("generate.steps: expected an integer >= 2 (BOS and at least one more position)");
    if (!(rq.temperature >= 0) || !std::isfinite(rq.temperature))
        throw ConfigError("generate.temperature: expected a number >= 0");
    if (!(rq.topP > 0) || !std::isfinite(rq.topP))
        throw ConfigError("generate.top_p: expected a number > 0");
    json config = {{"trial", trial},       {"prompt", validUtf8(rq.prompt)}, {"steps", rq.steps},
                   {"temperature", rq.temperature}, {"top_p", rq.topP},  {"seed", rq.seed},
                   {"base", rq.base},       {"adapter", rq.adapter}};
    return trialStage(store, runId, kTrialGenerateStage, config, [&](int64_t) {
        const auto tok = loadTokenizer(t.tokenizer);
        const bool withAdapter = rq.adapter && !t.adapter.empty();
        json out = config;
        {
            const auto m = trialModel(t, withAdapter);
            out["compressed"] = generateSide(*m, *tok, rq, progress, cancel);
            out["compressed"]["model"] = t.modelPath;
            out["compressed"]["adapter"] = withAdapter ? json(t.adapter.string()) : json();
        }
        out["base"] = json();
        if (rq.base) {
            const auto m = model::loadModel(t.baseModel, loadOptions(t));
            out["base"] = generateSide(*m, *tok, rq, progress, cancel);
            out["base"]["model"] = t.baseModel;
            out["base"]["adapter"] = json();
        }
        return out;
    });
}

} // namespace qpruner::pipeline

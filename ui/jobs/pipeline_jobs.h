// The core pipeline as background jobs: start a run from a config, resume one, evaluate a hand-made map as a
// trial of a search run. Each job opens its own Store on its worker thread (one connection per thread; the
// browser reads the same file through a read-only one) and announces its run as soon as the store has it,
// so the run browser can show it while its stages are computed.
#pragma once

#include <QMetaType>
#include <QString>

#include <optional>

#include <nlohmann/json.hpp>

#include "jobs/job_queue.h"
#include "qpruner/model_export.h"
#include "qpruner/precision_map.h"
#include "qpruner/trial_actions.h"
#include "qpruner/store.h"

Q_DECLARE_METATYPE(qpruner::store::TrialRecord)

namespace qpruner::ui {

struct PipelineJobOptions {
    int threads = 0; // intra-op threads of the run (0: the core's default, all cores)
    int workers = 0; // > 0 overrides search.workers
};

// normalizeConfig(config, baseDir, sharedDataDir()) then pipeline::startRun into the database at `dbPath`
// (created when absent). A config error fails the job with the core's message (naming the key). The job's
// result is the run id (qint64); runCreated fires once the run exists.
Job* startPipelineRun(JobQueue& queue, const QString& dbPath, const nlohmann::json& config, const QString& baseDir,
                      const PipelineJobOptions& options = {});

// pipeline::resumeRun: finished stages are reused, unfinished ones rerun. runCreated fires at the start.
Job* resumePipelineRun(JobQueue& queue, const QString& dbPath, qint64 runId, const PipelineJobOptions& options = {});

// pipeline::evaluateMap: the map becomes one more ("manual") trial of search run `runId`. The job's result is
// the stored TrialRecord (number, objective, metrics, memory); see evaluatedTrial().
Job* startEvaluateMap(JobQueue& queue, const QString& dbPath, qint64 runId, const qpruner::PrecisionMap& map);

// The trial a finished startEvaluateMap job delivered; nullopt for any other job or before it is Done.
std::optional<qpruner::store::TrialRecord> evaluatedTrial(const Job& job);

// --- Trial actions (qpruner/trial_actions.h), each a stage of run `runId` for trial `trial` ---------------------
// The jobs are tagged with the run (Job::tagRun), not announced: the run is on display already. Their result is
// the stage's result document (trialActionResult); a recovery's job carries the "loss", "lr" and "val_loss"
// series for the live plot.
Job* startRecoverTrial(JobQueue& queue, const QString& dbPath, qint64 runId, int trial,
                       const nlohmann::json& finetune, bool resume);
Job* startEvaluateTrial(JobQueue& queue, const QString& dbPath, qint64 runId, int trial,
                        const nlohmann::json& evaluate);
// options: target, out, nf4Type, dtype, padUniform, strict, name (the model, map, tokenizer and adapter are the
// trial's). The result also holds the plan under "plan" as exportPlanJson.
Job* startExportTrial(JobQueue& queue, const QString& dbPath, qint64 runId, int trial,
                      const qpruner::ExportOptions& options, bool mergeAdapter);
Job* startGenerateTrial(JobQueue& queue, const QString& dbPath, qint64 runId, int trial,
                        const qpruner::pipeline::TrialGenerateRequest& request);

// The result document of a finished trial-action job (nullopt before it is Done or for another kind of job).
std::optional<nlohmann::json> trialActionResult(const Job& job);

} // namespace qpruner::ui

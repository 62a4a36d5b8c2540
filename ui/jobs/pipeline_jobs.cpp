// Pipeline jobs: thin wrappers that run the torch-free pipeline.h calls on a JobQueue worker.
#include "common/workspace_location.h"
#include "jobs/pipeline_jobs.h"

#include <QFileInfo>

#include <filesystem>

#include "common/shared_data.h"
#include "qpruner/pipeline.h"
#include "qpruner/trial_actions.h"

namespace qpruner::ui {

namespace {

std::filesystem::path toPath(const QString& s)
{
    return std::filesystem::path(s.toStdU16String());
}

QString absolute(const QString& path)
{
    return workspaceKey(path); // a file made absolute; a postgresql:// URL as it is
}

qpruner::pipeline::RunOptions runOptions(const PipelineJobOptions& o)
{
    qpruner::pipeline::RunOptions r;
    r.threads = o.threads;
    r.workers = o.workers;
    return r;
}

QString runTitle(const nlohmann::json& config)
{
    auto text = [&](const char* key) {
        return config.contains(key) && config[key].is_string() ? QString::fromStdString(config[key].get<std::string>())
                                                               : QString();
    };
    const QString name = text("name");
    const QString experiment = text("experiment");
    if (!name.isEmpty())
        return QObject::tr("Run: %1").arg(name);
    return QObject::tr("Run in %1").arg(experiment.isEmpty() ? QStringLiteral("default") : experiment);
}

} // namespace

Job* startPipelineRun(JobQueue& queue, const QString& dbPath, const nlohmann::json& config, const QString& baseDir,
                      const PipelineJobOptions& options)
{
    const QString db = absolute(dbPath);
    const QString dataDir = sharedDataDir();
    return queue.startWith(runTitle(config), [db, config, baseDir, dataDir, options](
                                                 Job& job, const qpruner::ProgressSink& sink,
                                                 const qpruner::CancelToken& cancel) {
        const nlohmann::json normalized =
            qpruner::pipeline::normalizeConfig(config, toPath(baseDir), toPath(dataDir));
        cancel.throwIfCancelled();
        qpruner::store::Store store(toPath(db));
        qpruner::pipeline::RunOptions ro = runOptions(options);
        bool announced = false;
        ro.onRunCreated = [&](int64_t runId) {
            announced = true;
            job.announceRun(db, runId);
        };
        const auto outcome = qpruner::pipeline::startRun(store, normalized, ro, sink, &cancel);
        if (!announced) // a core that does not call onRunCreated: announce it late rather than never
            job.announceRun(db, outcome.runId);
        job.setResult(QVariant::fromValue(qint64(outcome.runId)));
    });
}

Job* resumePipelineRun(JobQueue& queue, const QString& dbPath, qint64 runId, const PipelineJobOptions& options)
{
    const QString db = absolute(dbPath);
    return queue.startWith(QObject::tr("Resume run %1").arg(runId), [db, runId, options](
                                                                      Job& job, const qpruner::ProgressSink& sink,
                                                                      const qpruner::CancelToken& cancel) {
        qpruner::store::Store store(toPath(db));
        store.run(runId); // ConfigError naming the run and the file when it is not there
        job.announceRun(db, runId);
        qpruner::pipeline::resumeRun(store, runId, runOptions(options), sink, &cancel);
        job.setResult(QVariant::fromValue(runId));
    });
}

Job* startEvaluateMap(JobQueue& queue, const QString& dbPath, qint64 runId, const qpruner::PrecisionMap& map)
{
    const QString db = absolute(dbPath);
    // pipeline.h takes plain json; the map's canonical form is ordered_json.
    const nlohmann::json mapJson = nlohmann::json::parse(map.toJson().dump());
    return queue.startWith(QObject::tr("Evaluate map in run %1").arg(runId), [db, runId, mapJson](
                                                                               Job& job,
                                                                               const qpruner::ProgressSink& sink,
                                                                               const qpruner::CancelToken& cancel) {
        qpruner::store::Store store(toPath(db));
        const qpruner::store::TrialRecord trial = qpruner::pipeline::evaluateMap(store, runId, mapJson, sink, &cancel);
        job.appendLog(QObject::tr("trial %1: objective %2")
                          .arg(trial.number)
                          .arg(trial.objective ? QString::number(*trial.objective, 'g', 6) : QStringLiteral("-")));
        job.setResult(QVariant::fromValue(trial));
    });
}

std::optional<qpruner::store::TrialRecord> evaluatedTrial(const Job& job)
{
    if (job.state() != Job::State::Done || !job.result().canConvert<qpruner::store::TrialRecord>())
        return std::nullopt;
    return job.result().value<qpruner::store::TrialRecord>();
}

namespace {

// The stage's result as a JSON string: QVariant carries it without a metatype, and trialActionResult() parses it.
void setJsonResult(Job& job, const nlohmann::json& r)
{
    job.setResult(QVariant::fromValue(
        QStringLiteral("trial-action:") +
        QString::fromStdString(r.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace))));
}

Job* trialJob(JobQueue& queue, const QString& title, const QString& db, qint64 runId, Job::JobWork work)
{
    Job* job = queue.startWith(title, std::move(work));
    job->tagRun(db, runId);
    return job;
}

} // namespace

Job* startRecoverTrial(JobQueue& queue, const QString& dbPath, qint64 runId, int trial,
                       const nlohmann::json& finetune, bool resume)
{
    const QString db = absolute(dbPath);
    const QString title = resume ? QObject::tr("Resume recovery of trial %1 (run %2)").arg(trial).arg(runId)
                                 : QObject::tr("Recover trial %1 (run %2)").arg(trial).arg(runId);
    return trialJob(queue, title, db, runId, [db, runId, trial, finetune, resume](
                                                Job& job, const qpruner::ProgressSink& sink,
                                                const qpruner::CancelToken& cancel) {
        qpruner::store::Store store(toPath(db));
        const nlohmann::json r = qpruner::pipeline::recoverTrial(store, runId, trial, finetune, resume, sink, &cancel);
        job.appendLog(QObject::tr("adapter: %1").arg(QString::fromStdString(r["adapter_dir"].get<std::string>())));
        setJsonResult(job, r);
    });
}

Job* startEvaluateTrial(JobQueue& queue, const QString& dbPath, qint64 runId, int trial,
                        const nlohmann::json& evaluate)
{
    const QString db = absolute(dbPath);
    return trialJob(queue, QObject::tr("Evaluate trial %1 (run %2)").arg(trial).arg(runId), db, runId,
                    [db, runId, trial, evaluate](Job& job, const qpruner::ProgressSink& sink,
                                                 const qpruner::CancelToken& cancel) {
                        qpruner::store::Store store(toPath(db));
                        setJsonResult(job, qpruner::pipeline::evaluateTrial(store, runId, trial, evaluate, sink,
                                                                            &cancel));
                    });
}

Job* startExportTrial(JobQueue& queue, const QString& dbPath, qint64 runId, int trial,
                      const qpruner::ExportOptions& options, bool mergeAdapter)
{
    const QString db = absolute(dbPath);
    return trialJob(queue,
                    QObject::tr("Export trial %1 (run %2) as %3")
                        .arg(trial)
                        .arg(runId)
                        .arg(QString::fromLatin1(qpruner::exportTargetName(options.target)).toUpper()),
                    db, runId,
                    [db, runId, trial, options, mergeAdapter](Job& job, const qpruner::ProgressSink& sink,
                                                              const qpruner::CancelToken& cancel) {
                        qpruner::store::Store store(toPath(db));
                        const qpruner::ExportPlan plan =
                            qpruner::pipeline::exportTrial(store, runId, trial, options, mergeAdapter, sink, &cancel);
                        job.appendLog(QObject::tr("wrote %1 (%2 bytes)")
                                          .arg(QString::fromStdString(options.out.string()))
                                          .arg(plan.totalBytes));
                        setJsonResult(job, {{"out", options.out.string()}, {"plan", qpruner::exportPlanJson(plan)}});
                    });
}

Job* startGenerateTrial(JobQueue& queue, const QString& dbPath, qint64 runId, int trial,
                        const qpruner::pipeline::TrialGenerateRequest& request)
{
    const QString db = absolute(dbPath);
    return trialJob(queue, QObject::tr("Generate with trial %1 (run %2)").arg(trial).arg(runId), db, runId,
                    [db, runId, trial, request](Job& job, const qpruner::ProgressSink& sink,
                                                const qpruner::CancelToken& cancel) {
                        qpruner::store::Store store(toPath(db));
                        setJsonResult(job,
                                      qpruner::pipeline::generateTrial(store, runId, trial, request, sink, &cancel));
                    });
}

std::optional<nlohmann::json> trialActionResult(const Job& job)
{
    static const QString kPrefix = QStringLiteral("trial-action:");
    if (job.state() != Job::State::Done || job.result().typeId() != QMetaType::QString)
        return std::nullopt;
    const QString text = job.result().toString();
    if (!text.startsWith(kPrefix))
        return std::nullopt;
    return nlohmann::json::parse(text.mid(kPrefix.size()).toStdString());
}

} // namespace qpruner::ui

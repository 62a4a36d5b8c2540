// Pipeline jobs: thin wrappers that run the torch-free pipeline.h calls on a JobQueue worker.
#include "jobs/pipeline_jobs.h"

#include <QFileInfo>

#include <filesystem>

#include "common/shared_data.h"
#include "qpruner/pipeline.h"

namespace qpruner::ui {

namespace {

std::filesystem::path toPath(const QString& s)
{
    return std::filesystem::path(s.toStdU16String());
}

QString absolute(const QString& path)
{
    return QFileInfo(path).absoluteFilePath();
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

} // namespace qpruner::ui

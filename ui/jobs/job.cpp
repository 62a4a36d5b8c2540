// Job: the worker records into JobState under its mutex; the UI thread copies it out in poll() and finalize().
#include "jobs/job.h"

#include <QMetaObject>

#include <exception>
#include <mutex>

#include "qpruner/error.h"

namespace qpruner::ui {

namespace {

using Clock = std::chrono::steady_clock;

// Progress messages change with every trial or training step; the log keeps one a second at most (stage
// changes always), and its length is capped so a long fine-tune cannot grow it without bound.
constexpr auto kMessageLogInterval = std::chrono::seconds(1);
constexpr int kMaxLogLines = 5000;

double secondsBetween(Clock::time_point a, Clock::time_point b)
{
    return std::chrono::duration<double>(b - a).count();
}

} // namespace

// Everything the worker thread writes. Shared with the runnable, so that a job cancelled while queued (and
// then deleted by "Clear finished") leaves the runnable something valid to look at when it finally starts.
struct JobState {
    std::mutex mutex;
    qpruner::CancelToken cancel;
    bool skip = false;      // cancelled while queued: the runnable must not run the work nor touch the Job
    bool started = false;
    Clock::time_point startedAt;

    bool hasProgress = false;
    bool progressDirty = false;
    qpruner::Progress progress;
    Clock::time_point stageStartedAt;
    int64_t stageStartDone = 0;
    double etaSeconds = -1;
    Clock::time_point etaTakenAt;
    std::string lastLoggedMessage;
    Clock::time_point lastMessageLoggedAt;

    QList<Job::LogLine> pendingLog;
    QList<std::pair<QString, QPointF>> pendingPoints;
    QVariant result;

    void log(const QString& text) { pendingLog.append({QDateTime::currentDateTime(), text}); }

    // The sink handed to the work: called on the worker thread, never blocks beyond this mutex.
    void report(const qpruner::Progress& p)
    {
        const auto now = Clock::now();
        std::lock_guard lock(mutex);
        const bool newStage = !hasProgress || p.stage != progress.stage;
        if (newStage || p.done < progress.done) { // a new stage, or the same stage started over
            stageStartedAt = now;
            stageStartDone = p.done;
        }
        if (newStage) {
            log(QStringLiteral("stage %1%2").arg(QString::fromStdString(p.stage),
                                                 p.message.empty() ? QString()
                                                                   : QStringLiteral(": ") +
                                                                         QString::fromStdString(p.message)));
            lastLoggedMessage = p.message;
            lastMessageLoggedAt = now;
        } else if (p.message != lastLoggedMessage && now - lastMessageLoggedAt >= kMessageLogInterval) {
            log(QStringLiteral("%1 %2/%3: %4")
                    .arg(QString::fromStdString(p.stage))
                    .arg(p.done)
                    .arg(p.total)
                    .arg(QString::fromStdString(p.message)));
            lastLoggedMessage = p.message;
            lastMessageLoggedAt = now;
        }
        // Named values become points of series: x is the report's "step" value when it has one, else `done`.
        if (!p.values.empty()) {
            double x = double(p.done);
            for (const auto& [name, v] : p.values)
                if (name == "step")
                    x = v;
            for (const auto& [name, v] : p.values)
                if (name != "step")
                    pendingPoints.append({QString::fromStdString(name), QPointF(x, v)});
        }
        progress = p;
        hasProgress = true;
        progressDirty = true;
        const double spent = secondsBetween(stageStartedAt, now);
        const int64_t doneInStage = p.done - stageStartDone;
        etaSeconds = p.total > 0 && doneInStage > 0 && spent > 0
                         ? double(std::max<int64_t>(p.total - p.done, 0)) * spent / double(doneInStage)
                         : -1;
        etaTakenAt = now;
    }
};

Job::Job(qint64 id, const QString& title, QObject* parent)
    : QObject(parent), id_(id), title_(title), shared_(std::make_shared<JobState>())
{
    addLogLine(tr("queued"));
}

Job::~Job() = default;

QString Job::stateName(State s)
{
    switch (s) {
    case State::Queued: return QStringLiteral("queued");
    case State::Running: return QStringLiteral("running");
    case State::Done: return QStringLiteral("done");
    case State::Failed: return QStringLiteral("failed");
    case State::Cancelled: return QStringLiteral("cancelled");
    }
    return {};
}

qint64 Job::elapsedMs() const
{
    if (!startedAt_)
        return 0;
    const auto end = finishedAt_ ? *finishedAt_ : Clock::now();
    return std::chrono::duration_cast<std::chrono::milliseconds>(end - *startedAt_).count();
}

std::optional<qint64> Job::etaMs() const
{
    if (state_ != State::Running || etaSeconds_ < 0)
        return std::nullopt;
    const double left = etaSeconds_ - secondsBetween(etaTakenAt_, Clock::now());
    return qint64(std::max(0.0, left) * 1000.0);
}

void Job::appendLog(const QString& text)
{
    std::lock_guard lock(shared_->mutex);
    shared_->log(text);
}

void Job::setResult(const QVariant& value)
{
    std::lock_guard lock(shared_->mutex);
    shared_->result = value;
}

void Job::tagRun(const QString& dbPath, qint64 runId)
{
    runDb_ = dbPath;
    runId_ = runId;
}

QVector<QPointF> Job::series(const QString& name) const
{
    return series_.value(name);
}

QStringList Job::seriesNames() const
{
    return series_.keys();
}

void Job::takePoints(QList<std::pair<QString, QPointF>>& points)
{
    for (const auto& [name, p] : points)
        series_[name].append(p);
    pointsAdded_ += points.size();
    points.clear();
}

void Job::announceRun(const QString& dbPath, qint64 runId)
{
    appendLog(tr("run %1 in %2").arg(runId).arg(dbPath));
    // Queued to this object: it runs on the UI thread before finalize(), which the worker posts later.
    QMetaObject::invokeMethod(
        this,
        [this, dbPath, runId] {
            runDb_ = dbPath;
            runId_ = runId;
            Q_EMIT runCreated(dbPath, runId);
        },
        Qt::QueuedConnection);
}

void Job::cancel()
{
    if (isFinished())
        return;
    bool finishNow = false;
    {
        std::lock_guard lock(shared_->mutex);
        shared_->cancel.cancel();
        if (!shared_->started) {
            shared_->skip = true;
            finishNow = true;
        }
    }
    if (finishNow) {
        state_ = State::Cancelled;
        addLogLine(tr("cancelled before it started"));
        Q_EMIT changed();
        Q_EMIT finished(state_);
        return;
    }
    addLogLine(tr("cancel requested"));
    Q_EMIT changed();
}

void Job::addLogLine(const QString& text)
{
    QList<LogLine> one{{QDateTime::currentDateTime(), text}};
    takeLogLines(one);
}

void Job::takeLogLines(QList<LogLine>& lines)
{
    log_.append(lines);
    logLinesAdded_ += lines.size();
    lines.clear();
    if (log_.size() > kMaxLogLines)
        log_.erase(log_.begin(), log_.begin() + (log_.size() - kMaxLogLines));
}

void Job::execute(const std::shared_ptr<JobState>& s, Job* job, const JobWork& work)
{
    {
        std::lock_guard lock(s->mutex);
        if (s->skip)
            return; // the Job may be gone already
        s->started = true;
        s->startedAt = Clock::now();
        s->log(tr("started"));
    }
    State outcome = State::Done;
    QString error;
    const qpruner::ProgressSink sink = [s](const qpruner::Progress& p) { s->report(p); };
    try {
        work(*job, sink, s->cancel);
    } catch (const qpruner::CancelledError&) {
        outcome = State::Cancelled;
    } catch (const std::exception& e) { // qpruner::Error included: its what() names the file or field
        outcome = State::Failed;
        error = QString::fromUtf8(e.what());
    } catch (...) {
        outcome = State::Failed;
        error = tr("unknown error (not a std::exception)");
    }
    {
        std::lock_guard lock(s->mutex);
        const double seconds = secondsBetween(s->startedAt, Clock::now());
        s->log(outcome == State::Done        ? tr("done in %1 s").arg(seconds, 0, 'f', 1)
               : outcome == State::Cancelled ? tr("cancelled after %1 s").arg(seconds, 0, 'f', 1)
                                             : tr("failed: %1").arg(error));
    }
    // The last touch of `job` from this thread: once finalize() ran on the UI thread the Job may be deleted.
    QMetaObject::invokeMethod(
        job,
        [job, outcome, error] {
            job->finishedAt_ = Clock::now();
            job->state_ = outcome;
            job->error_ = error;
            job->finalize();
        },
        Qt::QueuedConnection);
}

bool Job::poll()
{
    if (isFinished())
        return false;
    bool changedNow = false;
    QList<LogLine> lines;
    QList<std::pair<QString, QPointF>> points;
    {
        std::lock_guard lock(shared_->mutex);
        if (shared_->started && !startedAt_) {
            startedAt_ = shared_->startedAt;
            changedNow = true;
        }
        if (shared_->progressDirty) {
            progress_ = shared_->progress;
            etaSeconds_ = shared_->etaSeconds;
            etaTakenAt_ = shared_->etaTakenAt;
            shared_->progressDirty = false;
            changedNow = true;
        }
        lines.swap(shared_->pendingLog);
        points.swap(shared_->pendingPoints);
    }
    if (startedAt_ && state_ == State::Queued)
        state_ = State::Running;
    changedNow = changedNow || !lines.isEmpty() || !points.isEmpty();
    takeLogLines(lines);
    takePoints(points);
    if (changedNow)
        Q_EMIT changed();
    return changedNow;
}

void Job::finalize()
{
    // finishedAt_, state_ and error_ were set by the caller; take over the last progress, log and result.
    const State outcome = state_;
    QList<LogLine> lines;
    QList<std::pair<QString, QPointF>> points;
    {
        std::lock_guard lock(shared_->mutex);
        if (!startedAt_)
            startedAt_ = shared_->startedAt;
        if (shared_->progressDirty)
            progress_ = shared_->progress;
        shared_->progressDirty = false;
        lines.swap(shared_->pendingLog);
        points.swap(shared_->pendingPoints);
        result_ = shared_->result;
    }
    takeLogLines(lines);
    takePoints(points);
    etaSeconds_ = -1;
    Q_EMIT changed();
    Q_EMIT finished(outcome);
}

} // namespace qpruner::ui

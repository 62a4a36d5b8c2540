// One piece of long work (a pipeline run, a map evaluation) as the UI sees it: state, the latest progress, ETA,
// elapsed time, a timestamped log, the error. The work itself runs on a JobQueue worker thread; it only ever
// touches the mutex-guarded JobState, and the UI thread picks that up on the queue's timer (JobQueue::poll),
// so a worker reporting progress 10,000 times a second costs the UI at most ~25 updates a second.
#pragma once

#include <QDateTime>
#include <QList>
#include <QMap>
#include <QObject>
#include <QPointF>
#include <QStringList>
#include <QVector>
#include <QString>
#include <QVariant>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <utility>

#include "qpruner/progress.h"

namespace qpruner::ui {

struct JobState;

class Job : public QObject {
    Q_OBJECT

public:
    enum class State { Queued, Running, Done, Failed, Cancelled };
    Q_ENUM(State)

    // The work of a job (JobQueue::startWith), run on a worker thread.
    using JobWork = std::function<void(Job&, const qpruner::ProgressSink&, const qpruner::CancelToken&)>;

    struct LogLine {
        QDateTime time;
        QString text;
    };

    ~Job() override;

    qint64 id() const { return id_; }
    QString title() const { return title_; }
    State state() const { return state_; }
    bool isFinished() const { return state_ == State::Done || state_ == State::Failed || state_ == State::Cancelled; }
    static QString stateName(State s); // "queued", "running", "done", "failed", "cancelled"

    // The latest progress the UI has picked up (empty stage until the work reports).
    const qpruner::Progress& progress() const { return progress_; }
    // Milliseconds since the work started (0 while queued), frozen once finished.
    qint64 elapsedMs() const;
    // Remaining time from the rate of the current stage; nullopt when unknown (no total, no rate yet, finished).
    std::optional<qint64> etaMs() const;
    // The latest lines (at most 5000: the head of a very long log is dropped).
    const QList<LogLine>& log() const { return log_; }
    // Lines ever added, dropped ones included: what a view appends since it last looked.
    qint64 logLinesAdded() const { return logLinesAdded_; }
    QString errorText() const { return error_; } // empty unless Failed
    // What the work handed over with setResult(), available once finished.
    QVariant result() const { return result_; }
    // The workspace run this job computes, once announced (empty / 0 before).
    QString runDbPath() const { return runDb_; }
    qint64 runId() const { return runId_; }
    // Sets the run a job acts on without announcing it (UI thread, before the job runs): a trial action on a
    // run already on display.
    void tagRun(const QString& dbPath, qint64 runId);
    // Every named value the work reported (Progress::values), in order: x is the report's "step" value when it
    // has one, else its `done` (a recovery: "loss" and "lr" per step, "val_loss" per validation).
    QVector<QPointF> series(const QString& name) const;
    QStringList seriesNames() const;
    qint64 pointsAdded() const { return pointsAdded_; }

    // --- callable from the job's worker thread (and from any other) ---
    void appendLog(const QString& text);
    void setResult(const QVariant& value);
    // Reports the run the work created or resumed; runCreated() follows on the UI thread.
    void announceRun(const QString& dbPath, qint64 runId);

public Q_SLOTS:
    // Asks the work to stop at its next cancellation point; a queued job ends Cancelled at once.
    void cancel();

Q_SIGNALS:
    void changed();
    void finished(qpruner::ui::Job::State state);
    void runCreated(const QString& dbPath, qint64 runId);

private:
    friend class JobQueue;

    Job(qint64 id, const QString& title, QObject* parent);
    // Worker thread: runs `work` unless cancelled while queued, records the outcome, posts finalize().
    static void execute(const std::shared_ptr<JobState>& state, Job* job, const JobWork& work);
    // UI thread: takes over what the worker recorded since the last call; true when anything changed.
    bool poll();
    void finalize();
    void addLogLine(const QString& text);
    void takeLogLines(QList<LogLine>& lines);
    void takePoints(QList<std::pair<QString, QPointF>>& points);

    const qint64 id_;
    const QString title_;
    std::shared_ptr<JobState> shared_;
    State state_ = State::Queued;
    qpruner::Progress progress_;
    std::optional<std::chrono::steady_clock::time_point> startedAt_;
    std::optional<std::chrono::steady_clock::time_point> finishedAt_;
    double etaSeconds_ = -1;                            // at etaTakenAt_
    std::chrono::steady_clock::time_point etaTakenAt_;
    QList<LogLine> log_;
    qint64 logLinesAdded_ = 0;
    QMap<QString, QVector<QPointF>> series_;
    qint64 pointsAdded_ = 0;
    QString error_;
    QVariant result_;
    QString runDb_;
    qint64 runId_ = 0;
};

} // namespace qpruner::ui

// Owns the studio's background jobs and runs them on its own thread pool. Progress is pulled, not pushed: a
// timer on the UI thread (every 40 ms while something runs) asks each unfinished job for what its worker
// recorded, so the UI gets one jobChanged per job per tick at most, whatever the worker's report rate.
// Destroying the queue cancels every job and waits for the workers: no work outlives the objects it reports to.
#pragma once

#include <QList>
#include <QObject>
#include <QString>
#include <QThreadPool>
#include <QTimer>

#include <functional>

#include "jobs/job.h"
#include "qpruner/progress.h"

namespace qpruner::ui {

class JobQueue : public QObject {
    Q_OBJECT

public:
    // Runs on a worker thread. Throwing CancelledError ends the job Cancelled, any other exception Failed
    // with its message; returning ends it Done.
    using Work = std::function<void(const qpruner::ProgressSink&, const qpruner::CancelToken&)>;
    // The same with the Job, for work that logs, hands over a result or announces a run (the Job methods
    // documented as callable from the worker thread).
    using JobWork = Job::JobWork;

    explicit JobQueue(QObject* parent = nullptr, int maxThreads = 2);
    ~JobQueue() override;

    Job* start(const QString& title, Work work);
    Job* startWith(const QString& title, JobWork work);

    const QList<Job*>& jobs() const { return jobs_; }
    Job* job(qint64 id) const;
    int activeCount() const; // queued or running
    // Interval of the progress pick-up timer (default 40 ms, i.e. at most 25 updates a second).
    void setUpdateInterval(int ms) { timer_.setInterval(ms); }
    int updateInterval() const { return timer_.interval(); }

    // Blocks until every worker is idle (tests, shutdown); true when they were within `msecs`. The jobs
    // still finish through the event loop.
    bool waitForIdle(int msecs = -1) { return pool_.waitForDone(msecs); }

public Q_SLOTS:
    void cancelAll();
    // Removes (and deletes) every finished job.
    void clearFinished();

Q_SIGNALS:
    void jobAdded(qpruner::ui::Job* job);
    void jobChanged(qpruner::ui::Job* job);
    void jobFinished(qpruner::ui::Job* job);
    void jobRemoved(qint64 jobId); // just before the Job is deleted
    // A job announced the run it computes (Job::announceRun).
    void runCreated(const QString& dbPath, qint64 runId);

private:
    void pollJobs();

    QThreadPool pool_;
    QTimer timer_;
    QList<Job*> jobs_;
    qint64 nextId_ = 1;
};

} // namespace qpruner::ui

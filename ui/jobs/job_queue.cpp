// JobQueue: a private QThreadPool for the work, one UI-thread timer for everything the workers report.
#include "jobs/job_queue.h"

namespace qpruner::ui {

JobQueue::JobQueue(QObject* parent, int maxThreads) : QObject(parent)
{
    pool_.setMaxThreadCount(std::max(1, maxThreads));
    // Workers of a queue that a test creates and destroys quickly should not linger.
    pool_.setExpiryTimeout(5000);
    timer_.setInterval(40);
    connect(&timer_, &QTimer::timeout, this, &JobQueue::pollJobs);
}

JobQueue::~JobQueue()
{
    timer_.stop();
    // No signals from here on: receivers may be half torn down along with the window that owns the queue.
    blockSignals(true);
    for (Job* j : std::as_const(jobs_)) {
        j->blockSignals(true);
        j->cancel(); // queued ones are skipped without running, running ones stop at their next check
    }
    pool_.waitForDone();
    // The Jobs (children) are deleted after this body; their pending finalize events die with them.
}

Job* JobQueue::start(const QString& title, Work work)
{
    return startWith(title, [work = std::move(work)](Job&, const qpruner::ProgressSink& sink,
                                                      const qpruner::CancelToken& cancel) { work(sink, cancel); });
}

Job* JobQueue::startWith(const QString& title, JobWork work)
{
    Job* job = new Job(nextId_++, title, this);
    jobs_.append(job);
    connect(job, &Job::changed, this, [this, job] { Q_EMIT jobChanged(job); });
    connect(job, &Job::finished, this, [this, job] {
        Q_EMIT jobFinished(job);
        if (activeCount() == 0)
            timer_.stop();
    });
    connect(job, &Job::runCreated, this, &JobQueue::runCreated);
    Q_EMIT jobAdded(job);
    std::shared_ptr<JobState> state = job->shared_;
    pool_.start([state, job, work = std::move(work)] { Job::execute(state, job, work); });
    if (!timer_.isActive())
        timer_.start();
    return job;
}

Job* JobQueue::job(qint64 id) const
{
    for (Job* j : jobs_)
        if (j->id() == id)
            return j;
    return nullptr;
}

int JobQueue::activeCount() const
{
    int n = 0;
    for (Job* j : jobs_)
        n += j->isFinished() ? 0 : 1;
    return n;
}

void JobQueue::cancelAll()
{
    // Copy: a queued job's cancel() finishes it at once, and a receiver may clear finished jobs in response.
    const QList<Job*> all = jobs_;
    for (Job* j : all)
        if (jobs_.contains(j))
            j->cancel();
}

void JobQueue::clearFinished()
{
    for (qsizetype i = jobs_.size() - 1; i >= 0; --i) {
        Job* j = jobs_[i];
        if (!j->isFinished())
            continue;
        jobs_.removeAt(i);
        Q_EMIT jobRemoved(j->id());
        delete j;
    }
}

void JobQueue::pollJobs()
{
    for (Job* j : std::as_const(jobs_))
        j->poll(); // emits Job::changed -> jobChanged when the worker recorded anything
}

} // namespace qpruner::ui

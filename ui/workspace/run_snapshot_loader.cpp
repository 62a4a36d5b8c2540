// RunSnapshotLoader: one read in flight at a time; results of superseded reads are dropped by generation.
#include "workspace/run_snapshot_loader.h"

#include <QtConcurrent/QtConcurrentRun>

#include <utility>

#include "qpruner/error.h"

namespace qpruner::ui {

RunSnapshotLoader::RunSnapshotLoader(QObject* parent) : QObject(parent)
{
    qRegisterMetaType<RunSnapshotPtr>();
    pollTimer_.setSingleShot(true);
    pollTimer_.setInterval(kDefaultPollMs);
    connect(&pollTimer_, &QTimer::timeout, this, &RunSnapshotLoader::refresh);
    connect(&watcher_, &QFutureWatcher<Outcome>::finished, this, &RunSnapshotLoader::onFinished);
}

RunSnapshotLoader::~RunSnapshotLoader()
{
    watcher_.waitForFinished(); // the worker holds no pointer to this object, but finish before members go
}

bool RunSnapshotLoader::isLoading() const
{
    return watcher_.isRunning();
}

void RunSnapshotLoader::setPollInterval(int ms)
{
    pollTimer_.setInterval(ms);
}

void RunSnapshotLoader::load(const QString& dbPath, qint64 runId)
{
    ++generation_;
    pendingDb_ = dbPath;
    pendingRun_ = runId;
    refreshQueued_ = false;
    pollTimer_.stop();
    const quint64 generation = generation_;
    start([dbPath, runId, generation] {
        Outcome o;
        o.generation = generation;
        try {
            o.snapshot = std::make_shared<RunSnapshot>(loadRunSnapshot(dbPath, runId));
        } catch (const std::exception& e) {
            o.error = QString::fromUtf8(e.what());
        }
        return o;
    });
}

void RunSnapshotLoader::refresh()
{
    if (!current_ || pendingRun_ != current_->run.id)
        return;
    if (watcher_.isRunning()) {
        refreshQueued_ = true;
        return;
    }
    const RunSnapshotPtr base = current_;
    const quint64 generation = generation_;
    start([base, generation] {
        Outcome o;
        o.generation = generation;
        o.refresh = true;
        try {
            auto s = std::make_shared<RunSnapshot>(*base);
            refreshRunSnapshot(*s);
            o.snapshot = std::move(s);
        } catch (const std::exception& e) {
            o.error = QString::fromUtf8(e.what());
        }
        return o;
    });
}

void RunSnapshotLoader::clear()
{
    ++generation_;
    current_.reset();
    pendingDb_.clear();
    pendingRun_ = 0;
    pollTimer_.stop();
}

void RunSnapshotLoader::start(std::function<Outcome()> work)
{
    if (watcher_.isRunning()) {
        next_ = std::move(work); // runs when the read in flight ends; that one's result is then stale
        return;
    }
    watcher_.setFuture(QtConcurrent::run(std::move(work)));
}

void RunSnapshotLoader::onFinished()
{
    const Outcome o = watcher_.result();
    if (next_) {
        watcher_.setFuture(QtConcurrent::run(std::exchange(next_, nullptr)));
        return;
    }
    if (o.generation != generation_)
        return; // superseded
    if (!o.error.isEmpty()) {
        if (!o.refresh)
            Q_EMIT failed(pendingDb_, pendingRun_, o.error);
        else
            schedulePoll(); // a transient failure (e.g. a locked file): try again later
        return;
    }
    current_ = o.snapshot;
    if (o.refresh)
        Q_EMIT updated(current_);
    else
        Q_EMIT loaded(current_);
    if (refreshQueued_) {
        refreshQueued_ = false;
        refresh();
        return;
    }
    schedulePoll();
}

void RunSnapshotLoader::schedulePoll()
{
    if (current_ && current_->run.status == store::RunStatus::Running)
        pollTimer_.start();
}

} // namespace qpruner::ui

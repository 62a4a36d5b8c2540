// Reads run snapshots off the UI thread and keeps a running run's snapshot fresh: the main window asks for a run,
// the loader reads it on a worker thread (QtConcurrent) and hands the result back on the UI thread. While the
// run is running (or a job says it changed) it re-reads the parts that change, at most once per poll interval,
// so the Search tab's live plot follows the search without the event loop ever waiting on SQLite.
#pragma once

#include <QFutureWatcher>
#include <QObject>
#include <QString>
#include <QTimer>

#include <functional>
#include <memory>

#include "workspace/run_snapshot.h"

namespace qpruner::ui {

using RunSnapshotPtr = std::shared_ptr<const RunSnapshot>;

class RunSnapshotLoader : public QObject {
    Q_OBJECT

public:
    static constexpr int kDefaultPollMs = 1000;

    explicit RunSnapshotLoader(QObject* parent = nullptr);
    ~RunSnapshotLoader() override;

    // The snapshot on display (null before the first load finished).
    RunSnapshotPtr current() const { return current_; }
    bool isLoading() const;
    void setPollInterval(int ms);

public Q_SLOTS:
    // Starts reading a run; a read still in flight is superseded (its result dropped).
    void load(const QString& dbPath, qint64 runId);
    // Re-reads the current run's changing parts now (e.g. a job added a trial). No-op without a run.
    void refresh();
    void clear();

Q_SIGNALS:
    void loaded(const qpruner::ui::RunSnapshotPtr& snapshot); // a new run is on display
    void updated(const qpruner::ui::RunSnapshotPtr& snapshot); // the same run, re-read
    void failed(const QString& dbPath, qint64 runId, const QString& message);

private:
    struct Outcome {
        RunSnapshotPtr snapshot;
        QString error;
        bool refresh = false;
        quint64 generation = 0;
    };
    void start(std::function<Outcome()> work);
    void onFinished();
    void schedulePoll();

    QFutureWatcher<Outcome> watcher_;
    std::function<Outcome()> next_; // a read asked for while another was in flight
    RunSnapshotPtr current_;
    QString pendingDb_;
    qint64 pendingRun_ = 0;
    quint64 generation_ = 0;      // bumped by every load/clear: older results are dropped
    bool refreshQueued_ = false;  // a refresh asked for while a read was in flight
    QTimer pollTimer_;
};

} // namespace qpruner::ui

Q_DECLARE_METATYPE(qpruner::ui::RunSnapshotPtr)

// The Compare tab: a checkable list of the workspace's runs beside the ComparePanel. Checking two or more runs
// reads their snapshots off the UI thread and shows them together.
#pragma once

#include <QFutureWatcher>
#include <QList>
#include <QWidget>

#include <vector>

#include "workspace/run_snapshot.h"

class QCustomPlot;
class QLabel;
class QListWidget;

namespace qpruner::ui {

class ComparePanel;

class ComparePage : public QWidget {
    Q_OBJECT

public:
    explicit ComparePage(QWidget* parent = nullptr);
    ~ComparePage() override;

    // Lists the runs of `dbPath` (re-read when the workspace changes); `currentRun` is checked by default.
    void setWorkspace(const QString& dbPath, qint64 currentRun);
    // Checks exactly these runs and compares them (tests, command line).
    void compareRuns(const QList<qint64>& runIds);
    QList<qint64> checkedRuns() const;
    ComparePanel* panel() const { return panel_; }
    QList<QCustomPlot*> plots() const;
    bool isLoading() const { return runsWatcher_.isRunning() || snapshotsWatcher_.isRunning(); }

Q_SIGNALS:
    void compared(int runs); // the panel shows this many runs

private:
    struct RunsOutcome {
        std::vector<store::RunRecord> runs;
        QString error;
    };
    struct SnapshotsOutcome {
        std::vector<RunSnapshot> snapshots;
        QString error;
    };
    void onRunsRead();
    void onSnapshotsRead();
    void loadChecked();

    QListWidget* list_ = nullptr;
    QLabel* note_ = nullptr;
    ComparePanel* panel_ = nullptr;
    QString db_;
    QString lastRead_; // the workspace the runs read in flight belong to
    qint64 currentRun_ = 0;
    QList<qint64> pendingChecks_;
    bool reloadQueued_ = false;
    QFutureWatcher<RunsOutcome> runsWatcher_;
    QFutureWatcher<SnapshotsOutcome> snapshotsWatcher_;
};

} // namespace qpruner::ui

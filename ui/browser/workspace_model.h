// The experiments and runs of a workspace database as a two-level tree (experiment -> its runs), read on a
// worker thread through a read-only Store. A refresh of the same workspace merges the new read into the rows
// in place (dataChanged for changed runs, inserts for new ones, removals for vanished ones) and never resets
// the model, so the view keeps its selection, expansion and scroll position while runs progress.
#pragma once

#include <QAbstractItemModel>
#include <QFutureWatcher>
#include <QList>
#include <QString>

#include <vector>

#include "qpruner/store.h"

namespace qpruner::ui {

class WorkspaceModel : public QAbstractItemModel {
    Q_OBJECT

public:
    enum Column { RunColumn, NameColumn, KindColumn, StatusColumn, TrialsColumn, CreatedColumn, ColumnCount };
    enum Role {
        RunIdRole = Qt::UserRole + 1, // qint64; 0 on experiment rows
        ExperimentIdRole,             // qint64
        StatusRole,                   // int(store::RunStatus) on run rows
        FilterRole,                   // run rows: "#id name kind status experiment"; experiment rows: empty
        SortRole,                     // numbers for id and trials, text otherwise
    };

    explicit WorkspaceModel(QObject* parent = nullptr);
    ~WorkspaceModel() override;

    // Reads `dbPath` asynchronously. Another workspace replaces the current one (a model reset) only once it
    // has been read; a failure keeps the current one and reports loadFailed with the core's message.
    void load(const QString& dbPath);
    // Re-reads the current workspace and merges it in place.
    void refresh();
    void clear();
    QString workspace() const { return workspace_; }
    bool isLoading() const { return watcher_.isRunning(); }

    int experimentCount() const { return int(experiments_.size()); }
    int runCount() const;
    bool hasRunningRuns() const;
    QModelIndex indexOfRun(qint64 runId, int column = 0) const;
    const qpruner::store::RunRecord* runAt(const QModelIndex& index) const; // null on experiment rows

    // "2026-11-22T10:11:12.345Z" (UTC) -> "2026-11-22 11:11" in local time.
    static QString formatTimestamp(const std::string& utc);

    QModelIndex index(int row, int column, const QModelIndex& parent = {}) const override;
    QModelIndex parent(const QModelIndex& child) const override;
    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

Q_SIGNALS:
    void loaded(const QString& dbPath);
    void loadFailed(const QString& dbPath, const QString& message);

private:
    struct Experiment {
        qpruner::store::ExperimentRecord record;
        std::vector<qpruner::store::RunRecord> runs; // ascending id
    };
    struct Snapshot {
        QString path;
        QString error;
        std::vector<Experiment> experiments; // ascending id
    };
    static Snapshot read(const QString& path);
    void startRead(const QString& path);
    void onReadFinished();
    void merge(std::vector<Experiment> fresh);
    void mergeRuns(int experimentRow, std::vector<qpruner::store::RunRecord> fresh);
    int experimentRow(int64_t experimentId) const;

    QString workspace_;
    QString pendingPath_; // asked for while a read was in flight
    bool pending_ = false;
    QFutureWatcher<Snapshot> watcher_;
    std::vector<Experiment> experiments_;
};

} // namespace qpruner::ui

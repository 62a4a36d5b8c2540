// The jobs of a JobQueue as table rows for the jobs panel: title, state, progress ("stage done/total"), ETA,
// elapsed, and a column that hosts the Cancel button. Rows follow the queue (added at the end, removed when
// cleared); a 1 s tick refreshes the ETA and elapsed cells of running jobs between progress updates.
#pragma once

#include <QAbstractTableModel>
#include <QList>
#include <QPointer>
#include <QTimer>

#include "jobs/job_queue.h"

namespace qpruner::ui {

class JobTableModel : public QAbstractTableModel {
    Q_OBJECT

public:
    enum Column { TitleColumn, StateColumn, ProgressColumn, EtaColumn, ElapsedColumn, CancelColumn, ColumnCount };
    enum Role {
        ProgressFractionRole = Qt::UserRole + 1, // double in [0, 1]; -1 when there is no total
        JobIdRole,                               // qint64
    };

    explicit JobTableModel(JobQueue* queue, QObject* parent = nullptr);

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

    Job* jobAt(int row) const;
    int rowOf(const Job* job) const;

    // "12 s", "4:05", "1:02:03".
    static QString formatDuration(qint64 ms);
    // "search 3/6", "importance 8/8", "queued", "done".
    static QString progressText(const Job& job);

private:
    void onJobAdded(Job* job);
    void onJobChanged(Job* job);
    void onJobRemoved(qint64 id);
    void tick();

    JobQueue* queue_;
    QList<QPointer<Job>> jobs_;
    QTimer tick_;
};

} // namespace qpruner::ui

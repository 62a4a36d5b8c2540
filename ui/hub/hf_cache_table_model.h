// The Hugging Face cache scan as a table for the start page: one row per cached model repo.
#pragma once

#include <QAbstractTableModel>
#include <QList>

#include "hub/hf_cache.h"

namespace qpruner::ui {

class HfCacheTableModel : public QAbstractTableModel {
    Q_OBJECT

public:
    enum Column { RepoColumn, RevisionColumn, SizeColumn, ArchitectureColumn, StatusColumn, ColumnCount };
    // Qt::UserRole on any column: the entry's snapshot directory. SizeRole: the exact byte count.
    static constexpr int SnapshotRole = Qt::UserRole;
    static constexpr int SizeRole = Qt::UserRole + 1;

    explicit HfCacheTableModel(QObject* parent = nullptr);

    void setEntries(const QList<HfCachedModel>& entries);
    const QList<HfCachedModel>& entries() const { return entries_; }
    const HfCachedModel& entry(int row) const { return entries_.at(row); }
    // Row of `repoId`, or -1.
    int rowOfRepo(const QString& repoId) const;

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

    // "complete" or "incomplete"; the problem is the status cell's tool tip.
    static QString statusText(const HfCachedModel& m);

private:
    QList<HfCachedModel> entries_;
};

} // namespace qpruner::ui

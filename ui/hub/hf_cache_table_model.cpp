// Table of cached hub models. Revisions show as the 10-character commit prefix the hub's web pages use.
#include "hub/hf_cache_table_model.h"

#include <QBrush>
#include <QColor>
#include <QFont>

#include "common/number_format.h"

namespace qpruner::ui {

HfCacheTableModel::HfCacheTableModel(QObject* parent) : QAbstractTableModel(parent) {}

void HfCacheTableModel::setEntries(const QList<HfCachedModel>& entries)
{
    beginResetModel();
    entries_ = entries;
    endResetModel();
}

int HfCacheTableModel::rowOfRepo(const QString& repoId) const
{
    for (int i = 0; i < entries_.size(); ++i)
        if (entries_[i].repoId == repoId)
            return i;
    return -1;
}

int HfCacheTableModel::rowCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : int(entries_.size());
}

int HfCacheTableModel::columnCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

QString HfCacheTableModel::statusText(const HfCachedModel& m)
{
    return m.complete ? QStringLiteral("complete") : QStringLiteral("incomplete");
}

QVariant HfCacheTableModel::data(const QModelIndex& index, int role) const
{
    if (!index.isValid() || index.row() >= entries_.size())
        return {};
    const HfCachedModel& m = entries_[index.row()];
    switch (role) {
    case Qt::DisplayRole:
        switch (index.column()) {
        case RepoColumn: return m.repoId;
        case RevisionColumn:
            return m.revision.left(10) + (m.refName.isEmpty() ? QString() : QStringLiteral(" (%1)").arg(m.refName));
        case SizeColumn: return formatBytes(m.sizeOnDisk);
        case ArchitectureColumn: return m.architectureSummary();
        case StatusColumn: return statusText(m);
        default: return {};
        }
    case Qt::ToolTipRole:
        switch (index.column()) {
        case RevisionColumn: return m.revision;
        case SizeColumn: return formatBytesExact(m.sizeOnDisk);
        case StatusColumn: return m.complete ? QVariant() : QVariant(m.problem);
        default:
            return m.snapshotDir.isEmpty() ? m.repoDir : m.snapshotDir;
        }
    case Qt::TextAlignmentRole:
        if (index.column() == SizeColumn)
            return int(Qt::AlignRight | Qt::AlignVCenter);
        return {};
    case Qt::ForegroundRole:
        if (index.column() == StatusColumn && !m.complete)
            return QBrush(QColor(0xb0, 0x30, 0x20));
        return {};
    case Qt::FontRole:
        if (index.column() == RevisionColumn) {
            QFont f(QStringLiteral("monospace"));
            f.setStyleHint(QFont::Monospace);
            return f;
        }
        return {};
    case SnapshotRole: return m.snapshotDir;
    case SizeRole: return m.sizeOnDisk;
    default: return {};
    }
}

QVariant HfCacheTableModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return {};
    switch (section) {
    case RepoColumn: return tr("Repository");
    case RevisionColumn: return tr("Revision");
    case SizeColumn: return tr("Size");
    case ArchitectureColumn: return tr("Architecture");
    case StatusColumn: return tr("Status");
    default: return {};
    }
}

} // namespace qpruner::ui

// WorkspaceModel: one read-only Store read per load on the global thread pool, merged on the UI thread.
// Index scheme: experiment rows carry internalId 0, run rows the id of their experiment (stable across
// inserts, unlike a row number), so persistent indexes of runs stay valid while experiments are added.
#include "common/workspace_location.h"
#include "browser/workspace_model.h"

#include <QDateTime>
#include <QFileInfo>
#include <QFont>
#include <QPalette>
#include <QtConcurrent/QtConcurrentRun>

#include <algorithm>
#include <filesystem>
#include <map>

#include "jobs/status_icons.h"
#include "workspace/run_snapshot.h"

namespace qpruner::ui {

using qpruner::store::RunRecord;
using qpruner::store::RunStatus;

namespace {

bool sameRow(const RunRecord& a, const RunRecord& b)
{
    return a.name == b.name && a.kind == b.kind && a.status == b.status && a.trialsComplete == b.trialsComplete &&
           a.trialsRunning == b.trialsRunning && a.trialsFailed == b.trialsFailed && a.error == b.error &&
           a.finishedAt == b.finishedAt && a.createdAt == b.createdAt;
}

bool hasSearch(const RunRecord& r)
{
    return r.config.is_object() && r.config.contains("search") && !r.config["search"].is_null();
}

} // namespace

WorkspaceModel::WorkspaceModel(QObject* parent) : QAbstractItemModel(parent)
{
    connect(&watcher_, &QFutureWatcher<Snapshot>::finished, this, &WorkspaceModel::onReadFinished);
}

WorkspaceModel::~WorkspaceModel()
{
    watcher_.waitForFinished(); // the read touches no member, but its result must not arrive half destroyed
}

WorkspaceModel::Snapshot WorkspaceModel::read(const QString& path)
{
    Snapshot s;
    s.path = path;
    try {
        const auto opened = openWorkspaceReadOnly(path);
        const qpruner::store::Store& store = *opened;
        std::map<int64_t, size_t> rowOf;
        for (const auto& e : store.experiments()) {
            rowOf[e.id] = s.experiments.size();
            s.experiments.push_back({e, {}});
        }
        for (auto& r : store.runs())
            if (auto it = rowOf.find(r.experimentId); it != rowOf.end())
                s.experiments[it->second].runs.push_back(std::move(r));
        std::sort(s.experiments.begin(), s.experiments.end(),
                  [](const Experiment& a, const Experiment& b) { return a.record.id < b.record.id; });
        for (auto& e : s.experiments)
            std::sort(e.runs.begin(), e.runs.end(), [](const RunRecord& a, const RunRecord& b) { return a.id < b.id; });
    } catch (const std::exception& e) {
        s.error = QString::fromUtf8(e.what());
        s.experiments.clear();
    }
    return s;
}

void WorkspaceModel::load(const QString& dbPath)
{
    startRead(workspaceKey(dbPath));
}

void WorkspaceModel::refresh()
{
    if (!workspace_.isEmpty())
        startRead(workspace_);
}

void WorkspaceModel::clear()
{
    pending_ = false;
    beginResetModel();
    workspace_.clear();
    experiments_.clear();
    endResetModel();
}

void WorkspaceModel::startRead(const QString& path)
{
    if (watcher_.isRunning()) { // the latest request wins; it starts when the current read ends
        pending_ = true;
        pendingPath_ = path;
        return;
    }
    watcher_.setFuture(QtConcurrent::run(&WorkspaceModel::read, path));
}

void WorkspaceModel::onReadFinished()
{
    Snapshot s = watcher_.result();
    if (pending_) {
        // Asked again while reading: this read may predate what the caller wants to see, so read again;
        // a read of the same workspace is still shown meanwhile, one of another workspace is stale.
        pending_ = false;
        const QString next = pendingPath_;
        startRead(next);
        if (next != s.path)
            return;
    }
    if (!s.error.isEmpty()) {
        Q_EMIT loadFailed(s.path, s.error);
        return;
    }
    if (s.path != workspace_) {
        beginResetModel();
        workspace_ = s.path;
        experiments_ = std::move(s.experiments);
        endResetModel();
    } else {
        merge(std::move(s.experiments));
    }
    Q_EMIT loaded(s.path);
}

int WorkspaceModel::experimentRow(int64_t experimentId) const
{
    for (size_t i = 0; i < experiments_.size(); ++i)
        if (experiments_[i].record.id == experimentId)
            return int(i);
    return -1;
}

void WorkspaceModel::merge(std::vector<Experiment> fresh)
{
    // Experiments: remove the vanished ones, then walk the fresh list (ascending id) inserting what is new.
    for (int row = int(experiments_.size()) - 1; row >= 0; --row) {
        const int64_t id = experiments_[size_t(row)].record.id;
        if (std::none_of(fresh.begin(), fresh.end(), [id](const Experiment& e) { return e.record.id == id; })) {
            beginRemoveRows({}, row, row);
            experiments_.erase(experiments_.begin() + row);
            endRemoveRows();
        }
    }
    for (Experiment& e : fresh) {
        int row = experimentRow(e.record.id);
        if (row < 0) {
            row = int(std::lower_bound(experiments_.begin(), experiments_.end(), e.record.id,
                                       [](const Experiment& x, int64_t id) { return x.record.id < id; }) -
                      experiments_.begin());
            beginInsertRows({}, row, row);
            experiments_.insert(experiments_.begin() + row, Experiment{e.record, {}});
            endInsertRows();
        } else if (experiments_[size_t(row)].record.name != e.record.name) {
            experiments_[size_t(row)].record = e.record;
            Q_EMIT dataChanged(index(row, 0), index(row, ColumnCount - 1));
        }
        mergeRuns(row, std::move(e.runs));
    }
}

void WorkspaceModel::mergeRuns(int experimentRow, std::vector<RunRecord> fresh)
{
    std::vector<RunRecord>& runs = experiments_[size_t(experimentRow)].runs;
    const QModelIndex parentIndex = index(experimentRow, 0);
    const int countBefore = int(runs.size());
    for (int row = int(runs.size()) - 1; row >= 0; --row) {
        const int64_t id = runs[size_t(row)].id;
        if (std::none_of(fresh.begin(), fresh.end(), [id](const RunRecord& r) { return r.id == id; })) {
            beginRemoveRows(parentIndex, row, row);
            runs.erase(runs.begin() + row);
            endRemoveRows();
        }
    }
    for (RunRecord& r : fresh) {
        auto it = std::lower_bound(runs.begin(), runs.end(), r.id,
                                   [](const RunRecord& x, int64_t id) { return x.id < id; });
        const int row = int(it - runs.begin());
        if (it != runs.end() && it->id == r.id) {
            const bool changed = !sameRow(*it, r);
            *it = std::move(r);
            if (changed)
                Q_EMIT dataChanged(index(row, 0, parentIndex), index(row, ColumnCount - 1, parentIndex));
        } else {
            beginInsertRows(parentIndex, row, row);
            runs.insert(it, std::move(r));
            endInsertRows();
        }
    }
    if (countBefore != int(runs.size())) // the experiment row shows its run count
        Q_EMIT dataChanged(parentIndex, index(experimentRow, ColumnCount - 1));
}

int WorkspaceModel::runCount() const
{
    int n = 0;
    for (const Experiment& e : experiments_)
        n += int(e.runs.size());
    return n;
}

bool WorkspaceModel::hasRunningRuns() const
{
    for (const Experiment& e : experiments_)
        for (const RunRecord& r : e.runs)
            if (r.status == RunStatus::Running || r.status == RunStatus::Pending)
                return true;
    return false;
}

QModelIndex WorkspaceModel::indexOfRun(qint64 runId, int column) const
{
    for (size_t i = 0; i < experiments_.size(); ++i) {
        const auto& runs = experiments_[i].runs;
        for (size_t j = 0; j < runs.size(); ++j)
            if (runs[j].id == runId)
                return index(int(j), column, index(int(i), 0));
    }
    return {};
}

const RunRecord* WorkspaceModel::runAt(const QModelIndex& idx) const
{
    if (!idx.isValid() || idx.model() != this || idx.internalId() == 0)
        return nullptr;
    const int e = experimentRow(qint64(idx.internalId()));
    if (e < 0 || idx.row() >= int(experiments_[size_t(e)].runs.size()))
        return nullptr;
    return &experiments_[size_t(e)].runs[size_t(idx.row())];
}

QString WorkspaceModel::formatTimestamp(const std::string& utc)
{
    if (utc.empty())
        return {};
    QDateTime t = QDateTime::fromString(QString::fromStdString(utc), Qt::ISODateWithMs);
    if (!t.isValid())
        return QString::fromStdString(utc);
    return t.toLocalTime().toString(QStringLiteral("yyyy-MM-dd HH:mm"));
}

QModelIndex WorkspaceModel::index(int row, int column, const QModelIndex& parent) const
{
    if (row < 0 || column < 0 || column >= ColumnCount)
        return {};
    if (!parent.isValid())
        return row < int(experiments_.size()) ? createIndex(row, column, quintptr(0)) : QModelIndex();
    if (parent.internalId() != 0 || parent.row() >= int(experiments_.size()))
        return {};
    const Experiment& e = experiments_[size_t(parent.row())];
    return row < int(e.runs.size()) ? createIndex(row, column, quintptr(e.record.id)) : QModelIndex();
}

QModelIndex WorkspaceModel::parent(const QModelIndex& child) const
{
    if (!child.isValid() || child.internalId() == 0)
        return {};
    const int row = experimentRow(qint64(child.internalId()));
    return row < 0 ? QModelIndex() : createIndex(row, 0, quintptr(0));
}

int WorkspaceModel::rowCount(const QModelIndex& parent) const
{
    if (!parent.isValid())
        return int(experiments_.size());
    if (parent.internalId() != 0 || parent.column() != 0 || parent.row() >= int(experiments_.size()))
        return 0;
    return int(experiments_[size_t(parent.row())].runs.size());
}

int WorkspaceModel::columnCount(const QModelIndex&) const
{
    return ColumnCount;
}

QVariant WorkspaceModel::data(const QModelIndex& idx, int role) const
{
    if (!idx.isValid())
        return {};
    if (idx.internalId() == 0) { // experiment row
        if (idx.row() >= int(experiments_.size()))
            return {};
        const Experiment& e = experiments_[size_t(idx.row())];
        switch (role) {
        case Qt::DisplayRole:
            if (idx.column() == RunColumn)
                return QString::fromStdString(e.record.name);
            if (idx.column() == NameColumn)
                return e.runs.size() == 1 ? tr("1 run") : tr("%1 runs").arg(e.runs.size());
            if (idx.column() == CreatedColumn)
                return formatTimestamp(e.record.createdAt);
            return {};
        case Qt::FontRole:
            if (idx.column() == RunColumn) {
                QFont f;
                f.setBold(true);
                return f;
            }
            return {};
        case Qt::ForegroundRole:
            return idx.column() == NameColumn ? QVariant(QPalette().brush(QPalette::PlaceholderText)) : QVariant();
        case RunIdRole: return qint64(0);
        case ExperimentIdRole: return qint64(e.record.id);
        case FilterRole: return QString();
        case SortRole:
            return idx.column() == RunColumn ? QVariant(QString::fromStdString(e.record.name))
                                             : QVariant(qint64(e.record.id));
        default: return {};
        }
    }
    const RunRecord* r = runAt(idx);
    if (!r)
        return {};
    const QString status = QString::fromUtf8(qpruner::store::runStatusName(r->status));
    const bool trialsShown = hasSearch(*r) || r->trialsComplete + r->trialsRunning + r->trialsFailed > 0;
    switch (role) {
    case Qt::DisplayRole:
        switch (idx.column()) {
        case RunColumn: return QStringLiteral("#%1").arg(r->id);
        case NameColumn: return QString::fromStdString(r->name);
        case KindColumn: return QString::fromStdString(r->kind);
        case StatusColumn: return status;
        case TrialsColumn:
            return trialsShown ? QStringLiteral("%1 / %2 / %3")
                                     .arg(r->trialsComplete)
                                     .arg(r->trialsRunning)
                                     .arg(r->trialsFailed)
                               : QString();
        case CreatedColumn: return formatTimestamp(r->createdAt);
        default: return {};
        }
    case Qt::DecorationRole:
        return idx.column() == StatusColumn ? QVariant(runStatusIcon(r->status)) : QVariant();
    case Qt::ToolTipRole:
        switch (idx.column()) {
        case StatusColumn:
            return r->error.empty() ? status : status + QStringLiteral(": ") + QString::fromStdString(r->error);
        case TrialsColumn: return tr("trials complete / running / failed");
        case CreatedColumn:
            return r->finishedAt.empty() ? tr("created %1").arg(formatTimestamp(r->createdAt))
                                         : tr("created %1, finished %2")
                                               .arg(formatTimestamp(r->createdAt), formatTimestamp(r->finishedAt));
        case NameColumn: return QString::fromStdString(r->name);
        default: return QString::fromStdString(r->baseModel);
        }
    case Qt::TextAlignmentRole:
        return idx.column() == TrialsColumn ? QVariant(int(Qt::AlignRight | Qt::AlignVCenter)) : QVariant();
    case RunIdRole: return qint64(r->id);
    case ExperimentIdRole: return qint64(r->experimentId);
    case StatusRole: return int(r->status);
    case FilterRole:
        return QStringLiteral("#%1 %2 %3 %4 %5")
            .arg(r->id)
            .arg(QString::fromStdString(r->name), QString::fromStdString(r->kind), status,
                 QString::fromStdString(r->experiment));
    case SortRole:
        switch (idx.column()) {
        case RunColumn: return qint64(r->id);
        case TrialsColumn: return qint64(r->trialsComplete);
        case StatusColumn: return status;
        case CreatedColumn: return QString::fromStdString(r->createdAt);
        default: return data(idx, Qt::DisplayRole);
        }
    default: return {};
    }
}

QVariant WorkspaceModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return {};
    switch (section) {
    case RunColumn: return tr("Run");
    case NameColumn: return tr("Name");
    case KindColumn: return tr("Kind");
    case StatusColumn: return tr("Status");
    case TrialsColumn: return tr("Trials");
    case CreatedColumn: return tr("Created");
    default: return {};
    }
}

} // namespace qpruner::ui

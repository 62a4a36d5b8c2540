// JobTableModel: mirrors the queue's job list; every cell is computed from the Job on demand.
#include "jobs/job_table_model.h"

#include <algorithm>

#include "jobs/status_icons.h"

namespace qpruner::ui {

JobTableModel::JobTableModel(JobQueue* queue, QObject* parent) : QAbstractTableModel(parent), queue_(queue)
{
    for (Job* j : queue_->jobs())
        jobs_.append(j);
    connect(queue_, &JobQueue::jobAdded, this, &JobTableModel::onJobAdded);
    connect(queue_, &JobQueue::jobChanged, this, &JobTableModel::onJobChanged);
    connect(queue_, &JobQueue::jobRemoved, this, &JobTableModel::onJobRemoved);
    tick_.setInterval(1000);
    connect(&tick_, &QTimer::timeout, this, &JobTableModel::tick);
    tick_.start();
}

int JobTableModel::rowCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : int(jobs_.size());
}

int JobTableModel::columnCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

Job* JobTableModel::jobAt(int row) const
{
    return row >= 0 && row < jobs_.size() ? jobs_[row].data() : nullptr;
}

int JobTableModel::rowOf(const Job* job) const
{
    for (int i = 0; i < jobs_.size(); ++i)
        if (jobs_[i] == job)
            return i;
    return -1;
}

QString JobTableModel::formatDuration(qint64 ms)
{
    const qint64 s = (ms + 500) / 1000;
    if (s < 60)
        return tr("%1 s").arg(s);
    if (s < 3600)
        return QStringLiteral("%1:%2").arg(s / 60).arg(s % 60, 2, 10, QLatin1Char('0'));
    return QStringLiteral("%1:%2:%3")
        .arg(s / 3600)
        .arg((s / 60) % 60, 2, 10, QLatin1Char('0'))
        .arg(s % 60, 2, 10, QLatin1Char('0'));
}

QString JobTableModel::progressText(const Job& job)
{
    const qpruner::Progress& p = job.progress();
    if (p.stage.empty())
        return Job::stateName(job.state());
    const QString stage = QString::fromStdString(p.stage);
    if (p.total > 0)
        return QStringLiteral("%1 %2/%3").arg(stage).arg(p.done).arg(p.total);
    return p.done > 0 ? QStringLiteral("%1 %2").arg(stage).arg(p.done) : stage;
}

QVariant JobTableModel::data(const QModelIndex& index, int role) const
{
    const Job* job = index.isValid() ? jobAt(index.row()) : nullptr;
    if (!job)
        return {};
    if (role == JobIdRole)
        return job->id();
    const qpruner::Progress& p = job->progress();
    switch (index.column()) {
    case TitleColumn:
        if (role == Qt::DisplayRole)
            return job->title();
        if (role == Qt::DecorationRole)
            return jobStateIcon(job->state());
        if (role == Qt::ToolTipRole)
            return job->errorText().isEmpty() ? job->title() : job->title() + QStringLiteral("\n") + job->errorText();
        break;
    case StateColumn:
        if (role == Qt::DisplayRole)
            return Job::stateName(job->state());
        if (role == Qt::ToolTipRole && !job->errorText().isEmpty())
            return job->errorText();
        break;
    case ProgressColumn:
        if (role == Qt::DisplayRole)
            return progressText(*job);
        if (role == Qt::ToolTipRole)
            return QString::fromStdString(p.message);
        if (role == ProgressFractionRole) {
            if (job->state() == Job::State::Done)
                return 1.0;
            return p.total > 0 ? std::clamp(double(p.done) / double(p.total), 0.0, 1.0) : -1.0;
        }
        break;
    case EtaColumn:
        if (role == Qt::DisplayRole) {
            const auto eta = job->etaMs();
            return eta ? formatDuration(*eta) : QString();
        }
        if (role == Qt::TextAlignmentRole)
            return int(Qt::AlignRight | Qt::AlignVCenter);
        break;
    case ElapsedColumn:
        if (role == Qt::DisplayRole)
            return job->state() == Job::State::Queued ? QString() : formatDuration(job->elapsedMs());
        if (role == Qt::TextAlignmentRole)
            return int(Qt::AlignRight | Qt::AlignVCenter);
        break;
    default: break;
    }
    return {};
}

QVariant JobTableModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return {};
    switch (section) {
    case TitleColumn: return tr("Job");
    case StateColumn: return tr("State");
    case ProgressColumn: return tr("Progress");
    case EtaColumn: return tr("ETA");
    case ElapsedColumn: return tr("Elapsed");
    case CancelColumn: return QString();
    default: return {};
    }
}

void JobTableModel::onJobAdded(Job* job)
{
    const int row = int(jobs_.size());
    beginInsertRows({}, row, row);
    jobs_.append(job);
    endInsertRows();
}

void JobTableModel::onJobChanged(Job* job)
{
    const int row = rowOf(job);
    if (row >= 0)
        Q_EMIT dataChanged(index(row, 0), index(row, ColumnCount - 1));
}

void JobTableModel::onJobRemoved(qint64 id)
{
    for (int i = 0; i < jobs_.size(); ++i)
        if (jobs_[i] && jobs_[i]->id() == id) {
            beginRemoveRows({}, i, i);
            jobs_.removeAt(i);
            endRemoveRows();
            return;
        }
}

void JobTableModel::tick()
{
    for (int i = 0; i < jobs_.size(); ++i)
        if (jobs_[i] && jobs_[i]->state() == Job::State::Running)
            Q_EMIT dataChanged(index(i, EtaColumn), index(i, ElapsedColumn), {Qt::DisplayRole});
}

} // namespace qpruner::ui

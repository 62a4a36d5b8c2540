// ComparePage: run list, asynchronous snapshot reads, ComparePanel.
#include "main/compare_page.h"

#include <QtConcurrent/QtConcurrentRun>
#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QSplitter>
#include <QVBoxLayout>

#include "jobs/status_icons.h"
#include "plots/compare_panel.h"

namespace qpruner::ui {

ComparePage::ComparePage(QWidget* parent) : QWidget(parent)
{
    setObjectName(QStringLiteral("ComparePage"));
    list_ = new QListWidget(this);
    list_->setToolTip(tr("Check two or more runs to compare them"));
    note_ = new QLabel(tr("Check two or more runs."), this);
    note_->setWordWrap(true);
    panel_ = new ComparePanel(this);

    auto* left = new QWidget(this);
    auto* leftLayout = new QVBoxLayout(left);
    leftLayout->setContentsMargins(0, 0, 0, 0);
    leftLayout->addWidget(new QLabel(tr("<b>Runs</b>"), left));
    leftLayout->addWidget(list_, 1);
    leftLayout->addWidget(note_);
    auto* split = new QSplitter(Qt::Horizontal, this);
    split->addWidget(left);
    split->addWidget(panel_);
    split->setStretchFactor(1, 1);
    split->setSizes({200, 900});
    auto* layout = new QHBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(split);

    connect(&runsWatcher_, &QFutureWatcherBase::finished, this, &ComparePage::onRunsRead);
    connect(&snapshotsWatcher_, &QFutureWatcherBase::finished, this, &ComparePage::onSnapshotsRead);
    connect(list_, &QListWidget::itemChanged, this, [this] { loadChecked(); });
}

ComparePage::~ComparePage()
{
    runsWatcher_.waitForFinished();
    snapshotsWatcher_.waitForFinished();
}

QList<QCustomPlot*> ComparePage::plots() const
{
    return panel_->plots();
}

void ComparePage::setWorkspace(const QString& dbPath, qint64 currentRun)
{
    currentRun_ = currentRun;
    if (dbPath == db_ && list_->count() > 0)
        return;
    db_ = dbPath;
    pendingChecks_ = {currentRun};
    if (runsWatcher_.isRunning())
        return; // onRunsRead re-reads for the new path
    runsWatcher_.setFuture(QtConcurrent::run([db = db_]() {
        RunsOutcome o;
        try {
            o.runs = openWorkspaceReadOnly(db)->runs();
        } catch (const std::exception& e) {
            o.error = QString::fromUtf8(e.what());
        }
        return o;
    }));
    lastRead_ = db_;
}

void ComparePage::onRunsRead()
{
    if (lastRead_ != db_) { // the workspace changed while reading
        const QString db = db_;
        db_.clear();
        setWorkspace(db, currentRun_);
        return;
    }
    const RunsOutcome o = runsWatcher_.result();
    const QSignalBlocker block(list_);
    list_->clear();
    if (!o.error.isEmpty()) {
        note_->setText(o.error);
        return;
    }
    for (const store::RunRecord& r : o.runs) {
        auto* item = new QListWidgetItem(runStatusIcon(r.status),
                                         tr("Run %1: %2").arg(r.id).arg(QString::fromStdString(
                                             r.name.empty() ? r.kind : r.name)),
                                         list_);
        item->setToolTip(QString::fromStdString(r.name));
        item->setData(Qt::UserRole, qint64(r.id));
        item->setFlags(Qt::ItemIsEnabled | Qt::ItemIsUserCheckable);
        item->setCheckState(pendingChecks_.contains(r.id) ? Qt::Checked : Qt::Unchecked);
    }
    loadChecked();
}

void ComparePage::compareRuns(const QList<qint64>& runIds)
{
    pendingChecks_ = runIds;
    if (runsWatcher_.isRunning())
        return; // applied when the list arrives
    {
        const QSignalBlocker block(list_);
        for (int i = 0; i < list_->count(); ++i) {
            QListWidgetItem* item = list_->item(i);
            item->setCheckState(runIds.contains(item->data(Qt::UserRole).toLongLong()) ? Qt::Checked
                                                                                        : Qt::Unchecked);
        }
    }
    loadChecked();
}

QList<qint64> ComparePage::checkedRuns() const
{
    QList<qint64> out;
    for (int i = 0; i < list_->count(); ++i)
        if (list_->item(i)->checkState() == Qt::Checked)
            out << list_->item(i)->data(Qt::UserRole).toLongLong();
    return out;
}

void ComparePage::loadChecked()
{
    const QList<qint64> ids = checkedRuns();
    if (ids.size() < 2) {
        note_->setText(tr("Check two or more runs."));
        return;
    }
    if (snapshotsWatcher_.isRunning()) {
        reloadQueued_ = true;
        return;
    }
    note_->setText(tr("Reading %1 runs\u2026").arg(ids.size()));
    snapshotsWatcher_.setFuture(QtConcurrent::run([db = db_, ids]() {
        SnapshotsOutcome o;
        try {
            for (qint64 id : ids)
                o.snapshots.push_back(loadRunSnapshot(db, id));
        } catch (const std::exception& e) {
            o.error = QString::fromUtf8(e.what());
        }
        return o;
    }));
}

void ComparePage::onSnapshotsRead()
{
    if (reloadQueued_) {
        reloadQueued_ = false;
        loadChecked();
        return;
    }
    const SnapshotsOutcome o = snapshotsWatcher_.result();
    if (!o.error.isEmpty()) {
        note_->setText(o.error);
        return;
    }
    panel_->setRuns(o.snapshots);
    note_->setText(tr("Comparing %1 runs.").arg(o.snapshots.size()));
    Q_EMIT compared(int(o.snapshots.size()));
}

} // namespace qpruner::ui

// JobsPanel: a QTreeView over JobTableModel (progress column painted by JobProgressDelegate, Cancel buttons as
// index widgets) beside a read-only log view that follows the current row.
#include "jobs/jobs_panel.h"

#include <QFontDatabase>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSplitter>
#include <QStyle>
#include <QToolButton>
#include <QTreeView>
#include <QVBoxLayout>

#include "jobs/job_progress_delegate.h"
#include "jobs/job_table_model.h"

namespace qpruner::ui {

namespace {

QString logLineText(const Job::LogLine& l)
{
    return l.time.toString(QStringLiteral("HH:mm:ss.zzz")) + QStringLiteral("  ") + l.text;
}

} // namespace

JobsPanel::JobsPanel(JobQueue* queue, QWidget* parent)
    : QWidget(parent), queue_(queue), model_(new JobTableModel(queue, this))
{
    view_ = new QTreeView;
    view_->setModel(model_);
    view_->setRootIsDecorated(false);
    view_->setUniformRowHeights(true);
    view_->setAllColumnsShowFocus(true);
    view_->setSelectionMode(QAbstractItemView::SingleSelection);
    view_->setItemDelegateForColumn(JobTableModel::ProgressColumn, new JobProgressDelegate(view_));
    QHeaderView* header = view_->header();
    header->setStretchLastSection(false);
    header->setSectionResizeMode(JobTableModel::TitleColumn, QHeaderView::Stretch);
    header->setSectionResizeMode(JobTableModel::StateColumn, QHeaderView::ResizeToContents);
    header->setSectionResizeMode(JobTableModel::ProgressColumn, QHeaderView::Interactive);
    header->resizeSection(JobTableModel::ProgressColumn, 200);
    header->setSectionResizeMode(JobTableModel::EtaColumn, QHeaderView::ResizeToContents);
    header->setSectionResizeMode(JobTableModel::ElapsedColumn, QHeaderView::ResizeToContents);
    header->setSectionResizeMode(JobTableModel::CancelColumn, QHeaderView::ResizeToContents);

    clearButton_ = new QPushButton(tr("Clear finished"));
    clearButton_->setToolTip(tr("Remove the jobs that are done, failed or cancelled from this list"));
    connect(clearButton_, &QPushButton::clicked, queue_, &JobQueue::clearFinished);

    auto* jobsTitle = new QLabel(tr("<b>Jobs</b>"));
    auto* top = new QHBoxLayout;
    top->setContentsMargins(0, 0, 0, 0);
    top->addWidget(jobsTitle);
    top->addStretch(1);
    top->addWidget(clearButton_);
    auto* left = new QWidget;
    auto* leftLayout = new QVBoxLayout(left);
    leftLayout->setContentsMargins(0, 0, 0, 0);
    leftLayout->addLayout(top);
    leftLayout->addWidget(view_);

    logTitle_ = new QLabel(tr("<b>Log</b>"));
    log_ = new QPlainTextEdit;
    log_->setReadOnly(true);
    log_->setLineWrapMode(QPlainTextEdit::NoWrap);
    log_->setMaximumBlockCount(5000);
    log_->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
    log_->setPlaceholderText(tr("Select a job to see its log."));
    auto* right = new QWidget;
    auto* rightLayout = new QVBoxLayout(right);
    rightLayout->setContentsMargins(0, 0, 0, 0);
    rightLayout->addWidget(logTitle_);
    rightLayout->addWidget(log_);

    auto* splitter = new QSplitter(Qt::Horizontal);
    splitter->addWidget(left);
    splitter->addWidget(right);
    splitter->setStretchFactor(0, 3);
    splitter->setStretchFactor(1, 2);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);
    layout->addWidget(splitter);

    for (int row = 0; row < model_->rowCount(); ++row)
        addCancelButton(row);
    connect(model_, &QAbstractItemModel::rowsInserted, this, [this](const QModelIndex&, int first, int last) {
        for (int row = first; row <= last; ++row)
            addCancelButton(row);
        if (!currentJob())
            selectJob(model_->jobAt(last));
        updateClearButton();
    });
    connect(model_, &QAbstractItemModel::rowsRemoved, this, [this] {
        updateClearButton();
        if (!shownJob_)
            onCurrentChanged();
    });
    connect(queue_, &JobQueue::jobChanged, this, &JobsPanel::onJobChanged);
    connect(queue_, &JobQueue::jobFinished, this, &JobsPanel::onJobFinished);
    connect(view_->selectionModel(), &QItemSelectionModel::currentChanged, this, &JobsPanel::onCurrentChanged);
    connect(view_, &QTreeView::doubleClicked, this, [this](const QModelIndex& index) {
        const Job* job = model_->jobAt(index.row());
        if (job && job->runId() > 0)
            Q_EMIT runActivated(job->runDbPath(), job->runId());
    });
    updateClearButton();
}

QWidget* JobsPanel::cancelButton(const Job* job) const
{
    const int row = model_->rowOf(job);
    return row < 0 ? nullptr : view_->indexWidget(model_->index(row, JobTableModel::CancelColumn));
}

Job* JobsPanel::currentJob() const
{
    const QModelIndex current = view_->currentIndex();
    return current.isValid() ? model_->jobAt(current.row()) : nullptr;
}

void JobsPanel::selectJob(Job* job)
{
    const int row = model_->rowOf(job);
    if (row >= 0)
        view_->setCurrentIndex(model_->index(row, JobTableModel::TitleColumn));
}

void JobsPanel::addCancelButton(int row)
{
    Job* job = model_->jobAt(row);
    if (!job || job->isFinished())
        return;
    auto* button = new QToolButton;
    button->setText(tr("Cancel"));
    button->setIcon(style()->standardIcon(QStyle::SP_DialogCancelButton));
    button->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
    button->setAutoRaise(true);
    button->setToolTip(tr("Stop \"%1\" at its next checkpoint; what it stored so far stays").arg(job->title()));
    connect(button, &QToolButton::clicked, job, [job, button] {
        button->setEnabled(false);
        job->cancel();
    });
    view_->setIndexWidget(model_->index(row, JobTableModel::CancelColumn), button);
}

void JobsPanel::onJobChanged(Job* job)
{
    if (job == shownJob_)
        showLog(true);
}

void JobsPanel::onJobFinished(Job* job)
{
    const int row = model_->rowOf(job);
    if (row >= 0)
        view_->setIndexWidget(model_->index(row, JobTableModel::CancelColumn), nullptr);
    if (job == shownJob_)
        showLog(true);
    updateClearButton();
}

void JobsPanel::onCurrentChanged()
{
    shownJob_ = currentJob();
    showLog(false);
}

void JobsPanel::showLog(bool appendOnly)
{
    if (!shownJob_) {
        log_->clear();
        logTitle_->setText(tr("<b>Log</b>"));
        shownLines_ = 0;
        return;
    }
    // The log's last line of a failed job is "failed: <message>", so the error needs no line of its own.
    const QList<Job::LogLine>& lines = shownJob_->log();
    const qint64 fresh = shownJob_->logLinesAdded() - shownLines_;
    if (appendOnly && fresh == 0)
        return;
    if (!appendOnly || fresh < 0 || fresh > lines.size()) {
        logTitle_->setText(tr("<b>Log</b> of %1").arg(shownJob_->title().toHtmlEscaped()));
        QStringList text;
        for (const Job::LogLine& l : lines)
            text.append(logLineText(l));
        log_->setPlainText(text.join(QLatin1Char('\n')));
    } else {
        for (qsizetype i = lines.size() - fresh; i < lines.size(); ++i)
            log_->appendPlainText(logLineText(lines[i]));
    }
    shownLines_ = shownJob_->logLinesAdded();
}

void JobsPanel::updateClearButton()
{
    bool any = false;
    for (const Job* j : queue_->jobs())
        any = any || j->isFinished();
    clearButton_->setEnabled(any);
}

} // namespace qpruner::ui

// The bottom dock of the studio: every background job with its state icon, a progress bar reading
// "stage done/total", ETA and elapsed time, a Cancel button while it is queued or running, and the
// timestamped log of the selected job. "Clear finished" drops the jobs that ended.
#pragma once

#include <QPointer>
#include <QWidget>

#include "jobs/job_queue.h"

class QLabel;
class QPlainTextEdit;
class QPushButton;
class QTreeView;

namespace qpruner::ui {

class JobTableModel;

class JobsPanel : public QWidget {
    Q_OBJECT

public:
    explicit JobsPanel(JobQueue* queue, QWidget* parent = nullptr);

    JobQueue* queue() const { return queue_; }
    JobTableModel* model() const { return model_; }
    QTreeView* view() const { return view_; }
    QPlainTextEdit* logView() const { return log_; }
    QPushButton* clearFinishedButton() const { return clearButton_; }
    // The Cancel button of `job`'s row (null once the job has finished).
    QWidget* cancelButton(const Job* job) const;

    Job* currentJob() const;
    void selectJob(Job* job);

Q_SIGNALS:
    // Double click on a job that computes a run: the window opens that run.
    void runActivated(const QString& dbPath, qint64 runId);

private:
    void addCancelButton(int row);
    void onJobChanged(Job* job);
    void onJobFinished(Job* job);
    void onCurrentChanged();
    void showLog(bool appendOnly);
    void updateClearButton();

    JobQueue* queue_;
    JobTableModel* model_;
    QTreeView* view_;
    QPlainTextEdit* log_;
    QLabel* logTitle_;
    QPushButton* clearButton_;
    QPointer<Job> shownJob_;
    qint64 shownLines_ = 0; // Job::logLinesAdded() when the log view last caught up
};

} // namespace qpruner::ui

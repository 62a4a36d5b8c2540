// The trial actions of the studio: Recover, Evaluate, Export model and Generate for one complete trial of a
// search run, from the Pareto plot's and the trials table's context menus and from Run > Trial. Each opens its
// dialog (prefilled from the run), then runs as a job with progress, ETA and cancel, recorded as a stage of the
// run (qpruner/trial_actions.h) that `qpruner runs` and `qpruner pareto` list too.
#pragma once

#include <QObject>
#include <QPointer>
#include <QString>

class QAction;
class QMenu;
class QWidget;

namespace qpruner::ui {

class EvaluateDialog;
class ExportDialog;
class GenerateWindow;
class Job;
class JobQueue;
class RecoverDialog;
class RecoveryMonitor;

class TrialActions : public QObject {
    Q_OBJECT
public:
    TrialActions(JobQueue& jobs, QWidget* window);

    // The trial Run > Trial acts on (-1: none, the actions are disabled).
    void setTarget(const QString& dbPath, qint64 runId, int trial);
    int targetTrial() const { return trial_; }
    QAction* recoverAction() const { return recover_; }
    QAction* evaluateAction() const { return evaluate_; }
    QAction* exportAction() const { return export_; }
    QAction* generateAction() const { return generate_; }

    // Adds the four actions for `trial` to a context menu.
    void populate(QMenu& menu, const QString& dbPath, qint64 runId, int trial);

    // Open the action's dialog for a trial (non-modal, deleted on close; accepting it starts the job). Null with
    // a status message when the trial cannot be acted on (not complete, no search, unreadable store).
    RecoverDialog* openRecover(const QString& dbPath, qint64 runId, int trial);
    EvaluateDialog* openEvaluate(const QString& dbPath, qint64 runId, int trial);
    ExportDialog* openExport(const QString& dbPath, qint64 runId, int trial);
    GenerateWindow* openGenerate(const QString& dbPath, qint64 runId, int trial);

    // The live plot window of a recovery job (opened when the job starts).
    RecoveryMonitor* monitor() const;

Q_SIGNALS:
    void jobStarted(qpruner::ui::Job* job);
    void statusMessage(const QString& text);

private:
    void watch(Job* job, const QString& doneText);

    JobQueue& jobs_;
    QWidget* window_;
    QString db_;
    qint64 runId_ = 0;
    int trial_ = -1;
    QAction* recover_ = nullptr;
    QAction* evaluate_ = nullptr;
    QAction* export_ = nullptr;
    QAction* generate_ = nullptr;
    QPointer<QWidget> monitor_; // a RecoveryMonitor
};

} // namespace qpruner::ui

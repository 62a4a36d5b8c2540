#include "trials/trial_actions_ui.h"

#include <QAction>
#include <QDir>
#include <QFileInfo>
#include <QMenu>
#include <QWidget>

#include "jobs/job.h"
#include "jobs/job_queue.h"
#include "jobs/pipeline_jobs.h"
#include "qpruner/trial_actions.h"
#include "trials/trial_dialogs.h"
#include "workspace/run_snapshot.h"

namespace qpruner::ui {

namespace {

// What a dialog needs to know of the trial, read now (the store is small to read; the dialog opens at once).
struct TrialFacts {
    qpruner::pipeline::TrialTarget target;
    nlohmann::json recovery;
    nlohmann::json evaluation;
    QString runName;
};

std::optional<TrialFacts> readFacts(const QString& db, qint64 runId, int trial, QString* error)
{
    try {
        const auto store = openWorkspaceReadOnly(db);
        TrialFacts f;
        f.target = qpruner::pipeline::trialTarget(*store, runId, trial);
        f.recovery = qpruner::pipeline::recoveryDefaults(*store, runId, trial);
        f.evaluation = qpruner::pipeline::evaluationDefaults(*store, runId);
        f.runName = QString::fromStdString(store->run(runId).name);
        return f;
    } catch (const std::exception& e) {
        *error = QString::fromUtf8(e.what());
        return std::nullopt;
    }
}

} // namespace

TrialActions::TrialActions(JobQueue& jobs, QWidget* window) : QObject(window), jobs_(jobs), window_(window)
{
    recover_ = new QAction(tr("&Recover Trial\u2026"), this);
    recover_->setToolTip(tr("LoftQ / LoRA fine-tune of the trial's map, with a live loss plot"));
    evaluate_ = new QAction(tr("E&valuate Trial\u2026"), this);
    evaluate_->setToolTip(tr("Perplexity and zero-shot tasks of the trial (with its adapter once recovered)"));
    export_ = new QAction(tr("E&xport Trial Model\u2026"), this);
    export_->setToolTip(tr("GGUF or Hugging Face, with a preview of every tensor's type and the exact size"));
    generate_ = new QAction(tr("&Generate with Trial\u2026"), this);
    generate_->setToolTip(tr("Text from the trial's model beside the uncompressed model's"));
    connect(recover_, &QAction::triggered, this, [this] { openRecover(db_, runId_, trial_); });
    connect(evaluate_, &QAction::triggered, this, [this] { openEvaluate(db_, runId_, trial_); });
    connect(export_, &QAction::triggered, this, [this] { openExport(db_, runId_, trial_); });
    connect(generate_, &QAction::triggered, this, [this] { openGenerate(db_, runId_, trial_); });
    setTarget({}, 0, -1);
}

void TrialActions::setTarget(const QString& dbPath, qint64 runId, int trial)
{
    db_ = dbPath;
    runId_ = runId;
    trial_ = trial;
    for (QAction* a : {recover_, evaluate_, export_, generate_})
        a->setEnabled(trial >= 0 && !dbPath.isEmpty());
    const QString suffix = trial >= 0 ? tr(" (trial %1)").arg(trial) : QString();
    recover_->setText(tr("&Recover Trial\u2026") + suffix);
    evaluate_->setText(tr("E&valuate Trial\u2026") + suffix);
    export_->setText(tr("E&xport Trial Model\u2026") + suffix);
    generate_->setText(tr("&Generate with Trial\u2026") + suffix);
}

void TrialActions::populate(QMenu& menu, const QString& dbPath, qint64 runId, int trial)
{
    menu.addAction(tr("Recover\u2026"), this, [this, dbPath, runId, trial] { openRecover(dbPath, runId, trial); });
    menu.addAction(tr("Evaluate\u2026"), this, [this, dbPath, runId, trial] { openEvaluate(dbPath, runId, trial); });
    menu.addAction(tr("Export Model\u2026"), this, [this, dbPath, runId, trial] { openExport(dbPath, runId, trial); });
    menu.addAction(tr("Generate\u2026"), this, [this, dbPath, runId, trial] { openGenerate(dbPath, runId, trial); });
}

RecoveryMonitor* TrialActions::monitor() const
{
    return qobject_cast<RecoveryMonitor*>(monitor_.data());
}

void TrialActions::watch(Job* job, const QString& doneText)
{
    Q_EMIT jobStarted(job);
    connect(job, &Job::finished, this, [this, job, doneText](Job::State state) {
        Q_EMIT statusMessage(state == Job::State::Done        ? doneText
                             : state == Job::State::Cancelled ? tr("%1: cancelled").arg(job->title())
                                                              : tr("%1: %2").arg(job->title(), job->errorText()));
    });
}

RecoverDialog* TrialActions::openRecover(const QString& db, qint64 runId, int trial)
{
    QString error;
    const auto facts = readFacts(db, runId, trial, &error);
    if (!facts) {
        Q_EMIT statusMessage(error);
        return nullptr;
    }
    auto* dialog = new RecoverDialog(trial, facts->recovery, facts->target.resumable, !facts->target.adapter.empty(),
                                     window_);
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    connect(dialog, &QDialog::accepted, this, [this, dialog, db, runId, trial] {
        Job* job = startRecoverTrial(jobs_, db, runId, trial, dialog->finetune(), dialog->resume());
        watch(job, tr("Trial %1 recovered").arg(trial));
        if (monitor_)
            monitor_->close();
        monitor_ = new RecoveryMonitor(job, trial, window_);
        monitor_->show();
    });
    dialog->open();
    return dialog;
}

EvaluateDialog* TrialActions::openEvaluate(const QString& db, qint64 runId, int trial)
{
    QString error;
    const auto facts = readFacts(db, runId, trial, &error);
    if (!facts) {
        Q_EMIT statusMessage(error);
        return nullptr;
    }
    auto* dialog = new EvaluateDialog(trial, facts->evaluation, !facts->target.adapter.empty(), window_);
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    connect(dialog, &QDialog::accepted, this, [this, dialog, db, runId, trial] {
        watch(startEvaluateTrial(jobs_, db, runId, trial, dialog->evaluate()),
              tr("Trial %1 evaluated: the results are in the Overview").arg(trial));
    });
    dialog->open();
    return dialog;
}

ExportDialog* TrialActions::openExport(const QString& db, qint64 runId, int trial)
{
    QString error;
    const auto facts = readFacts(db, runId, trial, &error);
    if (!facts) {
        Q_EMIT statusMessage(error);
        return nullptr;
    }
    const QString stem = (facts->runName.isEmpty() ? QStringLiteral("run-%1").arg(runId) : facts->runName) +
                         QStringLiteral("-trial-%1").arg(trial);
    const QString out = QFileInfo(db).absoluteDir().filePath(QString(stem).replace(QLatin1Char(' '), QLatin1Char('-')) +
                                                            QStringLiteral(".gguf"));
    auto* dialog = new ExportDialog(db, runId, trial, !facts->target.adapter.empty(), out, window_);
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    connect(dialog, &QDialog::accepted, this, [this, dialog, db, runId, trial] {
        const qpruner::ExportOptions o = dialog->options();
        watch(startExportTrial(jobs_, db, runId, trial, o, dialog->mergeAdapter()),
              tr("Trial %1 exported to %2").arg(trial).arg(QString::fromStdU16String(o.out.u16string())));
    });
    dialog->open();
    return dialog;
}

GenerateWindow* TrialActions::openGenerate(const QString& db, qint64 runId, int trial)
{
    QString error;
    const auto facts = readFacts(db, runId, trial, &error);
    if (!facts) {
        Q_EMIT statusMessage(error);
        return nullptr;
    }
    auto* window = new GenerateWindow(jobs_, db, runId, trial, !facts->target.adapter.empty(), window_);
    window->show();
    return window;
}

} // namespace qpruner::ui

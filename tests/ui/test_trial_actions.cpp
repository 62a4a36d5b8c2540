// GUI test of the trial actions on a finished stories260K run (pruned 25%, 4-trial search): each action is
// driven through its dialog as a user would (Search tab or trials table context menu, Run > Trial), runs as a job,
// lands in the store as a stage of the run, and gives what the CLI gives on the same model, map and adapter:
// Recover -> an adapter on disk and a trial-recover stage, with the loss plot fed per step; Evaluate -> the numbers
// of `qpruner eval-tasks`; Export -> the bytes of `qpruner export`; Generate -> the ids of `qpruner generate`.
// With QPRUNER_SCREENSHOT_DIR set it saves each view as a PNG (docs/screenshots).
#include <QtTest/QtTest>

#include <QAction>
#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QLabel>
#include <QLineEdit>
#include <QMenu>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSortFilterProxyModel>
#include <QSpinBox>
#include <QTableView>
#include <QTableWidget>

#include <filesystem>
#include <fstream>

#include "jobs/job.h"
#include "jobs/pipeline_jobs.h"
#include "main/main_window.h"
#include "main/run_view.h"
#include "model/run_shapes_panel.h"
#include "newrun/checkable_list.h"
#include "newrun/ppl_slice_table.h"
#include "overview/overview_panel.h"
#include "plots/compare_panel.h"
#include "plots/qcustomplot_compat.h"
#include "plots/search_panel.h"
#include "qpruner/pipeline.h"
#include "qpruner/store.h"
#include "qpruner/trial_actions.h"
#include "test_data.h"
#include "trials/trial_actions_ui.h"
#include "trials/trial_dialogs.h"
#include "trials/trials_table.h"

using namespace qpruner;
using namespace qpruner::ui;
namespace fs = std::filesystem;

namespace {

constexpr int kTimeoutMs = 120'000;

QString qstr(const fs::path& p)
{
    return QString::fromStdString(p.string());
}

nlohmann::json studyConfig(const fs::path& model)
{
    return {{"version", 1},
            {"experiment", "trial-actions"},
            {"name", "trial actions"},
            {"model", model.string()},
            {"prune", {{"ratio", 0.25}, {"calibration", {{"samples", 4}, {"seq_len", 64}}}}},
            {"importance", {{"metric", "bi"}, {"metrics", {"bi"}}, {"calibration", {{"samples", 4}, {"seq_len", 64}}}}},
            {"allocate", {{"budget", "6bpw"}, {"candidates", {"nf4", "int8", "bf16"}}}},
            {"search", {{"trials", 4}, {"validation", {{"windows", 2}, {"seq_len", 64}}}}},
            {"evaluate", nullptr}};
}

// Runs the CLI; stdout parsed as JSON when `json`.
struct CliResult {
    int code = -1;
    QByteArray out, err;
};

CliResult cli(const QStringList& args)
{
    QProcess p;
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert(QStringLiteral("QPRUNER_SHARED_DATA"), qstr(testing::sharedDataDir()));
    p.setProcessEnvironment(env);
    p.start(QStringLiteral(QPRUNER_CLI_PATH), args);
    if (!p.waitForFinished(300'000))
        qFatal("qpruner did not finish");
    return {p.exitCode(), p.readAllStandardOutput(), p.readAllStandardError()};
}

QByteArray fileBytes(const QString& path)
{
    QFile f(path);
    return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
}

void screenshot(QWidget* w, const char* name)
{
    const QString dir = qEnvironmentVariable("QPRUNER_SCREENSHOT_DIR");
    if (dir.isEmpty())
        return;
    w->grab().save(QDir(dir).filePath(QString::fromLatin1(name) + QStringLiteral(".png")));
}

} // namespace

class TestTrialActions : public QObject {
    Q_OBJECT

    QTemporaryDir dir_;
    QString db_;
    fs::path model_, tokenizer_, pruned_;
    int trial_ = -1; // the search's chosen trial
    std::unique_ptr<MainWindow> window_;

    TrialActions* actions() const { return window_->runView()->trialActions(); }

    // The job the next action starts (TrialActions::jobStarted), waited for until it finishes.
    Job* waitForJob(QSignalSpy& started)
    {
        if (started.isEmpty() && !started.wait(kTimeoutMs))
            return nullptr;
        Job* job = started.takeFirst().at(0).value<Job*>();
        return QTest::qWaitFor([job] { return job->isFinished(); }, kTimeoutMs) ? job : nullptr;
    }

    fs::path adapterDir() const
    {
        store::Store st(db_.toStdString());
        return pipeline::trialTarget(st, 1, trial_).adapter;
    }

private Q_SLOTS:
    void initTestCase()
    {
        QStandardPaths::setTestModeEnabled(true);
        QCoreApplication::setOrganizationName(QStringLiteral("QPrunerTest"));
        QCoreApplication::setApplicationName(QStringLiteral("test_trial_actions"));
        QSettings().clear();
        QVERIFY(dir_.isValid());
        db_ = dir_.filePath(QStringLiteral("study.db"));
        QPRUNER_SHARED_FILE(model, "models/stories260K/stories260K.bin");
        model_ = model;
        tokenizer_ = testing::sharedDataDir() / "models/stories260K/tok512.bin";
        store::Store st(db_.toStdString());
        pipeline::RunOptions ro;
        ro.threads = 1;
        const auto outcome = pipeline::startRun(
            st, pipeline::normalizeConfig(studyConfig(model_), fs::current_path(), testing::sharedDataDir()), ro);
        QCOMPARE(outcome.runId, int64_t(1));
        trial_ = outcome.result["search"]["chosen"]["trial"].get<int>();
        pruned_ = outcome.result["prune"]["checkpoint"].get<std::string>();
        QVERIFY(fs::exists(pruned_));

        window_ = std::make_unique<MainWindow>();
        window_->setErrorPresenter([](const QString&, const QString& m) { qWarning("%s", qPrintable(m)); });
        window_->runView()->loader()->setPollInterval(50);
        window_->resize(1100, 760);
        window_->show();
        QSignalSpy loaded(window_->runView(), &RunView::runLoaded);
        window_->openRun(db_, 1);
        QVERIFY(loaded.wait(kTimeoutMs));
    }

    void cleanupTestCase()
    {
        window_.reset();
        QSettings().clear();
    }

    void menusOfferTheActions()
    {
        RunView* view = window_->runView();
        // Run > Trial acts on the chosen trial once the run is open.
        QCOMPARE(actions()->targetTrial(), trial_);
        QVERIFY(actions()->recoverAction()->isEnabled());
        QVERIFY(actions()->exportAction()->text().contains(QString::number(trial_)));

        // The trials table lists every trial; its context menu holds the four actions.
        TrialsTable* table = view->trialsTable();
        QCOMPARE(table->model()->rowCount(), 4);
        // Each row shows the fidelity it was scored at and its tokens (a full-fidelity search: "1 · N tok").
        for (int r = 0; r < 4; ++r) {
            const QString f =
                table->model()->data(table->model()->index(r, TrialsTableModel::FidelityColumn), Qt::DisplayRole).toString();
            QVERIFY2(f.startsWith(QStringLiteral("1 \u00b7 ")) && f.endsWith(QStringLiteral(" tok")), qPrintable(f));
        }
        view->showTab(QStringLiteral("search"));
        QCoreApplication::processEvents();
        // A click on a row selects that trial in the plot too and makes it Run > Trial's target.
        const QModelIndexList rows = table->proxy()->match(table->proxy()->index(0, 0), TrialsTableModel::NumberRole,
                                                           2, 1, Qt::MatchExactly);
        QCOMPARE(rows.size(), 1);
        table->view()->setCurrentIndex(rows.front());
        QCOMPARE(view->search()->selectedTrial(), 2);
        QCOMPARE(actions()->targetTrial(), 2);
        table->selectTrial(trial_); // from the plot: no signal back
        QCOMPARE(table->selectedTrial(), trial_);
        QCOMPARE(actions()->targetTrial(), 2);
        const QRect row = table->view()->visualRect(table->proxy()->index(table->view()->currentIndex().row(), 0));
        QMenu menu;
        QCOMPARE(table->populateContextMenu(menu, row.center()), 2);
        QStringList texts;
        for (QAction* a : menu.actions())
            texts << a->text();
        for (const char* t : {"Recover\u2026", "Evaluate\u2026", "Export Model\u2026", "Generate\u2026"})
            QVERIFY2(texts.contains(QString::fromUtf8(t)), qPrintable(texts.join(QLatin1Char('|'))));
        QCOMPARE(actions()->targetTrial(), 2);
        screenshot(window_.get(), "trial-search-table");

        // The Pareto plot's context menu at a point: that trial's actions, then Reset zoom.
        SearchPanel* search = view->search();
        search->scatterPlot()->replot();
        const QPoint at = search->trialPosition(trial_);
        QVERIFY(at.x() >= 0);
        QMenu plotMenu;
        QCOMPARE(search->populateContextMenu(plotMenu, at), trial_);
        QCOMPARE(search->selectedTrial(), trial_);
        QCOMPARE(plotMenu.actions().size(), 1 /*section*/ + 4 + 1 /*separator*/ + 1);
        QMenu empty;
        QCOMPARE(search->populateContextMenu(empty, QPoint(2, 2)), -1);
        QCOMPARE(empty.actions().size(), 1); // Reset zoom only

        // A trial that does not exist: a message naming it, no dialog.
        QSignalSpy status(actions(), &TrialActions::statusMessage);
        QVERIFY(!actions()->openRecover(db_, 1, 99));
        QVERIFY(!status.isEmpty());
        QVERIFY2(status.last().at(0).toString().contains(QLatin1String("trial 99: no such trial")),
                 qPrintable(status.last().at(0).toString()));
    }

    void recoverTrainsCancelsAndResumes()
    {
        QSignalSpy started(actions(), &TrialActions::jobStarted);
        RecoverDialog* dialog = actions()->openRecover(db_, 1, trial_);
        QVERIFY(dialog);
        QCOMPARE(dialog->initBox()->currentText(), QStringLiteral("loftq")); // the defaults: LoftQ, rank 8
        QCOMPARE(dialog->rankBox()->value(), 8);
        QVERIFY(!dialog->resumeBox()->isEnabled());
        dialog->stepsBox()->setValue(5);
        dialog->batchBox()->setValue(4);
        dialog->microBatchBox()->setValue(4);
        dialog->seqLenBox()->setValue(64);
        dialog->maxExamplesBox()->setValue(64);
        dialog->maxValBox()->setValue(8);
        dialog->evalEveryBox()->setValue(2);
        const nlohmann::json f = dialog->finetune();
        QCOMPARE(f["steps"].get<int>(), 5);
        QCOMPARE(f["batch_size"].get<int>(), 4);
        QCOMPARE(f["max_examples"].get<int>(), 64);
        QCOMPARE(f["eval_every"].get<int>(), 2);
        QCOMPARE(f["init"].get<std::string>(), std::string("loftq"));
        screenshot(dialog, "trial-recover-dialog");
        dialog->accept();
        Job* job = waitForJob(started);
        QVERIFY(job);
        QVERIFY2(job->state() == Job::State::Done, qPrintable(job->errorText()));

        // The live plot: one training loss per step, validations at steps 0, 2, 4 and 5.
        RecoveryMonitor* monitor = actions()->monitor();
        QVERIFY(monitor);
        QTRY_COMPARE(monitor->trainGraph()->dataCount(), 5);
        QCOMPARE(job->series(QStringLiteral("loss")).size(), 5);
        QCOMPARE(job->series(QStringLiteral("loss")).back().x(), 5.0);
        const QVector<QPointF> val = job->series(QStringLiteral("val_loss"));
        QCOMPARE(val.size(), 4);
        QCOMPARE(val.front().x(), 0.0);
        QCOMPARE(val.back().x(), 5.0);
        QCOMPARE(monitor->validationGraph()->dataCount(), 4);
        screenshot(monitor, "trial-recover-monitor");

        // On disk and in the store.
        const fs::path adapter = adapterDir();
        QVERIFY(!adapter.empty());
        QVERIFY(fs::exists(adapter / "adapter_model.safetensors"));
        {
            store::Store st(db_.toStdString());
            const auto stages = st.stages(1);
            QCOMPARE(stages.back().name, std::string("trial-recover"));
            QCOMPARE(stages.back().status, store::RunStatus::Done);
            QCOMPARE(pipeline::stageTrial(stages.back()), trial_);
            QCOMPARE(stages.back().result["train"]["steps"].get<int>(), 5);
            const auto arts = st.artifacts(1);
            QVERIFY(std::any_of(arts.begin(), arts.end(), [&](const store::ArtifactRecord& a) {
                return a.kind == "adapter" && fs::path(a.path) == adapter / "adapter_model.safetensors";
            }));
        }
        // The trials table says so once the run is re-read, and the Model tab shows the adapter's rank.
        QTRY_VERIFY_WITH_TIMEOUT(
            window_->runView()->trialsTable()->model()->actionsText(trial_).contains(QLatin1String("recovered")),
            kTimeoutMs);
        QVERIFY2(window_->runView()->runShapes()->caption().contains(
                     QStringLiteral("recovered (trial %1) with LoRA rank 8").arg(trial_)),
                 qPrintable(window_->runView()->runShapes()->caption()));

        // Cancel: a longer recovery stopped from the monitor ends Cancelled, as its stage does, and leaves a
        // checkpoint; until another recovery finishes the trial counts as not recovered.
        dialog = actions()->openRecover(db_, 1, trial_);
        QVERIFY(dialog);
        QVERIFY(!dialog->resumeBox()->isEnabled()); // the last recovery finished: nothing to continue
        QCOMPARE(dialog->batchBox()->value(), 4);    // its settings are the new defaults
        dialog->stepsBox()->setValue(120);
        dialog->evalEveryBox()->setValue(0);
        dialog->accept();
        QVERIFY(!started.isEmpty() || started.wait(kTimeoutMs));
        job = started.takeFirst().at(0).value<Job*>();
        QTRY_VERIFY_WITH_TIMEOUT(job->series(QStringLiteral("loss")).size() >= 2, kTimeoutMs);
        QPushButton* cancel = nullptr;
        for (QPushButton* b : actions()->monitor()->findChildren<QPushButton*>())
            if (b->text().contains(QLatin1String("Cancel")))
                cancel = b;
        QVERIFY(cancel && cancel->isEnabled());
        cancel->click();
        QTRY_VERIFY_WITH_TIMEOUT(job->isFinished(), kTimeoutMs);
        QCOMPARE(job->state(), Job::State::Cancelled);
        const int stoppedAt = int(job->series(QStringLiteral("loss")).size());
        QVERIFY2(stoppedAt < 120, "the recovery finished before the cancel");
        store::Store st(db_.toStdString());
        QCOMPARE(st.stages(1).back().status, store::RunStatus::Cancelled);
        QVERIFY(adapterDir().empty());

        // Resume: offered (and checked) now, with the interrupted recovery's settings, read-only.
        dialog = actions()->openRecover(db_, 1, trial_);
        QVERIFY(dialog->resumeBox()->isEnabled());
        QVERIFY(dialog->resumeBox()->isChecked());
        QVERIFY(!dialog->stepsBox()->isEnabled());
        QCOMPARE(dialog->finetune()["steps"].get<int>(), 120);
        dialog->accept();
        job = waitForJob(started);
        QVERIFY(job);
        QVERIFY2(job->state() == Job::State::Done, qPrintable(job->errorText()));
        // It went on from the checkpoint: the first step it ran is past the ones done before the cancel.
        QVERIFY(!job->series(QStringLiteral("loss")).isEmpty());
        QVERIFY(job->series(QStringLiteral("loss")).front().x() > 1.0);
        QCOMPARE(job->series(QStringLiteral("loss")).back().x(), 120.0);
        QCOMPARE(st.stages(1).back().result["train"]["steps"].get<int>(), 120);
        QCOMPARE(st.stages(1).back().config["resume"].get<bool>(), true);
        QVERIFY(!adapterDir().empty());
    }

    void evaluateMatchesTheCli()
    {
        QSignalSpy started(actions(), &TrialActions::jobStarted);
        EvaluateDialog* dialog = actions()->openEvaluate(db_, 1, trial_);
        QVERIFY(dialog);
        QVERIFY(dialog->adapterBox()->isChecked()); // recovered: with its adapter
        dialog->taskList()->setCheckedNames({QStringLiteral("piqa"), QStringLiteral("arc_easy")});
        dialog->limitBox()->setValue(20);
        dialog->pplTable()->setSlices(nlohmann::json::array(
            {{{"source", "tinystories"}, {"windows", 4}, {"seq_len", 64}, {"skip", 0}}}));
        screenshot(dialog, "trial-evaluate-dialog");
        dialog->accept();
        Job* job = waitForJob(started);
        QVERIFY(job);
        QVERIFY2(job->state() == Job::State::Done, qPrintable(job->errorText()));
        const auto r = trialActionResult(*job);
        QVERIFY(r);
        QCOMPARE((*r)["tasks"].size(), size_t(2));
        QVERIFY(!(*r)["adapter"].is_null());

        const fs::path adapter = adapterDir();
        const CliResult c = cli({QStringLiteral("eval-tasks"), qstr(pruned_), QStringLiteral("--tokenizer"),
                                 qstr(tokenizer_), QStringLiteral("--adapter"), qstr(adapter),
                                 QStringLiteral("--tasks"), QStringLiteral("piqa,arc_easy"), QStringLiteral("--limit"),
                                 QStringLiteral("20"), QStringLiteral("--batch-size"), QStringLiteral("8"),
                                 QStringLiteral("--json")});
        QVERIFY2(c.code == 0, c.err.constData());
        const auto expected = nlohmann::json::parse(c.out.toStdString());
        for (const auto& t : (*r)["tasks"]) {
            const auto& e = expected["tasks"][t["task"].get<std::string>()];
            QCOMPARE(t["items"].get<int64_t>(), int64_t(20));
            QCOMPARE(t["acc"].get<double>(), e["acc"].get<double>());
            QCOMPARE(t["acc_norm"].get<double>(), e["acc_norm"].get<double>());
            QCOMPARE(t["acc_stderr"].get<double>(), e["acc_stderr"].get<double>());
        }

        // The Overview's results table shows it; Compare draws one bar per task.
        OverviewPanel* overview = window_->runView()->overview();
        QTRY_VERIFY_WITH_TIMEOUT(overview->resultsTable()->rowCount() == 1, kTimeoutMs);
        QTableWidget* results = overview->resultsTable();
        QCOMPARE(results->item(0, 0)->text(), QStringLiteral("trial %1").arg(trial_));
        QCOMPARE(results->item(0, 1)->text(), QStringLiteral("yes"));
        int piqa = -1;
        for (int c2 = 0; c2 < results->columnCount(); ++c2)
            if (results->horizontalHeaderItem(c2)->text() == QLatin1String("piqa acc"))
                piqa = c2;
        QVERIFY(piqa >= 0);
        QCOMPARE(results->item(0, piqa)->text(),
                 QString::number(expected["tasks"]["piqa"]["acc"].get<double>(), 'f', 4));
        window_->runView()->showTab(QStringLiteral("overview"));
        screenshot(window_.get(), "trial-evaluate-overview");

        ComparePanel compare;
        compare.resize(800, 500);
        compare.setRuns({*window_->runView()->snapshot(), *window_->runView()->snapshot()});
        QCOMPARE(compare.taskBars().size(), 2);
        QCOMPARE(compare.taskBars().front()->data()->size(), 2);
        QCOMPARE(compare.taskBars().front()->data()->at(0)->value, (*r)["tasks"][0]["acc"].get<double>());
        compare.tabs()->setCurrentIndex(compare.tabs()->count() - 1);
        screenshot(&compare, "trial-compare-tasks");
    }

    void exportEqualsTheCli()
    {
        QSignalSpy started(actions(), &TrialActions::jobStarted);
        ExportDialog* dialog = actions()->openExport(db_, 1, trial_);
        QVERIFY(dialog);
        QVERIFY(dialog->mergeBox()->isChecked());
        // The preview: every tensor with its type, the exact size.
        QVERIFY2(dialog->plan().has_value(), qPrintable(dialog->previewError()));
        const ExportPlan plan = *dialog->plan();
        QCOMPARE(dialog->tensorTable()->rowCount(), int(plan.tensors.size()));
        QCOMPARE(plan.architecture, std::string("deci")); // pruned layers differ in shape
        QVERIFY(dialog->summaryLabel()->text().contains(QLocale().toString(qlonglong(plan.totalBytes))) ||
                dialog->summaryLabel()->text().contains(QString::number(plan.totalBytes)));
        // HF refuses a heterogeneous model unless padded: the preview says why and Export is disabled.
        dialog->targetBox()->setCurrentIndex(1);
        QVERIFY(!dialog->plan());
        QVERIFY(dialog->previewError().contains(QLatin1String("pad-uniform")));
        QVERIFY(!dialog->exportButton()->isEnabled());
        QVERIFY(dialog->outEdit()->text().endsWith(QLatin1String("-hf")));
        dialog->padBox()->setChecked(true);
        QVERIFY2(dialog->plan().has_value(), qPrintable(dialog->previewError()));
        dialog->targetBox()->setCurrentIndex(0);
        QVERIFY(dialog->outEdit()->text().endsWith(QLatin1String(".gguf")));
        const QString out = dir_.filePath(QStringLiteral("trial.gguf"));
        dialog->outEdit()->setText(out);
        QVERIFY(dialog->exportButton()->isEnabled());
        screenshot(dialog, "trial-export-dialog");
        dialog->accept();
        Job* job = waitForJob(started);
        QVERIFY(job);
        QVERIFY2(job->state() == Job::State::Done, qPrintable(job->errorText()));
        QCOMPARE(QFileInfo(out).size(), qint64(plan.totalBytes));

        const QString cliOut = dir_.filePath(QStringLiteral("cli.gguf"));
        const CliResult c = cli({QStringLiteral("export"), qstr(pruned_), QStringLiteral("--adapter"),
                                 qstr(adapterDir()), QStringLiteral("--tokenizer"), qstr(tokenizer_),
                                 QStringLiteral("--to"), QStringLiteral("gguf"), QStringLiteral("--out"), cliOut,
                                 QStringLiteral("--name"), QStringLiteral("trial actions-trial-%1").arg(trial_)});
        QVERIFY2(c.code == 0, c.err.constData());
        const QByteArray a = fileBytes(out), b = fileBytes(cliOut);
        QVERIFY(!a.isEmpty());
        QVERIFY(a == b);

        store::Store st(db_.toStdString());
        const auto last = st.stages(1).back();
        QCOMPARE(last.name, std::string("trial-export"));
        QCOMPARE(last.result["total_bytes"].get<int64_t>(), plan.totalBytes);
        QVERIFY(!last.result["adapter"].is_null());
    }

    void generateMatchesTheCli()
    {
        QSignalSpy started(actions(), &TrialActions::jobStarted);
        GenerateWindow* window = actions()->openGenerate(db_, 1, trial_);
        QVERIFY(window);
        window->promptEdit()->setText(QStringLiteral("Once upon a time"));
        window->stepsBox()->setValue(40);
        window->temperatureBox()->setValue(0.8);
        window->seedBox()->setValue(7);
        QSignalSpy generated(window, &GenerateWindow::generated);
        window->generate();
        QVERIFY(generated.wait(kTimeoutMs));
        const nlohmann::json& r = window->result();
        QVERIFY(r.is_object());
        QVERIFY(!r["compressed"]["adapter"].is_null());
        QCOMPARE(window->compressedText()->toPlainText().toStdString(), r["compressed"]["text"].get<std::string>());
        QVERIFY(!window->baseText()->toPlainText().isEmpty());
        window->resize(820, 460);
        screenshot(window, "trial-generate");

        auto ids = [](const QStringList& args) {
            const CliResult c = cli(args);
            if (c.code != 0)
                qWarning("%s", c.err.constData());
            return nlohmann::json::parse(c.out.toStdString())["ids"];
        };
        const QStringList common = {QStringLiteral("--tokenizer"),   qstr(tokenizer_),
                                    QStringLiteral("--prompt"),      QStringLiteral("Once upon a time"),
                                    QStringLiteral("--steps"),       QStringLiteral("40"),
                                    QStringLiteral("--temperature"), QStringLiteral("0.8"),
                                    QStringLiteral("--seed"),        QStringLiteral("7"),
                                    QStringLiteral("--json")};
        const auto compressed = ids(QStringList{QStringLiteral("generate"), qstr(pruned_), QStringLiteral("--adapter"),
                                                qstr(adapterDir())} +
                                    common);
        QCOMPARE(r["compressed"]["ids"].dump(), compressed.dump());
        const auto base = ids(QStringList{QStringLiteral("generate"), qstr(model_)} + common);
        QCOMPARE(r["base"]["ids"].dump(), base.dump());
        QVERIFY(r["compressed"]["ids"] != r["base"]["ids"]); // pruned and quantized: another text
        window->close();
    }

    void cliSeesTheStages()
    {
        const CliResult p = cli({QStringLiteral("pareto"), QStringLiteral("--db"), db_, QStringLiteral("--run"),
                                 QStringLiteral("1"), QStringLiteral("--all"), QStringLiteral("--json")});
        QVERIFY2(p.code == 0, p.err.constData());
        const auto j = nlohmann::json::parse(p.out.toStdString());
        bool found = false;
        for (const auto& t : j["all"])
            if (t["number"].get<int>() == trial_) {
                found = true;
                QCOMPARE(t["actions"].dump(), std::string(R"(["recovered","evaluated","exported","generated"])"));
            }
        QVERIFY(found);
        const CliResult runs = cli({QStringLiteral("runs"), QStringLiteral("--db"), db_});
        QVERIFY2(runs.code == 0, runs.err.constData());
        QVERIFY2(runs.out.contains(QStringLiteral("export#%1").arg(trial_).toUtf8()), runs.out.constData());
        QVERIFY(runs.out.contains(QStringLiteral("recover#%1(cancelled)").arg(trial_).toUtf8()));
    }
};

QTEST_MAIN(TestTrialActions)
#include "test_trial_actions.moc"

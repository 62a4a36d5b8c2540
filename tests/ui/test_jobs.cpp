// GUI test of background work: the JobQueue (coalesced progress, ETA, cancel, failures, shutdown), the jobs
// panel, the new-run dialog (defaults, live budget check, config round trip), and real pipeline jobs on
// stories260K into a temporary workspace: a run that finishes, a run cancelled during its search that leaves
// the database consistent, and the run browser over that database (statuses, in-place refresh, filter, errors).
#include <QtTest/QtTest>
#include <QComboBox>
#include <QStackedWidget>

#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSortFilterProxyModel>
#include <QTemporaryDir>
#include <QToolButton>
#include <QTreeView>

#include <atomic>
#include <chrono>
#include <thread>

#include <sqlite3.h>

#include "browser/run_browser.h"
#include "browser/workspace_model.h"
#include "jobs/job_queue.h"
#include "jobs/job_table_model.h"
#include "jobs/jobs_panel.h"
#include "jobs/pipeline_jobs.h"
#include "newrun/new_run_dialog.h"
#include "qpruner/error.h"
#include "qpruner/memory_model.h"
#include "qpruner/model_config.h"
#include "qpruner/pipeline.h"
#include "qpruner/precision_map.h"
#include "qpruner/store.h"
#include "test_data.h"

using nlohmann::json;
using qpruner::ui::Job;
using qpruner::ui::JobQueue;
using qpruner::ui::JobsPanel;
using qpruner::ui::JobTableModel;
using qpruner::ui::NewRunDialog;
using qpruner::ui::RunBrowser;
using qpruner::ui::WorkspaceModel;
using State = qpruner::ui::Job::State;

namespace {

constexpr int kPipelineTimeoutMs = 180'000;

QString toQString(const std::filesystem::path& p)
{
    return QString::fromStdU16String(p.u16string());
}

std::filesystem::path toPath(const QString& s)
{
    return std::filesystem::path(s.toStdU16String());
}

bool logContains(const Job& job, const QString& needle)
{
    for (const Job::LogLine& l : job.log())
        if (l.text.contains(needle))
            return true;
    return false;
}

// Where a test saves what it grabbed, for looking at the widgets (unset: nothing is written).
void saveScreenshot(QWidget& w, const QString& name)
{
    const QString dir = qEnvironmentVariable("QPRUNER_TEST_SCREENSHOTS");
    if (!dir.isEmpty())
        w.grab().save(QDir(dir).filePath(name));
}

json normalized(const json& config)
{
    return qpruner::pipeline::normalizeConfig(config, qpruner::testing::sharedDataDir(),
                                              qpruner::testing::sharedDataDir());
}

// The small stories260K pipeline of the task: quant-kl on 8 x 64 calibration tokens, 7 bpw, a search on
// 4 x 64 validation tokens, no evaluation.
json smallConfig(const std::filesystem::path& model, const std::filesystem::path& tok, int trials)
{
    return {{"version", 1},
            {"experiment", "stories260K"},
            {"name", "small search, " + std::to_string(trials) + " trials"},
            {"model", model.string()},
            {"tokenizer", tok.string()},
            {"importance",
             {{"metric", "quant-kl"}, {"calibration", {{"source", "tinystories"}, {"samples", 8}, {"seq_len", 64}}}}},
            {"allocate", {{"budget", "7bpw"}}},
            {"search",
             {{"trials", trials},
              {"validation", {{"source", "tinystories"}, {"windows", 4}, {"seq_len", 64}}}}},
            {"evaluate", nullptr}};
}

} // namespace

class TestJobs : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void initTestCase()
    {
        QStandardPaths::setTestModeEnabled(true); // the browser adds recent workspaces to QSettings
        QCoreApplication::setOrganizationName(QStringLiteral("QPrunerTest"));
        QCoreApplication::setApplicationName(QStringLiteral("test_jobs"));
        QSettings().clear();
    }
    void cleanupTestCase() { QSettings().clear(); }

    // 10,000 progress reports over ~0.5 s reach the UI as a few timer-paced updates, the last one exact.
    void coalescesProgress()
    {
        JobQueue queue;
        QSignalSpy changed(&queue, &JobQueue::jobChanged);
        struct Sample {
            int64_t done;
            qint64 etaMs;
        };
        QList<Sample> samples;
        constexpr int64_t kSteps = 10'000;
        constexpr auto kStep = std::chrono::microseconds(50);
        Job* job = queue.start(QStringLiteral("synthetic"), [&](const qpruner::ProgressSink& sink,
                                                                const qpruner::CancelToken&) {
            const auto t0 = std::chrono::steady_clock::now();
            for (int64_t i = 1; i <= kSteps; ++i) {
                std::this_thread::sleep_until(t0 + i * kStep);
                qpruner::report(sink, "synthetic", i, kSteps, "step");
            }
        });
        connect(&queue, &JobQueue::jobChanged, this, [&](Job* j) {
            if (j->state() == State::Running && j->etaMs())
                samples.append({j->progress().done, *j->etaMs()});
        });
        QCOMPARE(job->state(), State::Queued);
        QSignalSpy finished(job, &Job::finished);
        QVERIFY(finished.wait(20'000));
        QCOMPARE(job->state(), State::Done);
        QCOMPARE(job->progress().stage, std::string("synthetic"));
        QCOMPARE(job->progress().done, kSteps);
        QCOMPARE(job->progress().total, kSteps);
        QCOMPARE(job->progress().message, std::string("step"));
        QVERIFY(job->errorText().isEmpty());
        QVERIFY(!job->etaMs()); // no ETA once finished

        // At most one update per 40 ms tick (+ start and finish), never one per report.
        const qint64 elapsed = job->elapsedMs();
        QVERIFY2(elapsed >= 450 && elapsed < 15'000, qPrintable(QString::number(elapsed)));
        const qsizetype bound = std::min<qsizetype>(elapsed / queue.updateInterval() + 6, 60);
        QVERIFY2(changed.count() >= 3 && changed.count() <= bound,
                 qPrintable(QStringLiteral("%1 updates in %2 ms").arg(changed.count()).arg(elapsed)));

        // The ETA follows the stage's rate: (10,000 - done) x 50 us, give or take scheduling on a busy machine.
        // The median mid-stage sample is checked, so one update delayed by a busy machine does not decide it.
        QList<Sample> mid;
        for (const Sample& s : samples)
            if (s.done >= 1000 && s.done <= 9000)
                mid.append(s);
        QVERIFY2(!mid.isEmpty(), "no progress update arrived mid-stage");
        const Sample s = mid[mid.size() / 2];
        const double expected = double(kSteps - s.done) * 0.05;
        QVERIFY2(s.etaMs >= expected * 0.3 - 50 && s.etaMs <= expected * 3.0 + 100,
                 qPrintable(QStringLiteral("done %1: ETA %2 ms, expected ~%3 ms")
                                .arg(s.done)
                                .arg(s.etaMs)
                                .arg(expected)));

        QVERIFY(logContains(*job, QStringLiteral("started")));
        QVERIFY(logContains(*job, QStringLiteral("stage synthetic: step")));
        QVERIFY(logContains(*job, QStringLiteral("done in")));
        QVERIFY(job->log().size() < 30); // message changes are logged once a second at most
    }

    void cancelEndsCancelled()
    {
        JobQueue queue;
        std::atomic<int> reports{0};
        Job* job = queue.start(QStringLiteral("endless"), [&](const qpruner::ProgressSink& sink,
                                                             const qpruner::CancelToken& cancel) {
            for (int64_t i = 0;; ++i) {
                cancel.throwIfCancelled();
                qpruner::report(sink, "loop", i, 0);
                ++reports;
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            }
        });
        QTRY_COMPARE_WITH_TIMEOUT(job->state(), State::Running, 10'000);
        QSignalSpy finished(job, &Job::finished);
        job->cancel();
        QVERIFY(finished.wait(10'000));
        QCOMPARE(job->state(), State::Cancelled);
        QCOMPARE(finished.first().first().value<State>(), State::Cancelled);
        QVERIFY(job->errorText().isEmpty());
        QVERIFY(reports > 0);
        QVERIFY(logContains(*job, QStringLiteral("cancel requested")));
        QVERIFY(logContains(*job, QStringLiteral("cancelled after")));
        QVERIFY(!job->etaMs()); // no total: no ETA at any time
    }

    void cancelWhileQueuedNeverRuns()
    {
        JobQueue queue(nullptr, 1); // one worker: the second job waits
        std::atomic<bool> release{false};
        std::atomic<bool> secondRan{false};
        Job* first = queue.start(QStringLiteral("blocker"), [&](const qpruner::ProgressSink&,
                                                               const qpruner::CancelToken&) {
            while (!release)
                std::this_thread::sleep_for(std::chrono::milliseconds(2));
        });
        Job* second = queue.start(QStringLiteral("queued"), [&](const qpruner::ProgressSink&,
                                                               const qpruner::CancelToken&) { secondRan = true; });
        QTRY_COMPARE_WITH_TIMEOUT(first->state(), State::Running, 10'000);
        QCOMPARE(second->state(), State::Queued);
        QCOMPARE(queue.activeCount(), 2);
        QSignalSpy finished(second, &Job::finished);
        second->cancel();
        QCOMPARE(second->state(), State::Cancelled); // at once: it never started
        QCOMPARE(finished.count(), 1);
        QCOMPARE(second->elapsedMs(), 0);
        queue.clearFinished(); // deleting it must not trouble the runnable that still waits in the pool
        QCOMPARE(queue.jobs().size(), 1);
        release = true;
        QTRY_COMPARE_WITH_TIMEOUT(first->state(), State::Done, 10'000);
        QVERIFY(queue.waitForIdle(10'000));
        QVERIFY(!secondRan);
    }

    void exceptionsEndFailedWithTheirText()
    {
        JobQueue queue;
        Job* config = queue.start(QStringLiteral("config"), [](const qpruner::ProgressSink& sink,
                                                              const qpruner::CancelToken&) {
            qpruner::report(sink, "prepare", 1, 4);
            throw qpruner::ConfigError("search.trials: expected an integer >= 1");
        });
        Job* plain = queue.start(QStringLiteral("std"), [](const qpruner::ProgressSink&, const qpruner::CancelToken&) {
            throw std::runtime_error("disk full");
        });
        Job* odd = queue.start(QStringLiteral("odd"), [](const qpruner::ProgressSink&, const qpruner::CancelToken&) {
            throw 42;
        });
        QSignalSpy finished(&queue, &JobQueue::jobFinished);
        QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 3, 10'000);
        QCOMPARE(config->state(), State::Failed);
        QCOMPARE(config->errorText(), QStringLiteral("search.trials: expected an integer >= 1"));
        QCOMPARE(config->progress().done, 1); // the progress before the throw is kept
        QVERIFY(logContains(*config, QStringLiteral("failed: search.trials: expected an integer >= 1")));
        QCOMPARE(plain->state(), State::Failed);
        QCOMPARE(plain->errorText(), QStringLiteral("disk full"));
        QCOMPARE(odd->state(), State::Failed);
        QVERIFY2(odd->errorText().contains(QStringLiteral("unknown error")), qPrintable(odd->errorText()));
        QCOMPARE(queue.activeCount(), 0);
    }

    // Destroying the queue cancels the running work and waits for it: nothing runs on afterwards.
    void destructorCancelsAndWaits()
    {
        auto* queue = new JobQueue;
        std::atomic<bool> sawCancel{false};
        std::atomic<bool> returned{false};
        Job* job = queue->start(QStringLiteral("until cancelled"), [&](const qpruner::ProgressSink&,
                                                                      const qpruner::CancelToken& cancel) {
            while (!cancel.isCancelled())
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            sawCancel = true;
            std::this_thread::sleep_for(std::chrono::milliseconds(50)); // still busy when the queue waits
            returned = true;
        });
        QTRY_COMPARE_WITH_TIMEOUT(job->state(), State::Running, 10'000);
        delete queue;
        QVERIFY(sawCancel);
        QVERIFY(returned);
    }

    void panelShowsProgressCancelAndLog()
    {
        JobQueue queue;
        JobsPanel panel(&queue);
        panel.resize(900, 260);
        Job* job = queue.start(QStringLiteral("Importance of stories260K"), [](const qpruner::ProgressSink& sink,
                                                                           const qpruner::CancelToken& cancel) {
            qpruner::report(sink, "importance", 3, 10, "calibration samples");
            while (!cancel.isCancelled())
                std::this_thread::sleep_for(std::chrono::milliseconds(2));
            cancel.throwIfCancelled();
        });
        Job* done = queue.start(QStringLiteral("Quick job"), [](const qpruner::ProgressSink& sink,
                                                            const qpruner::CancelToken&) {
            qpruner::report(sink, "eval-ppl", 4, 4);
        });
        QTRY_COMPARE_WITH_TIMEOUT(done->state(), State::Done, 10'000);
        QTRY_COMPARE_WITH_TIMEOUT(job->progress().done, 3, 10'000);
        JobTableModel* model = panel.model();
        QCOMPARE(model->rowCount(), 2);
        QCOMPARE(model->index(0, JobTableModel::ProgressColumn).data().toString(), QStringLiteral("importance 3/10"));
        QCOMPARE(model->index(0, JobTableModel::ProgressColumn).data(JobTableModel::ProgressFractionRole).toDouble(),
                 0.3);
        QCOMPARE(model->index(0, JobTableModel::StateColumn).data().toString(), QStringLiteral("running"));
        QCOMPARE(model->index(1, JobTableModel::ProgressColumn).data().toString(), QStringLiteral("eval-ppl 4/4"));
        QCOMPARE(model->index(1, JobTableModel::StateColumn).data().toString(), QStringLiteral("done"));
        QCOMPARE(JobTableModel::formatDuration(12'400), QStringLiteral("12 s"));
        QCOMPARE(JobTableModel::formatDuration(245'000), QStringLiteral("4:05"));
        QCOMPARE(JobTableModel::formatDuration(3'723'000), QStringLiteral("1:02:03"));
        QCOMPARE(panel.currentJob(), job); // the first job added is selected; its log shows
        QVERIFY(panel.logView()->toPlainText().contains(QStringLiteral("stage importance: calibration samples")));
        QVERIFY(panel.cancelButton(job));
        QVERIFY(!panel.cancelButton(done));
        QVERIFY(panel.clearFinishedButton()->isEnabled());
        panel.show();
        QVERIFY(QTest::qWaitForWindowExposed(&panel));
        saveScreenshot(panel, QStringLiteral("jobs_panel.png"));

        QTest::mouseClick(qobject_cast<QAbstractButton*>(panel.cancelButton(job)), Qt::LeftButton);
        QTRY_COMPARE_WITH_TIMEOUT(job->state(), State::Cancelled, 10'000);
        QVERIFY(!panel.cancelButton(job));
        QVERIFY(panel.logView()->toPlainText().contains(QStringLiteral("cancel requested")));
        QVERIFY(panel.logView()->toPlainText().contains(QStringLiteral("cancelled after")));
        QTest::mouseClick(panel.clearFinishedButton(), Qt::LeftButton);
        QCOMPARE(model->rowCount(), 0);
        QCOMPARE(queue.jobs().size(), 0);
        QVERIFY(!panel.clearFinishedButton()->isEnabled());
        QVERIFY(panel.logView()->toPlainText().isEmpty());
    }

    void dialogDefaultsAreValid()
    {
        QPRUNER_SHARED_FILE(model, "models/stories260K/stories260K.bin");
        NewRunDialog dialog;
        dialog.setBaseDir(QDir::tempPath());
        dialog.setModelPath(toQString(model));
        QVERIFY2(dialog.isConfigValid(), qPrintable(dialog.validationError()));
        QVERIFY(dialog.okButton()->isEnabled());
        const json c = dialog.config();
        QCOMPARE(c["experiment"], json("stories260K")); // named after the model
        QCOMPARE(c["allocate"]["budget"], json("7bpw"));
        QCOMPARE(c["allocate"]["candidates"], json({"nf4", "int8", "bf16"}));
        QCOMPARE(c["importance"]["metric"], json("quant-kl"));
        QCOMPARE(c["search"]["trials"], json(16));
        QCOMPARE(c["prune"], json(nullptr));
        QCOMPARE(c["finetune"], json(nullptr));
        QCOMPARE(c["evaluate"]["ppl"].size(), 1u);
        const json n = normalized(c); // what the job will run
        QCOMPARE(n["search"]["validation"]["windows"], json(16));
        QCOMPARE(n["evaluate"]["ppl"][0]["skip"], json(16));
        QVERIFY(dialog.validationMessage()->text().contains(QStringLiteral("search (16 trials)")));
        dialog.show();
        QVERIFY(QTest::qWaitForWindowExposed(&dialog));
        for (int tab = 0; tab < dialog.tabs()->count(); ++tab) {
            dialog.tabs()->setCurrentIndex(tab);
            saveScreenshot(dialog, QStringLiteral("new_run_dialog_tab%1.png").arg(tab));
        }
    }

    // The compute dtype: auto by default, what it means on this CPU shown under it and updated as the fields
    // change, aliases shown by their names, float16 refused by name with OK disabled.
    void dialogComputeDtype()
    {
        QPRUNER_SHARED_FILE(model, "models/stories260K/stories260K.bin");
        NewRunDialog dialog;
        dialog.setBaseDir(QDir::tempPath());
        dialog.setModelPath(toQString(model));
        QCOMPARE(dialog.config()["compute_dtype"], json("auto"));
        QVERIFY2(dialog.computeInfo()->text().startsWith(QStringLiteral("float32 weights compute in float32")),
                 qPrintable(dialog.computeInfo()->text()));
        json c = dialog.config();
        c["dtype"] = "bf16";
        dialog.setConfig(c);
        const QString autoText = dialog.computeInfo()->text();
        QVERIFY2(autoText.startsWith(QStringLiteral("bfloat16 weights compute in ")) &&
                     autoText.contains(QStringLiteral("(CPU: ")) && !autoText.contains(QStringLiteral("forced")),
                 qPrintable(autoText));
        dialog.computeDtypeBox()->setCurrentText(QStringLiteral("float32"));
        QVERIFY2(dialog.computeInfo()->text().startsWith(QStringLiteral("bfloat16 weights compute in float32: forced")),
                 qPrintable(dialog.computeInfo()->text()));
        QCOMPARE(dialog.config()["compute_dtype"], json("float32"));
        c["compute_dtype"] = "bf16";
        dialog.setConfig(c);
        QCOMPARE(dialog.computeDtypeBox()->currentText(), QStringLiteral("bfloat16"));
        QCOMPARE(dialog.config()["compute_dtype"], json("bfloat16"));
        QVERIFY(dialog.isConfigValid());
        c["compute_dtype"] = "float16";
        dialog.setConfig(c);
        QVERIFY(!dialog.isConfigValid());
        QVERIFY(!dialog.okButton()->isEnabled());
        QVERIFY2(dialog.validationError().contains(QStringLiteral("compute_dtype: float16 has no matmul on the CPU")),
                 qPrintable(dialog.validationError()));
        QVERIFY(dialog.computeInfo()->text().contains(QStringLiteral("compute_dtype: float16")));
    }

    // Every strategy and its settings round-trip through the dialog; the settings page follows the strategy; bad
    // settings are named and disable OK.
    void dialogStrategySettings()
    {
        QPRUNER_SHARED_FILE(model, "models/stories260K/stories260K.bin");
        NewRunDialog dialog;
        dialog.setBaseDir(QDir::tempPath());
        dialog.setModelPath(toQString(model));
        json c = dialog.config();
        QCOMPARE(c["search"]["strategy"], json("bayes"));
        QCOMPARE(c["search"]["fidelities"], json::array({1}));
        QCOMPARE(c["search"]["token_budget"], json(0));
        QCOMPARE(c["search"]["initial_knapsack"], json(true)); // bayes's default
        QCOMPARE(c["search"]["error_fidelity"], json(0.25));
        c["search"]["strategy"] = "evopress";
        c["search"]["granularity"] = "module";
        c["search"]["token_budget"] = 40000;
        c["search"]["evopress"] = {{"offspring", 8}, {"fidelities", {0.25, 0.5, 1}}, {"survivors", {3, 1}}};
        c["search"]["nsga2"] = {{"population", 12}, {"prefilter", 2}};
        c["search"]["error_fidelity"] = 0.25;
        c["search"]["ap_slopes"] = {0, 1, 2};
        c["search"]["fidelities"] = {0.25, 1};
        dialog.setConfig(c);
        QVERIFY2(dialog.isConfigValid(), qPrintable(dialog.validationError()));
        const json back = dialog.config();
        for (const char* key : {"strategy", "granularity", "token_budget", "evopress", "error_fidelity", "ap_slopes"})
            QVERIFY2(back["search"][key] == c["search"][key], key);
        // Multi-fidelity belongs to bayes: another strategy gets the single fidelity, bayes the typed list.
        QCOMPARE(back["search"]["fidelities"], json::array({1}));
        json b = c;
        b["search"]["strategy"] = "bayes";
        b["search"]["initial_knapsack"] = false;
        dialog.setConfig(b);
        QCOMPARE(dialog.config()["search"]["fidelities"], json({0.25, 1}));
        QCOMPARE(dialog.config()["search"]["initial_knapsack"], json(false));
        QCOMPARE(back["search"]["initial_knapsack"], json(false)); // evopress: no knapsack seeds
        dialog.setConfig(c);
        QCOMPARE(back["search"]["nsga2"]["population"], json(12));
        QCOMPARE(back["search"]["nsga2"]["prefilter"], json(2));
        auto* stack = dialog.findChild<QStackedWidget*>(QStringLiteral("strategySettings"));
        QVERIFY(stack);
        QCOMPARE(stack->currentIndex(), 2); // evopress's page
        dialog.show();
        QVERIFY(QTest::qWaitForWindowExposed(&dialog));
        for (int tab = 0; tab < dialog.tabs()->count(); ++tab)
            if (dialog.tabs()->tabText(tab).contains(QStringLiteral("Search")))
                dialog.tabs()->setCurrentIndex(tab);
        saveScreenshot(dialog, QStringLiteral("new-run-strategy.png"));
        const json n = normalized(back);
        QCOMPARE(n["search"]["evopress"]["survivors"], json::array({3, 1}));
        // Each strategy in turn: valid with its defaults, its page shown.
        for (const std::string s : {"bayes", "random", "evopress", "nsga2", "lagrangian", "ap-ratio"}) {
            json d = back;
            d["search"]["strategy"] = s;
            d["search"].erase("fidelities");
            dialog.setConfig(d);
            QVERIFY2(dialog.isConfigValid(), qPrintable(dialog.validationError()));
            QCOMPARE(dialog.config()["search"]["strategy"], json(s));
        }
        QCOMPARE(stack->currentIndex(), 5);
        // Survivors that do not match the stages are named; OK is disabled.
        json bad = back;
        bad["search"]["evopress"]["survivors"] = {4};
        dialog.setConfig(bad);
        QVERIFY(!dialog.isConfigValid());
        QVERIFY2(dialog.validationError().contains(QStringLiteral("survivor")), qPrintable(dialog.validationError()));
        QVERIFY(!dialog.okButton()->isEnabled());
        // Text that is not a list of numbers is named with its key.
        bad = back;
        bad["search"]["ap_slopes"] = "steep";
        dialog.setConfig(bad);
        QVERIFY(!dialog.isConfigValid());
        QVERIFY2(dialog.validationError().contains(QStringLiteral("ap_slopes")), qPrintable(dialog.validationError()));
    }

    void dialogBadBudgetDisablesOk()
    {
        QPRUNER_SHARED_FILE(model, "models/stories260K/stories260K.bin");
        NewRunDialog dialog;
        dialog.setModelPath(toQString(model));
        QVERIFY(dialog.okButton()->isEnabled());
        dialog.budgetEdit()->setText(QStringLiteral("7 parsecs"));
        QVERIFY(!dialog.okButton()->isEnabled());
        QVERIFY(!dialog.isConfigValid());
        const QString message = dialog.budgetMessage()->text();
        QVERIFY2(message.contains(QStringLiteral("7 parsecs")), qPrintable(message));
        QVERIFY2(dialog.validationError().contains(QStringLiteral("7 parsecs")), qPrintable(dialog.validationError()));
        QVERIFY(dialog.validationMessage()->text().contains(QStringLiteral("7 parsecs")));
        dialog.budgetEdit()->setText(QStringLiteral("0"));
        QVERIFY(!dialog.okButton()->isEnabled());
        dialog.tabs()->setCurrentIndex(3);
        dialog.show();
        QVERIFY(QTest::qWaitForWindowExposed(&dialog));
        saveScreenshot(dialog, QStringLiteral("new_run_dialog_bad_budget.png"));
        dialog.budgetEdit()->setText(QStringLiteral("6.5bpw"));
        QVERIFY2(dialog.okButton()->isEnabled(), qPrintable(dialog.validationError()));
        QCOMPARE(dialog.budgetMessage()->text(), QStringLiteral("6.5 bpw over the decoder linears"));

        // A config error elsewhere: the accuracy objective needs a task; the core's message names the key.
        dialog.setConfig([&] {
            json c = dialog.config();
            c["search"]["objective"] = "accuracy";
            return c;
        }());
        QVERIFY(!dialog.okButton()->isEnabled());
        QVERIFY2(dialog.validationError().startsWith(QStringLiteral("search.task:")),
                 qPrintable(dialog.validationError()));
        json fixed = dialog.config();
        fixed["search"]["task"] = "piqa";
        dialog.setConfig(fixed);
        QVERIFY2(dialog.okButton()->isEnabled(), qPrintable(dialog.validationError()));
    }

    void dialogRoundTripsConfig()
    {
        QPRUNER_SHARED_FILE(model, "models/stories260K/stories260K.bin");
        QPRUNER_SHARED_FILE(tok, "models/stories260K/tok512.model");
        const json full = {
            {"version", 1}, {"experiment", "round trip"}, {"name", "every field"}, {"model", model.string()},
            {"tokenizer", tok.string()}, {"dtype", "bf16"}, {"compute_dtype", "bfloat16"}, {"seed", 7},
            {"workdir", "/tmp/old-run-5"},
            {"prune",
             {{"ratio", 0.3}, {"criterion", "l2"}, {"attention_layers", "1:4"}, {"mlp_layers", "0:5"},
              {"calibration", {{"source", "wikitext2"}, {"samples", 6}, {"seq_len", 48}}}, {"micro_batch", 2}}},
            {"importance",
             {{"metric", "bi"}, {"metrics", {"bi", "quant-kl"}},
              {"calibration", {{"source", "ptb"}, {"samples", 9}, {"seq_len", 80}, {"seed", 3}}}}},
            {"allocate", {{"budget", "0.45x"}, {"method", "greedy"}, {"candidates", {"int4", "nf4", "int8"}},
                          {"samples", 5}}},
            {"search",
             {{"trials", 12}, {"strategy", "random"}, {"granularity", "group"}, {"objective", "accuracy"},
              {"task", "piqa"}, {"task_limit", 20}, {"initial_samples", 2}, {"workers", 2}, {"pool_samples", 32},
              {"validation", {{"source", "wikitext2"}, {"windows", 5}, {"seq_len", 96}, {"skip", 2}}}}},
            {"finetune", {{"data", "alpaca"}, {"steps", 7}, {"rank", 4}, {"init", "lora"}, {"lr", 0.002}}},
            {"evaluate",
             {{"ppl",
               {{{"source", "wikitext2"}, {"windows", 10}, {"seq_len", 128}, {"skip", 0}},
                {{"source", "tinystories"}, {"windows", 20}, {"seq_len", 64}, {"skip", 30}}}},
              {"tasks", {"arc_easy", "boolq"}},
              {"task_limit", 50}}}};
        NewRunDialog dialog;
        dialog.setConfig(full);
        QVERIFY2(dialog.isConfigValid(), qPrintable(dialog.validationError()));
        const json back = dialog.config();
        json expected = full;
        expected.erase("workdir"); // a re-run gets its own directory
        QCOMPARE(back.contains("workdir"), false);
        QCOMPARE(QString::fromStdString(normalized(back).dump(1)),
                 QString::fromStdString(normalized(expected).dump(1)));
        // Keys without a field survive; list orders are kept.
        QCOMPARE(back["search"]["pool_samples"], json(32));
        QCOMPARE(back["finetune"]["lr"], json(0.002));
        QCOMPARE(back["importance"]["calibration"]["seed"], json(3));
        QCOMPARE(back["prune"]["micro_batch"], json(2));
        QCOMPARE(back["allocate"]["candidates"], json({"int4", "nf4", "int8"}));
        QCOMPARE(back["importance"]["metrics"], json({"bi", "quant-kl"}));
        QCOMPARE(back["evaluate"]["tasks"], json({"arc_easy", "boolq"}));

        // Sections switched off come back as null; a missing search/evaluate means the pipeline's default (on).
        json lean = {{"version", 1}, {"model", model.string()}, {"prune", nullptr}, {"search", nullptr},
                     {"evaluate", nullptr}};
        dialog.setConfig(lean);
        QVERIFY2(dialog.isConfigValid(), qPrintable(dialog.validationError()));
        QCOMPARE(normalized(dialog.config()).dump(), normalized(lean).dump());
        json defaults = {{"version", 1}, {"model", model.string()}};
        dialog.setConfig(defaults);
        QCOMPARE(normalized(dialog.config()).dump(), normalized(defaults).dump());
        QVERIFY(!dialog.config()["search"].is_null());
    }

    // The real thing: two pipeline jobs into one workspace, the second cancelled during its search.
    void pipelineJobsAndBrowser()
    {
        QPRUNER_SHARED_FILE(model, "models/stories260K/stories260K.bin");
        QPRUNER_SHARED_FILE(tok, "models/stories260K/tok512.model");
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        const QString db = dir.filePath(QStringLiteral("studio.db"));
        JobQueue queue;
        qpruner::ui::PipelineJobOptions options;
        options.threads = 1;

        // --- run 1: finishes ---
        Job* job = qpruner::ui::startPipelineRun(queue, db, smallConfig(model, tok, 6), dir.path(), options);
        QSignalSpy created(job, &Job::runCreated);
        QSignalSpy queueCreated(&queue, &JobQueue::runCreated);
        int createdWhenFinished = -1;
        connect(job, &Job::finished, this, [&] { createdWhenFinished = int(created.count()); });
        QTRY_VERIFY_WITH_TIMEOUT(job->isFinished(), kPipelineTimeoutMs);
        QVERIFY2(job->state() == State::Done, qPrintable(job->errorText()));
        QCOMPARE(createdWhenFinished, 1); // announced before the job ended
        QCOMPARE(queueCreated.count(), 1);
        QCOMPARE(created.first().at(0).toString(), QFileInfo(db).absoluteFilePath());
        const qint64 run1 = created.first().at(1).toLongLong();
        QVERIFY(run1 > 0);
        QCOMPARE(job->runId(), run1);
        QCOMPARE(job->result().toLongLong(), run1);
        QVERIFY(logContains(*job, QStringLiteral("stage search")));
        {
            qpruner::store::OpenOptions ro;
            ro.readOnly = true;
            const qpruner::store::Store store(toPath(db), ro);
            const auto run = store.run(run1);
            QCOMPARE(run.status, qpruner::store::RunStatus::Done);
            QCOMPARE(run.trialsComplete, 6);
            QStringList done;
            for (const auto& s : store.stages(run1))
                if (s.status == qpruner::store::RunStatus::Done)
                    done << QString::fromStdString(s.name);
            QCOMPARE(done, (QStringList{"importance", "allocate", "search"}));
        }

        // --- a hand-made map evaluated as one more (manual) trial of run 1 ---
        const qpruner::PrecisionMap int8(qpruner::parseQuantSpec("int8"));
        Job* evaluate = qpruner::ui::startEvaluateMap(queue, db, run1, int8);
        QTRY_VERIFY_WITH_TIMEOUT(evaluate->isFinished(), kPipelineTimeoutMs);
        QVERIFY2(evaluate->state() == State::Done, qPrintable(evaluate->errorText()));
        const auto trial = qpruner::ui::evaluatedTrial(*evaluate);
        QVERIFY(trial);
        QCOMPARE(trial->number, 6); // after the search's 0..5
        QCOMPARE(trial->source, std::string("manual"));
        QCOMPARE(trial->state, qpruner::store::TrialState::Complete);
        QVERIFY(trial->objective && *trial->objective > 1.0); // a perplexity
        QCOMPARE(trial->memoryBytes, qpruner::memoryReport(qpruner::inspectModel(model).config, int8).totalBytes);
        QVERIFY(!qpruner::ui::evaluatedTrial(*job)); // a run job delivers a run id, not a trial
        Job* again = qpruner::ui::startEvaluateMap(queue, db, run1, int8); // the same map: the stored trial
        QTRY_VERIFY_WITH_TIMEOUT(again->isFinished(), kPipelineTimeoutMs);
        QCOMPARE(qpruner::ui::evaluatedTrial(*again)->number, 6);
        QCOMPARE(*qpruner::ui::evaluatedTrial(*again)->objective, *trial->objective);

        // --- the browser over it ---
        RunBrowser browser;
        browser.resize(700, 320);
        // "New workspace…" and "New run…" are named as such; a run needs an open workspace.
        auto* newRun = browser.findChild<QToolButton*>(QStringLiteral("newRunButton"));
        auto* newWorkspace = browser.findChild<QToolButton*>(QStringLiteral("newWorkspaceButton"));
        QVERIFY(newRun && newWorkspace);
        QCOMPARE(newWorkspace->text(), QStringLiteral("New workspace…"));
        QCOMPARE(newRun->text(), QStringLiteral("New run…"));
        QVERIFY(!newRun->isEnabled());
        QSignalSpy opened(&browser, &RunBrowser::workspaceOpened);
        browser.openWorkspace(db);
        QVERIFY(opened.wait(20'000));
        QVERIFY(newRun->isEnabled());
        QSignalSpy runRequested(&browser, &RunBrowser::newRunRequested);
        newRun->click();
        QCOMPARE(runRequested.count(), 1);
        WorkspaceModel* wm = browser.model();
        QCOMPARE(browser.currentWorkspace(), QFileInfo(db).absoluteFilePath());
        QCOMPARE(wm->experimentCount(), 1);
        QCOMPARE(wm->runCount(), 1);
        QCOMPARE(wm->index(0, WorkspaceModel::RunColumn).data().toString(), QStringLiteral("stories260K"));
        const QPersistentModelIndex run1Index = wm->indexOfRun(run1);
        auto run1Cell = [&](int column) { return QModelIndex(run1Index).siblingAtColumn(column).data().toString(); };
        QCOMPARE(run1Cell(WorkspaceModel::StatusColumn), QStringLiteral("done"));
        QCOMPARE(run1Cell(WorkspaceModel::TrialsColumn), QStringLiteral("7 / 0 / 0")); // 6 searched + 1 manual
        QCOMPARE(run1Cell(WorkspaceModel::KindColumn), QStringLiteral("pipeline"));
        QSignalSpy selected(&browser, &RunBrowser::runSelected);
        browser.selectRun(run1);
        QCOMPARE(selected.count(), 1);
        QCOMPARE(selected.first().at(1).toLongLong(), run1);
        QCOMPARE(browser.selectedRunId(), run1);

        // --- run 2: shown live by the browser, cancelled once its search has completed a trial ---
        // The window connects runCreated to the browser; the browser then refreshes itself while the run runs.
        QSignalSpy reset(wm, &QAbstractItemModel::modelReset);
        QSignalSpy inserted(wm, &QAbstractItemModel::rowsInserted);
        browser.setAutoRefreshInterval(100);
        connect(&queue, &JobQueue::runCreated, &browser, &RunBrowser::refreshIfShowing);
        Job* job2 = qpruner::ui::startPipelineRun(queue, db, smallConfig(model, tok, 100), dir.path(), options);
        int liveReads = 0; // reads that showed run 2 running
        connect(wm, &WorkspaceModel::loaded, this, [&] {
            const QModelIndex i = wm->indexOfRun(job2->runId());
            if (job2->runId() > 0 && i.isValid() &&
                i.data(WorkspaceModel::StatusRole).toInt() == int(qpruner::store::RunStatus::Running))
                ++liveReads;
        });
        bool cancelSent = false;
        connect(&queue, &JobQueue::jobChanged, this, [&](Job* j) {
            if (j == job2 && !cancelSent && liveReads >= 2 && j->progress().stage == "search" &&
                j->progress().done >= 1) {
                cancelSent = true;
                j->cancel();
            }
        });
        QTRY_VERIFY_WITH_TIMEOUT(job2->isFinished(), kPipelineTimeoutMs);
        QVERIFY(cancelSent);
        QVERIFY2(job2->state() == State::Cancelled, qPrintable(Job::stateName(job2->state()) + job2->errorText()));
        const qint64 run2 = job2->runId();
        QVERIFY(run2 > run1);
        {
            qpruner::store::OpenOptions ro;
            ro.readOnly = true;
            const qpruner::store::Store store(toPath(db), ro);
            QCOMPARE(store.integrityCheck(), std::string("ok"));
            const auto run = store.run(run2);
            QCOMPARE(run.status, qpruner::store::RunStatus::Cancelled);
            QVERIFY(!run.finishedAt.empty());
            QCOMPARE(run.trialsRunning, 0);
            QVERIFY(run.trialsComplete >= 1);
            QVERIFY(run.trialsComplete < 100);
            for (const auto& t : store.trials(run2)) {
                QVERIFY(t.state != qpruner::store::TrialState::Running);
                if (t.state == qpruner::store::TrialState::Complete)
                    QVERIFY2(t.objective.has_value(), qPrintable(QStringLiteral("trial %1").arg(t.number)));
            }
            const qpruner::store::StageRecord* search = nullptr;
            const auto stages = store.stages(run2);
            for (const auto& s : stages) {
                QVERIFY2(s.status != qpruner::store::RunStatus::Running, s.name.c_str()); // none left open
                if (s.name == "search")
                    search = &s;
            }
            QVERIFY(search);
            QVERIFY(search->status != qpruner::store::RunStatus::Done);
            QCOMPARE(search->status, qpruner::store::RunStatus::Cancelled);
            // Run 1 is untouched by run 2's cancellation.
            QCOMPARE(store.run(run1).status, qpruner::store::RunStatus::Done);
        }

        // --- the refreshes merged in place: one new row, no reset, selection and persistent index kept ---
        QSignalSpy loaded(wm, &WorkspaceModel::loaded);
        browser.refresh();
        QVERIFY(loaded.wait(20'000));
        QVERIFY(liveReads >= 2);
        QCOMPARE(reset.count(), 0);
        QCOMPARE(inserted.count(), 1);
        QCOMPARE(wm->runCount(), 2);
        QVERIFY(run1Index.isValid());
        QCOMPARE(run1Index.data(WorkspaceModel::RunIdRole).toLongLong(), run1);
        QCOMPARE(browser.selectedRunId(), run1);
        QCOMPARE(selected.count(), 1); // a refresh is not a new selection
        const QModelIndex run2Index = wm->indexOfRun(run2);
        QCOMPARE(run2Index.parent(), wm->index(0, 0)); // same experiment
        QCOMPARE(run2Index.siblingAtColumn(WorkspaceModel::StatusColumn).data().toString(),
                 QStringLiteral("cancelled"));
        QCOMPARE(wm->index(0, WorkspaceModel::NameColumn).data().toString(), QStringLiteral("2 runs"));
        browser.show();
        QVERIFY(QTest::qWaitForWindowExposed(&browser));
        saveScreenshot(browser, QStringLiteral("run_browser.png"));

        // --- the filter keeps only matching runs (over name, kind, status, #id) ---
        QSortFilterProxyModel* proxy = browser.proxy();
        auto shownRuns = [&] {
            QList<qint64> ids;
            for (int e = 0; e < proxy->rowCount(); ++e)
                for (int r = 0; r < proxy->rowCount(proxy->index(e, 0)); ++r)
                    ids << proxy->index(r, 0, proxy->index(e, 0)).data(WorkspaceModel::RunIdRole).toLongLong();
            return ids;
        };
        QCOMPARE(shownRuns(), (QList<qint64>{run1, run2}));
        browser.filterEdit()->setText(QStringLiteral("cancelled"));
        QCOMPARE(shownRuns(), QList<qint64>{run2});
        browser.filterEdit()->setText(QStringLiteral("100 TRIALS")); // run 2's name, case-insensitive
        QCOMPARE(shownRuns(), QList<qint64>{run2});
        browser.filterEdit()->setText(QStringLiteral("#%1").arg(run1));
        QCOMPARE(shownRuns(), QList<qint64>{run1});
        browser.filterEdit()->setText(QStringLiteral("no such run"));
        QCOMPARE(proxy->rowCount(), 0); // the experiment goes too when none of its runs match
        browser.filterEdit()->clear();
        QCOMPARE(shownRuns(), (QList<qint64>{run1, run2}));
        browser.selectRun(run2);
        QCOMPARE(selected.count(), 2);
        QCOMPARE(selected.last().at(1).toLongLong(), run2);

        // --- a file that is not a workspace is refused, naming it; the open workspace stays ---
        const QString bogus = dir.filePath(QStringLiteral("notes.db"));
        {
            QFile f(bogus);
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write(QByteArray("these are notes, not a database\n").repeated(200));
        }
        QSignalSpy failed(&browser, &RunBrowser::workspaceFailed);
        browser.openWorkspace(bogus);
        QVERIFY(failed.wait(20'000));
        QCOMPARE(failed.first().at(0).toString(), QFileInfo(bogus).absoluteFilePath());
        QVERIFY2(failed.first().at(1).toString().contains(QFileInfo(bogus).absoluteFilePath()),
                 qPrintable(failed.first().at(1).toString()));
        QCOMPARE(browser.currentWorkspace(), QFileInfo(db).absoluteFilePath());
        QCOMPARE(wm->runCount(), 2);
        QVERIFY(browser.statusLabel()->text().contains(QStringLiteral("notes.db")));
    }

    void createWorkspaceAndSchemaErrors()
    {
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        // Never overwrites a file that is not a workspace.
        const QString bogus = dir.filePath(QStringLiteral("thesis.db"));
        const QByteArray content("chapter 1\n");
        {
            QFile f(bogus);
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write(content.repeated(100));
        }
        QString error;
        QVERIFY(!RunBrowser::createWorkspace(bogus, &error));
        QVERIFY2(error.contains(QFileInfo(bogus).absoluteFilePath()), qPrintable(error));
        {
            QFile f(bogus);
            QVERIFY(f.open(QIODevice::ReadOnly));
            QCOMPARE(f.readAll(), content.repeated(100));
        }
        // A new one (in a new directory) opens empty; creating it again keeps it.
        const QString fresh = dir.filePath(QStringLiteral("sub/new.db"));
        QVERIFY2(RunBrowser::createWorkspace(fresh, &error), qPrintable(error));
        QVERIFY(RunBrowser::createWorkspace(fresh, &error));
        RunBrowser browser;
        QSignalSpy opened(&browser, &RunBrowser::workspaceOpened);
        browser.openWorkspace(fresh);
        QVERIFY(opened.wait(20'000));
        QCOMPARE(browser.model()->experimentCount(), 0);
        QCOMPARE(browser.model()->rowCount(), 0);
        const QStringList recent = QSettings().value(QStringLiteral("workspaces/recent")).toStringList();
        QVERIFY(recent.contains(QFileInfo(fresh).absoluteFilePath()));

        // A workspace written by a newer build: the core's message names both versions.
        const QString newer = dir.filePath(QStringLiteral("newer.db"));
        QVERIFY(RunBrowser::createWorkspace(newer, &error));
        {
            sqlite3* handle = nullptr;
            QCOMPARE(sqlite3_open(newer.toUtf8().constData(), &handle), SQLITE_OK);
            QCOMPARE(sqlite3_exec(handle, "UPDATE schema_version SET version = 99", nullptr, nullptr, nullptr),
                     SQLITE_OK);
            sqlite3_close(handle);
        }
        QSignalSpy failed(&browser, &RunBrowser::workspaceFailed);
        browser.openWorkspace(newer);
        QVERIFY(failed.wait(20'000));
        const QString message = failed.first().at(1).toString();
        QVERIFY2(message.contains(QStringLiteral("99")) &&
                     message.contains(QString::number(qpruner::store::kSchemaVersion)),
                 qPrintable(message));
        QCOMPARE(browser.currentWorkspace(), QFileInfo(fresh).absoluteFilePath());
        // A missing file is reported too (the browser never creates one by opening it).
        const QString missing = dir.filePath(QStringLiteral("missing.db"));
        browser.openWorkspace(missing);
        QVERIFY(failed.wait(20'000));
        QVERIFY(!QFileInfo::exists(missing));
    }
};

QTEST_MAIN(TestJobs)
#include "test_jobs.moc"

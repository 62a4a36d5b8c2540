// GUI test of the studio around a real workspace: a stories260K study made by the core pipeline is opened in
// the main window (start page -> run tabs), its Search plot has one point per complete trial of the DB, a
// trial's map lands in the editor, the editor's map is evaluated as a manual trial that then shows in the
// plot, the exports write what the DB holds, two runs compare, and a 100,000-trial run opens while the event
// loop keeps turning.
#include <QtTest/QtTest>

#include <QFile>
#include <QTableWidget>
#include <QSettings>
#include <QTemporaryDir>
#include <QUndoStack>

#include <filesystem>
#include <fstream>

#include "jobs/job.h"
#include "jobs/job_queue.h"
#include "main/compare_page.h"
#include "main/main_window.h"
#include "main/run_exporter.h"
#include "main/run_view.h"
#include "mapeditor/memory_bar.h"
#include "mapeditor/precision_map_editor.h"
#include "overview/overview_panel.h"
#include "plots/compare_panel.h"
#include "plots/search_panel.h"
#include "qpruner/memory_model.h"
#include "qpruner/pipeline.h"
#include "trials/trials_table.h"
#include "settings/settings.h"
#include "browser/workspace_model.h"
#include "browser/run_browser.h"
#include "common/workspace_location.h"
#include "pg_server.h"
#include "synthetic_study.h"
#include "test_data.h"
#include "workspace/run_exports.h"

using namespace qpruner;
using namespace qpruner::ui;
namespace fs = std::filesystem;

namespace {

constexpr int kTimeoutMs = 60'000;

QString qstr(const fs::path& p)
{
    return QString::fromStdString(p.string());
}

// A small but real study: importance (bi, quant-kl) on stories260K, a 6-trial search under two budgets.
nlohmann::json studyConfig(const fs::path& model, const std::string& budget)
{
    return {{"version", 1},
            {"experiment", "stories260K"},
            {"name", "test " + budget},
            {"model", model.string()},
            {"importance",
             {{"metric", "quant-kl"}, {"metrics", {"quant-kl", "bi"}}, {"calibration", {{"samples", 4}, {"seq_len", 64}}}}},
            {"allocate", {{"budget", budget}, {"candidates", {"nf4", "int8", "bf16"}}}},
            {"search", {{"trials", 6}, {"validation", {{"windows", 2}, {"seq_len", 64}}}}},
            {"evaluate", {{"ppl", {{{"source", "tinystories"}, {"windows", 2}, {"seq_len", 64}, {"skip", 2}}}}}}};
}

struct Harness {
    MainWindow window;
    QStringList errors;
    Harness()
    {
        window.setErrorPresenter([this](const QString&, const QString& m) { errors << m; });
        window.runView()->loader()->setPollInterval(50);
    }
    RunSnapshotPtr open(const QString& db, qint64 run)
    {
        QSignalSpy loaded(window.runView(), &RunView::runLoaded);
        window.openRun(db, run);
        if (!loaded.wait(kTimeoutMs))
            return nullptr;
        return window.runView()->snapshot();
    }
};

} // namespace

class TestStudio : public QObject {
    Q_OBJECT

    QTemporaryDir dir_;
    QString db_;
    fs::path model_;

    // The two-run study every run test opens, made once (by whichever test comes first).
    bool makeStudy(const fs::path& model)
    {
        if (!model_.empty())
            return true;
        store::Store st(db_.toStdString());
        pipeline::RunOptions ro;
        ro.threads = 1;
        for (const char* budget : {"7bpw", "5.5bpw"})
            pipeline::startRun(st, pipeline::normalizeConfig(studyConfig(model, budget), fs::current_path(),
                                                             testing::sharedDataDir()),
                               ro);
        model_ = model;
        return true;
    }

private Q_SLOTS:
    void initTestCase()
    {
        QStandardPaths::setTestModeEnabled(true);
        QCoreApplication::setOrganizationName(QStringLiteral("QPrunerTest"));
        QCoreApplication::setApplicationName(QStringLiteral("test_studio"));
        QSettings().clear();
        QVERIFY(dir_.isValid());
        db_ = dir_.filePath(QStringLiteral("study.db"));
    }

    void cleanupTestCase() { QSettings().clear(); }

    void trialsCsvQuotesAndRoundTrips()
    {
        store::TrialRecord t;
        t.number = 3;
        t.state = store::TrialState::Complete;
        t.source = "manual";
        t.objective = 7.25;
        t.memoryBytes = 205312;
        t.budgetedBytes = 150000;
        t.metrics = {{"ppl", 7.25}, {"memory", {{"linear_bits_per_weight", 5.5}}}};
        t.map = {{"default", "nf4"}};
        t.error = "line one, \"two\"";
        t.finishOrder = 4;
        const QByteArray csv = trialsCsv({t});
        const QList<QByteArray> lines = csv.split('\n');
        QCOMPARE(lines.size(), 3); // header, row, "" after the last CRLF
        QVERIFY(lines[0].startsWith("number,state,source,objective,memory_bytes,budgeted_bytes,linear_bits_per_weight,"));
        QCOMPARE(lines[1],
                 QByteArray("3,complete,manual,7.25,205312,150000,5.5,0,0,0,,4,,,,\"line one, \"\"two\"\"\",,"
                            "\"{\"\"memory\"\":{\"\"linear_bits_per_weight\"\":5.5},\"\"ppl\"\":7.25}\","
                            "\"{\"\"default\"\":\"\"nf4\"\"}\"\r"));
    }

    void makesStudy()
    {
        QPRUNER_SHARED_FILE(model, "models/stories260K/stories260K.bin");
        QVERIFY(makeStudy(model));
        store::Store st(db_.toStdString());
        QCOMPARE(st.runs().size(), size_t(2));
        QCOMPARE(st.run(1).trialsComplete, int64_t(6));
        QCOMPARE(st.run(2).trialsComplete, int64_t(6));
    }

    void startPageThenRunTabs()
    {
        QPRUNER_SHARED_FILE(model, "models/stories260K/stories260K.bin");
        QVERIFY(makeStudy(model));
        Harness h;
        QVERIFY(h.window.isStartPageShown());
        const RunSnapshotPtr s = h.open(db_, 1);
        QVERIFY2(s, qPrintable(h.errors.join('\n')));
        QVERIFY(!h.window.isStartPageShown());
        QCOMPARE(h.window.currentWorkspace(), QFileInfo(db_).absoluteFilePath());
        QVERIFY(h.window.windowTitle().startsWith(QStringLiteral("Run 1")));
        store::Store st(db_.toStdString());
        QVERIFY(h.window.runView()->overview()->headerText().contains(QStringLiteral("Run 1")));
        QCOMPARE(h.window.runView()->overview()->stagesTable()->rowCount(), int(st.stages(1).size()));
        // One point per complete trial of the DB.
        QCOMPARE(h.window.runView()->search()->plottedTrialCount(), int(st.run(1).trialsComplete));
        // The editor holds the run's chosen map on the run's model, against the run's own budget.
        PrecisionMapEditor* editor = h.window.runView()->mapEditor();
        QVERIFY(editor->hasModel());
        const ModelConfig config = inspectModel(model_).config;
        QCOMPARE(editor->modelConfig(), config);
        // Same formats everywhere (the editor keeps the compact canonical form of the map).
        QCOMPARE(editor->map().resolve(config), PrecisionMap::fromJson(pipeline::chosenMap(st, 1)["map"]).resolve(config));
        QCOMPARE(editor->memoryBar()->budget().limitBytes(), st.stages(1)[2].result["budget_bytes"].get<int64_t>());
        QCOMPARE(editor->memory().totalBytes, memoryReport(config, editor->map()).totalBytes);
    }

    void trialMapGoesToEditorAndEvaluates()
    {
        QPRUNER_SHARED_FILE(model, "models/stories260K/stories260K.bin");
        QVERIFY(makeStudy(model));
        Harness h;
        QVERIFY(h.open(db_, 1));
        store::Store st(db_.toStdString());
        RunView* view = h.window.runView();
        PrecisionMapEditor* editor = view->mapEditor();
        const int steps = editor->undoStack()->count();
        // Trial 5's map (a click on its point emits this) replaces the editor's map as one undo step.
        const ModelConfig config = inspectModel(model_).config;
        const ResolvedPrecision trialMap = PrecisionMap::fromJson(st.trial(1, 5).map).resolve(config);
        const bool chosenIsTrial5 = pipeline::chosenMap(st, 1)["trial"].get<int>() == 5;
        view->showTrialMap(1, 5);
        QTRY_COMPARE_WITH_TIMEOUT(editor->map().resolve(config), trialMap, kTimeoutMs);
        QCOMPARE(editor->undoStack()->count(), steps + (chosenIsTrial5 ? 0 : 1));
        QCOMPARE(view->currentWidget(), static_cast<QWidget*>(editor));

        // Edit one module by hand and evaluate it: a manual trial appears in the DB and in the plot.
        PrecisionMap edited = PrecisionMap::fromResolved(trialMap);
        edited.setLayerModule(0, LinearModule::Down, parseQuantSpec("int4"));
        QVERIFY(editor->setMap(edited, QStringLiteral("by hand")));
        const int before = view->search()->plottedTrialCount();
        view->evaluateEditorMap();
        QVERIFY(view->evaluationJob());
        QSignalSpy done(view->evaluationJob(), &Job::finished);
        QVERIFY(done.wait(kTimeoutMs));
        QCOMPARE(done.first().first().value<Job::State>(), Job::State::Done);
        const auto trials = st.trialSummaries(1);
        QCOMPARE(trials.back().source, std::string("manual"));
        QCOMPARE(trials.back().memoryBytes, memoryReport(config, edited).totalBytes);
        QVERIFY(editor->evaluationStatusText().contains(QString::number(trials.back().number)));
        QTRY_COMPARE_WITH_TIMEOUT(view->search()->plottedTrialCount(), before + 1, kTimeoutMs);
    }

    void exportsWriteWhatTheStoreHolds()
    {
        QPRUNER_SHARED_FILE(model, "models/stories260K/stories260K.bin");
        QVERIFY(makeStudy(model));
        Harness h;
        QVERIFY(h.open(db_, 1));
        RunExporter* exporter = h.window.findChild<RunExporter*>();
        QVERIFY(exporter);
        QString target;
        exporter->setFileChooser([&](const QString&, const QString&, const QString&) { return target; });
        store::Store st(db_.toStdString());

        target = dir_.filePath(QStringLiteral("trials.csv"));
        QVERIFY(exporter->exportTrialsCsv());
        QFile csv(target);
        QVERIFY(csv.open(QIODevice::ReadOnly));
        QCOMPARE(csv.readAll(), trialsCsv(st.trials(1)));

        target = dir_.filePath(QStringLiteral("config.json"));
        QVERIFY(exporter->exportConfig());
        std::ifstream in(target.toStdString());
        QCOMPARE(nlohmann::json::parse(in), st.run(1).config);

        target = dir_.filePath(QStringLiteral("map.json"));
        QVERIFY(exporter->exportMap());
        QCOMPARE(PrecisionMap::load(target.toStdString()), h.window.runView()->mapEditor()->map());

        target = dir_.filePath(QStringLiteral("quantize.sh"));
        QVERIFY(exporter->exportLlamaCpp());
        QFile sh(target);
        QVERIFY(sh.open(QIODevice::ReadOnly));
        const QString script = QString::fromUtf8(sh.readAll());
        QVERIFY(script.contains(QStringLiteral("llama-quantize")));
        QVERIFY(script.contains(QStringLiteral("--tensor-type '^blk\\.0\\.attn_q\\.weight$=")));

        h.window.runView()->showTab(QStringLiteral("search"));
        target = dir_.filePath(QStringLiteral("search.png"));
        QVERIFY(exporter->exportPlots());
        QVERIFY(!QImage(target).isNull());
        // A directory that does not exist: refused, the path named, nothing written.
        target = dir_.filePath(QStringLiteral("missing/trials.csv"));
        QVERIFY(!exporter->exportTrialsCsv());
        QVERIFY(h.errors.last().contains(QStringLiteral("missing")));
        QVERIFY(!QFile::exists(target));
    }

    // A PostgreSQL workspace: File > Open Server Workspace's URL opens like a file; the run browser lists the
    // study (copied there with copyStore), a run opens with its trials plotted, a trial that a worker completes
    // while the run runs appears live, and the recent list keeps the URL (which never holds a password).
    void serverWorkspace()
    {
        QPRUNER_SHARED_FILE(model, "models/stories260K/stories260K.bin");
        QVERIFY(makeStudy(model));
        testing::PgServer pg;
        const QString why = pg.start();
        if (!why.isEmpty()) {
            if (testing::dataRequired())
                QFAIL(qPrintable(QStringLiteral("no PostgreSQL server: ") + why));
            QSKIP(qPrintable(QStringLiteral("no PostgreSQL server: ") + why));
        }
        QString error;
        QVERIFY2(pg.createDatabase(QStringLiteral("studio"), &error), qPrintable(error));
        const std::string url = pg.url(QStringLiteral("studio"));
        {
            store::OpenOptions ro;
            ro.readOnly = true;
            const store::Store from(db_.toStdString(), ro);
            store::Store to(url);
            store::copyStore(from, to);
            to.setRunStatus(1, store::RunStatus::Running); // as while workers write
        }
        QString refused;
        QVERIFY(!checkServerWorkspaceUrl(QStringLiteral("postgresql://me:secret@db/x"), &refused));
        QVERIFY(refused.contains(QLatin1String("~/.pgpass")));

        Harness h;
        const QString qurl = QString::fromStdString(url);
        QSignalSpy opened(h.window.runBrowser(), &RunBrowser::workspaceOpened);
        h.window.openWorkspace(qurl);
        QVERIFY(opened.wait(kTimeoutMs));
        QCOMPARE(h.window.runBrowser()->model()->runCount(), 2);
        // Readers of a server workspace share one connection (a file is opened afresh by each).
        QCOMPARE(openWorkspaceReadOnly(qurl).get(), openWorkspaceReadOnly(qurl).get());
        QVERIFY(openWorkspaceReadOnly(db_).get() != openWorkspaceReadOnly(db_).get());
        QVERIFY(Settings().recentWorkspaces().contains(qurl));
        const RunSnapshotPtr s = h.open(qurl, 1);
        QVERIFY(s);
        const int before = int(store::Store(url).run(1).trialsComplete);
        QCOMPARE(h.window.runView()->search()->plottedTrialCount(), before);

        // A worker completes one more trial: the running run's view follows.
        {
            store::Store st(url);
            store::TrialRecord p;
            p.encoding = "live-trial";
            p.map = st.trial(1, 0).map;
            p.source = "acquisition";
            p.memoryBytes = st.trial(1, 0).memoryBytes;
            auto t = st.claimTrial(1, p, 0);
            QVERIFY(t);
            t->objective = 5.0;
            t->metrics = nlohmann::json{{"ppl", 5.0}};
            st.completeTrial(*t);
        }
        QTRY_COMPARE_WITH_TIMEOUT(h.window.runView()->search()->plottedTrialCount(), before + 1, kTimeoutMs);
        QTRY_COMPARE_WITH_TIMEOUT(h.window.runView()->trialsTable()->model()->rowCount(), before + 1, kTimeoutMs);
        h.window.close();
    }

    void comparesTwoRuns()
    {
        QPRUNER_SHARED_FILE(model, "models/stories260K/stories260K.bin");
        QVERIFY(makeStudy(model));
        Harness h;
        QVERIFY(h.open(db_, 1));
        ComparePage* page = h.window.runView()->compare();
        QSignalSpy compared(page, &ComparePage::compared);
        page->compareRuns({1, 2});
        QVERIFY(compared.wait(kTimeoutMs));
        QCOMPARE(compared.last().first().toInt(), 2);
        QCOMPARE(page->checkedRuns(), (QList<qint64>{1, 2}));
    }

    // The responsiveness check: the run is read and plotted while the event loop keeps turning.
    void largeStudyStaysResponsive()
    {
        const fs::path db = fs::path(dir_.path().toStdString()) / "large.db";
        int64_t run = 0;
        {
            store::Store st(db);
            store::RunRecord r;
            r.experimentId = st.experimentId("synthetic");
            r.kind = "search";
            r.name = "100,000 synthetic trials";
            r.config = {{"allocate", {{"budget", "4.5bpw"}, {"candidates", {"nf4", "int8", "bf16"}}}},
                        {"search", {{"objective", "ppl"}, {"trials", 100000}}}};
            run = st.createRun(r);
            st.setRunStatus(run, store::RunStatus::Done);
        }
        constexpr int kTrials = 100000;
        testing::insertSyntheticTrials(db, run, kTrials);

        Harness h;
        QTimer ticker;
        int ticks = 0;
        qint64 maxGapMs = 0;
        QElapsedTimer sinceTick, total;
        connect(&ticker, &QTimer::timeout, this, [&] {
            ++ticks;
            maxGapMs = std::max(maxGapMs, sinceTick.restart());
        });
        ticker.start(5);
        sinceTick.start();
        total.start();
        const RunSnapshotPtr s = h.open(qstr(db), run);
        const qint64 loadMs = total.elapsed();
        ticker.stop();
        QVERIFY2(s, qPrintable(h.errors.join('\n')));
        QCOMPARE(s->trials.size(), size_t(kTrials));
        QCOMPARE(h.window.runView()->search()->plottedTrialCount(), kTrials - kTrials / 10);
        // A synchronous read would have let no tick through between the request and the result.
        QVERIFY2(ticks >= 3, qPrintable(QStringLiteral("only %1 event-loop ticks while loading").arg(ticks)));
        qInfo("100,000 trials: opened and plotted in %lld ms; %d ticks of a 5 ms timer meanwhile, longest gap %lld ms",
              loadMs, ticks, maxGapMs);
    }
};

QTEST_MAIN(TestStudio)
#include "test_studio.moc"

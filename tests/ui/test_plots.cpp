// GUI test of the plot panels (Importance, Search, Compare) and plot export, on hand-made RunSnapshots whose
// numbers are known: the scatter holds exactly the complete trials, the front is paretoFront's, the budget line
// sits where the budget formula puts it, live updates are coalesced into one replot, a click on a point names
// its trial, heatmap cells and bars carry the snapshot's values, and figures are written whole.
#include <QtTest/QtTest>

#include <QCheckBox>
#include <QComboBox>
#include <QElapsedTimer>
#include <QImage>
#include <QRandomGenerator>
#include <QTemporaryDir>

#include <cmath>

#include "common/number_format.h"
#include "plots/compare_panel.h"
#include "plots/heatmap_plot.h"
#include "plots/importance_panel.h"
#include "plots/plot_export.h"
#include "plots/plot_tooltip.h"
#include "plots/run_metrics_table.h"
#include "plots/search_panel.h"
#include "qpruner/pareto.h"
#include "test_data.h"
#include "workspace/run_snapshot.h"

using namespace qpruner;
using namespace qpruner::ui;
using store::TrialState;

namespace {

// Bytes a stories-shaped map holds outside the budgeted linears (embedding, head, norms): the same for every
// trial of a run, which is what the budget line's offset relies on.
constexpr int64_t kUnbudgeted = 68'352;
constexpr int64_t kBudgetBytes = 150'000;

store::TrialRecord trial(int number, TrialState state, int64_t memory, std::optional<double> objective,
                         const std::string& source, int64_t finishOrder)
{
    store::TrialRecord t;
    t.id = 1000 + number;
    t.runId = 7;
    t.number = number;
    t.state = state;
    t.memoryBytes = memory;
    t.budgetedBytes = memory - kUnbudgeted;
    t.objective = objective;
    t.source = source;
    t.finishOrder = finishOrder;
    return t;
}

// Run 7: ten trials, eight complete, one failed, one running. By memory the complete ones are
//   2 (195792, 4.305) front | 3 (196192, 4.3366) | 5 (208240, 4.18) front | 8 (213456, 4.21) manual
//   4 (225904, 4.13) front  | 9 (246384, 3.99) front | 0 (262464, 3.97) front, importance | 1 (262544, 4.01)
RunSnapshot searchSnapshot(const std::string& objective = "ppl")
{
    RunSnapshot s;
    s.run.id = 7;
    s.run.kind = "pipeline";
    s.run.name = "unpruned: 6 bpw search";
    s.run.status = store::RunStatus::Running;
    SearchSettings ss;
    ss.objective = objective;
    ss.budget = "6 bpw";
    ss.budgetBytes = kBudgetBytes;
    ss.trials = 12;
    s.search = ss;
    s.trials = {
        trial(0, TrialState::Complete, 262464, 3.97, "initial:importance", 1),
        trial(1, TrialState::Complete, 262544, 4.01, "initial:sample", 2),
        trial(2, TrialState::Complete, 195792, 4.305, "initial:uniform:nf4", 3),
        trial(3, TrialState::Complete, 196192, 4.3366, "initial:uniform:int4", 4),
        trial(4, TrialState::Complete, 225904, 4.13, "acquisition", 6),
        trial(5, TrialState::Complete, 208240, 4.18, "acquisition", 5),
        trial(6, TrialState::Failed, 201936, std::nullopt, "acquisition", 0),
        trial(7, TrialState::Running, 250336, std::nullopt, "acquisition", 0),
        trial(8, TrialState::Complete, 213456, 4.21, "manual", 7),
        trial(9, TrialState::Complete, 246384, 3.99, "acquisition", 8),
    };
    return s;
}

std::vector<std::pair<double, double>> graphPoints(const QCPGraph* g)
{
    std::vector<std::pair<double, double>> out;
    for (auto it = g->data()->constBegin(); it != g->data()->constEnd(); ++it)
        out.emplace_back(it->key, it->value);
    return out;
}

std::vector<double> barValues(const QCPBars* b)
{
    std::vector<double> out;
    for (auto it = b->data()->constBegin(); it != b->data()->constEnd(); ++it)
        out.push_back(it->value);
    return out;
}

void addScores(RunSnapshot& s, const std::string& metric, const std::vector<double>& raw,
               const std::vector<double>& normalized,
               const std::vector<std::array<double, kLinearModuleCount>>& moduleRaw = {},
               const std::vector<std::array<double, kLinearModuleCount>>& moduleNormalized = {})
{
    for (size_t l = 0; l < raw.size(); ++l)
        s.scores.push_back({metric, int(l), "", raw[l], normalized[l]});
    for (size_t l = 0; l < moduleRaw.size(); ++l)
        for (LinearModule m : kLinearModules)
            s.scores.push_back({metric, int(l), linearModuleName(m), moduleRaw[l][size_t(m)],
                                moduleNormalized[l][size_t(m)]});
}

std::array<double, kLinearModuleCount> moduleRow(double base)
{
    std::array<double, kLinearModuleCount> row{};
    for (int m = 0; m < kLinearModuleCount; ++m)
        row[size_t(m)] = base + 0.01 * m;
    return row;
}

// Run 3 of 3 stories-shaped layers, pruned: layer 0 keeps 6 of 8 heads and 129 of 172 channels, layer 1 all,
// layer 2 half. Metrics: quant-kl (per layer and per module) and bi (per layer only).
RunSnapshot importanceSnapshot()
{
    RunSnapshot s;
    s.run.id = 3;
    s.run.name = "pruned";
    s.run.status = store::RunStatus::Done;
    s.baseModel = testing::storiesShapedConfig(3);
    ModelConfig pruned = *s.baseModel;
    pruned.layers = {LayerShape{6, 3, 129}, LayerShape{8, 4, 172}, LayerShape{4, 2, 86}};
    s.model = pruned;
    store::StageRecord prune;
    prune.name = "prune";
    prune.status = store::RunStatus::Done;
    s.stages.push_back(prune);
    addScores(s, "quant-kl", {0.0125, 0.0031, 0.0467}, {0.2131147540983607, 0.0, 1.0},
              {moduleRow(0.001), moduleRow(0.002), moduleRow(0.004)},
              {moduleRow(0.1), moduleRow(0.3), moduleRow(0.9)});
    addScores(s, "bi", {0.2229, 0.1216, 0.1500}, {1.0, 0.0, 0.2808}, {}, {});
    return s;
}

// A finished run for the comparison: its own trials, scores, chosen map on 3 stories-shaped layers and an
// evaluate stage.
RunSnapshot compareSnapshot(int64_t id, const PrecisionMap& map, double scoreShift, int layers = 3)
{
    RunSnapshot s = searchSnapshot();
    s.run.id = id;
    s.run.name = "compare run " + std::to_string(id);
    s.run.status = store::RunStatus::Done;
    for (store::TrialRecord& t : s.trials) {
        t.runId = id;
        if (t.objective)
            *t.objective += scoreShift;
    }
    s.model = testing::storiesShapedConfig(layers);
    s.baseModel = s.model;
    s.chosenMap = map;
    std::vector<double> raw, norm;
    std::vector<std::array<double, kLinearModuleCount>> mraw, mnorm;
    for (int l = 0; l < layers; ++l) {
        raw.push_back(0.01 * (l + 1) + scoreShift);
        norm.push_back(double(l) / (layers - 1));
        mraw.push_back(moduleRow(0.001 * (l + 1)));
        mnorm.push_back(moduleRow(0.2 * l + scoreShift));
    }
    addScores(s, "quant-kl", raw, norm, mraw, mnorm);
    store::StageRecord eval;
    eval.name = "evaluate";
    eval.status = store::RunStatus::Done;
    eval.result = nlohmann::json::parse(R"({"ppl": [{"source": "tinystories", "ppl": 11.849097339141172,
        "windows": 40}, {"source": "wikitext2", "ppl": 82.3228357024883, "windows": 20}],
        "tasks": [{"task": "arc_easy", "acc": 0.3, "acc_norm": 0.32, "items": 50}],
        "memory": {"total_bytes": 222556}})");
    s.stages.push_back(eval);
    return s;
}

QByteArray head(const QString& path, int n)
{
    QFile f(path);
    return f.open(QIODevice::ReadOnly) ? f.read(n) : QByteArray();
}

} // namespace

class TestPlots : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void initTestCase()
    {
        QStandardPaths::setTestModeEnabled(true);
        QLocale::setDefault(QLocale(QLocale::English, QLocale::UnitedStates));
    }

    void scatterHoldsTheCompleteTrials()
    {
        SearchPanel panel;
        const RunSnapshot s = searchSnapshot();
        panel.setRun(s);
        QCOMPARE(panel.plottedTrialCount(), 8); // 10 trials: one failed, one running
        // Every complete trial at (memoryBytes, objective), sorted by memory.
        const std::vector<std::pair<double, double>> expected = {
            {195792, 4.305}, {196192, 4.3366}, {208240, 4.18}, {213456, 4.21},
            {225904, 4.13},  {246384, 3.99},   {262464, 3.97}, {262544, 4.01}};
        QVERIFY(graphPoints(panel.trialsGraph()) == expected);
        QVERIFY(panel.caption().contains(QStringLiteral("<b>8</b> complete of 12 asked, 1 running")));
        QVERIFY(panel.caption().contains(QStringLiteral("1 failed")));
        // Best within the budget line (218,352 bytes): trial 5, 4.18 at 208,240 bytes.
        QVERIFY2(panel.caption().contains(QStringLiteral("trial 5, ppl 4.18 at")), qPrintable(panel.caption()));
        QCOMPARE(panel.scatterPlot()->yAxis->label(), QStringLiteral("Perplexity (lower is better)"));
        QVERIFY(!panel.caption().contains(QStringLiteral("exhausted")));
        // A search that ran out of feasible maps says so, rather than looking cut short at 8 of 12.
        RunSnapshot done = s;
        store::StageRecord searchStage;
        searchStage.name = "search";
        searchStage.status = store::RunStatus::Done;
        searchStage.result = {{"trials_complete", 8}, {"trials_failed", 1}, {"exhausted", true}};
        done.stages.push_back(searchStage);
        panel.updateRun(done); // applied after the panel's coalescing delay
        QTRY_VERIFY2(panel.caption().contains(QStringLiteral("<b>search space exhausted</b>: every feasible map was evaluated")),
                     qPrintable(panel.caption()));
        QCOMPARE(panel.scatterPlot()->xAxis->label(), QStringLiteral("Memory (KiB)"));
    }

    // A multi-fidelity search's cheap scores are counted but not plotted, and never on the front: a 1/4 score
    // better than every full one changes nothing.
    void lowFidelityScoresStayOffThePlot()
    {
        SearchPanel panel;
        RunSnapshot s = searchSnapshot();
        auto low = trial(10, TrialState::Complete, 190000, 1.5, "acquisition", 9);
        low.fidelity = 0.25;
        low.tokens = 512;
        s.trials.push_back(low);
        panel.setRun(s);
        QCOMPARE(panel.plottedTrialCount(), 8);
        QVERIFY2(panel.caption().contains(QStringLiteral("1 scored at lower fidelity (not plotted)")),
                 qPrintable(panel.caption()));
        for (const auto& [m, o] : graphPoints(panel.frontGraph()))
            QVERIFY(o > 1.5);
    }

    void frontIsParetoFront()
    {
        SearchPanel panel;
        const RunSnapshot s = searchSnapshot();
        panel.setRun(s);
        std::vector<ObjectivePoint> points;
        for (const auto& t : s.trials)
            if (t.state == TrialState::Complete)
                points.push_back({double(t.memoryBytes), *t.objective});
        std::vector<std::pair<double, double>> expected;
        for (size_t i : paretoFront(points))
            expected.emplace_back(points[i].memory, points[i].objective);
        QCOMPARE(expected.size(), size_t(5));
        QVERIFY(graphPoints(panel.frontGraph()) == expected);
        QCOMPARE(panel.frontGraph()->lineStyle(), QCPGraph::lsStepLeft);
        // Trials 3, 8 and 1 are dominated.
        QCOMPARE(expected.front(), std::make_pair(195792.0, 4.305));
        QCOMPARE(expected.back(), std::make_pair(262464.0, 3.97));
    }

    void budgetLineAndMarkers()
    {
        SearchPanel panel;
        panel.setRun(searchSnapshot());
        // budgetBytes + (memoryBytes - budgetedBytes) of any trial.
        QVERIFY(panel.budgetLineX().has_value());
        QCOMPARE(*panel.budgetLineX(), double(kBudgetBytes + kUnbudgeted));
        QCOMPARE(*panel.budgetLineX(), 218352.0);

        QVERIFY((graphPoints(panel.importanceGraph()) == std::vector<std::pair<double, double>>{{262464, 3.97}}));
        QVERIFY((graphPoints(panel.uniformGraph()) ==
                 std::vector<std::pair<double, double>>{{195792, 4.305}, {196192, 4.3366}}));
        QVERIFY((graphPoints(panel.manualGraph()) == std::vector<std::pair<double, double>>{{213456, 4.21}}));
        // Labels: "importance-aware" and each baseline's format, at its trial's coordinates.
        QMap<QString, QPointF> labels;
        for (int i = 0; i < panel.scatterPlot()->itemCount(); ++i)
            if (auto* text = qobject_cast<QCPItemText*>(panel.scatterPlot()->item(i))) {
                // Marker labels hang off a tracer at their trial's coordinates.
                auto* anchor = dynamic_cast<QCPItemPosition*>(text->position->parentAnchor());
                labels.insert(text->text(), anchor ? anchor->coords() : text->position->coords());
            }
        QCOMPARE(labels.value(QStringLiteral("importance-aware")), QPointF(262464, 3.97));
        QCOMPARE(labels.value(QStringLiteral("nf4")), QPointF(195792, 4.305));
        QCOMPARE(labels.value(QStringLiteral("int4")), QPointF(196192, 4.3366));
        QVERIFY(labels.contains(QStringLiteral("budget 6 bpw")));
        // The best trial within the budget line (218,352 bytes) is starred: trial 5.
        QVERIFY((graphPoints(panel.bestGraph()) == std::vector<std::pair<double, double>>{{208240, 4.18}}));
        // The legend names only what is drawn: trials, front, best, importance-aware, uniform, manual.
        QCOMPARE(panel.scatterPlot()->legend->itemCount(), 6);

        // Without a known budget there is no line.
        RunSnapshot noBudget = searchSnapshot();
        noBudget.search->budgetBytes = 0;
        panel.setRun(noBudget);
        QVERIFY(!panel.budgetLineX().has_value());
        // ... and the best trial is the best of all: trial 0 at 3.97.
        QVERIFY((graphPoints(panel.bestGraph()) == std::vector<std::pair<double, double>>{{262464, 3.97}}));
    }

    void accuracyIsShownAsAccuracy()
    {
        SearchPanel panel;
        RunSnapshot s = searchSnapshot("accuracy");
        for (auto& t : s.trials)
            if (t.objective)
                *t.objective = *t.objective / 10; // 1 - accuracy, e.g. 0.397
        panel.setRun(s);
        QCOMPARE(panel.scatterPlot()->yAxis->label(), QStringLiteral("Accuracy (higher is better)"));
        const auto points = graphPoints(panel.trialsGraph());
        QCOMPARE(points.size(), size_t(8));
        QCOMPARE(points.front().second, 1.0 - 0.4305);
        QCOMPARE(graphPoints(panel.importanceGraph()).front().second, 1.0 - 0.397);
    }

    void hypervolumeIsTheTrace()
    {
        SearchPanel panel;
        const RunSnapshot s = searchSnapshot();
        panel.setRun(s);
        // Complete trials in finish order: 0, 1, 2, 3, 5, 4, 8, 9.
        std::vector<const store::TrialRecord*> done;
        for (const auto& t : s.trials)
            if (t.state == TrialState::Complete)
                done.push_back(&t);
        std::sort(done.begin(), done.end(), [](auto* a, auto* b) { return a->finishOrder < b->finishOrder; });
        std::vector<ObjectivePoint> ordered;
        for (auto* t : done)
            ordered.push_back({double(t->memoryBytes), *t->objective});
        const ObjectivePoint reference{1.1 * 262544, 1.1 * 4.3366};
        QCOMPARE(panel.points().reference.memory, reference.memory);
        QCOMPARE(panel.points().reference.objective, reference.objective);
        const std::vector<double> trace = hypervolumeTrace(ordered, reference);
        const double scale = (reference.memory - 195792) * (reference.objective - 3.97);
        const auto hv = graphPoints(panel.hypervolumeGraph());
        QCOMPARE(hv.size(), size_t(8));
        for (size_t i = 0; i < hv.size(); ++i) {
            QCOMPARE(hv[i].first, double(i + 1));
            QCOMPARE(hv[i].second, trace[i] / scale);
        }
        QVERIFY(hv.front().second > 0);
        QVERIFY(hv.back().second > hv.front().second);
        QVERIFY(hv.back().second < 1.0);
    }

    void liveUpdatesAreCoalesced()
    {
        SearchPanel panel;
        panel.resize(900, 700);
        panel.show();
        QVERIFY(QTest::qWaitForWindowExposed(&panel));
        RunSnapshot s = searchSnapshot();
        panel.setRun(s);
        QTest::qWait(60);
        QSignalSpy replots(panel.scatterPlot(), &QCustomPlot::afterReplot);

        // A burst of 10 re-reads, each with one more complete trial.
        for (int k = 0; k < 10; ++k) {
            s.trials.push_back(trial(10 + k, TrialState::Complete, 200000 + 1000 * k, 4.5 - 0.01 * k,
                                     "acquisition", 9 + k));
            panel.updateRun(s);
        }
        QCOMPARE(replots.count(), 0); // nothing is drawn inside the burst
        QCOMPARE(panel.plottedTrialCount(), 8);
        QTRY_COMPARE(panel.plottedTrialCount(), 18);
        QTest::qWait(120);
        QCOMPARE(replots.count(), 1);
        QCOMPARE(panel.hypervolumeGraph()->data()->size(), 18);

        // The same trials again (the lead re-read an idle run): nothing is rebuilt or redrawn.
        for (int k = 0; k < 10; ++k)
            panel.updateRun(s);
        QTest::qWait(120);
        QCOMPARE(replots.count(), 1);

        // Only the run's status changed: the caption follows, the plot is not redrawn.
        s.run.status = store::RunStatus::Done;
        panel.updateRun(s);
        QTest::qWait(120);
        QCOMPARE(replots.count(), 1);
        QVERIFY(!panel.caption().contains(QStringLiteral("(running)")));

        // A trial failing changes the caption's counts and the plot.
        s.trials[7].state = TrialState::Failed;
        panel.updateRun(s);
        QTRY_COMPARE(replots.count(), 2);
        QVERIFY(panel.caption().contains(QStringLiteral("2 failed")));
    }

    void clickActivatesTrial()
    {
        SearchPanel panel;
        panel.resize(900, 700);
        panel.show();
        QVERIFY(QTest::qWaitForWindowExposed(&panel));
        panel.setRun(searchSnapshot());
        QSignalSpy activated(&panel, &SearchPanel::trialActivated);
        QCustomPlot* plot = panel.scatterPlot();
        const QPoint pos(int(std::lround(plot->xAxis->coordToPixel(246384))),
                         int(std::lround(plot->yAxis->coordToPixel(3.99))));
        QCOMPARE(panel.trialPosition(9), pos);
        QTest::mouseClick(plot, Qt::LeftButton, {}, pos + QPoint(2, -1)); // near enough
        QCOMPARE(activated.count(), 1);
        QCOMPARE(activated.at(0).at(0).toLongLong(), 7LL);
        QCOMPARE(activated.at(0).at(1).toInt(), 9);
        QCOMPARE(panel.selectedTrial(), 9);

        // The highlight sits on that trial.
        const QCPGraph* highlight = nullptr;
        for (int i = 0; i < plot->graphCount(); ++i)
            if (plot->graph(i)->name().isEmpty())
                highlight = plot->graph(i);
        QVERIFY(highlight);
        QVERIFY((graphPoints(highlight) == std::vector<std::pair<double, double>>{{246384, 3.99}}));

        // Trial 2, the leftmost; then empty space names nothing.
        QTest::mouseClick(plot, Qt::LeftButton, {}, panel.trialPosition(2));
        QCOMPARE(activated.count(), 2);
        QCOMPARE(activated.at(1).at(1).toInt(), 2);
        const QPoint empty(plot->axisRect()->left() + 5, plot->axisRect()->bottom() - 5);
        QTest::mouseClick(plot, Qt::LeftButton, {}, empty);
        QCOMPARE(activated.count(), 2);

        // The tooltip of a point names its trial and exact values.
        auto* tip = plot->findChild<PlotToolTip*>();
        QVERIFY(tip);
        const QString text = tip->textAt(panel.trialPosition(5));
        QVERIFY2(text.contains(QStringLiteral("trial 5")) && text.contains(QStringLiteral("208,240 bytes")) &&
                     text.contains(QStringLiteral("ppl 4.18")) && text.contains(QStringLiteral("Pareto front")),
                 qPrintable(text));
    }

    void hundredThousandTrials()
    {
        RunSnapshot s = searchSnapshot();
        s.trials.clear();
        QRandomGenerator rng(1234);
        const int n = 100'000;
        s.trials.reserve(n);
        for (int i = 0; i < n; ++i) {
            const int64_t memory = 150'000 + int64_t(rng.bounded(150'000));
            const double objective = 3.5 + 1.5e5 / double(memory) + rng.generateDouble() * 0.5;
            const bool failed = i % 100 == 99;
            s.trials.push_back(trial(i, failed ? TrialState::Failed : TrialState::Complete, memory,
                                     failed ? std::nullopt : std::optional<double>(objective),
                                     i == 0 ? "initial:importance" : "acquisition", failed ? 0 : i + 1));
        }
        SearchPanel panel;
        panel.resize(1000, 700);
        panel.show();
        QVERIFY(QTest::qWaitForWindowExposed(&panel));
        QElapsedTimer timer;
        timer.start();
        panel.setRun(s);
        const qint64 setRunMs = timer.elapsed();
        timer.restart();
        panel.scatterPlot()->replot();
        qDebug("setRun with %d trials: %lld ms (one more scatter replot: %lld ms)", n, setRunMs,
               qint64(timer.elapsed()));
        QCOMPARE(panel.plottedTrialCount(), n - n / 100);
        QCOMPARE(panel.hypervolumeGraph()->data()->size(), n - n / 100);
        QVERIFY(panel.trialsGraph()->adaptiveSampling());
    }

    void importanceBarsAndHeatmap()
    {
        ImportancePanel panel;
        panel.resize(900, 800);
        panel.show();
        QVERIFY(QTest::qWaitForWindowExposed(&panel));
        const RunSnapshot s = importanceSnapshot();
        panel.setRun(s);
        QCOMPARE(panel.metricSelector()->count(), 2);
        QCOMPARE(panel.metric(), QStringLiteral("quant-kl"));
        QVERIFY(panel.normalized());
        QVERIFY((barValues(panel.bars()) == std::vector<double>{0.2131147540983607, 0.0, 1.0}));
        QVERIFY(barValues(panel.bars()) == s.layerScores("quant-kl", true));

        panel.setNormalized(false);
        QVERIFY((barValues(panel.bars()) == std::vector<double>{0.0125, 0.0031, 0.0467}));

        // Heatmap: layers x q..down with the module scores.
        QVERIFY(panel.moduleHeatmapShown());
        HeatmapPlot* heatmap = panel.moduleHeatmap();
        QCOMPARE(heatmap->rowCount(), 3);
        QCOMPARE(heatmap->columnCount(), kLinearModuleCount);
        QCOMPARE(heatmap->cellValue(2, int(LinearModule::Down)), moduleRow(0.004)[size_t(LinearModule::Down)]); // raw
        panel.setNormalized(true);
        QCOMPARE(heatmap->cellValue(1, int(LinearModule::K)), moduleRow(0.3)[size_t(LinearModule::K)]);
        QCOMPARE(heatmap->cellValue(0, int(LinearModule::Q)), 0.1);
        QCOMPARE(heatmap->cellValue(2, int(LinearModule::Up)), moduleRow(0.9)[size_t(LinearModule::Up)]);
        QCOMPARE(heatmap->cellValue(2, int(LinearModule::Up)), s.moduleScores("quant-kl")[2][size_t(LinearModule::Up)]);

        // Tooltips tell the exact raw and normalised values, on the bar and on the cell under the mouse.
        panel.barsPlot()->replot();
        const QString layerTip = panel.layerToolTip(2);
        QVERIFY2(layerTip.contains(QStringLiteral("layer 2")) && layerTip.contains(QStringLiteral("quant-kl raw 0.0467")) &&
                     layerTip.contains(QStringLiteral("normalised 1")),
                 qPrintable(layerTip));
        const QPoint barPos(int(panel.barsPlot()->xAxis->coordToPixel(2)), int(panel.barsPlot()->yAxis->coordToPixel(0.5)));
        QCOMPARE(panel.barsPlot()->findChild<PlotToolTip*>()->textAt(barPos), layerTip);
        heatmap->replot();
        const QPoint cellPos = heatmap->cellCenter(1, int(LinearModule::Gate));
        QCOMPARE(heatmap->cellAt(cellPos), QPoint(int(LinearModule::Gate), 1));
        const QString cellTip = heatmap->findChild<PlotToolTip*>()->textAt(cellPos);
        QVERIFY2(cellTip.contains(QStringLiteral("layer 1, gate")) && cellTip.contains(QStringLiteral("raw 0.042")) &&
                     cellTip.contains(QStringLiteral("normalised 0.34")),
                 qPrintable(cellTip));

        // bi has no module scores: a note instead of the heatmap.
        panel.setMetric(QStringLiteral("bi"));
        QVERIFY(!panel.moduleHeatmapShown());
        QVERIFY((barValues(panel.bars()) == std::vector<double>{1.0, 0.0, 0.2808}));
    }

    void pruningKeptCounts()
    {
        ImportancePanel panel;
        panel.setRun(importanceSnapshot());
        QVERIFY(panel.pruningShown());
        QVERIFY((barValues(panel.headsKeptBars()) == std::vector<double>{75.0, 100.0, 50.0}));
        QCOMPARE(barValues(panel.channelsKeptBars()).at(0), 100.0 * 129 / 172);
        QCOMPARE(barValues(panel.channelsKeptBars()).at(2), 50.0);
        const QString tip = panel.pruningToolTip(0);
        QVERIFY2(tip.contains(QStringLiteral("attention heads 6 / 8 (75.0%)")) &&
                     tip.contains(QStringLiteral("KV heads 3 / 4")) &&
                     tip.contains(QStringLiteral("FFN channels 129 / 172 (75.0%)")),
                 qPrintable(tip));

        RunSnapshot unpruned = importanceSnapshot();
        unpruned.stages.clear();
        unpruned.model = unpruned.baseModel;
        panel.setRun(unpruned);
        QVERIFY(!panel.pruningShown());
        QVERIFY(panel.headsKeptBars()->data()->isEmpty());
    }

    void compareRuns()
    {
        PrecisionMap a(parseQuantSpec("int8"));
        a.setLayer(1, parseQuantSpec("nf4"));
        PrecisionMap b(parseQuantSpec("nf4"));
        b.setLayer(2, parseQuantSpec("bf16"));
        b.setLayerModule(0, LinearModule::Q, parseQuantSpec("int2"));
        PrecisionMap c(parseQuantSpec("int4"));
        std::vector<RunSnapshot> runs = {compareSnapshot(11, a, 0.0), compareSnapshot(12, b, 0.05),
                                               compareSnapshot(13, c, 0.1)};
        store::StageRecord recovered; // run 12 was recovered (finetune stage done)
        recovered.name = "finetune";
        recovered.status = store::RunStatus::Done;
        recovered.result = {{"train", {{"steps", 20}, {"best_validation_loss", 1.23456}}}};
        runs[1].stages.push_back(recovered);
        runs[1].search->strategy = "evopress"; // a study run with several strategies: the legend says which
        runs[2].search->strategy = "lagrangian";
        ComparePanel panel;
        panel.resize(1100, 700);
        panel.setRuns(runs);

        // One front per run, each exactly paretoFront of its complete trials, one legend entry per run.
        QCOMPARE(panel.frontGraphs().size(), 3);
        QCOMPARE(panel.frontsPlot()->legend->itemCount(), 3);
        for (int r = 0; r < 3; ++r) {
            auto* item = qobject_cast<QCPPlottableLegendItem*>(panel.frontsPlot()->legend->item(r));
            QVERIFY(item);
            const char* strategy[] = {"bayes", "evopress", "lagrangian"};
            QCOMPARE(item->plottable()->name(),
                     QStringLiteral("run %1: compare run %1 \u00b7 %2").arg(11 + r).arg(QLatin1String(strategy[r])));
            std::vector<ObjectivePoint> points;
            for (const auto& t : runs[size_t(r)].trials)
                if (t.state == TrialState::Complete)
                    points.push_back({double(t.memoryBytes), *t.objective});
            std::vector<std::pair<double, double>> expected;
            for (size_t i : paretoFront(points))
                expected.emplace_back(points[i].memory, points[i].objective);
            QVERIFY(graphPoints(panel.frontGraphs()[r]) == expected);
        }
        QVERIFY(panel.frontGraphs()[0]->pen().color() != panel.frontGraphs()[1]->pen().color());

        // Map difference: code bits of run 12 minus run 11, per cell.
        HeatmapPlot* diff = panel.mapDifference();
        QVERIFY(diff);
        QCOMPARE(diff->rowCount(), 3);
        for (int l = 0; l < 3; ++l)
            for (LinearModule m : kLinearModules)
                QCOMPARE(diff->cellValue(l, int(m)), double(panel.mapBits(1, l, m) - panel.mapBits(0, l, m)));
        QCOMPARE(diff->cellValue(0, int(LinearModule::Q)), -6.0);   // int2 - int8
        QCOMPARE(diff->cellValue(0, int(LinearModule::Down)), -4.0); // nf4 - int8
        QCOMPARE(diff->cellValue(1, int(LinearModule::V)), 0.0);     // nf4 - nf4
        QCOMPARE(diff->cellValue(2, int(LinearModule::K)), 8.0);     // bf16 - int8
        QVERIFY(panel.mapHeatmap(0) && panel.mapHeatmap(1) && panel.mapHeatmap(2));

        // Importance difference: normalised module score of run 12 minus run 11.
        QCOMPARE(panel.metric(), QStringLiteral("quant-kl"));
        HeatmapPlot* idiff = panel.importanceDifference();
        QVERIFY(idiff);
        QCOMPARE(idiff->columnCount(), kLinearModuleCount);
        QCOMPARE(idiff->cellValue(2, int(LinearModule::Up)),
                 runs[1].moduleScores("quant-kl")[2][size_t(LinearModule::Up)] -
                     runs[0].moduleScores("quant-kl")[2][size_t(LinearModule::Up)]);
        QCOMPARE(panel.importanceHeatmap(1)->cellValue(1, int(LinearModule::O)), moduleRow(0.2 + 0.05)[size_t(LinearModule::O)]);

        // Metrics table.
        RunMetricsTable* table = panel.metricsTable();
        QCOMPARE(table->rowCount(), 3);
        QCOMPARE(table->cellText(0, QStringLiteral("Trials complete")), QStringLiteral("8"));
        QCOMPARE(table->cellText(0, QStringLiteral("Best within budget")), QStringLiteral("ppl 4.18"));
        QCOMPARE(table->cellText(1, QStringLiteral("Best within budget")), QStringLiteral("ppl 4.23"));
        QCOMPARE(table->cellText(0, QStringLiteral("Memory of best")), QStringLiteral("203.36 KiB")); // 208,240 B
        QCOMPARE(table->cellText(0, QStringLiteral("Budget")), QStringLiteral("6 bpw (213.23 KiB in all)"));
        QCOMPARE(table->cellText(0, QStringLiteral("ppl tinystories")), QStringLiteral("11.8491"));
        QCOMPARE(table->cellText(2, QStringLiteral("ppl wikitext2")), QStringLiteral("82.3228"));
        QCOMPARE(table->cellText(1, QStringLiteral("acc arc_easy")), QStringLiteral("0.300"));
        QCOMPARE(table->cellText(0, QStringLiteral("Evaluated memory")), QStringLiteral("217.34 KiB")); // 222,556 B
        QCOMPARE(table->cellText(0, QStringLiteral("Status")), QStringLiteral("done"));
        QCOMPARE(table->cellText(0, QStringLiteral("Recovered")), QStringLiteral("no"));
        QCOMPARE(table->cellText(1, QStringLiteral("Recovered")), QStringLiteral("yes, 20 steps, val loss 1.2346"));

        // Sorting by a number column orders by value (4.28 > 4.23 > 4.18), and the Run column restores the order.
        const int best = table->columnOf(QStringLiteral("Best within budget"));
        table->sortByColumn(best, Qt::DescendingOrder);
        QCOMPARE(table->cellText(0, QStringLiteral("Best within budget")), QStringLiteral("ppl 4.28"));
        QCOMPARE(table->cellText(1, QStringLiteral("Best within budget")), QStringLiteral("ppl 4.23"));
        QCOMPARE(table->cellText(2, QStringLiteral("Best within budget")), QStringLiteral("ppl 4.18"));
        table->sortByColumn(0, Qt::AscendingOrder);
        QCOMPARE(table->cellText(1, QStringLiteral("Best within budget")), QStringLiteral("ppl 4.23"));

        // CSV: the header, one line per run; numbers at full precision (sizes in bytes), text as shown.
        QTemporaryDir csvDir;
        const QString csvPath = csvDir.filePath(QStringLiteral("compare.csv"));
        QVERIFY(panel.exportMetricsCsv(csvPath));
        QFile csvFile(csvPath);
        QVERIFY(csvFile.open(QIODevice::ReadOnly));
        const QStringList lines = QString::fromUtf8(csvFile.readAll()).split(QLatin1Char('\n'), Qt::SkipEmptyParts);
        QCOMPARE(lines.size(), 4);
        QVERIFY2(lines[0].startsWith(QStringLiteral("Run,Kind,Status,Trials complete,Best within budget,Memory of best,"
                                                    "Budget,Evaluated memory,Recovered,ppl tinystories")),
                 qPrintable(lines[0]));
        QVERIFY2(lines[1].contains(QStringLiteral(",8,4.18,208240,6 bpw (213.23 KiB in all),222556,no,"
                                                  "11.849097339141172,")),
                 qPrintable(lines[1]));
        QString error;
        QVERIFY(!panel.exportMetricsCsv(csvDir.filePath(QStringLiteral("missing/compare.csv")), &error));
        QVERIFY2(error.contains(QStringLiteral("missing/compare.csv")), qPrintable(error));

        // Layers aligned by index when the counts differ: the difference covers the common layers.
        panel.setRuns({compareSnapshot(11, a, 0.0), compareSnapshot(14, PrecisionMap(parseQuantSpec("int4")), 0.0, 2)});
        QCOMPARE(panel.mapDifference()->rowCount(), 2);
        QCOMPARE(panel.mapDifference()->cellValue(1, int(LinearModule::Gate)), 0.0); // int4 - nf4
        QCOMPARE(panel.mapDifference()->cellValue(0, int(LinearModule::Gate)), -4.0); // int4 - int8
    }

    void savePlotWritesWholeFigures()
    {
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        SearchPanel panel;
        panel.resize(800, 640);
        panel.show();
        QVERIFY(QTest::qWaitForWindowExposed(&panel));
        panel.setRun(searchSnapshot());
        QCustomPlot* plot = panel.scatterPlot();
        QString error;

        const QString png = dir.filePath(QStringLiteral("front.png"));
        QVERIFY2(savePlot(plot, png, &error), qPrintable(error));
        const QImage image(png);
        QVERIFY(!image.isNull());
        QCOMPARE(image.size(), plot->size());

        const QString svg = dir.filePath(QStringLiteral("front.svg"));
        QVERIFY2(savePlot(plot, svg, &error), qPrintable(error));
        const QByteArray svgHead = head(svg, 64).trimmed();
        QVERIFY2(svgHead.startsWith("<?xml") || svgHead.startsWith("<svg"), svgHead.constData());
        QFile svgFile(svg);
        QVERIFY(svgFile.open(QIODevice::ReadOnly));
        QVERIFY(svgFile.readAll().contains("</svg>"));

        const QString pdf = dir.filePath(QStringLiteral("front.pdf"));
        QVERIFY2(savePlot(panel.hypervolumePlot(), pdf, &error), qPrintable(error));
        QVERIFY(head(pdf, 5).startsWith("%PDF-"));
        QVERIFY(QFileInfo(pdf).size() > 1000);

        // Exactly the three figures: no temporary file is left behind.
        QCOMPARE(QDir(dir.path()).entryList(QDir::Files).size(), 3);

        const QString unwritable = QStringLiteral("/nonexistent-qpruner-dir/sub/front.png");
        QVERIFY(!savePlot(plot, unwritable, &error));
        QVERIFY2(error.contains(unwritable), qPrintable(error));
        QVERIFY(!savePlot(plot, dir.filePath(QStringLiteral("front.bmp")), &error));
        QVERIFY2(error.contains(QStringLiteral("front.bmp")) && error.contains(QStringLiteral(".png")), qPrintable(error));

        // A failed save leaves an existing figure as it was.
        const QByteArray before = head(png, 1 << 20);
        QVERIFY(!savePlot(plot, png + QStringLiteral("/x.png"), &error));
        QCOMPARE(head(png, 1 << 20), before);
    }

    void everyPlotHasTheSaveMenu()
    {
        SearchPanel search;
        ImportancePanel importance;
        ComparePanel compare;
        importance.setRun(importanceSnapshot());
        compare.setRuns({compareSnapshot(11, PrecisionMap(parseQuantSpec("int8")), 0.0),
                         compareSnapshot(12, PrecisionMap(parseQuantSpec("nf4")), 0.1)});
        QList<QCustomPlot*> all = search.plots() + importance.plots() + compare.plots();
        QCOMPARE(search.plots().size(), 2);
        QCOMPARE(importance.plots().size(), 3);
        QCOMPARE(compare.plots().size(), 8); // fronts, tasks, 2 importance + difference, 2 maps + difference
        for (QCustomPlot* p : all) {
            QCOMPARE(p->contextMenuPolicy(), Qt::CustomContextMenu);
            QVERIFY(!p->objectName().isEmpty());
        }
    }
};

QTEST_MAIN(TestPlots)
#include "test_plots.moc"

// The Compare tab: two or more runs side by side. Their Pareto fronts overlaid (one colour per run), per-run
// heatmaps of layer importance and of the chosen precision map with a difference view (second run minus the
// first, layers aligned by index), and a table of their metrics.
#pragma once

#include <vector>

#include <QList>
#include <QWidget>

#include "plots/trial_points.h"
#include "workspace/run_snapshot.h"

class QComboBox;
class QHBoxLayout;
class QLabel;
class QTabWidget;
class QCustomPlot;
class QCPGraph;
class QCPBars;

namespace qpruner::ui {

class HeatmapPlot;
class RunMetricsTable;

class ComparePanel : public QWidget {
    Q_OBJECT
public:
    explicit ComparePanel(QWidget* parent = nullptr);

    // Two or more runs (fewer: a note asks for more).
    void setRuns(const std::vector<RunSnapshot>& runs);
    void clear();

    // Metric shown in the importance heatmaps (ignored unless every run has it).
    void setMetric(const QString& metric);
    QString metric() const;

    QList<QCustomPlot*> plots() const;
    QTabWidget* tabs() const { return tabs_; }
    QCustomPlot* frontsPlot() const { return frontsPlot_; }
    // One step line per run, in run order.
    const QList<QCPGraph*>& frontGraphs() const { return frontGraphs_; }
    QComboBox* metricSelector() const { return metricBox_; }
    // Per-run heatmaps (null for a run without scores / without a readable map) and the differences (null
    // with fewer than two such runs).
    HeatmapPlot* importanceHeatmap(int run) const;
    HeatmapPlot* importanceDifference() const { return importanceDiff_; }
    HeatmapPlot* mapHeatmap(int run) const;
    HeatmapPlot* mapDifference() const { return mapDiff_; }
    // Code bits of layer/module in run `run`'s chosen map (-1 when unknown).
    int mapBits(int run, int layer, LinearModule module) const;
    RunMetricsTable* metricsTable() const { return table_; }
    // Per task, one bar per run: the accuracy its latest evaluation measured (RunMetricsTable's numbers).
    QCustomPlot* tasksPlot() const { return tasksPlot_; }
    const QList<QCPBars*>& taskBars() const { return taskBars_; } // one per run with task results, in run order
    // Writes the metrics table as CSV (atomically); false with a message naming the file otherwise.
    bool exportMetricsCsv(const QString& path, QString* error = nullptr) const;

private:
    void showFronts();
    void showImportance();
    void showMaps();
    void showTasks();
    QWidget* buildRow(QHBoxLayout*& row, QLabel*& note);
    void clearRow(QHBoxLayout* row);

    QTabWidget* tabs_ = nullptr;
    QLabel* frontsNote_ = nullptr;
    QCustomPlot* frontsPlot_ = nullptr;
    QList<QCPGraph*> frontGraphs_;
    QComboBox* metricBox_ = nullptr;
    QLabel* importanceNote_ = nullptr;
    QHBoxLayout* importanceRow_ = nullptr;
    QLabel* mapNote_ = nullptr;
    QHBoxLayout* mapRow_ = nullptr;
    QLabel* formatLegend_ = nullptr;
    RunMetricsTable* table_ = nullptr;
    QLabel* tasksNote_ = nullptr;
    QCustomPlot* tasksPlot_ = nullptr;
    QList<QCPBars*> taskBars_;

    std::vector<RunSnapshot> runs_;
    std::vector<TrialPoints> points_;
    std::vector<std::vector<LayerSpecs>> maps_; // resolved chosen maps (empty when unknown)
    QList<HeatmapPlot*> importanceMaps_;        // per run, null where absent
    HeatmapPlot* importanceDiff_ = nullptr;
    QList<HeatmapPlot*> mapMaps_;
    HeatmapPlot* mapDiff_ = nullptr;
};

} // namespace qpruner::ui

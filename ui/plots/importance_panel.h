// The Importance tab: a run's per-layer importance as bars for the chosen metric (raw or normalised), the
// per-module scores as a layers x modules heatmap when the metric has them, and, when the run pruned, how many
// attention heads and FFN channels each layer kept. Every bar and cell tells its exact values on hover.
#pragma once

#include <optional>
#include <vector>

#include <QList>
#include <QWidget>

#include "workspace/run_snapshot.h"

class QCheckBox;
class QComboBox;
class QLabel;
class QStackedWidget;
class QCustomPlot;
class QCPBars;
class QCPTextElement;

namespace qpruner::ui {

class HeatmapPlot;

class ImportancePanel : public QWidget {
    Q_OBJECT
public:
    explicit ImportancePanel(QWidget* parent = nullptr);

    void setRun(const RunSnapshot& snapshot);
    void clear();

    // Selects a metric of the run (ignored when absent) / raw or normalised values.
    void setMetric(const QString& metric);
    QString metric() const;
    void setNormalized(bool normalized);
    bool normalized() const;

    QList<QCustomPlot*> plots() const;
    QComboBox* metricSelector() const { return metricBox_; }
    QCustomPlot* barsPlot() const { return barsPlot_; }
    QCPBars* bars() const { return bars_; }
    HeatmapPlot* moduleHeatmap() const { return heatmap_; }
    bool moduleHeatmapShown() const;
    QCustomPlot* pruningPlot() const { return pruningPlot_; }
    QCPBars* headsKeptBars() const { return headsKept_; }   // % of attention heads kept, per layer
    QCPBars* channelsKeptBars() const { return ffnKept_; }  // % of FFN channels kept, per layer
    bool pruningShown() const;
    // Tooltip texts (also shown on hover).
    QString layerToolTip(int layer) const;
    QString pruningToolTip(int layer) const;

private:
    void buildBars();
    void buildPruning();
    void showMetric();
    void showPruning();

    QComboBox* metricBox_ = nullptr;
    QCheckBox* normalizedBox_ = nullptr;
    QStackedWidget* pages_ = nullptr;     // the plots, or a note when the run has no scores
    QLabel* emptyNote_ = nullptr;
    QCustomPlot* barsPlot_ = nullptr;
    QCPTextElement* barsTitle_ = nullptr;
    QCPBars* bars_ = nullptr;
    QStackedWidget* heatmapSlot_ = nullptr;
    HeatmapPlot* heatmap_ = nullptr;
    QLabel* heatmapNote_ = nullptr;
    QStackedWidget* pruningSlot_ = nullptr;
    QCustomPlot* pruningPlot_ = nullptr;
    QCPBars* headsKept_ = nullptr;
    QCPBars* ffnKept_ = nullptr;
    QLabel* pruningNote_ = nullptr;

    RunSnapshot scores_; // only its scores: RunSnapshot knows how to read them per metric
    std::optional<ModelConfig> baseModel_;
    std::optional<ModelConfig> model_;
    bool pruned_ = false;
    QString modelError_;
    std::vector<double> raw_;         // the shown metric per layer
    std::vector<double> normalized_;
};

} // namespace qpruner::ui

// Importance panel: bars, module heatmap and pruning result for one run.
#include "plots/importance_panel.h"

#include <algorithm>
#include <cmath>

#include <QCheckBox>
#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QSplitter>
#include <QStackedWidget>
#include <QVBoxLayout>

#include "common/number_format.h"
#include "plots/heatmap_plot.h"
#include "plots/plot_export.h"
#include "plots/plot_style.h"
#include "plots/plot_tooltip.h"

namespace qpruner::ui {

namespace {

QString number(double v)
{
    return QString::number(v, 'g', 8);
}

QLabel* noteLabel(QWidget* parent)
{
    auto* label = new QLabel(parent);
    label->setAlignment(Qt::AlignCenter);
    label->setWordWrap(true);
    label->setStyleSheet(QStringLiteral("color: palette(mid); padding: 12px;"));
    return label;
}

// Layer under a widget position of a plot whose x axis counts layers.
int layerAt(const QCustomPlot* plot, const QPoint& pos, int layers)
{
    if (!plot->axisRect()->rect().contains(pos))
        return -1;
    const long layer = std::lround(plot->xAxis->pixelToCoord(pos.x()));
    return layer >= 0 && layer < layers ? int(layer) : -1;
}

void layerAxis(QCPAxis* axis, int layers)
{
    auto ticker = QSharedPointer<QCPAxisTickerFixed>::create();
    ticker->setTickStep(1);
    ticker->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
    axis->setTicker(ticker);
    axis->setSubTicks(false);
    axis->setRange(-0.6, std::max(1, layers) - 0.4);
    axis->setLabel(QObject::tr("layer"));
    axis->grid()->setVisible(false);
}

} // namespace

ImportancePanel::ImportancePanel(QWidget* parent) : QWidget(parent)
{
    metricBox_ = new QComboBox(this);
    metricBox_->setMinimumContentsLength(10);
    metricBox_->setToolTip(tr("Importance metric; higher means more important (more sensitive to compression)"));
    normalizedBox_ = new QCheckBox(tr("Normalised (min-max over layers)"), this);
    normalizedBox_->setChecked(true);

    auto* bar = new QHBoxLayout;
    bar->setContentsMargins(4, 2, 4, 2);
    bar->addWidget(new QLabel(tr("Metric:"), this));
    bar->addWidget(metricBox_);
    bar->addSpacing(12);
    bar->addWidget(normalizedBox_);
    bar->addStretch(1);

    buildBars();
    heatmap_ = new HeatmapPlot(HeatmapPlot::RowAxis::Horizontal, this);
    heatmap_->setObjectName(QStringLiteral("importance-modules"));
    heatmap_->setAxisTitles(tr("layer"), tr("module"));
    heatmap_->setMinimumHeight(170);
    installPlotContextMenu(heatmap_);
    heatmapNote_ = noteLabel(this);
    heatmapSlot_ = new QStackedWidget(this);
    heatmapSlot_->addWidget(heatmap_);
    heatmapSlot_->addWidget(heatmapNote_);
    buildPruning();

    auto* splitter = new QSplitter(Qt::Vertical, this);
    splitter->setChildrenCollapsible(false);
    splitter->addWidget(barsPlot_);
    splitter->addWidget(heatmapSlot_);
    splitter->addWidget(pruningSlot_);
    splitter->setStretchFactor(0, 3);
    splitter->setStretchFactor(1, 2);
    splitter->setStretchFactor(2, 2);

    emptyNote_ = noteLabel(this);
    pages_ = new QStackedWidget(this);
    pages_->addWidget(splitter);
    pages_->addWidget(emptyNote_);

    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addLayout(bar);
    layout->addWidget(pages_, 1);

    connect(metricBox_, &QComboBox::currentIndexChanged, this, &ImportancePanel::showMetric);
    connect(normalizedBox_, &QCheckBox::toggled, this, &ImportancePanel::showMetric);
    clear();
}

void ImportancePanel::buildBars()
{
    barsPlot_ = new QCustomPlot(this);
    barsPlot_->setObjectName(QStringLiteral("importance-layers"));
    barsPlot_->setMinimumHeight(180);
    applyPlotStyle(barsPlot_);
    barsTitle_ = addPlotTitle(barsPlot_, QString());
    bars_ = new QCPBars(barsPlot_->xAxis, barsPlot_->yAxis);
    bars_->setWidth(0.7);
    bars_->setPen(QPen(runColor(0).darker(130)));
    bars_->setBrush(runColor(0));
    installPlotContextMenu(barsPlot_);
    new PlotToolTip(barsPlot_, [this](const QPoint& pos) {
        return layerToolTip(layerAt(barsPlot_, pos, int(raw_.size())));
    });
}

void ImportancePanel::buildPruning()
{
    pruningPlot_ = new QCustomPlot(this);
    pruningPlot_->setObjectName(QStringLiteral("pruning-kept"));
    pruningPlot_->setMinimumHeight(170);
    applyPlotStyle(pruningPlot_);
    addPlotTitle(pruningPlot_, tr("Pruning: structure kept per layer"));
    auto* group = new QCPBarsGroup(pruningPlot_);
    group->setSpacingType(QCPBarsGroup::stAbsolute);
    group->setSpacing(1);
    headsKept_ = new QCPBars(pruningPlot_->xAxis, pruningPlot_->yAxis);
    headsKept_->setName(tr("attention heads kept"));
    ffnKept_ = new QCPBars(pruningPlot_->xAxis, pruningPlot_->yAxis);
    ffnKept_->setName(tr("FFN channels kept"));
    int i = 0;
    for (QCPBars* b : {headsKept_, ffnKept_}) {
        const QColor c = runColor(i == 0 ? 1 : 4);
        b->setPen(QPen(c.darker(130)));
        b->setBrush(c);
        b->setWidth(0.36);
        b->setBarsGroup(group);
        b->addToLegend();
        ++i;
    }
    pruningPlot_->yAxis->setLabel(tr("kept (%)"));
    pruningPlot_->yAxis->setRange(0, 112);
    placeLegendBelow(pruningPlot_, 2);
    installPlotContextMenu(pruningPlot_);
    new PlotToolTip(pruningPlot_, [this](const QPoint& pos) {
        return pruningToolTip(layerAt(pruningPlot_, pos, model_ ? model_->numLayers() : 0));
    });
    pruningNote_ = noteLabel(this);
    pruningSlot_ = new QStackedWidget(this);
    pruningSlot_->addWidget(pruningPlot_);
    pruningSlot_->addWidget(pruningNote_);
}

void ImportancePanel::setRun(const RunSnapshot& snapshot)
{
    scores_.scores = snapshot.scores;
    baseModel_ = snapshot.baseModel;
    model_ = snapshot.model;
    modelError_ = snapshot.modelError;
    const store::StageRecord* prune = snapshot.stage("prune");
    pruned_ = prune != nullptr || (baseModel_ && model_ && baseModel_->layers != model_->layers);

    const QString previous = metricBox_->currentText();
    {
        const QSignalBlocker block(metricBox_);
        metricBox_->clear();
        for (const std::string& m : scores_.metrics())
            metricBox_->addItem(QString::fromStdString(m));
        // Keep the metric the user looked at; else the one the run allocated with.
        int index = metricBox_->findText(previous);
        if (index < 0 && snapshot.run.config.contains("importance") && snapshot.run.config["importance"].is_object())
            index = metricBox_->findText(
                QString::fromStdString(snapshot.run.config["importance"].value("metric", std::string())));
        metricBox_->setCurrentIndex(std::max(0, index));
    }
    metricBox_->setEnabled(metricBox_->count() > 0);
    normalizedBox_->setEnabled(metricBox_->count() > 0);
    emptyNote_->setText(tr("Run %1 has no importance scores (it has no importance stage, or the stage has "
                           "not finished).")
                            .arg(snapshot.run.id));
    pages_->setCurrentIndex(metricBox_->count() > 0 || pruned_ ? 0 : 1);
    showMetric();
    showPruning();
}

void ImportancePanel::clear()
{
    scores_ = RunSnapshot{};
    baseModel_.reset();
    model_.reset();
    modelError_.clear();
    pruned_ = false;
    {
        const QSignalBlocker block(metricBox_);
        metricBox_->clear();
    }
    metricBox_->setEnabled(false);
    normalizedBox_->setEnabled(false);
    emptyNote_->setText(tr("No run selected."));
    pages_->setCurrentIndex(1);
    showMetric();
    showPruning();
}

void ImportancePanel::setMetric(const QString& metric)
{
    const int index = metricBox_->findText(metric);
    if (index >= 0)
        metricBox_->setCurrentIndex(index);
}

QString ImportancePanel::metric() const
{
    return metricBox_->currentText();
}

void ImportancePanel::setNormalized(bool normalized)
{
    normalizedBox_->setChecked(normalized);
}

bool ImportancePanel::normalized() const
{
    return normalizedBox_->isChecked();
}

QList<QCustomPlot*> ImportancePanel::plots() const
{
    return {barsPlot_, heatmap_, pruningPlot_};
}

bool ImportancePanel::moduleHeatmapShown() const
{
    return heatmapSlot_->currentWidget() == heatmap_ && heatmap_->rowCount() > 0;
}

bool ImportancePanel::pruningShown() const
{
    return !pruningSlot_->isHidden() && pruningSlot_->currentWidget() == pruningPlot_;
}

void ImportancePanel::showMetric()
{
    const std::string metric = metricBox_->currentText().toStdString();
    const bool norm = normalizedBox_->isChecked();
    raw_ = metric.empty() ? std::vector<double>{} : scores_.layerScores(metric, false);
    normalized_ = metric.empty() ? std::vector<double>{} : scores_.layerScores(metric, true);
    const std::vector<double>& shown = norm ? normalized_ : raw_;

    QVector<double> keys, values;
    for (size_t l = 0; l < shown.size(); ++l) {
        keys << double(l);
        values << shown[l];
    }
    bars_->setData(keys, values, true);
    const QString metricName = QString::fromStdString(metric);
    barsTitle_->setText(metric.empty() ? tr("Layer importance")
                                       : tr("Layer importance: %1 (%2)").arg(metricName, norm ? tr("normalised") : tr("raw")));
    barsPlot_->yAxis->setLabel(metric.empty() ? QString() : (norm ? tr("%1, normalised").arg(metricName) : metricName));
    layerAxis(barsPlot_->xAxis, int(shown.size()));
    if (shown.empty()) {
        barsPlot_->yAxis->setRange(0, 1);
    } else {
        const auto [lo, hi] = std::minmax_element(shown.begin(), shown.end());
        const double low = std::min(0.0, *lo);
        const double high = std::max(0.0, *hi);
        const double pad = high > low ? 0.08 * (high - low) : 1.0;
        barsPlot_->yAxis->setRange(low < 0 ? low - pad : 0, high + pad);
    }
    barsPlot_->replot();

    const auto modules = metric.empty() ? decltype(scores_.moduleScores(metric)){} : scores_.moduleScores(metric, norm);
    if (modules.empty()) {
        heatmap_->clearGrid();
        heatmapNote_->setText(metric.empty()
                                  ? QString()
                                  : tr("%1 has no per-module scores: only the per-layer bars above.").arg(metricName));
        heatmapSlot_->setCurrentWidget(heatmapNote_);
        heatmapSlot_->setMaximumHeight(48);
        return;
    }
    std::vector<std::vector<double>> grid;
    double lo = modules[0][0], hi = modules[0][0];
    for (const auto& row : modules) {
        grid.emplace_back(row.begin(), row.end());
        for (double v : row) {
            lo = std::min(lo, v);
            hi = std::max(hi, v);
        }
    }
    heatmap_->setGrid(grid, moduleLabels());
    heatmap_->setColors(scoreGradient(), norm ? QCPRange(0, 1) : QCPRange(lo, hi > lo ? hi : lo + 1));
    heatmap_->setColorScaleLabel(norm ? tr("normalised") : tr("raw"));
    heatmap_->setTitle(tr("Per-module importance: %1 (%2)").arg(metricName, norm ? tr("normalised") : tr("raw")));
    const auto rawModules = scores_.moduleScores(metric, false);
    const auto normModules = scores_.moduleScores(metric, true);
    heatmap_->setCellToolTip([rawModules, normModules, metricName](int layer, int module) {
        if (size_t(layer) >= rawModules.size())
            return QString();
        return tr("<b>layer %1, %2</b><br>%3 raw %4<br>normalised %5")
            .arg(layer)
            .arg(QString::fromLatin1(linearModuleName(kLinearModules[size_t(module)])), metricName,
                 number(rawModules[size_t(layer)][size_t(module)]),
                 number(normModules[size_t(layer)][size_t(module)]));
    });
    heatmapSlot_->setCurrentWidget(heatmap_);
    heatmapSlot_->setMaximumHeight(QWIDGETSIZE_MAX);
    heatmap_->replot();
}

void ImportancePanel::showPruning()
{
    pruningSlot_->setVisible(pruned_);
    if (!pruned_) {
        headsKept_->data()->clear();
        ffnKept_->data()->clear();
        return;
    }
    if (!baseModel_ || !model_) {
        pruningNote_->setText(tr("The run pruned, but its models cannot be read to compare them: %1")
                                  .arg(modelError_.isEmpty() ? tr("the pruned checkpoint is missing") : modelError_));
        pruningSlot_->setCurrentWidget(pruningNote_);
        return;
    }
    const int layers = model_->numLayers();
    QVector<double> keys, heads, channels;
    for (int l = 0; l < layers && l < baseModel_->numLayers(); ++l) {
        const LayerShape& before = baseModel_->layers[size_t(l)];
        const LayerShape& after = model_->layers[size_t(l)];
        keys << l;
        heads << (before.numHeads > 0 ? 100.0 * after.numHeads / before.numHeads : 0.0);
        channels << (before.ffnDim > 0 ? 100.0 * after.ffnDim / before.ffnDim : 0.0);
    }
    headsKept_->setData(keys, heads, true);
    ffnKept_->setData(keys, channels, true);
    layerAxis(pruningPlot_->xAxis, layers);
    pruningSlot_->setCurrentWidget(pruningPlot_);
    pruningPlot_->replot();
}

QString ImportancePanel::layerToolTip(int layer) const
{
    if (layer < 0 || size_t(layer) >= raw_.size())
        return QString();
    return tr("<b>layer %1</b><br>%2 raw %3<br>normalised %4")
        .arg(layer)
        .arg(metricBox_->currentText(), number(raw_[size_t(layer)]), number(normalized_[size_t(layer)]));
}

QString ImportancePanel::pruningToolTip(int layer) const
{
    if (!baseModel_ || !model_ || layer < 0 || layer >= model_->numLayers() || layer >= baseModel_->numLayers())
        return QString();
    const LayerShape& before = baseModel_->layers[size_t(layer)];
    const LayerShape& after = model_->layers[size_t(layer)];
    auto pct = [](int kept, int of) { return of > 0 ? QString::number(100.0 * kept / of, 'f', 1) : QStringLiteral("-"); };
    return tr("<b>layer %1</b><br>attention heads %2 / %3 (%4%)<br>KV heads %5 / %6<br>FFN channels %7 / %8 (%9%)")
        .arg(layer)
        .arg(after.numHeads)
        .arg(before.numHeads)
        .arg(pct(after.numHeads, before.numHeads))
        .arg(after.numKvHeads)
        .arg(before.numKvHeads)
        .arg(after.ffnDim)
        .arg(before.ffnDim)
        .arg(pct(after.ffnDim, before.ffnDim));
}

} // namespace qpruner::ui

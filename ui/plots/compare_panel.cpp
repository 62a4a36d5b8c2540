// Compare panel: fronts, importance and map heatmaps with their differences, metrics table.
#include "plots/compare_panel.h"

#include <algorithm>
#include <cmath>
#include <set>

#include <QComboBox>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QMenu>
#include <QMessageBox>
#include <QPushButton>
#include <QSaveFile>
#include <QStandardPaths>
#include <QScrollArea>
#include <QTabWidget>
#include <QVBoxLayout>

#include "common/format_colors.h"
#include "common/number_format.h"
#include "plots/byte_axis_ticker.h"
#include "plots/heatmap_plot.h"
#include "plots/plot_export.h"
#include "plots/plot_style.h"
#include "plots/run_metrics_table.h"
#include "qpruner/error.h"

namespace qpruner::ui {

namespace {

QLabel* noteLabel(QWidget* parent)
{
    auto* label = new QLabel(parent);
    label->setWordWrap(true);
    label->setTextFormat(Qt::RichText);
    label->setContentsMargins(6, 4, 6, 4);
    return label;
}

QLabel* placeholder(const QString& text, QWidget* parent)
{
    auto* label = new QLabel(text, parent);
    label->setAlignment(Qt::AlignCenter);
    label->setWordWrap(true);
    label->setMinimumWidth(170);
    label->setStyleSheet(QStringLiteral("color: palette(mid); border: 1px dashed palette(mid); padding: 8px;"));
    return label;
}

HeatmapPlot* newHeatmap(const QString& objectName, const QString& title, QWidget* parent)
{
    auto* plot = new HeatmapPlot(HeatmapPlot::RowAxis::Vertical, parent);
    plot->setObjectName(objectName);
    plot->setTitle(title);
    plot->setMinimumSize(190, 260);
    installPlotContextMenu(plot);
    return plot;
}

// Symmetric range around 0 for a difference grid (at least +-minimum, so equal runs read as all white).
QCPRange symmetricRange(const std::vector<std::vector<double>>& grid, double minimum)
{
    double m = minimum;
    for (const auto& row : grid)
        for (double v : row)
            if (std::isfinite(v))
                m = std::max(m, std::fabs(v));
    return QCPRange(-m, m);
}

QString signedText(double v, int precision)
{
    if (v == 0)
        return QStringLiteral("0");
    return (v > 0 ? QStringLiteral("+") : QStringLiteral("\u2212")) + QString::number(std::fabs(v), 'g', precision);
}

} // namespace

ComparePanel::ComparePanel(QWidget* parent) : QWidget(parent)
{
    tabs_ = new QTabWidget(this);
    tabs_->setDocumentMode(true);

    // Pareto fronts.
    auto* frontsPage = new QWidget(this);
    auto* frontsLayout = new QVBoxLayout(frontsPage);
    frontsLayout->setContentsMargins(0, 0, 0, 0);
    frontsNote_ = noteLabel(frontsPage);
    frontsPlot_ = new QCustomPlot(frontsPage);
    frontsPlot_->setObjectName(QStringLiteral("compare-fronts"));
    applyPlotStyle(frontsPlot_);
    frontsPlot_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
    frontsPlot_->xAxis->setTicker(QSharedPointer<ByteAxisTicker>::create());
    frontsPlot_->legend->setVisible(true);
    frontsPlot_->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignRight);
    installPlotContextMenu(frontsPlot_, [this](QMenu& menu) {
        menu.addAction(tr("Reset zoom"), this, [this] { showFronts(); });
    });
    frontsLayout->addWidget(frontsNote_);
    frontsLayout->addWidget(frontsPlot_, 1);
    tabs_->addTab(frontsPage, tr("Pareto fronts"));

    // Importance heatmaps.
    metricBox_ = new QComboBox(this);
    metricBox_->setMinimumContentsLength(10);
    auto* importancePage = buildRow(importanceRow_, importanceNote_);
    auto* metricBar = new QHBoxLayout;
    metricBar->setContentsMargins(6, 4, 6, 0);
    metricBar->addWidget(new QLabel(tr("Metric:"), importancePage));
    metricBar->addWidget(metricBox_);
    metricBar->addWidget(new QLabel(tr("normalised scores (min-max within each run)"), importancePage));
    metricBar->addStretch(1);
    static_cast<QVBoxLayout*>(importancePage->layout())->insertLayout(0, metricBar);
    tabs_->addTab(importancePage, tr("Importance"));
    connect(metricBox_, &QComboBox::currentIndexChanged, this, &ComparePanel::showImportance);

    // Chosen maps.
    auto* mapPage = buildRow(mapRow_, mapNote_);
    formatLegend_ = noteLabel(mapPage);
    static_cast<QVBoxLayout*>(mapPage->layout())->addWidget(formatLegend_);
    tabs_->addTab(mapPage, tr("Precision maps"));

    auto* metricsPage = new QWidget(this);
    auto* metricsLayout = new QVBoxLayout(metricsPage);
    metricsLayout->setContentsMargins(0, 0, 0, 0);
    auto* metricsBar = new QHBoxLayout;
    metricsBar->setContentsMargins(6, 4, 6, 0);
    auto* metricsNote = new QLabel(tr("Each run's best point within budget and its evaluation; click a header to "
                                      "sort."),
                                   metricsPage);
    metricsNote->setWordWrap(true);
    metricsNote->setMinimumWidth(120);
    metricsBar->addWidget(metricsNote, 1);
    auto* csv = new QPushButton(tr("Export CSV…"), metricsPage);
    csv->setObjectName(QStringLiteral("exportMetricsCsv"));
    metricsBar->addWidget(csv);
    metricsLayout->addLayout(metricsBar);
    table_ = new RunMetricsTable(metricsPage);
    metricsLayout->addWidget(table_);
    tabs_->addTab(metricsPage, tr("Metrics"));

    // Zero-shot accuracy per task, one bar per run.
    auto* tasksPage = new QWidget(this);
    auto* tasksLayout = new QVBoxLayout(tasksPage);
    tasksLayout->setContentsMargins(0, 0, 0, 0);
    tasksNote_ = noteLabel(tasksPage);
    tasksPlot_ = new QCustomPlot(tasksPage);
    tasksPlot_->setObjectName(QStringLiteral("compare-tasks"));
    applyPlotStyle(tasksPlot_);
    tasksPlot_->legend->setVisible(true);
    tasksPlot_->yAxis->setLabel(tr("Accuracy (acc)"));
    installPlotContextMenu(tasksPlot_);
    tasksLayout->addWidget(tasksNote_);
    tasksLayout->addWidget(tasksPlot_, 1);
    tabs_->addTab(tasksPage, tr("Tasks"));
    connect(csv, &QPushButton::clicked, this, [this] {
        static QString lastDir = QStandardPaths::writableLocation(QStandardPaths::DocumentsLocation);
        QString path = QFileDialog::getSaveFileName(this, tr("Export metrics as CSV"),
                                                    QDir(lastDir).filePath(QStringLiteral("compare.csv")),
                                                    tr("CSV table (*.csv)"));
        if (path.isEmpty())
            return;
        if (QFileInfo(path).suffix().isEmpty())
            path += QStringLiteral(".csv");
        lastDir = QFileInfo(path).absolutePath();
        QString error;
        if (!exportMetricsCsv(path, &error))
            QMessageBox::warning(this, tr("Export CSV"), error);
    });

    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(tabs_);
    clear();
}

bool ComparePanel::exportMetricsCsv(const QString& path, QString* error) const
{
    QSaveFile file(path);
    const QByteArray bytes = table_->toCsv().toUtf8();
    if (!file.open(QIODevice::WriteOnly) || file.write(bytes) != bytes.size() || !file.commit()) {
        if (error)
            *error = tr("Cannot write %1: %2").arg(QDir::toNativeSeparators(path), file.errorString());
        return false;
    }
    return true;
}

QWidget* ComparePanel::buildRow(QHBoxLayout*& row, QLabel*& note)
{
    auto* page = new QWidget(this);
    auto* layout = new QVBoxLayout(page);
    layout->setContentsMargins(0, 0, 0, 0);
    note = noteLabel(page);
    layout->addWidget(note);
    auto* scroll = new QScrollArea(page);
    scroll->setWidgetResizable(true);
    scroll->setFrameShape(QFrame::NoFrame);
    auto* content = new QWidget(scroll);
    row = new QHBoxLayout(content);
    row->setContentsMargins(4, 4, 4, 4);
    row->setSpacing(6);
    scroll->setWidget(content);
    layout->addWidget(scroll, 1);
    return page;
}

void ComparePanel::clearRow(QHBoxLayout* row)
{
    while (QLayoutItem* item = row->takeAt(0)) {
        if (QWidget* w = item->widget())
            delete w;
        delete item;
    }
}

void ComparePanel::setRuns(const std::vector<RunSnapshot>& runs)
{
    runs_ = runs;
    points_.clear();
    maps_.clear();
    for (const RunSnapshot& s : runs_) {
        points_.push_back(trialPoints(trialInput(s)));
        std::vector<LayerSpecs> layers;
        if (s.chosenMap && s.model) {
            try {
                layers = s.chosenMap->resolve(*s.model).layers;
            } catch (const Error&) {
                // The map no longer fits the model (e.g. a checkpoint replaced): shown as absent.
            }
        }
        maps_.push_back(std::move(layers));
    }

    // Metrics every run with scores has, in the first such run's order.
    const QString previous = metricBox_->currentText();
    std::vector<std::string> common;
    bool first = true;
    for (const RunSnapshot& s : runs_) {
        const std::vector<std::string> metrics = s.metrics();
        if (metrics.empty())
            continue;
        if (first) {
            common = metrics;
            first = false;
        } else {
            std::erase_if(common, [&](const std::string& m) {
                return std::find(metrics.begin(), metrics.end(), m) == metrics.end();
            });
        }
    }
    {
        const QSignalBlocker block(metricBox_);
        metricBox_->clear();
        for (const std::string& m : common)
            metricBox_->addItem(QString::fromStdString(m));
        // Keep the metric looked at; else the one the first run allocated with.
        int index = metricBox_->findText(previous);
        if (index < 0 && !runs_.empty() && runs_[0].run.config.contains("importance") &&
            runs_[0].run.config["importance"].is_object())
            index = metricBox_->findText(
                QString::fromStdString(runs_[0].run.config["importance"].value("metric", std::string())));
        metricBox_->setCurrentIndex(std::max(0, index));
    }
    metricBox_->setEnabled(metricBox_->count() > 1);

    showFronts();
    showImportance();
    showMaps();
    showTasks();
    table_->setRuns(runs_, points_);
}

void ComparePanel::clear()
{
    setRuns({});
}

void ComparePanel::setMetric(const QString& metric)
{
    const int index = metricBox_->findText(metric);
    if (index >= 0)
        metricBox_->setCurrentIndex(index);
}

QString ComparePanel::metric() const
{
    return metricBox_->currentText();
}

void ComparePanel::showTasks()
{
    tasksPlot_->clearPlottables();
    taskBars_.clear();
    // The union of the tasks, in first-seen order; each run's latest evaluation.
    QStringList tasks;
    std::vector<std::pair<int, const nlohmann::json*>> evaluated;
    std::vector<QString> labels;
    for (int i = 0; i < int(runs_.size()); ++i) {
        QString label;
        const nlohmann::json* r = latestEvaluation(runs_[size_t(i)], &label);
        if (!r || !r->contains("tasks") || !(*r)["tasks"].is_array() || (*r)["tasks"].empty())
            continue;
        for (const auto& t : (*r)["tasks"])
            if (t.is_object() && t.contains("task") && t["task"].is_string() &&
                !tasks.contains(QString::fromStdString(t["task"].get<std::string>())))
                tasks << QString::fromStdString(t["task"].get<std::string>());
        evaluated.emplace_back(i, r);
        labels.push_back(label);
    }
    if (evaluated.empty()) {
        tasksNote_->setText(tr("No run has zero-shot task results yet: evaluate a trial (right-click it in the Search "
                               "tab) or add tasks to a run's evaluation."));
        tasksNote_->show();
        tasksPlot_->replot();
        return;
    }
    tasksNote_->setText(tr("Each run's latest evaluation; the error bars are one standard error."));
    auto* group = new QCPBarsGroup(tasksPlot_);
    const double width = 0.8 / double(evaluated.size());
    for (size_t k = 0; k < evaluated.size(); ++k) {
        const auto [i, r] = evaluated[k];
        const RunSnapshot& s = runs_[size_t(i)];
        auto* bars = new QCPBars(tasksPlot_->xAxis, tasksPlot_->yAxis);
        bars->setName(tr("run %1%2 (%3)")
                          .arg(s.run.id)
                          .arg(s.run.name.empty() ? QString() : QStringLiteral(" ") + QString::fromStdString(s.run.name))
                          .arg(labels[k]));
        bars->setWidth(width);
        bars->setBarsGroup(group);
        bars->setPen(QPen(runColor(i).darker(130)));
        bars->setBrush(runColor(i));
        bars->addToLegend();
        auto* errors = new QCPErrorBars(tasksPlot_->xAxis, tasksPlot_->yAxis);
        errors->setDataPlottable(bars);
        errors->setPen(QPen(QColor(0x33, 0x33, 0x33)));
        errors->removeFromLegend();
        QVector<double> x, y, e;
        for (const auto& t : (*r)["tasks"]) {
            if (!t.is_object() || !t.contains("acc") || !t["acc"].is_number())
                continue;
            x << double(tasks.indexOf(QString::fromStdString(t["task"].get<std::string>())) + 1);
            y << t["acc"].get<double>();
            e << (t.contains("acc_stderr") && t["acc_stderr"].is_number() ? t["acc_stderr"].get<double>() : 0.0);
        }
        bars->setData(x, y, true);
        errors->setData(e);
        taskBars_ << bars;
    }
    auto ticker = QSharedPointer<QCPAxisTickerText>::create();
    for (int t = 0; t < tasks.size(); ++t)
        ticker->addTick(t + 1, tasks[t]);
    tasksPlot_->xAxis->setTicker(ticker);
    tasksPlot_->xAxis->setRange(0.4, double(tasks.size()) + 0.6);
    tasksPlot_->yAxis->setRange(0, 1);
    tasksPlot_->replot();
}

QList<QCustomPlot*> ComparePanel::plots() const
{
    QList<QCustomPlot*> out{frontsPlot_, tasksPlot_};
    for (HeatmapPlot* p : importanceMaps_)
        if (p)
            out << p;
    if (importanceDiff_)
        out << importanceDiff_;
    for (HeatmapPlot* p : mapMaps_)
        if (p)
            out << p;
    if (mapDiff_)
        out << mapDiff_;
    return out;
}

HeatmapPlot* ComparePanel::importanceHeatmap(int run) const
{
    return run >= 0 && run < importanceMaps_.size() ? importanceMaps_[run] : nullptr;
}

HeatmapPlot* ComparePanel::mapHeatmap(int run) const
{
    return run >= 0 && run < mapMaps_.size() ? mapMaps_[run] : nullptr;
}

int ComparePanel::mapBits(int run, int layer, LinearModule module) const
{
    if (run < 0 || size_t(run) >= maps_.size() || layer < 0 || size_t(layer) >= maps_[size_t(run)].size())
        return -1;
    return maps_[size_t(run)][size_t(layer)][size_t(module)].codeBits();
}

void ComparePanel::showFronts()
{
    frontsPlot_->clearGraphs();
    frontsPlot_->clearItems();
    frontsPlot_->legend->clearItems();
    frontGraphs_.clear();

    std::set<std::string> objectives;
    for (const TrialPoints& p : points_)
        if (p.size() > 0)
            objectives.insert(p.objective);
    const bool common = objectives.size() <= 1;
    const std::string objective = objectives.empty() ? std::string("ppl") : *objectives.begin();
    auto y = [&](const TrialPoints& p, size_t i) { return common ? p.shown[qsizetype(i)] : p.minimised[i]; };

    QStringList notes;
    if (runs_.size() < 2)
        notes << tr("Pick two or more runs to compare.");
    double xlo = std::numeric_limits<double>::infinity(), xhi = -xlo, ylo = xlo, yhi = -xlo;
    for (size_t r = 0; r < runs_.size(); ++r) {
        const TrialPoints& p = points_[r];
        const QColor color = runColor(int(r));
        QColor faint = color;
        faint.setAlpha(70);
        QCPGraph* all = frontsPlot_->addGraph();
        all->setLineStyle(QCPGraph::lsNone);
        all->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, faint, faint, 4));
        QVector<double> ay;
        for (int i = 0; i < p.size(); ++i)
            ay << y(p, size_t(i));
        all->setData(p.memory, ay, true);

        QCPGraph* front = frontsPlot_->addGraph();
        // Runs are told apart by their strategy too (one study run with each strategy is the usual comparison).
        QString label = runLabel(runs_[r].run.id, runs_[r].run.name);
        if (runs_[r].search)
            label += QStringLiteral(" · %1").arg(QString::fromStdString(runs_[r].search->strategy));
        front->setName(label);
        front->setLineStyle(QCPGraph::lsStepLeft);
        front->setPen(QPen(color, 2.2));
        front->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, color, color, 6));
        QVector<double> fx, fy;
        for (size_t i : p.front) {
            fx << p.memory[qsizetype(i)];
            fy << y(p, i);
        }
        front->setData(fx, fy, true);
        front->addToLegend();
        frontGraphs_ << front;

        for (int i = 0; i < p.size(); ++i) {
            xlo = std::min(xlo, p.memory[i]);
            xhi = std::max(xhi, p.memory[i]);
            ylo = std::min(ylo, ay[i]);
            yhi = std::max(yhi, ay[i]);
        }
        if (p.budgetMemory) {
            auto* line = new QCPItemStraightLine(frontsPlot_);
            QColor c = color;
            c.setAlpha(170);
            line->setPen(QPen(c, 1.3, Qt::DashLine));
            line->point1->setCoords(*p.budgetMemory, 0);
            line->point2->setCoords(*p.budgetMemory, 1);
            xlo = std::min(xlo, *p.budgetMemory);
            xhi = std::max(xhi, *p.budgetMemory);
        }
        if (p.size() == 0)
            notes << tr("%1 has no complete trials.").arg(runLabel(runs_[r].run.id, {}));
    }
    if (!common)
        notes << tr("The runs minimise different objectives; the y axis shows each run's minimised objective.");
    if (!runs_.empty())
        notes << tr("Dashed lines: each run's budget. Faint points: all complete trials.");
    frontsNote_->setText(notes.join(QStringLiteral(" ")));

    auto ticker = frontsPlot_->xAxis->ticker().staticCast<ByteAxisTicker>();
    ticker->setUnitFor(std::isfinite(xhi) ? xhi : 0);
    frontsPlot_->xAxis->setLabel(tr("Memory (%1)").arg(ticker->unitName()));
    frontsPlot_->yAxis->setLabel(common ? objectiveAxisLabel(objective) : tr("Minimised objective"));
    if (std::isfinite(xlo)) {
        const double xpad = xhi > xlo ? 0.06 * (xhi - xlo) : 0.05 * std::max(1.0, xhi);
        frontsPlot_->xAxis->setRange(xlo - xpad, xhi + xpad);
    } else {
        frontsPlot_->xAxis->setRange(0, 1024);
    }
    const bool logY = common && objective == "ppl" && std::isfinite(ylo) && ylo > 0 && yhi / ylo > 20;
    frontsPlot_->yAxis->setScaleType(logY ? QCPAxis::stLogarithmic : QCPAxis::stLinear);
    frontsPlot_->yAxis->setTicker(logY ? QSharedPointer<QCPAxisTicker>(new QCPAxisTickerLog)
                                       : QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    if (!std::isfinite(ylo))
        frontsPlot_->yAxis->setRange(0, 1);
    else if (logY)
        frontsPlot_->yAxis->setRange(ylo / 1.15, yhi * 1.15);
    else {
        const double ypad = yhi > ylo ? 0.1 * (yhi - ylo) : 0.05 * std::max(1e-9, std::fabs(yhi));
        frontsPlot_->yAxis->setRange(ylo - ypad, yhi + ypad);
    }
    frontsPlot_->replot();
}

void ComparePanel::showImportance()
{
    clearRow(importanceRow_);
    importanceMaps_.clear();
    importanceDiff_ = nullptr;
    const std::string metric = metricBox_->currentText().toStdString();

    bool allModules = !metric.empty();
    for (const RunSnapshot& s : runs_)
        if (!s.metrics().empty() && s.moduleScores(metric).empty())
            allModules = false;
    const QStringList columns = allModules ? moduleLabels() : QStringList{tr("score")};

    std::vector<std::vector<std::vector<double>>> grids(runs_.size());
    for (size_t r = 0; r < runs_.size(); ++r) {
        if (metric.empty() || runs_[r].layerScores(metric).empty())
            continue;
        if (allModules)
            for (const auto& row : runs_[r].moduleScores(metric))
                grids[r].emplace_back(row.begin(), row.end());
        else
            for (double v : runs_[r].layerScores(metric))
                grids[r].push_back({v});
    }
    const QString metricName = QString::fromStdString(metric);
    QStringList notes;
    if (metric.empty() && !runs_.empty())
        notes << tr("The runs have no importance metric in common.");
    for (size_t r = 0; r < runs_.size(); ++r) {
        const QString title = runLabel(runs_[r].run.id, runs_[r].run.name, 26);
        if (grids[r].empty()) {
            importanceMaps_ << nullptr;
            importanceRow_->addWidget(placeholder(tr("%1\nhas no %2 scores").arg(title, metricName), this));
            continue;
        }
        HeatmapPlot* plot = newHeatmap(QStringLiteral("compare-importance-run%1").arg(runs_[r].run.id), title, this);
        plot->setAxisTitles(tr("layer"), allModules ? tr("module") : QString());
        if (!allModules)
            plot->setMaximumWidth(260); // one column: a strip, not a wall
        plot->setGrid(grids[r], columns);
        plot->setColors(scoreGradient(), QCPRange(0, 1));
        const auto grid = grids[r];
        plot->setCellToolTip([grid, columns, metricName, title](int layer, int column) {
            return tr("<b>%1</b><br>layer %2, %3<br>%4 normalised %5")
                .arg(title.toHtmlEscaped())
                .arg(layer)
                .arg(columns[column], metricName, QString::number(grid[size_t(layer)][size_t(column)], 'g', 8));
        });
        importanceRow_->addWidget(plot, 1);
        importanceMaps_ << plot;
    }
    if (!importanceMaps_.isEmpty() && importanceMaps_.back())
        importanceMaps_.back()->setColorScaleLabel(tr("normalised"));

    if (runs_.size() >= 2 && !grids[0].empty() && !grids[1].empty()) {
        const size_t layers = std::min(grids[0].size(), grids[1].size());
        if (grids[0].size() != grids[1].size())
            notes << tr("Run %1 has %2 layers and run %3 has %4: the difference covers layers 0-%5.")
                         .arg(runs_[0].run.id).arg(grids[0].size()).arg(runs_[1].run.id).arg(grids[1].size())
                         .arg(layers - 1);
        std::vector<std::vector<double>> diff(layers, std::vector<double>(size_t(columns.size())));
        for (size_t l = 0; l < layers; ++l)
            for (size_t c = 0; c < size_t(columns.size()); ++c)
                diff[l][c] = grids[1][l][c] - grids[0][l][c];
        const QString title = tr("run %1 \u2212 run %2").arg(runs_[1].run.id).arg(runs_[0].run.id);
        importanceDiff_ = newHeatmap(QStringLiteral("compare-importance-difference"), title, this);
        importanceDiff_->setAxisTitles(tr("layer"), allModules ? tr("module") : QString());
        if (!allModules)
            importanceDiff_->setMaximumWidth(300);
        importanceDiff_->setGrid(diff, columns);
        importanceDiff_->setColors(divergingGradient(), symmetricRange(diff, 1e-12));
        importanceDiff_->setColorScaleLabel(tr("difference"));
        importanceDiff_->setCellToolTip([diff, columns, title](int layer, int column) {
            return tr("<b>%1</b><br>layer %2, %3<br>difference %4")
                .arg(title, QString::number(layer), columns[column],
                     signedText(diff[size_t(layer)][size_t(column)], 8));
        });
        importanceRow_->addWidget(importanceDiff_, 1);
    } else if (runs_.size() >= 2) {
        notes << tr("The difference needs scores in both of the first two runs.");
    }
    importanceRow_->addStretch(0);
    importanceNote_->setText(notes.join(QStringLiteral(" ")));
    importanceNote_->setVisible(!notes.isEmpty());
    for (QCustomPlot* p : importanceMaps_)
        if (p)
            p->replot();
    if (importanceDiff_)
        importanceDiff_->replot();
}

void ComparePanel::showMaps()
{
    clearRow(mapRow_);
    mapMaps_.clear();
    mapDiff_ = nullptr;

    // One colour level per format present in any run, in the canonical order of format names.
    std::vector<QuantSpec> formats;
    for (const std::string& name : quantSpecNames()) {
        const QuantSpec spec = parseQuantSpec(name);
        bool used = false;
        for (const auto& layers : maps_)
            for (const LayerSpecs& specs : layers)
                used = used || std::find(specs.begin(), specs.end(), spec) != specs.end();
        if (used)
            formats.push_back(spec);
    }
    auto levelOf = [&formats](const QuantSpec& spec) {
        return double(std::find(formats.begin(), formats.end(), spec) - formats.begin());
    };
    const QCPColorGradient gradient = formatGradient(formats);
    const QCPRange range(0, std::max<double>(1, double(formats.size()) - 1));

    QStringList notes;
    for (size_t r = 0; r < runs_.size(); ++r) {
        const RunSnapshot& s = runs_[r];
        const QString title = runLabel(s.run.id, s.run.name, 26);
        if (maps_[r].empty()) {
            mapMaps_ << nullptr;
            const QString why = !s.chosenMap ? tr("has no chosen map")
                                : !s.model  ? tr("has a map, but its model cannot be read")
                                            : tr("has a map that does not fit its model");
            mapRow_->addWidget(placeholder(QStringLiteral("%1\n%2").arg(title, why), this));
            continue;
        }
        const std::vector<LayerSpecs> layers = maps_[r];
        std::vector<std::vector<double>> grid;
        for (const LayerSpecs& specs : layers) {
            std::vector<double> row;
            for (const QuantSpec& spec : specs)
                row.push_back(levelOf(spec));
            grid.push_back(std::move(row));
        }
        HeatmapPlot* plot = newHeatmap(QStringLiteral("compare-map-run%1").arg(s.run.id), title, this);
        plot->setAxisTitles(tr("layer"), tr("module"));
        plot->setGrid(grid, moduleLabels());
        plot->setColors(gradient, range);
        plot->setCellText([layers](int layer, int module) {
            return formatShortLabel(layers[size_t(layer)][size_t(module)]);
        });
        plot->setCellToolTip([layers, title](int layer, int module) {
            const QuantSpec& spec = layers[size_t(layer)][size_t(module)];
            return tr("<b>%1</b><br>layer %2, %3<br>%4 (%5-bit codes)")
                .arg(title.toHtmlEscaped(), QString::number(layer),
                     QString::fromLatin1(linearModuleName(kLinearModules[size_t(module)])),
                     QString::fromStdString(spec.name()), QString::number(spec.codeBits()));
        });
        mapRow_->addWidget(plot, 1);
        mapMaps_ << plot;
    }

    if (runs_.size() >= 2 && !maps_[0].empty() && !maps_[1].empty()) {
        const size_t layers = std::min(maps_[0].size(), maps_[1].size());
        if (maps_[0].size() != maps_[1].size())
            notes << tr("Run %1 has %2 layers and run %3 has %4: the difference covers layers 0-%5.")
                         .arg(runs_[0].run.id).arg(maps_[0].size()).arg(runs_[1].run.id).arg(maps_[1].size())
                         .arg(layers - 1);
        std::vector<std::vector<double>> diff(layers, std::vector<double>(kLinearModuleCount));
        for (size_t l = 0; l < layers; ++l)
            for (size_t m = 0; m < size_t(kLinearModuleCount); ++m)
                diff[l][m] = maps_[1][l][m].codeBits() - maps_[0][l][m].codeBits();
        const QString title = tr("run %1 \u2212 run %2 (code bits)").arg(runs_[1].run.id).arg(runs_[0].run.id);
        mapDiff_ = newHeatmap(QStringLiteral("compare-map-difference"), title, this);
        mapDiff_->setAxisTitles(tr("layer"), tr("module"));
        mapDiff_->setGrid(diff, moduleLabels());
        mapDiff_->setColors(divergingGradient(), symmetricRange(diff, 1));
        mapDiff_->setColorScaleLabel(tr("bits"));
        mapDiff_->setCellText([diff](int layer, int module) {
            const double d = diff[size_t(layer)][size_t(module)];
            return d == 0 ? QString() : signedText(d, 3);
        });
        const auto first = maps_[0], second = maps_[1];
        mapDiff_->setCellToolTip([first, second, title](int layer, int module) {
            const QuantSpec& a = first[size_t(layer)][size_t(module)];
            const QuantSpec& b = second[size_t(layer)][size_t(module)];
            return tr("<b>%1</b><br>layer %2, %3<br>%4 \u2192 %5: %6 bits")
                .arg(title, QString::number(layer), QString::fromLatin1(linearModuleName(kLinearModules[size_t(module)])),
                     QString::fromStdString(a.name()), QString::fromStdString(b.name()),
                     signedText(b.codeBits() - a.codeBits(), 3));
        });
        mapRow_->addWidget(mapDiff_, 1);
    } else if (runs_.size() >= 2) {
        notes << tr("The difference needs a chosen map in both of the first two runs.");
    }
    mapRow_->addStretch(0);
    mapNote_->setText(notes.join(QStringLiteral(" ")));
    mapNote_->setVisible(!notes.isEmpty());

    QStringList swatches;
    for (const QuantSpec& spec : formats)
        swatches << QStringLiteral("<span style='background-color:%1; color:%2'>&nbsp;%3&nbsp;</span>&nbsp;%4")
                        .arg(formatColor(spec).name(), formatTextColor(spec).name(), formatShortLabel(spec),
                             QString::fromStdString(spec.name()));
    formatLegend_->setText(swatches.isEmpty() ? QString() : tr("Formats: ") + swatches.join(QStringLiteral(" &nbsp; ")));
    for (QCustomPlot* p : mapMaps_)
        if (p)
            p->replot();
    if (mapDiff_)
        mapDiff_->replot();
}

} // namespace qpruner::ui

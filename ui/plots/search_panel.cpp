// Search panel: builds the scatter and hypervolume plots once and refills their data per update.
#include "plots/search_panel.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <QLabel>
#include <QMenu>
#include <QSplitter>
#include <QVBoxLayout>

#include "common/number_format.h"
#include "plots/byte_axis_ticker.h"
#include "plots/plot_export.h"
#include "plots/plot_style.h"
#include "plots/plot_tooltip.h"
#include "workspace/run_snapshot.h"

namespace qpruner::ui {

namespace {

constexpr int kCoalesceMs = 40;
constexpr double kClickPixels = 10;
constexpr double kClickSlop = 4; // a press and release this close is a click, not a drag

const QColor kTrialColor(0x4e, 0x79, 0xa7);
const QColor kFrontColor(0xc0, 0x39, 0x2b);
const QColor kImportanceColor(0xf2, 0x8e, 0x2b);
const QColor kUniformColor(0x59, 0xa1, 0x4f);
const QColor kManualColor(0xb0, 0x7a, 0xa1);

QCPGraph* addGraph(QCustomPlot* plot, const QString& name, const QCPScatterStyle& style)
{
    QCPGraph* g = plot->addGraph();
    g->setName(name);
    g->setLineStyle(QCPGraph::lsNone);
    g->setScatterStyle(style);
    return g;
}

constexpr int kManyTrials = 20'000;

QCPScatterStyle trialStyle()
{
    QColor fill = kTrialColor;
    fill.setAlpha(60);
    return QCPScatterStyle(QCPScatterStyle::ssCircle, QPen(kTrialColor, 1.2), QBrush(fill), 6);
}

QColor trialColorMany()
{
    QColor c = kTrialColor;
    c.setAlpha(110);
    return c;
}

QString formatObjective(double v)
{
    return QString::number(v, 'g', 6);
}

} // namespace

SearchPanel::SearchPanel(QWidget* parent) : QWidget(parent)
{
    caption_ = new QLabel(this);
    caption_->setWordWrap(true);
    caption_->setTextFormat(Qt::RichText);
    caption_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    caption_->setContentsMargins(4, 2, 4, 2);

    buildScatter();
    buildHypervolumePlot();

    auto* splitter = new QSplitter(Qt::Vertical, this);
    splitter->addWidget(scatter_);
    splitter->addWidget(hvPlot_);
    splitter->setStretchFactor(0, 3);
    splitter->setStretchFactor(1, 1);
    splitter->setChildrenCollapsible(false);

    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(caption_);
    layout->addWidget(splitter, 1);

    coalesce_.setSingleShot(true);
    coalesce_.setInterval(kCoalesceMs);
    connect(&coalesce_, &QTimer::timeout, this, &SearchPanel::applyPending);
    clear();
}

SearchPanel::~SearchPanel() = default;

void SearchPanel::buildScatter()
{
    scatter_ = new QCustomPlot(this);
    scatter_->setObjectName(QStringLiteral("search-pareto"));
    scatter_->setMinimumHeight(260);
    applyPlotStyle(scatter_);
    scatter_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);

    memoryTicker_ = QSharedPointer<ByteAxisTicker>::create();
    scatter_->xAxis->setTicker(memoryTicker_);

    trials_ = addGraph(scatter_, tr("complete trials"), trialStyle());
    trials_->setAdaptiveSampling(true);
    front_ = addGraph(scatter_, tr("Pareto front"),
                      QCPScatterStyle(QCPScatterStyle::ssDisc, QPen(kFrontColor), QBrush(kFrontColor), 6));
    front_->setLineStyle(QCPGraph::lsStepLeft); // horizontal to the next point: the dominated region is above
    front_->setPen(QPen(kFrontColor, 2));
    uniform_ = addGraph(scatter_, tr("uniform baselines"),
                        QCPScatterStyle(QCPScatterStyle::ssTriangle, QPen(kUniformColor.darker(140), 1.5),
                                        QBrush(kUniformColor), 11));
    manual_ = addGraph(scatter_, tr("manual trials"),
                       QCPScatterStyle(QCPScatterStyle::ssSquare, QPen(kManualColor.darker(140), 1.5),
                                       QBrush(kManualColor), 9));
    importance_ = addGraph(scatter_, tr("importance-aware start"),
                           QCPScatterStyle(QCPScatterStyle::ssDiamond, QPen(kImportanceColor.darker(150), 1.5),
                                           QBrush(kImportanceColor), 13));
    best_ = addGraph(scatter_, tr("best within budget"),
                     QCPScatterStyle(QCPScatterStyle::ssStar, QPen(QColor(0x22, 0x22, 0x22), 1.6), Qt::NoBrush, 15));
    selection_ = addGraph(scatter_, QString(),
                          QCPScatterStyle(QCPScatterStyle::ssCircle, QPen(Qt::black, 2), Qt::NoBrush, 17));

    budgetLine_ = new QCPItemStraightLine(scatter_);
    budgetLine_->setPen(QPen(QColor(0x44, 0x44, 0x44), 1.5, Qt::DashLine));
    budgetLabel_ = new QCPItemText(scatter_);
    budgetLabel_->position->setTypeX(QCPItemPosition::ptPlotCoords);
    budgetLabel_->position->setTypeY(QCPItemPosition::ptAxisRectRatio);
    budgetLabel_->setRotation(-90);
    budgetLabel_->setPositionAlignment(Qt::AlignLeft | Qt::AlignBottom); // reads upward, left of the line
    budgetLabel_->setPadding(QMargins(2, 2, 4, 3));
    budgetLabel_->setColor(QColor(0x44, 0x44, 0x44));
    budgetLabel_->setClipToAxisRect(true);

    scatter_->legend->setVisible(true);

    connect(scatter_->xAxis, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), this, [this] {
        if (!settingView_)
            userView_ = true;
    });
    connect(scatter_->yAxis, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), this, [this] {
        if (!settingView_)
            userView_ = true;
    });
    connect(scatter_, &QCustomPlot::mousePress, this, [this](QMouseEvent* e) { pressPos_ = e->pos(); });
    connect(scatter_, &QCustomPlot::mouseRelease, this, [this](QMouseEvent* e) {
        if (e->button() != Qt::LeftButton || (e->pos() - pressPos_).manhattanLength() > kClickSlop)
            return;
        const int i = nearestPoint(e->pos(), kClickPixels);
        if (i < 0)
            return;
        selectTrial(points_.number[size_t(i)]);
        Q_EMIT trialActivated(runId_, points_.number[size_t(i)]);
    });
    connect(scatter_, &QCustomPlot::mouseDoubleClick, this, [this](QMouseEvent*) {
        userView_ = false;
        rescale();
        scatter_->replot();
    });
    installPlotContextMenuAt(scatter_, [this](QMenu& menu, const QPoint& pos) { populateContextMenu(menu, pos); });
    new PlotToolTip(scatter_, [this](const QPoint& pos) { return scatterToolTip(pos); });
}

int SearchPanel::populateContextMenu(QMenu& menu, const QPoint& pos)
{
    const int i = nearestPoint(pos, kClickPixels);
    const int trial = i < 0 ? -1 : points_.number[size_t(i)];
    if (trial >= 0 && trialMenu_) {
        selectTrial(trial);
        menu.addSection(tr("Trial %1").arg(trial));
        trialMenu_(menu, runId_, trial);
        menu.addSeparator();
    }
    menu.addAction(tr("Reset zoom"), this, [this] {
        userView_ = false;
        rescale();
        scatter_->replot();
    });
    return trial;
}

void SearchPanel::buildHypervolumePlot()
{
    hvPlot_ = new QCustomPlot(this);
    hvPlot_->setObjectName(QStringLiteral("search-hypervolume"));
    hvPlot_->setMinimumHeight(150);
    applyPlotStyle(hvPlot_);
    hv_ = hvPlot_->addGraph();
    hv_->setName(tr("hypervolume"));
    hv_->setLineStyle(QCPGraph::lsStepLeft);
    hv_->setPen(QPen(runColor(0), 2));
    hv_->setBrush(QBrush(QColor(0x4e, 0x79, 0xa7, 40)));
    hvPlot_->xAxis->setLabel(tr("Completed trials (in the order they finished)"));
    hvPlot_->yAxis->setLabel(tr("Hypervolume\n(fraction of box)"));
    auto ticker = QSharedPointer<QCPAxisTickerFixed>::create();
    ticker->setTickStep(1);
    ticker->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
    hvPlot_->xAxis->setTicker(ticker);
    installPlotContextMenu(hvPlot_);
    new PlotToolTip(hvPlot_, [this](const QPoint& pos) { return hypervolumeToolTip(pos); });
}

void SearchPanel::setRun(const RunSnapshot& snapshot)
{
    coalesce_.stop();
    pending_.reset();
    runId_ = snapshot.run.id;
    runName_ = snapshot.run.name;
    status_ = snapshot.run.status;
    selected_ = -1;
    userView_ = false;
    apply(trialInput(snapshot));
}

void SearchPanel::updateRun(const RunSnapshot& snapshot)
{
    if (!applied_ || snapshot.run.id != runId_) {
        setRun(snapshot);
        return;
    }
    const bool statusChanged = snapshot.run.status != status_;
    status_ = snapshot.run.status;
    TrialInput input = trialInput(snapshot);
    const uint64_t signature = input.signature();
    if (signature == appliedSignature_ && !pending_) {
        if (statusChanged)
            updateCaption(); // a label, not a replot
        return;
    }
    pending_ = std::move(input);
    if (!coalesce_.isActive())
        coalesce_.start();
}

void SearchPanel::applyPending()
{
    if (!pending_)
        return;
    TrialInput input = std::move(*pending_);
    pending_.reset();
    if (input.signature() == appliedSignature_) { // changed and changed back within the burst
        updateCaption();
        return;
    }
    apply(input);
}

void SearchPanel::clear()
{
    coalesce_.stop();
    pending_.reset();
    runId_ = 0;
    runName_.clear();
    selected_ = -1;
    userView_ = false;
    apply(TrialInput{});
    applied_ = false;
}

void SearchPanel::apply(const TrialInput& input)
{
    appliedSignature_ = input.signature();
    applied_ = true;
    budgetText_ = input.budget;
    trialsAsked_ = input.trialsAsked;
    exhausted_ = input.exhausted;
    points_ = trialPoints(input);
    const TrialPoints& p = points_;

    trials_->setData(p.memory, p.shown, true);
    // Tens of thousands of antialiased outlined circles take a visible fraction of a second to draw; plain
    // small discs without antialiasing keep a big run's replot fast.
    const bool many = p.size() > kManyTrials;
    trials_->setScatterStyle(many ? QCPScatterStyle(QCPScatterStyle::ssDisc, trialColorMany(), 3) : trialStyle());
    trials_->setAntialiasedScatters(!many);
    QVector<double> fx, fy;
    onFront_.assign(size_t(p.size()), false);
    for (size_t i : p.front) {
        fx << p.memory[qsizetype(i)];
        fy << p.shown[qsizetype(i)];
        onFront_[i] = true;
    }
    front_->setData(fx, fy, true);
    auto markerData = [&p](QCPGraph* g, const std::vector<size_t>& indices) {
        QVector<double> x, y;
        for (size_t i : indices) {
            x << p.memory[qsizetype(i)];
            y << p.shown[qsizetype(i)];
        }
        g->setData(x, y); // sorted by QCPGraph; only a few points
    };
    markerData(importance_, p.importance ? std::vector<size_t>{*p.importance} : std::vector<size_t>{});
    std::vector<size_t> uniformIdx;
    for (const TrialMarker& m : p.uniform)
        uniformIdx.push_back(m.index);
    markerData(uniform_, uniformIdx);
    markerData(manual_, p.manual);
    markerData(best_, p.bestInBudget >= 0 ? std::vector<size_t>{size_t(p.bestInBudget)} : std::vector<size_t>{});

    // The legend lists only what is on the plot.
    scatter_->legend->clearItems();
    for (QCPGraph* g : {trials_, front_, best_, importance_, uniform_, manual_})
        if (!g->data()->isEmpty())
            g->addToLegend();
    const bool accuracy = p.objective == "accuracy";
    scatter_->axisRect()->insetLayout()->setInsetAlignment(
        0, Qt::AlignRight | (accuracy ? Qt::AlignBottom : Qt::AlignTop));

    budgetLine_->setVisible(bool(p.budgetMemory));
    budgetLabel_->setVisible(bool(p.budgetMemory));
    if (p.budgetMemory) {
        budgetLine_->point1->setCoords(*p.budgetMemory, 0);
        budgetLine_->point2->setCoords(*p.budgetMemory, 1);
        budgetLabel_->position->setCoords(*p.budgetMemory, 0.98);
        budgetLabel_->setText(input.budget.empty() ? tr("budget") : tr("budget %1").arg(QString::fromStdString(input.budget)));
    }

    double maxMemory = p.budgetMemory.value_or(0);
    for (double m : p.memory)
        maxMemory = std::max(maxMemory, m);
    memoryTicker_->setUnitFor(maxMemory);
    scatter_->xAxis->setLabel(tr("Memory (%1)").arg(memoryTicker_->unitName()));
    scatter_->yAxis->setLabel(objectiveAxisLabel(p.objective));

    QVector<double> hx, hy;
    for (size_t i = 0; i < p.hypervolume.size(); ++i) {
        hx << double(i + 1);
        hy << p.hypervolume[i] / p.hypervolumeScale;
    }
    hv_->setData(hx, hy, true);
    hv_->setScatterStyle(hx.size() <= 300 ? QCPScatterStyle(QCPScatterStyle::ssDisc, 4) : QCPScatterStyle());
    hvPlot_->xAxis->setRange(0.5, std::max(1.0, double(hx.size())) + 0.5);
    double maxHv = 0;
    for (double v : hy)
        maxHv = std::max(maxHv, v);
    hvPlot_->yAxis->setRange(0, maxHv > 0 ? std::min(1.0, maxHv * 1.12) : 1.0);

    showSelection(); // the highlight follows the selected trial
    if (!userView_)
        rescale();
    else
        placeMarkerLabels();
    updateCaption();
    scatter_->replot();
    hvPlot_->replot();
}

void SearchPanel::rescale()
{
    const TrialPoints& p = points_;
    settingView_ = true;
    if (p.size() == 0) {
        scatter_->xAxis->setRange(0, p.budgetMemory ? *p.budgetMemory * 1.1 : 1024);
        scatter_->yAxis->setScaleType(QCPAxis::stLinear);
        scatter_->yAxis->setTicker(QSharedPointer<QCPAxisTicker>::create());
        scatter_->yAxis->setRange(0, 1);
        settingView_ = false;
        return;
    }
    double xlo = p.memory.front(), xhi = p.memory.back();
    if (p.budgetMemory) {
        xlo = std::min(xlo, *p.budgetMemory);
        xhi = std::max(xhi, *p.budgetMemory);
    }
    const double xpad = xhi > xlo ? 0.06 * (xhi - xlo) : 0.05 * std::max(1.0, xhi);
    scatter_->xAxis->setRange(xlo - xpad, xhi + xpad);

    const auto [ylo, yhi] = std::minmax_element(p.shown.begin(), p.shown.end());
    // A perplexity search spans orders of magnitude once a narrow format breaks the model; a log axis keeps
    // the front readable next to such trials.
    const bool logY = p.objective == "ppl" && *ylo > 0 && *yhi / *ylo > 20;
    if (logY) {
        scatter_->yAxis->setScaleType(QCPAxis::stLogarithmic);
        scatter_->yAxis->setTicker(QSharedPointer<QCPAxisTickerLog>::create());
        scatter_->yAxis->setRange(*ylo / 1.15, *yhi * 1.15);
    } else {
        scatter_->yAxis->setScaleType(QCPAxis::stLinear);
        if (scatter_->yAxis->ticker().dynamicCast<QCPAxisTickerLog>())
            scatter_->yAxis->setTicker(QSharedPointer<QCPAxisTicker>::create());
        const double ypad = *yhi > *ylo ? 0.1 * (*yhi - *ylo) : 0.05 * std::max(1e-9, std::fabs(*yhi));
        scatter_->yAxis->setRange(*ylo - ypad, *yhi + ypad);
    }
    settingView_ = false;
    placeMarkerLabels();
}

void SearchPanel::placeMarkerLabels()
{
    for (QCPAbstractItem* item : markerItems_)
        scatter_->removeItem(item);
    markerItems_.clear();
    const TrialPoints& p = points_;
    const QCPRange xr = scatter_->xAxis->range();
    QFont font = scatter_->font();
    font.setPointSizeF(8.5);
    font.setBold(true);
    auto addLabel = [&](size_t i, const QString& text, const QColor& color) {
        // An invisible tracer holds the trial's coordinates; the label hangs off it by a fixed pixel offset,
        // so it stays beside its marker at any zoom.
        auto* anchor = new QCPItemTracer(scatter_);
        anchor->setStyle(QCPItemTracer::tsNone);
        anchor->position->setCoords(p.memory[qsizetype(i)], p.shown[qsizetype(i)]);
        auto* label = new QCPItemText(scatter_);
        label->position->setParentAnchor(anchor->position);
        // Toward the middle of the plot, so a label at either end stays inside it.
        const bool right = p.memory[qsizetype(i)] < xr.center();
        label->position->setCoords(right ? 8 : -8, -5);
        label->setPositionAlignment((right ? Qt::AlignLeft : Qt::AlignRight) | Qt::AlignBottom);
        label->setPadding(QMargins(2, 0, 2, 0));
        label->setText(text);
        label->setColor(color.darker(150));
        label->setFont(font);
        label->setBrush(QColor(255, 255, 255, 190)); // readable over a dense cloud of trials
        label->setClipToAxisRect(true);
        markerItems_ << anchor << label;
    };
    if (p.importance)
        addLabel(*p.importance, tr("importance-aware"), kImportanceColor);
    for (const TrialMarker& m : p.uniform)
        addLabel(m.index, m.label, kUniformColor);
}

void SearchPanel::selectTrial(int number)
{
    selected_ = number;
    showSelection();
    scatter_->replot();
}

void SearchPanel::showSelection()
{
    QVector<double> x, y;
    if (selected_ >= 0)
        for (int i = 0; i < points_.size(); ++i)
            if (points_.number[size_t(i)] == selected_) {
                x << points_.memory[i];
                y << points_.shown[i];
                break;
            }
    selection_->setData(x, y, true);
}

std::optional<double> SearchPanel::budgetLineX() const
{
    if (!budgetLine_->visible())
        return std::nullopt;
    return budgetLine_->point1->coords().x();
}

int SearchPanel::plottedTrialCount() const
{
    return trials_->data()->size();
}

QList<QCustomPlot*> SearchPanel::plots() const
{
    return {scatter_, hvPlot_};
}

QString SearchPanel::caption() const
{
    return caption_->text();
}

QPoint SearchPanel::trialPosition(int number) const
{
    for (int i = 0; i < points_.size(); ++i)
        if (points_.number[size_t(i)] == number)
            return QPointF(scatter_->xAxis->coordToPixel(points_.memory[i]),
                           scatter_->yAxis->coordToPixel(points_.shown[i]))
                .toPoint();
    return {-1, -1};
}

void SearchPanel::updateCaption()
{
    const TrialPoints& p = points_;
    if (runId_ == 0 && p.complete + p.running + p.failed == 0) {
        caption_->setText(tr("No run selected."));
        return;
    }
    QStringList parts;
    QString head = tr("<b>%1</b>").arg(runLabel(runId_, runName_, 60).toHtmlEscaped());
    if (status_ == store::RunStatus::Running)
        head += tr(" (running)");
    parts << head;
    QString counts = tr("<b>%1</b> complete").arg(p.complete);
    if (trialsAsked_ > 0)
        counts += tr(" of %1 asked").arg(trialsAsked_);
    counts += tr(", %1 running").arg(p.running);
    if (p.lowFidelity > 0)
        counts += tr(", %1 scored at lower fidelity (not plotted)").arg(p.lowFidelity);
    counts += p.failed > 0 ? tr(", <span style='color:#c0392b'><b>%1 failed</b></span>").arg(p.failed)
                           : tr(", 0 failed");
    parts << counts;
    if (exhausted_)
        parts << tr("<b>search space exhausted</b>: every feasible map was evaluated");
    if (p.budgetMemory)
        parts << tr("budget %1 = %2 in all")
                     .arg(QString::fromStdString(budgetText_).toHtmlEscaped(), memoryTicker_->format(*p.budgetMemory));
    if (p.bestInBudget >= 0) {
        const size_t b = size_t(p.bestInBudget);
        parts << tr("best%1: trial %2, %3 %4 at %5")
                     .arg(p.budgetMemory ? tr(" within budget") : QString())
                     .arg(p.number[b])
                     .arg(objectiveShortName(p.objective), formatObjective(p.shown[qsizetype(b)]),
                          memoryTicker_->format(p.memory[qsizetype(b)]));
    } else if (p.budgetMemory && p.size() > 0) {
        parts << tr("<span style='color:#c0392b'>no complete trial fits the budget</span>");
    }
    if (p.size() == 0)
        parts << tr("no complete trials yet");
    caption_->setText(parts.join(QStringLiteral(" &nbsp;·&nbsp; ")));
}

int SearchPanel::nearestPoint(const QPoint& pos, double maxPixels) const
{
    if (!scatter_->axisRect()->rect().contains(pos))
        return -1;
    const QCPAxis* x = scatter_->xAxis;
    const QCPAxis* y = scatter_->yAxis;
    int best = -1;
    double bestD2 = maxPixels * maxPixels;
    for (int i = 0; i < points_.size(); ++i) {
        const double dx = x->coordToPixel(points_.memory[i]) - pos.x();
        if (std::fabs(dx) > maxPixels)
            continue;
        const double dy = y->coordToPixel(points_.shown[i]) - pos.y();
        const double d2 = dx * dx + dy * dy;
        if (d2 <= bestD2) {
            // Equal distance (stacked duplicates): the front point wins, so the best trial is the one picked.
            if (d2 == bestD2 && best >= 0 && !onFront_[size_t(i)])
                continue;
            bestD2 = d2;
            best = i;
        }
    }
    return best;
}

QString SearchPanel::scatterToolTip(const QPoint& pos) const
{
    const int i = nearestPoint(pos, kClickPixels);
    if (i < 0)
        return QString();
    const size_t k = size_t(i);
    QStringList lines;
    lines << tr("<b>trial %1</b>").arg(points_.number[k]);
    lines << tr("memory %1").arg(formatBytesExact(qint64(points_.memory[i])));
    lines << tr("%1 %2").arg(objectiveShortName(points_.objective), formatObjective(points_.shown[i]));
    if (onFront_[k])
        lines << tr("on the Pareto front");
    if (points_.importance && *points_.importance == k)
        lines << tr("importance-aware start");
    for (const TrialMarker& m : points_.uniform)
        if (m.index == k)
            lines << tr("uniform %1").arg(m.label);
    if (std::find(points_.manual.begin(), points_.manual.end(), k) != points_.manual.end())
        lines << tr("manual");
    if (points_.budgetMemory && points_.memory[i] > *points_.budgetMemory)
        lines << tr("over the budget");
    lines << tr("<i>click to open its map</i>");
    return lines.join(QStringLiteral("<br>"));
}

QString SearchPanel::hypervolumeToolTip(const QPoint& pos) const
{
    if (points_.hypervolume.empty() || !hvPlot_->axisRect()->rect().contains(pos))
        return QString();
    const long i = std::lround(hvPlot_->xAxis->pixelToCoord(pos.x())) - 1;
    if (i < 0 || size_t(i) >= points_.hypervolume.size())
        return QString();
    const double raw = points_.hypervolume[size_t(i)];
    return tr("after %1 completed trials<br>hypervolume %2 of the box (raw %3)<br>reference point: %4, %5 %6")
        .arg(i + 1)
        .arg(formatObjective(raw / points_.hypervolumeScale), formatObjective(raw),
             formatBytesExact(qint64(points_.reference.memory)), objectiveShortName(points_.objective),
             formatObjective(points_.reference.objective));
}

} // namespace qpruner::ui

// Heatmap plot: the grid, its axes and its cell labels.
#include "plots/heatmap_plot.h"

#include <cmath>

#include <QFontMetrics>

#include "plots/plot_style.h"
#include "plots/plot_tooltip.h"

namespace qpruner::ui {

namespace {

// Cell labels are items; beyond this many cells they would cost more than they tell.
constexpr int kMaxLabelledCells = 1200;

QCPRange cellRange(int count)
{
    // A colour map draws nothing for a dimension of one cell, so one cell is stored twice across [-0.25, 0.25]
    // and still covers [-0.5, 0.5] like every other cell.
    return count == 1 ? QCPRange(-0.25, 0.25) : QCPRange(0, count - 1);
}

} // namespace

HeatmapPlot::HeatmapPlot(RowAxis rowAxis, QWidget* parent) : QCustomPlot(parent), rowAxisKind_(rowAxis)
{
    applyPlotStyle(this);
    for (QCPAxis* axis : {xAxis, yAxis}) {
        axis->grid()->setVisible(false);
        axis->setSubTicks(false);
        axis->setTickLength(0, 3);
    }
    const bool rowsHorizontal = rowAxis == RowAxis::Horizontal;
    map_ = new QCPColorMap(rowsHorizontal ? xAxis : yAxis, rowsHorizontal ? yAxis : xAxis);
    map_->setInterpolate(false);
    map_->setTightBoundary(false);
    map_->setGradient(scoreGradient());
    // Row 0 and column 0 (q) read first: at the left / top.
    columnAxis()->setRangeReversed(rowsHorizontal);
    this->rowAxis()->setRangeReversed(!rowsHorizontal);

    auto rowTicker = QSharedPointer<QCPAxisTickerFixed>::create();
    rowTicker->setTickStep(1);
    rowTicker->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
    this->rowAxis()->setTicker(rowTicker);
    this->rowAxis()->setLabel(QStringLiteral("layer"));

    setMinimumSize(160, 120);
    new PlotToolTip(this, [this](const QPoint& pos) {
        const QPoint cell = cellAt(pos);
        if (cell.x() < 0 || !cellToolTip_)
            return QString();
        return cellToolTip_(cell.y(), cell.x());
    });
    connect(this, &QCustomPlot::beforeReplot, this, &HeatmapPlot::updateCellLabelVisibility);
}

QCPAxis* HeatmapPlot::rowAxis() const
{
    return rowAxisKind_ == RowAxis::Horizontal ? xAxis : yAxis;
}

QCPAxis* HeatmapPlot::columnAxis() const
{
    return rowAxisKind_ == RowAxis::Horizontal ? yAxis : xAxis;
}

void HeatmapPlot::setGrid(const std::vector<std::vector<double>>& values, const QStringList& columnLabels)
{
    rows_ = int(values.size());
    columns_ = int(columnLabels.size());
    if (rows_ == 0 || columns_ == 0) {
        clearGrid();
        return;
    }
    QCPColorMapData* data = map_->data();
    data->setSize(rows_ == 1 ? 2 : rows_, columns_ == 1 ? 2 : columns_);
    data->setRange(cellRange(rows_), cellRange(columns_));
    for (int r = 0; r < data->keySize(); ++r)
        for (int c = 0; c < data->valueSize(); ++c) {
            const auto& row = values[size_t(std::min(r, rows_ - 1))];
            const size_t column = size_t(std::min(c, columns_ - 1));
            data->setCell(r, c, column < row.size() ? row[column] : std::nan(""));
        }

    auto columnTicker = QSharedPointer<QCPAxisTickerText>::create();
    for (int c = 0; c < columns_; ++c)
        columnTicker->addTick(c, columnLabels[c]);
    columnAxis()->setTicker(columnTicker);
    rowAxis()->setRange(-0.5, rows_ - 0.5);
    columnAxis()->setRange(-0.5, columns_ - 0.5);
    rebuildCellLabels();
}

void HeatmapPlot::clearGrid()
{
    rows_ = 0;
    columns_ = 0;
    map_->data()->clear();
    rebuildCellLabels();
}

void HeatmapPlot::setAxisTitles(const QString& rowTitle, const QString& columnTitle)
{
    rowAxis()->setLabel(rowTitle);
    columnAxis()->setLabel(columnTitle);
}

void HeatmapPlot::setColors(const QCPColorGradient& gradient, const QCPRange& dataRange)
{
    map_->setGradient(gradient);
    map_->setDataRange(dataRange);
    rebuildCellLabels(); // label colours follow the cell colours
}

void HeatmapPlot::setColorScaleLabel(const QString& label)
{
    if (!scale_) {
        scale_ = new QCPColorScale(this);
        scale_->setType(QCPAxis::atRight);
        scale_->setBarWidth(10);
        scale_->axis()->setTickLabelFont(xAxis->tickLabelFont());
        scale_->axis()->setLabelFont(xAxis->labelFont());
        plotLayout()->addElement(plotLayout()->rowCount() - 1, 1, scale_);
        marginGroup_ = new QCPMarginGroup(this);
        axisRect()->setMarginGroup(QCP::msTop | QCP::msBottom, marginGroup_);
        scale_->setMarginGroup(QCP::msTop | QCP::msBottom, marginGroup_);
        // Attaching a scale hands the map the scale's gradient and range: keep the map's own.
        const QCPRange range = map_->dataRange();
        const QCPColorGradient gradient = map_->gradient();
        map_->setColorScale(scale_);
        map_->setGradient(gradient);
        map_->setDataRange(range);
    }
    scale_->axis()->setLabel(label);
}

void HeatmapPlot::setTitle(const QString& title)
{
    if (!title_)
        title_ = addPlotTitle(this, title);
    else
        title_->setText(title);
}

void HeatmapPlot::setCellText(CellText text)
{
    cellText_ = std::move(text);
    rebuildCellLabels();
}

void HeatmapPlot::setCellToolTip(CellText text)
{
    cellToolTip_ = std::move(text);
}

double HeatmapPlot::cellValue(int row, int column) const
{
    if (row < 0 || row >= rows_ || column < 0 || column >= columns_)
        return std::nan("");
    return map_->data()->cell(row, column);
}

QPoint HeatmapPlot::cellAt(const QPoint& pos) const
{
    if (rows_ == 0 || !axisRect()->rect().contains(pos))
        return {-1, -1};
    double key = 0;
    double value = 0;
    map_->pixelsToCoords(QPointF(pos), key, value);
    const int row = int(std::lround(key));
    const int column = int(std::lround(value));
    if (row < 0 || row >= rows_ || column < 0 || column >= columns_)
        return {-1, -1};
    return {column, row};
}

QPoint HeatmapPlot::cellCenter(int row, int column) const
{
    return map_->coordsToPixels(row, column).toPoint();
}

void HeatmapPlot::rebuildCellLabels()
{
    for (QCPItemText* label : labels_)
        removeItem(label);
    labels_.clear();
    if (!cellText_ || rows_ * columns_ > kMaxLabelledCells)
        return;
    QFont font = this->font();
    font.setPointSizeF(7.5);
    QCPColorGradient gradient = map_->gradient(); // color() is not const
    for (int r = 0; r < rows_; ++r)
        for (int c = 0; c < columns_; ++c) {
            const QString text = cellText_(r, c);
            if (text.isEmpty())
                continue;
            auto* label = new QCPItemText(this);
            label->setFont(font);
            label->setText(text);
            label->setClipToAxisRect(true);
            label->position->setAxes(map_->keyAxis(), map_->valueAxis());
            label->position->setCoords(r, c);
            label->setPositionAlignment(Qt::AlignCenter);
            const double v = cellValue(r, c);
            const QColor bg = std::isnan(v) ? QColor(Qt::white) : QColor(gradient.color(v, map_->dataRange()));
            const double y = 0.2126 * bg.redF() + 0.7152 * bg.greenF() + 0.0722 * bg.blueF();
            label->setColor(y > 0.5 ? Qt::black : Qt::white);
            labels_.push_back(label);
        }
}

void HeatmapPlot::updateCellLabelVisibility()
{
    if (labels_.empty())
        return;
    updateLayout(); // the axis rect's size for this replot, before it is drawn
    const QRect rect = axisRect()->rect();
    const bool rowsHorizontal = rowAxisKind_ == RowAxis::Horizontal;
    const double cellWidth = double(rect.width()) / (rowsHorizontal ? rows_ : columns_);
    const double cellHeight = double(rect.height()) / (rowsHorizontal ? columns_ : rows_);
    const QFontMetrics metrics(labels_.front()->font());
    for (QCPItemText* label : labels_) {
        const QRect box = metrics.boundingRect(label->text());
        label->setVisible(box.width() + 2 <= cellWidth && box.height() <= cellHeight + 1);
    }
}

} // namespace qpruner::ui

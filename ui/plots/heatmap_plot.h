// A grid heatmap of layers x columns (modules, or a single score column) on a QCPColorMap: crisp cells, text
// labels in the cells when they fit, an optional colour scale and a tooltip per cell. The importance tab lays
// layers along x (aligned with its per-layer bars); the compare tab lays them down y, so maps sit side by side.
#pragma once

#include <functional>
#include <vector>

#include <QPoint>
#include <QStringList>

#include "plots/qcustomplot_compat.h"

namespace qpruner::ui {

class HeatmapPlot : public QCustomPlot {
    Q_OBJECT
public:
    enum class RowAxis { Horizontal, Vertical };
    using CellText = std::function<QString(int row, int column)>;

    explicit HeatmapPlot(RowAxis rowAxis, QWidget* parent = nullptr);

    // values[row][column] (every row columnLabels.size() long); NaN leaves a cell blank. Resets the view.
    void setGrid(const std::vector<std::vector<double>>& values, const QStringList& columnLabels);
    void clearGrid();
    void setAxisTitles(const QString& rowTitle, const QString& columnTitle);
    void setColors(const QCPColorGradient& gradient, const QCPRange& dataRange);
    // Shows a colour scale beside the grid, labelled `label`.
    void setColorScaleLabel(const QString& label);
    void setTitle(const QString& title);
    // Text drawn in each cell (empty: none) when the cells are large enough for it.
    void setCellText(CellText text);
    // Tooltip of a cell; empty text: none.
    void setCellToolTip(CellText text);

    int rowCount() const { return rows_; }
    int columnCount() const { return columns_; }
    // The value stored for a cell (what the colour shows).
    double cellValue(int row, int column) const;
    // {column, row} of the cell under widget position `pos`, or {-1, -1}.
    QPoint cellAt(const QPoint& pos) const;
    // Widget position of a cell's centre (valid after a replot laid the plot out).
    QPoint cellCenter(int row, int column) const;
    QCPColorMap* colorMap() const { return map_; }
    QCPColorScale* colorScale() const { return scale_; }

private:
    QCPAxis* rowAxis() const;
    QCPAxis* columnAxis() const;
    void rebuildCellLabels();
    void updateCellLabelVisibility();

    RowAxis rowAxisKind_;
    QCPColorMap* map_ = nullptr;
    QCPColorScale* scale_ = nullptr;
    QCPTextElement* title_ = nullptr;
    QCPMarginGroup* marginGroup_ = nullptr;
    int rows_ = 0;
    int columns_ = 0;
    CellText cellText_;
    CellText cellToolTip_;
    std::vector<QCPItemText*> labels_;
};

} // namespace qpruner::ui

// The precision-map grid: rows are decoder layers 0..L-1, columns the seven linears (q k v o gate up down),
// each cell filled with its format's colour and short label. Custom painted on a scroll area (headers stay in
// place while the cells scroll), so an 80-layer model paints 560 rectangles and nothing more.
//
// Editing (every edit is one SetCellsCommand on the undo stack; a drag-paint is one step):
//   left click on a cell        paints it with the paint format and selects it; dragging paints every cell
//                               the pointer crosses
//   Ctrl+click / Shift+click    toggles a cell / selects the rectangle from the anchor (no painting)
//   click on a row / column     selects the layer / the module; Ctrl adds, Shift extends, dragging extends
//   header, on the corner       selects all
//   right click                 "Set selection to <format>" per candidate, select row / column / all
//   keys                        arrows move (Shift extends), digits 1..9 set the selection to the Nth
//                               candidate, Space/Enter to the paint format, Ctrl+A all, Esc clears
#pragma once

#include <QAbstractScrollArea>

#include <array>
#include <vector>

#include "mapeditor/cell_selection.h"
#include "mapeditor/map_document.h"

class QMenu;
class QUndoStack;

namespace qpruner::ui {

class PrecisionMapGrid : public QAbstractScrollArea {
    Q_OBJECT

public:
    enum class Region { None, Corner, ColumnHeader, RowHeader, Cell };
    struct Hit {
        Region region = Region::None;
        int layer = -1;
        int module = -1;
    };

    // Width of the per-layer importance bar in the row header.
    static constexpr int kImportanceBarWidth = 26;

    PrecisionMapGrid(MapDocument* document, QUndoStack* stack, QWidget* parent = nullptr);

    void setCandidates(const std::vector<QuantSpec>& candidates);
    const std::vector<QuantSpec>& candidates() const { return candidates_; }
    void setPaintFormat(const QuantSpec& spec) { paint_ = spec; }
    const QuantSpec& paintFormat() const { return paint_; }

    // Normalised importance in [0, 1]: per layer (a bar in the row header) and per layer and module (a bar in
    // each cell). Either may be empty or shorter than the model; missing values draw nothing.
    void setImportance(std::vector<double> perLayer, std::vector<std::array<double, kLinearModuleCount>> perModule);
    void setImportanceVisible(bool visible);
    bool importanceVisible() const { return overlay_; }
    bool hasImportance() const { return !perLayer_.empty() || !perModule_.empty(); }

    // --- selection (cells in layer, module order) ---
    std::vector<MapCell> selection() const;
    void setSelection(const std::vector<MapCell>& cells);
    void selectRow(int layer, bool extend = false);
    void selectColumn(int module, bool extend = false);
    void selectAll();
    void clearSelection();
    bool isSelected(const MapCell& cell) const;
    MapCell currentCell() const { return current_; }
    void setCurrentCell(const MapCell& cell);

    // Sets every selected cell to `spec` as one undo step; false when nothing changed (nothing pushed).
    bool setSelectionFormat(const QuantSpec& spec);

    // --- geometry, in viewport coordinates (what tests click on) ---
    QRect cellRect(const MapCell& cell) const;
    QRect rowHeaderRect(int layer) const;
    QRect columnHeaderRect(int module) const;
    QRect cornerRect() const;
    int rowHeaderWidth() const;
    int headerHeight() const { return headerHeight_; }
    int rowHeight() const { return rowHeight_; }
    Hit hitTest(const QPoint& viewportPos) const;
    void ensureCellVisible(const MapCell& cell);

    // --- what the painter reads ---
    const MapDocument& document() const { return *document_; }
    const CellSelection& cellSelection() const { return selection_; }
    const std::vector<double>& layerImportance() const { return perLayer_; }
    const std::vector<std::array<double, kLinearModuleCount>>& moduleImportance() const { return perModule_; }

    // The tooltip of a cell: layer, module, format, stored bytes, shape, importance.
    QString cellToolTip(const MapCell& cell) const;
    // The context menu for a click at `viewportPos` (it may change the selection, as a right click does).
    // The caller owns the menu.
    QMenu* createContextMenu(const QPoint& viewportPos, QWidget* parent = nullptr);

    QSize sizeHint() const override;
    QSize minimumSizeHint() const override;

Q_SIGNALS:
    void selectionChanged();
    void currentCellChanged(const qpruner::ui::MapCell& cell);

protected:
    void paintEvent(QPaintEvent* event) override;
    void resizeEvent(QResizeEvent* event) override;
    void scrollContentsBy(int dx, int dy) override;
    bool viewportEvent(QEvent* event) override;
    void mousePressEvent(QMouseEvent* event) override;
    void mouseMoveEvent(QMouseEvent* event) override;
    void mouseReleaseEvent(QMouseEvent* event) override;
    void keyPressEvent(QKeyEvent* event) override;
    void contextMenuEvent(QContextMenuEvent* event) override;
    void changeEvent(QEvent* event) override;

private:
    enum class DragMode { None, Paint, SelectCells, SelectRows, SelectColumns };

    int layers() const { return document_->hasModel() ? document_->layerCount() : 0; }
    void updateMetrics();
    void updateScrollBars();
    int columnWidth() const;
    MapCell clampedCellAt(const QPoint& viewportPos) const;

    bool apply(const std::vector<MapCell>& cells, const QuantSpec& spec, const QString& text, int dragId = -1);
    void paintAlong(const MapCell& from, const MapCell& to);
    void moveCurrent(int dLayer, int dModule, bool extend);
    QString describe(const std::vector<MapCell>& cells, const QuantSpec& spec) const;
    // Replaces the selection (repaint and selectionChanged only when it differs).
    void select(const CellSelection& next);
    void onModelReset();

    MapDocument* document_;
    QUndoStack* stack_;
    std::vector<QuantSpec> candidates_;
    QuantSpec paint_;

    CellSelection selection_;
    CellSelection dragBase_; // what a drag or Shift/Ctrl click extends: the selection it started from
    MapCell current_;
    MapCell anchor_;
    int anchorRow_ = 0;
    int anchorColumn_ = 0;

    DragMode drag_ = DragMode::None;
    int dragId_ = -1;
    int nextDragId_ = 0;
    MapCell lastPainted_;

    std::vector<double> perLayer_;
    std::vector<std::array<double, kLinearModuleCount>> perModule_;
    bool overlay_ = true;

    int rowHeight_ = 20;
    int headerHeight_ = 22;
};

} // namespace qpruner::ui

// Paints the precision-map grid: format-coloured cells with their short labels, the importance bars, the
// selection outlines and the fixed row and column headers. Kept apart from the grid's interaction code; it
// reads everything through the grid's public geometry and state and changes nothing.
#pragma once

class QPainter;

namespace qpruner::ui {

class PrecisionMapGrid;

class MapGridPainter {
public:
    explicit MapGridPainter(const PrecisionMapGrid& grid) : grid_(grid) {}

    // Paints the whole viewport of the grid.
    void paint(QPainter& p) const;

private:
    void paintCells(QPainter& p, int firstRow, int lastRow) const;
    void paintColumnHeader(QPainter& p) const;
    void paintRowHeader(QPainter& p, int firstRow, int lastRow) const;
    void paintCorner(QPainter& p) const;

    const PrecisionMapGrid& grid_;
};

} // namespace qpruner::ui

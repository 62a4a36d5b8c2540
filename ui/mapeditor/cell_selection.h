// Which cells of the map grid are selected: one flag per (layer, module), with the row, column and rectangle
// operations the grid's clicks, drags and keys need. Plain value type, so the grid can keep the selection a
// Ctrl-drag started from and rebuild the extended one from it on every mouse move.
#pragma once

#include <vector>

#include "mapeditor/map_document.h"

namespace qpruner::ui {

class CellSelection {
public:
    explicit CellSelection(int layers = 0) { reset(layers); }

    // Empties the selection and sizes it for `layers` decoder layers.
    void reset(int layers);
    int layers() const { return layers_; }

    bool contains(const MapCell& cell) const;
    bool empty() const;
    // The selected cells in layer, module order.
    std::vector<MapCell> cells() const;
    bool wholeRow(int layer) const;
    bool wholeColumn(int module) const;

    void clear();
    void selectAll();
    void add(const MapCell& cell);
    void toggle(const MapCell& cell);
    // Inclusive ranges; the ends may come in either order and are clamped to the grid.
    void addRows(int a, int b);
    void addColumns(int a, int b);
    void addRect(const MapCell& a, const MapCell& b);

    bool operator==(const CellSelection&) const = default;

private:
    bool valid(const MapCell& cell) const;
    size_t index(const MapCell& cell) const { return size_t(cell.layer) * kLinearModuleCount + size_t(cell.module); }

    int layers_ = 0;
    std::vector<char> flags_;
};

} // namespace qpruner::ui

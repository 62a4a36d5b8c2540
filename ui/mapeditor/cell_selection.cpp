// Cell selection flags of the map grid.
#include "mapeditor/cell_selection.h"

#include <algorithm>

namespace qpruner::ui {

void CellSelection::reset(int layers)
{
    layers_ = std::max(0, layers);
    flags_.assign(size_t(layers_) * kLinearModuleCount, 0);
}

bool CellSelection::valid(const MapCell& cell) const
{
    return cell.layer >= 0 && cell.layer < layers_ && cell.module >= 0 && cell.module < kLinearModuleCount;
}

bool CellSelection::contains(const MapCell& cell) const
{
    return valid(cell) && flags_[index(cell)];
}

bool CellSelection::empty() const
{
    return std::find(flags_.begin(), flags_.end(), char(1)) == flags_.end();
}

std::vector<MapCell> CellSelection::cells() const
{
    std::vector<MapCell> out;
    for (int l = 0; l < layers_; ++l)
        for (int m = 0; m < kLinearModuleCount; ++m)
            if (flags_[index({l, m})])
                out.push_back({l, m});
    return out;
}

bool CellSelection::wholeRow(int layer) const
{
    if (layer < 0 || layer >= layers_)
        return false;
    for (int m = 0; m < kLinearModuleCount; ++m)
        if (!flags_[index({layer, m})])
            return false;
    return true;
}

bool CellSelection::wholeColumn(int module) const
{
    if (module < 0 || module >= kLinearModuleCount || layers_ == 0)
        return false;
    for (int l = 0; l < layers_; ++l)
        if (!flags_[index({l, module})])
            return false;
    return true;
}

void CellSelection::clear() { std::fill(flags_.begin(), flags_.end(), char(0)); }

void CellSelection::selectAll() { std::fill(flags_.begin(), flags_.end(), char(1)); }

void CellSelection::add(const MapCell& cell)
{
    if (valid(cell))
        flags_[index(cell)] = 1;
}

void CellSelection::toggle(const MapCell& cell)
{
    if (valid(cell))
        flags_[index(cell)] = flags_[index(cell)] ? 0 : 1;
}

void CellSelection::addRows(int a, int b)
{
    addRect({a, 0}, {b, kLinearModuleCount - 1});
}

void CellSelection::addColumns(int a, int b)
{
    addRect({0, a}, {layers_ - 1, b});
}

void CellSelection::addRect(const MapCell& a, const MapCell& b)
{
    if (layers_ == 0)
        return;
    const int l0 = std::clamp(std::min(a.layer, b.layer), 0, layers_ - 1);
    const int l1 = std::clamp(std::max(a.layer, b.layer), 0, layers_ - 1);
    const int m0 = std::clamp(std::min(a.module, b.module), 0, kLinearModuleCount - 1);
    const int m1 = std::clamp(std::max(a.module, b.module), 0, kLinearModuleCount - 1);
    for (int l = l0; l <= l1; ++l)
        for (int m = m0; m <= m1; ++m)
            flags_[index({l, m})] = 1;
}

} // namespace qpruner::ui

// Grid painting: only the visible rows are drawn, so an 80-layer model costs what fits on screen.
#include "mapeditor/map_grid_painter.h"

#include <QPainter>
#include <QScrollBar>

#include <algorithm>

#include "common/format_colors.h"
#include "mapeditor/precision_map_grid.h"

namespace qpruner::ui {

void MapGridPainter::paint(QPainter& p) const
{
    const QWidget* vp = grid_.viewport();
    p.fillRect(vp->rect(), grid_.palette().color(QPalette::Base));
    const MapDocument& doc = grid_.document();
    if (!doc.hasModel()) {
        p.setPen(grid_.palette().color(QPalette::PlaceholderText));
        p.drawText(vp->rect(), Qt::AlignCenter, PrecisionMapGrid::tr("No model: open a run or a model to edit its map"));
        return;
    }
    const int rowHeight = grid_.rowHeight();
    const int scrollY = grid_.verticalScrollBar()->value();
    const int firstRow = std::max(0, scrollY / rowHeight);
    const int lastRow = std::min(doc.layerCount() - 1, (scrollY + vp->height() - grid_.headerHeight()) / rowHeight);
    paintCells(p, firstRow, lastRow);
    paintRowHeader(p, firstRow, lastRow);
    paintColumnHeader(p);
    paintCorner(p);
}

void MapGridPainter::paintCells(QPainter& p, int firstRow, int lastRow) const
{
    const QWidget* vp = grid_.viewport();
    const QPalette& pal = grid_.palette();
    const MapDocument& doc = grid_.document();
    const auto& perModule = grid_.moduleImportance();
    const bool bars = grid_.importanceVisible();
    p.save();
    p.setClipRect(QRect(grid_.rowHeaderWidth(), grid_.headerHeight(), vp->width(), vp->height()));
    QFont small = grid_.font();
    small.setPointSizeF(small.pointSizeF() * 0.9);
    p.setFont(small);
    const QColor gridLine = pal.color(QPalette::Base);
    for (int l = firstRow; l <= lastRow; ++l) {
        for (int m = 0; m < kLinearModuleCount; ++m) {
            const QuantSpec& spec = doc.spec({l, m});
            const QRect r = grid_.cellRect({l, m});
            const QRect inner = r.adjusted(0, 0, -1, -1);
            p.fillRect(inner, formatColor(spec));
            p.setPen(gridLine);
            p.drawLine(r.topRight(), r.bottomRight());
            p.drawLine(r.bottomLeft(), r.bottomRight());
            p.setPen(formatTextColor(spec));
            p.drawText(inner, Qt::AlignCenter, formatShortLabel(spec));
            if (bars && size_t(l) < perModule.size()) {
                const double v = std::clamp(perModule[size_t(l)][size_t(m)], 0.0, 1.0);
                QColor c = formatTextColor(spec);
                c.setAlpha(150);
                p.fillRect(QRect(inner.left() + 2, inner.bottom() - 2, int((inner.width() - 4) * v + 0.5), 2), c);
            }
        }
    }
    // Outlines after all fills, so a neighbour's fill never covers them.
    const CellSelection& selection = grid_.cellSelection();
    for (int l = firstRow; l <= lastRow; ++l) {
        for (int m = 0; m < kLinearModuleCount; ++m) {
            if (!selection.contains({l, m}))
                continue;
            const QRect inner = grid_.cellRect({l, m}).adjusted(1, 1, -2, -2);
            p.setPen(QPen(pal.color(QPalette::Highlight), 2));
            p.drawRect(inner);
            p.setPen(QPen(Qt::white, 1));
            p.drawRect(inner.adjusted(2, 2, -1, -1));
        }
    }
    if (grid_.hasFocus() && doc.contains(grid_.currentCell())) {
        p.setPen(QPen(pal.color(QPalette::Text), 1, Qt::DashLine));
        p.drawRect(grid_.cellRect(grid_.currentCell()).adjusted(0, 0, -1, -1));
    }
    p.restore();
}

void MapGridPainter::paintColumnHeader(QPainter& p) const
{
    const QWidget* vp = grid_.viewport();
    const QPalette& pal = grid_.palette();
    const int height = grid_.headerHeight();
    p.save();
    p.setClipRect(QRect(grid_.rowHeaderWidth(), 0, vp->width(), height));
    p.fillRect(QRect(0, 0, vp->width(), height), pal.color(QPalette::Button));
    for (int m = 0; m < kLinearModuleCount; ++m) {
        const QRect r = grid_.columnHeaderRect(m);
        if (grid_.cellSelection().wholeColumn(m))
            p.fillRect(r, pal.color(QPalette::Highlight).lighter(160));
        p.setPen(pal.color(QPalette::ButtonText));
        p.drawText(r, Qt::AlignCenter, QString::fromLatin1(linearModuleName(kLinearModules[size_t(m)])));
        p.setPen(pal.color(QPalette::Mid));
        p.drawLine(r.topRight(), r.bottomRight());
    }
    p.drawLine(QPoint(0, height - 1), QPoint(vp->width(), height - 1));
    p.restore();
}

void MapGridPainter::paintRowHeader(QPainter& p, int firstRow, int lastRow) const
{
    const QWidget* vp = grid_.viewport();
    const QPalette& pal = grid_.palette();
    const int width = grid_.rowHeaderWidth();
    const int top = grid_.headerHeight();
    const auto& perLayer = grid_.layerImportance();
    const bool bars = grid_.importanceVisible() && !perLayer.empty();
    p.save();
    p.setClipRect(QRect(0, top, width, vp->height()));
    p.fillRect(QRect(0, top, width, vp->height()), pal.color(QPalette::Button));
    for (int l = firstRow; l <= lastRow; ++l) {
        const QRect r = grid_.rowHeaderRect(l);
        if (grid_.cellSelection().wholeRow(l))
            p.fillRect(r, pal.color(QPalette::Highlight).lighter(160));
        if (bars && size_t(l) < perLayer.size()) {
            const double v = std::clamp(perLayer[size_t(l)], 0.0, 1.0);
            const QRect track(r.left() + 4, r.center().y() - 3, PrecisionMapGrid::kImportanceBarWidth, 6);
            p.fillRect(track, pal.color(QPalette::Base));
            p.fillRect(QRect(track.left(), track.top(), int(track.width() * v + 0.5), track.height()),
                       QColor(0x8e, 0x44, 0xad));
        }
        p.setPen(pal.color(QPalette::ButtonText));
        p.drawText(r.adjusted(4, 0, -6, 0), Qt::AlignRight | Qt::AlignVCenter, QString::number(l));
    }
    p.setPen(pal.color(QPalette::Mid));
    p.drawLine(QPoint(width - 1, top), QPoint(width - 1, vp->height()));
    p.restore();
}

void MapGridPainter::paintCorner(QPainter& p) const
{
    const QPalette& pal = grid_.palette();
    const QRect corner = grid_.cornerRect();
    p.fillRect(corner, pal.color(QPalette::Button));
    p.setPen(pal.color(QPalette::ButtonText));
    p.drawText(corner.adjusted(4, 0, -4, 0), Qt::AlignLeft | Qt::AlignVCenter, PrecisionMapGrid::tr("layer"));
    p.setPen(pal.color(QPalette::Mid));
    p.drawLine(corner.bottomLeft(), corner.bottomRight());
    p.drawLine(corner.topRight(), corner.bottomRight());
}

} // namespace qpruner::ui

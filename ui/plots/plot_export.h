// Saving a plot as a figure (PNG, SVG or PDF by the file's suffix) and the "Save plot as..." context menu that
// every plot of the studio carries. A figure is written to a temporary file and renamed over the target, so an
// existing file is never left half-written.
#pragma once

#include <functional>

#include <QPoint>

#include <QString>

class QCustomPlot;
class QMenu;

namespace qpruner::ui {

// Writes `plot` at its current size (800 x 600 when it was never laid out) to `path`: ".png" raster, ".svg"
// and ".pdf" vector. Returns false with `*error` naming the file and the problem (unknown suffix, a file that
// cannot be written).
bool savePlot(QCustomPlot* plot, const QString& path, QString* error);

// Adds a context menu to `plot` with "Save plot as..." (a file dialog; errors in a message box); `extend` may
// add actions of its own (e.g. "Reset zoom") before it. The suggested file name is the plot's objectName().
void installPlotContextMenu(QCustomPlot* plot, std::function<void(QMenu&)> extend = {});
// The same, with the widget position the menu was asked for (e.g. to act on the point under it).
void installPlotContextMenuAt(QCustomPlot* plot, std::function<void(QMenu&, const QPoint&)> extend);

} // namespace qpruner::ui

// The look shared by every plot of the studio (fonts, grid, palettes), so that the tabs and the figures
// exported from them match each other and the precision-map editor.
#pragma once

#include <vector>

#include <QColor>
#include <QString>
#include <QStringList>

#include "plots/qcustomplot_compat.h"
#include "qpruner/quant_format.h"

namespace qpruner::ui {

// Fonts, grid pens, antialiasing, legend look (QCustomPlot draws without OpenGL by default, so exports and
// offscreen tests render like the screen).
// Moves the plot's legend into a row of its own under the axis rect (centred, `wrap` items a row), where no bar
// or point can hide behind it.
void placeLegendBelow(QCustomPlot* plot, int wrap);
void applyPlotStyle(QCustomPlot* plot);

// A fixed palette of ten distinguishable colours (Tableau 10), cycling: run `index` of a comparison, a series.
QColor runColor(int index);

// Sequential gradient for scores (light = low, dark = high).
QCPColorGradient scoreGradient();
// Diverging gradient for differences: blue below the middle of the range, white at it, red above.
QCPColorGradient divergingGradient();
// A gradient with one exact level per format, formatColor(formats[i]) at value i (the data range must be
// [0, formats.size() - 1], or [0, 1] for a single format).
QCPColorGradient formatGradient(const std::vector<QuantSpec>& formats);

// A bold title above the plot's axis rect (a new first row of the layout); returns it to change its text.
QCPTextElement* addPlotTitle(QCustomPlot* plot, const QString& title);

// Column labels of the layers x modules heatmaps: "q", "k", "v", "o", "gate", "up", "down".
QStringList moduleLabels();

// Elides a long run name for a legend or a title ("run 2: QPruner: prune 25%, quant-kl importan…").
QString runLabel(qint64 runId, const std::string& name, int maxChars = 48);

} // namespace qpruner::ui

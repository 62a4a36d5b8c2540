// Hover tooltips for a plot: the owner supplies the text for a widget position (empty: no tooltip), and this
// shows it on Qt's tooltip event, so exact values appear without per-point items on the plot.
#pragma once

#include <functional>

#include <QObject>
#include <QPoint>
#include <QString>

class QCustomPlot;

namespace qpruner::ui {

class PlotToolTip : public QObject {
    Q_OBJECT
public:
    using TextAt = std::function<QString(const QPoint&)>;
    // Becomes a child of `plot` and watches its tooltip events.
    PlotToolTip(QCustomPlot* plot, TextAt textAt);

    // What the tooltip at `pos` (plot widget coordinates) says.
    QString textAt(const QPoint& pos) const;

protected:
    bool eventFilter(QObject* watched, QEvent* event) override;

private:
    QCustomPlot* plot_;
    TextAt textAt_;
};

} // namespace qpruner::ui

// Plot tooltip: answers QEvent::ToolTip on the plot with the owner's text.
#include "plots/plot_tooltip.h"

#include <QHelpEvent>
#include <QToolTip>

#include "plots/qcustomplot_compat.h"

namespace qpruner::ui {

PlotToolTip::PlotToolTip(QCustomPlot* plot, TextAt textAt) : QObject(plot), plot_(plot), textAt_(std::move(textAt))
{
    plot->installEventFilter(this);
}

QString PlotToolTip::textAt(const QPoint& pos) const
{
    return textAt_ ? textAt_(pos) : QString();
}

bool PlotToolTip::eventFilter(QObject* watched, QEvent* event)
{
    if (watched == plot_ && event->type() == QEvent::ToolTip) {
        auto* help = static_cast<QHelpEvent*>(event);
        const QString text = textAt(help->pos());
        if (text.isEmpty())
            QToolTip::hideText();
        else
            QToolTip::showText(help->globalPos(), text, plot_);
        return true;
    }
    return QObject::eventFilter(watched, event);
}

} // namespace qpruner::ui

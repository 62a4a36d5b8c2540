// Plot style: one place for the studio's plot fonts and palettes.
#include "plots/plot_style.h"

#include <array>

#include "common/format_colors.h"
#include "qpruner/precision_map.h"

namespace qpruner::ui {

void placeLegendBelow(QCustomPlot* plot, int wrap)
{
    plot->legend->setVisible(true);
    plot->legend->setFillOrder(QCPLegend::foColumnsFirst);
    plot->legend->setWrap(wrap);
    plot->legend->setBorderPen(Qt::NoPen);
    plot->axisRect()->insetLayout()->take(plot->legend);
    auto* legendRow = new QCPLayoutGrid;
    plot->plotLayout()->addElement(plot->plotLayout()->rowCount(), 0, legendRow);
    legendRow->setMargins(QMargins(0, 0, 0, 4));
    // Centred between two empty cells that take the spare width.
    legendRow->addElement(0, 0, new QCPLayoutElement(plot));
    legendRow->addElement(0, 1, plot->legend);
    legendRow->addElement(0, 2, new QCPLayoutElement(plot));
    plot->legend->setMaximumSize(plot->legend->minimumOuterSizeHint());
    plot->plotLayout()->setRowStretchFactor(plot->plotLayout()->rowCount() - 1, 0.001);
}

void applyPlotStyle(QCustomPlot* plot)
{
    plot->setAntialiasedElements(QCP::aeAll);
    plot->setNotAntialiasedElements(QCP::aeAxes | QCP::aeGrid);
    plot->setNoAntialiasingOnDrag(true);
    plot->setBackground(QBrush(Qt::white));
    QFont tickFont = plot->font();
    tickFont.setPointSizeF(8.5);
    QFont labelFont = plot->font();
    labelFont.setPointSizeF(9.5);
    const QPen gridPen(QColor(0xdd, 0xdd, 0xdd), 0, Qt::SolidLine);
    const QPen subGridPen(QColor(0xf0, 0xf0, 0xf0), 0, Qt::SolidLine);
    for (QCPAxis* axis : plot->axisRect()->axes()) {
        axis->setTickLabelFont(tickFont);
        axis->setLabelFont(labelFont);
        axis->setBasePen(QPen(QColor(0x80, 0x80, 0x80)));
        axis->setTickPen(QPen(QColor(0x80, 0x80, 0x80)));
        axis->setSubTickPen(QPen(QColor(0xa0, 0xa0, 0xa0)));
        axis->grid()->setPen(gridPen);
        axis->grid()->setSubGridPen(subGridPen);
        axis->grid()->setZeroLinePen(Qt::NoPen);
    }
    QFont legendFont = plot->font();
    legendFont.setPointSizeF(8.5);
    plot->legend->setFont(legendFont);
    plot->legend->setBrush(QBrush(QColor(255, 255, 255, 225)));
    plot->legend->setBorderPen(QPen(QColor(0xc0, 0xc0, 0xc0)));
    plot->legend->setRowSpacing(-2);
    plot->setAutoAddPlottableToLegend(false);
}

QColor runColor(int index)
{
    static const std::array<QColor, 10> palette = {
        QColor(0x4e, 0x79, 0xa7), QColor(0xf2, 0x8e, 0x2b), QColor(0xe1, 0x57, 0x59), QColor(0x76, 0xb7, 0xb2),
        QColor(0x59, 0xa1, 0x4f), QColor(0xed, 0xc9, 0x48), QColor(0xb0, 0x7a, 0xa1), QColor(0xff, 0x9d, 0xa7),
        QColor(0x9c, 0x75, 0x5f), QColor(0xba, 0xb0, 0xac)};
    return palette[size_t(index < 0 ? -index : index) % palette.size()];
}

QCPColorGradient scoreGradient()
{
    QCPColorGradient g;
    g.clearColorStops();
    g.setColorStopAt(0.0, QColor(0xf7, 0xfb, 0xff));
    g.setColorStopAt(0.35, QColor(0x9e, 0xca, 0xe1));
    g.setColorStopAt(0.7, QColor(0x42, 0x92, 0xc6));
    g.setColorStopAt(1.0, QColor(0x08, 0x30, 0x6b));
    g.setNanHandling(QCPColorGradient::nhTransparent);
    return g;
}

QCPColorGradient divergingGradient()
{
    QCPColorGradient g;
    g.clearColorStops();
    g.setColorStopAt(0.0, QColor(0x21, 0x66, 0xac));
    g.setColorStopAt(0.25, QColor(0x92, 0xc5, 0xde));
    g.setColorStopAt(0.5, QColor(0xf7, 0xf7, 0xf7));
    g.setColorStopAt(0.75, QColor(0xf4, 0xa5, 0x82));
    g.setColorStopAt(1.0, QColor(0xb2, 0x18, 0x2b));
    g.setNanHandling(QCPColorGradient::nhTransparent);
    return g;
}

QCPColorGradient formatGradient(const std::vector<QuantSpec>& formats)
{
    QCPColorGradient g;
    g.clearColorStops();
    g.setNanHandling(QCPColorGradient::nhTransparent);
    if (formats.empty())
        return g;
    if (formats.size() == 1) {
        g.setLevelCount(2);
        g.setColorStopAt(0.0, formatColor(formats[0]));
        g.setColorStopAt(1.0, formatColor(formats[0]));
        return g;
    }
    // One level per format with a stop exactly at each level, so no level is an interpolated mixture.
    const int n = int(formats.size());
    g.setLevelCount(n);
    for (int i = 0; i < n; ++i)
        g.setColorStopAt(double(i) / double(n - 1), formatColor(formats[size_t(i)]));
    return g;
}

QCPTextElement* addPlotTitle(QCustomPlot* plot, const QString& title)
{
    QFont font = plot->font();
    font.setPointSizeF(10);
    font.setBold(true);
    plot->plotLayout()->insertRow(0);
    auto* element = new QCPTextElement(plot, title, font);
    element->setMargins(QMargins(4, 4, 4, 0));
    plot->plotLayout()->addElement(0, 0, element);
    return element;
}

QStringList moduleLabels()
{
    QStringList labels;
    for (LinearModule m : kLinearModules)
        labels << QString::fromLatin1(linearModuleName(m));
    return labels;
}

QString runLabel(qint64 runId, const std::string& name, int maxChars)
{
    QString label = QStringLiteral("run %1").arg(runId);
    if (!name.empty()) {
        QString text = QString::fromStdString(name);
        if (text.size() > maxChars)
            text = text.left(maxChars - 1).trimmed() + QChar(0x2026);
        label += QStringLiteral(": ") + text;
    }
    return label;
}

} // namespace qpruner::ui

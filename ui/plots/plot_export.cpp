// Plot export: one QSaveFile per figure; the painter writes into it and commit() renames it into place.
#include "plots/plot_export.h"

#include <QFileDialog>
#include <QFileInfo>
#include <QMenu>
#include <QMessageBox>
#include <QPdfWriter>
#include <QSaveFile>
#include <QStandardPaths>
#include <QSvgGenerator>

#include "plots/qcustomplot_compat.h"

namespace qpruner::ui {

namespace {

QSize exportSize(const QCustomPlot* plot)
{
    const QSize s = plot->size();
    return s.width() > 1 && s.height() > 1 ? s : QSize(800, 600);
}

// Vector output: no pixmap caching, pens that scale with the figure.
bool paintVector(QCustomPlot* plot, QPaintDevice* device, const QSize& size)
{
    QCPPainter painter;
    if (!painter.begin(device))
        return false;
    painter.setMode(QCPPainter::pmVectorized);
    painter.setMode(QCPPainter::pmNoCaching);
    painter.setMode(QCPPainter::pmNonCosmetic);
    plot->toPainter(&painter, size.width(), size.height());
    return painter.end();
}

} // namespace

bool savePlot(QCustomPlot* plot, const QString& path, QString* error)
{
    auto fail = [&](const QString& why) {
        if (error)
            *error = QStringLiteral("Cannot save the plot to %1: %2").arg(QDir::toNativeSeparators(path), why);
        return false;
    };
    const QString suffix = QFileInfo(path).suffix().toLower();
    if (suffix != QLatin1String("png") && suffix != QLatin1String("svg") && suffix != QLatin1String("pdf"))
        return fail(QStringLiteral("unknown file type '.%1' (use .png, .svg or .pdf)").arg(suffix));

    QSaveFile file(path);
    if (!file.open(QIODevice::WriteOnly))
        return fail(file.errorString());
    const QSize size = exportSize(plot);
    const int dpi = plot->logicalDpiX() > 0 ? plot->logicalDpiX() : 96;
    bool painted = false;
    if (suffix == QLatin1String("png")) {
        painted = plot->toPixmap(size.width(), size.height(), 1.0).save(&file, "PNG");
    } else if (suffix == QLatin1String("svg")) {
        QSvgGenerator svg;
        svg.setOutputDevice(&file);
        svg.setSize(size);
        svg.setViewBox(QRect(QPoint(0, 0), size));
        svg.setResolution(dpi); // so text keeps its on-screen size relative to the plot
        svg.setTitle(plot->objectName());
        svg.setDescription(QStringLiteral("QPruner Studio plot"));
        painted = paintVector(plot, &svg, size);
    } else {
        QPdfWriter pdf(&file);
        pdf.setCreator(QStringLiteral("QPruner Studio"));
        pdf.setTitle(plot->objectName());
        pdf.setResolution(dpi);
        pdf.setPageMargins(QMarginsF(0, 0, 0, 0));
        pdf.setPageSize(QPageSize(QSizeF(size) * 72.0 / dpi, QPageSize::Point, QString(), QPageSize::ExactMatch));
        painted = paintVector(plot, &pdf, size);
    }
    if (!painted) {
        file.cancelWriting();
        return fail(file.error() != QFileDevice::NoError ? file.errorString()
                                                         : QStringLiteral("the plot could not be drawn"));
    }
    if (!file.commit())
        return fail(file.errorString());
    return true;
}

void installPlotContextMenu(QCustomPlot* plot, std::function<void(QMenu&)> extend)
{
    installPlotContextMenuAt(plot, [extend](QMenu& menu, const QPoint&) {
        if (extend)
            extend(menu);
    });
}

void installPlotContextMenuAt(QCustomPlot* plot, std::function<void(QMenu&, const QPoint&)> extend)
{
    plot->setContextMenuPolicy(Qt::CustomContextMenu);
    QObject::connect(plot, &QWidget::customContextMenuRequested, plot, [plot, extend](const QPoint& pos) {
        QMenu menu(plot);
        if (extend) {
            extend(menu, pos);
            if (!menu.isEmpty())
                menu.addSeparator();
        }
        menu.addAction(QObject::tr("Save plot as..."), plot, [plot] {
            static QString lastDir = QStandardPaths::writableLocation(QStandardPaths::DocumentsLocation);
            const QString base = plot->objectName().isEmpty() ? QStringLiteral("plot") : plot->objectName();
            QString selectedFilter;
            QString path = QFileDialog::getSaveFileName(
                plot, QObject::tr("Save plot as"), QDir(lastDir).filePath(base + QStringLiteral(".png")),
                QObject::tr("PNG image (*.png);;SVG drawing (*.svg);;PDF document (*.pdf)"), &selectedFilter);
            if (path.isEmpty())
                return;
            if (QFileInfo(path).suffix().isEmpty()) // take the suffix from the chosen filter
                path += selectedFilter.contains(QLatin1String("svg"))   ? QStringLiteral(".svg")
                        : selectedFilter.contains(QLatin1String("pdf")) ? QStringLiteral(".pdf")
                                                                        : QStringLiteral(".png");
            lastDir = QFileInfo(path).absolutePath();
            QString error;
            if (!savePlot(plot, path, &error))
                QMessageBox::warning(plot, QObject::tr("Save plot"), error);
        });
        menu.exec(plot->mapToGlobal(pos));
    });
}

} // namespace qpruner::ui

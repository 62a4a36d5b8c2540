// Painted rather than a QProgressBar: the bar carries two lines of exact figures and a budget marker, and
// its colour must follow the over/under state regardless of the style.
#include "mapeditor/memory_bar.h"

#include <QLocale>
#include <QPainter>

#include <algorithm>

#include "common/number_format.h"

namespace qpruner::ui {

namespace {

constexpr int kBarHeight = 14;
constexpr int kMargin = 4;

QString percent(double fraction)
{
    return QLocale().toString(100.0 * fraction, 'f', 1) + QLatin1Char('%');
}

} // namespace

MemoryBar::MemoryBar(QWidget* parent) : QWidget(parent)
{
    setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Fixed);
    updateTexts();
}

void MemoryBar::setReference(int64_t bf16TotalBytes)
{
    bf16Total_ = bf16TotalBytes;
    updateTexts();
}

void MemoryBar::setBudget(const MapBudget& budget)
{
    budget_ = budget;
    updateTexts();
}

void MemoryBar::setReport(const MemoryReport& report)
{
    report_ = report;
    hasReport_ = true;
    updateTexts();
}

void MemoryBar::clear()
{
    report_ = {};
    hasReport_ = false;
    bf16Total_ = 0;
    budget_ = {};
    updateTexts();
}

void MemoryBar::updateTexts()
{
    fill_ = 0;
    if (!hasReport_) {
        figure_ = tr("No model");
        budgetLine_.clear();
    } else {
        figure_ = tr("Total %1 · linears %2 bpw (%3 bytes)")
                      .arg(formatBytesExact(report_.totalBytes), QLocale().toString(report_.linearBitsPerWeight, 'f', 3),
                           formatCount(report_.linearBytes));
        if (budget_.isSet()) {
            const int64_t used = budget_.budgetedBytes(report_);
            const int64_t limit = budget_.limitBytes();
            const double ratio = limit > 0 ? double(used) / double(limit) : 1.0;
            fill_ = std::clamp(ratio, 0.0, 1.0);
            const QString state = used <= limit ? tr("%1 bytes left").arg(formatCount(limit - used))
                                                : tr("OVER by %1 bytes").arg(formatCount(used - limit));
            budgetLine_ = tr("Budget %1: %2 %3 of %4 bytes (%5), %6")
                              .arg(budget_.text(), budget_.quantityName(), formatCount(used), formatCount(limit),
                                   percent(ratio), state);
        } else if (bf16Total_ > 0) {
            const double ratio = double(report_.totalBytes) / double(bf16Total_);
            fill_ = std::clamp(ratio, 0.0, 1.0);
            budgetLine_ = tr("No budget: %1 of the model in bf16 (%2 bytes)")
                              .arg(percent(ratio), formatCount(bf16Total_));
        } else {
            budgetLine_ = tr("No budget");
        }
    }
    setToolTip(figure_ + QLatin1Char('\n') + budgetLine_);
    update();
}

QSize MemoryBar::sizeHint() const
{
    const int line = fontMetrics().height();
    return {480, kMargin + 2 * line + kMargin + kBarHeight + kMargin};
}

QSize MemoryBar::minimumSizeHint() const { return {160, sizeHint().height()}; }

void MemoryBar::paintEvent(QPaintEvent*)
{
    QPainter p(this);
    const int line = fontMetrics().height();
    const QRect textRect(kMargin, kMargin, width() - 2 * kMargin, line);
    const bool over = isOverBudget();

    p.setPen(palette().color(QPalette::WindowText));
    QFont bold = font();
    bold.setBold(true);
    p.setFont(bold);
    p.drawText(textRect, Qt::AlignLeft | Qt::AlignVCenter,
               fontMetrics().elidedText(figure_, Qt::ElideRight, textRect.width()));
    p.setFont(font());
    if (over)
        p.setPen(QColor(0xc0, 0x1c, 0x28));
    const QRect budgetRect = textRect.translated(0, line);
    p.drawText(budgetRect, Qt::AlignLeft | Qt::AlignVCenter,
               fontMetrics().elidedText(budgetLine_, Qt::ElideRight, budgetRect.width()));

    const QRect bar(kMargin, kMargin + 2 * line + kMargin, width() - 2 * kMargin, kBarHeight);
    p.setRenderHint(QPainter::Antialiasing, false);
    p.fillRect(bar, palette().color(QPalette::Base));
    QColor fillColor = budget_.isSet() ? QColor(0x2e, 0x9e, 0x5b) : QColor(0x5a, 0x8f, 0xd6);
    if (over)
        fillColor = QColor(0xd0, 0x2f, 0x3a);
    else if (budget_.isSet() && fill_ > 0.95)
        fillColor = QColor(0xe0, 0xa0, 0x30); // within 5% of the limit
    QRect filled = bar;
    filled.setWidth(int(bar.width() * fill_ + 0.5));
    p.fillRect(filled, fillColor);
    p.setPen(palette().color(QPalette::Mid));
    p.drawRect(bar.adjusted(0, 0, -1, -1));
}

} // namespace qpruner::ui

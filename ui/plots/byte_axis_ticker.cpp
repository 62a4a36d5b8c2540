// Byte axis ticker: nice steps in the chosen unit, labels with just enough decimals for that step.
#include "plots/byte_axis_ticker.h"

#include <algorithm>
#include <cmath>

namespace qpruner::ui {

void ByteAxisTicker::setUnitFor(double maxBytes)
{
    unit_ = 1;
    for (double u : {1024.0, 1024.0 * 1024.0, 1024.0 * 1024.0 * 1024.0})
        if (maxBytes >= u)
            unit_ = u;
}

QString ByteAxisTicker::unitName() const
{
    if (unit_ >= 1024.0 * 1024.0 * 1024.0)
        return QStringLiteral("GiB");
    if (unit_ >= 1024.0 * 1024.0)
        return QStringLiteral("MiB");
    if (unit_ >= 1024.0)
        return QStringLiteral("KiB");
    return QStringLiteral("B");
}

QString ByteAxisTicker::format(double bytes) const
{
    return QStringLiteral("%1 %2").arg(QLocale().toString(bytes / unit_, 'f', unit_ > 1 ? 2 : 0), unitName());
}

double ByteAxisTicker::getTickStep(const QCPRange& range)
{
    const double step = QCPAxisTicker::getTickStep(QCPRange(range.lower / unit_, range.upper / unit_));
    decimals_ = step > 0 ? std::clamp(int(std::ceil(-std::log10(step) - 1e-9)), 0, 6) : 0;
    return step * unit_;
}

QString ByteAxisTicker::getTickLabel(double tick, const QLocale& locale, QChar, int)
{
    return locale.toString(tick / unit_, 'f', decimals_);
}

} // namespace qpruner::ui

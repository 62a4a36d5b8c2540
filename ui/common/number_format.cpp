// Number formatting shared by every view.
#include "common/number_format.h"

#include <QLocale>

#include <cmath>

namespace qpruner::ui {

namespace {

QLocale groupingLocale()
{
    QLocale locale;
    locale.setNumberOptions(locale.numberOptions() & ~QLocale::OmitGroupSeparator);
    return locale;
}

} // namespace

QString formatCount(qint64 n)
{
    return groupingLocale().toString(n);
}

QString formatCompactCount(qint64 n)
{
    const QLocale locale = groupingLocale();
    if (std::llabs(n) >= 1'000'000'000LL)
        return QStringLiteral("%1 B").arg(locale.toString(double(n) / 1e9, 'f', 2));
    return QStringLiteral("%1 M").arg(locale.toString(double(n) / 1e6, 'f', 2));
}

QString formatParameterCount(qint64 n)
{
    return QStringLiteral("%1 (%2)").arg(formatCount(n), formatCompactCount(n));
}

QString formatBytes(qint64 bytes)
{
    constexpr double kMiB = 1024.0 * 1024.0;
    constexpr double kGiB = kMiB * 1024.0;
    const QLocale locale = groupingLocale();
    if (std::llabs(bytes) >= qint64(kGiB))
        return QStringLiteral("%1 GiB").arg(locale.toString(double(bytes) / kGiB, 'f', 2));
    return QStringLiteral("%1 MiB").arg(locale.toString(double(bytes) / kMiB, 'f', 2));
}

QString formatBytesExact(qint64 bytes)
{
    return QStringLiteral("%1 (%2 bytes)").arg(formatBytes(bytes), formatCount(bytes));
}

QString formatReal(double value)
{
    if (std::isfinite(value) && value == std::trunc(value) && std::fabs(value) < 1e15)
        return formatCount(static_cast<qint64>(value));
    return QString::number(value, 'g', 8);
}

} // namespace qpruner::ui

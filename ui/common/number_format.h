// How the studio writes counts and sizes. Group separators come from the default QLocale and are kept even
// where the locale (e.g. "C") would omit them, because parameter counts are unreadable without them.
#pragma once

#include <QString>
#include <QtGlobal>

namespace qpruner::ui {

// 260032 -> "260,032"
QString formatCount(qint64 n);
// 260032 -> "0.26 M", 6738415616 -> "6.74 B"
QString formatCompactCount(qint64 n);
// 260032 -> "260,032 (0.26 M)"
QString formatParameterCount(qint64 n);
// 1040128 -> "0.99 MiB", 13476831232 -> "12.55 GiB"
QString formatBytes(qint64 bytes);
// 1040128 -> "0.99 MiB (1,040,128 bytes)"
QString formatBytesExact(qint64 bytes);
// A double without trailing zeros or a forced exponent: 10000 -> "10,000", 1e-05 -> "1e-05".
QString formatReal(double value);

} // namespace qpruner::ui

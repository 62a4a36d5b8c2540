// Format colours: a fixed table by code width, so screenshots and legends stay comparable across runs.
#include "common/format_colors.h"

namespace qpruner::ui {

QColor formatColor(const QuantSpec& spec)
{
    QColor c;
    switch (spec.kind) {
    case QuantKind::F32: c = QColor(0x3b, 0x4c, 0xc0); break;
    case QuantKind::BF16: c = QColor(0x5a, 0x8f, 0xd6); break;
    case QuantKind::F16: c = QColor(0x7d, 0xa9, 0xe8); break;
    case QuantKind::Int8: c = QColor(0x5c, 0xb8, 0x7a); break;
    case QuantKind::NF4: c = QColor(0xf2, 0xc1, 0x4e); break;
    case QuantKind::Int4: c = QColor(0xf0, 0x9a, 0x3e); break;
    case QuantKind::Int3: c = QColor(0xe0, 0x63, 0x3a); break;
    case QuantKind::Int2: c = QColor(0xb4, 0x2b, 0x3a); break;
    }
    if (spec.doubleQuant || spec.groupSize == 128)
        c = c.darker(118);
    return c;
}

QColor formatTextColor(const QuantSpec& spec)
{
    const QColor c = formatColor(spec);
    // Relative luminance (sRGB weights) decides the label colour.
    const double y = 0.2126 * c.redF() + 0.7152 * c.greenF() + 0.0722 * c.blueF();
    return y > 0.5 ? QColor(Qt::black) : QColor(Qt::white);
}

QString formatShortLabel(const QuantSpec& spec)
{
    switch (spec.kind) {
    case QuantKind::F32: return QStringLiteral("32");
    case QuantKind::BF16: return QStringLiteral("bf");
    case QuantKind::F16: return QStringLiteral("16");
    case QuantKind::Int8: return QStringLiteral("8");
    case QuantKind::NF4: return spec.doubleQuant ? QStringLiteral("nf4d") : QStringLiteral("nf4");
    case QuantKind::Int4: return spec.groupSize == 128 ? QStringLiteral("4g") : QStringLiteral("4");
    case QuantKind::Int3: return spec.groupSize == 128 ? QStringLiteral("3g") : QStringLiteral("3");
    case QuantKind::Int2: return spec.groupSize == 128 ? QStringLiteral("2g") : QStringLiteral("2");
    }
    return QString::fromStdString(spec.name());
}

} // namespace qpruner::ui

// One colour per quantization format, shared by the precision-map editor, the map heatmaps and the legends, so
// a format looks the same everywhere. Colours follow the code bits (cool = wide, warm = narrow); the group-128
// and double-quant variants are a shade darker than their base format.
#pragma once

#include <QColor>
#include <QString>

#include "qpruner/quant_format.h"

namespace qpruner::ui {

QColor formatColor(const QuantSpec& spec);
// Black or white, whichever reads better on formatColor(spec).
QColor formatTextColor(const QuantSpec& spec);
// Short cell label: "bf", "16", "32", "8", "nf4", "nf4d", "4", "4g", "3", "3g", "2", "2g".
QString formatShortLabel(const QuantSpec& spec);

} // namespace qpruner::ui

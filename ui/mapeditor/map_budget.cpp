// Budget limits derived exactly as allocate() derives them (core/src/search/allocation.cpp), so the editor's
// "over budget" agrees with the search's feasibility to the byte.
#include "mapeditor/map_budget.h"

#include <cmath>
#include <limits>

namespace qpruner::ui {

namespace {

int64_t floorLimit(long double v)
{
    if (!(v < 9.0e18L))
        return std::numeric_limits<int64_t>::max();
    return static_cast<int64_t>(std::floor(v));
}

} // namespace

MapBudget MapBudget::parse(const QString& text, const ModelConfig& config)
{
    MapBudget b;
    b.budget_ = parseBudget(text.toStdString());
    b.text_ = text.trimmed();
    b.set_ = true;
    switch (b.budget_.unit) {
    case BudgetUnit::Bytes: b.limit_ = floorLimit(static_cast<long double>(b.budget_.value)); break;
    case BudgetUnit::BitsPerWeight: {
        // Linear parameters do not depend on the formats; any map gives them.
        const MemoryReport r = memoryReport(config, PrecisionMap(QuantSpec{QuantKind::BF16, 0, false}));
        b.limit_ = floorLimit(static_cast<long double>(b.budget_.value) *
                              static_cast<long double>(r.linearParameters) / 8.0L);
        break;
    }
    case BudgetUnit::Fraction: {
        const MemoryReport r = memoryReport(config, PrecisionMap(QuantSpec{QuantKind::BF16, 0, false}));
        b.limit_ = floorLimit(static_cast<long double>(b.budget_.value) * static_cast<long double>(r.totalBytes));
        break;
    }
    }
    return b;
}

QString MapBudget::quantityName() const
{
    return limitsTotal() ? QStringLiteral("total") : QStringLiteral("decoder linears");
}

int64_t MapBudget::budgetedBytes(const MemoryReport& report) const
{
    return limitsTotal() ? report.totalBytes : report.linearBytes;
}

} // namespace qpruner::ui

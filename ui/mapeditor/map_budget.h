// A memory budget as the editor checks it, in the allocation's own terms (allocation.h): "6bpw" limits the
// decoder linears' bytes to floor(bpw * linearParameters / 8); a byte count ("120KiB") limits the total bytes;
// a fraction ("0.5x", "50%") limits the total bytes to floor(fraction * the model's total in bf16). The limit
// depends on the model (its linear parameters, its bf16 size), so a budget is made for one model.
#pragma once

#include <QString>

#include <cstdint>

#include "qpruner/allocation.h"
#include "qpruner/memory_model.h"
#include "qpruner/model_config.h"

namespace qpruner::ui {

class MapBudget {
public:
    MapBudget() = default; // no budget: nothing is over it

    // Throws ConfigError (parseBudget's message, naming the text) for text that is not a budget.
    static MapBudget parse(const QString& text, const ModelConfig& config);

    bool isSet() const { return set_; }
    const MemoryBudget& budget() const { return budget_; }
    QString text() const { return text_; }
    // True for byte and fraction budgets (total bytes), false for bits per weight (decoder linears' bytes).
    bool limitsTotal() const { return budget_.unit != BudgetUnit::BitsPerWeight; }
    // The most bytes the budgeted quantity may take.
    int64_t limitBytes() const { return limit_; }
    // "total" or "decoder linears": what the budget limits, for labels.
    QString quantityName() const;

    // The quantity this budget limits, read from `report`.
    int64_t budgetedBytes(const MemoryReport& report) const;
    bool fits(const MemoryReport& report) const { return !set_ || budgetedBytes(report) <= limit_; }

private:
    bool set_ = false;
    QString text_;
    MemoryBudget budget_;
    int64_t limit_ = 0;
};

} // namespace qpruner::ui

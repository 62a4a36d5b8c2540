// The editor's live memory figure: total bytes and linear bits per weight of the current map (exact, from the
// core memory model) and, with a budget, a bar of the budgeted bytes against the limit that turns red when the
// map is over it. Without a budget the bar shows the total against the same model in bf16.
#pragma once

#include <QWidget>

#include <cstdint>

#include "mapeditor/map_budget.h"
#include "qpruner/memory_model.h"

namespace qpruner::ui {

class MemoryBar : public QWidget {
    Q_OBJECT

public:
    explicit MemoryBar(QWidget* parent = nullptr);

    // `bf16TotalBytes`: the model with every weight in bf16, the scale of the bar without a budget.
    void setReference(int64_t bf16TotalBytes);
    void setBudget(const MapBudget& budget);
    void setReport(const MemoryReport& report);
    void clear();

    const MapBudget& budget() const { return budget_; }
    bool isOverBudget() const { return hasReport_ && !budget_.fits(report_); }
    // "Total 0.25 MiB (262,144 bytes) · linears 4.5 bpw (24,576 bytes)"
    QString figureText() const { return figure_; }
    // "Budget 6bpw: decoder linears 24,576 of 27,648 bytes (88.9%), 3,072 bytes left" / "..., over by N bytes";
    // "No budget: 31.2% of the model in bf16 (…)" without one.
    QString budgetText() const { return budgetLine_; }
    // Filled fraction of the bar, 0..1 (clamped).
    double fillFraction() const { return fill_; }

    QSize sizeHint() const override;
    QSize minimumSizeHint() const override;

protected:
    void paintEvent(QPaintEvent* event) override;

private:
    void updateTexts();

    MapBudget budget_;
    MemoryReport report_;
    bool hasReport_ = false;
    int64_t bf16Total_ = 0;
    QString figure_;
    QString budgetLine_;
    double fill_ = 0;
};

} // namespace qpruner::ui

// The Compare tab's metrics table: one row per run with its kind, status, search outcome (trials complete, the
// best objective within the run's budget and its memory, the budget) and what the "evaluate" stage measured
// (perplexity per source, accuracy per task, memory). Columns for sources and tasks are the union over runs.
#pragma once

#include <vector>

#include <QTableWidget>

namespace qpruner::ui {

struct RunSnapshot;
struct TrialPoints;

class RunMetricsTable : public QTableWidget {
    Q_OBJECT
public:
    explicit RunMetricsTable(QWidget* parent = nullptr);

    // points[i] are runs[i]'s trial points (trialPoints(trialInput(runs[i]))).
    void setRuns(const std::vector<RunSnapshot>& runs, const std::vector<TrialPoints>& points);
    // Text of the cell in `row` under the column headed `header`; empty when there is no such column.
    QString cellText(int row, const QString& header) const;
    int columnOf(const QString& header) const;
    // The table as CSV (RFC 4180 quoting), rows in their shown order; numbers in their shortest exact form (sizes in
    // bytes), text as shown. Columns sort by clicking their header (numbers by value, runs by their order given).
    QString toCsv() const;
};

} // namespace qpruner::ui

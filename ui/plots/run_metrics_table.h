// The Compare tab's metrics table: one row per run with its kind, status, search outcome (trials complete, the
// best objective within the run's budget and its memory, the budget) and what its latest evaluation measured
// (perplexity per source, accuracy per task, memory). Columns for sources and tasks are the union over runs.
#pragma once

#include <vector>

#include <QTableWidget>

#include <nlohmann/json.hpp>

namespace qpruner::ui {

struct RunSnapshot;

// The run's latest finished evaluation: the pipeline's `evaluate` stage or a trial action's `trial-evaluate`
// (whichever ran last), its result document; null when there is none. `label` receives "chosen map" or
// "trial N" (with ", recovered" when it was scored with its adapter).
const nlohmann::json* latestEvaluation(const RunSnapshot& s, QString* label = nullptr);
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

// The Overview tab of a run: what was run (model, config, lineage), how each stage went (status, timings,
// a one-line result) and the key figures (pruning, chosen map, memory, evaluation), plus the artifacts.
#pragma once

#include <QWidget>

#include "workspace/run_snapshot_loader.h"

class QLabel;
class QPlainTextEdit;
class QTableWidget;

namespace qpruner::ui {

class OverviewPanel : public QWidget {
    Q_OBJECT

public:
    explicit OverviewPanel(QWidget* parent = nullptr);

    void setRun(const RunSnapshotPtr& snapshot);
    void clear();

    // For tests and exports.
    QString headerText() const;
    QString keyMetricsText() const;
    QTableWidget* stagesTable() const { return stages_; }
    QTableWidget* artifactsTable() const { return artifacts_; }
    // Every finished evaluation (the pipeline's chosen map, each evaluated trial): ppl per source, acc per task.
    QTableWidget* resultsTable() const { return results_; }

Q_SIGNALS:
    void parentRunActivated(qint64 runId);

private:
    void showResults(const RunSnapshot& s);

    QLabel* header_ = nullptr;
    QLabel* metrics_ = nullptr;
    QTableWidget* stages_ = nullptr;
    QTableWidget* artifacts_ = nullptr;
    QTableWidget* results_ = nullptr;
    QPlainTextEdit* config_ = nullptr;
};

// One line on what a stage produced ("40 trials, chosen #15: 8.636", "ppl 11.85 on tinystories", ...).
QString stageSummary(const store::StageRecord& stage);

} // namespace qpruner::ui

// The run's model, layer by layer (the Model tab, above the opened file's details): the shapes pruning left
// (attention heads, KV heads, FFN channels) as bars against the original, and a table with those shapes, the
// chosen precision map's format of each linear and the recovered adapter's rank. Every number comes from the run's
// snapshot (its base and pruned configs, chosen map, config and finetune stage).
#pragma once

#include <QWidget>

#include "workspace/run_snapshot.h"

class QCPBars;
class QCustomPlot;
class QLabel;
class QTableWidget;

namespace qpruner::ui {

class RunShapesPanel : public QWidget {
    Q_OBJECT
public:
    explicit RunShapesPanel(QWidget* parent = nullptr);

    void setRun(const RunSnapshot& snapshot);
    void clear();

    QString caption() const;
    QCustomPlot* plot() const { return plot_; }
    // Per layer: FFN channels of the original and of the run's model; attention heads likewise.
    QCPBars* ffnOriginalBars() const { return ffnOriginal_; }
    QCPBars* ffnKeptBars() const { return ffnKept_; }
    QCPBars* headsOriginalBars() const { return headsOriginal_; }
    QCPBars* headsKeptBars() const { return headsKept_; }
    QTableWidget* table() const { return table_; }
    // Text of the table cell of `layer` under the column headed `header` (empty when none).
    QString cellText(int layer, const QString& header) const;

private:
    QLabel* caption_ = nullptr;
    QCustomPlot* plot_ = nullptr;
    QCPBars* ffnOriginal_ = nullptr;
    QCPBars* ffnKept_ = nullptr;
    QCPBars* headsOriginal_ = nullptr;
    QCPBars* headsKept_ = nullptr;
    QTableWidget* table_ = nullptr;
};

} // namespace qpruner::ui

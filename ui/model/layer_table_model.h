// Per-layer shapes of a model as a table: one row per decoder layer. Layers may differ after pruning, so
// every row carries its own head counts, FFN width and parameter count.
#pragma once

#include <QAbstractTableModel>

#include <vector>

#include "qpruner/model_config.h"

namespace qpruner::ui {

class LayerTableModel : public QAbstractTableModel {
    Q_OBJECT

public:
    enum Column { LayerColumn, HeadsColumn, KvHeadsColumn, FfnColumn, ParametersColumn, ShareColumn, ColumnCount };
    // The unformatted number behind a cell (qint64, or double for the share), for sorting and tests.
    static constexpr int RawValueRole = Qt::UserRole + 1;

    explicit LayerTableModel(QObject* parent = nullptr);

    void setConfig(const qpruner::ModelConfig& config);
    void clear();

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    struct Row {
        qpruner::LayerShape shape;
        qint64 parameters = 0;
    };
    QVariant rawValue(const Row& row, int layer, int column) const;

    std::vector<Row> rows_;
    qint64 modelParameters_ = 0;
};

} // namespace qpruner::ui

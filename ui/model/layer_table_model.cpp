// LayerTableModel: formatting and roles of the per-layer table.
#include "model/layer_table_model.h"

#include <QLocale>

#include "common/number_format.h"

namespace qpruner::ui {

LayerTableModel::LayerTableModel(QObject* parent) : QAbstractTableModel(parent) {}

void LayerTableModel::setConfig(const qpruner::ModelConfig& config)
{
    beginResetModel();
    rows_.clear();
    rows_.reserve(config.layers.size());
    for (int l = 0; l < config.numLayers(); ++l)
        rows_.push_back(Row{config.layers[size_t(l)], config.layerParameterCount(l)});
    modelParameters_ = config.parameterCount();
    endResetModel();
}

void LayerTableModel::clear()
{
    beginResetModel();
    rows_.clear();
    modelParameters_ = 0;
    endResetModel();
}

int LayerTableModel::rowCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : int(rows_.size());
}

int LayerTableModel::columnCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant LayerTableModel::rawValue(const Row& row, int layer, int column) const
{
    switch (column) {
    case LayerColumn: return qint64(layer);
    case HeadsColumn: return qint64(row.shape.numHeads);
    case KvHeadsColumn: return qint64(row.shape.numKvHeads);
    case FfnColumn: return qint64(row.shape.ffnDim);
    case ParametersColumn: return row.parameters;
    case ShareColumn: return modelParameters_ > 0 ? double(row.parameters) / double(modelParameters_) : 0.0;
    default: return {};
    }
}

QVariant LayerTableModel::data(const QModelIndex& index, int role) const
{
    if (!index.isValid() || index.row() >= int(rows_.size()) || index.column() >= ColumnCount)
        return {};
    const Row& row = rows_[size_t(index.row())];
    const QVariant raw = rawValue(row, index.row(), index.column());
    switch (role) {
    case RawValueRole:
        return raw;
    case Qt::DisplayRole:
        if (index.column() == ShareColumn)
            return QStringLiteral("%1 %").arg(QLocale().toString(raw.toDouble() * 100.0, 'f', 1));
        return formatCount(raw.toLongLong());
    case Qt::TextAlignmentRole:
        // Centred because the columns stretch across the panel: right-aligned numbers drift far from their
        // headers' neighbours on a wide window.
        return QVariant::fromValue(Qt::AlignCenter);
    case Qt::ToolTipRole:
        if (index.column() == KvHeadsColumn && row.shape.numKvHeads > 0)
            return tr("Grouped-query attention: %1 query heads share each key/value head")
                .arg(row.shape.numHeads / row.shape.numKvHeads);
        if (index.column() == ShareColumn)
            return tr("Share of all model parameters, embeddings included");
        return {};
    default:
        return {};
    }
}

QVariant LayerTableModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal)
        return QAbstractTableModel::headerData(section, orientation, role);
    if (role == Qt::TextAlignmentRole)
        return QVariant::fromValue(Qt::AlignCenter);
    if (role != Qt::DisplayRole)
        return {};
    switch (section) {
    case LayerColumn: return tr("Layer");
    case HeadsColumn: return tr("Query heads");
    case KvHeadsColumn: return tr("KV heads");
    case FfnColumn: return tr("FFN width");
    case ParametersColumn: return tr("Parameters");
    case ShareColumn: return tr("Share of model");
    default: return {};
    }
}

} // namespace qpruner::ui

// The document behind the precision-map editor (Tiled's split: the document holds the data, the grid only
// shows it, and every user edit reaches it through an undo command). It keeps the model and the map resolved
// to one format per (layer, module) cell, so an edit is a plain cell write; the compact canonical map and the
// exact memory report are derived from that grid after every change.
#pragma once

#include <QObject>

#include <vector>

#include "qpruner/memory_model.h"
#include "qpruner/model_config.h"
#include "qpruner/precision_map.h"
#include "qpruner/quant_format.h"

namespace qpruner::ui {

// One linear of one decoder layer: a grid cell. `module` indexes kLinearModules (0 = q ... 6 = down).
struct MapCell {
    int layer = 0;
    int module = 0;
    bool operator==(const MapCell&) const = default;
    auto operator<=>(const MapCell&) const = default;
};

class MapDocument : public QObject {
    Q_OBJECT

public:
    explicit MapDocument(QObject* parent = nullptr);

    // Resolves `map` against `config`; throws ConfigError (from PrecisionMap::resolve or ModelConfig::validate)
    // and keeps the previous model and map when it does not fit.
    void setModel(const ModelConfig& config, const PrecisionMap& map);
    bool hasModel() const { return hasModel_; }
    const ModelConfig& config() const { return config_; }
    int layerCount() const { return config_.numLayers(); }

    const ResolvedPrecision& resolved() const { return resolved_; }
    const QuantSpec& spec(const MapCell& cell) const;
    // PrecisionMap::fromResolved of the grid: the compact canonical map.
    const PrecisionMap& map() const { return map_; }
    // memoryReport(config, map()): exact bytes.
    const MemoryReport& memory() const { return memory_; }

    bool contains(const MapCell& cell) const;

    // Low-level writes used by the undo commands (user edits go through them, never here directly).
    void setSpecs(const std::vector<MapCell>& cells, const std::vector<QuantSpec>& specs);
    // Throws ConfigError when `r` has another layer count than the model or a quantized embedding.
    void setResolved(const ResolvedPrecision& r);

Q_SIGNALS:
    // The model (and with it the grid size) was replaced.
    void modelReset();
    // Cell formats changed (after modelReset too); map() and memory() are up to date.
    void changed();

private:
    void recompute();

    ModelConfig config_;
    ResolvedPrecision resolved_;
    PrecisionMap map_;
    MemoryReport memory_;
    bool hasModel_ = false;
};

} // namespace qpruner::ui

// The precision-map document: resolved grid in, canonical map and exact memory report out.
#include "mapeditor/map_document.h"

#include <string>

#include "qpruner/error.h"

namespace qpruner::ui {

MapDocument::MapDocument(QObject* parent) : QObject(parent) {}

void MapDocument::setModel(const ModelConfig& config, const PrecisionMap& map)
{
    config.validate();
    ResolvedPrecision r = map.resolve(config);
    if (r.layers.empty())
        throw ConfigError("precision map editor: the model has no decoder layers");
    // Compute everything before touching the members, so a map the memory model refuses changes nothing.
    PrecisionMap compact = PrecisionMap::fromResolved(r);
    MemoryReport report = memoryReport(config, compact);
    config_ = config;
    resolved_ = std::move(r);
    map_ = std::move(compact);
    memory_ = std::move(report);
    hasModel_ = true;
    Q_EMIT modelReset();
    Q_EMIT changed();
}

const QuantSpec& MapDocument::spec(const MapCell& cell) const
{
    return resolved_.layers.at(static_cast<size_t>(cell.layer)).at(static_cast<size_t>(cell.module));
}

bool MapDocument::contains(const MapCell& cell) const
{
    return hasModel_ && cell.layer >= 0 && cell.layer < layerCount() && cell.module >= 0 &&
           cell.module < kLinearModuleCount;
}

void MapDocument::setSpecs(const std::vector<MapCell>& cells, const std::vector<QuantSpec>& specs)
{
    if (cells.size() != specs.size())
        throw std::logic_error("MapDocument::setSpecs: cells and specs differ in length");
    if (cells.empty())
        return;
    for (size_t i = 0; i < cells.size(); ++i) {
        if (!contains(cells[i]))
            throw std::out_of_range("MapDocument::setSpecs: no cell at layer " + std::to_string(cells[i].layer) +
                                    ", module " + std::to_string(cells[i].module));
        resolved_.layers[static_cast<size_t>(cells[i].layer)][static_cast<size_t>(cells[i].module)] = specs[i];
    }
    recompute();
}

void MapDocument::setResolved(const ResolvedPrecision& r)
{
    if (r.layers.size() != resolved_.layers.size())
        throw ConfigError("precision map editor: the map has " + std::to_string(r.layers.size()) +
                          " layers, the model " + std::to_string(resolved_.layers.size()));
    if (r.embedding.isQuantized())
        throw ConfigError("precision map editor: the embedding cannot be quantized (got " + r.embedding.name() +
                          ")");
    resolved_ = r;
    recompute();
}

void MapDocument::recompute()
{
    map_ = PrecisionMap::fromResolved(resolved_);
    memory_ = memoryReport(config_, map_);
    Q_EMIT changed();
}

} // namespace qpruner::ui

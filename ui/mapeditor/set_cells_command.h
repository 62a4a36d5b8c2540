// The undo command of every cell edit in the map editor: a click, a context-menu action, a row, a column,
// the whole grid, or a whole drag-paint. A drag pushes one command per newly painted cell, all with the same
// drag id; QUndoStack merges them into the first, so the drag is a single undo step.
#pragma once

#include <QUndoCommand>

#include <vector>

#include "mapeditor/map_document.h"

namespace qpruner::ui {

class SetCellsCommand : public QUndoCommand {
public:
    // Only the cells of `cells` whose format differs from `spec` are kept; check changesSomething() before
    // pushing (a command that changes nothing must not reach the stack). `dragId` >= 0 makes commands of the
    // same drag merge.
    SetCellsCommand(MapDocument* document, const std::vector<MapCell>& cells, const QuantSpec& spec,
                    const QString& text, int dragId = -1);

    bool changesSomething() const { return !cells_.empty(); }
    const std::vector<MapCell>& cells() const { return cells_; }

    void undo() override;
    void redo() override;
    int id() const override;
    bool mergeWith(const QUndoCommand* other) override;

    static constexpr int kDragCommandId = 0x51504d31; // "QPM1"

private:
    MapDocument* document_;
    std::vector<MapCell> cells_;
    std::vector<QuantSpec> before_;
    std::vector<QuantSpec> after_;
    QString baseText_;
    int dragId_;
};

} // namespace qpruner::ui

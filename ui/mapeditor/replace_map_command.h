// Replacing the whole map as one undo step: loading a map file, taking a trial's map, "Map of trial 12".
#pragma once

#include <QUndoCommand>

#include "mapeditor/map_document.h"

namespace qpruner::ui {

class ReplaceMapCommand : public QUndoCommand {
public:
    // `next` must have the document's layer count (MapDocument::setResolved throws otherwise).
    ReplaceMapCommand(MapDocument* document, const ResolvedPrecision& next, const QString& text);

    // False when `next` equals the current grid: such a command must not be pushed.
    bool changesSomething() const { return before_ != after_; }

    void undo() override;
    void redo() override;

private:
    MapDocument* document_;
    ResolvedPrecision before_;
    ResolvedPrecision after_;
};

} // namespace qpruner::ui

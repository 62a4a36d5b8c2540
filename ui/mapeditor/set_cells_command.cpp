// Cell edits as undo steps; drags merge by id.
#include "mapeditor/set_cells_command.h"

#include <algorithm>

namespace qpruner::ui {

SetCellsCommand::SetCellsCommand(MapDocument* document, const std::vector<MapCell>& cells, const QuantSpec& spec,
                                 const QString& text, int dragId)
    : QUndoCommand(text), document_(document), baseText_(text), dragId_(dragId)
{
    for (const MapCell& cell : cells) {
        if (!document->contains(cell) || document->spec(cell) == spec)
            continue;
        if (std::find(cells_.begin(), cells_.end(), cell) != cells_.end())
            continue;
        cells_.push_back(cell);
        before_.push_back(document->spec(cell));
        after_.push_back(spec);
    }
}

void SetCellsCommand::undo() { document_->setSpecs(cells_, before_); }

void SetCellsCommand::redo() { document_->setSpecs(cells_, after_); }

int SetCellsCommand::id() const { return dragId_ >= 0 ? kDragCommandId : -1; }

bool SetCellsCommand::mergeWith(const QUndoCommand* other)
{
    const auto* o = dynamic_cast<const SetCellsCommand*>(other);
    if (!o || o->dragId_ != dragId_ || o->document_ != document_)
        return false;
    for (size_t i = 0; i < o->cells_.size(); ++i) {
        const auto it = std::find(cells_.begin(), cells_.end(), o->cells_[i]);
        if (it == cells_.end()) {
            cells_.push_back(o->cells_[i]);
            before_.push_back(o->before_[i]); // the format before the drag first touched the cell
            after_.push_back(o->after_[i]);
        } else {
            after_[static_cast<size_t>(it - cells_.begin())] = o->after_[i];
        }
    }
    // A drag starts as a one-cell "Set layer 3 q to int4"; once it grows it reads as the paint it is.
    setText(QStringLiteral("%1 (%2 cells)").arg(o->baseText_).arg(cells_.size()));
    return true;
}

} // namespace qpruner::ui

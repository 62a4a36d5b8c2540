// Whole-map replacement as an undo step.
#include "mapeditor/replace_map_command.h"

namespace qpruner::ui {

ReplaceMapCommand::ReplaceMapCommand(MapDocument* document, const ResolvedPrecision& next, const QString& text)
    : QUndoCommand(text), document_(document), before_(document->resolved()), after_(next)
{
}

void ReplaceMapCommand::undo() { document_->setResolved(before_); }

void ReplaceMapCommand::redo() { document_->setResolved(after_); }

} // namespace qpruner::ui

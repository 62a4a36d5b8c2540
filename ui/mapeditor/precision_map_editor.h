// The precision-map editor panel: a palette of paint formats, undo/redo, the importance overlay toggle,
// Load / Save of map JSON and "Evaluate this map" above the map grid, the live memory bar against the budget
// and a status line below. Edits go through the panel's QUndoStack (a drag is one step); the document, the
// grid and the bar stay in step through MapDocument::changed.
//
// Integration: setModel() when a run or model is shown (clears the undo history), setMap() for a trial's map
// (undoable), setBudget()/setCandidates()/setImportance() from the run's settings and scores. On
// evaluateRequested() the owner reads map(), queues the trial and reports back with setEvaluationStatus().
#pragma once

#include <QWidget>

#include <array>
#include <vector>

#include "qpruner/memory_model.h"
#include "qpruner/model_config.h"
#include "qpruner/precision_map.h"
#include "qpruner/quant_format.h"

class QAction;
class QLabel;
class QToolBar;
class QUndoStack;

namespace qpruner::ui {

class FormatPalette;
class MapDocument;
class MemoryBar;
class PrecisionMapGrid;

class PrecisionMapEditor : public QWidget {
    Q_OBJECT

public:
    explicit PrecisionMapEditor(QWidget* parent = nullptr);

    // Shows `map` of the model `config` and clears the undo history. False (with the reason in `error`, the
    // editor unchanged) when the map does not fit the model. Importance whose length no longer matches the
    // layer count is dropped; the budget text is re-derived for the new model.
    bool setModel(const qpruner::ModelConfig& config, const qpruner::PrecisionMap& map, QString* error = nullptr);
    // Replaces the map as one undo step named `why` ("Map of trial 12"); nothing is pushed when the map is
    // already shown. False when there is no model or the map does not fit it.
    bool setMap(const qpruner::PrecisionMap& map, const QString& why, QString* error = nullptr);
    // Palette and context-menu formats (default bf16, int8, nf4, int4, int3, int2).
    void setCandidates(const std::vector<qpruner::QuantSpec>& candidates);
    // allocation.h syntax ("6bpw", "120KiB", "0.5x", "50%"); "" = no budget. False (budget unchanged) with
    // parseBudget's message for bad text.
    bool setBudget(const QString& budgetText, QString* error = nullptr);
    void setImportance(std::vector<double> perLayer, std::vector<std::array<double, 7>> perModule);
    // Enables "Evaluate this map" (only for runs with a search stage; it also needs a model).
    void setEvaluationEnabled(bool enabled);
    void setEvaluationStatus(const QString& text);

    bool hasModel() const;
    // The model the map applies to (meaningful when hasModel()).
    const qpruner::ModelConfig& modelConfig() const;
    qpruner::PrecisionMap map() const;
    qpruner::MemoryReport memory() const;
    QUndoStack* undoStack() const { return stack_; }

    // Loads a map file as one undo step. On a missing file, bad JSON or a map that does not fit the model the
    // message names the file and the problem, and the map and undo history are left as they were.
    bool loadMapFile(const QString& path, QString* error);
    // Writes map() atomically (a failed save leaves an existing file as it was).
    bool saveMapFile(const QString& path, QString* error);

    // --- parts, for the owner's menus and for tests ---
    PrecisionMapGrid* grid() const { return grid_; }
    MemoryBar* memoryBar() const { return memoryBar_; }
    FormatPalette* formatPalette() const { return palette_; }
    QAction* undoAction() const { return undo_; }
    QAction* redoAction() const { return redo_; }
    QAction* importanceAction() const { return overlay_; }
    QAction* loadAction() const { return load_; }
    QAction* saveAction() const { return save_; }
    QAction* evaluateAction() const { return evaluate_; }
    // The status line: the current cell, the selection, embedding and head formats; or the last message.
    QString statusText() const;
    QString evaluationStatusText() const;

public Q_SLOTS:
    void requestEvaluation();

Q_SIGNALS:
    void mapChanged();
    void evaluateRequested();

private:
    void buildToolBar();
    void onDocumentChanged();
    void updateStatus();
    void updateActions();
    void showMessage(const QString& text, bool error);
    void chooseAndLoad();
    void chooseAndSave();

    MapDocument* document_ = nullptr;
    QUndoStack* stack_ = nullptr;
    QToolBar* toolBar_ = nullptr;
    FormatPalette* palette_ = nullptr;
    PrecisionMapGrid* grid_ = nullptr;
    MemoryBar* memoryBar_ = nullptr;
    QLabel* status_ = nullptr;
    QLabel* message_ = nullptr;
    QLabel* evaluationStatus_ = nullptr;
    QAction* undo_ = nullptr;
    QAction* redo_ = nullptr;
    QAction* overlay_ = nullptr;
    QAction* load_ = nullptr;
    QAction* save_ = nullptr;
    QAction* evaluate_ = nullptr;
    QString budgetText_;
    bool evaluationEnabled_ = false;
    QString lastDir_;
};

} // namespace qpruner::ui

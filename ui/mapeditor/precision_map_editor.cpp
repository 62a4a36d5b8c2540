// The editor panel: wiring of palette, grid, memory bar, undo stack, file load/save and evaluation requests.
#include "mapeditor/precision_map_editor.h"

#include <QAction>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QMessageBox>
#include <QToolBar>
#include <QToolButton>
#include <QUndoStack>
#include <QVBoxLayout>

#include <filesystem>

#include "common/number_format.h"
#include "mapeditor/format_palette.h"
#include "mapeditor/map_budget.h"
#include "mapeditor/map_document.h"
#include "mapeditor/memory_bar.h"
#include "mapeditor/precision_map_grid.h"
#include "mapeditor/replace_map_command.h"
#include "qpruner/error.h"

namespace qpruner::ui {

namespace {

const std::vector<QuantSpec>& defaultCandidates()
{
    static const std::vector<QuantSpec> specs = {
        QuantSpec{QuantKind::BF16, 0, false}, QuantSpec{QuantKind::Int8, 0, false},
        QuantSpec{QuantKind::NF4, 64, false}, QuantSpec{QuantKind::Int4, 64, false},
        QuantSpec{QuantKind::Int3, 64, false}, QuantSpec{QuantKind::Int2, 64, false}};
    return specs;
}

std::filesystem::path toPath(const QString& path)
{
    return std::filesystem::path(path.toStdU16String());
}

// Core messages usually name the file already; make sure every one does.
QString namingFile(const QString& path, const std::string& what)
{
    const QString message = QString::fromStdString(what);
    return message.contains(path) ? message : QStringLiteral("%1: %2").arg(path, message);
}

QString specName(const QuantSpec& spec)
{
    return QString::fromStdString(spec.name());
}

} // namespace

PrecisionMapEditor::PrecisionMapEditor(QWidget* parent) : QWidget(parent)
{
    document_ = new MapDocument(this);
    stack_ = new QUndoStack(this);
    palette_ = new FormatPalette(this);
    grid_ = new PrecisionMapGrid(document_, stack_, this);
    memoryBar_ = new MemoryBar(this);
    status_ = new QLabel(this);
    status_->setTextFormat(Qt::PlainText);
    message_ = new QLabel(this);
    message_->setTextFormat(Qt::PlainText);
    message_->setWordWrap(true);
    message_->hide();
    evaluationStatus_ = new QLabel(this);
    evaluationStatus_->setTextFormat(Qt::PlainText);
    evaluationStatus_->setTextInteractionFlags(Qt::TextSelectableByMouse);

    buildToolBar();

    auto* statusRow = new QHBoxLayout;
    statusRow->setContentsMargins(0, 0, 0, 0);
    statusRow->addWidget(status_, 1);
    statusRow->addWidget(evaluationStatus_);
    // Next to its result rather than in the toolbar: the request and the answer read together.
    auto* evaluateButton = new QToolButton(this);
    evaluateButton->setDefaultAction(evaluate_);
    evaluateButton->setToolButtonStyle(Qt::ToolButtonTextOnly);
    statusRow->addWidget(evaluateButton);

    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);
    layout->setSpacing(4);
    layout->addWidget(toolBar_);
    layout->addWidget(grid_, 1);
    layout->addWidget(memoryBar_);
    layout->addWidget(message_);
    layout->addLayout(statusRow);

    connect(palette_, &FormatPalette::currentChanged, grid_, &PrecisionMapGrid::setPaintFormat);
    connect(document_, &MapDocument::changed, this, &PrecisionMapEditor::onDocumentChanged);
    connect(grid_, &PrecisionMapGrid::selectionChanged, this, &PrecisionMapEditor::updateStatus);
    connect(grid_, &PrecisionMapGrid::currentCellChanged, this, &PrecisionMapEditor::updateStatus);
    connect(stack_, &QUndoStack::indexChanged, this, [this] { message_->hide(); });

    setCandidates(defaultCandidates());
    palette_->setCurrent(QuantSpec{QuantKind::NF4, 64, false}); // painting bf16 onto a bf16 map does nothing
    setFocusProxy(grid_);
    updateActions();
    updateStatus();
}

void PrecisionMapEditor::buildToolBar()
{
    toolBar_ = new QToolBar(this);
    toolBar_->setIconSize(QSize(16, 16));
    toolBar_->setToolButtonStyle(Qt::ToolButtonTextOnly);
    toolBar_->addWidget(palette_);
    toolBar_->addSeparator();

    // Fixed texts (the step goes to the tooltip), so the toolbar does not jump with every edit; the owner's
    // Edit menu can use undoStack()->createUndoAction() for "Undo <step>".
    undo_ = new QAction(tr("Undo"), this);
    undo_->setShortcuts({QKeySequence::Undo});
    redo_ = new QAction(tr("Redo"), this);
    redo_->setShortcuts({QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_Z), QKeySequence(Qt::CTRL | Qt::Key_Y)});
    connect(undo_, &QAction::triggered, stack_, &QUndoStack::undo);
    connect(redo_, &QAction::triggered, stack_, &QUndoStack::redo);
    const auto syncUndo = [this] {
        undo_->setEnabled(stack_->canUndo());
        redo_->setEnabled(stack_->canRedo());
        undo_->setToolTip(stack_->canUndo() ? tr("Undo: %1 (Ctrl+Z)").arg(stack_->undoText()) : tr("Nothing to undo"));
        redo_->setToolTip(stack_->canRedo() ? tr("Redo: %1 (Ctrl+Shift+Z)").arg(stack_->redoText())
                                            : tr("Nothing to redo"));
    };
    connect(stack_, &QUndoStack::indexChanged, this, syncUndo);
    connect(stack_, &QUndoStack::cleanChanged, this, syncUndo);
    syncUndo();
    overlay_ = new QAction(tr("Importance"), this);
    overlay_->setCheckable(true);
    overlay_->setChecked(true);
    overlay_->setToolTip(tr("Show the importance scores as bars: per layer in the row header, per module in the "
                            "cells"));
    connect(overlay_, &QAction::toggled, grid_, &PrecisionMapGrid::setImportanceVisible);
    load_ = new QAction(tr("Load..."), this);
    load_->setToolTip(tr("Load a precision map JSON file (undoable)"));
    connect(load_, &QAction::triggered, this, &PrecisionMapEditor::chooseAndLoad);
    save_ = new QAction(tr("Save..."), this);
    save_->setToolTip(tr("Save the map as precision map JSON"));
    connect(save_, &QAction::triggered, this, &PrecisionMapEditor::chooseAndSave);
    evaluate_ = new QAction(tr("Evaluate this map"), this);
    evaluate_->setToolTip(tr("Queue a trial with this map in the run's study; its result shows here when done"));
    connect(evaluate_, &QAction::triggered, this, &PrecisionMapEditor::requestEvaluation);

    for (QAction* a : {undo_, redo_}) {
        // Only while the editor has focus, so the main window's own shortcuts stay unambiguous elsewhere.
        a->setShortcutContext(Qt::WidgetWithChildrenShortcut);
        addAction(a);
        toolBar_->addAction(a);
    }
    toolBar_->addSeparator();
    toolBar_->addAction(overlay_);
    toolBar_->addSeparator();
    toolBar_->addAction(load_);
    toolBar_->addAction(save_);
}

// --- the owner's API -------------------------------------------------------------------------------------

bool PrecisionMapEditor::setModel(const ModelConfig& config, const PrecisionMap& map, QString* error)
{
    try {
        const int oldLayers = document_->hasModel() ? document_->layerCount() : -1;
        document_->setModel(config, map); // throws before changing anything
        stack_->clear();
        stack_->setClean();
        memoryBar_->setReference(memoryReport(config, PrecisionMap(QuantSpec{QuantKind::BF16, 0, false})).totalBytes);
        if (oldLayers != config.numLayers())
            grid_->setImportance({}, {});
        QString budgetError;
        if (!setBudget(budgetText_, &budgetError)) {
            budgetText_.clear();
            memoryBar_->setBudget({});
            showMessage(budgetError, true);
        }
    } catch (const qpruner::Error& e) {
        if (error)
            *error = tr("The map does not fit the model: %1").arg(QString::fromStdString(e.what()));
        return false;
    }
    updateActions();
    updateStatus();
    return true;
}

bool PrecisionMapEditor::setMap(const PrecisionMap& map, const QString& why, QString* error)
{
    if (!document_->hasModel()) {
        if (error)
            *error = tr("No model is open to apply the map to");
        return false;
    }
    try {
        auto* command = new ReplaceMapCommand(document_, map.resolve(document_->config()), why);
        if (command->changesSomething())
            stack_->push(command);
        else
            delete command;
    } catch (const qpruner::Error& e) {
        if (error)
            *error = tr("%1: %2").arg(why, QString::fromStdString(e.what()));
        return false;
    }
    return true;
}

void PrecisionMapEditor::setCandidates(const std::vector<QuantSpec>& candidates)
{
    palette_->setCandidates(candidates.empty() ? defaultCandidates() : candidates);
    grid_->setCandidates(palette_->candidates());
    grid_->setPaintFormat(palette_->current());
}

bool PrecisionMapEditor::setBudget(const QString& budgetText, QString* error)
{
    const QString text = budgetText.trimmed();
    if (text.isEmpty()) {
        budgetText_.clear();
        memoryBar_->setBudget({});
        return true;
    }
    if (!document_->hasModel()) { // derived from the model; applied by setModel
        budgetText_ = text;
        return true;
    }
    try {
        memoryBar_->setBudget(MapBudget::parse(text, document_->config()));
        budgetText_ = text;
    } catch (const qpruner::Error& e) {
        if (error)
            *error = QString::fromStdString(e.what());
        return false;
    }
    return true;
}

void PrecisionMapEditor::setImportance(std::vector<double> perLayer, std::vector<std::array<double, 7>> perModule)
{
    grid_->setImportance(std::move(perLayer), std::move(perModule));
    updateActions();
}

void PrecisionMapEditor::setEvaluationEnabled(bool enabled)
{
    evaluationEnabled_ = enabled;
    updateActions();
}

void PrecisionMapEditor::setEvaluationStatus(const QString& text)
{
    evaluationStatus_->setText(text);
}

const qpruner::ModelConfig& PrecisionMapEditor::modelConfig() const
{
    return document_->config();
}

bool PrecisionMapEditor::hasModel() const { return document_->hasModel(); }

PrecisionMap PrecisionMapEditor::map() const { return document_->map(); }

MemoryReport PrecisionMapEditor::memory() const { return document_->memory(); }

void PrecisionMapEditor::requestEvaluation()
{
    if (!document_->hasModel() || !evaluationEnabled_)
        return;
    setEvaluationStatus(tr("Evaluation requested..."));
    Q_EMIT evaluateRequested();
}

// --- files -----------------------------------------------------------------------------------------------

bool PrecisionMapEditor::loadMapFile(const QString& path, QString* error)
{
    const auto fail = [&](const QString& message) {
        if (error)
            *error = message;
        return false;
    };
    if (!document_->hasModel())
        return fail(tr("%1: no model is open to apply the map to").arg(path));
    ResolvedPrecision resolved;
    try {
        const PrecisionMap loaded = PrecisionMap::load(toPath(path));
        resolved = loaded.resolve(document_->config());
    } catch (const qpruner::Error& e) {
        return fail(namingFile(path, e.what()));
    }
    auto* command = new ReplaceMapCommand(document_, resolved, tr("Load %1").arg(QFileInfo(path).fileName()));
    if (command->changesSomething())
        stack_->push(command);
    else
        delete command;
    lastDir_ = QFileInfo(path).absolutePath();
    return true;
}

bool PrecisionMapEditor::saveMapFile(const QString& path, QString* error)
{
    if (!document_->hasModel()) {
        if (error)
            *error = tr("%1: no map to save (no model is open)").arg(path);
        return false;
    }
    try {
        document_->map().save(toPath(path));
    } catch (const qpruner::Error& e) {
        if (error)
            *error = namingFile(path, e.what());
        return false;
    }
    stack_->setClean();
    lastDir_ = QFileInfo(path).absolutePath();
    return true;
}

void PrecisionMapEditor::chooseAndLoad()
{
    const QString path = QFileDialog::getOpenFileName(this, tr("Load precision map"), lastDir_,
                                                      tr("Precision maps (*.json);;All files (*)"));
    if (path.isEmpty())
        return;
    QString error;
    if (loadMapFile(path, &error)) {
        showMessage(tr("Loaded %1").arg(path), false);
    } else {
        showMessage(error, true);
        QMessageBox::warning(this, tr("Load precision map"), error);
    }
}

void PrecisionMapEditor::chooseAndSave()
{
    QString path = QFileDialog::getSaveFileName(this, tr("Save precision map"),
                                                lastDir_.isEmpty() ? QStringLiteral("precision_map.json")
                                                                   : lastDir_ + QStringLiteral("/precision_map.json"),
                                                tr("Precision maps (*.json)"));
    if (path.isEmpty())
        return;
    if (QFileInfo(path).suffix().isEmpty())
        path += QStringLiteral(".json");
    QString error;
    if (saveMapFile(path, &error)) {
        showMessage(tr("Saved %1").arg(path), false);
    } else {
        showMessage(error, true);
        QMessageBox::warning(this, tr("Save precision map"), error);
    }
}

// --- status ----------------------------------------------------------------------------------------------

void PrecisionMapEditor::onDocumentChanged()
{
    memoryBar_->setReport(document_->memory());
    updateStatus();
    Q_EMIT mapChanged();
}

void PrecisionMapEditor::updateActions()
{
    const bool model = document_->hasModel();
    save_->setEnabled(model);
    load_->setEnabled(model);
    evaluate_->setEnabled(model && evaluationEnabled_);
    evaluate_->setToolTip(evaluationEnabled_
                              ? tr("Queue a trial with this map in the run's study; its result shows here when done")
                              : tr("Only runs with a search stage can evaluate maps"));
    overlay_->setEnabled(grid_->hasImportance());
}

void PrecisionMapEditor::updateStatus()
{
    if (!document_->hasModel()) {
        status_->setText(tr("No model"));
        return;
    }
    const MapCell cell = grid_->currentCell();
    QStringList parts;
    if (document_->contains(cell)) {
        const LinearModule m = kLinearModules[static_cast<size_t>(cell.module)];
        const int64_t bytes =
            document_->memory().layers[static_cast<size_t>(cell.layer)].moduleBytes[static_cast<size_t>(cell.module)];
        parts << tr("Layer %1 %2: %3, %4 bytes")
                     .arg(cell.layer)
                     .arg(QString::fromLatin1(linearModuleName(m)), specName(document_->spec(cell)),
                          formatCount(bytes));
    }
    const size_t selected = grid_->selection().size();
    parts << (selected == 1 ? tr("1 cell selected") : tr("%1 cells selected").arg(selected));
    const ResolvedPrecision& r = document_->resolved();
    parts << (document_->config().tiedEmbeddings
                  ? tr("embedding %1, lm_head tied").arg(specName(r.embedding))
                  : tr("embedding %1, lm_head %2").arg(specName(r.embedding), specName(r.lmHead)));
    status_->setText(parts.join(QStringLiteral(" · ")));
}

void PrecisionMapEditor::showMessage(const QString& text, bool error)
{
    message_->setText(text);
    message_->setStyleSheet(error ? QStringLiteral("color: #c01c28;") : QString());
    message_->setVisible(!text.isEmpty());
}

QString PrecisionMapEditor::statusText() const { return status_->text(); }

QString PrecisionMapEditor::evaluationStatusText() const { return evaluationStatus_->text(); }

} // namespace qpruner::ui

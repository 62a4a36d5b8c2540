// The map grid: geometry, painting, selection and the mouse/keyboard edits, each pushed as an undo command.
#include "mapeditor/precision_map_grid.h"

#include <QContextMenuEvent>
#include <QHelpEvent>
#include <QLocale>
#include <QMenu>
#include <QPainter>
#include <QScrollBar>
#include <QStyle>
#include <QToolTip>
#include <QUndoStack>

#include <algorithm>
#include <cstdlib>

#include "common/format_colors.h"
#include "common/number_format.h"
#include "mapeditor/map_grid_painter.h"
#include "mapeditor/set_cells_command.h"

namespace qpruner::ui {

namespace {

constexpr int kMinColumnWidth = 40;
constexpr int kPreferredColumnWidth = 58;

QString moduleName(int module)
{
    return QString::fromLatin1(linearModuleName(kLinearModules[static_cast<size_t>(module)]));
}

QString specName(const QuantSpec& spec)
{
    return QString::fromStdString(spec.name());
}

QString real3(double v)
{
    return QLocale().toString(v, 'f', 3);
}

} // namespace

PrecisionMapGrid::PrecisionMapGrid(MapDocument* document, QUndoStack* stack, QWidget* parent)
    : QAbstractScrollArea(parent), document_(document), stack_(stack)
{
    setFocusPolicy(Qt::StrongFocus);
    viewport()->setMouseTracking(false);
    viewport()->setBackgroundRole(QPalette::Base);
    setHorizontalScrollBarPolicy(Qt::ScrollBarAsNeeded);
    setVerticalScrollBarPolicy(Qt::ScrollBarAsNeeded);
    connect(document_, &MapDocument::modelReset, this, &PrecisionMapGrid::onModelReset);
    connect(document_, &MapDocument::changed, viewport(), qOverload<>(&QWidget::update));
    updateMetrics();
    onModelReset();
}

// --- configuration ---------------------------------------------------------------------------------------

void PrecisionMapGrid::setCandidates(const std::vector<QuantSpec>& candidates)
{
    candidates_ = candidates;
}

void PrecisionMapGrid::setImportance(std::vector<double> perLayer,
                                     std::vector<std::array<double, kLinearModuleCount>> perModule)
{
    perLayer_ = std::move(perLayer);
    perModule_ = std::move(perModule);
    updateScrollBars();
    viewport()->update();
}

void PrecisionMapGrid::setImportanceVisible(bool visible)
{
    if (overlay_ == visible)
        return;
    overlay_ = visible;
    updateScrollBars();
    viewport()->update();
}

void PrecisionMapGrid::onModelReset()
{
    selection_.reset(layers());
    dragBase_.reset(layers());
    current_ = anchor_ = MapCell{};
    anchorRow_ = anchorColumn_ = 0;
    drag_ = DragMode::None;
    updateScrollBars();
    viewport()->update();
    Q_EMIT selectionChanged();
    Q_EMIT currentCellChanged(current_);
}

// --- selection -------------------------------------------------------------------------------------------

std::vector<MapCell> PrecisionMapGrid::selection() const { return selection_.cells(); }

bool PrecisionMapGrid::isSelected(const MapCell& cell) const { return selection_.contains(cell); }

void PrecisionMapGrid::select(const CellSelection& next)
{
    if (next == selection_)
        return;
    selection_ = next;
    viewport()->update();
    Q_EMIT selectionChanged();
}

void PrecisionMapGrid::setSelection(const std::vector<MapCell>& cells)
{
    CellSelection next(layers());
    for (const MapCell& c : cells)
        next.add(c);
    select(next);
}

void PrecisionMapGrid::selectRow(int layer, bool extend)
{
    if (layer < 0 || layer >= layers())
        return;
    anchorRow_ = layer;
    CellSelection next = extend ? selection_ : CellSelection(layers());
    next.addRows(layer, layer);
    select(next);
}

void PrecisionMapGrid::selectColumn(int module, bool extend)
{
    if (module < 0 || module >= kLinearModuleCount)
        return;
    anchorColumn_ = module;
    CellSelection next = extend ? selection_ : CellSelection(layers());
    next.addColumns(module, module);
    select(next);
}

void PrecisionMapGrid::selectAll()
{
    CellSelection next(layers());
    next.selectAll();
    select(next);
}

void PrecisionMapGrid::clearSelection() { select(CellSelection(layers())); }

void PrecisionMapGrid::setCurrentCell(const MapCell& cell)
{
    if (!document_->contains(cell) || cell == current_)
        return;
    const QRect before = cellRect(current_);
    current_ = cell;
    viewport()->update(before.adjusted(-2, -2, 2, 2));
    viewport()->update(cellRect(current_).adjusted(-2, -2, 2, 2));
    Q_EMIT currentCellChanged(current_);
}

// --- edits -----------------------------------------------------------------------------------------------

QString PrecisionMapGrid::describe(const std::vector<MapCell>& cells, const QuantSpec& spec) const
{
    const QString f = specName(spec);
    if (cells.size() == 1)
        return tr("Set layer %1 %2 to %3").arg(cells[0].layer).arg(moduleName(cells[0].module), f);
    if (int(cells.size()) == layers() * kLinearModuleCount)
        return tr("Set all cells to %1").arg(f);
    const bool oneLayer = std::all_of(cells.begin(), cells.end(), [&](const MapCell& c) {
        return c.layer == cells[0].layer;
    });
    if (oneLayer && int(cells.size()) == kLinearModuleCount)
        return tr("Set layer %1 to %2").arg(cells[0].layer).arg(f);
    const bool oneModule = std::all_of(cells.begin(), cells.end(), [&](const MapCell& c) {
        return c.module == cells[0].module;
    });
    if (oneModule && int(cells.size()) == layers())
        return tr("Set column %1 to %2").arg(moduleName(cells[0].module), f);
    return tr("Set %1 cells to %2").arg(cells.size()).arg(f);
}

bool PrecisionMapGrid::apply(const std::vector<MapCell>& cells, const QuantSpec& spec, const QString& text, int dragId)
{
    auto* command = new SetCellsCommand(document_, cells, spec, text, dragId);
    if (!command->changesSomething()) {
        delete command;
        return false;
    }
    stack_->push(command);
    return true;
}

bool PrecisionMapGrid::setSelectionFormat(const QuantSpec& spec)
{
    const std::vector<MapCell> cells = selection();
    if (cells.empty())
        return false;
    return apply(cells, spec, describe(cells, spec));
}

// Paints every cell on the straight line between two cells, so a fast drag leaves no gaps.
void PrecisionMapGrid::paintAlong(const MapCell& from, const MapCell& to)
{
    std::vector<MapCell> cells;
    int l = from.layer, m = from.module;
    const int dl = std::abs(to.layer - l), dm = std::abs(to.module - m);
    const int sl = l < to.layer ? 1 : -1, sm = m < to.module ? 1 : -1;
    int err = dl - dm;
    while (true) {
        cells.push_back({l, m});
        if (l == to.layer && m == to.module)
            break;
        const int e2 = 2 * err;
        if (e2 > -dm) {
            err -= dm;
            l += sl;
        }
        if (e2 < dl) {
            err += dl;
            m += sm;
        }
    }
    CellSelection next = selection_;
    for (const MapCell& c : cells)
        next.add(c);
    apply(cells, paint_, from == to ? describe(cells, paint_) : tr("Paint %1").arg(specName(paint_)), dragId_);
    select(next);
    lastPainted_ = to;
}

// --- geometry --------------------------------------------------------------------------------------------

void PrecisionMapGrid::updateMetrics()
{
    const QFontMetrics fm(font());
    rowHeight_ = std::max(18, fm.height() + 6);
    headerHeight_ = rowHeight_ + 4;
}

int PrecisionMapGrid::rowHeaderWidth() const
{
    const QFontMetrics fm(font());
    const int digits = QString::number(std::max(1, layers() - 1)).size();
    int w = fm.horizontalAdvance(QString(std::max(digits, 2), QLatin1Char('8'))) + 12;
    if (overlay_ && !perLayer_.empty())
        w += kImportanceBarWidth + 4;
    return w;
}

int PrecisionMapGrid::columnWidth() const
{
    return std::max(kMinColumnWidth, (viewport()->width() - rowHeaderWidth()) / kLinearModuleCount);
}

void PrecisionMapGrid::updateScrollBars()
{
    const QSize vp = viewport()->size();
    const int contentW = rowHeaderWidth() + kLinearModuleCount * kMinColumnWidth;
    const int contentH = headerHeight_ + layers() * rowHeight_;
    horizontalScrollBar()->setRange(0, std::max(0, contentW - vp.width()));
    horizontalScrollBar()->setPageStep(vp.width());
    verticalScrollBar()->setRange(0, std::max(0, contentH - vp.height()));
    verticalScrollBar()->setPageStep(std::max(rowHeight_, vp.height() - headerHeight_));
    verticalScrollBar()->setSingleStep(rowHeight_);
    horizontalScrollBar()->setSingleStep(kMinColumnWidth / 2);
}

QRect PrecisionMapGrid::cellRect(const MapCell& cell) const
{
    const int w = columnWidth();
    return {rowHeaderWidth() + cell.module * w - horizontalScrollBar()->value(),
            headerHeight_ + cell.layer * rowHeight_ - verticalScrollBar()->value(), w, rowHeight_};
}

QRect PrecisionMapGrid::rowHeaderRect(int layer) const
{
    return {0, headerHeight_ + layer * rowHeight_ - verticalScrollBar()->value(), rowHeaderWidth(), rowHeight_};
}

QRect PrecisionMapGrid::columnHeaderRect(int module) const
{
    const int w = columnWidth();
    return {rowHeaderWidth() + module * w - horizontalScrollBar()->value(), 0, w, headerHeight_};
}

QRect PrecisionMapGrid::cornerRect() const
{
    return {0, 0, rowHeaderWidth(), headerHeight_};
}

PrecisionMapGrid::Hit PrecisionMapGrid::hitTest(const QPoint& p) const
{
    Hit hit;
    if (layers() == 0)
        return hit;
    const int rh = rowHeaderWidth();
    const int w = columnWidth();
    const int x = p.x() - rh + horizontalScrollBar()->value();
    const int y = p.y() - headerHeight_ + verticalScrollBar()->value();
    const int module = x >= 0 ? x / w : -1;
    const int layer = y >= 0 ? y / rowHeight_ : -1;
    const bool inRowHeader = p.x() >= 0 && p.x() < rh;
    const bool inColumnHeader = p.y() >= 0 && p.y() < headerHeight_;
    if (inRowHeader && inColumnHeader)
        hit.region = Region::Corner;
    else if (inColumnHeader && module >= 0 && module < kLinearModuleCount)
        hit = {Region::ColumnHeader, -1, module};
    else if (inRowHeader && layer >= 0 && layer < layers())
        hit = {Region::RowHeader, layer, -1};
    else if (!inRowHeader && !inColumnHeader && module >= 0 && module < kLinearModuleCount && layer >= 0 &&
             layer < layers())
        hit = {Region::Cell, layer, module};
    return hit;
}

MapCell PrecisionMapGrid::clampedCellAt(const QPoint& p) const
{
    const int x = p.x() - rowHeaderWidth() + horizontalScrollBar()->value();
    const int y = p.y() - headerHeight_ + verticalScrollBar()->value();
    const int module = std::clamp(x >= 0 ? x / columnWidth() : 0, 0, kLinearModuleCount - 1);
    const int layer = std::clamp(y >= 0 ? y / rowHeight_ : 0, 0, std::max(0, layers() - 1));
    return {layer, module};
}

void PrecisionMapGrid::ensureCellVisible(const MapCell& cell)
{
    const QRect r = cellRect(cell);
    const int top = headerHeight_, bottom = viewport()->height();
    if (r.top() < top)
        verticalScrollBar()->setValue(verticalScrollBar()->value() - (top - r.top()));
    else if (r.bottom() >= bottom)
        verticalScrollBar()->setValue(verticalScrollBar()->value() + (r.bottom() - bottom + 1));
    const int left = rowHeaderWidth(), right = viewport()->width();
    if (r.left() < left)
        horizontalScrollBar()->setValue(horizontalScrollBar()->value() - (left - r.left()));
    else if (r.right() >= right)
        horizontalScrollBar()->setValue(horizontalScrollBar()->value() + (r.right() - right + 1));
}

QSize PrecisionMapGrid::sizeHint() const
{
    const int frame = 2 * frameWidth();
    const int shownRows = std::clamp(layers(), 4, 24);
    return {rowHeaderWidth() + kLinearModuleCount * kPreferredColumnWidth + frame +
                style()->pixelMetric(QStyle::PM_ScrollBarExtent),
            headerHeight_ + shownRows * rowHeight_ + frame};
}

QSize PrecisionMapGrid::minimumSizeHint() const
{
    return {rowHeaderWidth() + kLinearModuleCount * kMinColumnWidth / 2, headerHeight_ + 3 * rowHeight_};
}

// --- tooltips and menu -----------------------------------------------------------------------------------

QString PrecisionMapGrid::cellToolTip(const MapCell& cell) const
{
    if (!document_->contains(cell))
        return {};
    const LinearModule module = kLinearModules[static_cast<size_t>(cell.module)];
    const QuantSpec& spec = document_->spec(cell);
    const LinearShape shape = linearShape(document_->config(), cell.layer, module);
    const int64_t weights = shape.rows * shape.cols;
    const int64_t bytes =
        document_->memory().layers[static_cast<size_t>(cell.layer)].moduleBytes[static_cast<size_t>(cell.module)];
    QStringList lines;
    lines << tr("Layer %1 · %2 (%3)").arg(cell.layer).arg(moduleName(cell.module),
                                                          QString::fromLatin1(linearModuleHfPath(module)));
    lines << tr("Format: %1").arg(specName(spec));
    lines << tr("Stored: %1 bytes (%2 bits per weight)")
                 .arg(formatCount(bytes), QLocale().toString(weights > 0 ? 8.0 * double(bytes) / double(weights) : 0.0,
                                                             'f', 3));
    lines << tr("Shape: [%1, %2] = %3 weights").arg(shape.rows).arg(shape.cols).arg(formatCount(weights));
    QStringList importance;
    if (size_t(cell.layer) < perModule_.size())
        importance << tr("module %1").arg(real3(perModule_[size_t(cell.layer)][size_t(cell.module)]));
    if (size_t(cell.layer) < perLayer_.size())
        importance << tr("layer %1").arg(real3(perLayer_[size_t(cell.layer)]));
    lines << (importance.isEmpty() ? tr("Importance: not scored") : tr("Importance: %1").arg(importance.join(", ")));
    return lines.join(QLatin1Char('\n'));
}

QMenu* PrecisionMapGrid::createContextMenu(const QPoint& viewportPos, QWidget* parent)
{
    auto* menu = new QMenu(parent);
    const Hit hit = hitTest(viewportPos);
    if (hit.region == Region::Cell) {
        const MapCell cell{hit.layer, hit.module};
        if (!isSelected(cell)) // a right click on an unselected cell acts on that cell
            setSelection({cell});
        setCurrentCell(cell);
    }
    const bool any = !selection_.empty();
    for (size_t i = 0; i < candidates_.size(); ++i) {
        const QuantSpec spec = candidates_[i];
        QPixmap swatch(12, 12);
        swatch.fill(formatColor(spec));
        QAction* a = menu->addAction(QIcon(swatch), tr("Set selection to %1").arg(specName(spec)));
        if (i < 9)
            a->setShortcut(QKeySequence(Qt::Key_1 + int(i)));
        a->setEnabled(any);
        connect(a, &QAction::triggered, this, [this, spec] { setSelectionFormat(spec); });
    }
    menu->addSeparator();
    const int layer = hit.layer, module = hit.module;
    if (layer >= 0)
        connect(menu->addAction(tr("Select row %1").arg(layer)), &QAction::triggered, this,
                [this, layer] { selectRow(layer); });
    if (module >= 0)
        connect(menu->addAction(tr("Select column %1").arg(moduleName(module))), &QAction::triggered, this,
                [this, module] { selectColumn(module); });
    connect(menu->addAction(tr("Select all")), &QAction::triggered, this, &PrecisionMapGrid::selectAll);
    QAction* clear = menu->addAction(tr("Clear selection"));
    clear->setEnabled(any);
    connect(clear, &QAction::triggered, this, &PrecisionMapGrid::clearSelection);
    return menu;
}

void PrecisionMapGrid::contextMenuEvent(QContextMenuEvent* event)
{
    if (layers() == 0)
        return;
    QMenu* menu = createContextMenu(event->pos(), this);
    menu->setAttribute(Qt::WA_DeleteOnClose);
    menu->popup(event->globalPos());
}

bool PrecisionMapGrid::viewportEvent(QEvent* event)
{
    if (event->type() == QEvent::ToolTip) {
        auto* help = static_cast<QHelpEvent*>(event);
        const Hit hit = hitTest(help->pos());
        QString text;
        if (hit.region == Region::Cell) {
            text = cellToolTip({hit.layer, hit.module});
        } else if (hit.region == Region::RowHeader) {
            const LayerMemory& lm = document_->memory().layers[static_cast<size_t>(hit.layer)];
            text = tr("Layer %1: linears %2 bytes, %3 bits per weight")
                       .arg(hit.layer)
                       .arg(formatCount(lm.linearBytes), QLocale().toString(lm.linearBitsPerWeight, 'f', 3));
            if (size_t(hit.layer) < perLayer_.size())
                text += tr("\nImportance: %1").arg(real3(perLayer_[size_t(hit.layer)]));
        } else if (hit.region == Region::ColumnHeader) {
            text = tr("%1 (%2): click selects the column")
                       .arg(moduleName(hit.module),
                            QString::fromLatin1(linearModuleHfPath(kLinearModules[size_t(hit.module)])));
        }
        if (text.isEmpty())
            QToolTip::hideText();
        else
            QToolTip::showText(help->globalPos(), text, viewport());
        return true;
    }
    return QAbstractScrollArea::viewportEvent(event);
}

// --- mouse and keyboard ----------------------------------------------------------------------------------

void PrecisionMapGrid::mousePressEvent(QMouseEvent* event)
{
    if (event->button() != Qt::LeftButton || layers() == 0) {
        QAbstractScrollArea::mousePressEvent(event);
        return;
    }
    const Hit hit = hitTest(event->position().toPoint());
    const bool ctrl = event->modifiers() & Qt::ControlModifier;
    const bool shift = event->modifiers() & Qt::ShiftModifier;
    dragBase_ = ctrl ? selection_ : CellSelection(layers());
    drag_ = DragMode::None;
    switch (hit.region) {
    case Region::None: break;
    case Region::Corner: selectAll(); break;
    case Region::ColumnHeader: {
        if (!shift)
            anchorColumn_ = hit.module;
        CellSelection next = dragBase_;
        next.addColumns(anchorColumn_, hit.module);
        select(next);
        setCurrentCell({current_.layer, hit.module});
        drag_ = DragMode::SelectColumns;
        break;
    }
    case Region::RowHeader: {
        if (!shift)
            anchorRow_ = hit.layer;
        CellSelection next = dragBase_;
        next.addRows(anchorRow_, hit.layer);
        select(next);
        setCurrentCell({hit.layer, current_.module});
        drag_ = DragMode::SelectRows;
        break;
    }
    case Region::Cell: {
        const MapCell cell{hit.layer, hit.module};
        if (shift) {
            CellSelection next = dragBase_;
            next.addRect(anchor_, cell);
            select(next);
            drag_ = DragMode::SelectCells;
        } else if (ctrl) {
            dragBase_.toggle(cell);
            select(dragBase_);
            anchor_ = cell;
            drag_ = DragMode::SelectCells;
        } else {
            anchor_ = cell;
            dragId_ = nextDragId_++;
            drag_ = DragMode::Paint;
            select(CellSelection(layers()));
            paintAlong(cell, cell);
        }
        setCurrentCell(cell);
        break;
    }
    }
    event->accept();
}

void PrecisionMapGrid::mouseMoveEvent(QMouseEvent* event)
{
    if (drag_ == DragMode::None || !(event->buttons() & Qt::LeftButton)) {
        QAbstractScrollArea::mouseMoveEvent(event);
        return;
    }
    const MapCell cell = clampedCellAt(event->position().toPoint());
    CellSelection next = dragBase_;
    switch (drag_) {
    case DragMode::Paint:
        if (cell != lastPainted_)
            paintAlong(lastPainted_, cell);
        break;
    case DragMode::SelectCells:
        next.addRect(anchor_, cell);
        select(next);
        break;
    case DragMode::SelectRows:
        next.addRows(anchorRow_, cell.layer);
        select(next);
        break;
    case DragMode::SelectColumns:
        next.addColumns(anchorColumn_, cell.module);
        select(next);
        break;
    case DragMode::None: break;
    }
    if (drag_ != DragMode::SelectColumns)
        ensureCellVisible(cell);
    setCurrentCell(cell);
    event->accept();
}

void PrecisionMapGrid::mouseReleaseEvent(QMouseEvent* event)
{
    if (event->button() == Qt::LeftButton) {
        drag_ = DragMode::None;
        dragId_ = -1;
        event->accept();
        return;
    }
    QAbstractScrollArea::mouseReleaseEvent(event);
}

void PrecisionMapGrid::moveCurrent(int dLayer, int dModule, bool extend)
{
    if (layers() == 0)
        return;
    const MapCell next{std::clamp(current_.layer + dLayer, 0, layers() - 1),
                       std::clamp(current_.module + dModule, 0, kLinearModuleCount - 1)};
    if (extend) {
        CellSelection rect(layers());
        rect.addRect(anchor_, next);
        select(rect);
    } else {
        anchor_ = next;
        setSelection({next});
    }
    setCurrentCell(next);
    ensureCellVisible(next);
}

void PrecisionMapGrid::keyPressEvent(QKeyEvent* event)
{
    const bool shift = event->modifiers() & Qt::ShiftModifier;
    const int page = std::max(1, (viewport()->height() - headerHeight_) / rowHeight_ - 1);
    const int key = event->key();
    if (layers() == 0) {
        QAbstractScrollArea::keyPressEvent(event);
        return;
    }
    if (key >= Qt::Key_1 && key <= Qt::Key_9 && !(event->modifiers() & (Qt::ControlModifier | Qt::AltModifier))) {
        const size_t n = size_t(key - Qt::Key_1);
        if (n < candidates_.size()) {
            if (selection().empty())
                setSelection({current_});
            setSelectionFormat(candidates_[n]);
        }
        event->accept();
        return;
    }
    if (event->matches(QKeySequence::SelectAll)) {
        selectAll();
        event->accept();
        return;
    }
    switch (key) {
    case Qt::Key_Up: moveCurrent(-1, 0, shift); break;
    case Qt::Key_Down: moveCurrent(1, 0, shift); break;
    case Qt::Key_Left: moveCurrent(0, -1, shift); break;
    case Qt::Key_Right: moveCurrent(0, 1, shift); break;
    case Qt::Key_PageUp: moveCurrent(-page, 0, shift); break;
    case Qt::Key_PageDown: moveCurrent(page, 0, shift); break;
    case Qt::Key_Home: moveCurrent(-layers(), 0, shift); break;
    case Qt::Key_End: moveCurrent(layers(), 0, shift); break;
    case Qt::Key_Space:
    case Qt::Key_Return:
    case Qt::Key_Enter:
        if (selection().empty())
            setSelection({current_});
        setSelectionFormat(paint_);
        break;
    case Qt::Key_Escape: clearSelection(); break;
    default: QAbstractScrollArea::keyPressEvent(event); return;
    }
    event->accept();
}

// --- painting --------------------------------------------------------------------------------------------

void PrecisionMapGrid::resizeEvent(QResizeEvent* event)
{
    QAbstractScrollArea::resizeEvent(event);
    updateScrollBars();
}

void PrecisionMapGrid::scrollContentsBy(int, int)
{
    viewport()->update();
}

void PrecisionMapGrid::changeEvent(QEvent* event)
{
    QAbstractScrollArea::changeEvent(event);
    if (event->type() == QEvent::FontChange || event->type() == QEvent::StyleChange) {
        updateMetrics();
        updateScrollBars();
    }
}

void PrecisionMapGrid::paintEvent(QPaintEvent*)
{
    QPainter p(viewport());
    MapGridPainter(*this).paint(p);
}

} // namespace qpruner::ui

// GUI test of the precision-map editor: clicks and drags on the real grid change the map and the memory
// figure to the core memory model's exact bytes; a drag is one undo step and undo/redo restore maps exactly;
// context menu, row/column selection and digit keys set exactly the selected cells; the budget bar agrees with
// the allocation's limit; map files round-trip and bad ones are refused without touching the editor.
#include <QtTest/QtTest>

#include <QAction>
#include <QFile>
#include <QMenu>
#include <QTemporaryDir>
#include <QUndoStack>

#include <set>

#include "common/format_colors.h"
#include "common/number_format.h"
#include "mapeditor/format_palette.h"
#include "mapeditor/map_budget.h"
#include "mapeditor/memory_bar.h"
#include "mapeditor/precision_map_editor.h"
#include "mapeditor/precision_map_grid.h"
#include "qpruner/allocation.h"
#include "qpruner/memory_model.h"
#include "test_data.h"

using namespace qpruner;

namespace qpruner {
// Failure messages show the map's JSON.
char* toString(const PrecisionMap& m)
{
    return qstrdup(m.toJson().dump().c_str());
}
} // namespace qpruner
using qpruner::ui::MapCell;
using qpruner::ui::PrecisionMapEditor;
using qpruner::ui::PrecisionMapGrid;

namespace {

const QuantSpec kBf16{QuantKind::BF16, 0, false};
const QuantSpec kInt8{QuantKind::Int8, 0, false};
const QuantSpec kNf4{QuantKind::NF4, 64, false};
const QuantSpec kInt4{QuantKind::Int4, 64, false};
const QuantSpec kInt2{QuantKind::Int2, 64, false};

// A shown editor of a fixed size, so cell rectangles are where the user would click.
struct Harness {
    PrecisionMapEditor editor;
    PrecisionMapGrid* grid = editor.grid();

    explicit Harness(const ModelConfig& config, const PrecisionMap& map = PrecisionMap(kBf16))
    {
        editor.resize(760, 620);
        QString error;
        const bool ok = editor.setModel(config, map, &error);
        if (!ok)
            qFatal("setModel failed: %s", qPrintable(error));
        editor.show();
        if (!QTest::qWaitForWindowExposed(&editor))
            qFatal("editor window not exposed");
    }
    QPoint center(const MapCell& c) const { return grid->cellRect(c).center(); }
    void click(const MapCell& c, Qt::KeyboardModifiers mods = {})
    {
        QTest::mouseClick(grid->viewport(), Qt::LeftButton, mods, center(c));
    }
    void drag(const std::vector<MapCell>& path)
    {
        QTest::mousePress(grid->viewport(), Qt::LeftButton, {}, center(path.front()));
        for (size_t i = 1; i < path.size(); ++i)
            QTest::mouseMove(grid->viewport(), center(path[i]));
        QTest::mouseRelease(grid->viewport(), Qt::LeftButton, {}, center(path.back()));
    }
    void paintWith(const QuantSpec& spec) { editor.formatPalette()->setCurrent(spec); }
    // Triggers the context-menu action with exactly `text` for a right click at `pos`.
    bool triggerMenu(const QPoint& pos, const QString& text)
    {
        std::unique_ptr<QMenu> menu(grid->createContextMenu(pos));
        for (QAction* a : menu->actions())
            if (a->text() == text && a->isEnabled()) {
                a->trigger();
                return true;
            }
        return false;
    }
};

// The editor's map is PrecisionMap::fromResolved of its grid: compare against the same canonical form.
PrecisionMap canonical(const PrecisionMap& m, const ModelConfig& c)
{
    return PrecisionMap::fromResolved(m.resolve(c));
}

std::set<std::pair<int, int>> cellsIn(const std::vector<MapCell>& cells)
{
    std::set<std::pair<int, int>> s;
    for (const MapCell& c : cells)
        s.insert({c.layer, c.module});
    return s;
}

// Verifies the editor shows `expected` and that every memory figure is the core's exact value for it.
void checkShows(const Harness& h, const ModelConfig& config, const PrecisionMap& expected)
{
    const MemoryReport want = memoryReport(config, expected);
    QCOMPARE(h.editor.map(), canonical(expected, config));
    QCOMPARE(h.editor.memory().totalBytes, want.totalBytes);
    QCOMPARE(h.editor.memory().linearBytes, want.linearBytes);
    QCOMPARE(h.editor.memory().linearBitsPerWeight, want.linearBitsPerWeight);
    const QString figure = h.editor.memoryBar()->figureText();
    QVERIFY2(figure.contains(ui::formatBytesExact(want.totalBytes)), qPrintable(figure));
    QVERIFY2(figure.contains(QLocale().toString(want.linearBitsPerWeight, 'f', 3) + QStringLiteral(" bpw")),
             qPrintable(figure));
}

QString writeFile(const QTemporaryDir& dir, const QString& name, const QByteArray& content)
{
    const QString path = dir.filePath(name);
    QFile f(path);
    if (!f.open(QIODevice::WriteOnly) || f.write(content) != content.size())
        qFatal("cannot write %s", qPrintable(path));
    return path;
}

} // namespace

class TestMapEditor : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void initTestCase()
    {
        QStandardPaths::setTestModeEnabled(true);
        QLocale::setDefault(QLocale(QLocale::English, QLocale::UnitedStates));
    }

    void clickSetsCellAndExactMemory()
    {
        const ModelConfig config = testing::storiesShapedConfig(2);
        Harness h(config);
        // bf16, untied: embedding and head 2 * 65,536, norms 1,280, linears 2 * 45,312 weights * 2 bytes.
        QCOMPARE(h.editor.memory().totalBytes, int64_t(313'600));
        checkShows(h, config, PrecisionMap(kBf16));

        QSignalSpy changed(&h.editor, &PrecisionMapEditor::mapChanged);
        h.paintWith(kInt4);
        h.click({1, 0}); // layer 1, q
        PrecisionMap expected(kBf16);
        expected.setLayerModule(1, LinearModule::Q, kInt4);
        checkShows(h, config, expected);
        // q [64, 64] in int4-g64: 2,048 packed bytes + f16 scale and zero [64, 1] = 2,304 instead of 8,192.
        QCOMPARE(h.editor.memory().totalBytes, int64_t(313'600 - 8'192 + 2'304));
        QCOMPARE(h.editor.memory().layers[1].moduleBytes[0], int64_t(2'304));
        QCOMPARE(changed.count(), 1);
        QCOMPARE(h.editor.undoStack()->count(), 1);
        QCOMPARE(h.editor.undoStack()->undoText(), QStringLiteral("Set layer 1 q to int4"));

        // Clicking the same cell again with the same format changes nothing and pushes nothing.
        h.click({1, 0});
        QCOMPARE(h.editor.undoStack()->count(), 1);
        QCOMPARE(changed.count(), 1);

        h.paintWith(kInt2);
        h.click({0, 6}); // layer 0, down
        expected.setLayerModule(0, LinearModule::Down, kInt2);
        checkShows(h, config, expected);
        QCOMPARE(h.editor.undoStack()->count(), 2);

        const QString tip = h.grid->cellToolTip({1, 0});
        QVERIFY2(tip.contains(QStringLiteral("Layer 1 · q")) && tip.contains(QStringLiteral("int4")) &&
                     tip.contains(QStringLiteral("2,304 bytes")) && tip.contains(QStringLiteral("[64, 64]")),
                 qPrintable(tip));
        QVERIFY2(h.editor.statusText().contains(QStringLiteral("Layer 0 down: int2")), qPrintable(h.editor.statusText()));
    }

    void dragIsOneUndoStep()
    {
        const ModelConfig config = testing::storiesShapedConfig(4);
        Harness h(config);
        h.paintWith(kInt4);
        h.click({3, 3});
        PrecisionMap before(kBf16);
        before.setLayerModule(3, LinearModule::O, kInt4);
        const MemoryReport beforeReport = memoryReport(config, before);

        h.paintWith(kNf4);
        const std::vector<MapCell> path = {{0, 0}, {0, 1}, {0, 2}, {1, 2}, {2, 2}};
        h.drag(path);
        QCOMPARE(h.editor.undoStack()->count(), 2); // the click, then the whole drag
        PrecisionMap after = before;
        for (const MapCell& c : path)
            after.setLayerModule(c.layer, kLinearModules[size_t(c.module)], kNf4);
        checkShows(h, config, after);
        QCOMPARE(h.editor.undoStack()->undoText(), QStringLiteral("Paint nf4 (5 cells)"));
        QCOMPARE(cellsIn(h.grid->selection()), cellsIn(path));

        h.editor.undoAction()->trigger();
        checkShows(h, config, before);
        QCOMPARE(h.editor.memory().totalBytes, beforeReport.totalBytes);
        h.editor.redoAction()->trigger();
        checkShows(h, config, after);
        h.editor.undoAction()->trigger();
        h.editor.undoAction()->trigger();
        checkShows(h, config, PrecisionMap(kBf16));
        QVERIFY(!h.editor.undoAction()->isEnabled());

        // A fast move that jumps across the row still paints every cell in between (one step, no gaps).
        h.editor.redoAction()->trigger();
        h.editor.redoAction()->trigger();
        h.paintWith(kInt8);
        h.drag({{2, 0}, {2, 6}});
        QCOMPARE(h.editor.undoStack()->count(), 3);
        after.setLayer(2, kInt8);
        for (LinearModule m : kLinearModules)
            after.setLayerModule(2, m, std::nullopt);
        checkShows(h, config, after);

        // Two drags are two steps even when they paint the same format.
        h.drag({{3, 0}, {3, 1}});
        QCOMPARE(h.editor.undoStack()->count(), 4);
    }

    void undoRedoByKeyboard()
    {
        const ModelConfig config = testing::storiesShapedConfig(2);
        Harness h(config);
        h.editor.activateWindow();
        QVERIFY(QTest::qWaitForWindowActive(&h.editor));
        h.grid->setFocus();
        h.paintWith(kInt8);
        h.click({0, 1});
        PrecisionMap edited(kBf16);
        edited.setLayerModule(0, LinearModule::K, kInt8);
        checkShows(h, config, edited);
        QTest::keyClick(h.grid, Qt::Key_Z, Qt::ControlModifier);
        checkShows(h, config, PrecisionMap(kBf16));
        QTest::keyClick(h.grid, Qt::Key_Z, Qt::ControlModifier | Qt::ShiftModifier);
        checkShows(h, config, edited);

        // Digit N sets the selection to the Nth candidate; arrows move the selection.
        h.editor.setCandidates({kBf16, kInt8, kNf4, kInt2});
        QTest::keyClick(h.grid, Qt::Key_Down);      // current (0, 1) -> (1, 1), selected alone
        QTest::keyClick(h.grid, Qt::Key_Right, Qt::ShiftModifier); // + (1, 2)
        QTest::keyClick(h.grid, Qt::Key_4);
        edited.setLayerModule(1, LinearModule::K, kInt2);
        edited.setLayerModule(1, LinearModule::V, kInt2);
        checkShows(h, config, edited);
        QCOMPARE(h.editor.undoStack()->count(), 2);
        QCOMPARE(h.editor.undoStack()->undoText(), QStringLiteral("Set 2 cells to int2"));
    }

    void contextMenuAndRowColumnSelection()
    {
        const ModelConfig config = testing::storiesShapedConfig(4);
        Harness h(config);
        QTest::mouseClick(h.grid->viewport(), Qt::LeftButton, {}, h.grid->rowHeaderRect(1).center());
        QCOMPARE(h.grid->selection().size(), size_t(7));
        for (const MapCell& c : h.grid->selection())
            QCOMPARE(c.layer, 1);
        // Ctrl+click on the "down" header adds that column: 7 + 4 - 1 shared cell.
        QTest::mouseClick(h.grid->viewport(), Qt::LeftButton, Qt::ControlModifier, h.grid->columnHeaderRect(6).center());
        const std::vector<MapCell> selected = h.grid->selection();
        QCOMPARE(selected.size(), size_t(10));

        QVERIFY(h.triggerMenu(h.center({1, 3}), QStringLiteral("Set selection to int8")));
        PrecisionMap expected(kBf16);
        for (const MapCell& c : selected)
            expected.setLayerModule(c.layer, kLinearModules[size_t(c.module)], kInt8);
        checkShows(h, config, expected);
        QCOMPARE(h.editor.undoStack()->count(), 1);
        int int8Cells = 0;
        for (int l = 0; l < 4; ++l)
            for (int m = 0; m < 7; ++m)
                int8Cells += h.editor.map().spec(l, kLinearModules[size_t(m)]) == kInt8;
        QCOMPARE(int8Cells, 10);

        // Column q, then Shift+click on column v: three columns of four layers.
        QTest::mouseClick(h.grid->viewport(), Qt::LeftButton, {}, h.grid->columnHeaderRect(0).center());
        QCOMPARE(h.grid->selection().size(), size_t(4));
        QTest::mouseClick(h.grid->viewport(), Qt::LeftButton, Qt::ShiftModifier, h.grid->columnHeaderRect(2).center());
        QCOMPARE(h.grid->selection().size(), size_t(12));
        QVERIFY(h.triggerMenu(h.center({0, 0}), QStringLiteral("Set selection to int2")));
        for (int l = 0; l < 4; ++l)
            for (LinearModule m : {LinearModule::Q, LinearModule::K, LinearModule::V})
                expected.setLayerModule(l, m, kInt2);
        checkShows(h, config, expected);
        QCOMPARE(h.editor.undoStack()->count(), 2);

        // A right click on an unselected cell acts on that cell only; "Select row" selects its layer.
        QVERIFY(h.triggerMenu(h.center({3, 5}), QStringLiteral("Set selection to nf4")));
        expected.setLayerModule(3, LinearModule::Up, kNf4);
        checkShows(h, config, expected);
        QVERIFY(h.triggerMenu(h.center({2, 4}), QStringLiteral("Select row 2")));
        QCOMPARE(cellsIn(h.grid->selection()),
                 (std::set<std::pair<int, int>>{{2, 0}, {2, 1}, {2, 2}, {2, 3}, {2, 4}, {2, 5}, {2, 6}}));
        QVERIFY(h.triggerMenu(h.center({2, 4}), QStringLiteral("Set selection to bf16")));
        for (LinearModule m : kLinearModules)
            expected.setLayerModule(2, m, kBf16);
        checkShows(h, config, expected);
        QCOMPARE(h.editor.undoStack()->undoText(), QStringLiteral("Set layer 2 to bf16"));
        // Row 2 had int8 (down) and int2 (q, k, v) cells: undo restores exactly those.
        h.editor.undoAction()->trigger();
        QCOMPARE(h.editor.map().spec(2, LinearModule::Down), kInt8);
        QCOMPARE(h.editor.map().spec(2, LinearModule::K), kInt2);
        QCOMPARE(h.editor.map().spec(2, LinearModule::Up), kBf16);
    }

    void budgetBarOverAndUnder()
    {
        const ModelConfig config = testing::storiesShapedConfig(2);
        Harness h(config);
        // 12 bpw of 90,624 linear weights: floor(12 * 90,624 / 8) = 135,936 bytes for the linears.
        QVERIFY(h.editor.setBudget(QStringLiteral("12bpw")));
        QCOMPARE(h.editor.memoryBar()->budget().limitBytes(), int64_t(135'936));
        QVERIFY(h.editor.memoryBar()->isOverBudget()); // bf16 linears: 181,248 bytes
        QVERIFY2(h.editor.memoryBar()->budgetText().contains(QStringLiteral("181,248 of 135,936 bytes")),
                 qPrintable(h.editor.memoryBar()->budgetText()));
        QVERIFY2(h.editor.memoryBar()->budgetText().contains(QStringLiteral("OVER by 45,312 bytes")),
                 qPrintable(h.editor.memoryBar()->budgetText()));

        // All int8: per layer 45,312 codes + 4 * 600 scale bytes = 47,712; linears 95,424 <= 135,936.
        h.grid->selectAll();
        QVERIFY(h.grid->setSelectionFormat(kInt8));
        QCOMPARE(h.editor.memory().linearBytes, int64_t(95'424));
        QVERIFY(!h.editor.memoryBar()->isOverBudget());
        QVERIFY(h.editor.memoryBar()->budgetText().contains(QStringLiteral("40,512 bytes left")));
        QCOMPARE(h.editor.undoStack()->undoText(), QStringLiteral("Set all cells to int8"));

        // A byte budget limits the total: 65,536 * 2 + 1,280 + 95,424 = 227,776.
        QVERIFY(h.editor.setBudget(QStringLiteral("227776")));
        QCOMPARE(h.editor.memory().totalBytes, int64_t(227'776));
        QVERIFY(!h.editor.memoryBar()->isOverBudget()); // exactly at the limit fits
        QVERIFY(h.editor.setBudget(QStringLiteral("227775 B")));
        QVERIFY(h.editor.memoryBar()->isOverBudget());
        QVERIFY(h.editor.memoryBar()->budgetText().contains(QStringLiteral("OVER by 1 bytes")));
        // Fraction of the bf16 model (313,600 bytes): 0.75x = 235,200.
        QVERIFY(h.editor.setBudget(QStringLiteral("75%")));
        QCOMPARE(h.editor.memoryBar()->budget().limitBytes(), int64_t(235'200));
        QVERIFY(!h.editor.memoryBar()->isOverBudget());
        h.editor.undoAction()->trigger(); // back to bf16: 313,600 > 235,200
        QVERIFY(h.editor.memoryBar()->isOverBudget());

        // Bad text is refused with parseBudget's message and leaves the budget as it was.
        QString error;
        QVERIFY(!h.editor.setBudget(QStringLiteral("12 parsecs"), &error));
        QVERIFY2(error.contains(QStringLiteral("12 parsecs")), qPrintable(error));
        QCOMPARE(h.editor.memoryBar()->budget().limitBytes(), int64_t(235'200));
        QVERIFY(h.editor.setBudget(QString()));
        QVERIFY(!h.editor.memoryBar()->isOverBudget());
        QVERIFY(!h.editor.memoryBar()->budget().isSet());
    }

    void budgetLimitMatchesAllocation()
    {
        // The editor's limit is the allocation's budgetBytes for every unit, so "over budget" agrees with the
        // search's feasibility to the byte.
        const ModelConfig config = testing::storiesShapedConfig(3, true);
        for (const char* text : {"5.3bpw", "150000", "120KiB", "0.37x", "41%"}) {
            AllocationProblem problem;
            problem.config = config;
            problem.importance = {0.2, 1.0, 0.5};
            problem.budget = parseBudget(text);
            AllocationOptions options;
            options.method = AllocationMethod::Uniform;
            options.uniformFormat = kInt2;
            const AllocationResult result = allocate(problem, options);
            const ui::MapBudget budget = ui::MapBudget::parse(QString::fromLatin1(text), config);
            QCOMPARE(budget.limitBytes(), result.budgetBytes);
            QCOMPARE(budget.budgetedBytes(memoryReport(config, result.best.map)), result.best.budgetedBytes);
        }
    }

    void saveLoadRoundTrip()
    {
        const ModelConfig config = testing::storiesShapedConfig(3);
        Harness h(config);
        h.paintWith(kNf4);
        h.drag({{0, 0}, {0, 6}});
        h.paintWith(kInt2);
        h.click({2, 4});
        const PrecisionMap edited = h.editor.map();

        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        const QString path = dir.filePath(QStringLiteral("map.json"));
        QString error;
        QVERIFY2(h.editor.saveMapFile(path, &error), qPrintable(error));
        QCOMPARE(PrecisionMap::load(path.toStdString()), edited);
        QFile f(path);
        QVERIFY(f.open(QIODevice::ReadOnly));
        QCOMPARE(f.readAll().toStdString(), edited.toJson().dump(2) + "\n");

        // Loading into a fresh editor shows the same map and the same exact bytes.
        Harness fresh(config);
        QVERIFY2(fresh.editor.loadMapFile(path, &error), qPrintable(error));
        QCOMPARE(fresh.editor.map(), edited);
        QCOMPARE(fresh.editor.memory().totalBytes, h.editor.memory().totalBytes);
        QCOMPARE(fresh.editor.undoStack()->count(), 1);
        QCOMPARE(fresh.editor.undoStack()->undoText(), QStringLiteral("Load map.json"));
        fresh.editor.undoAction()->trigger();
        QCOMPARE(fresh.editor.map(), canonical(PrecisionMap(kBf16), config));
        // Loading the map already shown pushes nothing.
        QVERIFY(h.editor.loadMapFile(path, &error));
        QCOMPARE(h.editor.undoStack()->count(), 2);
    }

    void badFilesAreRefused()
    {
        const ModelConfig config = testing::storiesShapedConfig(2);
        Harness h(config);
        h.paintWith(kInt8);
        h.click({1, 1});
        const PrecisionMap shown = h.editor.map();
        const int64_t bytes = h.editor.memory().totalBytes;
        QTemporaryDir dir;
        const QString badJson = writeFile(dir, QStringLiteral("broken.json"), "{\"version\": 1, \"default\": ");
        const QString tooMany = writeFile(dir, QStringLiteral("five_layers.json"),
                                          "{\"version\": 1, \"default\": \"bf16\", \"layers\": {\"4\": \"int8\"}}");
        const QString missing = dir.filePath(QStringLiteral("missing.json"));
        for (const QString& path : {badJson, tooMany, missing}) {
            QString error;
            QVERIFY(!h.editor.loadMapFile(path, &error));
            QVERIFY2(error.contains(path), qPrintable(error));
            QCOMPARE(h.editor.map(), shown);
            QCOMPARE(h.editor.memory().totalBytes, bytes);
            QCOMPARE(h.editor.undoStack()->count(), 1);
            QCOMPARE(h.editor.undoStack()->index(), 1);
        }
        QString error;
        QVERIFY(!h.editor.loadMapFile(tooMany, &error));
        QVERIFY2(error.contains(QStringLiteral("layers.4")) && error.contains(QStringLiteral("2 layers")),
                 qPrintable(error));

        // A save into a directory that does not exist fails naming the file; nothing is written.
        const QString nowhere = dir.filePath(QStringLiteral("no/such/dir/map.json"));
        QVERIFY(!h.editor.saveMapFile(nowhere, &error));
        QVERIFY2(error.contains(QStringLiteral("map.json")), qPrintable(error));
        QVERIFY(!QFile::exists(nowhere));
    }

    void evaluateRequestedWithCurrentMap()
    {
        const ModelConfig config = testing::storiesShapedConfig(2);
        Harness h(config);
        QSignalSpy requested(&h.editor, &PrecisionMapEditor::evaluateRequested);
        QVERIFY(!h.editor.evaluateAction()->isEnabled()); // no search stage yet
        h.editor.requestEvaluation();
        QCOMPARE(requested.count(), 0);

        h.editor.setEvaluationEnabled(true);
        QVERIFY(h.editor.evaluateAction()->isEnabled());
        h.paintWith(kNf4);
        h.click({0, 4});
        PrecisionMap expected(kBf16);
        expected.setLayerModule(0, LinearModule::Gate, kNf4);
        std::optional<PrecisionMap> seen;
        connect(&h.editor, &PrecisionMapEditor::evaluateRequested, this, [&] { seen = h.editor.map(); });
        h.editor.evaluateAction()->trigger();
        QCOMPARE(requested.count(), 1);
        QVERIFY(seen.has_value());
        QCOMPARE(*seen, canonical(expected, config));
        h.editor.setEvaluationStatus(QStringLiteral("trial 41: ppl 7.12"));
        QCOMPARE(h.editor.evaluationStatusText(), QStringLiteral("trial 41: ppl 7.12"));
    }

    void setMapIsUndoable()
    {
        const ModelConfig config = testing::storiesShapedConfig(3);
        PrecisionMap initial(kNf4);
        initial.setModuleDefault(LinearModule::Down, kInt8); // not canonical: the editor compacts it
        Harness h(config, initial);
        checkShows(h, config, initial);
        QCOMPARE(h.editor.undoStack()->count(), 0);

        const PrecisionMap trial = PrecisionMap::fromLayerSpecs({kInt4, kBf16, kInt2});
        QVERIFY(h.editor.setMap(trial, QStringLiteral("Map of trial 12")));
        checkShows(h, config, trial);
        QCOMPARE(h.editor.undoStack()->undoText(), QStringLiteral("Map of trial 12"));
        QVERIFY(h.editor.setMap(trial, QStringLiteral("again"))); // the same map: nothing pushed
        QCOMPARE(h.editor.undoStack()->count(), 1);
        h.editor.undoAction()->trigger();
        checkShows(h, config, initial);
        h.editor.redoAction()->trigger();
        checkShows(h, config, trial);

        PrecisionMap tooMany(kBf16);
        tooMany.setLayer(3, kInt8);
        QString error;
        QVERIFY(!h.editor.setMap(tooMany, QStringLiteral("Map of trial 13"), &error));
        QVERIFY2(error.contains(QStringLiteral("layers.3")), qPrintable(error));
        checkShows(h, config, trial);
        QCOMPARE(h.editor.undoStack()->count(), 1);

        // A new model clears the history; a map that does not fit leaves the editor as it was.
        QVERIFY(!h.editor.setModel(testing::storiesShapedConfig(2), tooMany, &error));
        checkShows(h, config, trial);
        QCOMPARE(h.editor.undoStack()->count(), 1);
        QVERIFY(h.editor.setModel(testing::storiesShapedConfig(2), PrecisionMap(kInt8), &error));
        QCOMPARE(h.editor.undoStack()->count(), 0);
        QCOMPARE(h.editor.memory().totalBytes, memoryReport(testing::storiesShapedConfig(2), PrecisionMap(kInt8)).totalBytes);
    }

    void importanceOverlayAndPixels()
    {
        const ModelConfig config = testing::storiesShapedConfig(2);
        Harness h(config);
        QVERIFY(!h.editor.importanceAction()->isEnabled());
        h.editor.setImportance({0.25, 1.0}, {{0.5, 0.0, 1.0, 0.25, 0.75, 0.1, 0.9}, {1, 1, 1, 1, 1, 1, 1}});
        QVERIFY(h.editor.importanceAction()->isEnabled());
        const QString tip = h.grid->cellToolTip({0, 3});
        QVERIFY2(tip.contains(QStringLiteral("module 0.250")) && tip.contains(QStringLiteral("layer 0.250")),
                 qPrintable(tip));

        h.paintWith(kInt2);
        h.click({1, 5});
        h.grid->clearSelection();
        // The painted cells carry their format colour (top-left inside the cell, away from label and bars).
        const QImage image = h.grid->viewport()->grab().toImage();
        const auto colourAt = [&](const MapCell& c) {
            return image.pixelColor(h.grid->cellRect(c).topLeft() + QPoint(3, 3)).rgb();
        };
        QCOMPARE(colourAt({1, 5}), ui::formatColor(kInt2).rgb());
        QCOMPARE(colourAt({0, 0}), ui::formatColor(kBf16).rgb());
        // Overlay on: the module bar of (1, 0) (importance 1) spans the cell's bottom; off: the fill shows.
        const QRect r = h.grid->cellRect({1, 0});
        const QPoint barPoint(r.right() - 4, r.bottom() - 2);
        QVERIFY(image.pixelColor(barPoint).rgb() != ui::formatColor(kBf16).rgb());
        h.editor.importanceAction()->setChecked(false);
        const QImage plain = h.grid->viewport()->grab().toImage();
        QCOMPARE(plain.pixelColor(h.grid->cellRect({1, 0}).bottomRight() - QPoint(4, 2)).rgb(),
                 ui::formatColor(kBf16).rgb());

        if (const QByteArray dirEnv = qgetenv("QPRUNER_SCREENSHOT_DIR"); !dirEnv.isEmpty()) {
            h.editor.importanceAction()->setChecked(true);
            h.editor.setBudget(QStringLiteral("12bpw"));
            h.editor.grab().save(QString::fromLocal8Bit(dirEnv) + QStringLiteral("/map_editor_2layers.png"));
            ModelConfig big = testing::storiesShapedConfig(32);
            std::vector<QuantSpec> layers;
            std::vector<double> perLayer;
            std::vector<std::array<double, 7>> perModule;
            const QuantSpec cycle[] = {kBf16, kInt8, kNf4, kInt4, QuantSpec{QuantKind::Int3, 64, false}, kInt2};
            for (int l = 0; l < 32; ++l) {
                layers.push_back(cycle[l % 6]);
                perLayer.push_back(double((l * 7) % 32) / 31.0);
                std::array<double, 7> row{};
                for (int m = 0; m < 7; ++m)
                    row[size_t(m)] = double((l + m * 3) % 10) / 9.0;
                perModule.push_back(row);
            }
            Harness b(big, PrecisionMap::fromLayerSpecs(layers));
            b.editor.resize(760, 700);
            b.editor.setImportance(perLayer, perModule);
            b.editor.setBudget(QStringLiteral("6bpw"));
            b.editor.setEvaluationEnabled(true);
            b.editor.setEvaluationStatus(QStringLiteral("trial 41: ppl 7.12"));
            b.grid->selectRow(5);
            b.grid->selectColumn(2, true);
            QCoreApplication::processEvents();
            b.editor.grab().save(QString::fromLocal8Bit(dirEnv) + QStringLiteral("/map_editor_32layers.png"));
        }
    }

    void eightyLayersStayLive()
    {
        // Llama-2-70B's shape: 80 layers, D = 8192, 64 heads over 8 KV heads, ffn 28,672, vocab 32,000.
        ModelConfig config;
        config.hiddenSize = 8192;
        config.headDim = 128;
        config.vocabSize = 32000;
        config.maxSeqLen = 4096;
        config.layers.assign(80, LayerShape{64, 8, 28672});
        Harness h(config);
        h.editor.resize(760, 900);
        h.paintWith(kNf4);
        QElapsedTimer timer;
        timer.start();
        // Down the "down" column as far as the viewport shows, then every row through the keyboard.
        h.drag({{0, 6}, {20, 6}});
        const qint64 dragMs = timer.elapsed();
        h.grid->selectAll();
        QVERIFY(h.grid->setSelectionFormat(kInt4));
        qInfo("80 layers: drag over 21 cells %lld ms, all 560 cells %lld ms", dragMs, timer.elapsed());
        PrecisionMap expected(kInt4);
        checkShows(h, config, expected);
        QCOMPARE(h.editor.undoStack()->count(), 2);
        h.editor.undoAction()->trigger();
        PrecisionMap dragged(kBf16);
        for (int l = 0; l <= 20; ++l)
            dragged.setLayerModule(l, LinearModule::Down, kNf4);
        checkShows(h, config, dragged);
    }

    void stories260KRealConfig()
    {
        QPRUNER_SHARED_FILE(bin, "models/stories260K/stories260K.bin");
        const ModelConfig config = inspectModel(bin).config;
        QCOMPARE(config.numLayers(), 5);
        Harness h(config);
        QCOMPARE(h.editor.memory().parameters, int64_t(260'032)); // shared/data MANIFEST.md
        // Tied: embedding 65,536, norms 5 * 512 + 256, linears 5 * 90,624 bytes.
        QCOMPARE(h.editor.memory().totalBytes, int64_t(65'536 + 2'816 + 453'120));
        h.paintWith(kNf4);
        h.drag({{4, 0}, {4, 6}});
        h.paintWith(kInt8);
        h.click({0, 6});
        PrecisionMap expected(kBf16);
        expected.setLayer(4, kNf4);
        expected.setLayerModule(0, LinearModule::Down, kInt8);
        checkShows(h, config, expected);
        QCOMPARE(h.editor.undoStack()->count(), 2);
        h.editor.undoAction()->trigger();
        h.editor.undoAction()->trigger();
        QCOMPARE(h.editor.memory().totalBytes, int64_t(521'472));
        QVERIFY(h.editor.statusText().contains(QStringLiteral("lm_head tied")));
    }
};

QTEST_MAIN(TestMapEditor)
#include "test_map_editor.moc"

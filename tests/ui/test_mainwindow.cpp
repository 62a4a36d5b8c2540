// GUI test of the studio's main window: opening models through the same asynchronous path as File > Open,
// the overview's figures for stories260K, error reporting that keeps the previous model, and the recent list.
#include <QtTest/QtTest>

#include <QFile>
#include <QMenu>
#include <QMenuBar>
#include <QSettings>
#include <QTableWidget>
#include <QTemporaryDir>

#include "common/number_format.h"
#include "main/main_window.h"
#include "model/layer_table_model.h"
#include "model/model_info_panel.h"
#include "model/run_shapes_panel.h"
#include "qcustomplot.h"
#include "settings/settings.h"
#include "test_data.h"

using qpruner::ui::LayerTableModel;
using qpruner::ui::MainWindow;
using qpruner::ui::ModelInfoPanel;
using qpruner::ui::Settings;
using Field = qpruner::ui::ModelInfoPanel::Field;

namespace {

constexpr int kLoadTimeoutMs = 20'000;
constexpr qint64 kStories260KParameters = 260'032; // shared/data MANIFEST.md
constexpr qint64 kStories260KLayerParameters = 45'440;

QString toQString(const std::filesystem::path& p)
{
    return QString::fromStdU16String(p.u16string());
}

// A main window whose errors are recorded instead of shown in a modal box.
struct Harness {
    MainWindow window;
    QStringList errors;
    QSignalSpy loaded{&window, &MainWindow::modelLoaded};
    QSignalSpy failed{&window, &MainWindow::loadFailed};

    Harness()
    {
        window.setErrorPresenter([this](const QString&, const QString& message) { errors.append(message); });
    }
    int outcomes() const { return int(loaded.count() + failed.count()); }
};

} // namespace

class TestMainWindow : public QObject {
    Q_OBJECT

private Q_SLOTS:
    // The Overview names what a model family adds (Gemma 3: norms, GeGLU, sliding layers; Qwen3: q/k norms).
    void overviewShowsFamilyFeatures()
    {
        qpruner::ModelSummary s;
        s.path = "/models/gemma";
        s.format = "hf";
        s.dtype = "bfloat16";
        qpruner::ModelConfig& c = s.config;
        c.architecture = "gemma3_text";
        c.hiddenSize = 1152;
        c.headDim = 256;
        c.vocabSize = 262144;
        c.maxSeqLen = 32768;
        c.tiedEmbeddings = true;
        c.qkNorm = true;
        c.sandwichNorms = true;
        c.hiddenAct = "gelu_pytorch_tanh";
        c.queryPreAttnScalar = 256;
        c.ropeLocalTheta = 10000;
        c.slidingWindow = 512;
        c.layers.assign(26, qpruner::LayerShape{4, 1, 6912});
        for (int l = 0; l < 26; ++l)
            c.slidingLayers.push_back((l + 1) % 6 != 0);
        s.parameterCount = c.parameterCount();
        ModelInfoPanel panel;
        panel.setSummary(s);
        QCOMPARE(panel.fieldText(Field::Architecture), QStringLiteral("gemma3_text"));
        QCOMPARE(panel.fieldText(Field::FamilyFeatures),
                 QStringLiteral("q/k norms, norms after attention and MLP, norms applied as 1 + w, MLP activation "
                                "gelu_pytorch_tanh, embeddings x 33.941125, sliding window 512 on 22 of 26 layers "
                                "(RoPE base 10000)"));
        QCOMPARE(panel.fieldText(Field::TotalParameters), QStringLiteral("999,885,952 (999.89 M)"));
    }

    // The Model tab's run view: shapes after pruning against the original, the chosen map's format per linear and
    // the recovered adapter's rank, from the run's snapshot.
    void runShapesShowPrunedLayersMapAndAdapter()
    {
        qpruner::ui::RunShapesPanel panel;
        panel.resize(900, 600);
        QVERIFY(panel.caption().contains(QStringLiteral("No run shown")));
        qpruner::ui::RunSnapshot s;
        s.run.id = 7;
        s.baseModel = qpruner::testing::storiesShapedConfig(3);
        s.model = s.baseModel;
        s.model->layers[1] = qpruner::LayerShape{6, 3, 120}; // pruned: 2 heads (1 KV group) and 52 channels
        qpruner::PrecisionMap map(qpruner::parseQuantSpec("nf4"));
        map.setLayer(2, qpruner::parseQuantSpec("int8"));
        map.setLayerModule(1, qpruner::LinearModule::Down, qpruner::parseQuantSpec("bf16"));
        s.chosenMap = map;
        qpruner::store::StageRecord search;
        search.name = "search";
        search.status = qpruner::store::RunStatus::Done;
        s.stages.push_back(search);
        panel.setRun(s);
        QVERIFY2(panel.caption().contains(QStringLiteral("pruned from the original")) &&
                     panel.caption().contains(QStringLiteral("search's chosen map")) &&
                     panel.caption().contains(QStringLiteral("not recovered")),
                 qPrintable(panel.caption()));
        QCOMPARE(panel.table()->rowCount(), 3);
        QCOMPARE(panel.cellText(0, QStringLiteral("Heads")), QStringLiteral("8"));
        QCOMPARE(panel.cellText(1, QStringLiteral("Heads")), QStringLiteral("6 (of 8)"));
        QCOMPARE(panel.cellText(1, QStringLiteral("KV heads")), QStringLiteral("3 (of 4)"));
        QCOMPARE(panel.cellText(1, QStringLiteral("FFN")), QStringLiteral("120 (of 172)"));
        QCOMPARE(panel.cellText(1, QStringLiteral("down")), QStringLiteral("bf16"));
        QCOMPARE(panel.cellText(1, QStringLiteral("up")), QStringLiteral("nf4"));
        QCOMPARE(panel.cellText(2, QStringLiteral("q")), QStringLiteral("int8"));
        QCOMPARE(panel.cellText(0, QStringLiteral("LoRA rank")), QStringLiteral("-"));
        // Bars: original and kept per layer.
        QCOMPARE(panel.ffnOriginalBars()->data()->size(), 3);
        QCOMPARE(panel.ffnKeptBars()->data()->at(1)->value, 120.0);
        QCOMPARE(panel.ffnOriginalBars()->data()->at(1)->value, 172.0);
        QCOMPARE(panel.headsKeptBars()->data()->at(1)->value, 6.0);
        QCOMPARE(panel.headsOriginalBars()->data()->at(1)->value, 8.0);

        // Recovered: the finetune stage done, rank and targets from the run's config.
        qpruner::store::StageRecord finetune;
        finetune.name = "finetune";
        finetune.status = qpruner::store::RunStatus::Done;
        s.stages.push_back(finetune);
        s.run.config = {{"finetune", {{"rank", 16}, {"targets", {"q", "v"}}}}};
        panel.setRun(s);
        QVERIFY2(panel.caption().contains(QStringLiteral("recovered with LoRA rank 16 on q, v")), qPrintable(panel.caption()));
        QCOMPARE(panel.cellText(2, QStringLiteral("LoRA rank")), QStringLiteral("16"));
        QCOMPARE(panel.table()->item(2, panel.table()->columnCount() - 1)->toolTip(), QStringLiteral("rank 16 on q, v"));
        panel.clear();
        QCOMPARE(panel.table()->rowCount(), 0);
        QCOMPARE(panel.ffnKeptBars()->data()->size(), 0);
    }

    void initTestCase()
    {
        // Never touch the developer's real settings; fixed locale so group separators are ','.
        QStandardPaths::setTestModeEnabled(true);
        QCoreApplication::setOrganizationName(QStringLiteral("QPrunerTest"));
        QCoreApplication::setApplicationName(QStringLiteral("test_mainwindow"));
        QLocale::setDefault(QLocale(QLocale::English, QLocale::UnitedStates));
    }

    void init() { QSettings().clear(); }
    void cleanupTestCase() { QSettings().clear(); }

    void formatsNumbers()
    {
        QCOMPARE(qpruner::ui::formatCount(260032), QStringLiteral("260,032"));
        QCOMPARE(qpruner::ui::formatParameterCount(260032), QStringLiteral("260,032 (0.26 M)"));
        QCOMPARE(qpruner::ui::formatCompactCount(6738415616), QStringLiteral("6.74 B"));
        QCOMPARE(qpruner::ui::formatBytes(1040128), QStringLiteral("0.99 MiB"));
        QCOMPARE(qpruner::ui::formatBytes(13476831232), QStringLiteral("12.55 GiB"));
        QCOMPARE(qpruner::ui::formatBytesExact(1040128), QStringLiteral("0.99 MiB (1,040,128 bytes)"));
    }

    void startsEmpty()
    {
        Harness h;
        QVERIFY(!h.window.modelInfoPanel()->hasModel());
        QVERIFY(h.window.currentModelPath().isEmpty());
        QCOMPARE(h.window.modelInfoPanel()->layerModel()->rowCount(), 0);
        QCOMPARE(h.window.windowTitle(), QStringLiteral("QPruner Studio"));
    }

    void opensStories260K()
    {
        QPRUNER_SHARED_FILE(bin, "models/stories260K/stories260K.bin");
        Harness h;
        h.window.openModel(toQString(bin));
        // The load runs on a worker thread: openModel returns before the result is in.
        QVERIFY(h.window.isLoading());
        QCOMPARE(h.outcomes(), 0);
        QTRY_COMPARE_WITH_TIMEOUT(h.outcomes(), 1, kLoadTimeoutMs);
        QCOMPARE(h.loaded.count(), 1);
        QVERIFY2(h.errors.isEmpty(), qPrintable(h.errors.join('\n')));
        QVERIFY(!h.window.isLoading());

        const QString path = Settings::normalisedPath(toQString(bin));
        QCOMPARE(h.loaded.first().first().toString(), path);
        QCOMPARE(h.window.currentModelPath(), path);
        QVERIFY(h.window.windowTitle().contains(QStringLiteral("stories260K.bin")));

        const ModelInfoPanel* panel = h.window.modelInfoPanel();
        QVERIFY(panel->hasModel());
        QCOMPARE(panel->fieldText(Field::TotalParameters), QStringLiteral("260,032 (0.26 M)"));
        QCOMPARE(panel->summary()->parameterCount, kStories260KParameters);
        QCOMPARE(panel->fieldText(Field::Path), path);
        QVERIFY(panel->fieldText(Field::Format).contains(QStringLiteral("llama2c")));
        QCOMPARE(panel->fieldText(Field::Dtype), QStringLiteral("float32"));
        QCOMPARE(panel->fieldText(Field::WeightBytes), QStringLiteral("0.99 MiB (1,040,128 bytes)"));
        QCOMPARE(panel->fieldText(Field::HiddenSize), QStringLiteral("64"));
        QCOMPARE(panel->fieldText(Field::HeadDim), QStringLiteral("8"));
        QCOMPARE(panel->fieldText(Field::VocabSize), QStringLiteral("512"));
        QCOMPARE(panel->fieldText(Field::MaxSeqLen), QStringLiteral("512"));
        QCOMPARE(panel->fieldText(Field::LayerCount), QStringLiteral("5"));
        QCOMPARE(panel->fieldText(Field::TiedEmbeddings), QStringLiteral("yes"));
        QCOMPARE(panel->fieldText(Field::AttentionBias), QStringLiteral("no"));
        QCOMPARE(panel->fieldText(Field::FamilyFeatures), QStringLiteral("none (the LLaMA decoder)"));
        QCOMPARE(panel->fieldText(Field::NormEps), QStringLiteral("1e-05"));
        QCOMPARE(panel->fieldText(Field::RopeTheta), QStringLiteral("10,000"));

        const LayerTableModel* layers = panel->layerModel();
        QCOMPARE(layers->rowCount(), 5);
        QCOMPARE(layers->columnCount(), int(LayerTableModel::ColumnCount));
        auto raw = [&](int row, int column) {
            return layers->data(layers->index(row, column), LayerTableModel::RawValueRole).toLongLong();
        };
        qint64 layerSum = 0;
        for (int r = 0; r < layers->rowCount(); ++r) {
            QCOMPARE(raw(r, LayerTableModel::LayerColumn), qint64(r));
            QCOMPARE(raw(r, LayerTableModel::HeadsColumn), qint64(8));
            QCOMPARE(raw(r, LayerTableModel::KvHeadsColumn), qint64(4));
            QCOMPARE(raw(r, LayerTableModel::FfnColumn), qint64(172));
            layerSum += raw(r, LayerTableModel::ParametersColumn);
        }
        QCOMPARE(raw(0, LayerTableModel::ParametersColumn), kStories260KLayerParameters);
        QCOMPARE(layers->data(layers->index(0, LayerTableModel::ParametersColumn)).toString(),
                 QStringLiteral("45,440"));
        QCOMPARE(layers->data(layers->index(0, LayerTableModel::ShareColumn)).toString(), QStringLiteral("17.5 %"));
        // Layers + embeddings (tied, counted once) + final norm add up to the total shown above.
        QCOMPARE(layerSum + 512 * 64 + 64, kStories260KParameters);
    }

    void missingFileKeepsPreviousModel()
    {
        QPRUNER_SHARED_FILE(bin, "models/stories260K/stories260K.bin");
        Harness h;
        h.window.openModel(toQString(bin));
        QTRY_COMPARE_WITH_TIMEOUT(h.loaded.count(), 1, kLoadTimeoutMs);
        const QString titleBefore = h.window.windowTitle();

        QTemporaryDir tmp;
        QVERIFY(tmp.isValid());
        const QString missing = tmp.filePath(QStringLiteral("no-such-model.bin"));
        h.window.openModel(missing);
        QTRY_COMPARE_WITH_TIMEOUT(h.failed.count(), 1, kLoadTimeoutMs);
        QCOMPARE(h.loaded.count(), 1);

        const QString message = h.failed.first().at(1).toString();
        QVERIFY2(message.contains(QStringLiteral("no-such-model.bin")), qPrintable(message));
        QVERIFY2(message.contains(QStringLiteral("not found")), qPrintable(message));
        QCOMPARE(h.errors, QStringList{message}); // shown to the user exactly once

        // The previous model is still what the window shows.
        QCOMPARE(h.window.currentModelPath(), Settings::normalisedPath(toQString(bin)));
        QCOMPARE(h.window.windowTitle(), titleBefore);
        QCOMPARE(h.window.modelInfoPanel()->fieldText(Field::TotalParameters), QStringLiteral("260,032 (0.26 M)"));
        QCOMPARE(h.window.modelInfoPanel()->layerModel()->rowCount(), 5);
    }

    void truncatedFileFails()
    {
        QPRUNER_SHARED_FILE(bin, "models/stories260K/stories260K.bin");
        QTemporaryDir tmp;
        QVERIFY(tmp.isValid());
        QFile source(toQString(bin));
        QVERIFY(source.open(QIODevice::ReadOnly));
        const QString truncated = tmp.filePath(QStringLiteral("truncated.bin"));
        QFile out(truncated);
        QVERIFY(out.open(QIODevice::WriteOnly));
        QCOMPARE(out.write(source.read(1000)), qint64(1000));
        out.close();

        Harness h;
        h.window.openModel(truncated);
        QTRY_COMPARE_WITH_TIMEOUT(h.outcomes(), 1, kLoadTimeoutMs);
        QCOMPARE(h.failed.count(), 1);
        const QString message = h.failed.first().at(1).toString();
        QVERIFY2(message.contains(QStringLiteral("truncated")), qPrintable(message));
        QVERIFY2(message.contains(QStringLiteral("truncated.bin")), qPrintable(message));
        QVERIFY(!h.window.modelInfoPanel()->hasModel());
        QVERIFY(h.window.currentModelPath().isEmpty());
        // Failed opens stay out of the recent list.
        QVERIFY(Settings().recentModels().isEmpty());
    }

    void supersededLoadIsDropped()
    {
        QPRUNER_SHARED_FILE(bin, "models/stories260K/stories260K.bin");
        Harness h;
        h.window.openModel(QStringLiteral("/nonexistent/first.bin"));
        h.window.openModel(toQString(bin)); // replaces the first request before it is reported
        QTRY_COMPARE_WITH_TIMEOUT(h.loaded.count(), 1, kLoadTimeoutMs);
        QTest::qWait(50);
        QCOMPARE(h.failed.count(), 0);
        QVERIFY(h.errors.isEmpty());
    }

    void recentModelsRecordOpenedPaths()
    {
        QPRUNER_SHARED_FILE(bin, "models/stories260K/stories260K.bin");
        QVERIFY(Settings().recentModels().isEmpty());
        {
            Harness h;
            h.window.openModel(toQString(bin));
            QTRY_COMPARE_WITH_TIMEOUT(h.loaded.count(), 1, kLoadTimeoutMs);
        }
        const QStringList recent = Settings().recentModels();
        QCOMPARE(recent.size(), 1);
        QCOMPARE(QFileInfo(recent.first()).canonicalFilePath(), QFileInfo(toQString(bin)).canonicalFilePath());

        // The File > Open Recent menu offers it.
        Harness h;
        QMenu* recentMenu = nullptr;
        for (QMenu* menu : h.window.menuBar()->findChildren<QMenu*>())
            if (menu->title() == QStringLiteral("Open &Recent"))
                recentMenu = menu;
        QVERIFY(recentMenu);
        QMetaObject::invokeMethod(recentMenu, "aboutToShow");
        QStringList labels;
        for (QAction* a : recentMenu->actions())
            labels << a->text();
        QVERIFY2(labels.contains(QStringLiteral("&1 stories260K.bin")), qPrintable(labels.join(", ")));
    }

    void recentListIsDedupedAndCapped()
    {
        Settings s;
        for (int i = 0; i < Settings::kMaxRecentModels + 3; ++i)
            s.addRecentModel(QStringLiteral("/models/m%1.bin").arg(i));
        s.addRecentModel(QStringLiteral("/models/./m5.bin")); // same file, spelled differently
        const QStringList recent = s.recentModels();
        QCOMPARE(recent.size(), Settings::kMaxRecentModels);
        QCOMPARE(recent.first(), QStringLiteral("/models/m5.bin"));
        QCOMPARE(recent.count(QStringLiteral("/models/m5.bin")), 1);
        QCOMPARE(recent.at(1), QStringLiteral("/models/m12.bin"));
        s.clearRecentModels();
        QVERIFY(s.recentModels().isEmpty());
    }

    void windowGeometryPersists()
    {
        {
            MainWindow window;
            window.show();
            QVERIFY(QTest::qWaitForWindowExposed(&window));
            window.resize(960, 700);
            QTRY_COMPARE(window.size(), QSize(960, 700));
            window.close(); // closeEvent stores geometry and state
        }
        QVERIFY(!Settings().mainWindowGeometry().isEmpty());
        MainWindow restored;
        QCOMPARE(restored.size(), QSize(960, 700));
    }

    void demoModelsMenuOpensModel()
    {
        QPRUNER_SHARED_FILE(bin, "models/stories260K/stories260K.bin");
        qputenv("QPRUNER_SHARED_DATA", toQString(qpruner::testing::sharedDataDir()).toUtf8());
        Harness h;
        qunsetenv("QPRUNER_SHARED_DATA");
        QAction* demo = nullptr;
        for (QAction* a : h.window.findChildren<QAction*>())
            if (a->text().startsWith(QStringLiteral("stories260K")))
                demo = a;
        QVERIFY(demo);
        demo->trigger();
        QTRY_COMPARE_WITH_TIMEOUT(h.loaded.count(), 1, kLoadTimeoutMs);
        QCOMPARE(h.window.modelInfoPanel()->summary()->parameterCount, kStories260KParameters);
    }
};

QTEST_MAIN(TestMainWindow)
#include "test_mainwindow.moc"

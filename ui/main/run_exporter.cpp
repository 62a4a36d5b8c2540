// RunExporter: menu actions over run_exports.h and the plot panels' savePlot.
#include "main/run_exporter.h"

#include <QAction>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QMenu>
#include <QWidget>

#include "main/run_view.h"
#include "mapeditor/precision_map_editor.h"
#include "plots/plot_export.h"
#include "workspace/run_exports.h"

namespace qpruner::ui {

RunExporter::RunExporter(RunView& view, QWidget* parent) : QObject(parent), view_(view), parentWidget_(parent)
{
    chooseFile_ = [this](const QString& caption, const QString& name, const QString& filter) {
        return QFileDialog::getSaveFileName(parentWidget_, caption, name, filter);
    };
    menu_ = new QMenu(tr("E&xport"), parent);
    mapAction_ = menu_->addAction(tr("Precision &Map (JSON)..."), this, [this] { exportMap(); });
    mapAction_->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_E));
    mapAction_->setStatusTip(tr("Save the map in the editor as precision-map JSON"));
    configAction_ = menu_->addAction(tr("Run &Config (JSON)..."), this, [this] { exportConfig(); });
    configAction_->setStatusTip(tr("Save the run's normalised config: `qpruner run` reproduces the run from it"));
    llamaAction_ = menu_->addAction(tr("&llama.cpp Tensor Types..."), this, [this] { exportLlamaCpp(); });
    llamaAction_->setStatusTip(tr("Save the llama-quantize command (--tensor-type lines) for the editor's map"));
    csvAction_ = menu_->addAction(tr("&Trials (CSV)..."), this, [this] { exportTrialsCsv(); });
    csvAction_->setStatusTip(tr("Save every trial of the run: state, objective, memory, timings, metrics, map"));
    plotAction_ = menu_->addAction(tr("&Plots (PNG, SVG, PDF)..."), this, [this] { exportPlots(); });
    plotAction_->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_E));
    plotAction_->setStatusTip(tr("Save the plots of the tab on display"));
    connect(menu_, &QMenu::aboutToShow, this, &RunExporter::updateEnabled);
}

void RunExporter::updateEnabled()
{
    const bool run = bool(view_.snapshot());
    mapAction_->setEnabled(view_.mapEditor()->hasModel());
    llamaAction_->setEnabled(view_.mapEditor()->hasModel());
    configAction_->setEnabled(run);
    csvAction_->setEnabled(run && !view_.snapshot()->trials.empty());
    plotAction_->setEnabled(!view_.currentPlots().isEmpty());
}

QString RunExporter::suggested(const QString& what, const QString& suffix) const
{
    const RunSnapshotPtr s = view_.snapshot();
    const QString dir = s ? QFileInfo(s->dbPath).absolutePath() : QDir::homePath();
    const QString stem = s ? QStringLiteral("run-%1-%2").arg(s->run.id).arg(what) : what;
    return dir + QLatin1Char('/') + stem + suffix;
}

void RunExporter::fail(const QString& message) const
{
    if (presentError_)
        presentError_(tr("Export Failed"), message);
}

bool RunExporter::exportMap()
{
    if (!view_.mapEditor()->hasModel())
        return false;
    const QString path = chooseFile_(tr("Export Precision Map"), suggested(QStringLiteral("map"), QStringLiteral(".json")),
                                     tr("Precision maps (*.json)"));
    if (path.isEmpty())
        return false;
    QString error;
    if (!view_.mapEditor()->saveMapFile(path, &error)) {
        fail(error);
        return false;
    }
    return true;
}

bool RunExporter::exportConfig()
{
    const RunSnapshotPtr s = view_.snapshot();
    if (!s)
        return false;
    return writeChosen(tr("Export Run Config"), suggested(QStringLiteral("config"), QStringLiteral(".json")),
                       tr("Run configs (*.json)"), QByteArray::fromStdString(s->run.config.dump(2) + "\n"));
}

bool RunExporter::writeChosen(const QString& caption, const QString& suggestedName, const QString& filter,
                              const QByteArray& bytes)
{
    const QString path = chooseFile_(caption, suggestedName, filter);
    if (path.isEmpty())
        return false;
    QString error;
    if (!writeFileAtomically(path, bytes, &error)) {
        fail(error);
        return false;
    }
    return true;
}

bool RunExporter::exportLlamaCpp()
{
    const RunSnapshotPtr s = view_.snapshot();
    PrecisionMapEditor* editor = view_.mapEditor();
    if (!editor->hasModel())
        return false;
    QString script;
    try {
        script = llamaQuantizeScript(editor->map(), editor->modelConfig(),
                                     s ? tr("Run %1 (%2): precision map from the editor").arg(s->run.id).arg(s->dbPath)
                                       : tr("Precision map from the editor"));
    } catch (const std::exception& e) {
        fail(QString::fromUtf8(e.what()));
        return false;
    }
    return writeChosen(tr("Export llama.cpp Tensor Types"),
                       suggested(QStringLiteral("llama-quantize"), QStringLiteral(".sh")),
                       tr("Shell scripts (*.sh);;All files (*)"), script.toUtf8());
}

bool RunExporter::exportTrialsCsv()
{
    const RunSnapshotPtr s = view_.snapshot();
    if (!s)
        return false;
    const QString path = chooseFile_(tr("Export Trials"), suggested(QStringLiteral("trials"), QStringLiteral(".csv")),
                                     tr("CSV files (*.csv)"));
    if (path.isEmpty())
        return false;
    QString error;
    if (!qpruner::ui::exportTrialsCsv(s->dbPath, s->run.id, path, &error)) {
        fail(error);
        return false;
    }
    return true;
}

bool RunExporter::exportPlots()
{
    const QList<QCustomPlot*> plots = view_.currentPlots();
    if (plots.isEmpty())
        return false;
    const QString tab = RunView::tabNames().value(view_.currentIndex());
    const QString path = chooseFile_(tr("Export Plots"), suggested(tab, QStringLiteral(".png")),
                                     tr("PNG images (*.png);;SVG drawings (*.svg);;PDF documents (*.pdf)"));
    if (path.isEmpty())
        return false;
    // Several plots: numbered files beside the chosen name (name.png, name-2.png, ...).
    const QFileInfo info(path);
    for (int i = 0; i < plots.size(); ++i) {
        const QString file = i == 0 ? path
                                    : info.absolutePath() + QLatin1Char('/') + info.completeBaseName() +
                                          QStringLiteral("-%1.").arg(i + 1) + info.suffix();
        QString error;
        if (!savePlot(plots[i], file, &error)) {
            fail(error);
            return false;
        }
    }
    return true;
}

} // namespace qpruner::ui

// The tabs of one run (Overview, Importance, Precision map, Search, Compare) plus the Model tab, fed by one
// RunSnapshotLoader: opening a run reads it off the UI thread; while it runs the loader polls it,
// and the tabs update in place (the Search plot live). Clicking a trial in the Search tab loads its
// map into the editor; "Evaluate this map" queues a job that adds the map as a trial of the run's study.
#pragma once

#include <QPointer>
#include <QTabWidget>

#include "jobs/job.h"
#include "workspace/run_snapshot_loader.h"

class QCustomPlot;

namespace qpruner::ui {

class ComparePage;
class ImportancePanel;
class JobQueue;
class ModelInfoPanel;
class OverviewPanel;
class RunShapesPanel;
class PrecisionMapEditor;
class SearchPanel;
class TrialActions;
class TrialsTable;

class RunView : public QTabWidget {
    Q_OBJECT

public:
    RunView(JobQueue& jobs, QWidget* parent = nullptr);

    RunSnapshotLoader* loader() const { return loader_; }
    RunSnapshotPtr snapshot() const { return loader_->current(); }
    OverviewPanel* overview() const { return overview_; }
    ImportancePanel* importance() const { return importance_; }
    PrecisionMapEditor* mapEditor() const { return editor_; }
    SearchPanel* search() const { return search_; }
    TrialsTable* trialsTable() const { return trials_; } // the Search tab's lower half
    TrialActions* trialActions() const { return trialActions_; }
    ComparePage* compare() const { return compare_; }
    ModelInfoPanel* modelPanel() const { return model_; }
    RunShapesPanel* runShapes() const { return shapes_; } // the Model tab's upper half: the run's model
    // The plots of the tab on display (empty when it has none): what File > Export > Plot saves.
    QList<QCustomPlot*> currentPlots() const;
    // The editor's pending "evaluate this map" job, if any.
    Job* evaluationJob() const { return evaluation_; }

    // Tab names as the command line and tests spell them.
    static QStringList tabNames(); // overview, importance, map, search, compare, model
    bool showTab(const QString& name);

public Q_SLOTS:
    void openRun(const QString& dbPath, qint64 runId);
    void closeRun();
    // Loads trial `number`'s map of the run on display into the editor (undoable) and shows the editor.
    void showTrialMap(qint64 runId, int number);
    void evaluateEditorMap();

Q_SIGNALS:
    void runLoaded(const qpruner::ui::RunSnapshotPtr& snapshot);
    void runFailed(const QString& dbPath, qint64 runId, const QString& message);
    void statusMessage(const QString& text);

private:
    void onLoaded(const RunSnapshotPtr& s);
    void onUpdated(const RunSnapshotPtr& s);
    void resetEditor(const RunSnapshot& s);
    void targetTrial(int number); // what Run > Trial acts on

    JobQueue& jobs_;
    RunSnapshotLoader* loader_ = nullptr;
    OverviewPanel* overview_ = nullptr;
    ImportancePanel* importance_ = nullptr;
    PrecisionMapEditor* editor_ = nullptr;
    SearchPanel* search_ = nullptr;
    QWidget* searchTab_ = nullptr;
    TrialsTable* trials_ = nullptr;
    TrialActions* trialActions_ = nullptr;
    ComparePage* compare_ = nullptr;
    ModelInfoPanel* model_ = nullptr;
    RunShapesPanel* shapes_ = nullptr;
    QPointer<Job> evaluation_;
    size_t shownScores_ = 0; // layer-score rows the Importance tab was last given
};

} // namespace qpruner::ui

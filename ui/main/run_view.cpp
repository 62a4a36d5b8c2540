// RunView: wiring between the snapshot loader, the run tabs, the editor and the job queue.
#include "main/run_view.h"

#include <QtConcurrent/QtConcurrentRun>
#include <QFutureWatcher>
#include <QScrollArea>
#include <QMenu>
#include <QSplitter>

#include "jobs/job_queue.h"
#include "jobs/pipeline_jobs.h"
#include "main/compare_page.h"
#include "mapeditor/precision_map_editor.h"
#include "model/model_info_panel.h"
#include "model/run_shapes_panel.h"
#include "overview/overview_panel.h"
#include "plots/importance_panel.h"
#include "plots/search_panel.h"
#include "qpruner/error.h"
#include "trials/trial_actions_ui.h"
#include "trials/trials_table.h"

namespace qpruner::ui {

namespace {

// The metric the run's allocation used (the editor's importance overlay), else the first one scored.
std::string allocationMetric(const RunSnapshot& s)
{
    const nlohmann::json& c = s.run.config;
    if (c.contains("importance") && c["importance"].is_object() && c["importance"].contains("metric") &&
        c["importance"]["metric"].is_string())
        return c["importance"]["metric"].get<std::string>();
    const auto metrics = s.metrics();
    return metrics.empty() ? std::string() : metrics.front();
}

std::vector<QuantSpec> candidateSpecs(const RunSnapshot& s)
{
    std::vector<QuantSpec> out;
    if (s.search)
        for (const std::string& name : s.search->candidates) {
            try {
                out.push_back(parseQuantSpec(name));
            } catch (const Error&) {
            }
        }
    return out;
}

} // namespace

RunView::RunView(JobQueue& jobs, QWidget* parent) : QTabWidget(parent), jobs_(jobs)
{
    setObjectName(QStringLiteral("RunView"));
    setDocumentMode(true);
    loader_ = new RunSnapshotLoader(this);
    overview_ = new OverviewPanel(this);
    importance_ = new ImportancePanel(this);
    editor_ = new PrecisionMapEditor(this);
    // The Search tab: the live plots above, every trial as a table below.
    auto* searchTab = new QSplitter(Qt::Vertical, this);
    searchTab->setObjectName(QStringLiteral("search-tab"));
    searchTab_ = searchTab;
    search_ = new SearchPanel(searchTab);
    trials_ = new TrialsTable(searchTab);
    trials_->setMinimumHeight(1); // the plots above keep the window's minimum; the table takes what is left
    searchTab->addWidget(search_);
    searchTab->addWidget(trials_);
    searchTab->setStretchFactor(0, 3);
    searchTab->setStretchFactor(1, 1);
    searchTab->setSizes({600, 180});
    trialActions_ = new TrialActions(jobs_, this);
    compare_ = new ComparePage(this);
    // The Model tab: the run's model layer by layer above, the file opened last below.
    auto* modelTab = new QSplitter(Qt::Vertical, this);
    modelTab->setObjectName(QStringLiteral("model-tab"));
    shapes_ = new RunShapesPanel(modelTab);
    shapes_->setMinimumSize(200, 150); // the splitter shares the height; the window's minimum stays small
    auto* modelScroll = new QScrollArea(modelTab);
    modelScroll->setWidgetResizable(true);
    modelScroll->setFrameShape(QFrame::NoFrame);
    model_ = new ModelInfoPanel(modelScroll);
    modelScroll->setWidget(model_);
    modelTab->addWidget(shapes_);
    modelTab->addWidget(modelScroll);
    modelTab->setStretchFactor(0, 3);
    modelTab->setStretchFactor(1, 1);
    modelTab->setSizes({600, 200});
    addTab(overview_, tr("&Overview"));
    addTab(importance_, tr("&Importance"));
    addTab(editor_, tr("Precision &map"));
    addTab(searchTab, tr("&Search"));
    addTab(compare_, tr("&Compare"));
    addTab(modelTab, tr("Mo&del"));
    setTabToolTip(0, tr("The run: config, stages, timings and key figures"));
    setTabToolTip(1, tr("Layer importance per metric, per module, and what pruning kept"));
    setTabToolTip(2, tr("Edit a precision map with live memory accounting; evaluate it as a trial"));
    setTabToolTip(3, tr("Accuracy against memory of every trial, the Pareto front and the hypervolume"));
    setTabToolTip(4, tr("Two or more runs side by side"));
    setTabToolTip(5, tr("The run's model layer by layer (shapes after pruning, the chosen formats, the adapter's "
                        "rank) and the model file opened last"));

    connect(loader_, &RunSnapshotLoader::loaded, this, &RunView::onLoaded);
    connect(loader_, &RunSnapshotLoader::updated, this, &RunView::onUpdated);
    connect(loader_, &RunSnapshotLoader::failed, this, &RunView::runFailed);
    connect(search_, &SearchPanel::trialActivated, this, &RunView::showTrialMap);
    connect(search_, &SearchPanel::trialActivated, this, [this](qint64, int number) {
        trials_->selectTrial(number);
        targetTrial(number);
    });
    connect(trials_, &TrialsTable::trialSelected, this, [this](qint64, int number) {
        search_->selectTrial(number);
        targetTrial(number);
    });
    connect(trials_, &TrialsTable::trialActivated, this, &RunView::showTrialMap);
    auto menu = [this](QMenu& m, qint64 runId, int trial) {
        if (const RunSnapshotPtr s = snapshot(); s && s->run.id == runId) {
            targetTrial(trial);
            trialActions_->populate(m, s->dbPath, runId, trial);
        }
    };
    search_->setTrialMenuProvider(menu);
    trials_->setTrialMenuProvider(menu);
    connect(trialActions_, &TrialActions::statusMessage, this, &RunView::statusMessage);
    connect(editor_, &PrecisionMapEditor::evaluateRequested, this, &RunView::evaluateEditorMap);
    connect(overview_, &OverviewPanel::parentRunActivated, this, [this](qint64 runId) {
        if (const RunSnapshotPtr s = snapshot())
            openRun(s->dbPath, runId);
    });
    // A job that computed the run on display has finished: show its end now (while the run runs, the loader's
    // poll follows it).
    connect(&jobs_, &JobQueue::jobFinished, this, [this](Job* job) {
        const RunSnapshotPtr s = snapshot();
        if (s && job->runId() == s->run.id && job->runDbPath() == s->dbPath)
            loader_->refresh();
    });
}

QStringList RunView::tabNames()
{
    return {QStringLiteral("overview"), QStringLiteral("importance"), QStringLiteral("map"),
            QStringLiteral("search"),   QStringLiteral("compare"),    QStringLiteral("model")};
}

bool RunView::showTab(const QString& name)
{
    const int i = int(tabNames().indexOf(name.toLower()));
    if (i < 0)
        return false;
    setCurrentIndex(i);
    return true;
}

QList<QCustomPlot*> RunView::currentPlots() const
{
    if (currentWidget() == importance_)
        return importance_->plots();
    if (currentWidget() == searchTab_)
        return search_->plots();
    if (currentWidget() == compare_)
        return compare_->plots();
    if (currentWidget() == shapes_->parentWidget())
        return {shapes_->plot()};
    return {};
}

void RunView::openRun(const QString& dbPath, qint64 runId)
{
    Q_EMIT statusMessage(tr("Reading run %1\u2026").arg(runId));
    loader_->load(dbPath, runId);
}

void RunView::closeRun()
{
    loader_->clear();
    overview_->clear();
    shapes_->clear();
    trials_->clear();
    trialActions_->setTarget({}, 0, -1);
    shownScores_ = 0;
}

void RunView::onLoaded(const RunSnapshotPtr& s)
{
    overview_->setRun(s);
    importance_->setRun(*s);
    shownScores_ = s->scores.size();
    search_->setRun(*s);
    trials_->setRun(*s);
    shapes_->setRun(*s);
    resetEditor(*s);
    // Run > Trial acts on the search's chosen trial until another one is picked.
    int chosen = -1;
    if (const store::StageRecord* st = s->stage("search"); st && st->result.is_object() &&
                                                             st->result.contains("chosen") &&
                                                             st->result["chosen"].is_object() &&
                                                             st->result["chosen"].contains("trial"))
        chosen = st->result["chosen"]["trial"].get<int>();
    targetTrial(chosen);
    compare_->setWorkspace(s->dbPath, s->run.id);
    Q_EMIT runLoaded(s);
    Q_EMIT statusMessage(tr("Run %1: %2 trials").arg(s->run.id).arg(s->trials.size()));
}

void RunView::onUpdated(const RunSnapshotPtr& s)
{
    overview_->setRun(s);
    if (s->scores.size() != shownScores_) {
        importance_->setRun(*s);
        shownScores_ = s->scores.size();
    }
    search_->updateRun(*s);
    trials_->setRun(*s);
    shapes_->setRun(*s);
    if (!editor_->hasModel()) // e.g. the allocation finished since: the editor can start
        resetEditor(*s);
    editor_->setEvaluationEnabled(s->search.has_value() && s->model.has_value());
}

void RunView::targetTrial(int number)
{
    const RunSnapshotPtr s = snapshot();
    if (!s || !s->search)
        trialActions_->setTarget({}, 0, -1);
    else
        trialActions_->setTarget(s->dbPath, s->run.id, number);
}

void RunView::resetEditor(const RunSnapshot& s)
{
    if (!s.model)
        return;
    const std::vector<QuantSpec> candidates = candidateSpecs(s);
    if (!candidates.empty())
        editor_->setCandidates(candidates);
    const PrecisionMap map = s.chosenMap ? *s.chosenMap
                             : s.initialMap ? *s.initialMap
                                            : PrecisionMap(QuantSpec{QuantKind::BF16, 0, false});
    editor_->setModel(*s.model, map);
    editor_->setBudget(s.search ? QString::fromStdString(s.search->budget) : QString());
    const std::string metric = allocationMetric(s);
    editor_->setImportance(s.layerScores(metric), s.moduleScores(metric));
    editor_->setEvaluationEnabled(s.search.has_value());
}

void RunView::showTrialMap(qint64 runId, int number)
{
    const RunSnapshotPtr s = snapshot();
    if (!s || s->run.id != runId || !s->model)
        return;
    const QString db = s->dbPath;
    // One row with its map: quick, but still off the UI thread (the writer may hold the file briefly).
    auto* watcher = new QFutureWatcher<std::pair<nlohmann::json, QString>>(this);
    connect(watcher, &QFutureWatcherBase::finished, this, [this, watcher, runId, number] {
        watcher->deleteLater();
        const auto [map, error] = watcher->result();
        const RunSnapshotPtr now = snapshot();
        if (!now || now->run.id != runId)
            return;
        if (!error.isEmpty()) {
            Q_EMIT statusMessage(error);
            return;
        }
        try {
            editor_->setMap(PrecisionMap::fromJson(map), tr("Map of trial %1").arg(number));
            setCurrentWidget(editor_);
            Q_EMIT statusMessage(tr("Trial %1's map is in the editor").arg(number));
        } catch (const std::exception& e) {
            Q_EMIT statusMessage(tr("Trial %1: %2").arg(number).arg(QString::fromUtf8(e.what())));
        }
    });
    watcher->setFuture(QtConcurrent::run([db, runId, number]() -> std::pair<nlohmann::json, QString> {
        try {
            return {openWorkspaceReadOnly(db)->trial(runId, number).map, QString()};
        } catch (const std::exception& e) {
            return {nlohmann::json(), QString::fromUtf8(e.what())};
        }
    }));
}

void RunView::evaluateEditorMap()
{
    const RunSnapshotPtr s = snapshot();
    if (!s || !editor_->hasModel())
        return;
    if (evaluation_ && !evaluation_->isFinished()) {
        editor_->setEvaluationStatus(tr("An evaluation is still running"));
        return;
    }
    Job* job = startEvaluateMap(jobs_, s->dbPath, s->run.id, editor_->map());
    evaluation_ = job;
    editor_->setEvaluationStatus(tr("Evaluating as a trial of run %1\u2026").arg(s->run.id));
    const qint64 runId = s->run.id;
    connect(job, &Job::finished, this, [this, job, runId](Job::State state) {
        if (state == Job::State::Done) {
            if (const auto t = evaluatedTrial(*job)) {
                const std::string objective =
                    snapshot() && snapshot()->search ? snapshot()->search->objective : std::string("objective");
                editor_->setEvaluationStatus(tr("Trial %1 of run %2: %3 %4")
                                                 .arg(t->number)
                                                 .arg(runId)
                                                 .arg(QString::fromStdString(objective))
                                                 .arg(t->objective ? QString::number(*t->objective, 'g', 5)
                                                                   : QStringLiteral("-")));
            }
        } else {
            editor_->setEvaluationStatus(state == Job::State::Cancelled ? tr("Evaluation cancelled")
                                                                        : tr("Evaluation failed: %1").arg(job->errorText()));
        }
        if (snapshot() && snapshot()->run.id == runId)
            loader_->refresh();
    });
}

} // namespace qpruner::ui

// MainWindow: the shell around the run view: docks, menus, workspaces, model opening and window state.
#include "common/workspace_location.h"
#include "main/main_window.h"

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QDir>
#include <QDockWidget>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QInputDialog>
#include <QLineEdit>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QProgressBar>
#include <QScrollArea>
#include <QStackedWidget>
#include <QStatusBar>
#include <QTimer>
#include <QUndoStack>

#include "browser/run_browser.h"
#include "common/number_format.h"
#include "common/shared_data.h"
#include "common/studio_identity.h"
#include "jobs/job_queue.h"
#include "jobs/jobs_panel.h"
#include "jobs/pipeline_jobs.h"
#include "main/run_exporter.h"
#include "main/run_view.h"
#include "trials/trial_actions_ui.h"
#include "mapeditor/precision_map_editor.h"
#include "model/model_info_panel.h"
#include "model/model_loader.h"
#include "newrun/new_run_dialog.h"
#include "settings/settings.h"
#include "start/start_page.h"

namespace qpruner::ui {

namespace {

constexpr int kStatusMessageMs = 6000;

QString displayName(const QString& path)
{
    if (isServerWorkspace(path))
        return workspaceLabel(path);
    const QFileInfo info(path);
    return info.fileName().isEmpty() ? QDir::toNativeSeparators(path) : info.fileName();
}

} // namespace

MainWindow::MainWindow(QWidget* parent)
    : QMainWindow(parent), settings_(std::make_unique<Settings>()), loader_(new ModelLoader(this)),
      jobs_(new JobQueue(this))
{
    setObjectName(QStringLiteral("MainWindow")); // saveState() keys on object names
    setWindowIcon(studioIcon());
    setAcceptDrops(true);
    presentError_ = [this](const QString& title, const QString& message) {
        QMessageBox::critical(this, title, message);
    };

    startPage_ = new StartPage(this);
    runView_ = new RunView(*jobs_, this);
    stack_ = new QStackedWidget(this);
    // Scrollable, so that the page's natural width does not set the window's minimum.
    startScroll_ = new QScrollArea(this);
    startScroll_->setWidget(startPage_);
    startScroll_->setWidgetResizable(true);
    startScroll_->setFrameShape(QFrame::NoFrame);
    stack_->addWidget(startScroll_);
    stack_->addWidget(runView_);
    setCentralWidget(stack_);
    exporter_ = new RunExporter(*runView_, this);
    exporter_->setErrorPresenter([this](const QString& title, const QString& message) {
        if (presentError_)
            presentError_(title, message);
    });

    createActions();
    createDocks();
    createMenus();
    createStatusBar();

    connect(loader_, &ModelLoader::started, this, &MainWindow::onLoadStarted);
    connect(loader_, &ModelLoader::loaded, this, &MainWindow::onModelLoaded);
    connect(loader_, &ModelLoader::failed, this, &MainWindow::onLoadFailed);

    connect(startPage_, &StartPage::openModelRequested, this, &MainWindow::openModel);
    connect(startPage_, &StartPage::openWorkspaceRequested, this, &MainWindow::openWorkspace);
    connect(startPage_, &StartPage::openRunRequested, this, &MainWindow::openRun);
    connect(startPage_, &StartPage::newWorkspaceRequested, this, &MainWindow::newWorkspaceDialog);
    connect(startPage_, &StartPage::openModelDialogRequested, this, &MainWindow::openModelFileDialog);
    connect(startPage_, &StartPage::openWorkspaceDialogRequested, this, &MainWindow::openWorkspaceDialog);

    // Every way of opening a run goes through the browser's selection, which then shows the run.
    connect(browser_, &RunBrowser::runSelected, runView_, &RunView::openRun);
    connect(browser_, &RunBrowser::newRunRequested, this, &MainWindow::newRunDialog);
    connect(browser_, &RunBrowser::workspaceOpened, this, [this](const QString& db) {
        workspace_ = db; // the browser records it among the recent workspaces
        settings_->setLastWorkspace(db);
        refreshStartPage();
        updateTitle();
        updateActions();
        statusBar()->showMessage(tr("Workspace %1").arg(QDir::toNativeSeparators(db)), kStatusMessageMs);
        if (!pendingRunDb_.isEmpty() && Settings::normalisedPath(pendingRunDb_) == Settings::normalisedPath(db)) {
            const qint64 id = std::exchange(pendingRunId_, 0);
            pendingRunDb_.clear();
            openRun(db, id);
        }
    });
    connect(browser_, &RunBrowser::workspaceFailed, this, [this](const QString& db, const QString& message) {
        pendingRunDb_.clear();
        settings_->removeRecentWorkspace(db);
        refreshStartPage();
        if (presentError_)
            presentError_(tr("Cannot Open Workspace"), message);
    });
    connect(runView_, &RunView::runLoaded, this, [this](const RunSnapshotPtr& s) {
        settings_->addRecentRun(s->dbPath, s->run.id);
        showRunTabs();
        updateTitle();
        updateActions();
    });
    connect(runView_, &RunView::runFailed, this, [this](const QString&, qint64 runId, const QString& message) {
        if (presentError_)
            presentError_(tr("Cannot Show Run %1").arg(runId), message);
    });
    connect(runView_, &RunView::statusMessage, this,
            [this](const QString& text) { statusBar()->showMessage(text, kStatusMessageMs); });
    connect(jobs_, &JobQueue::runCreated, this, [this](const QString& db, qint64 runId) {
        if (Settings::normalisedPath(db) == Settings::normalisedPath(workspace_))
            browser_->refresh();
        openRun(db, runId); // opens that workspace first when another one is open
    });
    connect(jobs_, &JobQueue::jobFinished, this, [this](Job*) { browser_->refresh(); });
    connect(jobsPanel_, &JobsPanel::runActivated, this, &MainWindow::openRun);

    resize(kDefaultSize);
    restoreWindowState();
    refreshStartPage();
    updateTitle();
    updateActions();
}

MainWindow::~MainWindow()
{
    jobs_->cancelAll();
}

void MainWindow::setErrorPresenter(ErrorPresenter presenter)
{
    presentError_ = std::move(presenter);
}

ModelInfoPanel* MainWindow::modelInfoPanel() const
{
    return runView_->modelPanel();
}

bool MainWindow::isLoading() const
{
    return loader_->isLoading() || runView_->loader()->isLoading();
}

bool MainWindow::isStartPageShown() const
{
    return stack_->currentWidget() == startScroll_;
}

void MainWindow::createActions()
{
    newWorkspaceAction_ = new QAction(QIcon::fromTheme(QStringLiteral("document-new")), tr("&New Workspace..."), this);
    newWorkspaceAction_->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_N));
    newWorkspaceAction_->setStatusTip(tr("Create a workspace database that records runs, trials and artifacts"));
    connect(newWorkspaceAction_, &QAction::triggered, this, &MainWindow::newWorkspaceDialog);

    openWorkspaceAction_ = new QAction(QIcon::fromTheme(QStringLiteral("document-open")), tr("Open &Workspace..."), this);
    openWorkspaceAction_->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_W));
    openWorkspaceAction_->setStatusTip(tr("Open a workspace database (SQLite) and browse its runs"));
    connect(openWorkspaceAction_, &QAction::triggered, this, &MainWindow::openWorkspaceDialog);
    openServerWorkspaceAction_ = new QAction(tr("Open Se&rver Workspace (PostgreSQL)..."), this);
    openServerWorkspaceAction_->setStatusTip(
        tr("Open a study kept in PostgreSQL (workers on many machines write to it); the password comes from "
           "~/.pgpass or PGPASSWORD"));
    connect(openServerWorkspaceAction_, &QAction::triggered, this, &MainWindow::openServerWorkspaceDialog);

    openFileAction_ = new QAction(QIcon::fromTheme(QStringLiteral("document-open")), tr("&Open Model..."), this);
    openFileAction_->setShortcut(QKeySequence::Open);
    openFileAction_->setStatusTip(tr("Open a llama2.c .bin checkpoint"));
    connect(openFileAction_, &QAction::triggered, this, &MainWindow::openModelFileDialog);

    openDirectoryAction_ = new QAction(QIcon::fromTheme(QStringLiteral("folder-open")),
                                       tr("Open Model &Directory..."), this);
    openDirectoryAction_->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_O));
    openDirectoryAction_->setStatusTip(tr("Open a Hugging Face or QPruner model directory (config.json + safetensors)"));
    connect(openDirectoryAction_, &QAction::triggered, this, &MainWindow::openModelDirectoryDialog);

    quitAction_ = new QAction(QIcon::fromTheme(QStringLiteral("application-exit")), tr("&Quit"), this);
    quitAction_->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_Q)); // QKeySequence::Quit is empty on some platforms
    quitAction_->setMenuRole(QAction::QuitRole);
    connect(quitAction_, &QAction::triggered, this, &QWidget::close);

    newRunAction_ = new QAction(QIcon::fromTheme(QStringLiteral("media-playback-start")), tr("&New Run..."), this);
    newRunAction_->setShortcut(QKeySequence::New);
    newRunAction_->setStatusTip(tr("Configure and start a pipeline run (prune, importance, allocation, search, "
                                   "recovery, evaluation) in the workspace"));
    connect(newRunAction_, &QAction::triggered, this, &MainWindow::newRunDialog);

    resumeRunAction_ = new QAction(tr("&Resume Run"), this);
    resumeRunAction_->setStatusTip(tr("Continue the run on display from its stored config: finished stages are reused"));
    connect(resumeRunAction_, &QAction::triggered, this, &MainWindow::resumeCurrentRun);

    evaluateMapAction_ = new QAction(tr("&Evaluate Editor Map"), this);
    evaluateMapAction_->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_Return));
    evaluateMapAction_->setStatusTip(tr("Add the precision map in the editor as a trial of the run's study"));
    connect(evaluateMapAction_, &QAction::triggered, runView_, &RunView::evaluateEditorMap);

    refreshAction_ = new QAction(QIcon::fromTheme(QStringLiteral("view-refresh")), tr("Re&fresh"), this);
    refreshAction_->setShortcut(QKeySequence::Refresh);
    connect(refreshAction_, &QAction::triggered, this, [this] {
        browser_->refresh();
        runView_->loader()->refresh();
        startPage_->refreshCache();
    });

    startPageAction_ = new QAction(QIcon::fromTheme(QStringLiteral("go-home")), tr("Start &Page"), this);
    startPageAction_->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_Home));
    connect(startPageAction_, &QAction::triggered, this, &MainWindow::showStartPage);

    statusBarAction_ = new QAction(tr("&Status Bar"), this);
    statusBarAction_->setCheckable(true);
    statusBarAction_->setChecked(true);

    fullScreenAction_ = new QAction(tr("&Full Screen"), this);
    fullScreenAction_->setCheckable(true);
    fullScreenAction_->setShortcut(QKeySequence::FullScreen);
    connect(fullScreenAction_, &QAction::toggled, this,
            [this](bool on) { setWindowState(on ? windowState() | Qt::WindowFullScreen
                                                 : windowState() & ~Qt::WindowFullScreen); });

    aboutAction_ = new QAction(tr("&About %1").arg(studioDisplayName()), this);
    aboutAction_->setMenuRole(QAction::AboutRole);
    connect(aboutAction_, &QAction::triggered, this, &MainWindow::showAbout);

    aboutQtAction_ = new QAction(tr("About &Qt"), this);
    aboutQtAction_->setMenuRole(QAction::AboutQtRole);
    connect(aboutQtAction_, &QAction::triggered, qApp, &QApplication::aboutQt);
}

void MainWindow::createDocks()
{
    browser_ = new RunBrowser(this);
    browserDock_ = new QDockWidget(tr("Runs"), this);
    browserDock_->setObjectName(QStringLiteral("RunsDock"));
    browserDock_->setWidget(browser_);
    addDockWidget(Qt::LeftDockWidgetArea, browserDock_);

    jobsPanel_ = new JobsPanel(jobs_, this);
    jobsDock_ = new QDockWidget(tr("Jobs"), this);
    jobsDock_->setObjectName(QStringLiteral("JobsDock"));
    jobsDock_->setWidget(jobsPanel_);
    addDockWidget(Qt::BottomDockWidgetArea, jobsDock_);
    // A job starting brings the panel into view.
    connect(jobs_, &JobQueue::jobAdded, this, [this] { jobsDock_->show(); });
}

void MainWindow::createMenus()
{
    QMenu* file = menuBar()->addMenu(tr("&File"));
    file->addAction(newWorkspaceAction_);
    file->addAction(openWorkspaceAction_);
    file->addAction(openServerWorkspaceAction_);
    recentWorkspacesMenu_ = file->addMenu(tr("Recent &Workspaces"));
    connect(recentWorkspacesMenu_, &QMenu::aboutToShow, this, &MainWindow::rebuildRecentWorkspacesMenu);
    rebuildRecentWorkspacesMenu();
    file->addSeparator();
    file->addAction(openFileAction_);
    file->addAction(openDirectoryAction_);
    recentMenu_ = file->addMenu(tr("Open &Recent"));
    // Rebuilt on every show so it reflects models opened by other windows or tests without bookkeeping.
    connect(recentMenu_, &QMenu::aboutToShow, this, &MainWindow::rebuildRecentMenu);
    rebuildRecentMenu();

    const QList<DemoModel> demos = demoModels();
    if (!demos.isEmpty()) {
        demoMenu_ = file->addMenu(tr("D&emo Models"));
        for (const DemoModel& demo : demos) {
            QAction* action = demoMenu_->addAction(demo.name);
            action->setStatusTip(QDir::toNativeSeparators(demo.path));
            const QString path = demo.path;
            connect(action, &QAction::triggered, this, [this, path] { openModel(path); });
        }
    }
    file->addSeparator();
    file->addMenu(exporter_->menu());
    file->addSeparator();
    file->addAction(quitAction_);

    QMenu* edit = menuBar()->addMenu(tr("&Edit"));
    QUndoStack* stack = runView_->mapEditor()->undoStack();
    QAction* undo = stack->createUndoAction(this, tr("&Undo"));
    undo->setShortcut(QKeySequence::Undo);
    QAction* redo = stack->createRedoAction(this, tr("&Redo"));
    redo->setShortcut(QKeySequence::Redo);
    edit->addAction(undo);
    edit->addAction(redo);

    QMenu* run = menuBar()->addMenu(tr("&Run"));
    run->addAction(newRunAction_);
    run->addAction(resumeRunAction_);
    run->addAction(evaluateMapAction_);
    QMenu* trial = run->addMenu(tr("&Trial"));
    trial->setToolTipsVisible(true);
    trial->addAction(runView_->trialActions()->recoverAction());
    trial->addAction(runView_->trialActions()->evaluateAction());
    trial->addAction(runView_->trialActions()->exportAction());
    trial->addAction(runView_->trialActions()->generateAction());
    run->addSeparator();
    run->addAction(refreshAction_);

    viewMenu_ = menuBar()->addMenu(tr("&View"));
    viewMenu_->addAction(startPageAction_);
    const QStringList names = RunView::tabNames();
    for (int i = 0; i < names.size(); ++i) {
        QAction* tab = viewMenu_->addAction(runView_->tabText(i).remove(QLatin1Char('&')));
        tab->setShortcut(QKeySequence(Qt::ALT | Qt::Key(Qt::Key_1 + i)));
        connect(tab, &QAction::triggered, this, [this, i] {
            showRunTabs();
            runView_->setCurrentIndex(i);
        });
    }
    viewMenu_->addSeparator();
    viewMenu_->addAction(browserDock_->toggleViewAction());
    viewMenu_->addAction(jobsDock_->toggleViewAction());
    viewMenu_->addAction(statusBarAction_);
    viewMenu_->addSeparator();
    viewMenu_->addAction(fullScreenAction_);

    QMenu* help = menuBar()->addMenu(tr("&Help"));
    help->addAction(aboutAction_);
    help->addAction(aboutQtAction_);
}

void MainWindow::createStatusBar()
{
    modelStatusLabel_ = new QLabel(this);
    busyIndicator_ = new QProgressBar(this);
    busyIndicator_->setRange(0, 0); // indeterminate until loads report progress
    busyIndicator_->setMaximumWidth(140);
    busyIndicator_->setMaximumHeight(14);
    busyIndicator_->setTextVisible(false);
    busyIndicator_->hide();
    statusBar()->addPermanentWidget(busyIndicator_);
    statusBar()->addPermanentWidget(modelStatusLabel_);
    connect(statusBarAction_, &QAction::toggled, statusBar(), &QWidget::setVisible);
    statusBar()->showMessage(tr("Ready"));
}

void MainWindow::restoreWindowState()
{
    const QByteArray geometry = settings_->mainWindowGeometry();
    if (!geometry.isEmpty())
        restoreGeometry(geometry);
    const QByteArray state = settings_->mainWindowState();
    if (!state.isEmpty())
        restoreState(state);
    else // first start: docks at sizes that leave the centre most of the room (effective once shown)
        QTimer::singleShot(0, this, [this] {
            resizeDocks({browserDock_}, {280}, Qt::Horizontal);
            resizeDocks({jobsDock_}, {110}, Qt::Vertical);
        });
}

void MainWindow::closeEvent(QCloseEvent* event)
{
    // Offscreen (tests, screenshots) nobody can answer a question.
    if (jobs_->activeCount() > 0 && QGuiApplication::platformName() != QLatin1String("offscreen")) {
        const auto answer = QMessageBox::question(
            this, tr("Jobs Running"),
            tr("%n job(s) still running. Cancel them and quit? Runs can be resumed later.", "", jobs_->activeCount()));
        if (answer != QMessageBox::Yes) {
            event->ignore();
            return;
        }
    }
    settings_->setMainWindowGeometry(saveGeometry());
    settings_->setMainWindowState(saveState());
    settings_->sync();
    QMainWindow::closeEvent(event);
}

void MainWindow::rebuildRecentMenu()
{
    recentMenu_->clear();
    const QStringList recent = settings_->recentModels();
    for (int i = 0; i < recent.size(); ++i) {
        const QString path = recent[i];
        // Numbered accelerators (&1..&9) like most desktop applications' recent-file lists.
        const QString label = i < 9 ? QStringLiteral("&%1 %2").arg(i + 1).arg(displayName(path)) : displayName(path);
        QAction* action = recentMenu_->addAction(label);
        action->setToolTip(QDir::toNativeSeparators(path));
        action->setStatusTip(QDir::toNativeSeparators(path));
        connect(action, &QAction::triggered, this, [this, path] { openModel(path); });
    }
    if (recent.isEmpty()) {
        recentMenu_->addAction(tr("No recent models"))->setEnabled(false);
        return;
    }
    recentMenu_->addSeparator();
    connect(recentMenu_->addAction(tr("&Clear List")), &QAction::triggered, this,
            [this] { settings_->clearRecentModels(); });
}

void MainWindow::rebuildRecentWorkspacesMenu()
{
    recentWorkspacesMenu_->clear();
    const QStringList recent = settings_->recentWorkspaces();
    for (int i = 0; i < recent.size(); ++i) {
        const QString path = recent[i];
        const QString label = i < 9 ? QStringLiteral("&%1 %2").arg(i + 1).arg(displayName(path)) : displayName(path);
        QAction* action = recentWorkspacesMenu_->addAction(label);
        action->setStatusTip(QDir::toNativeSeparators(path));
        connect(action, &QAction::triggered, this, [this, path] { openWorkspace(path); });
    }
    if (recent.isEmpty())
        recentWorkspacesMenu_->addAction(tr("No recent workspaces"))->setEnabled(false);
}

void MainWindow::refreshStartPage()
{
    startPage_->setRecentWorkspaces(settings_->recentWorkspaces());
    startPage_->setRecentRuns(settings_->recentRuns());
}

QString MainWindow::dialogStartDirectory() const
{
    const QString last = settings_->lastModelDirectory();
    if (!last.isEmpty() && QFileInfo(last).isDir())
        return last;
    const QString shared = sharedDataDir();
    if (!shared.isEmpty() && QFileInfo(shared + QStringLiteral("/models")).isDir())
        return shared + QStringLiteral("/models");
    return QDir::homePath();
}

void MainWindow::openModelFileDialog()
{
    const QString path = QFileDialog::getOpenFileName(
        this, tr("Open Model"), dialogStartDirectory(),
        tr("llama2.c checkpoints (*.bin);;All files (*)"));
    if (path.isEmpty())
        return;
    settings_->setLastModelDirectory(QFileInfo(path).absolutePath());
    openModel(path);
}

void MainWindow::openModelDirectoryDialog()
{
    const QString dir = QFileDialog::getExistingDirectory(this, tr("Open Model Directory"), dialogStartDirectory());
    if (dir.isEmpty())
        return;
    settings_->setLastModelDirectory(QFileInfo(dir).absolutePath());
    openModel(dir);
}

void MainWindow::openModel(const QString& path)
{
    loader_->load(Settings::normalisedPath(path));
}

void MainWindow::openWorkspace(const QString& dbPath)
{
    browser_->openWorkspace(Settings::normalisedPath(dbPath));
    browserDock_->show();
}

void MainWindow::newWorkspaceDialog()
{
    const QString path = QFileDialog::getSaveFileName(this, tr("New Workspace"), QDir::homePath() +
                                                      QStringLiteral("/study.db"),
                                                      tr("Workspace databases (*.db);;All files (*)"));
    if (path.isEmpty())
        return;
    QString error;
    if (!RunBrowser::createWorkspace(path, &error)) {
        if (presentError_)
            presentError_(tr("Cannot Create Workspace"), error);
        return;
    }
    openWorkspace(path);
}

void MainWindow::openWorkspaceDialog()
{
    const QString path = QFileDialog::getOpenFileName(this, tr("Open Workspace"), QDir::homePath(),
                                                      tr("Workspace databases (*.db *.sqlite);;All files (*)"));
    if (!path.isEmpty())
        openWorkspace(path);
}

void MainWindow::openServerWorkspaceDialog()
{
    bool ok = false;
    const QString url = QInputDialog::getText(
        this, tr("Open Server Workspace"),
        tr("PostgreSQL URL of the study (no password: put it in ~/.pgpass or PGPASSWORD):"), QLineEdit::Normal,
        QStringLiteral("postgresql://%1@localhost:5432/study").arg(qEnvironmentVariable("USER", QStringLiteral("me"))),
        &ok);
    if (!ok || url.trimmed().isEmpty())
        return;
    QString error;
    if (!checkServerWorkspaceUrl(url.trimmed(), &error)) {
        if (presentError_)
            presentError_(tr("Cannot Open Server Workspace"), error);
        return;
    }
    openWorkspace(url.trimmed());
}

void MainWindow::openRun(const QString& dbPath, qint64 runId)
{
    if (Settings::normalisedPath(dbPath) != Settings::normalisedPath(workspace_)) {
        pendingRunDb_ = dbPath;
        pendingRunId_ = runId;
        openWorkspace(dbPath);
        return;
    }
    browser_->selectRun(runId); // emits runSelected (now, or once the browser has re-read the workspace)
}

void MainWindow::newRunDialog()
{
    if (workspace_.isEmpty()) {
        if (presentError_)
            presentError_(tr("No Workspace"), tr("Open or create a workspace first: runs are recorded in it."));
        return;
    }
    NewRunDialog dialog(this);
    dialog.setBaseDir(QFileInfo(workspace_).absolutePath());
    if (const RunSnapshotPtr s = runView_->snapshot())
        dialog.setConfig(s->run.config); // "new run" starts from the run on display
    if (!currentPath_.isEmpty())
        dialog.setModelPath(currentPath_);
    if (dialog.exec() != QDialog::Accepted)
        return;
    startPipelineRun(*jobs_, workspace_, dialog.config(), QFileInfo(workspace_).absolutePath());
}

void MainWindow::resumeCurrentRun()
{
    const RunSnapshotPtr s = runView_->snapshot();
    if (s)
        resumePipelineRun(*jobs_, s->dbPath, s->run.id);
}

void MainWindow::showStartPage()
{
    refreshStartPage();
    stack_->setCurrentWidget(startScroll_);
    updateTitle();
}

void MainWindow::showRunTabs()
{
    stack_->setCurrentWidget(runView_);
}

void MainWindow::updateActions()
{
    const RunSnapshotPtr s = runView_->snapshot();
    newRunAction_->setEnabled(!workspace_.isEmpty());
    resumeRunAction_->setEnabled(s && s->run.status != store::RunStatus::Done);
    evaluateMapAction_->setEnabled(s && s->search.has_value());
}

void MainWindow::onLoadStarted(const QString& path)
{
    busyIndicator_->show();
    statusBar()->showMessage(tr("Opening %1\u2026").arg(QDir::toNativeSeparators(path)));
}

void MainWindow::onModelLoaded(const QString& path, const qpruner::ModelSummary& summary, qint64 elapsedMs)
{
    busyIndicator_->hide();
    currentPath_ = path;
    modelInfoPanel()->setSummary(summary);
    showRunTabs();
    runView_->showTab(QStringLiteral("model"));
    settings_->addRecentModel(path);
    modelStatusLabel_->setText(tr("%1 parameters \u00b7 %2 \u00b7 %3")
                                   .arg(formatCompactCount(summary.parameterCount),
                                        formatBytes(summary.weightBytes), QString::fromStdString(summary.dtype)));
    statusBar()->showMessage(tr("Opened %1 in %2 ms").arg(displayName(path)).arg(elapsedMs), kStatusMessageMs);
    updateTitle();
    Q_EMIT modelLoaded(path);
}

void MainWindow::onLoadFailed(const QString& path, const QString& message)
{
    busyIndicator_->hide();
    statusBar()->showMessage(tr("Could not open %1").arg(displayName(path)), kStatusMessageMs);
    Q_EMIT loadFailed(path, message);
    if (presentError_)
        presentError_(tr("Cannot Open Model"), message);
}

void MainWindow::updateTitle()
{
    // Qt appends the application display name (" \u2014 QPruner Studio") itself on X11, Wayland and Windows,
    // so the title names only what is on display; with nothing it is the display name, which Qt leaves as is.
    const RunSnapshotPtr s = runView_->snapshot();
    if (!isStartPageShown() && s)
        setWindowTitle(tr("Run %1 \u2014 %2").arg(s->run.id).arg(displayName(s->dbPath)));
    else if (!currentPath_.isEmpty())
        setWindowTitle(displayName(currentPath_));
    else
        setWindowTitle(studioDisplayName());
}

void MainWindow::showAbout()
{
    QMessageBox box(this);
    box.setWindowTitle(tr("About %1").arg(studioDisplayName()));
    box.setIconPixmap(studioIcon().pixmap(64, 64));
    box.setTextFormat(Qt::RichText);
    box.setText(tr("<h3>%1 %2</h3>"
                   "<p>A workbench for compressing LLaMA-family models with QPruner: structured pruning, "
                   "importance-aware mixed-precision quantisation, Bayesian search over precision maps, "
                   "LoftQ-initialised LoRA recovery and evaluation.</p>"
                   "<p>Built with Qt %3 (running on Qt %4), libtorch, SQLite and QCustomPlot.</p>")
                    .arg(studioDisplayName(), studioVersion(), QStringLiteral(QT_VERSION_STR), qVersion()));
    box.exec();
}

void MainWindow::dragEnterEvent(QDragEnterEvent* event)
{
    const QList<QUrl> urls = event->mimeData()->urls();
    if (urls.size() == 1 && urls.first().isLocalFile())
        event->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* event)
{
    const QList<QUrl> urls = event->mimeData()->urls();
    if (urls.size() != 1 || !urls.first().isLocalFile())
        return;
    event->acceptProposedAction();
    const QString path = urls.first().toLocalFile();
    if (path.endsWith(QLatin1String(".db")) || path.endsWith(QLatin1String(".sqlite")))
        openWorkspace(path);
    else
        openModel(path);
}

} // namespace qpruner::ui

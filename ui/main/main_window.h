// The studio's main window: the start page or the tabs of the run on display in the centre, the workspace's
// run browser on the left, the jobs panel at the bottom; menus for workspaces, models, runs and exports; the
// window state and recent files persisted.
#pragma once

#include <QMainWindow>
#include <QString>

#include <functional>
#include <memory>

#include "qpruner/model_config.h"

class QAction;
class QDockWidget;
class QLabel;
class QMenu;
class QProgressBar;
class QScrollArea;
class QStackedWidget;

namespace qpruner::ui {

class JobQueue;
class JobsPanel;
class ModelInfoPanel;
class ModelLoader;
class RunBrowser;
class RunExporter;
class RunView;
class Settings;
class StartPage;

class MainWindow : public QMainWindow {
    Q_OBJECT

public:
    // Shows an error to the user. The default is a modal QMessageBox::critical; tests and the screenshot mode
    // replace it so nothing waits for a click.
    using ErrorPresenter = std::function<void(const QString& title, const QString& message)>;

    static constexpr QSize kDefaultSize{1280, 800};

    explicit MainWindow(QWidget* parent = nullptr);
    ~MainWindow() override;

    void setErrorPresenter(ErrorPresenter presenter);
    const ErrorPresenter& errorPresenter() const { return presentError_; }

    ModelInfoPanel* modelInfoPanel() const;
    RunView* runView() const { return runView_; }
    RunBrowser* runBrowser() const { return browser_; }
    JobQueue* jobQueue() const { return jobs_; }
    JobsPanel* jobsPanel() const { return jobsPanel_; }
    StartPage* startPage() const { return startPage_; }
    bool isStartPageShown() const;
    bool isLoading() const;
    // The model on display (empty when none); unchanged by a failed open.
    QString currentModelPath() const { return currentPath_; }
    // The workspace database open in the run browser (empty when none).
    QString currentWorkspace() const { return workspace_; }
    QMenu* viewMenu() const { return viewMenu_; }

public Q_SLOTS:
    // Opens a llama2.c .bin file or a model directory, off the UI thread. Ends in modelLoaded or loadFailed;
    // on failure the model shown before stays.
    void openModel(const QString& path);
    void openModelFileDialog();
    void openModelDirectoryDialog();
    // Opens (or, with create, creates) a workspace database in the run browser.
    void openWorkspace(const QString& dbPath);
    void newWorkspaceDialog();
    void openWorkspaceDialog();
    void openServerWorkspaceDialog(); // a postgresql:// URL
    // Shows run `runId` of `dbPath` (opening that workspace first when another one is open).
    void openRun(const QString& dbPath, qint64 runId);
    void newRunDialog();
    void resumeCurrentRun();
    void showStartPage();

Q_SIGNALS:
    void modelLoaded(const QString& path);
    void loadFailed(const QString& path, const QString& message);

protected:
    void closeEvent(QCloseEvent* event) override;
    void dragEnterEvent(QDragEnterEvent* event) override;
    void dropEvent(QDropEvent* event) override;

private:
    void createActions();
    void createMenus();
    void createDocks();
    void createStatusBar();
    void restoreWindowState();
    void rebuildRecentMenu();
    void rebuildRecentWorkspacesMenu();
    void refreshStartPage();
    void updateTitle();
    void updateActions();
    void showRunTabs();
    void showAbout();
    void onLoadStarted(const QString& path);
    void onModelLoaded(const QString& path, const qpruner::ModelSummary& summary, qint64 elapsedMs);
    void onLoadFailed(const QString& path, const QString& message);
    QString dialogStartDirectory() const;

    std::unique_ptr<Settings> settings_;
    ModelLoader* loader_ = nullptr;
    JobQueue* jobs_ = nullptr;
    QStackedWidget* stack_ = nullptr;
    StartPage* startPage_ = nullptr;
    QScrollArea* startScroll_ = nullptr;
    RunView* runView_ = nullptr;
    RunBrowser* browser_ = nullptr;
    JobsPanel* jobsPanel_ = nullptr;
    RunExporter* exporter_ = nullptr;
    QDockWidget* browserDock_ = nullptr;
    QDockWidget* jobsDock_ = nullptr;
    ErrorPresenter presentError_;
    QString currentPath_;
    QString workspace_;
    QString pendingRunDb_;   // a run asked for before its workspace finished opening
    qint64 pendingRunId_ = 0;

    QAction* newWorkspaceAction_ = nullptr;
    QAction* openWorkspaceAction_ = nullptr;
    QAction* openServerWorkspaceAction_ = nullptr;
    QAction* openFileAction_ = nullptr;
    QAction* openDirectoryAction_ = nullptr;
    QAction* quitAction_ = nullptr;
    QAction* newRunAction_ = nullptr;
    QAction* resumeRunAction_ = nullptr;
    QAction* evaluateMapAction_ = nullptr;
    QAction* refreshAction_ = nullptr;
    QAction* startPageAction_ = nullptr;
    QAction* statusBarAction_ = nullptr;
    QAction* fullScreenAction_ = nullptr;
    QAction* aboutAction_ = nullptr;
    QAction* aboutQtAction_ = nullptr;
    QMenu* recentMenu_ = nullptr;
    QMenu* recentWorkspacesMenu_ = nullptr;
    QMenu* demoMenu_ = nullptr;
    QMenu* viewMenu_ = nullptr;

    QLabel* modelStatusLabel_ = nullptr;
    QProgressBar* busyIndicator_ = nullptr;
};

} // namespace qpruner::ui

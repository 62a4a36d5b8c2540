// The studio's main window: menus, status bar and the central tabs (only Overview so far; the experiment
// browser, jobs panel and the Importance / Precision map / Search / Compare tabs attach here later).
#pragma once

#include <QMainWindow>
#include <QString>

#include <functional>
#include <memory>

#include "qpruner/model_config.h"

class QAction;
class QLabel;
class QMenu;
class QProgressBar;
class QTabWidget;

namespace qpruner::ui {

class ModelInfoPanel;
class ModelLoader;
class Settings;

class MainWindow : public QMainWindow {
    Q_OBJECT

public:
    // Shows an error to the user. The default is a modal QMessageBox::critical; tests and the screenshot mode
    // replace it so nothing waits for a click.
    using ErrorPresenter = std::function<void(const QString& title, const QString& message)>;

    static constexpr QSize kDefaultSize{1120, 740};

    explicit MainWindow(QWidget* parent = nullptr);
    ~MainWindow() override;

    void setErrorPresenter(ErrorPresenter presenter);

    ModelInfoPanel* modelInfoPanel() const { return infoPanel_; }
    bool isLoading() const;
    // The model on display (empty when none); unchanged by a failed open.
    QString currentModelPath() const { return currentPath_; }
    QMenu* viewMenu() const { return viewMenu_; }

public Q_SLOTS:
    // Opens a llama2.c .bin file or a model directory, off the UI thread. Ends in modelLoaded or loadFailed;
    // on failure the model shown before stays.
    void openModel(const QString& path);
    void openModelFileDialog();
    void openModelDirectoryDialog();

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
    void createStatusBar();
    void restoreWindowState();
    void rebuildRecentMenu();
    void updateTitle();
    void showAbout();
    void onLoadStarted(const QString& path);
    void onModelLoaded(const QString& path, const qpruner::ModelSummary& summary, qint64 elapsedMs);
    void onLoadFailed(const QString& path, const QString& message);
    QString dialogStartDirectory() const;

    std::unique_ptr<Settings> settings_;
    ModelLoader* loader_ = nullptr;
    ModelInfoPanel* infoPanel_ = nullptr;
    QTabWidget* tabs_ = nullptr;
    ErrorPresenter presentError_;
    QString currentPath_;

    QAction* openFileAction_ = nullptr;
    QAction* openDirectoryAction_ = nullptr;
    QAction* quitAction_ = nullptr;
    QAction* statusBarAction_ = nullptr;
    QAction* fullScreenAction_ = nullptr;
    QAction* aboutAction_ = nullptr;
    QAction* aboutQtAction_ = nullptr;
    QMenu* recentMenu_ = nullptr;
    QMenu* demoMenu_ = nullptr;
    QMenu* viewMenu_ = nullptr;

    QLabel* modelStatusLabel_ = nullptr;
    QProgressBar* busyIndicator_ = nullptr;
};

} // namespace qpruner::ui

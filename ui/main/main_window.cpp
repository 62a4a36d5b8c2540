// MainWindow: menus, model opening (dialogs, recent list, demo models, drag and drop) and window state.
#include "main/main_window.h"

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QDir>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QProgressBar>
#include <QStatusBar>
#include <QTabWidget>

#include "common/number_format.h"
#include "common/shared_data.h"
#include "common/studio_identity.h"
#include "model/model_info_panel.h"
#include "model/model_loader.h"
#include "settings/settings.h"

namespace qpruner::ui {

namespace {

constexpr int kStatusMessageMs = 6000;

QString displayName(const QString& path)
{
    const QFileInfo info(path);
    return info.fileName().isEmpty() ? QDir::toNativeSeparators(path) : info.fileName();
}

} // namespace

MainWindow::MainWindow(QWidget* parent)
    : QMainWindow(parent), settings_(std::make_unique<Settings>()), loader_(new ModelLoader(this))
{
    setObjectName(QStringLiteral("MainWindow")); // saveState() keys on object names
    setWindowIcon(studioIcon());
    setAcceptDrops(true);
    presentError_ = [this](const QString& title, const QString& message) {
        QMessageBox::critical(this, title, message);
    };

    infoPanel_ = new ModelInfoPanel(this);
    tabs_ = new QTabWidget(this);
    tabs_->setDocumentMode(true);
    tabs_->addTab(infoPanel_, tr("Overview"));
    setCentralWidget(tabs_);

    createActions();
    createMenus();
    createStatusBar();

    connect(loader_, &ModelLoader::started, this, &MainWindow::onLoadStarted);
    connect(loader_, &ModelLoader::loaded, this, &MainWindow::onModelLoaded);
    connect(loader_, &ModelLoader::failed, this, &MainWindow::onLoadFailed);

    resize(kDefaultSize);
    restoreWindowState();
    updateTitle();
}

MainWindow::~MainWindow() = default;

void MainWindow::setErrorPresenter(ErrorPresenter presenter)
{
    presentError_ = std::move(presenter);
}

bool MainWindow::isLoading() const
{
    return loader_->isLoading();
}

void MainWindow::createActions()
{
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

void MainWindow::createMenus()
{
    QMenu* file = menuBar()->addMenu(tr("&File"));
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
    file->addAction(quitAction_);

    viewMenu_ = menuBar()->addMenu(tr("&View"));
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
}

void MainWindow::closeEvent(QCloseEvent* event)
{
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

void MainWindow::onLoadStarted(const QString& path)
{
    busyIndicator_->show();
    statusBar()->showMessage(tr("Opening %1\u2026").arg(QDir::toNativeSeparators(path)));
}

void MainWindow::onModelLoaded(const QString& path, const qpruner::ModelSummary& summary, qint64 elapsedMs)
{
    busyIndicator_->hide();
    currentPath_ = path;
    infoPanel_->setSummary(summary);
    tabs_->setCurrentWidget(infoPanel_);
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
    // so the title names only the model; with no model it is the display name, which Qt leaves as it is.
    setWindowTitle(currentPath_.isEmpty() ? studioDisplayName() : displayName(currentPath_));
}

void MainWindow::showAbout()
{
    QMessageBox box(this);
    box.setWindowTitle(tr("About %1").arg(studioDisplayName()));
    box.setIconPixmap(studioIcon().pixmap(64, 64));
    box.setTextFormat(Qt::RichText);
    box.setText(tr("<h3>%1 %2</h3>"
                   "<p>A workbench for compressing LLaMA-family models: structured pruning, "
                   "mixed-precision quantisation and recovery fine-tuning with QPruner.</p>"
                   "<p>Built with Qt %3 (running on Qt %4).</p>")
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
    openModel(urls.first().toLocalFile());
}

} // namespace qpruner::ui

// RunBrowser: WorkspaceModel -> recursive QSortFilterProxyModel -> QTreeView, plus the workspace buttons.
#include "common/workspace_location.h"
#include "browser/run_browser.h"

#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QMenu>
#include <QSortFilterProxyModel>
#include <QStyle>
#include <QToolButton>
#include <QTreeView>
#include <QVBoxLayout>

#include <filesystem>

#include "browser/workspace_model.h"
#include "qpruner/store.h"
#include "settings/settings.h"
#include "workspace/run_snapshot.h"

namespace qpruner::ui {

namespace {

std::filesystem::path toPath(const QString& s)
{
    return std::filesystem::path(s.toStdU16String());
}

QToolButton* toolButton(const QString& text, const QIcon& icon, const QString& tip)
{
    auto* b = new QToolButton;
    b->setText(text);
    b->setIcon(icon);
    b->setToolTip(tip);
    b->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
    b->setAutoRaise(true);
    return b;
}

const QString kDatabaseFilter = QStringLiteral("Workspace databases (*.db *.sqlite *.sqlite3);;All files (*)");

} // namespace

RunBrowser::RunBrowser(QWidget* parent)
    : QWidget(parent), model_(new WorkspaceModel(this)), proxy_(new QSortFilterProxyModel(this))
{
    proxy_->setSourceModel(model_);
    proxy_->setRecursiveFilteringEnabled(true);
    proxy_->setFilterRole(WorkspaceModel::FilterRole);
    proxy_->setFilterKeyColumn(WorkspaceModel::RunColumn);
    proxy_->setFilterCaseSensitivity(Qt::CaseInsensitive);
    proxy_->setSortRole(WorkspaceModel::SortRole);

    auto* open = toolButton(tr("Open…"), style()->standardIcon(QStyle::SP_DialogOpenButton),
                            tr("Open a workspace database"));
    auto* create = toolButton(tr("New workspace…"), style()->standardIcon(QStyle::SP_FileDialogNewFolder),
                              tr("Create an empty workspace database"));
    create->setObjectName(QStringLiteral("newWorkspaceButton"));
    newRun_ = toolButton(tr("New run…"), style()->standardIcon(QStyle::SP_MediaPlay),
                         tr("Configure and start a pipeline run in this workspace"));
    newRun_->setObjectName(QStringLiteral("newRunButton"));
    newRun_->setEnabled(false);
    connect(newRun_, &QToolButton::clicked, this, &RunBrowser::newRunRequested);
    // Icon only (the history arrow): the row keeps room for "New workspace…" and "New run…" in a narrow dock.
    recent_ = toolButton(QString(), QIcon::fromTheme(QStringLiteral("document-open-recent"),
                                                     style()->standardIcon(QStyle::SP_FileDialogDetailedView)),
                         tr("Workspaces opened lately"));
    recent_->setObjectName(QStringLiteral("recentWorkspacesButton"));
    recent_->setPopupMode(QToolButton::InstantPopup);
    recent_->setMenu(new QMenu(recent_));
    connect(recent_->menu(), &QMenu::aboutToShow, this, &RunBrowser::fillRecentMenu);
    auto* reload = toolButton(QString(), style()->standardIcon(QStyle::SP_BrowserReload), tr("Refresh the list"));
    connect(open, &QToolButton::clicked, this, &RunBrowser::chooseWorkspaceToOpen);
    connect(create, &QToolButton::clicked, this, &RunBrowser::chooseNewWorkspace);
    connect(reload, &QToolButton::clicked, this, &RunBrowser::refresh);
    auto* buttons = new QHBoxLayout;
    buttons->setContentsMargins(0, 0, 0, 0);
    buttons->setSpacing(2);
    buttons->addWidget(open);
    buttons->addWidget(create);
    buttons->addWidget(recent_);
    buttons->addWidget(newRun_);
    buttons->addStretch(1);
    buttons->addWidget(reload);

    path_ = new QLabel;
    path_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    path_->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);

    filter_ = new QLineEdit;
    filter_->setPlaceholderText(tr("Filter runs: name, kind, status, #id"));
    filter_->setClearButtonEnabled(true);
    connect(filter_, &QLineEdit::textChanged, this, [this](const QString& text) {
        // Rows hidden by the filter move the view's current index; that is not the user choosing a run.
        filtering_ = true;
        proxy_->setFilterFixedString(text.trimmed());
        filtering_ = false;
        view_->expandAll();
        updateStatus();
    });

    view_ = new QTreeView;
    view_->setModel(proxy_);
    view_->setUniformRowHeights(true);
    view_->setAllColumnsShowFocus(true);
    view_->setSelectionMode(QAbstractItemView::SingleSelection);
    view_->setSortingEnabled(true);
    view_->sortByColumn(WorkspaceModel::RunColumn, Qt::AscendingOrder);
    view_->header()->setSectionResizeMode(QHeaderView::ResizeToContents);
    view_->header()->setSectionResizeMode(WorkspaceModel::NameColumn, QHeaderView::Interactive);
    view_->header()->resizeSection(WorkspaceModel::NameColumn, 220);
    connect(view_->selectionModel(), &QItemSelectionModel::currentChanged, this,
            [this](const QModelIndex& current) { onCurrentChanged(current); });
    // New experiments (a first run in a new one) appear expanded, like the ones present at open.
    connect(proxy_, &QAbstractItemModel::rowsInserted, this, [this](const QModelIndex& parent, int first, int last) {
        if (!parent.isValid())
            for (int row = first; row <= last; ++row)
                view_->expand(proxy_->index(row, 0));
    });
    connect(proxy_, &QAbstractItemModel::modelReset, view_, &QTreeView::expandAll);

    status_ = new QLabel;
    status_->setWordWrap(true);
    status_->setTextInteractionFlags(Qt::TextSelectableByMouse);

    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);
    layout->addLayout(buttons);
    layout->addWidget(path_);
    layout->addWidget(filter_);
    layout->addWidget(view_, 1);
    layout->addWidget(status_);

    autoRefresh_.setInterval(2000);
    autoRefresh_.setSingleShot(true);
    connect(&autoRefresh_, &QTimer::timeout, this, &RunBrowser::refresh);
    connect(model_, &WorkspaceModel::loaded, this, &RunBrowser::onLoaded);
    connect(model_, &WorkspaceModel::loadFailed, this, &RunBrowser::onLoadFailed);
    updateHeader();
    updateStatus();
}

bool RunBrowser::createWorkspace(const QString& path, QString* error)
{
    auto fail = [error](const QString& message) {
        if (error)
            *error = message;
        return false;
    };
    const QFileInfo info(path);
    if (path.trimmed().isEmpty())
        return fail(tr("No file name given for the new workspace."));
    if (info.isDir())
        return fail(tr("%1 is a directory, not a workspace database file.").arg(info.absoluteFilePath()));
    if (info.exists() && info.size() > 0) {
        try { // an existing workspace is fine as it is; anything else must not be touched
            openWorkspaceReadOnly(info.absoluteFilePath());
            return true;
        } catch (const std::exception& e) {
            return fail(tr("%1 already exists and is not a workspace database this build can use; it was left "
                           "untouched (%2).")
                            .arg(info.absoluteFilePath(), QString::fromUtf8(e.what())));
        }
    }
    if (!QDir().mkpath(info.absolutePath()))
        return fail(tr("Cannot create the directory %1.").arg(info.absolutePath()));
    try {
        qpruner::store::Store created(toPath(info.absoluteFilePath()));
    } catch (const std::exception& e) {
        return fail(QString::fromUtf8(e.what()));
    }
    return true;
}

QString RunBrowser::currentWorkspace() const
{
    return model_->workspace();
}

qint64 RunBrowser::selectedRunId() const
{
    return view_->currentIndex().data(WorkspaceModel::RunIdRole).toLongLong();
}

void RunBrowser::openWorkspace(const QString& dbPath)
{
    requested_ = workspaceKey(dbPath);
    lastError_.clear();
    model_->load(requested_);
    updateStatus();
}

void RunBrowser::refresh()
{
    if (!model_->workspace().isEmpty()) {
        model_->refresh();
        updateStatus();
    }
}

void RunBrowser::refreshIfShowing(const QString& dbPath)
{
    if (!model_->workspace().isEmpty() && workspaceKey(dbPath) == model_->workspace())
        refresh();
}

void RunBrowser::selectRun(qint64 runId)
{
    if (trySelect(runId))
        return;
    pendingRun_ = runId;
    refresh();
}

void RunBrowser::showRun(const QString& dbPath, qint64 runId)
{
    const QString path = workspaceKey(dbPath);
    if (path == model_->workspace()) {
        selectRun(runId);
        return;
    }
    pendingRun_ = runId;
    openWorkspace(path);
}

bool RunBrowser::trySelect(qint64 runId)
{
    const QModelIndex source = model_->indexOfRun(runId);
    if (!source.isValid())
        return false;
    QModelIndex proxyIndex = proxy_->mapFromSource(source);
    if (!proxyIndex.isValid()) { // hidden by the filter: the user asked for this run, so show it
        filter_->clear();
        proxyIndex = proxy_->mapFromSource(source);
    }
    pendingRun_.reset();
    view_->expand(proxyIndex.parent());
    if (view_->currentIndex() == proxyIndex)
        Q_EMIT runSelected(model_->workspace(), runId);
    else
        view_->setCurrentIndex(proxyIndex);
    view_->scrollTo(proxyIndex);
    return true;
}

void RunBrowser::chooseWorkspaceToOpen()
{
    const QString start = model_->workspace().isEmpty() ? QDir::homePath() : QFileInfo(model_->workspace()).path();
    const QString path = QFileDialog::getOpenFileName(this, tr("Open workspace"), start, kDatabaseFilter);
    if (!path.isEmpty())
        openWorkspace(path);
}

void RunBrowser::chooseNewWorkspace()
{
    const QString start = model_->workspace().isEmpty() ? QDir::home().filePath(QStringLiteral("studio.db"))
                                                        : QFileInfo(model_->workspace()).path();
    const QString path = QFileDialog::getSaveFileName(this, tr("New workspace"), start, kDatabaseFilter, nullptr,
                                                      QFileDialog::DontConfirmOverwrite);
    if (path.isEmpty())
        return;
    QString error;
    if (!createWorkspace(path, &error)) {
        onLoadFailed(QFileInfo(path).absoluteFilePath(), error);
        return;
    }
    openWorkspace(path);
}

void RunBrowser::fillRecentMenu()
{
    QMenu* menu = recent_->menu();
    menu->clear();
    const QStringList recent = Settings().recentWorkspaces();
    for (const QString& path : recent) {
        QAction* a = menu->addAction(workspaceLabel(path) + QStringLiteral("  —  ") + workspacePlace(path));
        a->setToolTip(path);
        connect(a, &QAction::triggered, this, [this, path] { openWorkspace(path); });
    }
    if (recent.isEmpty())
        menu->addAction(tr("(none yet)"))->setEnabled(false);
}

void RunBrowser::onLoaded(const QString& dbPath)
{
    const bool opened = dbPath == requested_;
    if (opened) {
        requested_.clear();
        Settings().addRecentWorkspace(dbPath);
    }
    updateHeader();
    updateStatus();
    if (pendingRun_)
        trySelect(*pendingRun_); // a run the list did not have yet; stays pending until a read has it
    if (opened)
        Q_EMIT workspaceOpened(dbPath);
    if (model_->hasRunningRuns())
        autoRefresh_.start();
    else
        autoRefresh_.stop();
}

void RunBrowser::onLoadFailed(const QString& dbPath, const QString& message)
{
    if (dbPath == requested_)
        requested_.clear();
    lastError_ = message;
    updateStatus();
    Q_EMIT workspaceFailed(dbPath, message);
}

void RunBrowser::onCurrentChanged(const QModelIndex& current)
{
    const qint64 runId = current.data(WorkspaceModel::RunIdRole).toLongLong();
    if (runId > 0 && !filtering_)
        Q_EMIT runSelected(model_->workspace(), runId);
}

void RunBrowser::updateHeader()
{
    const QString ws = model_->workspace();
    newRun_->setEnabled(!ws.isEmpty());
    if (ws.isEmpty()) {
        path_->setText(tr("<i>No workspace open</i>"));
        path_->setToolTip(QString());
        return;
    }
    path_->setText(tr("<b>%1</b> <span style='color:gray'>%2</span>")
                       .arg(workspaceLabel(ws).toHtmlEscaped(), workspacePlace(ws).toHtmlEscaped()));
    path_->setToolTip(ws);
}

void RunBrowser::updateStatus()
{
    QString text;
    if (!lastError_.isEmpty())
        text = QStringLiteral("<span style='color:#c62828'>%1</span>").arg(lastError_.toHtmlEscaped());
    else if (!requested_.isEmpty())
        text = tr("Reading %1…").arg(workspaceLabel(requested_).toHtmlEscaped());
    else if (!model_->workspace().isEmpty()) {
        const int experiments = model_->experimentCount();
        const int runs = model_->runCount();
        text = (experiments == 1 ? tr("1 experiment") : tr("%1 experiments").arg(experiments)) + QStringLiteral(", ") +
               (runs == 1 ? tr("1 run") : tr("%1 runs").arg(runs));
        if (!filter_->text().trimmed().isEmpty()) {
            int shown = 0;
            for (int e = 0; e < proxy_->rowCount(); ++e)
                shown += proxy_->rowCount(proxy_->index(e, 0));
            text += tr(", %1 shown").arg(shown);
        }
        if (model_->hasRunningRuns())
            text += tr(" — refreshing while runs are running");
    }
    status_->setText(text);
}

} // namespace qpruner::ui

// Start page layout and its lists. The cache scan runs with QtConcurrent; a result for a directory that is no
// longer the page's (setCacheDir during a scan) is dropped and the new directory scanned.
#include "start/start_page.h"

#include <QDir>
#include <QFileInfo>
#include <QFont>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QItemSelectionModel>
#include <QLabel>
#include <QListWidget>
#include <QPushButton>
#include <QTableView>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>

#include "common/number_format.h"
#include "common/shared_data.h"
#include "common/studio_identity.h"
#include "hub/hf_cache_table_model.h"
#include "hub/hf_downloader.h"
#include "settings/settings.h"
#include "start/download_panel.h"

namespace qpruner::ui {

namespace {

enum class ListKind { Workspace, Run, Demo };
constexpr int KindRole = Qt::UserRole + 2;

QListWidget* makeList(QWidget* parent)
{
    auto* list = new QListWidget(parent);
    list->setSelectionMode(QAbstractItemView::SingleSelection);
    list->setTextElideMode(Qt::ElideMiddle);
    list->setUniformItemSizes(true);
    return list;
}

QGroupBox* boxed(const QString& title, QWidget* content, QWidget* parent)
{
    auto* box = new QGroupBox(title, parent);
    auto* layout = new QVBoxLayout(box);
    layout->setContentsMargins(6, 6, 6, 6);
    layout->addWidget(content);
    return box;
}

QListWidgetItem* pathItem(const QString& text, const QString& path, ListKind kind)
{
    const bool exists = QFileInfo::exists(path);
    auto* item = new QListWidgetItem(exists ? text : text + QObject::tr(" (missing)"));
    item->setData(StartPage::PathRole, path);
    item->setData(KindRole, int(kind));
    item->setToolTip(QDir::toNativeSeparators(path));
    if (!exists)
        item->setForeground(QColor(0x90, 0x90, 0x90));
    return item;
}

} // namespace

StartPage::StartPage(QWidget* parent)
    : QWidget(parent), cacheDir_(HfCache::defaultCacheDir()), cacheModel_(new HfCacheTableModel(this))
{
    auto* root = new QVBoxLayout(this);
    root->setContentsMargins(24, 18, 24, 18);
    root->setSpacing(12);
    root->addWidget(buildHeader());

    auto* body = new QHBoxLayout;
    body->setSpacing(14);
    body->addWidget(buildRecentColumn(), 0);
    auto* right = new QVBoxLayout;
    right->addWidget(buildCacheBox(), 1);
    downloadPanel_ = new DownloadPanel(this);
    downloadPanel_->setCacheDir(cacheDir_);
    right->addWidget(downloadPanel_, 0);
    body->addLayout(right, 1);
    root->addLayout(body, 1);

    connect(&scanWatcher_, &QFutureWatcher<QList<HfCachedModel>>::finished, this, &StartPage::onScanFinished);
    connect(downloadPanel_, &DownloadPanel::downloadFinished, this, &StartPage::onDownloadFinished);
    connect(downloadPanel_, &DownloadPanel::openRequested, this, &StartPage::openModelRequested);

    setRecentWorkspaces({});
    setRecentRuns({});
    fillDemoModels();
    refreshCache();
}

StartPage::~StartPage() = default;

QWidget* StartPage::buildHeader()
{
    auto* header = new QWidget(this);
    auto* layout = new QVBoxLayout(header);
    layout->setContentsMargins(0, 0, 0, 0);

    auto* titleRow = new QHBoxLayout;
    auto* icon = new QLabel(header);
    icon->setPixmap(studioIcon().pixmap(48, 48));
    titleRow->addWidget(icon);
    auto* titles = new QVBoxLayout;
    auto* title = new QLabel(studioDisplayName(), header);
    QFont big = title->font();
    big.setPointSizeF(big.pointSizeF() * 1.8);
    big.setBold(true);
    title->setFont(big);
    titles->addWidget(title);
    auto* subtitle = new QLabel(tr("Compress LLaMA-family models: structured pruning, per-layer mixed precision, "
                                   "Bayesian search over precision maps, LoRA recovery."),
                                header);
    subtitle->setWordWrap(true); // the window may be narrower than the sentence
    titles->addWidget(subtitle);
    titleRow->addLayout(titles, 1);
    layout->addLayout(titleRow);

    auto* buttons = new QHBoxLayout;
    auto* openModel = new QPushButton(tr("Open model..."), header);
    openModel->setToolTip(tr("A llama2.c .bin file or a Hugging Face model directory"));
    auto* openWorkspace = new QPushButton(tr("Open workspace..."), header);
    auto* newWorkspace = new QPushButton(tr("New workspace..."), header);
    auto* download = new QPushButton(tr("Download model..."), header);
    for (QPushButton* b : {openModel, openWorkspace, newWorkspace, download})
        buttons->addWidget(b);
    buttons->addStretch(1);
    layout->addLayout(buttons);

    connect(openModel, &QPushButton::clicked, this, &StartPage::openModelDialogRequested);
    connect(openWorkspace, &QPushButton::clicked, this, &StartPage::openWorkspaceDialogRequested);
    connect(newWorkspace, &QPushButton::clicked, this, &StartPage::newWorkspaceRequested);
    connect(download, &QPushButton::clicked, this, &StartPage::showDownloadPanel);
    return header;
}

QWidget* StartPage::buildRecentColumn()
{
    auto* column = new QWidget(this);
    column->setFixedWidth(340);
    auto* layout = new QVBoxLayout(column);
    layout->setContentsMargins(0, 0, 0, 0);
    workspacesList_ = makeList(column);
    runsList_ = makeList(column);
    demosList_ = makeList(column);
    layout->addWidget(boxed(tr("Recent workspaces"), workspacesList_, column), 1);
    layout->addWidget(boxed(tr("Recent runs"), runsList_, column), 1);
    demosBox_ = boxed(tr("Demo models (shared data)"), demosList_, column);
    layout->addWidget(demosBox_, 0);
    for (QListWidget* list : {workspacesList_, runsList_, demosList_})
        connect(list, &QListWidget::itemActivated, this, &StartPage::onListActivated);
    return column;
}

QWidget* StartPage::buildCacheBox()
{
    auto* box = new QGroupBox(tr("Models in the Hugging Face cache"), this);
    auto* layout = new QVBoxLayout(box);
    auto* top = new QHBoxLayout;
    cacheDirLabel_ = new QLabel(box);
    cacheDirLabel_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    cacheDirLabel_->setWordWrap(true);
    cacheSummaryLabel_ = new QLabel(box);
    refreshButton_ = new QPushButton(tr("Refresh"), box);
    top->addWidget(cacheDirLabel_, 1);
    top->addWidget(cacheSummaryLabel_);
    top->addWidget(refreshButton_);
    layout->addLayout(top);

    cacheView_ = new QTableView(box);
    cacheView_->setModel(cacheModel_);
    cacheView_->setSelectionBehavior(QAbstractItemView::SelectRows);
    cacheView_->setSelectionMode(QAbstractItemView::SingleSelection);
    cacheView_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    cacheView_->setAlternatingRowColors(true);
    cacheView_->setWordWrap(false);
    cacheView_->verticalHeader()->hide();
    QHeaderView* header = cacheView_->horizontalHeader();
    header->setStretchLastSection(false);
    header->setSectionResizeMode(QHeaderView::Interactive);
    header->setSectionResizeMode(HfCacheTableModel::ArchitectureColumn, QHeaderView::Stretch);
    header->setSectionResizeMode(HfCacheTableModel::StatusColumn, QHeaderView::ResizeToContents);
    cacheView_->setColumnWidth(HfCacheTableModel::RepoColumn, 200);
    cacheView_->setColumnWidth(HfCacheTableModel::RevisionColumn, 130);
    cacheView_->setColumnWidth(HfCacheTableModel::SizeColumn, 80);
    cacheView_->setToolTip(tr("Double-click or press Enter to open a model"));
    layout->addWidget(cacheView_, 1);
    cacheDetailsLabel_ = new QLabel(box);
    cacheDetailsLabel_->setWordWrap(true);
    cacheDetailsLabel_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    layout->addWidget(cacheDetailsLabel_);

    connect(refreshButton_, &QPushButton::clicked, this, &StartPage::refreshCache);
    connect(cacheView_, &QTableView::activated, this, &StartPage::onCacheActivated);
    connect(cacheView_->selectionModel(), &QItemSelectionModel::currentChanged, this, &StartPage::updateCacheDetails);
    connect(cacheModel_, &QAbstractItemModel::modelReset, this, &StartPage::updateCacheDetails);
    updateCacheLabel();
    return box;
}

HfDownloader* StartPage::downloader() const
{
    return downloadPanel_->downloader();
}

void StartPage::setPlaceholder(QListWidget* list, const QString& text)
{
    auto* item = new QListWidgetItem(text, list);
    item->setFlags(Qt::NoItemFlags);
    QFont f = item->font();
    f.setItalic(true);
    item->setFont(f);
}

void StartPage::setRecentWorkspaces(const QStringList& dbPaths)
{
    workspacesList_->clear();
    for (const QString& path : dbPaths) {
        const QFileInfo fi(path);
        workspacesList_->addItem(pathItem(
            QStringLiteral("%1 \u2014 %2").arg(fi.fileName(), QDir::toNativeSeparators(fi.absolutePath())), path,
            ListKind::Workspace));
    }
    if (dbPaths.isEmpty())
        setPlaceholder(workspacesList_, tr("No workspace opened yet"));
}

void StartPage::setRecentRuns(const QStringList& keys)
{
    runsList_->clear();
    for (const QString& key : keys) {
        QString dbPath;
        qint64 runId = 0;
        if (!Settings::parseRunKey(key, &dbPath, &runId))
            continue;
        QListWidgetItem* item = pathItem(QStringLiteral("run %1 - %2").arg(runId).arg(QFileInfo(dbPath).fileName()),
                                         dbPath, ListKind::Run);
        item->setData(RunIdRole, runId);
        runsList_->addItem(item);
    }
    if (runsList_->count() == 0)
        setPlaceholder(runsList_, tr("No run opened yet"));
}

void StartPage::fillDemoModels()
{
    demosList_->clear();
    const QList<DemoModel> demos = demoModels();
    for (const DemoModel& d : demos)
        demosList_->addItem(pathItem(d.name, d.path, ListKind::Demo));
    demosBox_->setVisible(!demos.isEmpty());
    demosList_->setFixedHeight(demos.isEmpty() ? 0 : demosList_->sizeHintForRow(0) * int(demos.size()) + 8);
}

void StartPage::onListActivated(QListWidgetItem* item)
{
    const QString path = item->data(PathRole).toString();
    if (path.isEmpty())
        return; // a placeholder
    switch (ListKind(item->data(KindRole).toInt())) {
    case ListKind::Workspace: Q_EMIT openWorkspaceRequested(path); break;
    case ListKind::Run: Q_EMIT openRunRequested(path, item->data(RunIdRole).toLongLong()); break;
    case ListKind::Demo: Q_EMIT openModelRequested(path); break;
    }
}

// --- the cache ---

void StartPage::setCacheDir(const QString& dir)
{
    cacheDir_ = QDir::cleanPath(dir);
    downloadPanel_->setCacheDir(cacheDir_);
    cacheModel_->setEntries({}); // never show one directory's entries under another's name
    updateCacheLabel();
    refreshCache();
}

bool StartPage::isScanning() const
{
    return scanWatcher_.isRunning();
}

void StartPage::refreshCache()
{
    if (scanWatcher_.isRunning()) {
        rescanQueued_ = true;
        return;
    }
    rescanQueued_ = false;
    scanningDir_ = cacheDir_;
    refreshButton_->setEnabled(false);
    cacheSummaryLabel_->setText(tr("scanning..."));
    const QString dir = cacheDir_;
    scanWatcher_.setFuture(QtConcurrent::run([dir] { return HfCache::scan(dir); }));
}

void StartPage::onScanFinished()
{
    refreshButton_->setEnabled(true);
    if (rescanQueued_ || scanningDir_ != cacheDir_) {
        refreshCache();
        return;
    }
    const QString selected = cacheView_->currentIndex().isValid()
                                 ? cacheModel_->entry(cacheView_->currentIndex().row()).repoId
                                 : QString();
    cacheModel_->setEntries(scanWatcher_.result());
    const QString want = selectAfterScan_.isEmpty() ? selected : selectAfterScan_;
    selectAfterScan_.clear();
    if (const int row = cacheModel_->rowOfRepo(want); row >= 0)
        cacheView_->setCurrentIndex(cacheModel_->index(row, 0));
    updateCacheLabel();
    Q_EMIT cacheRefreshed(cacheModel_->rowCount());
}

void StartPage::updateCacheLabel()
{
    const bool exists = QFileInfo(cacheDir_).isDir();
    cacheDirLabel_->setText(tr("Cache: %1%2").arg(QDir::toNativeSeparators(cacheDir_),
                                                   exists ? QString() : tr(" (not created yet)")));
    if (isScanning())
        return;
    qint64 bytes = 0;
    for (const HfCachedModel& m : cacheModel_->entries())
        bytes += m.sizeOnDisk;
    const int n = cacheModel_->rowCount();
    cacheSummaryLabel_->setText(n == 0   ? tr("no models")
                                : n == 1 ? tr("1 model, %1").arg(formatBytes(bytes))
                                         : tr("%1 models, %2").arg(n).arg(formatBytes(bytes)));
}

void StartPage::updateCacheDetails()
{
    const QModelIndex current = cacheView_->currentIndex();
    if (!current.isValid()) {
        cacheDetailsLabel_->setStyleSheet(QString());
        cacheDetailsLabel_->setText(cacheModel_->rowCount() > 0 ? tr("Double-click a model to open it.")
                                                               : tr("Models downloaded with transformers, "
                                                                    "huggingface-cli or below appear here."));
        return;
    }
    const HfCachedModel& m = cacheModel_->entry(current.row());
    if (m.complete) {
        cacheDetailsLabel_->setStyleSheet(QString());
        cacheDetailsLabel_->setText(tr("%1: %2 files in %3").arg(m.repoId).arg(m.fileCount)
                                        .arg(QDir::toNativeSeparators(m.snapshotDir)));
    } else {
        cacheDetailsLabel_->setStyleSheet(QStringLiteral("color: #b03020;"));
        cacheDetailsLabel_->setText(tr("%1: %2. Double-click to resume.").arg(m.repoId, m.problem));
    }
}

void StartPage::onCacheActivated(const QModelIndex& index)
{
    if (!index.isValid())
        return;
    const HfCachedModel& m = cacheModel_->entry(index.row());
    if (m.complete) {
        Q_EMIT openModelRequested(m.snapshotDir);
        return;
    }
    // An interrupted download: offer to continue it rather than open a model that cannot load.
    downloadPanel_->setRepo(m.repoId, m.refName.isEmpty() ? m.revision : m.refName);
}

void StartPage::onDownloadFinished(const QString&, const QString& repoId)
{
    selectAfterScan_ = repoId;
    refreshCache();
}

void StartPage::showDownloadPanel()
{
    downloadPanel_->focusRepo();
}

} // namespace qpruner::ui

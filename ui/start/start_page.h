// What the main window shows when no run is open: open a model or workspace, the recent workspaces and runs,
// the models already in the user's Hugging Face cache (scanned off the UI thread), the shared data's demo
// models, and the hub download box. It only emits requests; the main window opens things.
#pragma once

#include <QFutureWatcher>
#include <QList>
#include <QString>
#include <QStringList>
#include <QWidget>

#include "hub/hf_cache.h"

class QGroupBox;
class QLabel;
class QListWidget;
class QListWidgetItem;
class QPushButton;
class QTableView;

namespace qpruner::ui {

class DownloadPanel;
class HfCacheTableModel;
class HfDownloader;

class StartPage : public QWidget {
    Q_OBJECT

public:
    // On QListWidgetItems: the path they open (Qt::UserRole) and, for runs, the run id.
    static constexpr int PathRole = Qt::UserRole;
    static constexpr int RunIdRole = Qt::UserRole + 1;

    // Starts scanning HfCache::defaultCacheDir() right away.
    explicit StartPage(QWidget* parent = nullptr);
    ~StartPage() override;

    // Most recent first, as Settings stores them.
    void setRecentWorkspaces(const QStringList& dbPaths);
    // Keys "<db path>#<run id>" (Settings::runKey); shown as "run N - <db file name>". Malformed keys are skipped.
    void setRecentRuns(const QStringList& keys);
    // Another hub cache (tests; a preference later): rescans it and downloads go there.
    void setCacheDir(const QString& dir);
    QString cacheDir() const { return cacheDir_; }
    bool isScanning() const;

    HfCacheTableModel* cacheModel() const { return cacheModel_; }
    QTableView* cacheView() const { return cacheView_; }
    HfDownloader* downloader() const;
    DownloadPanel* downloadPanel() const { return downloadPanel_; }
    QListWidget* recentWorkspacesList() const { return workspacesList_; }
    QListWidget* recentRunsList() const { return runsList_; }
    QListWidget* demoModelsList() const { return demosList_; }
    QGroupBox* demoModelsBox() const { return demosBox_; }
    QLabel* cacheDirLabel() const { return cacheDirLabel_; }
    // Under the table: the current entry's snapshot path, or what is wrong with it.
    QLabel* cacheDetailsLabel() const { return cacheDetailsLabel_; }

public Q_SLOTS:
    // Rescans the cache on a worker thread; ends in cacheRefreshed. A request during a scan queues one more.
    void refreshCache();
    // "Download model...": puts the cursor in the download box's repo field.
    void showDownloadPanel();

Q_SIGNALS:
    void openModelRequested(const QString& path);
    void openWorkspaceRequested(const QString& dbPath);
    void newWorkspaceRequested();
    void openRunRequested(const QString& dbPath, qint64 runId);
    void openModelDialogRequested();
    void openWorkspaceDialogRequested();
    // The cache table shows a fresh scan of cacheDir() with `count` repos.
    void cacheRefreshed(int count);

private:
    QWidget* buildHeader();
    QWidget* buildRecentColumn();
    QWidget* buildCacheBox();
    void fillDemoModels();
    void onScanFinished();
    void onCacheActivated(const QModelIndex& index);
    void onListActivated(QListWidgetItem* item);
    void onDownloadFinished(const QString& snapshotDir, const QString& repoId);
    void updateCacheLabel();
    void updateCacheDetails();
    static void setPlaceholder(QListWidget* list, const QString& text);

    QString cacheDir_;
    QString scanningDir_;
    bool rescanQueued_ = false;
    QString selectAfterScan_; // repo to select once the running scan lands (a download just finished)
    QFutureWatcher<QList<HfCachedModel>> scanWatcher_;

    HfCacheTableModel* cacheModel_;
    QTableView* cacheView_ = nullptr;
    QLabel* cacheDirLabel_ = nullptr;
    QLabel* cacheSummaryLabel_ = nullptr;
    QLabel* cacheDetailsLabel_ = nullptr;
    QPushButton* refreshButton_ = nullptr;
    QListWidget* workspacesList_ = nullptr;
    QListWidget* runsList_ = nullptr;
    QListWidget* demosList_ = nullptr;
    QGroupBox* demosBox_ = nullptr;
    DownloadPanel* downloadPanel_ = nullptr;
};

} // namespace qpruner::ui

// The left pane of the studio: the experiments and runs of the open workspace database, with a filter, status
// icons, Open / New / Recent workspace buttons and the database path on top. Opening reads the database on a
// worker thread (a large study never freezes the window); while a run is running the list refreshes itself
// every 2 s, in place, keeping the selection. Selecting a run asks the window to show its tabs.
#pragma once

#include <QString>
#include <QTimer>
#include <QWidget>

#include <optional>

class QLabel;
class QLineEdit;
class QModelIndex;
class QSortFilterProxyModel;
class QToolButton;
class QTreeView;

namespace qpruner::ui {

class WorkspaceModel;

class RunBrowser : public QWidget {
    Q_OBJECT

public:
    explicit RunBrowser(QWidget* parent = nullptr);

    // Creates an empty workspace database at `path` (its directory too). An existing workspace is left as it
    // is (true: it can be opened); an existing file that is not one is never overwritten (false, *error says
    // why, naming the path).
    static bool createWorkspace(const QString& path, QString* error);

    QString currentWorkspace() const;
    qint64 selectedRunId() const; // 0 when no run is selected

    WorkspaceModel* model() const { return model_; }
    QSortFilterProxyModel* proxy() const { return proxy_; }
    QTreeView* view() const { return view_; }
    QLineEdit* filterEdit() const { return filter_; }
    QLabel* statusLabel() const { return status_; }
    // While a run is running (default 2000 ms).
    void setAutoRefreshInterval(int ms) { autoRefresh_.setInterval(ms); }

public Q_SLOTS:
    // Reads the database asynchronously: workspaceOpened or workspaceFailed follows. The workspace shown until
    // then stays (and stays when it fails).
    void openWorkspace(const QString& dbPath);
    void refresh();
    // Selects run `runId` of the current workspace, refreshing first when the list does not have it yet
    // (a run a job has just created); runSelected follows.
    void selectRun(qint64 runId);
    // Opens `dbPath` when it is not the current workspace, then selects the run.
    void showRun(const QString& dbPath, qint64 runId);
    // Refreshes when `dbPath` is the workspace shown (connect JobQueue::runCreated here: the new run appears,
    // and the list keeps refreshing itself while it runs).
    void refreshIfShowing(const QString& dbPath);
    // Asks where, creates and opens a new workspace; shows a recent or another one.
    void chooseNewWorkspace();
    void chooseWorkspaceToOpen();

Q_SIGNALS:
    void workspaceOpened(const QString& dbPath);
    void workspaceFailed(const QString& dbPath, const QString& message);
    void runSelected(const QString& dbPath, qint64 runId);
    void newRunRequested(); // the "New run…" button (enabled while a workspace is open)

private:
    void onLoaded(const QString& dbPath);
    void onLoadFailed(const QString& dbPath, const QString& message);
    void onCurrentChanged(const QModelIndex& current);
    void updateHeader();
    void updateStatus();
    void fillRecentMenu();
    bool trySelect(qint64 runId);

    WorkspaceModel* model_;
    QSortFilterProxyModel* proxy_;
    QTreeView* view_;
    QLineEdit* filter_;
    QLabel* path_;
    QLabel* status_;
    QToolButton* recent_;
    QToolButton* newRun_;
    QTimer autoRefresh_;
    QString requested_;              // the workspace asked for last (loading)
    std::optional<qint64> pendingRun_; // to select once the next read has it
    QString lastError_;
    bool filtering_ = false;
};

} // namespace qpruner::ui

// The start page's "Download model" box: repo id and revision, a progress bar with bytes, rate and ETA,
// Cancel / Resume, and the outcome (the snapshot to open, or the error naming repo, file and status).
#pragma once

#include <QElapsedTimer>
#include <QGroupBox>
#include <QString>

class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;

namespace qpruner::ui {

class HfDownloader;

class DownloadPanel : public QGroupBox {
    Q_OBJECT

public:
    explicit DownloadPanel(QWidget* parent = nullptr);

    HfDownloader* downloader() const { return downloader_; }
    // Where downloads go (the start page's cache directory).
    void setCacheDir(const QString& dir) { cacheDir_ = dir; }
    QString cacheDir() const { return cacheDir_; }
    // The snapshot directory of the last finished download; empty before one.
    QString lastSnapshot() const { return lastSnapshot_; }

    QLineEdit* repoEdit() const { return repoEdit_; }
    QLineEdit* revisionEdit() const { return revisionEdit_; }
    QPushButton* downloadButton() const { return downloadButton_; }
    QPushButton* cancelButton() const { return cancelButton_; }
    QPushButton* resumeButton() const { return resumeButton_; }
    QPushButton* openButton() const { return openButton_; }
    QProgressBar* progressBar() const { return progressBar_; }
    QLabel* statusLabel() const { return statusLabel_; }

    // "12.50 MiB of 50.00 MiB - 1.25 MiB/s - 0:30 left - model.safetensors"; rate and ETA when known (< 0: not).
    static QString progressText(qint64 done, qint64 total, double bytesPerSecond, const QString& file);

public Q_SLOTS:
    // Starts downloading the repo id and revision in the fields.
    void start();
    void resume();
    void cancel();
    // Fills the fields (e.g. from an incomplete cache entry) and puts the cursor in the repo id field.
    void setRepo(const QString& repoId, const QString& revision);
    void focusRepo();

Q_SIGNALS:
    void downloadFinished(const QString& snapshotDir, const QString& repoId);
    void openRequested(const QString& snapshotDir);

private:
    void onStarted();
    void onProgress(qint64 done, qint64 total, const QString& file);
    void onFinished(const QString& snapshotDir);
    void onFailed(const QString& message);
    void onCancelled();
    void showMessage(const QString& text, bool error);
    void updateButtons();

    HfDownloader* downloader_;
    QString cacheDir_;
    QString lastSnapshot_;
    QLineEdit* repoEdit_;
    QLineEdit* revisionEdit_;
    QPushButton* downloadButton_;
    QPushButton* cancelButton_;
    QPushButton* resumeButton_;
    QPushButton* openButton_;
    QProgressBar* progressBar_;
    QLabel* statusLabel_;
    QLabel* messageLabel_;

    // Rate over this run only: bytes already on disk when it started do not count as speed.
    QElapsedTimer rateClock_;
    qint64 rateBaseBytes_ = -1;
    qint64 lastDone_ = 0;
    qint64 lastTotal_ = 0;
};

} // namespace qpruner::ui

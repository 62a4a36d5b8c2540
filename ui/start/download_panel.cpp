// Download box of the start page; all transfer logic is HfDownloader's, this only shows it.
#include "start/download_panel.h"

#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QLocale>
#include <QProgressBar>
#include <QPushButton>

#include <cmath>

#include "common/number_format.h"
#include "hub/hf_downloader.h"

namespace qpruner::ui {

namespace {

constexpr int kProgressSteps = 1000; // QProgressBar is int; files pass 2 GiB

QString durationText(double seconds)
{
    const qint64 s = qint64(std::ceil(seconds));
    if (s >= 3600)
        return QStringLiteral("%1:%2:%3").arg(s / 3600).arg((s / 60) % 60, 2, 10, QLatin1Char('0')).arg(s % 60, 2, 10, QLatin1Char('0'));
    return QStringLiteral("%1:%2").arg(s / 60).arg(s % 60, 2, 10, QLatin1Char('0'));
}

// formatBytes counts in MiB, which reads as "0.00 MiB/s" on a slow line.
QString rateText(double bytesPerSecond)
{
    constexpr double kMiB = 1024.0 * 1024.0;
    if (bytesPerSecond < kMiB)
        return QStringLiteral("%1 KiB/s").arg(QLocale().toString(bytesPerSecond / 1024.0, 'f', 2));
    return formatBytes(qint64(bytesPerSecond)) + QStringLiteral("/s");
}

} // namespace

DownloadPanel::DownloadPanel(QWidget* parent)
    : QGroupBox(tr("Download from the Hugging Face Hub"), parent),
      downloader_(new HfDownloader(this)),
      repoEdit_(new QLineEdit(this)),
      revisionEdit_(new QLineEdit(QStringLiteral("main"), this)),
      downloadButton_(new QPushButton(tr("Download"), this)),
      cancelButton_(new QPushButton(tr("Cancel"), this)),
      resumeButton_(new QPushButton(tr("Resume"), this)),
      openButton_(new QPushButton(tr("Open"), this)),
      progressBar_(new QProgressBar(this)),
      statusLabel_(new QLabel(this)),
      messageLabel_(new QLabel(this))
{
    repoEdit_->setPlaceholderText(tr("ORG/NAME, e.g. TinyLlama/TinyLlama-1.1B-Chat-v1.0"));
    repoEdit_->setClearButtonEnabled(true);
    revisionEdit_->setPlaceholderText(tr("branch, tag or commit"));
    revisionEdit_->setMaximumWidth(160);
    progressBar_->setRange(0, kProgressSteps);
    progressBar_->setValue(0);
    progressBar_->setTextVisible(false); // "0%" before anything started reads as a stuck download
    statusLabel_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    messageLabel_->setWordWrap(true);
    messageLabel_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    messageLabel_->hide();
    openButton_->setToolTip(tr("Open the downloaded model"));
    setToolTip(tr("Fetches config.json, the *.safetensors weights and the tokenizer files into the "
                  "Hugging Face cache, where transformers and other tools find them too."));

    auto* grid = new QGridLayout(this);
    grid->addWidget(new QLabel(tr("Repository:"), this), 0, 0);
    grid->addWidget(repoEdit_, 0, 1);
    grid->addWidget(new QLabel(tr("Revision:"), this), 0, 2);
    grid->addWidget(revisionEdit_, 0, 3);
    grid->addWidget(downloadButton_, 0, 4);
    auto* progressRow = new QHBoxLayout;
    progressRow->addWidget(progressBar_, 1);
    progressRow->addWidget(cancelButton_);
    progressRow->addWidget(resumeButton_);
    progressRow->addWidget(openButton_);
    grid->addLayout(progressRow, 1, 0, 1, 5);
    grid->addWidget(statusLabel_, 2, 0, 1, 5);
    grid->addWidget(messageLabel_, 3, 0, 1, 5);
    grid->setColumnStretch(1, 1);

    connect(downloadButton_, &QPushButton::clicked, this, &DownloadPanel::start);
    connect(repoEdit_, &QLineEdit::returnPressed, this, &DownloadPanel::start);
    connect(revisionEdit_, &QLineEdit::returnPressed, this, &DownloadPanel::start);
    connect(repoEdit_, &QLineEdit::textChanged, this, &DownloadPanel::updateButtons);
    connect(cancelButton_, &QPushButton::clicked, this, &DownloadPanel::cancel);
    connect(resumeButton_, &QPushButton::clicked, this, &DownloadPanel::resume);
    connect(openButton_, &QPushButton::clicked, this, [this] {
        if (!lastSnapshot_.isEmpty())
            Q_EMIT openRequested(lastSnapshot_);
    });
    connect(downloader_, &HfDownloader::started, this, &DownloadPanel::onStarted);
    connect(downloader_, &HfDownloader::progress, this, &DownloadPanel::onProgress);
    connect(downloader_, &HfDownloader::finished, this, &DownloadPanel::onFinished);
    connect(downloader_, &HfDownloader::failed, this, &DownloadPanel::onFailed);
    connect(downloader_, &HfDownloader::cancelled, this, &DownloadPanel::onCancelled);
    updateButtons();
}

QString DownloadPanel::progressText(qint64 done, qint64 total, double bytesPerSecond, const QString& file)
{
    QStringList parts;
    parts << tr("%1 of %2").arg(formatBytes(done), formatBytes(total));
    if (bytesPerSecond > 0) {
        parts << rateText(bytesPerSecond);
        if (total > done)
            parts << tr("%1 left").arg(durationText(double(total - done) / bytesPerSecond));
    }
    if (!file.isEmpty())
        parts << file;
    return parts.join(QStringLiteral(" \u2013 "));
}

void DownloadPanel::start()
{
    const QString repo = repoEdit_->text().trimmed();
    if (repo.isEmpty() || downloader_->isRunning())
        return;
    downloader_->download(repo, revisionEdit_->text().trimmed(), cacheDir_);
}

void DownloadPanel::resume()
{
    if (!downloader_->canResume())
        return;
    repoEdit_->setText(downloader_->repoId());
    revisionEdit_->setText(downloader_->revision());
    downloader_->resume();
}

void DownloadPanel::cancel()
{
    downloader_->cancel();
}

void DownloadPanel::setRepo(const QString& repoId, const QString& revision)
{
    repoEdit_->setText(repoId);
    revisionEdit_->setText(revision.isEmpty() ? QStringLiteral("main") : revision);
    focusRepo();
}

void DownloadPanel::focusRepo()
{
    repoEdit_->setFocus(Qt::OtherFocusReason);
    repoEdit_->selectAll();
}

void DownloadPanel::onStarted()
{
    rateBaseBytes_ = -1;
    lastDone_ = lastTotal_ = 0;
    lastSnapshot_.clear();
    progressBar_->setValue(0);
    progressBar_->setTextVisible(true);
    statusLabel_->setText(tr("Listing the files of %1 ...").arg(downloader_->repoId()));
    messageLabel_->hide();
    updateButtons();
}

void DownloadPanel::onProgress(qint64 done, qint64 total, const QString& file)
{
    if (rateBaseBytes_ < 0) {
        rateBaseBytes_ = done;
        rateClock_.start();
    }
    lastDone_ = done;
    lastTotal_ = total;
    const double seconds = rateClock_.elapsed() / 1000.0;
    const double rate = seconds >= 1.0 ? double(done - rateBaseBytes_) / seconds : -1.0;
    progressBar_->setValue(total > 0 ? int(double(done) / double(total) * kProgressSteps) : 0);
    statusLabel_->setText(progressText(done, total, rate, file));
}

void DownloadPanel::onFinished(const QString& snapshotDir)
{
    lastSnapshot_ = snapshotDir;
    progressBar_->setValue(kProgressSteps);
    statusLabel_->setText(tr("%1 downloaded (%2)").arg(downloader_->repoId(), formatBytes(lastTotal_)));
    showMessage(tr("Saved in %1").arg(snapshotDir), false);
    updateButtons();
    Q_EMIT downloadFinished(snapshotDir, downloader_->repoId());
}

void DownloadPanel::onFailed(const QString& message)
{
    statusLabel_->setText(tr("Download failed at %1 of %2").arg(formatBytes(lastDone_), formatBytes(lastTotal_)));
    showMessage(message, true);
    updateButtons();
}

void DownloadPanel::onCancelled()
{
    statusLabel_->setText(tr("Cancelled at %1 of %2; Resume continues from there")
                              .arg(formatBytes(lastDone_), formatBytes(lastTotal_)));
    messageLabel_->hide();
    updateButtons();
}

void DownloadPanel::showMessage(const QString& text, bool error)
{
    messageLabel_->setText(text);
    messageLabel_->setStyleSheet(error ? QStringLiteral("color: #b03020;") : QString());
    messageLabel_->show();
}

void DownloadPanel::updateButtons()
{
    const bool running = downloader_->isRunning();
    const bool interrupted = !running && downloader_->canResume() && lastSnapshot_.isEmpty() && lastTotal_ > 0;
    downloadButton_->setEnabled(!running && !repoEdit_->text().trimmed().isEmpty());
    cancelButton_->setEnabled(running);
    resumeButton_->setEnabled(interrupted);
    openButton_->setEnabled(!running && !lastSnapshot_.isEmpty());
    repoEdit_->setEnabled(!running);
    revisionEdit_->setEnabled(!running);
}

} // namespace qpruner::ui

// ScreenshotCapture: polls for "exposed and loaded", then lets layouts and pending paints settle.
#include "app/screenshot_capture.h"

#include <QCoreApplication>
#include <QDir>
#include <QFileInfo>
#include <QImage>
#include <QPixmap>
#include <QWindow>

#include <cstdio>

#include "main/compare_page.h"
#include "main/main_window.h"
#include "main/run_view.h"

namespace qpruner::ui {

namespace {
constexpr int kPollMs = 50;
constexpr int kSettleMs = 300; // layouts, the first paint and the fonts' glyph cache after the last event
} // namespace

ScreenshotCapture::ScreenshotCapture(MainWindow& window, QString file, QObject* parent)
    : QObject(parent), window_(window), file_(std::move(file))
{
    pollTimer_.setInterval(kPollMs);
    connect(&pollTimer_, &QTimer::timeout, this, &ScreenshotCapture::poll);
    // A modal box would wait forever for a click nobody makes: report on stderr and fail instead.
    window_.setErrorPresenter({});
    connect(&window_, &MainWindow::modelLoaded, this, [this] { modelPending_ = false; });
    connect(&window_, &MainWindow::loadFailed, this,
            [this](const QString&, const QString& message) { finish(1, message); });
}

void ScreenshotCapture::expectModel()
{
    modelPending_ = true;
}

void ScreenshotCapture::expectRun()
{
    runPending_ = true;
    connect(window_.runView(), &RunView::runLoaded, this, [this] { runPending_ = false; });
    connect(window_.runView(), &RunView::runFailed, this,
            [this](const QString&, qint64, const QString& message) { finish(1, message); });
}

void ScreenshotCapture::expectComparison()
{
    comparisonPending_ = true;
    connect(window_.runView()->compare(), &ComparePage::compared, this, [this] { comparisonPending_ = false; });
}

void ScreenshotCapture::start()
{
    clock_.start();
    pollTimer_.start();
}

void ScreenshotCapture::poll()
{
    if (finished_ || captureScheduled_)
        return;
    if (clock_.elapsed() > kTimeoutMs) {
        finish(1, modelPending_        ? QStringLiteral("timed out waiting for the model to load")
                  : runPending_        ? QStringLiteral("timed out waiting for the run to load")
                  : comparisonPending_ ? QStringLiteral("timed out waiting for the comparison")
                                       : QStringLiteral("timed out waiting for the window to be shown"));
        return;
    }
    const QWindow* handle = window_.windowHandle();
    if (modelPending_ || runPending_ || comparisonPending_ || window_.isLoading() || !window_.isVisible() || !handle || !handle->isExposed())
        return;
    captureScheduled_ = true;
    pollTimer_.stop();
    QTimer::singleShot(kSettleMs, this, &ScreenshotCapture::capture);
}

void ScreenshotCapture::capture()
{
    const QFileInfo target(file_);
    if (!target.absoluteDir().exists()) {
        finish(1, QStringLiteral("%1: directory does not exist").arg(QDir::toNativeSeparators(target.absolutePath())));
        return;
    }
    const QPixmap pixmap = window_.grab();
    if (pixmap.isNull()) {
        finish(1, QStringLiteral("could not grab the main window"));
        return;
    }
    // Pictures for the docs: a 256-colour palette keeps a window shot at a fraction of the bytes, and the
    // studio's flat colours and anti-aliased text survive it.
    QImage image = pixmap.toImage();
    if (target.suffix().compare(QLatin1String("png"), Qt::CaseInsensitive) == 0)
        image = image.convertToFormat(QImage::Format_Indexed8, Qt::ThresholdDither | Qt::AvoidDither);
    if (!image.save(file_, nullptr, 0)) {
        finish(1, QStringLiteral("%1: could not write the image (unknown extension or not writable?)")
                      .arg(QDir::toNativeSeparators(file_)));
        return;
    }
    finish(0, {});
}

void ScreenshotCapture::finish(int exitCode, const QString& message)
{
    if (finished_)
        return;
    finished_ = true;
    pollTimer_.stop();
    if (!message.isEmpty())
        std::fprintf(stderr, "qpruner-studio: --screenshot failed: %s\n", qUtf8Printable(message));
    QCoreApplication::exit(exitCode);
}

} // namespace qpruner::ui

// `qpruner-studio --screenshot FILE`: once the window is on screen and the requested model has loaded,
// (and, with --workspace/--run/--tab/--compare, the run or comparison) grabs the window into FILE and ends the event loop (exit code 0, or 1 with a message on stderr).
#pragma once

#include <QElapsedTimer>
#include <QObject>
#include <QString>
#include <QTimer>

namespace qpruner::ui {

class MainWindow;

class ScreenshotCapture : public QObject {
    Q_OBJECT

public:
    static constexpr int kTimeoutMs = 60'000;

    ScreenshotCapture(MainWindow& window, QString file, QObject* parent = nullptr);

    // Call before the window starts opening the model / run / comparison, so the capture waits for it.
    void expectModel();
    void expectRun();
    void expectComparison();
    void start();

private:
    void poll();
    void capture();
    void finish(int exitCode, const QString& message);

    MainWindow& window_;
    QString file_;
    bool modelPending_ = false;
    bool runPending_ = false;
    bool comparisonPending_ = false;
    bool captureScheduled_ = false;
    bool finished_ = false;
    QTimer pollTimer_;
    QElapsedTimer clock_;
};

} // namespace qpruner::ui

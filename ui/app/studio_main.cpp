// Command line and start-up of qpruner-studio.
#include "app/studio_main.h"

#include <QApplication>
#include <QCommandLineParser>

#include <cstdio>
#include <cstring>
#include <memory>

#include "app/screenshot_capture.h"
#include "common/studio_identity.h"
#include "main/main_window.h"

namespace qpruner::ui {

void selectHeadlessPlatformIfNeeded(int argc, char** argv)
{
    if (qEnvironmentVariableIsSet("QT_QPA_PLATFORM") || qEnvironmentVariableIsSet("DISPLAY") ||
        qEnvironmentVariableIsSet("WAYLAND_DISPLAY"))
        return;
#if defined(Q_OS_UNIX) && !defined(Q_OS_MACOS)
    for (int i = 1; i < argc; ++i) {
        const char* a = argv[i];
        if (!std::strcmp(a, "--help") || !std::strcmp(a, "-h") || !std::strcmp(a, "--version") ||
            !std::strcmp(a, "-v") || !std::strncmp(a, "--screenshot", 12)) {
            qputenv("QT_QPA_PLATFORM", "offscreen");
            return;
        }
    }
#else
    Q_UNUSED(argc);
    Q_UNUSED(argv);
#endif
}

int runStudio(QApplication& app)
{
    QCommandLineParser parser;
    parser.setApplicationDescription(
        QStringLiteral("%1: inspect, prune and quantise LLaMA-family models.").arg(studioDisplayName()));
    parser.addHelpOption();
    parser.addVersionOption();
    parser.addPositionalArgument(QStringLiteral("model"),
                                 QStringLiteral("Model to open: a llama2.c .bin file, or a Hugging Face or "
                                                "QPruner model directory."),
                                 QStringLiteral("[MODEL]"));
    const QCommandLineOption screenshotOption(
        QStringLiteral("screenshot"),
        QStringLiteral("Save an image of the main window to FILE once it is shown and MODEL has loaded, then exit."),
        QStringLiteral("FILE"));
    parser.addOption(screenshotOption);
    parser.process(app); // exits on --help, --version and unknown options

    const QStringList positional = parser.positionalArguments();
    if (positional.size() > 1) {
        std::fprintf(stderr, "qpruner-studio: expected at most one MODEL, got %lld\n",
                     static_cast<long long>(positional.size()));
        return 2;
    }

    app.setWindowIcon(studioIcon());
    MainWindow window;
    std::unique_ptr<ScreenshotCapture> capture;
    if (parser.isSet(screenshotOption)) {
        capture = std::make_unique<ScreenshotCapture>(window, parser.value(screenshotOption));
        // Pictures for the docs must not depend on the geometry a user session saved.
        window.setWindowState(Qt::WindowNoState);
        window.resize(MainWindow::kDefaultSize);
        if (!positional.isEmpty())
            capture->expectModel();
    }
    window.show();
    if (!positional.isEmpty())
        window.openModel(positional.first());
    if (capture)
        capture->start();
    return app.exec();
}

} // namespace qpruner::ui

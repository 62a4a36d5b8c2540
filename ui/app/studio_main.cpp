// Command line and start-up of qpruner-studio.
#include "app/studio_main.h"

#include <QApplication>
#include <QCommandLineParser>

#include <cstdio>
#include <cstring>
#include <memory>

#include "app/screenshot_capture.h"
#include "common/studio_identity.h"
#include "main/compare_page.h"
#include "main/main_window.h"
#include "main/run_view.h"

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
    const QCommandLineOption workspaceOption(QStringLiteral("workspace"),
                                             QStringLiteral("Open the workspace database DB."), QStringLiteral("DB"));
    const QCommandLineOption runOption(QStringLiteral("run"), QStringLiteral("Show run ID of the workspace."),
                                       QStringLiteral("ID"));
    const QCommandLineOption tabOption(QStringLiteral("tab"),
                                       QStringLiteral("Tab to show: overview, importance, map, search, compare, model."),
                                       QStringLiteral("NAME"));
    const QCommandLineOption compareOption(QStringLiteral("compare"),
                                           QStringLiteral("Compare these runs of the workspace (e.g. 1,2)."),
                                           QStringLiteral("IDS"));
    parser.addOption(workspaceOption);
    parser.addOption(runOption);
    parser.addOption(tabOption);
    parser.addOption(compareOption);
    parser.process(app); // exits on --help, --version and unknown options

    const QStringList positional = parser.positionalArguments();
    if (positional.size() > 1) {
        std::fprintf(stderr, "qpruner-studio: expected at most one MODEL, got %lld\n",
                     static_cast<long long>(positional.size()));
        return 2;
    }

    qint64 runId = 0;
    QList<qint64> compareIds;
    if (parser.isSet(runOption) || parser.isSet(compareOption)) {
        if (!parser.isSet(workspaceOption)) {
            std::fprintf(stderr, "qpruner-studio: --run and --compare need --workspace DB\n");
            return 2;
        }
        bool ok = !parser.isSet(runOption);
        if (parser.isSet(runOption))
            runId = parser.value(runOption).toLongLong(&ok);
        if (!ok || (parser.isSet(runOption) && runId <= 0)) {
            std::fprintf(stderr, "qpruner-studio: --run expects a run id, got '%s'\n", qUtf8Printable(parser.value(runOption)));
            return 2;
        }
        for (const QString& part : parser.value(compareOption).split(QLatin1Char(','), Qt::SkipEmptyParts)) {
            const qint64 id = part.trimmed().toLongLong(&ok);
            if (!ok || id <= 0) {
                std::fprintf(stderr, "qpruner-studio: --compare expects run ids like 1,2, got '%s'\n",
                             qUtf8Printable(parser.value(compareOption)));
                return 2;
            }
            compareIds << id;
        }
        if (runId == 0 && !compareIds.isEmpty())
            runId = compareIds.first();
    }
    if (parser.isSet(tabOption) && !RunView::tabNames().contains(parser.value(tabOption).toLower())) {
        std::fprintf(stderr, "qpruner-studio: --tab expects one of %s, got '%s'\n",
                     qUtf8Printable(RunView::tabNames().join(QStringLiteral(", "))),
                     qUtf8Printable(parser.value(tabOption)));
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
        if (runId > 0)
            capture->expectRun();
        if (compareIds.size() >= 2)
            capture->expectComparison();
    }
    window.show();
    if (!positional.isEmpty())
        window.openModel(positional.first());
    if (runId > 0) {
        const QString tab = parser.value(tabOption);
        QObject::connect(window.runView(), &RunView::runLoaded, &window, [&window, tab, compareIds] {
            if (!tab.isEmpty())
                window.runView()->showTab(tab);
            if (compareIds.size() >= 2)
                window.runView()->compare()->compareRuns(compareIds);
        }, Qt::SingleShotConnection);
        window.openRun(parser.value(workspaceOption), runId);
    } else if (parser.isSet(workspaceOption)) {
        window.openWorkspace(parser.value(workspaceOption));
    }
    if (capture)
        capture->start();
    return app.exec();
}

} // namespace qpruner::ui

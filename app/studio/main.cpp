// qpruner-studio: the Qt Widgets workbench. Everything but the application object lives in qpruner-ui.
#include <QApplication>

#include "app/studio_main.h"
#include "common/studio_identity.h"
#include "qpruner/process_tuning.h"

int main(int argc, char* argv[])
{
    qpruner::tuneAllocatorForTensors(); // the studio runs pipeline jobs in-process
    qpruner::ui::selectHeadlessPlatformIfNeeded(argc, argv);
    QApplication app(argc, argv);
    // Organisation and application names place the QSettings file (e.g. ~/.config/QPruner/qpruner-studio.conf).
    QApplication::setOrganizationName(QStringLiteral("QPruner"));
    QApplication::setApplicationName(QStringLiteral("qpruner-studio"));
    QGuiApplication::setDesktopFileName(QStringLiteral("io.github.qpruner.Studio")); // the desktop entry and icon
    QApplication::setApplicationDisplayName(qpruner::ui::studioDisplayName());
    QApplication::setApplicationVersion(qpruner::ui::studioVersion());
    return qpruner::ui::runStudio(app);
}

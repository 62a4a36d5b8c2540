// Studio identity; also registers the resources linked in from the static qpruner-ui library.
#include "common/studio_identity.h"

#include <QImageReader>

#ifndef QPRUNER_VERSION
#define QPRUNER_VERSION "0.0.0"
#endif

// Q_INIT_RESOURCE declares a function and must therefore be used outside any namespace. A static library's
// resource initialiser is otherwise dropped by the linker because nothing references it.
static void initStudioResources()
{
    static const bool done = [] {
        Q_INIT_RESOURCE(studio);
        return true;
    }();
    Q_UNUSED(done);
}

namespace qpruner::ui {

QString studioDisplayName()
{
    return QStringLiteral("QPruner Studio");
}

QString studioVersion()
{
    return QStringLiteral(QPRUNER_VERSION);
}

QIcon studioIcon()
{
    initStudioResources();
    QIcon icon;
    if (QImageReader::supportedImageFormats().contains("svg"))
        icon.addFile(QStringLiteral(":/icons/qpruner-studio.svg"));
    for (int size : {16, 32, 64, 128, 256})
        icon.addFile(QStringLiteral(":/icons/qpruner-studio-%1.png").arg(size), QSize(size, size));
    return icon;
}

} // namespace qpruner::ui

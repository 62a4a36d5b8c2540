// Who the studio is: its display name, version (the CMake project version) and icon, for main(), the
// window title and the About box.
#pragma once

#include <QIcon>
#include <QString>

namespace qpruner::ui {

QString studioDisplayName();
QString studioVersion();
// The application icon at every size in resources/studio.qrc; the SVG is used where Qt can render it.
QIcon studioIcon();

} // namespace qpruner::ui

// Settings: recent-model bookkeeping on top of the typed entries.
#include "settings/settings.h"

#include <QDir>
#include <QFileInfo>

namespace qpruner::ui {

Settings::Settings() = default;

QString Settings::normalisedPath(const QString& path)
{
    return QDir::cleanPath(QFileInfo(path).absoluteFilePath());
}

QStringList Settings::recentModels() const
{
    return recentModels_.get();
}

void Settings::addRecentModel(const QString& path)
{
    const QString p = normalisedPath(path);
    QStringList list = recentModels_.get();
    list.removeAll(p);
    list.prepend(p);
    while (list.size() > kMaxRecentModels)
        list.removeLast();
    recentModels_ = list;
}

void Settings::removeRecentModel(const QString& path)
{
    QStringList list = recentModels_.get();
    if (list.removeAll(normalisedPath(path)) > 0)
        recentModels_ = list;
}

void Settings::clearRecentModels()
{
    recentModels_.reset();
}

QString Settings::lastModelDirectory() const
{
    return lastModelDirectory_.get();
}

void Settings::setLastModelDirectory(const QString& dir)
{
    lastModelDirectory_ = dir;
}

QByteArray Settings::mainWindowGeometry() const
{
    return mainWindowGeometry_.get();
}

void Settings::setMainWindowGeometry(const QByteArray& geometry)
{
    mainWindowGeometry_ = geometry;
}

QByteArray Settings::mainWindowState() const
{
    return mainWindowState_.get();
}

void Settings::setMainWindowState(const QByteArray& state)
{
    mainWindowState_ = state;
}

void Settings::sync()
{
    store_.sync();
}

} // namespace qpruner::ui

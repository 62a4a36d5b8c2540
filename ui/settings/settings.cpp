// Settings: recent-model bookkeeping on top of the typed entries.
#include "common/workspace_location.h"
#include "settings/settings.h"

#include <QDir>
#include <QFileInfo>

namespace qpruner::ui {

namespace {

// Moves `entry` to the front of the list, dropping the oldest beyond `max`.
void pushRecent(SettingValue<QStringList>& value, const QString& entry, int max)
{
    QStringList list = value.get();
    list.removeAll(entry);
    list.prepend(entry);
    while (list.size() > max)
        list.removeLast();
    value = list;
}

void removeRecent(SettingValue<QStringList>& value, const QString& entry)
{
    QStringList list = value.get();
    if (list.removeAll(entry) > 0)
        value = list;
}

} // namespace

Settings::Settings() = default;

QString Settings::normalisedPath(const QString& path)
{
    return workspaceKey(path); // (a model path or a workspace: files made absolute, server URLs kept)
}

QStringList Settings::recentModels() const
{
    return recentModels_.get();
}

void Settings::addRecentModel(const QString& path)
{
    pushRecent(recentModels_, normalisedPath(path), kMaxRecentModels);
}

void Settings::removeRecentModel(const QString& path)
{
    removeRecent(recentModels_, normalisedPath(path));
}

void Settings::clearRecentModels()
{
    recentModels_.reset();
}

QStringList Settings::recentWorkspaces() const
{
    return recentWorkspaces_.get();
}

void Settings::addRecentWorkspace(const QString& dbPath)
{
    pushRecent(recentWorkspaces_, normalisedPath(dbPath), kMaxRecentWorkspaces);
}

void Settings::removeRecentWorkspace(const QString& dbPath)
{
    removeRecent(recentWorkspaces_, normalisedPath(dbPath));
}

QStringList Settings::recentRuns() const
{
    return recentRuns_.get();
}

void Settings::addRecentRun(const QString& dbPath, qint64 runId)
{
    pushRecent(recentRuns_, runKey(dbPath, runId), kMaxRecentRuns);
}

QString Settings::runKey(const QString& dbPath, qint64 runId)
{
    return normalisedPath(dbPath) + QLatin1Char('#') + QString::number(runId);
}

bool Settings::parseRunKey(const QString& key, QString* dbPath, qint64* runId)
{
    const qsizetype hash = key.lastIndexOf(QLatin1Char('#'));
    if (hash <= 0)
        return false;
    bool ok = false;
    const qint64 id = key.mid(hash + 1).toLongLong(&ok);
    if (!ok || id <= 0)
        return false;
    if (dbPath)
        *dbPath = key.left(hash);
    if (runId)
        *runId = id;
    return true;
}

QString Settings::lastWorkspace() const
{
    return lastWorkspace_.get();
}

void Settings::setLastWorkspace(const QString& dbPath)
{
    lastWorkspace_ = dbPath.isEmpty() ? QString() : normalisedPath(dbPath);
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

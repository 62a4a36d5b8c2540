// The studio's persistent preferences, one typed accessor per entry. Stored with QSettings under the
// organisation and application names that main() sets; tests switch QStandardPaths to test mode.
#pragma once

#include <QByteArray>
#include <QSettings>
#include <QString>
#include <QStringList>

#include "settings/setting_value.h"

namespace qpruner::ui {

class Settings {
public:
    static constexpr int kMaxRecentModels = 10;
    static constexpr int kMaxRecentWorkspaces = 10;
    static constexpr int kMaxRecentRuns = 12;

    Settings();
    Settings(const Settings&) = delete; // the SettingValue members point into store_
    Settings& operator=(const Settings&) = delete;

    // Most recent first, as absolute clean paths.
    QStringList recentModels() const;
    void addRecentModel(const QString& path);
    void removeRecentModel(const QString& path);
    void clearRecentModels();

    // Workspace databases, most recent first, as absolute clean paths.
    QStringList recentWorkspaces() const;
    void addRecentWorkspace(const QString& dbPath);
    void removeRecentWorkspace(const QString& dbPath);

    // Runs opened lately, most recent first, each as "<absolute db path>#<run id>".
    QStringList recentRuns() const;
    void addRecentRun(const QString& dbPath, qint64 runId);
    static QString runKey(const QString& dbPath, qint64 runId);
    // Splits a runKey(); false when `key` is not one.
    static bool parseRunKey(const QString& key, QString* dbPath, qint64* runId);

    // The workspace the window opens at start-up (empty: none).
    QString lastWorkspace() const;
    void setLastWorkspace(const QString& dbPath);

    // Directory the open dialogs start in.
    QString lastModelDirectory() const;
    void setLastModelDirectory(const QString& dir);

    QByteArray mainWindowGeometry() const;
    void setMainWindowGeometry(const QByteArray& geometry);
    QByteArray mainWindowState() const;
    void setMainWindowState(const QByteArray& state);

    void sync();

    // Absolute and without "." or ".." so one model never appears twice in the recent list.
    static QString normalisedPath(const QString& path);

private:
    QSettings store_;
    SettingValue<QStringList> recentModels_{store_, QStringLiteral("models/recent")};
    SettingValue<QStringList> recentWorkspaces_{store_, QStringLiteral("workspaces/recent")};
    SettingValue<QStringList> recentRuns_{store_, QStringLiteral("workspaces/recentRuns")};
    SettingValue<QString> lastWorkspace_{store_, QStringLiteral("workspaces/last")};
    SettingValue<QString> lastModelDirectory_{store_, QStringLiteral("models/lastDirectory")};
    SettingValue<QByteArray> mainWindowGeometry_{store_, QStringLiteral("mainWindow/geometry")};
    SettingValue<QByteArray> mainWindowState_{store_, QStringLiteral("mainWindow/state")};
};

} // namespace qpruner::ui

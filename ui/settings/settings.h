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

    Settings();
    Settings(const Settings&) = delete; // the SettingValue members point into store_
    Settings& operator=(const Settings&) = delete;

    // Most recent first, as absolute clean paths.
    QStringList recentModels() const;
    void addRecentModel(const QString& path);
    void removeRecentModel(const QString& path);
    void clearRecentModels();

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
    SettingValue<QString> lastModelDirectory_{store_, QStringLiteral("models/lastDirectory")};
    SettingValue<QByteArray> mainWindowGeometry_{store_, QStringLiteral("mainWindow/geometry")};
    SettingValue<QByteArray> mainWindowState_{store_, QStringLiteral("mainWindow/state")};
};

} // namespace qpruner::ui

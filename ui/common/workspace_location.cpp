#include "common/workspace_location.h"

#include <QDir>
#include <QObject>
#include <QFileInfo>
#include <QUrl>
#include <QUrlQuery>

namespace qpruner::ui {

bool isServerWorkspace(const QString& location)
{
    const QString t = location.trimmed();
    return t.startsWith(QLatin1String("postgresql://")) || t.startsWith(QLatin1String("postgres://"));
}

QString workspaceKey(const QString& location)
{
    if (location.isEmpty())
        return {};
    if (isServerWorkspace(location))
        return location.trimmed();
    return QDir::cleanPath(QFileInfo(location).absoluteFilePath());
}

QString workspaceLabel(const QString& location)
{
    if (!isServerWorkspace(location))
        return QFileInfo(location).fileName();
    const QUrl url(location.trimmed());
    QString db = url.path().mid(1);
    if (db.isEmpty())
        db = url.userName().isEmpty() ? QStringLiteral("postgres") : url.userName();
    const QString host = !url.host().isEmpty() ? url.host() : QUrlQuery(url).queryItemValue(QStringLiteral("host"));
    return host.isEmpty() || host.startsWith(QLatin1Char('/')) ? QObject::tr("%1 (PostgreSQL, local socket)").arg(db)
                                                               : QObject::tr("%1 on %2").arg(db, host);
}

QString workspacePlace(const QString& location)
{
    if (!isServerWorkspace(location))
        return QFileInfo(location).absolutePath();
    const QUrl url(location.trimmed());
    QString host = url.host();
    if (host.isEmpty())
        host = QUrlQuery(url).queryItemValue(QStringLiteral("host"));
    const QString port = url.port() > 0 ? QString::number(url.port())
                                        : QUrlQuery(url).queryItemValue(QStringLiteral("port"));
    return QStringLiteral("postgresql: %1%2").arg(host.isEmpty() ? QStringLiteral("localhost") : host,
                                                  port.isEmpty() ? QString() : QStringLiteral(":") + port);
}

bool checkServerWorkspaceUrl(const QString& url, QString* error)
{
    if (!isServerWorkspace(url)) {
        *error = QObject::tr("'%1' is not a PostgreSQL URL (postgresql://user@host:5432/name).").arg(url);
        return false;
    }
    const QUrl u(url.trimmed());
    if (!u.isValid()) {
        *error = QObject::tr("'%1' is not a valid URL: %2").arg(url, u.errorString());
        return false;
    }
    if (!u.password().isEmpty() || !QUrlQuery(u).queryItemValue(QStringLiteral("password")).isEmpty()) {
        *error = QObject::tr("The URL holds a password. Put it in ~/.pgpass or PGPASSWORD instead, so that it never "
                             "reaches the recent list, the logs or the store.");
        return false;
    }
    return true;
}

} // namespace qpruner::ui

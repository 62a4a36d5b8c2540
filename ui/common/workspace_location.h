// A workspace is an SQLite file or a PostgreSQL database (postgresql://user@host:5432/name, the password from
// ~/.pgpass or PGPASSWORD): how the studio keys, names and shows either.
#pragma once

#include <QString>

namespace qpruner::ui {

bool isServerWorkspace(const QString& location);
// The key recent lists and "is this the open workspace" compare: the clean absolute path of a file, the URL as
// given (trimmed) for a server.
QString workspaceKey(const QString& location);
// Short name: "study.db", or "study on dbhost" / "study (local socket)".
QString workspaceLabel(const QString& location);
// Where it is: the file's directory, or the server ("dbhost:5432", the socket directory).
QString workspacePlace(const QString& location);

// A URL the studio may open and remember: postgresql:// or postgres://, no password in it (~/.pgpass or
// PGPASSWORD hold that, so that it never reaches the recent list); false with the reason otherwise.
bool checkServerWorkspaceUrl(const QString& url, QString* error);

} // namespace qpruner::ui

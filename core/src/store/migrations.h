// Schema versions of the store: numbered SQL scripts applied in order, each in its own transaction.
#pragma once

#include "store/database.h"

namespace qpruner::store::detail {

// The number of migrations this build knows (== kSchemaVersion).
int latestSchemaVersion();

// The version stored in schema_version; 0 for a database without that table and without any other table.
// FormatError for a database holding other tables but no schema_version.
int readSchemaVersion(Database& db);

// Applies migrations version+1 .. target, each with its schema_version update in one IMMEDIATE transaction.
// Another process migrating concurrently is fine: the version is read again inside each transaction.
void migrate(Database& db, int target);

} // namespace qpruner::store::detail

// Versioned schema migrations of the SQLite store (see schema.cpp).
#pragma once

#include "mailreport/util/result.hpp"
#include "store/sql_db.hpp"

namespace mailreport::store::sqlite {

using sql::Connection;

// Applies every migration newer than the store's schema_version, in one transaction. Fails
// when the store was written by a newer build (its version is higher than ours).
Status migrate(Connection& db);

// The store's current version (0 for an empty file).
Result<int> current_version(Connection& db);

int latest_version() noexcept;

}  // namespace mailreport::store::sqlite

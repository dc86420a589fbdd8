// The PostgreSQL backend of the store's SQL layer (sql_db.hpp), over libpq. Private to the
// store.
//
// - Statements are prepared once per connection (PQprepare, parameter types left to the
//   server), their ?N parameters rewritten to $N outside quoted literals and identifiers.
//   Parameters are sent as text, blobs as binary (bytea); results are read as text (bytea's
//   hex form decoded; booleans t/f read as 1/0; numeric sums parsed as integers).
// - query_cursor statements run as a server-side cursor (DECLARE ... NO SCROLL CURSOR, then
//   FETCH FORWARD in batches of kCursorBatch rows; CLOSE on reset), inside the caller's
//   transaction, so nested queries may run between its rows.
// - Errors are classified by SQLSTATE: class 23 → Data (23505 → Unique); 22 → Data;
//   40001, 40P01, 55P03 → Transient; anything else → Other. A lost connection (PQstatus
//   CONNECTION_BAD) is Other and marks the connection broken() so that a pool drops it.
// - Server notices are not printed (a NOTICE processor that discards them).
//
// The schema (pg_schema.cpp) is the SQLite schema's equivalent at its newest version, as its
// own list of migrations (PostgreSQL migration 1 = SQLite migrations 1–5 as they stand): the
// same tables, columns and indexes, so that `mailreport migrate` copies table by table.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "store/sql_db.hpp"

namespace mailreport::store::sql {

inline constexpr int kCursorBatch = 2000;

// The key of a PostgreSQL advisory lock on `name` within `space` ("job", "aggregate-batch",
// ...): FNV-1a over both, so that locks of different spaces never share a key. The migrations'
// lock (pg_schema.cpp) is a constant of its own.
inline std::int64_t advisory_lock_key(std::string_view space, std::string_view name) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : space) h = (h ^ c) * 0x100000001b3ull;
  h = (h ^ 0xffu) * 0x100000001b3ull;  // a byte no name holds, between the two
  for (unsigned char c : name) h = (h ^ c) * 0x100000001b3ull;
  return static_cast<std::int64_t>(h >> 1);
}

class PgConnection : public Connection {
 public:
  // Connects with a libpq URL or keyword/value string (postgresql://user@host:port/db?...).
  // Fails with ErrorCode::Store naming the server's message (never the password).
  static Result<std::unique_ptr<PgConnection>> connect(const std::string& url);
  ~PgConnection() override;

  // True once the connection is lost: the pool closes it instead of reusing it.
  virtual bool broken() const noexcept = 0;

 protected:
  PgConnection() = default;
};

// Applies the pending PostgreSQL migrations, each in its own transaction recorded in
// schema_version, under a transaction-level advisory lock (pg_advisory_xact_lock), so that
// several nodes starting at once migrate once. Fails with Store, or with Unsupported when the
// database's schema is newer than this build's.
Status migrate_pg(Connection& conn);

// For a store opened read-only (no migrations): NotFound when the database holds no store yet,
// Unsupported when its schema is newer than this build's, Store when it is older.
Status check_pg_schema(Connection& conn);

// The PostgreSQL schema version this build writes (the highest migration).
int pg_schema_version() noexcept;

// The table names of the schema in an order in which each table comes after the tables it
// references (for copying, `mailreport migrate`), with schema_version first.
const std::vector<std::string>& pg_tables_in_copy_order();

}  // namespace mailreport::store::sql

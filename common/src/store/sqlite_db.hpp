// The SQLite backend of the store's SQL layer (sql_db.hpp), private to the store: a
// SqliteConnection owns the sqlite3* and its prepared statements. Extended result codes are
// on; a failure's class (sql::ErrorClass) comes from its primary code.
#pragma once

#include <sqlite3.h>

#include <filesystem>
#include <memory>
#include <string_view>

#include "store/sql_db.hpp"

namespace mailreport::store::sql {

class SqliteConnection final : public Connection {
 public:
  // Opens `path` with sqlite3_open_v2 `flags` (SQLITE_OPEN_NOMUTEX added: every connection is
  // guarded by the store's own locks).
  static Result<std::unique_ptr<SqliteConnection>> open(const std::filesystem::path& path,
                                                        int flags);
  ~SqliteConnection() override;

  sqlite3* get() const noexcept { return db_; }

  Dialect dialect() const noexcept override { return Dialect::Sqlite; }
  Status exec(std::string_view sql) override;
  std::int64_t changes() const noexcept override;
  // IMMEDIATE takes the write lock now (waiting up to the busy timeout for another process),
  // so that the transaction cannot fail later on a lock upgrade.
  std::string_view begin_write_sql() const noexcept override { return "BEGIN IMMEDIATE"; }
  std::string_view begin_read_sql() const noexcept override { return "BEGIN"; }

  // An ErrorCode::Store error describing the connection's last failure; records its class.
  Error error(int rc, std::string_view what);

 protected:
  Result<std::unique_ptr<Statement>> prepare(const std::string& sql) override;

 private:
  explicit SqliteConnection(sqlite3* db) : db_(db) {}
  sqlite3* db_;
};

}  // namespace mailreport::store::sql

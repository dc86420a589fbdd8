// Thin RAII layer over the sqlite3 C API, private to the store: a Connection owns the sqlite3*
// and a cache of prepared statements (each SQL text is prepared once and reused); a Query
// borrows one cached statement and resets it when it goes out of scope. Errors are values
// (ErrorCode::Store with SQLite's message); the primary result code of the last failure is
// kept so that callers can tell a constraint violation (one bad report) from an I/O error
// (the whole transaction is lost).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>

#include "mailreport/util/result.hpp"

namespace mailreport::store::sqlite {

struct DbCloser {
  void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
  void operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

class Connection;

// One execution of a cached statement. Bind parameters are 1-based, columns 0-based.
class Query {
 public:
  Query(Connection& conn, sqlite3_stmt* stmt) noexcept : conn_(&conn), stmt_(stmt) {}
  Query(Query&& o) noexcept
      : conn_(o.conn_), stmt_(std::exchange(o.stmt_, nullptr)), bind_rc_(o.bind_rc_) {}
  Query& operator=(Query&&) = delete;
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;
  ~Query();

  Query& bind(int i, std::string_view v);
  Query& bind(int i, const char* v) { return bind(i, std::string_view(v)); }
  Query& bind(int i, const std::string& v) { return bind(i, std::string_view(v)); }
  Query& bind_blob(int i, std::string_view v);
  Query& bind_null(int i);
  template <class T>
  requires std::is_integral_v<T> Query& bind(int i, T v) {
    if constexpr (std::is_unsigned_v<T> && sizeof(T) >= sizeof(std::int64_t)) {
      // Counts beyond INT64_MAX cannot be stored; they can only come from garbage input.
      constexpr auto kMax = static_cast<T>(std::numeric_limits<std::int64_t>::max());
      return bind_i64(i, static_cast<std::int64_t>(v > kMax ? kMax : v));
    } else {
      return bind_i64(i, static_cast<std::int64_t>(v));
    }
  }
  template <class T>
  Query& bind(int i, const std::optional<T>& v) {
    return v ? bind(i, *v) : bind_null(i);
  }

  // true: a row is available; false: done.
  Result<bool> step();
  // Steps to the end, ignoring rows.
  Status run();

  bool is_null(int col) const noexcept;
  std::int64_t i64(int col) const noexcept;
  std::optional<std::int64_t> opt_i64(int col) const noexcept;
  std::uint64_t u64(int col) const noexcept;  // negative values read as 0
  std::string text(int col) const;
  std::string_view blob(int col) const noexcept;

 private:
  Query& bind_i64(int i, std::int64_t v);
  Query& check_bind(int rc);

  Connection* conn_;
  sqlite3_stmt* stmt_;
  int bind_rc_ = SQLITE_OK;
};

class Connection {
 public:
  // Opens `path` with sqlite3_open_v2 `flags` (SQLITE_OPEN_FULLMUTEX is not needed: every
  // connection is guarded by the store's mutexes).
  static Result<std::unique_ptr<Connection>> open(const std::filesystem::path& path, int flags);

  sqlite3* get() const noexcept { return db_.get(); }
  // Runs one or more statements without results (pragmas, DDL, BEGIN/COMMIT).
  Status exec(std::string_view sql);
  // A cached prepared statement for `sql` (prepared on first use).
  Result<Query> query(std::string_view sql);
  std::int64_t last_insert_rowid() const noexcept;
  std::int64_t changes() const noexcept;

  // An ErrorCode::Store error describing the connection's last failure; remembers its code.
  Error error(int rc, std::string_view what);
  int last_error_code() const noexcept { return last_rc_; }

 private:
  explicit Connection(DbPtr db) : db_(std::move(db)) {}

  // Looked up by string_view: the hot insert path finds its statement without building a key.
  struct SqlHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view sql) const noexcept {
      return std::hash<std::string_view>{}(sql);
    }
  };

  DbPtr db_;
  std::unordered_map<std::string, StmtPtr, SqlHash, std::equal_to<>> cache_;
  int last_rc_ = SQLITE_OK;
};

// A failure that concerns one report's data (a constraint, a value too big), not the store.
bool is_data_error(int rc) noexcept;

}  // namespace mailreport::store::sqlite

// The SQL layer the store is written against, private to the store: one Connection interface
// with two backends, SQLite (sqlite_db.hpp) and PostgreSQL via libpq (pg_db.hpp). The store's
// logic (sql_*.cpp) is written once, in the SQL both dialects accept; the few places where they
// differ ask Connection::dialect().
//
// The SQL the store writes:
// - parameters are written ?1, ?2, ... (SQLite's form); the PostgreSQL backend rewrites them
//   to $1, $2 when it prepares a statement (outside quoted literals);
// - a parameter whose type the statement does not show (a bare `?1 IS NULL`, a select list)
//   is written CAST(?1 AS BIGINT) or CAST(?1 AS TEXT): PostgreSQL infers parameter types at
//   prepare time;
// - new row ids come from RETURNING id (both support it), not from a last-insert-rowid call;
// - "no limit" is kNoLimit, not -1 (PostgreSQL refuses a negative LIMIT);
// - two-argument min/max are written as CASE (SQLite's min(a, b) is LEAST in PostgreSQL).
//
// A Connection owns a cache of prepared statements (each SQL text prepared once and reused);
// a Query borrows one cached statement and resets it when it goes out of scope. Bind
// parameters are 1-based, columns 0-based. Errors are values (ErrorCode::Store with the
// backend's message); the class of the last failure is kept, so that callers can tell a
// constraint violation (one bad report) from an I/O error (the whole transaction is lost) and
// from a transient conflict between concurrent transactions (PostgreSQL's serialization
// failures and deadlocks: run the transaction again).
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "mailreport/util/result.hpp"

namespace mailreport::store::sql {

enum class Dialect { Sqlite, Postgres };

// LIMIT for "no limit" in both dialects.
inline constexpr std::int64_t kNoLimit = std::numeric_limits<std::int64_t>::max();

// What kind of failure the last error of a connection was.
enum class ErrorClass {
  None,
  Data,       // a constraint or a value the schema refuses (one report's data)
  Unique,     // a UNIQUE / PRIMARY KEY violation (also Data-like: one report's data)
  Transient,  // serialization failure, deadlock, lock timeout: retry the whole transaction
  Other,      // I/O, syntax, connection lost, ...
};

// One prepared statement of one connection, as a backend implements it. Used through Query.
class Statement {
 public:
  virtual ~Statement() = default;
  virtual void bind_text(int i, std::string_view v) = 0;  // copied
  virtual void bind_blob(int i, std::string_view v) = 0;  // copied
  virtual void bind_i64(int i, std::int64_t v) = 0;
  virtual void bind_null(int i) = 0;
  // The first call executes the statement; true: a row is available; false: done.
  virtual Result<bool> step() = 0;
  // Ready for the next execution: results and bindings cleared.
  virtual void reset() noexcept = 0;
  virtual bool is_null(int col) const noexcept = 0;
  virtual std::int64_t i64(int col) const noexcept = 0;  // booleans read as 0/1
  virtual std::string text(int col) const = 0;
  // Valid until the next step() or reset().
  virtual std::string_view blob(int col) const noexcept = 0;
};

// One execution of a cached statement.
class Query {
 public:
  explicit Query(Statement& stmt) noexcept : stmt_(&stmt) {}
  Query(Query&& o) noexcept : stmt_(std::exchange(o.stmt_, nullptr)) {}
  Query& operator=(Query&&) = delete;
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;
  ~Query() {
    if (stmt_ != nullptr) stmt_->reset();
  }

  Query& bind(int i, std::string_view v) {
    stmt_->bind_text(i, v);
    return *this;
  }
  Query& bind(int i, const char* v) { return bind(i, std::string_view(v)); }
  Query& bind(int i, const std::string& v) { return bind(i, std::string_view(v)); }
  Query& bind_blob(int i, std::string_view v) {
    stmt_->bind_blob(i, v);
    return *this;
  }
  Query& bind_null(int i) {
    stmt_->bind_null(i);
    return *this;
  }
  template <class T>
  requires std::is_integral_v<T> Query& bind(int i, T v) {
    if constexpr (std::is_unsigned_v<T> && sizeof(T) >= sizeof(std::int64_t)) {
      // Counts beyond INT64_MAX cannot be stored; they can only come from garbage input.
      constexpr auto kMax = static_cast<T>(std::numeric_limits<std::int64_t>::max());
      stmt_->bind_i64(i, static_cast<std::int64_t>(v > kMax ? kMax : v));
    } else {
      stmt_->bind_i64(i, static_cast<std::int64_t>(v));
    }
    return *this;
  }
  template <class T>
  Query& bind(int i, const std::optional<T>& v) {
    return v ? bind(i, *v) : bind_null(i);
  }

  // true: a row is available; false: done.
  Result<bool> step() { return stmt_->step(); }
  // Steps to the end, ignoring rows.
  Status run() {
    for (;;) {
      auto r = step();
      if (!r) return std::move(r).error();
      if (!*r) return {};
    }
  }

  bool is_null(int col) const noexcept { return stmt_->is_null(col); }
  std::int64_t i64(int col) const noexcept { return stmt_->i64(col); }
  std::optional<std::int64_t> opt_i64(int col) const noexcept {
    if (is_null(col)) return std::nullopt;
    return i64(col);
  }
  std::uint64_t u64(int col) const noexcept {  // negative values read as 0
    std::int64_t v = i64(col);
    return v < 0 ? 0 : static_cast<std::uint64_t>(v);
  }
  std::string text(int col) const { return stmt_->text(col); }
  std::string_view blob(int col) const noexcept { return stmt_->blob(col); }

 private:
  Statement* stmt_;
};

class Connection {
 public:
  virtual ~Connection() = default;

  virtual Dialect dialect() const noexcept = 0;
  // Runs one or more statements without parameters or results (DDL, BEGIN/COMMIT, pragmas).
  virtual Status exec(std::string_view sql) = 0;
  // A cached prepared statement for `sql` (prepared on first use).
  Result<Query> query(std::string_view sql);
  // The same for a query whose rows may be many (a walk over a whole table): PostgreSQL runs
  // it as a server-side cursor fetched in batches, inside the caller's transaction (so other
  // queries may run on the connection between its rows); SQLite steps it as any query.
  Result<Query> query_cursor(std::string_view sql);
  // Rows inserted, updated or deleted by the last statement run (with RETURNING too).
  virtual std::int64_t changes() const noexcept = 0;

  // The statement that opens a write transaction: SQLite "BEGIN IMMEDIATE" (takes the file's
  // write lock at once), PostgreSQL "BEGIN" (READ COMMITTED; rows are locked as written).
  virtual std::string_view begin_write_sql() const noexcept = 0;
  // The statement that opens a read transaction seeing one snapshot: SQLite "BEGIN",
  // PostgreSQL "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY".
  virtual std::string_view begin_read_sql() const noexcept = 0;

  // The class of the connection's last failure (None after a success is not guaranteed:
  // ask only right after a failed call).
  ErrorClass last_error() const noexcept { return last_error_; }
  bool last_error_is_data() const noexcept {
    return last_error_ == ErrorClass::Data || last_error_ == ErrorClass::Unique;
  }
  // Backends (and their statements) record the class of each failure here.
  void set_last_error(ErrorClass c) noexcept { last_error_ = c; }

 protected:
  virtual Result<std::unique_ptr<Statement>> prepare(const std::string& sql) = 0;
  // Default: prepare(sql).
  virtual Result<std::unique_ptr<Statement>> prepare_cursor(const std::string& sql) {
    return prepare(sql);
  }
  // Destroys the cached statements. A backend's destructor calls it before closing its handle
  // (the base's members are destroyed after the derived class's).
  void clear_statements() noexcept {
    cache_.clear();
    cursor_cache_.clear();
  }

 private:
  // Looked up by string_view: the hot insert path finds its statement without building a key.
  struct SqlHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view sql) const noexcept {
      return std::hash<std::string_view>{}(sql);
    }
  };
  using Cache =
      std::unordered_map<std::string, std::unique_ptr<Statement>, SqlHash, std::equal_to<>>;
  Cache cache_;
  Cache cursor_cache_;
  ErrorClass last_error_ = ErrorClass::None;
};

}  // namespace mailreport::store::sql

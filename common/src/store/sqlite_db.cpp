// The SQLite backend of the store's SQL layer (see sqlite_db.hpp).
#include "store/sqlite_db.hpp"

#include <mutex>
#include <string>
#include <utility>

namespace mailreport::store::sql {

namespace {

ErrorClass class_of(int rc) noexcept {
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
      return (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
                 ? ErrorClass::Unique
                 : ErrorClass::Data;
    case SQLITE_TOOBIG:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE: return ErrorClass::Data;
    default: return ErrorClass::Other;
  }
}

class SqliteStatement final : public Statement {
 public:
  SqliteStatement(SqliteConnection& conn, sqlite3_stmt* stmt) : conn_(conn), stmt_(stmt) {}
  ~SqliteStatement() override { sqlite3_finalize(stmt_); }
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;

  // SQLITE_TRANSIENT: SQLite copies the bytes, so temporaries may be bound.
  void bind_text(int i, std::string_view v) override {
    check(sqlite3_bind_text64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
  }
  void bind_blob(int i, std::string_view v) override {
    check(sqlite3_bind_blob64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT));
  }
  void bind_i64(int i, std::int64_t v) override { check(sqlite3_bind_int64(stmt_, i, v)); }
  void bind_null(int i) override { check(sqlite3_bind_null(stmt_, i)); }

  Result<bool> step() override {
    if (bind_rc_ != SQLITE_OK) return conn_.error(bind_rc_, "bind");
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return conn_.error(rc, sqlite3_sql(stmt_));
  }
  void reset() noexcept override {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    bind_rc_ = SQLITE_OK;
  }

  bool is_null(int col) const noexcept override {
    return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
  }
  std::int64_t i64(int col) const noexcept override { return sqlite3_column_int64(stmt_, col); }
  std::string text(int col) const override {
    const auto* p = sqlite3_column_text(stmt_, col);
    if (p == nullptr) return {};
    return std::string(reinterpret_cast<const char*>(p),
                       static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)));
  }
  std::string_view blob(int col) const noexcept override {
    const void* p = sqlite3_column_blob(stmt_, col);
    if (p == nullptr) return {};
    return {static_cast<const char*>(p),
            static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col))};
  }

 private:
  void check(int rc) noexcept {
    if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  }

  SqliteConnection& conn_;
  sqlite3_stmt* stmt_;
  int bind_rc_ = SQLITE_OK;
};

}  // namespace

Result<std::unique_ptr<SqliteConnection>> SqliteConnection::open(const std::filesystem::path& path,
                                                                 int flags) {
  // SQLite's memory statistics take a global mutex around every allocation; we never read
  // them. Must precede the library's initialisation (a later call is refused, harmlessly).
  static std::once_flag configured;
  std::call_once(configured, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  // sqlite3_open_v2 may return a handle even on failure; it must be closed.
  std::unique_ptr<SqliteConnection> conn(new SqliteConnection(raw));
  if (rc != SQLITE_OK) {
    std::string msg = raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    return make_error(ErrorCode::Store, path.string() + ": " + msg);
  }
  sqlite3_extended_result_codes(raw, 1);
  return conn;
}

SqliteConnection::~SqliteConnection() {
  clear_statements();
  sqlite3_close_v2(db_);
}

Status SqliteConnection::exec(std::string_view sql) {
  std::string text(sql);
  char* msg = nullptr;
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &msg);
  std::unique_ptr<char, decltype(&sqlite3_free)> owned(msg, &sqlite3_free);
  if (rc == SQLITE_OK) return {};
  set_last_error(class_of(rc));
  std::string what = text.substr(0, text.find('\n'));
  return make_error(ErrorCode::Store,
                    std::string(msg != nullptr ? msg : sqlite3_errstr(rc)) + " (" + what + ")");
}

Result<std::unique_ptr<Statement>> SqliteConnection::prepare(const std::string& sql) {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(raw);
    return error(rc, sql);
  }
  return std::unique_ptr<Statement>(new SqliteStatement(*this, raw));
}

std::int64_t SqliteConnection::changes() const noexcept {
  return sqlite3_changes64(db_);
}

Error SqliteConnection::error(int rc, std::string_view what) {
  set_last_error(class_of(rc));
  std::string msg = sqlite3_errmsg(db_);
  if ((rc & 0xff) != (sqlite3_errcode(db_) & 0xff)) msg = sqlite3_errstr(rc);
  std::string w(what.substr(0, what.find('\n')));
  if (w.size() > 80) w = w.substr(0, 80) + "...";
  return make_error(ErrorCode::Store, "sqlite: " + msg + " (" + w + ")");
}

}  // namespace mailreport::store::sql

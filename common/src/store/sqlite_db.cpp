// RAII wrappers over sqlite3 handles and cached prepared statements (see sqlite_db.hpp).
#include "store/sqlite_db.hpp"

#include <mutex>
#include <utility>

namespace mailreport::store::sqlite {

Query::~Query() {
  if (stmt_ != nullptr) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
}

Query& Query::check_bind(int rc) {
  if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Query& Query::bind(int i, std::string_view v) {
  // SQLITE_TRANSIENT: SQLite copies the text, so temporaries may be bound.
  return check_bind(
      sqlite3_bind_text64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
}

Query& Query::bind_blob(int i, std::string_view v) {
  return check_bind(sqlite3_bind_blob64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT));
}

Query& Query::bind_null(int i) {
  return check_bind(sqlite3_bind_null(stmt_, i));
}

Query& Query::bind_i64(int i, std::int64_t v) {
  return check_bind(sqlite3_bind_int64(stmt_, i, v));
}

Result<bool> Query::step() {
  if (bind_rc_ != SQLITE_OK) return conn_->error(bind_rc_, "bind");
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return conn_->error(rc, sqlite3_sql(stmt_));
}

Status Query::run() {
  for (;;) {
    auto r = step();
    if (!r) return std::move(r).error();
    if (!*r) return {};
  }
}

bool Query::is_null(int col) const noexcept {
  return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
}

std::int64_t Query::i64(int col) const noexcept {
  return sqlite3_column_int64(stmt_, col);
}

std::optional<std::int64_t> Query::opt_i64(int col) const noexcept {
  if (is_null(col)) return std::nullopt;
  return i64(col);
}

std::uint64_t Query::u64(int col) const noexcept {
  std::int64_t v = i64(col);
  return v < 0 ? 0 : static_cast<std::uint64_t>(v);
}

std::string Query::text(int col) const {
  const auto* p = sqlite3_column_text(stmt_, col);
  if (p == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(p),
                     static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)));
}

std::string_view Query::blob(int col) const noexcept {
  const void* p = sqlite3_column_blob(stmt_, col);
  if (p == nullptr) return {};
  return {static_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col))};
}

Result<std::unique_ptr<Connection>> Connection::open(const std::filesystem::path& path, int flags) {
  // SQLite's memory statistics take a global mutex around every allocation; we never read
  // them. Must precede the library's initialisation (a later call is refused, harmlessly).
  static std::once_flag configured;
  std::call_once(configured, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  DbPtr db(raw);  // sqlite3_open_v2 may return a handle even on failure; it must be closed
  if (rc != SQLITE_OK) {
    std::string msg = raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    return make_error(ErrorCode::Store, path.string() + ": " + msg);
  }
  sqlite3_extended_result_codes(db.get(), 1);
  return std::unique_ptr<Connection>(new Connection(std::move(db)));
}

Status Connection::exec(std::string_view sql) {
  std::string text(sql);
  char* msg = nullptr;
  int rc = sqlite3_exec(db_.get(), text.c_str(), nullptr, nullptr, &msg);
  std::unique_ptr<char, decltype(&sqlite3_free)> owned(msg, &sqlite3_free);
  if (rc == SQLITE_OK) return {};
  last_rc_ = rc;
  std::string what = text.substr(0, text.find('\n'));
  return make_error(ErrorCode::Store,
                    std::string(msg != nullptr ? msg : sqlite3_errstr(rc)) + " (" + what + ")");
}

Result<Query> Connection::query(std::string_view sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    std::string key(sql);
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v3(db_.get(), key.c_str(), static_cast<int>(key.size()),
                                SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
    StmtPtr stmt(raw);
    if (rc != SQLITE_OK) return error(rc, key);
    it = cache_.emplace(std::move(key), std::move(stmt)).first;
  }
  return Query(*this, it->second.get());
}

std::int64_t Connection::last_insert_rowid() const noexcept {
  return sqlite3_last_insert_rowid(db_.get());
}

std::int64_t Connection::changes() const noexcept {
  return sqlite3_changes64(db_.get());
}

Error Connection::error(int rc, std::string_view what) {
  last_rc_ = rc;
  std::string msg = sqlite3_errmsg(db_.get());
  if ((rc & 0xff) != (sqlite3_errcode(db_.get()) & 0xff)) msg = sqlite3_errstr(rc);
  std::string w(what.substr(0, what.find('\n')));
  if (w.size() > 80) w = w.substr(0, 80) + "...";
  return make_error(ErrorCode::Store, "sqlite: " + msg + " (" + w + ")");
}

bool is_data_error(int rc) noexcept {
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
    case SQLITE_TOOBIG:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE: return true;
    default: return false;
  }
}

}  // namespace mailreport::store::sqlite

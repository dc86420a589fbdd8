// migrate_sqlite_to_postgres (migrate.hpp): `mailreport migrate` copies a SQLite store into an
// empty PostgreSQL database, table by table, ids kept.
//
// - The source is opened once with open_sqlite_store (which migrates it to this build's newest
//   SQLite schema), then read with the sqlite3 API on a read-only connection inside one read
//   transaction (one snapshot, even if a receiver still writes to it).
// - The target is migrated with sql::migrate_pg on a connection of the SQL layer; the copy
//   itself runs on a libpq connection of its own, because COPY ... FROM STDIN (PostgreSQL
//   manual, COPY; libpq §34.9) is not a statement of the SQL layer. Everything is ONE
//   transaction: the tables are locked (EXCLUSIVE: nobody writes meanwhile, a concurrent
//   migrate waits), checked empty (else Invalid), copied in sql::pg_tables_in_copy_order(), and
//   each identity column's sequence set past the copied ids (setval), then committed. A
//   failure rolls everything back.
// - Rows go as COPY text format: columns separated by tab, NULL as \N, and in values backslash,
//   tab, newline and carriage return escaped; bytea values as \\x<hex> (the hex format, with
//   its backslash escaped for the text format). Columns are named on both sides, so the column
//   order of the two schemas need not agree; a source column that the target lacks is refused
//   (its data would be lost), a target column that the source lacks keeps its default.
// - A table of at least kRebuildIndexesFrom rows has its secondary indexes (those that back no
//   constraint) dropped before its COPY and created again from their definitions after it, in
//   the same transaction: one sort per index instead of a million insertions (1M evaluation
//   rows: about 3x faster).
// - schema_version is not copied: each database keeps its own migrations.
//
// Not done: resuming a failed copy (it is all or nothing; run it again on the empty target).
#include "mailreport/store/migrate.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "mailreport/config/config.hpp"
#include "mailreport/store/sqlite_store.hpp"
#include "store/pg_db.hpp"
#include "store/pg_handles.hpp"
#include "store/sqlite_db.hpp"

namespace mailreport::store {

namespace {

constexpr std::size_t kCopyBuffer = 1 << 20;  // bytes handed to PQputCopyData at once
// Tables with at least this many rows get their secondary indexes built after the copy.
constexpr std::int64_t kRebuildIndexesFrom = 100000;

struct StmtDeleter {
  void operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }
};
using sql::PgConnPtr;
using sql::PgResultPtr;
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtDeleter>;

std::string trimmed(std::string msg) {
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  return msg;
}

Error pg_error(PGconn* c, std::string_view what) {
  return make_error(ErrorCode::Store,
                    "postgresql: " + std::string(what) + ": " + trimmed(PQerrorMessage(c)));
}

Error pg_error(PGconn* c, const PGresult* r, std::string_view what) {
  const char* m = r != nullptr ? PQresultErrorMessage(r) : "";
  if (m == nullptr || *m == '\0') return pg_error(c, what);
  return make_error(ErrorCode::Store, "postgresql: " + std::string(what) + ": " + trimmed(m));
}

std::string quote_ident(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// A libpq connection of our own, for COPY.
class CopyConnection {
 public:
  static Result<CopyConnection> connect(const std::string& url) {
    PgConnPtr conn(PQconnectdb(url.c_str()));
    if (!conn) return make_error(ErrorCode::Store, "postgresql: out of memory");
    if (PQstatus(conn.get()) != CONNECTION_OK) return pg_error(conn.get(), "cannot connect");
    PQsetNoticeProcessor(
        conn.get(), [](void*, const char*) {}, nullptr);
    if (PQsetClientEncoding(conn.get(), "UTF8") != 0) {
      return pg_error(conn.get(), "cannot set the client encoding to UTF8");
    }
    return CopyConnection(std::move(conn));
  }

  // Runs a statement without parameters that returns no rows.
  Status exec(const std::string& sql) {
    PgResultPtr r(PQexec(conn_.get(), sql.c_str()));
    const auto st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      return pg_error(conn_.get(), r.get(), sql.substr(0, sql.find(' ', 16)));
    }
    return {};
  }

  // Runs a query with text parameters; the rows.
  Result<PgResultPtr> query(const std::string& sql, const std::vector<std::string>& params) {
    std::vector<const char*> values;
    for (const auto& p : params) values.push_back(p.c_str());
    PgResultPtr r(PQexecParams(conn_.get(), sql.c_str(), static_cast<int>(values.size()), nullptr,
                               values.data(), nullptr, nullptr, 0));
    if (!r || PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
      return pg_error(conn_.get(), r.get(), "query");
    }
    return r;
  }

  PGconn* get() const noexcept { return conn_.get(); }

 private:
  explicit CopyConnection(PgConnPtr c) : conn_(std::move(c)) {}
  PgConnPtr conn_;
};

struct Column {
  std::string name;
  bool bytea = false;
  bool identity = false;
};

// The target table's columns in their order.
Result<std::vector<Column>> target_columns(CopyConnection& pg, const std::string& table) {
  auto r = pg.query(
      "SELECT column_name, data_type, is_identity FROM information_schema.columns "
      "WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
      {table});
  if (!r) return std::move(r).error();
  std::vector<Column> cols;
  for (int i = 0; i < PQntuples(r->get()); ++i) {
    cols.push_back({PQgetvalue(r->get(), i, 0),
                    std::string_view(PQgetvalue(r->get(), i, 1)) == "bytea",
                    std::string_view(PQgetvalue(r->get(), i, 2)) == "YES"});
  }
  if (cols.empty()) {
    return make_error(ErrorCode::Store, "postgresql: table " + table + " does not exist");
  }
  return cols;
}

Error sqlite_error(sqlite3* db, std::string_view what) {
  return make_error(ErrorCode::Store,
                    "sqlite: " + std::string(what) + ": " + std::string(sqlite3_errmsg(db)));
}

Result<StmtPtr> prepare(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), static_cast<int>(sql.size()), &raw, nullptr) !=
      SQLITE_OK) {
    return sqlite_error(db, sql);
  }
  return StmtPtr(raw);
}

Result<std::set<std::string>> source_tables(sqlite3* db) {
  auto stmt = prepare(
      db, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'");
  if (!stmt) return std::move(stmt).error();
  std::set<std::string> names;
  int rc = 0;
  while ((rc = sqlite3_step(stmt->get())) == SQLITE_ROW) {
    names.emplace(reinterpret_cast<const char*>(sqlite3_column_text(stmt->get(), 0)));
  }
  if (rc != SQLITE_DONE) return sqlite_error(db, "listing the tables");
  return names;
}

Result<std::set<std::string>> source_columns(sqlite3* db, const std::string& table) {
  auto stmt = prepare(db, "PRAGMA table_info(" + quote_ident(table) + ")");
  if (!stmt) return std::move(stmt).error();
  std::set<std::string> names;
  int rc = 0;
  while ((rc = sqlite3_step(stmt->get())) == SQLITE_ROW) {
    names.emplace(reinterpret_cast<const char*>(sqlite3_column_text(stmt->get(), 1)));
  }
  if (rc != SQLITE_DONE) return sqlite_error(db, "columns of " + table);
  return names;
}

// COPY text format (PostgreSQL manual, COPY, "Text Format").
void append_escaped(std::string& out, const unsigned char* p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    const char c = static_cast<char>(p[i]);
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      default: out += c;
    }
  }
}

// bytea's hex format, \x..., its backslash doubled for the text format.
void append_bytea(std::string& out, const unsigned char* p, std::size_t n) {
  static constexpr std::array<char, 16> kHex = {'0', '1', '2', '3', '4', '5', '6', '7',
                                                '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};
  out += "\\\\x";
  const std::size_t at = out.size();
  out.resize(at + 2 * n);
  char* w = out.data() + at;
  for (std::size_t i = 0; i < n; ++i) {
    *w++ = kHex[p[i] >> 4];
    *w++ = kHex[p[i] & 0x0f];
  }
}

template <class T>
void append_number(std::string& out, T v) {
  std::array<char, 64> buf{};
  auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  out.append(buf.data(), end);
}

class Migration {
 public:
  Migration(sqlite3* src, CopyConnection& pg, const MigrateOptions& options)
      : src_(src), pg_(pg), options_(options) {}

  Result<MigrateResult> run() {
    const auto& tables = sql::pg_tables_in_copy_order();
    auto in_source = source_tables(src_);
    if (!in_source) return std::move(in_source).error();
    for (const auto& name : *in_source) {
      if (std::find(tables.begin(), tables.end(), name) == tables.end()) {
        return make_error(ErrorCode::Invalid, "the SQLite store has a table " + name +
                                                  " that the PostgreSQL schema lacks (a newer "
                                                  "store than this build?)");
      }
    }
    std::vector<std::string> copied;  // the tables copied, in order (no schema_version)
    for (const auto& t : tables) {
      if (t != "schema_version") copied.push_back(t);
    }

    if (auto st = pg_.exec("BEGIN"); !st) return std::move(st).error();
    // EXCLUSIVE: readers may go on, writers (a node started too early, another migrate) wait
    // until the copy commits — and a second migrate then finds data and stops.
    std::string lock = "LOCK TABLE ";
    for (std::size_t i = 0; i < copied.size(); ++i) {
      lock += (i ? ", " : "") + quote_ident(copied[i]);
    }
    if (auto st = pg_.exec(lock + " IN EXCLUSIVE MODE"); !st) return std::move(st).error();
    for (const auto& t : copied) {
      auto r = pg_.query("SELECT EXISTS (SELECT 1 FROM " + quote_ident(t) + ")", {});
      if (!r) return std::move(r).error();
      if (std::string_view(PQgetvalue(r->get(), 0, 0)) == "t") {
        return make_error(ErrorCode::Invalid,
                          "the PostgreSQL database already holds data (table " + t +
                              " has rows): migrate copies into an empty store only, it does not "
                              "merge two stores");
      }
    }

    MigrateResult result;
    for (const auto& t : copied) {
      std::uint64_t rows = 0;
      if (in_source->count(t) != 0) {
        auto n = copy_table(t);
        if (!n) return std::move(n).error();
        rows = *n;
      }
      result.tables.emplace_back(t, rows);
      result.rows += rows;
      if (options_.progress) options_.progress(t, rows);
    }
    for (const auto& t : copied) {
      if (auto st = advance_sequences(t); !st) return std::move(st).error();
    }
    if (auto st = pg_.exec("COMMIT"); !st) return std::move(st).error();
    return result;
  }

 private:
  Result<std::uint64_t> copy_table(const std::string& table) {
    auto target = target_columns(pg_, table);
    if (!target) return std::move(target).error();
    auto source = source_columns(src_, table);
    if (!source) return std::move(source).error();
    std::vector<Column> cols;
    for (const Column& c : *target) {
      if (source->count(c.name) != 0) cols.push_back(c);
    }
    for (const auto& name : *source) {
      if (std::none_of(cols.begin(), cols.end(), [&](const Column& c) { return c.name == name; })) {
        return make_error(ErrorCode::Invalid, "the SQLite column " + table + "." + name +
                                                  " has no counterpart in PostgreSQL");
      }
    }
    std::string names;
    for (const Column& c : cols) names += (names.empty() ? "" : ", ") + quote_ident(c.name);
    auto stmt = prepare(src_, "SELECT " + names + " FROM " + quote_ident(table));
    if (!stmt) return std::move(stmt).error();

    // A large table's secondary indexes are built once after the copy instead of row by row
    // (PostgreSQL manual §14.4.3: "Remove Indexes"), from their own definitions.
    std::vector<std::string> rebuild;
    auto many = count_source_rows(table);
    if (!many) return std::move(many).error();
    if (*many >= kRebuildIndexesFrom) {
      auto defs = pg_.query(
          "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = "
          "current_schema() AND i.tablename = $1 AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
          "WHERE c.conindid = (quote_ident(i.schemaname) || '.' || "
          "quote_ident(i.indexname))::regclass)",
          {table});
      if (!defs) return std::move(defs).error();
      for (int i = 0; i < PQntuples(defs->get()); ++i) {
        if (auto st = pg_.exec("DROP INDEX " + quote_ident(PQgetvalue(defs->get(), i, 0))); !st) {
          return std::move(st).error();
        }
        rebuild.emplace_back(PQgetvalue(defs->get(), i, 1));
      }
    }

    PgResultPtr started(
        PQexec(pg_.get(), ("COPY " + quote_ident(table) + " (" + names + ") FROM STDIN").c_str()));
    if (!started || PQresultStatus(started.get()) != PGRES_COPY_IN) {
      return pg_error(pg_.get(), started.get(), "COPY " + table);
    }
    started.reset();

    std::string buf;
    buf.reserve(kCopyBuffer + (64 << 10));
    std::uint64_t rows = 0;
    sqlite3_stmt* s = stmt->get();
    const int ncols = static_cast<int>(cols.size());
    int rc = 0;
    std::optional<Error> failed;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      for (int i = 0; i < ncols; ++i) {
        if (i != 0) buf += '\t';
        switch (sqlite3_column_type(s, i)) {
          case SQLITE_NULL: buf += "\\N"; break;
          case SQLITE_INTEGER: append_number(buf, sqlite3_column_int64(s, i)); break;
          case SQLITE_FLOAT: append_number(buf, sqlite3_column_double(s, i)); break;
          case SQLITE_BLOB: {
            const auto* p = static_cast<const unsigned char*>(sqlite3_column_blob(s, i));
            const auto n = static_cast<std::size_t>(sqlite3_column_bytes(s, i));
            cols[static_cast<std::size_t>(i)].bytea ? append_bytea(buf, p, n)
                                                    : append_escaped(buf, p, n);
            break;
          }
          default: {  // SQLITE_TEXT
            const auto* p = sqlite3_column_text(s, i);
            const auto n = static_cast<std::size_t>(sqlite3_column_bytes(s, i));
            cols[static_cast<std::size_t>(i)].bytea ? append_bytea(buf, p, n)
                                                    : append_escaped(buf, p, n);
          }
        }
      }
      buf += '\n';
      ++rows;
      if (buf.size() >= kCopyBuffer) {
        if (PQputCopyData(pg_.get(), buf.data(), static_cast<int>(buf.size())) != 1) {
          failed = pg_error(pg_.get(), "COPY " + table);
          break;
        }
        buf.clear();
      }
    }
    if (!failed && rc != SQLITE_DONE) failed = sqlite_error(src_, "reading " + table);
    if (!failed && !buf.empty() &&
        PQputCopyData(pg_.get(), buf.data(), static_cast<int>(buf.size())) != 1) {
      failed = pg_error(pg_.get(), "COPY " + table);
    }
    // Ends the COPY either way; a message makes the server fail it (and the transaction).
    const std::string reason = failed ? failed->message : std::string();
    if (PQputCopyEnd(pg_.get(), failed ? reason.c_str() : nullptr) != 1 && !failed) {
      failed = pg_error(pg_.get(), "COPY " + table);
    }
    for (PgResultPtr r(PQgetResult(pg_.get())); r; r.reset(PQgetResult(pg_.get()))) {
      if (PQresultStatus(r.get()) != PGRES_COMMAND_OK && !failed) {
        failed = pg_error(pg_.get(), r.get(), "COPY " + table);
      }
    }
    if (failed) return std::move(*failed);
    for (const auto& def : rebuild) {
      if (auto st = pg_.exec(def); !st) return std::move(st).error();
    }
    return rows;
  }

  Result<std::int64_t> count_source_rows(const std::string& table) {
    auto stmt = prepare(src_, "SELECT count(*) FROM " + quote_ident(table));
    if (!stmt) return std::move(stmt).error();
    if (sqlite3_step(stmt->get()) != SQLITE_ROW) return sqlite_error(src_, "counting " + table);
    return sqlite3_column_int64(stmt->get(), 0);
  }

  // The next id a store insert takes must follow the copied ones.
  Status advance_sequences(const std::string& table) {
    auto cols = target_columns(pg_, table);
    if (!cols) return std::move(cols).error();
    for (const Column& c : *cols) {
      if (!c.identity) continue;
      auto r = pg_.query("SELECT setval(pg_get_serial_sequence($1, $2), max(" +
                             quote_ident(c.name) + ")) FROM " + quote_ident(table) +
                             " HAVING max(" + quote_ident(c.name) + ") IS NOT NULL",
                         {quote_ident(table), c.name});
      if (!r) return std::move(r).error();
    }
    return {};
  }

  sqlite3* src_;
  CopyConnection& pg_;
  const MigrateOptions& options_;
};

}  // namespace

Result<MigrateResult> migrate_sqlite_to_postgres(const MigrateOptions& options) {
  const std::string target = config::mask_url_password(options.postgres_url);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(options.sqlite_path, ec)) {
    return make_error(ErrorCode::NotFound, "no SQLite store at " + options.sqlite_path.string());
  }
  // The source at this build's newest schema (open_sqlite_store migrates it).
  {
    SqliteOptions so;
    so.path = options.sqlite_path;
    auto opened = open_sqlite_store(so);
    if (!opened) {
      Error e = std::move(opened).error();
      e.message = options.sqlite_path.string() + ": " + e.message;
      return e;
    }
  }
  auto src = sql::SqliteConnection::open(options.sqlite_path, SQLITE_OPEN_READONLY);
  if (!src) return std::move(src).error();
  sqlite3_busy_timeout((*src)->get(), 10000);
  // One snapshot of the whole source (WAL: writers may go on meanwhile).
  if (auto st = (*src)->exec("BEGIN"); !st) return std::move(st).error();

  // The target at this build's newest schema (its own transactions, before the copy's).
  {
    auto schema = sql::PgConnection::connect(options.postgres_url);
    if (!schema) {
      Error e = std::move(schema).error();
      e.message = target + ": " + e.message;
      return e;
    }
    if (auto st = sql::migrate_pg(**schema); !st) {
      Error e = std::move(st).error();
      e.message = target + ": " + e.message;
      return e;
    }
  }
  auto pg = CopyConnection::connect(options.postgres_url);
  if (!pg) {
    Error e = std::move(pg).error();
    e.message = target + ": " + e.message;
    return e;
  }
  // On failure the connection closes with its transaction open: the server rolls it back.
  auto result = Migration((*src)->get(), *pg, options).run();
  (void)(*src)->exec("COMMIT");
  return result;
}

}  // namespace mailreport::store

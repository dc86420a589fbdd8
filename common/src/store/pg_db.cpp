// The PostgreSQL backend of the store's SQL layer (see pg_db.hpp), over libpq's synchronous
// API: one PGconn per PgConnection, statements prepared once per connection under generated
// names, parameters sent as text (blobs as binary bytea), results read in text format.
//
// - ?N parameters (SQLite's form, which the store writes) become $N, and a bare ? the next
//   number, outside '...' literals, "..." identifiers and comments; dollar-quoted strings and
//   E'...' escapes are not recognised (the store writes neither in a prepared statement).
// - Unbound parameters are sent as NULL (as SQLite reads them).
// - changes() follows SQLite: it is set by INSERT, UPDATE, DELETE and MERGE (with or without
//   RETURNING), not by a SELECT.
// - A cursor statement (query_cursor) outside a transaction block runs as a plain query (a
//   cursor without WITH HOLD only lives inside one).
// - As in any PostgreSQL transaction, a failed statement (a failed prepare too) aborts the
//   transaction it ran in: the caller rolls back.
//
// Not done: asynchronous or pipelined execution; binary result format.
#include "store/pg_db.hpp"
#include "store/pg_handles.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <initializer_list>
#include <utility>
#include <vector>

namespace mailreport::store::sql {

namespace {

using ConnPtr = PgConnPtr;
using ResultPtr = PgResultPtr;

constexpr Oid kByteaOid = 17;  // pg_type.oid of bytea (catalog/pg_type.dat)

// SQL text with ?N / ? rewritten to $N, and the number of parameters it takes.
struct Rewritten {
  std::string sql;
  int params = 0;
  // Per parameter: 0 (the server infers the type from where it is used), or text for a number
  // the statement skips (a list query leaves out the conditions of unset filters, and
  // PostgreSQL cannot type a parameter it never sees).
  std::vector<Oid> types;
};

constexpr Oid kTextOid = 25;  // pg_type.oid of text

// Fills `types` once the parameters are known: text for the numbers never referenced.
void type_unreferenced(Rewritten& rw, const std::vector<bool>& used) {
  rw.types.assign(static_cast<std::size_t>(rw.params), 0);
  for (int n = 1; n <= rw.params; ++n) {
    if (static_cast<std::size_t>(n) >= used.size() || !used[static_cast<std::size_t>(n)]) {
      rw.types[static_cast<std::size_t>(n - 1)] = kTextOid;
    }
  }
}

bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

Rewritten rewrite_placeholders(std::string_view in) {
  Rewritten out;
  std::vector<bool> used;
  auto mark = [&used](int n) {
    if (static_cast<std::size_t>(n) >= used.size()) used.resize(static_cast<std::size_t>(n) + 1);
    used[static_cast<std::size_t>(n)] = true;
  };
  out.sql.reserve(in.size() + 8);
  std::size_t i = 0;
  auto copy_until = [&](std::string_view end) {  // copies through the end marker (or the end)
    std::size_t e = in.find(end, i);
    e = e == std::string_view::npos ? in.size() : e + end.size();
    out.sql.append(in.substr(i, e - i));
    i = e;
  };
  auto read_number = [&](std::size_t from, std::size_t* to) {
    int n = 0;
    std::size_t j = from;
    while (j < in.size() && is_digit(in[j])) {
      if (n < 1000000) n = n * 10 + (in[j] - '0');
      ++j;
    }
    *to = j;
    return n;
  };
  while (i < in.size()) {
    char c = in[i];
    if (c == '\'' || c == '"') {
      // A doubled quote inside is two adjacent quoted runs: copying run by run is the same.
      ++i;
      out.sql.push_back(c);
      copy_until(std::string_view(&c, 1));
    } else if (c == '-' && i + 1 < in.size() && in[i + 1] == '-') {
      copy_until("\n");
    } else if (c == '/' && i + 1 < in.size() && in[i + 1] == '*') {
      copy_until("*/");
    } else if (c == '?') {
      std::size_t end = 0;
      int n = read_number(i + 1, &end);
      if (end == i + 1) n = out.params + 1;  // a bare ?: the next number, as in SQLite
      out.params = std::max(out.params, n);
      mark(n);
      out.sql.push_back('$');
      out.sql.append(std::to_string(n));
      i = end;
    } else if (c == '$' && i + 1 < in.size() && is_digit(in[i + 1])) {
      std::size_t end = 0;
      const int n = read_number(i + 1, &end);
      out.params = std::max(out.params, n);
      mark(n);
      out.sql.append(in.substr(i, end - i));
      i = end;
    } else {
      out.sql.push_back(c);
      ++i;
    }
  }
  type_unreferenced(out, used);
  return out;
}

std::string first_line(std::string_view sql) {
  while (!sql.empty() && (sql.front() == '\n' || sql.front() == ' ')) sql.remove_prefix(1);
  std::string w(sql.substr(0, sql.find('\n')));
  if (w.size() > 80) w = w.substr(0, 80) + "...";
  return w;
}

// The error classes of pg_db.hpp, by SQLSTATE (PostgreSQL's manual, Appendix A).
ErrorClass classify(const char* sqlstate) noexcept {
  if (sqlstate == nullptr || std::strlen(sqlstate) != 5) return ErrorClass::Other;
  std::string_view s(sqlstate, 5);
  if (s == "23505") return ErrorClass::Unique;
  if (s.substr(0, 2) == "23" || s.substr(0, 2) == "22") return ErrorClass::Data;
  if (s == "40001" || s == "40P01" || s == "55P03") return ErrorClass::Transient;
  return ErrorClass::Other;
}

class PgStatement;

class PgConnectionImpl final : public PgConnection {
 public:
  explicit PgConnectionImpl(ConnPtr conn) : conn_(std::move(conn)) {}
  ~PgConnectionImpl() override { clear_statements(); }

  Dialect dialect() const noexcept override { return Dialect::Postgres; }
  Status exec(std::string_view sql) override;
  std::int64_t changes() const noexcept override { return changes_; }
  std::string_view begin_write_sql() const noexcept override { return "BEGIN"; }
  std::string_view begin_read_sql() const noexcept override {
    return "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";
  }
  bool broken() const noexcept override { return PQstatus(conn_.get()) == CONNECTION_BAD; }

  PGconn* get() const noexcept { return conn_.get(); }

  // Checks a result: nullopt when it is `ok`, else the error (class recorded), naming `sql`.
  std::optional<Error> check(const PGresult* res, std::string_view sql,
                             std::initializer_list<ExecStatusType> ok);
  Error fail(ErrorClass cls, std::string message, std::string_view sql);
  // Records the rows a command changed, SQLite-like (see the file's comment).
  void note_command(const PGresult* res) noexcept;
  std::string next_name(char kind) { return std::string("mr_") + kind + std::to_string(++names_); }

 protected:
  Result<std::unique_ptr<Statement>> prepare(const std::string& sql) override;
  Result<std::unique_ptr<Statement>> prepare_cursor(const std::string& sql) override;

 private:
  ConnPtr conn_;
  std::int64_t changes_ = 0;
  std::uint64_t names_ = 0;
};

Error PgConnectionImpl::fail(ErrorClass cls, std::string message, std::string_view sql) {
  set_last_error(cls);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
    message.pop_back();
  }
  std::string what = first_line(sql);
  return make_error(ErrorCode::Store,
                    "postgresql: " + message + (what.empty() ? "" : " (" + what + ")"));
}

std::optional<Error> PgConnectionImpl::check(const PGresult* res, std::string_view sql,
                                             std::initializer_list<ExecStatusType> ok) {
  if (res == nullptr) return fail(ErrorClass::Other, PQerrorMessage(conn_.get()), sql);
  ExecStatusType st = PQresultStatus(res);
  if (std::find(ok.begin(), ok.end(), st) != ok.end()) return std::nullopt;
  const char* primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
  std::string msg = primary != nullptr ? primary : PQresultErrorMessage(res);
  if (msg.empty()) msg = PQerrorMessage(conn_.get());
  if (msg.empty()) msg = PQresStatus(st);
  ErrorClass cls = classify(PQresultErrorField(res, PG_DIAG_SQLSTATE));
  // A lost connection is never the data's fault.
  if (broken()) cls = ErrorClass::Other;
  return fail(cls, std::move(msg), sql);
}

void PgConnectionImpl::note_command(const PGresult* res) noexcept {
  std::string_view tag = PQcmdStatus(const_cast<PGresult*>(res));
  for (std::string_view verb : {"INSERT", "UPDATE", "DELETE", "MERGE"}) {
    if (tag.substr(0, verb.size()) == verb) {
      std::string_view n = PQcmdTuples(const_cast<PGresult*>(res));
      std::int64_t v = 0;
      std::from_chars(n.data(), n.data() + n.size(), v);
      changes_ = v;
      return;
    }
  }
}

Status PgConnectionImpl::exec(std::string_view sql) {
  std::string text(sql);
  ResultPtr res(PQexec(conn_.get(), text.c_str()));
  if (auto e = check(res.get(), sql, {PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY})) {
    return std::move(*e);
  }
  note_command(res.get());
  return {};
}

// Bound parameters and the current result of one statement.
class PgStatement : public Statement {
 public:
  PgStatement(PgConnectionImpl& conn, std::string sql, int params)
      : conn_(&conn), sql_(std::move(sql)), values_(static_cast<std::size_t>(params)) {}

  void bind_text(int i, std::string_view v) override {
    // A text parameter travels as a C string: a NUL byte would silently cut it.
    if (v.find('\0') != std::string_view::npos) {
      bind_error_ = "text parameter " + std::to_string(i) + " holds a NUL byte";
      bind_error_class_ = ErrorClass::Data;
      return;
    }
    if (Param* p = param(i)) *p = Param{std::string(v), false, 0};
  }
  void bind_blob(int i, std::string_view v) override {
    if (Param* p = param(i)) *p = Param{std::string(v), false, 1};
  }
  void bind_i64(int i, std::int64_t v) override {
    if (Param* p = param(i)) *p = Param{std::to_string(v), false, 0};
  }
  void bind_null(int i) override {
    if (Param* p = param(i)) *p = Param{};
  }

  Result<bool> step() override {
    if (!bind_error_.empty()) return conn_->fail(bind_error_class_, bind_error_, sql_);
    if (!executed_) {
      auto st = execute();
      if (!st) return std::move(st).error();
      executed_ = true;
    }
    clear_row_buffers();
    if (row_ + 1 < rows_) {
      ++row_;
      return true;
    }
    auto more = next_batch();
    if (!more) return std::move(more).error();
    if (!*more) {
      row_ = rows_;
      return false;
    }
    row_ = 0;
    return true;
  }

  void reset() noexcept override {
    finish();
    executed_ = false;
    result_.reset();
    rows_ = 0;
    row_ = -1;
    clear_row_buffers();
    for (auto& p : values_) p = Param{};
    bind_error_.clear();
  }

  bool is_null(int col) const noexcept override {
    if (!valid(col)) return true;
    return PQgetisnull(result_.get(), row_, col) != 0;
  }

  std::int64_t i64(int col) const noexcept override {
    if (!valid(col)) return 0;
    const char* s = PQgetvalue(result_.get(), row_, col);
    int len = PQgetlength(result_.get(), row_, col);
    if (len == 1 && (s[0] == 't' || s[0] == 'f')) return s[0] == 't' ? 1 : 0;  // boolean
    std::int64_t v = 0;
    // A numeric (sum() of bigint) is read up to its decimal point, if any.
    std::from_chars(s, s + len, v);
    return v;
  }

  std::string text(int col) const override {
    if (!valid(col)) return {};
    return std::string(PQgetvalue(result_.get(), row_, col),
                       static_cast<std::size_t>(PQgetlength(result_.get(), row_, col)));
  }

  std::string_view blob(int col) const noexcept override {
    if (!valid(col)) return {};
    const char* s = PQgetvalue(result_.get(), row_, col);
    auto len = static_cast<std::size_t>(PQgetlength(result_.get(), row_, col));
    if (PQftype(result_.get(), col) != kByteaOid || len < 2 || s[0] != '\\' || s[1] != 'x') {
      return {s, len};
    }
    // bytea's hex output format: \x then two hex digits per byte.
    if (blobs_.size() <= static_cast<std::size_t>(col))
      blobs_.resize(static_cast<std::size_t>(col) + 1);
    std::string& out = blobs_[static_cast<std::size_t>(col)];
    out.resize((len - 2) / 2);
    for (std::size_t k = 0; k < out.size(); ++k) {
      out[k] = static_cast<char>((hex(s[2 + 2 * k]) << 4) | hex(s[3 + 2 * k]));
    }
    return out;
  }

 protected:
  struct Param {
    std::string value;
    bool null = true;
    int format = 0;  // 0 text, 1 binary
  };

  // Runs the statement with the bound parameters; sets result_ and rows_.
  virtual Status execute() {
    Arrays a = arrays();
    ResultPtr res(PQexecPrepared(conn_->get(), name_.c_str(), static_cast<int>(values_.size()),
                                 a.values.data(), a.lengths.data(), a.formats.data(), 0));
    if (auto e = conn_->check(res.get(), sql_, {PGRES_COMMAND_OK, PGRES_TUPLES_OK})) {
      return std::move(*e);
    }
    conn_->note_command(res.get());
    take(std::move(res));
    return {};
  }
  // Fetches more rows once the current ones are read: true when some came.
  virtual Result<bool> next_batch() { return false; }
  // Ends the execution (a cursor closes), called by reset().
  virtual void finish() noexcept {}

  struct Arrays {
    std::vector<const char*> values;
    std::vector<int> lengths;
    std::vector<int> formats;
  };
  Arrays arrays() const {
    Arrays a;
    for (const auto& p : values_) {
      a.values.push_back(p.null ? nullptr : p.value.c_str());
      a.lengths.push_back(static_cast<int>(p.value.size()));
      a.formats.push_back(p.format);
    }
    return a;
  }
  void take(ResultPtr res) noexcept {
    result_ = std::move(res);
    rows_ = PQntuples(result_.get());
    row_ = -1;
  }

  PgConnectionImpl* conn_;
  std::string sql_;  // as the caller wrote it (for messages)
  std::string name_;
  std::vector<Param> values_;
  bool executed_ = false;
  ResultPtr result_;
  int rows_ = 0;
  int row_ = -1;

 private:
  friend class PgConnectionImpl;

  Param* param(int i) {
    if (i < 1 || static_cast<std::size_t>(i) > values_.size()) {
      bind_error_ = "no parameter " + std::to_string(i);
      bind_error_class_ = ErrorClass::Other;
      return nullptr;
    }
    return &values_[static_cast<std::size_t>(i) - 1];
  }
  bool valid(int col) const noexcept {
    return result_ && row_ >= 0 && row_ < rows_ && col >= 0 && col < PQnfields(result_.get());
  }
  void clear_row_buffers() noexcept {
    for (auto& b : blobs_) b.clear();
  }
  static int hex(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return 0;
  }

  mutable std::vector<std::string> blobs_;  // decoded bytea, per column, until the next step
  std::string bind_error_;
  ErrorClass bind_error_class_ = ErrorClass::Other;
};

// A statement run as a server-side cursor: DECLARE on the first step, FETCH FORWARD as the
// rows run out, CLOSE when done or reset.
class PgCursorStatement final : public PgStatement {
 public:
  PgCursorStatement(PgConnectionImpl& conn, std::string sql, std::string rewritten, int params,
                    std::vector<Oid> types)
      : PgStatement(conn, std::move(sql), params),
        rewritten_(std::move(rewritten)),
        types_(std::move(types)) {
    name_ = conn.next_name('c');
    declare_ = "DECLARE " + name_ + " NO SCROLL CURSOR FOR " + rewritten_;
    fetch_ = "FETCH FORWARD " + std::to_string(kCursorBatch) + " FROM " + name_;
    close_ = "CLOSE " + name_;
  }

 protected:
  Status execute() override {
    Arrays a = arrays();
    PGconn* c = conn_->get();
    // Outside a transaction block a cursor cannot live: run the query whole.
    bool in_block = PQtransactionStatus(c) != PQTRANS_IDLE;
    const std::string& sql = in_block ? declare_ : rewritten_;
    ResultPtr res(PQexecParams(c, sql.c_str(), static_cast<int>(values_.size()),
                               types_.empty() ? nullptr : types_.data(), a.values.data(),
                               a.lengths.data(), a.formats.data(), 0));
    if (auto e = conn_->check(res.get(), sql_, {PGRES_COMMAND_OK, PGRES_TUPLES_OK})) {
      return std::move(*e);
    }
    if (!in_block) {
      take(std::move(res));
      return {};
    }
    open_ = true;
    exhausted_ = false;
    rows_ = 0;  // the first batch comes from next_batch()
    return {};
  }

  Result<bool> next_batch() override {
    if (!open_ || exhausted_) return false;
    ResultPtr res(PQexec(conn_->get(), fetch_.c_str()));
    if (auto e = conn_->check(res.get(), sql_, {PGRES_TUPLES_OK})) return std::move(*e);
    take(std::move(res));
    if (rows_ < kCursorBatch) {
      // The last batch: the cursor has nothing more, close it now (its name is free again).
      exhausted_ = true;
      close();
    }
    return rows_ > 0;
  }

  void finish() noexcept override {
    if (open_) close();
    open_ = false;
  }

 private:
  // CLOSE, when the transaction that declared the cursor may still hold it. An aborted
  // transaction refuses every command (its rollback drops the cursor); an ended one dropped it.
  void close() noexcept {
    open_ = false;
    PGconn* c = conn_->get();
    if (PQtransactionStatus(c) != PQTRANS_INTRANS) return;
    if (!exhausted_) {
      // Stopped early: the caller may have ended the declaring transaction and begun another
      // since, where CLOSE of an unknown cursor would abort it. Look before closing.
      const char* values[] = {name_.c_str()};
      ResultPtr look(PQexecParams(c, "SELECT 1 FROM pg_cursors WHERE name = $1", 1, nullptr, values,
                                  nullptr, nullptr, 0));
      if (PQresultStatus(look.get()) != PGRES_TUPLES_OK || PQntuples(look.get()) == 0) return;
    }
    ResultPtr res(PQexec(c, close_.c_str()));
  }

  std::string rewritten_;
  std::vector<Oid> types_;
  std::string declare_;
  std::string fetch_;
  std::string close_;
  bool open_ = false;
  bool exhausted_ = false;
};

Result<std::unique_ptr<Statement>> PgConnectionImpl::prepare(const std::string& sql) {
  Rewritten rw = rewrite_placeholders(sql);
  auto stmt = std::make_unique<PgStatement>(*this, sql, rw.params);
  stmt->name_ = next_name('s');
  ResultPtr res(PQprepare(conn_.get(), stmt->name_.c_str(), rw.sql.c_str(), rw.params,
                          rw.types.empty() ? nullptr : rw.types.data()));
  if (auto e = check(res.get(), sql, {PGRES_COMMAND_OK})) return std::move(*e);
  return std::unique_ptr<Statement>(std::move(stmt));
}

Result<std::unique_ptr<Statement>> PgConnectionImpl::prepare_cursor(const std::string& sql) {
  Rewritten rw = rewrite_placeholders(sql);
  return std::unique_ptr<Statement>(std::make_unique<PgCursorStatement>(
      *this, sql, std::move(rw.sql), rw.params, std::move(rw.types)));
}

}  // namespace

PgConnection::~PgConnection() = default;

Result<std::unique_ptr<PgConnection>> PgConnection::connect(const std::string& url) {
  ConnPtr conn(PQconnectdb(url.c_str()));
  if (!conn) return make_error(ErrorCode::Store, "postgresql: out of memory");
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    // libpq's messages name the host and the server's complaint, never the password.
    std::string msg = PQerrorMessage(conn.get());
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    return make_error(ErrorCode::Store, "postgresql: cannot connect: " + msg);
  }
  // Notices (an IF NOT EXISTS that found its table, ...) are not the store's output.
  PQsetNoticeProcessor(
      conn.get(), [](void*, const char*) {}, nullptr);
  PQsetErrorVerbosity(conn.get(), PQERRORS_TERSE);
  if (PQsetClientEncoding(conn.get(), "UTF8") != 0) {
    return make_error(ErrorCode::Store, "postgresql: cannot set the client encoding to UTF8");
  }
  return std::unique_ptr<PgConnection>(new PgConnectionImpl(std::move(conn)));
}

}  // namespace mailreport::store::sql

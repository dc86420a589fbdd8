// SqlStore: aggregate reports we send (issue 5; schema migration 5, tables
// aggregate_watermarks and aggregate_reports, the `reported` columns of evaluations, tls_counts
// and tls_count_failures; see "aggregate reports we send" in mailreport/store/store.hpp).
//
// Exactly once: a builder walks the unreported counts from one read snapshot and commits, in
// one write transaction, the reports it built (RFC 7489 §7.2 / RFC 9990 §3, RFC 8460 §4), their
// outbox entries and the counts it read as the new `reported` values, compare-and-set against
// the values it read: a second builder that read the same rows fails with Conflict and changes
// nothing. The kind's watermark moves in the batch that finishes an interval, compared first
// when the builder says what it expects.
//
// The walks call back into a builder that commits batches on this same store while walking:
// - a file store walks on a private read-only connection opened for the walk, inside one read
//   transaction (a WAL snapshot), stepping the rows as it hands them over (memory stays
//   bounded by SQLite's per-policy-domain sort, never the whole table); the callback may call
//   any store method meanwhile;
// - a ":memory:" store has one connection, guarded by the writer's mutex, which the callback's
//   commit needs: the walk reads every row first, releases the lock, then calls back (such a
//   store is for tests; its rows are in memory anyway);
// - PostgreSQL walks on a pooled connection in a REPEATABLE READ transaction, through a
//   server-side cursor fetched in batches; the callback's commits take other connections.
// In PostgreSQL, batch commits of one kind are serialised by a transaction advisory lock, so
// that the watermark compared is the one the commit replaces; the reported counts are
// compare-and-set either way (a row another builder marked meanwhile makes the UPDATE match
// nothing: Conflict). A deadlock with a concurrent evaluation batch is retried.
//
// Not done: deleting old reports (they are the record of what was sent).
#include "store/sql_aggregate.hpp"

#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include "mailreport/store/aggregate_payload.hpp"
#include "store/pg_db.hpp"
#include "store/report_keys.hpp"
#include "store/sql_store_impl.hpp"

namespace mailreport::store::sql {

namespace {

// Runs `read` on a snapshot and hands its rows to `fn` (false stops), so that `fn` may commit
// to the store meanwhile (see the file comment).
template <class Row>
Status walk_snapshot(
    ConnectionSource& source,
    const std::function<Status(Connection&, const std::function<bool(Row&&)>&)>& read,
    const std::function<bool(const Row&)>& fn) {
  bool buffered = false;
  auto lease = source.walker(buffered);
  if (!lease) return std::move(lease).error();
  if (buffered) {
    std::vector<Row> rows;
    auto st = read(**lease, [&rows](Row&& r) {
      rows.push_back(std::move(r));
      return true;
    });
    *lease = Lease();
    if (!st) return st;
    for (const Row& r : rows) {
      if (!fn(r)) break;
    }
    return {};
  }
  Connection& db = **lease;
  // One read transaction: every SELECT of the walk sees the same committed state.
  if (auto st = db.exec(db.begin_read_sql()); !st) return st;
  auto st = read(db, [&fn](Row&& r) { return fn(r); });
  (void)db.exec(st ? "COMMIT" : "ROLLBACK");
  return st;
}

Result<std::optional<std::int64_t>> read_watermark(Connection& db, std::string_view kind) {
  auto q = db.query("SELECT end_at FROM aggregate_watermarks WHERE kind = ?1");
  if (!q) return std::move(q).error();
  q->bind(1, kind);
  auto row = q->step();
  if (!row) return std::move(row).error();
  if (!*row) return std::optional<std::int64_t>{};
  return std::optional<std::int64_t>{q->i64(0)};
}

std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string describe(const std::optional<std::int64_t>& watermark) {
  return watermark ? std::to_string(*watermark) : std::string("none");
}

// The statements of ReportedCount::table: a compare-and-set of its reported values, and a
// read of the row to say why it did not apply.
struct CountSql {
  std::string what;
  std::string table;
  std::string count, reported, count2, reported2;
  std::string select;  // count, reported (, count2, reported2)
  bool two = false;
};

// Rows marked per statement: one UPDATE ... FROM (VALUES ...) per chunk rather than one per row
// (a day's DMARC build marks a million rows; on PostgreSQL each statement is a round trip).
constexpr std::size_t kMarkChunk = 256;

// The compare-and-set of `rows` rows of `sql`'s table in one statement: VALUES rows of (id, new
// reported, was[, new reported2, was2]) — named column1... in both SQLite and PostgreSQL.
std::string mark_sql(const CountSql& sql, std::size_t rows) {
  const int width = sql.two ? 5 : 3;
  std::string out = "UPDATE " + sql.table + " SET " + sql.reported + " = v.column2";
  if (sql.two) out += ", " + sql.reported2 + " = v.column4";
  out += " FROM (VALUES ";
  int n = 0;
  for (std::size_t r = 0; r < rows; ++r) {
    out += r == 0 ? "(" : ", (";
    for (int c = 0; c < width; ++c) {
      out += (c == 0 ? "CAST(?" : ", CAST(?") + std::to_string(++n) + " AS BIGINT)";
    }
    out += ")";
  }
  const std::string t = sql.table + ".";
  out += ") AS v WHERE " + t + "id = v.column1 AND " + t + sql.reported +
         " = v.column3 AND v.column2 <= " + t + sql.count + " AND v.column2 >= v.column3";
  if (sql.two) {
    out += " AND " + t + sql.reported2 + " = v.column5 AND v.column4 <= " + t + sql.count2 +
           " AND v.column4 >= v.column5";
  }
  return out;
}

CountSql count_sql(const char* table, const char* what, const char* count, const char* reported,
                   const char* count2 = nullptr, const char* reported2 = nullptr) {
  CountSql s;
  s.what = what;
  s.table = table;
  s.count = count;
  s.reported = reported;
  s.two = count2 != nullptr;
  std::string cols = std::string(count) + ", " + reported;
  if (s.two) {
    s.count2 = count2;
    s.reported2 = reported2;
    cols += std::string(", ") + count2 + ", " + reported2;
  }
  s.select = "SELECT " + cols + " FROM " + table + " WHERE id = ?1";
  return s;
}

const CountSql& sql_of(ReportedCount::Table t) {
  static const CountSql evaluation =
      count_sql("evaluations", "evaluation row", "count", "reported");
  static const CountSql policy = count_sql("tls_counts", "TLS policy count", "successful",
                                           "reported_successful", "failed", "reported_failed");
  static const CountSql failure =
      count_sql("tls_count_failures", "TLS failure count", "count", "reported");
  switch (t) {
    case ReportedCount::Table::Evaluation: return evaluation;
    case ReportedCount::Table::TlsPolicy: return policy;
    case ReportedCount::Table::TlsFailure: return failure;
  }
  return evaluation;
}

// Why one row's compare-and-set did not apply, or nothing when it did (its reported values are
// the new ones): Conflict when they are no longer what the builder read, Invalid when the new
// ones exceed what is recorded or go backwards, NotFound without the row.
Status explain_mark(Connection& db, const CountSql& sql, const ReportedCount& c) {
  // Read the row as it is.
  auto q = db.query(sql.select);
  if (!q) return std::move(q).error();
  auto row = q->bind(1, c.id).step();
  if (!row) return std::move(row).error();
  const std::string name = sql.what + " " + std::to_string(c.id);
  if (!*row) return make_error(ErrorCode::NotFound, "no " + name);
  const std::uint64_t count = q->u64(0), reported = q->u64(1);
  const std::uint64_t count2 = sql.two ? q->u64(2) : 0, reported2 = sql.two ? q->u64(3) : 0;
  if (reported == c.count && (!sql.two || reported2 == c.count2) && c.count <= count &&
      (!sql.two || c.count2 <= count2) && c.count >= c.was && (!sql.two || c.count2 >= c.was2)) {
    return {};  // applied (by our statement)
  }
  if (reported != c.was || (sql.two && reported2 != c.was2)) {
    return make_error(ErrorCode::Conflict, name + " was reported meanwhile (reported " +
                                               std::to_string(reported) + ", expected " +
                                               std::to_string(c.was) + ")");
  }
  if (c.count > count || (sql.two && c.count2 > count2)) {
    return make_error(ErrorCode::Invalid, name + ": reported count " + std::to_string(c.count) +
                                              " exceeds the recorded " + std::to_string(count));
  }
  return make_error(ErrorCode::Invalid, name + ": reported count goes backwards (" +
                                            std::to_string(c.was) + " to " +
                                            std::to_string(c.count) + ")");
}

// The compare-and-set of a batch's reported counts, a chunk of one table's rows per statement.
// A chunk that changes fewer rows than it holds is explained row by row (the transaction is
// rolled back by the caller either way).
Status mark_reported(Connection& db, const std::vector<ReportedCount>& counts) {
  for (auto table : {ReportedCount::Table::Evaluation, ReportedCount::Table::TlsPolicy,
                     ReportedCount::Table::TlsFailure}) {
    const CountSql& sql = sql_of(table);
    std::vector<const ReportedCount*> rows;
    for (const ReportedCount& c : counts) {
      if (c.table == table) rows.push_back(&c);
    }
    for (std::size_t at = 0; at < rows.size(); at += kMarkChunk) {
      const std::size_t n = std::min(kMarkChunk, rows.size() - at);
      {
        auto q = db.query(mark_sql(sql, n));
        if (!q) return std::move(q).error();
        const int width = sql.two ? 5 : 3;
        for (std::size_t r = 0; r < n; ++r) {
          const ReportedCount& c = *rows[at + r];
          const int p = static_cast<int>(r) * width;
          q->bind(p + 1, c.id).bind(p + 2, c.count).bind(p + 3, c.was);
          if (sql.two) q->bind(p + 4, c.count2).bind(p + 5, c.was2);
        }
        if (auto st = q->run(); !st) return st;
      }
      if (static_cast<std::size_t>(db.changes()) == n) continue;
      for (std::size_t r = at; r < at + n; ++r) {
        if (auto st = explain_mark(db, sql, *rows[r]); !st) return st;
      }
      return make_error(ErrorCode::Conflict,
                        sql.what + " rows were reported meanwhile (or listed twice in a batch)");
    }
  }
  return {};
}

// The payload of a delivery: the builder's, or one made from its recipient, pointing at the
// report just inserted.
Result<std::string> delivery_payload(const OutboxEntry& entry, std::int64_t report) {
  AggregatePayload p;
  if (!entry.payload.empty()) {
    auto parsed = aggregate_payload_from_json(entry.payload);
    if (!parsed) return std::move(parsed).error();
    p = std::move(*parsed);
  } else {
    // The rua URI the recipient came from, without a size limit (RFC 7489 §6.2, RFC 8460 §3).
    const bool https = entry.recipient.rfind("https:", 0) == 0;
    p.uri = https ? entry.recipient : "mailto:" + entry.recipient;
  }
  p.report = report;
  return to_json(p);
}

constexpr const char* kReportColumns =
    "SELECT id, kind, report_id, policy_domain, date_begin, date_end, created_at, filename,"
    " records, messages";

AggregateReport report_from(const Query& q, bool with_content) {
  AggregateReport r;
  r.id = q.i64(0);
  r.kind = q.text(1);
  r.report_id = q.text(2);
  r.policy_domain = q.text(3);
  r.date_begin = q.i64(4);
  r.date_end = q.i64(5);
  r.created_at = q.i64(6);
  r.filename = q.text(7);
  r.records = q.u64(8);
  r.messages = q.u64(9);
  if (with_content) r.content = std::string(q.blob(10));
  return r;
}

Result<std::int64_t> insert_report(Connection& db, const std::string& kind,
                                   const AggregateReport& r) {
  auto q = db.query(
      "INSERT INTO aggregate_reports (kind, report_id, policy_domain, date_begin, date_end,"
      " created_at, filename, records, messages, content)"
      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING id");
  if (!q) return std::move(q).error();
  q->bind(1, kind)
      .bind(2, r.report_id)
      .bind(3, normalize_domain(r.policy_domain))
      .bind(4, r.date_begin)
      .bind(5, r.date_end)
      .bind(6, r.created_at)
      .bind(7, r.filename)
      .bind(8, r.records)
      .bind(9, r.messages)
      .bind_blob(10, r.content);
  auto row = q->step();
  if (!row) {
    if (db.last_error() == ErrorClass::Unique) {  // the UNIQUE report_id
      return make_error(ErrorCode::Conflict, "report id " + r.report_id + " is already used");
    }
    return std::move(row).error();
  }
  std::int64_t id = q->i64(0);
  if (auto st = q->run(); !st) return std::move(st).error();
  return id;
}

Status insert_delivery(Connection& db, const std::string& kind, const AggregateReport& report,
                       std::int64_t report_id, const OutboxEntry& e) {
  auto payload = delivery_payload(e, report_id);
  if (!payload) return std::move(payload).error();
  const std::int64_t created = e.created_at != 0 ? e.created_at : report.created_at;
  auto id = insert_outbox(
      db, kind, e.recipient,
      normalize_domain(e.reported_domain.empty() ? report.policy_domain : e.reported_domain),
      created, e.next_attempt_at != 0 ? e.next_attempt_at : created, *payload);
  if (!id) return std::move(id).error();
  return {};
}

}  // namespace

Result<std::optional<std::int64_t>> SqlStore::aggregate_watermark(std::string_view kind) {
  auto rd = source_->reader();
  if (!rd) return std::move(rd).error();
  return read_watermark(**rd, kind);
}

Status SqlStore::for_each_unreported_evaluation(
    std::int64_t end, std::string_view domain,
    const std::function<bool(const EvaluationRow&)>& fn) {
  std::function<Status(Connection&, const std::function<bool(EvaluationRow &&)>&)> read =
      [end, domain](Connection& db, const std::function<bool(EvaluationRow &&)>& emit) {
        return read_unreported_evaluations(db, end, domain, emit);
      };
  return walk_snapshot<EvaluationRow>(*source_, read, fn);
}

Status SqlStore::for_each_unreported_tls(std::int64_t end, std::string_view domain,
                                         const std::function<bool(const TlsPolicyCount&)>& fn) {
  std::function<Status(Connection&, const std::function<bool(TlsPolicyCount &&)>&)> read =
      [end, domain](Connection& db, const std::function<bool(TlsPolicyCount &&)>& emit) {
        return read_unreported_tls(db, end, domain, emit);
      };
  return walk_snapshot<TlsPolicyCount>(*source_, read, fn);
}

Result<std::vector<std::int64_t>> SqlStore::commit_aggregate_batch(const AggregateBatch& batch) {
  if (batch.kind.empty()) return make_error(ErrorCode::Invalid, "aggregate batch without a kind");
  using Ids = Result<std::vector<std::int64_t>>;
  return in_write_tx<Ids>([&batch](Connection& db) -> Ids {
    // Returning an error rolls everything below back.
    if (db.dialect() == Dialect::Postgres) {
      // Batches of one kind commit one at a time across the cluster, so that the watermark
      // read below is still true at commit (SQLite's BEGIN IMMEDIATE serialises them anyway).
      auto lock = db.query("SELECT pg_advisory_xact_lock(?1)");
      if (!lock) return std::move(lock).error();
      if (auto st = lock->bind(1, advisory_lock_key("aggregate-batch", batch.kind)).run(); !st)
        return std::move(st).error();
    }
    if (batch.expect_watermark) {
      auto current = read_watermark(db, batch.kind);
      if (!current) return std::move(current).error();
      if (*current != *batch.expect_watermark) {
        return make_error(ErrorCode::Conflict,
                          batch.kind + " watermark is " + describe(*current) + ", expected " +
                              describe(*batch.expect_watermark) + ": another builder ran");
      }
    }
    if (auto st = mark_reported(db, batch.reported); !st) return std::move(st).error();
    std::vector<std::int64_t> ids;
    ids.reserve(batch.reports.size());
    for (const AggregateBatch::Item& item : batch.reports) {
      if (!item.report.kind.empty() && item.report.kind != batch.kind) {
        return make_error(ErrorCode::Invalid,
                          "report of kind " + item.report.kind + " in a batch of " + batch.kind);
      }
      auto id = insert_report(db, batch.kind, item.report);
      if (!id) return std::move(id).error();
      for (const OutboxEntry& e : item.deliveries) {
        if (auto st = insert_delivery(db, batch.kind, item.report, *id, e); !st) {
          return std::move(st).error();
        }
      }
      ids.push_back(*id);
    }
    if (batch.watermark) {
      auto q = db.query(
          "INSERT INTO aggregate_watermarks (kind, end_at, updated_at) VALUES (?1, ?2, ?3)"
          " ON CONFLICT (kind) DO UPDATE SET end_at = excluded.end_at,"
          " updated_at = excluded.updated_at");
      if (!q) return std::move(q).error();
      if (auto st = q->bind(1, batch.kind).bind(2, *batch.watermark).bind(3, now_seconds()).run();
          !st) {
        return std::move(st).error();
      }
    }
    return ids;
  });
}

Result<AggregateReport> SqlStore::get_aggregate_report(std::int64_t id) {
  auto rd = source_->reader();
  if (!rd) return std::move(rd).error();
  auto q = (*rd)->query(std::string(kReportColumns) +
                        ", content FROM aggregate_reports"
                        " WHERE id = ?1");
  if (!q) return std::move(q).error();
  auto row = q->bind(1, id).step();
  if (!row) return std::move(row).error();
  if (!*row) {
    return make_error(ErrorCode::NotFound, "no aggregate report with id " + std::to_string(id));
  }
  return report_from(*q, true);
}

Result<std::vector<AggregateReport>> SqlStore::list_aggregate_reports(
    const AggregateReportFilter& filter) {
  std::string sql = std::string(kReportColumns) + " FROM aggregate_reports";
  std::string where;
  auto add = [&where](const char* cond) {
    where += where.empty() ? " WHERE " : " AND ";
    where += cond;
  };
  if (!filter.kind.empty()) add("kind = ?1");
  if (!filter.domain.empty()) add("policy_domain = ?2");
  if (filter.since) add("date_begin >= ?3");
  sql += where + " ORDER BY date_begin DESC, id DESC LIMIT ?4";
  auto rd = source_->reader();
  if (!rd) return std::move(rd).error();
  auto q = (*rd)->query(sql);
  if (!q) return std::move(q).error();
  if (!filter.kind.empty()) q->bind(1, filter.kind);
  if (!filter.domain.empty()) q->bind(2, normalize_domain(filter.domain));
  if (filter.since) q->bind(3, *filter.since);
  q->bind(4, filter.limit == 0 ? kNoLimit : static_cast<std::int64_t>(filter.limit));
  std::vector<AggregateReport> out;
  for (;;) {
    auto row = q->step();
    if (!row) return std::move(row).error();
    if (!*row) return out;
    out.push_back(report_from(*q, false));
  }
}

}  // namespace mailreport::store::sql

// SqlStore: write transactions, raw message storage, lists, statistics and retention (see
// sql_store_impl.hpp).
#include <algorithm>
#include <cctype>
#include <chrono>

#include "mailreport/store/sha256.hpp"
#include "store/codec.hpp"
#include "store/json_columns.hpp"
#include "store/sql_store_impl.hpp"

namespace mailreport::store {

const char* to_string(ParseStatus s) noexcept {
  switch (s) {
    case ParseStatus::Pending: return "pending";
    case ParseStatus::Parsed: return "parsed";
    case ParseStatus::Duplicate: return "duplicate";
    case ParseStatus::Unparsed: return "unparsed";
  }
  return "unparsed";
}

std::optional<ParseStatus> parse_status_from_string(std::string_view s) noexcept {
  for (auto st :
       {ParseStatus::Pending, ParseStatus::Parsed, ParseStatus::Duplicate, ParseStatus::Unparsed}) {
    if (s == to_string(st)) return st;
  }
  return std::nullopt;
}

}  // namespace mailreport::store

namespace mailreport::store::sql {

namespace {

std::int64_t now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

constexpr const char* kRawColumns =
    "SELECT id, received_at, source, mail_from, rcpt_to, client, size, compressed_size, sha256,"
    " parse_status, parse_error FROM raw_messages";

RawMessageInfo raw_from_row(const Query& q) {
  RawMessageInfo r;
  r.id = q.i64(0);
  r.meta.received_at = q.i64(1);
  r.meta.source = q.text(2);
  r.meta.mail_from = q.text(3);
  r.meta.rcpt_to = strings_from_json(q.text(4));
  r.meta.client = q.text(5);
  r.size = q.u64(6);
  r.compressed_size = q.u64(7);
  r.sha256 = q.text(8);
  r.parse_status = parse_status_from_string(q.text(9)).value_or(ParseStatus::Unparsed);
  r.parse_error = q.text(10);
  return r;
}

}  // namespace

SqlStore::SqlStore(StoreSettings settings, std::unique_ptr<ConnectionSource> source)
    : settings_(settings), source_(std::move(source)) {}

Result<std::unique_ptr<SqlWriteTx>> SqlStore::begin_tx() {
  if (settings_.read_only) return make_error(ErrorCode::Store, "store opened read-only");
  auto lease = source_->writer();
  if (!lease) return std::move(lease).error();
  if (auto st = (*lease)->exec((*lease)->begin_write_sql()); !st) return std::move(st).error();
  return std::make_unique<SqlWriteTx>(std::move(*lease), settings_);
}

Result<std::unique_ptr<WriteTransaction>> SqlStore::begin_write() {
  auto tx = begin_tx();
  if (!tx) return std::move(tx).error();
  return std::unique_ptr<WriteTransaction>(std::move(*tx));
}

Result<std::unique_ptr<JobLock>> SqlStore::try_lock_job(std::string_view name) {
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) {
      return make_error(ErrorCode::Invalid, "job name '" + std::string(name) + "'");
    }
  }
  return source_->try_lock_job(name);
}

Result<std::vector<ReportSummary>> SqlStore::list_reports(const ReportFilter& filter) {
  std::string sql = kSummarySelect;
  std::string where;
  auto add = [&where](const char* cond) {
    where += where.empty() ? " WHERE " : " AND ";
    where += cond;
  };
  if (filter.type) add("r.type = ?1");
  if (!filter.domain.empty()) add("r.policy_domain = ?2");
  if (filter.since) add("r.date_begin >= ?3");
  sql += where + " ORDER BY r.date_begin DESC, r.id DESC LIMIT ?4";
  auto rd = source_->reader();
  if (!rd) return std::move(rd).error();
  auto q = (*rd)->query(sql);
  if (!q) return std::move(q).error();
  if (filter.type) q->bind(1, report::to_string(*filter.type));
  if (!filter.domain.empty()) q->bind(2, normalize_domain(filter.domain));
  if (filter.since) q->bind(3, *filter.since);
  q->bind(4, filter.limit == 0 ? kNoLimit : static_cast<std::int64_t>(filter.limit));
  std::vector<ReportSummary> out;
  for (;;) {
    auto row = q->step();
    if (!row) return std::move(row).error();
    if (!*row) return out;
    out.push_back(summary_from_row(*q));
  }
}

Result<StoredReport> SqlStore::get_report(std::int64_t id) {
  auto rd = source_->reader();
  if (!rd) return std::move(rd).error();
  return read_report(**rd, id);
}

Result<std::vector<RawMessageInfo>> SqlStore::list_raw_messages(const RawFilter& filter) {
  std::string sql = std::string(kRawColumns) + " WHERE id > ?1";
  if (filter.status) sql += " AND parse_status = ?2";
  sql += " ORDER BY id LIMIT ?3";
  auto rd = source_->reader();
  if (!rd) return std::move(rd).error();
  auto q = (*rd)->query(sql);
  if (!q) return std::move(q).error();
  q->bind(1, filter.after_id);
  if (filter.status) q->bind(2, to_string(*filter.status));
  q->bind(3, filter.limit == 0 ? kNoLimit : static_cast<std::int64_t>(filter.limit));
  std::vector<RawMessageInfo> out;
  for (;;) {
    auto row = q->step();
    if (!row) return std::move(row).error();
    if (!*row) return out;
    out.push_back(raw_from_row(*q));
  }
}

Result<RawMessageInfo> SqlStore::get_raw_message(std::int64_t id) {
  auto rd = source_->reader();
  if (!rd) return std::move(rd).error();
  auto q = (*rd)->query(std::string(kRawColumns) + " WHERE id = ?1");
  if (!q) return std::move(q).error();
  q->bind(1, id);
  auto row = q->step();
  if (!row) return std::move(row).error();
  if (!*row) return make_error(ErrorCode::NotFound, "no raw message with id " + std::to_string(id));
  return raw_from_row(*q);
}

Status SqlStore::read_raw(std::int64_t id,
                          const std::function<Status(std::span<const char>)>& out) {
  auto rd = source_->reader();
  if (!rd) return std::move(rd).error();
  Connection& db = **rd;
  ReadTx tx(db);
  if (!tx.status()) return tx.status();
  {
    auto q = db.query("SELECT 1 FROM raw_messages WHERE id = ?1");
    if (!q) return std::move(q).error();
    auto row = q->bind(1, id).step();
    if (!row) return std::move(row).error();
    if (!*row)
      return make_error(ErrorCode::NotFound, "no raw message with id " + std::to_string(id));
  }
  auto q = db.query("SELECT data FROM raw_chunks WHERE message_id = ?1 ORDER BY seq");
  if (!q) return std::move(q).error();
  q->bind(1, id);
  Inflater inflater;
  ChunkSink emit = [&out](std::string_view piece) { return out({piece.data(), piece.size()}); };
  for (;;) {
    auto row = q->step();
    if (!row) return std::move(row).error();
    if (!*row) break;
    if (auto st = inflater.write(q->blob(0), emit); !st) return st;
  }
  return inflater.finish();
}

Result<Summary> SqlStore::summary(std::size_t top_orgs) {
  auto rd = source_->reader();
  if (!rd) return std::move(rd).error();
  Connection& db = **rd;
  ReadTx tx(db);
  if (!tx.status()) return tx.status().error();
  Summary s;
  for (auto t : {report::ReportType::DmarcAggregate, report::ReportType::TlsAggregate,
                 report::ReportType::Arf, report::ReportType::Dsn}) {
    s.reports_by_type.emplace_back(t, 0);
  }
  {
    auto q = db.query("SELECT type, count(*) FROM reports GROUP BY type");
    if (!q) return std::move(q).error();
    for (;;) {
      auto row = q->step();
      if (!row) return std::move(row).error();
      if (!*row) break;
      std::string type = q->text(0);
      for (auto& [t, n] : s.reports_by_type) {
        if (type == report::to_string(t)) n = q->u64(1);
      }
    }
  }
  {
    auto q = db.query(
        "SELECT org_name, count(*) AS n FROM reports GROUP BY org_name"
        " ORDER BY n DESC, org_name LIMIT ?1");
    if (!q) return std::move(q).error();
    q->bind(1, static_cast<std::int64_t>(top_orgs));
    for (;;) {
      auto row = q->step();
      if (!row) return std::move(row).error();
      if (!*row) break;
      s.top_orgs.emplace_back(q->text(0), q->u64(1));
    }
  }
  {
    // RFC 7489 §3.1 / RFC 9989: a message passes DMARC with an aligned DKIM or SPF pass.
    auto q = db.query(
        "SELECT coalesce(sum(count), 0),"
        " coalesce(sum(CASE WHEN dkim = 'pass' OR spf = 'pass' THEN count ELSE 0 END), 0)"
        " FROM dmarc_records");
    if (!q) return std::move(q).error();
    auto row = q->step();
    if (!row) return std::move(row).error();
    s.dmarc_messages = q->u64(0);
    s.dmarc_pass = q->u64(1);
    s.dmarc_fail = s.dmarc_messages - std::min(s.dmarc_pass, s.dmarc_messages);
  }
  {
    auto q = db.query(
        "SELECT coalesce(sum(success_count), 0), coalesce(sum(failure_count), 0)"
        " FROM tls_policies");
    if (!q) return std::move(q).error();
    auto row = q->step();
    if (!row) return std::move(row).error();
    s.tls_sessions_ok = q->u64(0);
    s.tls_sessions_failed = q->u64(1);
  }
  {
    auto q = db.query(
        "SELECT count(*),"
        " coalesce(sum(CASE WHEN parse_status = 'unparsed' THEN 1 ELSE 0 END), 0)"
        " FROM raw_messages");
    if (!q) return std::move(q).error();
    auto row = q->step();
    if (!row) return std::move(row).error();
    s.raw_messages = q->u64(0);
    s.unparsed_messages = q->u64(1);
  }
  return s;
}

Result<PurgeResult> SqlStore::purge(std::int64_t before) {
  auto tx = begin_tx();
  if (!tx) return std::move(tx).error();
  Connection& db = (*tx)->db();
  PurgeResult r;
  // Each statement deletes what is older than ?1; `count` (if any) gets how many rows went.
  // Reports before raw messages: deleting a raw message only detaches its reports (ON DELETE
  // SET NULL). tls_count_failures go with their tls_counts row (ON DELETE CASCADE).
  const std::pair<std::string, std::uint64_t*> statements[] = {
      {"DELETE FROM reports WHERE received_at < ?1", &r.reports},
      {"DELETE FROM raw_messages WHERE received_at < ?1", &r.raw_messages},
      {"DELETE FROM evaluations WHERE interval_begin < ?1", &r.evaluation_rows},
      {"DELETE FROM evaluation_intervals WHERE interval_begin < ?1", nullptr},
      {"DELETE FROM tls_counts WHERE day < ?1", &r.tls_counts},
      {"DELETE FROM tls_rejected WHERE received_at < ?1", nullptr},
      {"DELETE FROM outbox WHERE state IN ('sent', 'failed') AND finished_at < ?1",
       &r.outbox_entries},
      // A report still has to be sent while one of its deliveries is queued (the payload of an
      // aggregate entry names its report, store/aggregate_payload.hpp).
      {"DELETE FROM aggregate_reports WHERE created_at < ?1 AND NOT EXISTS ("
       " SELECT 1 FROM outbox o WHERE o.state = 'queued'"
       "   AND o.kind IN ('dmarc-aggregate', 'tls-aggregate') AND " +
           std::string(db.dialect() == Dialect::Postgres
                           ? "(CASE WHEN o.kind IN ('dmarc-aggregate', 'tls-aggregate')"
                             " THEN (o.payload::jsonb ->> 'report')::bigint END)"
                           : "json_valid(o.payload) AND json_extract(o.payload, '$.report')") +
           " = aggregate_reports.id)",
       &r.aggregate_reports},
      {"DELETE FROM outbox_rate WHERE window_end < ?1", nullptr},
      {"DELETE FROM suppressions WHERE suppressed = 0 AND manual = 0 AND last_failure_at < ?1",
       nullptr},
  };
  for (const auto& [sql, count] : statements) {
    auto q = db.query(sql);
    if (!q) return std::move(q).error();
    if (auto st = q->bind(1, before).run(); !st) return st.error();
    if (count != nullptr) *count = static_cast<std::uint64_t>(db.changes());
  }
  if (auto st = (*tx)->commit(); !st) return st.error();
  return r;
}

// ---------------------------------------------------------------- write transaction

SqlWriteTx::~SqlWriteTx() {
  if (!done_) (void)db().exec("ROLLBACK");
}

Result<RawMessageInfo> SqlWriteTx::add_raw_message(const RawMeta& meta, ByteSource& src) {
  RawMessageInfo info;
  info.meta = meta;
  if (info.meta.received_at == 0) info.meta.received_at = now();
  {
    auto q = db().query(
        "INSERT INTO raw_messages (received_at, source, mail_from, rcpt_to, client, size,"
        " compressed_size, sha256, parse_status) VALUES (?1, ?2, ?3, ?4, ?5, 0, 0, '', 'pending')"
        " RETURNING id");
    if (!q) return std::move(q).error();
    q->bind(1, info.meta.received_at)
        .bind(2, info.meta.source)
        .bind(3, info.meta.mail_from)
        .bind(4, strings_to_json(info.meta.rcpt_to))
        .bind(5, info.meta.client);
    auto row = q->step();
    if (!row) return std::move(row).error();
    info.id = q->i64(0);
    if (auto st = q->run(); !st) return st.error();
  }
  std::int64_t seq = 0;
  ChunkSink store_chunk = [&](std::string_view chunk) -> Status {
    auto q = db().query("INSERT INTO raw_chunks (message_id, seq, data) VALUES (?1, ?2, ?3)");
    if (!q) return std::move(q).error();
    return q->bind(1, info.id).bind(2, seq++).bind_blob(3, chunk).run();
  };
  Deflater deflater(settings_.compression_level, settings_.chunk_size);
  Sha256 sha;
  std::string buf(1 << 16, '\0');
  for (;;) {
    auto n = src.read(buf);
    if (!n) return std::move(n).error();
    if (*n == 0) break;
    std::string_view piece(buf.data(), *n);
    sha.update(piece);
    info.size += *n;
    if (auto st = deflater.write(piece, store_chunk); !st) return st.error();
  }
  if (auto st = deflater.finish(store_chunk); !st) return st.error();
  info.compressed_size = deflater.compressed_bytes();
  info.sha256 = sha.hex();
  info.parse_status = ParseStatus::Pending;
  auto q = db().query(
      "UPDATE raw_messages SET size = ?2, compressed_size = ?3, sha256 = ?4 WHERE id = ?1");
  if (!q) return std::move(q).error();
  q->bind(1, info.id).bind(2, info.size).bind(3, info.compressed_size).bind(4, info.sha256);
  if (auto st = q->run(); !st) return st.error();
  return info;
}

std::unique_ptr<ReportWriter> SqlWriteTx::report_writer(std::int64_t message_id,
                                                        std::int64_t received_at) {
  return make_report_writer(db(), message_id, received_at);
}

Result<std::uint64_t> SqlWriteTx::delete_reports_of(std::int64_t message_id) {
  auto q = db().query("DELETE FROM reports WHERE message_id = ?1");
  if (!q) return std::move(q).error();
  if (auto st = q->bind(1, message_id).run(); !st) return st.error();
  return static_cast<std::uint64_t>(db().changes());
}

Status SqlWriteTx::set_parse_outcome(std::int64_t message_id, ParseStatus status,
                                     std::string_view error) {
  auto q = db().query("UPDATE raw_messages SET parse_status = ?2, parse_error = ?3 WHERE id = ?1");
  if (!q) return std::move(q).error();
  if (auto st = q->bind(1, message_id).bind(2, to_string(status)).bind(3, error).run(); !st) {
    return st;
  }
  if (db().changes() != 1) {
    return make_error(ErrorCode::NotFound, "no raw message with id " + std::to_string(message_id));
  }
  return {};
}

Status SqlWriteTx::commit() {
  if (done_) return make_error(ErrorCode::Store, "transaction already finished");
  done_ = true;
  auto st = db().exec("COMMIT");
  if (!st) {
    commit_error_ = db().last_error();
    (void)db().exec("ROLLBACK");
  }
  lease_ = Lease();  // the connection goes back (SQLite: the writer's lock is released)
  return st;
}

}  // namespace mailreport::store::sql

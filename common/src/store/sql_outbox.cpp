// SqlStore: the outbox of reports we send and the failure reports' rate limits (tables
// `outbox` and `outbox_rate`, schema migration 4; see mailreport/store/store.hpp).
//
// - Failure reports (RFC 7489 §7.3 / RFC 9991, RFC 6651, RFC 6652) are queued by
//   record_evaluations_counted in the transaction that adds the evaluations, after the rate
//   limit of report.<kind>.send: per (kind, recipient), at most limit_count per fixed window of
//   limit_period seconds aligned to the epoch, by the evaluation's time. The counters are rows,
//   so a restart does not reset them.
// - Claims are safe across processes and nodes: one transaction selects the due entries and
//   moves their next_attempt_at to the end of the lease, so a second sender sees them as not
//   due until the lease runs out. SQLite: BEGIN IMMEDIATE (the file's write lock) keeps other
//   claimants out meanwhile; PostgreSQL: the rows are selected FOR UPDATE SKIP LOCKED, so a
//   concurrent claimant on another node takes other entries instead of waiting or taking the
//   same ones.
// - Outcomes only apply to queued entries: a late outcome for an entry another sender already
//   finished is NotFound, not a second transition.
//
// - Bounces of our reports are matched by the Message-ID they were sent with (an index since
//   migration 5): find_outbox_by_message_id.
//
// Not done: deleting sent and failed entries (they are the record of what was sent).
#include <chrono>
#include <string>
#include <vector>

#include "mailreport/store/failure_payload.hpp"
#include "store/report_keys.hpp"
#include "store/sql_aggregate.hpp"
#include "store/sql_store_impl.hpp"

namespace mailreport::store {

const char* to_string(OutboxState s) noexcept {
  switch (s) {
    case OutboxState::Queued: return "queued";
    case OutboxState::Sent: return "sent";
    case OutboxState::Failed: return "failed";
  }
  return "failed";
}

std::optional<OutboxState> outbox_state_from_string(std::string_view s) noexcept {
  for (auto st : {OutboxState::Queued, OutboxState::Sent, OutboxState::Failed}) {
    if (s == to_string(st)) return st;
  }
  return std::nullopt;
}

}  // namespace mailreport::store

namespace mailreport::store::sql {

namespace {

std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Fixed windows aligned to the epoch (floor, also for times before 1970).
std::int64_t window_of(std::int64_t t, std::int64_t period) {
  std::int64_t r = t % period;
  return t - (r < 0 ? r + period : r);
}

constexpr const char* kInsert =
    "INSERT INTO outbox (kind, recipient, reported_domain, created_at, state, attempts,"
    " next_attempt_at, payload) VALUES (?1, ?2, ?3, ?4, 'queued', 0, ?5, ?6) RETURNING id";

constexpr const char* kColumns =
    "SELECT id, kind, recipient, reported_domain, created_at, state, attempts, next_attempt_at,"
    " finished_at, last_error, message_id";

OutboxEntry entry_from(const Query& q, bool with_payload) {
  OutboxEntry e;
  e.id = q.i64(0);
  e.kind = q.text(1);
  e.recipient = q.text(2);
  e.reported_domain = q.text(3);
  e.created_at = q.i64(4);
  e.state = outbox_state_from_string(q.text(5)).value_or(OutboxState::Failed);
  e.attempts = static_cast<unsigned>(q.u64(6));
  e.next_attempt_at = q.i64(7);
  e.finished_at = q.i64(8);
  e.last_error = q.text(9);
  e.message_id = q.text(10);
  if (with_payload) e.payload = q.text(11);
  return e;
}

// Takes one report from the (kind, recipient) window of `time`; false when it is used up.
Result<bool> take_rate(Connection& db, const std::string& kind, const std::string& recipient,
                       std::int64_t time, std::uint32_t limit, std::int64_t period) {
  std::int64_t start = window_of(time, period);
  {
    // Windows of this destination that ended before this one began are of no more use.
    auto q =
        db.query("DELETE FROM outbox_rate WHERE kind = ?1 AND recipient = ?2 AND window_end < ?3");
    if (!q) return std::move(q).error();
    if (auto st = q->bind(1, kind).bind(2, recipient).bind(3, start).run(); !st) {
      return std::move(st).error();
    }
  }
  // One statement: count one more unless the window is full; changes() tells which.
  auto q = db.query(
      "INSERT INTO outbox_rate (kind, recipient, window_start, window_end, count)"
      " VALUES (?1, ?2, ?3, ?4, 1) ON CONFLICT (kind, recipient, window_start) DO UPDATE SET"
      " count = outbox_rate.count + 1 WHERE outbox_rate.count < ?5");
  if (!q) return std::move(q).error();
  q->bind(1, kind).bind(2, recipient).bind(3, start).bind(4, start + period).bind(5, limit);
  if (auto st = q->run(); !st) return std::move(st).error();
  return db.changes() > 0;
}

// A queued entry's outcome; NotFound when it is not (or no longer) queued.
Status finish(Connection& db, std::string_view sql, std::int64_t id, std::int64_t time,
              std::string_view text) {
  auto q = db.query(sql);
  if (!q) return std::move(q).error();
  if (auto st = q->bind(1, id).bind(2, time).bind(3, text).run(); !st) return st;
  if (db.changes() != 1) {
    return make_error(ErrorCode::NotFound, "no queued outbox entry with id " + std::to_string(id));
  }
  return {};
}

}  // namespace

Result<std::int64_t> insert_outbox(Connection& db, std::string_view kind,
                                   std::string_view recipient, std::string_view reported_domain,
                                   std::int64_t created_at, std::int64_t next_attempt_at,
                                   std::string_view payload) {
  auto q = db.query(kInsert);
  if (!q) return std::move(q).error();
  q->bind(1, kind)
      .bind(2, recipient)
      .bind(3, reported_domain)
      .bind(4, created_at)
      .bind(5, next_attempt_at)
      .bind(6, payload);
  auto row = q->step();
  if (!row) return std::move(row).error();
  std::int64_t id = q->i64(0);
  if (auto st = q->run(); !st) return std::move(st).error();
  return id;
}

Result<OutboxEntry> find_outbox_by_message_id(Connection& db, std::string_view message_id) {
  // A DSN's Message-ID comes with or without angle brackets (RFC 5322 §3.6.4 msg-id); the
  // sender stores it as it was written: try both, compare exactly.
  std::string_view bare = message_id;
  while (!bare.empty() && (bare.front() == ' ' || bare.front() == '\t')) bare.remove_prefix(1);
  while (!bare.empty() && (bare.back() == ' ' || bare.back() == '\t')) bare.remove_suffix(1);
  if (bare.size() >= 2 && bare.front() == '<' && bare.back() == '>') {
    bare = bare.substr(1, bare.size() - 2);
  }
  if (bare.empty()) return make_error(ErrorCode::NotFound, "no Message-ID to look up");
  auto q = db.query(std::string(kColumns) +
                    ", payload FROM outbox WHERE message_id IN (?1, ?2) ORDER BY id DESC LIMIT 1");
  if (!q) return std::move(q).error();
  q->bind(1, bare).bind(2, "<" + std::string(bare) + ">");
  auto row = q->step();
  if (!row) return std::move(row).error();
  if (!*row) {
    return make_error(ErrorCode::NotFound,
                      "no report was sent with Message-ID <" + std::string(bare) + ">");
  }
  return entry_from(*q, true);
}

Status queue_failure_reports(Connection& db, std::span<const auth::Evaluation> batch,
                             RecordStats& stats) {
  for (const auth::Evaluation& ev : batch) {
    // An evaluation without a time (never from the milter) counts as now, so that its reports
    // are not queued already past report.submit.max-age.
    const std::int64_t time = ev.time > 0 ? ev.time : now_seconds();
    for (const auth::FailureReportRequest& req : ev.failure_reports) {
      if (req.recipient.empty()) continue;
      std::string kind = outbox_kind(req.kind);
      // report.<kind>.send = "N/period": N per recipient per fixed window; 0 = unlimited.
      if (req.limit_count > 0 && req.limit_period > 0) {
        auto took = take_rate(db, kind, req.recipient, time, req.limit_count, req.limit_period);
        if (!took) return std::move(took).error();
        if (!*took) {
          ++stats.reports_limited;
          continue;
        }
      }
      auto id = insert_outbox(db, kind, req.recipient, normalize_domain(req.reported_domain), time,
                              time, failure_payload_to_json(ev, req));
      if (!id) return std::move(id).error();
      ++stats.reports_queued;
    }
  }
  return {};
}

Status SqlStore::record_evaluations(std::span<const auth::Evaluation> batch) {
  auto stats = record_evaluations_counted(batch);
  if (!stats) return std::move(stats).error();
  return {};
}

Result<std::int64_t> SqlStore::enqueue_outbox(const OutboxEntry& entry) {
  std::int64_t next = entry.next_attempt_at != 0 ? entry.next_attempt_at : entry.created_at;
  return in_write_tx<Result<std::int64_t>>([&](Connection& db) {
    return insert_outbox(db, entry.kind, entry.recipient, normalize_domain(entry.reported_domain),
                         entry.created_at, next, entry.payload);
  });
}

Result<std::vector<OutboxEntry>> SqlStore::claim_outbox(std::int64_t now, std::size_t limit,
                                                        std::int64_t lease_seconds) {
  using Entries = Result<std::vector<OutboxEntry>>;
  return in_write_tx<Entries>([&](Connection& db) -> Entries {
    std::vector<OutboxEntry> out;
    {
      auto q = db.query(std::string(kColumns) +
                        ", payload FROM outbox WHERE state = 'queued' AND next_attempt_at <= ?1"
                        " ORDER BY id LIMIT ?2" +
                        (db.dialect() == Dialect::Postgres ? " FOR UPDATE SKIP LOCKED" : ""));
      if (!q) return std::move(q).error();
      q->bind(1, now).bind(2, limit == 0 ? kNoLimit : static_cast<std::int64_t>(limit));
      for (;;) {
        auto row = q->step();
        if (!row) return std::move(row).error();
        if (!*row) break;
        out.push_back(entry_from(*q, true));
      }
    }
    for (auto& e : out) {
      auto q = db.query("UPDATE outbox SET next_attempt_at = ?2 WHERE id = ?1");
      if (!q) return std::move(q).error();
      e.next_attempt_at = now + lease_seconds;
      if (auto st = q->bind(1, e.id).bind(2, e.next_attempt_at).run(); !st) return st.error();
    }
    {
      // Rate windows that ended a day ago cannot be needed by evaluations still arriving.
      auto q = db.query("DELETE FROM outbox_rate WHERE window_end < ?1");
      if (!q) return std::move(q).error();
      if (auto st = q->bind(1, now - 86400).run(); !st) return st.error();
    }
    return out;
  });
}

Status SqlStore::outbox_sent(std::int64_t id, std::int64_t now, std::string_view message_id) {
  return in_write_tx<Status>([&](Connection& db) {
    return finish(db,
                  "UPDATE outbox SET state = 'sent', attempts = attempts + 1,"
                  " finished_at = ?2, message_id = ?3 WHERE id = ?1 AND state = 'queued'",
                  id, now, message_id);
  });
}

Status SqlStore::outbox_retry(std::int64_t id, std::int64_t next_attempt_at,
                              std::string_view error) {
  return in_write_tx<Status>([&](Connection& db) {
    return finish(db,
                  "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2,"
                  " last_error = ?3 WHERE id = ?1 AND state = 'queued'",
                  id, next_attempt_at, error);
  });
}

Status SqlStore::outbox_failed(std::int64_t id, std::int64_t now, std::string_view error) {
  return in_write_tx<Status>([&](Connection& db) {
    return finish(db,
                  "UPDATE outbox SET state = 'failed', attempts = attempts + 1,"
                  " finished_at = ?2, last_error = ?3 WHERE id = ?1 AND state = 'queued'",
                  id, now, error);
  });
}

Result<std::vector<OutboxEntry>> SqlStore::list_outbox(const OutboxFilter& filter) {
  std::string sql = kColumns;
  if (filter.with_payload) sql += ", payload";
  sql += " FROM outbox WHERE id > ?1";
  if (filter.state) sql += " AND state = ?2";
  if (!filter.kind.empty()) sql += " AND kind = ?3";
  sql += " ORDER BY id LIMIT ?4";
  auto rd = source_->reader();
  if (!rd) return std::move(rd).error();
  auto q = (*rd)->query(sql);
  if (!q) return std::move(q).error();
  q->bind(1, filter.after_id);
  if (filter.state) q->bind(2, to_string(*filter.state));
  if (!filter.kind.empty()) q->bind(3, filter.kind);
  q->bind(4, filter.limit == 0 ? kNoLimit : static_cast<std::int64_t>(filter.limit));
  std::vector<OutboxEntry> out;
  for (;;) {
    auto row = q->step();
    if (!row) return std::move(row).error();
    if (!*row) return out;
    out.push_back(entry_from(*q, filter.with_payload));
  }
}

Result<OutboxEntry> SqlStore::find_outbox_by_message_id(std::string_view message_id) {
  auto rd = source_->reader();
  if (!rd) return std::move(rd).error();
  return sql::find_outbox_by_message_id(**rd, message_id);
}

}  // namespace mailreport::store::sql

// SqlStore: the alert scanner's watermarks and the webhook queue (tables alert_watermarks and
// webhook_events: SQLite migration 6, PostgreSQL migration 2; see mailreport/store/store.hpp,
// "warnings and webhooks").
//
// - commit_alerts is a compare-and-set over the named watermarks: the scanner says which
//   values it read, and the events it found are queued with the new values in one transaction
//   only if those are still the values (Conflict otherwise), so two scanners (two nodes) never
//   both queue the same warnings. SQLite: BEGIN IMMEDIATE serialises the commits; PostgreSQL
//   (READ COMMITTED): a transaction-scoped advisory lock makes the read of the watermarks and
//   their update one step across the cluster.
// - Claims follow claim_outbox (sql_outbox.cpp): the due events are selected and their
//   next_attempt_at moved to the end of a lease in one transaction; PostgreSQL selects FOR
//   UPDATE SKIP LOCKED, so a concurrent claimant takes other events instead of the same ones.
//
// Not done: a cap on the queue's size (discard-after bounds it in time).
#include <string>
#include <vector>

#include "store/pg_db.hpp"
#include "store/sql_store_impl.hpp"

namespace mailreport::store::sql {

namespace {

constexpr const char* kEventColumns =
    "SELECT id, webhook, type, created_at, body, attempts, next_attempt_at, last_error"
    " FROM webhook_events";

WebhookEvent event_from(const Query& q) {
  WebhookEvent e;
  e.id = q.i64(0);
  e.webhook = q.text(1);
  e.type = q.text(2);
  e.created_at = q.i64(3);
  e.body = q.text(4);
  e.attempts = static_cast<unsigned>(q.u64(5));
  e.next_attempt_at = q.i64(6);
  e.last_error = q.text(7);
  return e;
}

Result<std::optional<std::int64_t>> read_alert_watermark(Connection& db, std::string_view name) {
  auto q = db.query("SELECT value FROM alert_watermarks WHERE name = ?1");
  if (!q) return std::move(q).error();
  q->bind(1, name);
  auto row = q->step();
  if (!row) return std::move(row).error();
  if (!*row) return std::optional<std::int64_t>{};
  return std::optional<std::int64_t>{q->i64(0)};
}

std::string describe(const std::optional<std::int64_t>& v) {
  return v ? std::to_string(*v) : std::string("unset");
}

Result<std::vector<WebhookEvent>> read_events(Query& q) {
  std::vector<WebhookEvent> out;
  for (;;) {
    auto row = q.step();
    if (!row) return std::move(row).error();
    if (!*row) break;
    out.push_back(event_from(q));
  }
  return out;
}

}  // namespace

Result<std::optional<std::int64_t>> SqlStore::alert_watermark(std::string_view name) {
  auto rd = source_->reader();
  if (!rd) return std::move(rd).error();
  return read_alert_watermark(**rd, name);
}

Status SqlStore::commit_alerts(const AlertBatch& batch) {
  return in_write_tx<Status>([&batch](Connection& db) -> Status {
    if (db.dialect() == Dialect::Postgres) {
      // One scanner commit at a time across the cluster, so that the watermarks read below
      // are still true at commit (SQLite's BEGIN IMMEDIATE serialises them anyway).
      auto lock = db.query("SELECT pg_advisory_xact_lock(?1)");
      if (!lock) return std::move(lock).error();
      if (auto st = lock->bind(1, advisory_lock_key("alert-batch", "scanner")).run(); !st) {
        return st;
      }
    }
    for (const auto& [name, expected] : batch.expect) {
      auto current = read_alert_watermark(db, name);
      if (!current) return std::move(current).error();
      if (*current != expected) {
        return make_error(ErrorCode::Conflict, "alert watermark " + name + " is " +
                                                   describe(*current) + ", expected " +
                                                   describe(expected) + ": another scanner ran");
      }
    }
    for (const WebhookEvent& e : batch.events) {
      auto q = db.query(
          "INSERT INTO webhook_events (webhook, type, created_at, body, attempts,"
          " next_attempt_at, last_error) VALUES (?1, ?2, ?3, ?4, 0, ?5, '')");
      if (!q) return std::move(q).error();
      q->bind(1, e.webhook)
          .bind(2, e.type)
          .bind(3, e.created_at)
          .bind(4, e.body)
          .bind(5, e.next_attempt_at != 0 ? e.next_attempt_at : e.created_at);
      if (auto st = q->run(); !st) return st;
    }
    for (const auto& [name, value] : batch.watermarks) {
      auto q = db.query(
          "INSERT INTO alert_watermarks (name, value) VALUES (?1, ?2)"
          " ON CONFLICT (name) DO UPDATE SET value = excluded.value");
      if (!q) return std::move(q).error();
      if (auto st = q->bind(1, name).bind(2, value).run(); !st) return st;
    }
    return {};
  });
}

Result<std::vector<WebhookEvent>> SqlStore::claim_webhook_events(std::string_view webhook,
                                                                 std::int64_t now,
                                                                 std::size_t limit,
                                                                 std::int64_t lease_seconds) {
  using Events = Result<std::vector<WebhookEvent>>;
  return in_write_tx<Events>([&](Connection& db) -> Events {
    std::vector<WebhookEvent> out;
    {
      auto q = db.query(std::string(kEventColumns) +
                        " WHERE webhook = ?1 AND next_attempt_at <= ?2 ORDER BY id LIMIT ?3" +
                        (db.dialect() == Dialect::Postgres ? " FOR UPDATE SKIP LOCKED" : ""));
      if (!q) return std::move(q).error();
      q->bind(1, webhook)
          .bind(2, now)
          .bind(3, limit == 0 ? kNoLimit : static_cast<std::int64_t>(limit));
      auto rows = read_events(*q);
      if (!rows) return std::move(rows).error();
      out = std::move(*rows);
    }
    for (WebhookEvent& e : out) {
      auto q = db.query("UPDATE webhook_events SET next_attempt_at = ?2 WHERE id = ?1");
      if (!q) return std::move(q).error();
      e.next_attempt_at = now + lease_seconds;
      if (auto st = q->bind(1, e.id).bind(2, e.next_attempt_at).run(); !st) return st.error();
    }
    return out;
  });
}

Status SqlStore::webhook_delivered(std::span<const std::int64_t> ids) {
  if (ids.empty()) return {};
  return in_write_tx<Status>([&](Connection& db) -> Status {
    for (std::int64_t id : ids) {
      auto q = db.query("DELETE FROM webhook_events WHERE id = ?1");
      if (!q) return std::move(q).error();
      if (auto st = q->bind(1, id).run(); !st) return st;
    }
    return {};
  });
}

Status SqlStore::webhook_retry(std::span<const std::int64_t> ids, std::int64_t next_attempt_at,
                               std::string_view error) {
  if (ids.empty()) return {};
  return in_write_tx<Status>([&](Connection& db) -> Status {
    for (std::int64_t id : ids) {
      auto q = db.query(
          "UPDATE webhook_events SET attempts = attempts + 1, next_attempt_at = ?2,"
          " last_error = ?3 WHERE id = ?1");
      if (!q) return std::move(q).error();
      if (auto st = q->bind(1, id).bind(2, next_attempt_at).bind(3, error).run(); !st) return st;
    }
    return {};
  });
}

Result<std::uint64_t> SqlStore::discard_webhook_events(std::string_view webhook,
                                                       std::int64_t created_before) {
  using Count = Result<std::uint64_t>;
  return in_write_tx<Count>([&](Connection& db) -> Count {
    auto q = db.query("DELETE FROM webhook_events WHERE webhook = ?1 AND created_at < ?2");
    if (!q) return std::move(q).error();
    if (auto st = q->bind(1, webhook).bind(2, created_before).run(); !st) {
      return std::move(st).error();
    }
    return static_cast<std::uint64_t>(db.changes());
  });
}

Result<std::vector<std::pair<std::string, std::uint64_t>>> SqlStore::webhook_queue_depths() {
  auto rd = source_->reader();
  if (!rd) return std::move(rd).error();
  auto q = (*rd)->query(
      "SELECT webhook, count(*) FROM webhook_events GROUP BY webhook ORDER BY webhook");
  if (!q) return std::move(q).error();
  std::vector<std::pair<std::string, std::uint64_t>> out;
  for (;;) {
    auto row = q->step();
    if (!row) return std::move(row).error();
    if (!*row) break;
    out.emplace_back(q->text(0), q->u64(1));
  }
  return out;
}

Result<std::vector<WebhookEvent>> SqlStore::list_webhook_events(std::string_view webhook) {
  auto rd = source_->reader();
  if (!rd) return std::move(rd).error();
  auto q = (*rd)->query(std::string(kEventColumns) +
                        " WHERE (CAST(?1 AS TEXT) = '' OR webhook = ?1) ORDER BY id");
  if (!q) return std::move(q).error();
  q->bind(1, webhook);
  return read_events(*q);
}

}  // namespace mailreport::store::sql

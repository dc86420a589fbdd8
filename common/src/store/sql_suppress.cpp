// SqlStore: bounces of the reports we send, and suppressed destinations (issue 5; schema
// migration 5, table suppressions).
//
// A DSN (RFC 3464) that mailreport-lmtp receives for one of our reports names the Message-ID
// it returns; the outbox entry sent with it tells the destination, whose failures are counted.
// At `threshold` failures the destination is suppressed: the aggregate builder sends nothing
// there until an admin removes it (`mailreport suppress remove`). Addresses are kept in lower
// case and compared so.
//
// Not done: forgetting failures after a while (a destination that bounced once a year ago
// still counts it); VERP matching (the bounce is matched by Message-ID only).
#include <string>
#include <vector>

#include "store/sql_aggregate.hpp"
#include "store/sql_store_impl.hpp"

namespace mailreport::store::sql {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// The form an address is kept in: trimmed, without angle brackets, lower case.
std::string address_key(std::string_view address) {
  while (!address.empty() && (address.front() == ' ' || address.front() == '\t')) {
    address.remove_prefix(1);
  }
  while (!address.empty() && (address.back() == ' ' || address.back() == '\t')) {
    address.remove_suffix(1);
  }
  if (address.size() >= 2 && address.front() == '<' && address.back() == '>') {
    address = address.substr(1, address.size() - 2);
  }
  return lower(address);
}

}  // namespace

Result<BounceOutcome> SqlStore::record_report_bounce(std::string_view message_id,
                                                     std::string_view reason, std::int64_t now,
                                                     unsigned threshold) {
  using Outcome = Result<BounceOutcome>;
  return in_write_tx<Outcome>([&](Connection& db) -> Outcome {
    auto entry = sql::find_outbox_by_message_id(db, message_id);
    if (!entry) return std::move(entry).error();
    BounceOutcome out;
    out.outbox_id = entry->id;
    out.recipient = address_key(entry->recipient);
    {
      // One more failure; suppressed from the threshold on (0: never by count), and a
      // suppression once made stays until removed.
      auto q = db.query(
          "INSERT INTO suppressions (address, created_at, failures, last_failure_at, suppressed,"
          " reason) VALUES (?1, ?2, 1, ?2, CASE WHEN ?3 > 0 AND 1 >= ?3 THEN 1 ELSE 0 END, ?4)"
          " ON CONFLICT (address) DO UPDATE SET failures = suppressions.failures + 1,"
          " last_failure_at = ?2, suppressed = CASE WHEN suppressions.suppressed <> 0"
          " OR (?3 > 0 AND suppressions.failures + 1 >= ?3) THEN 1 ELSE 0 END, reason = ?4"
          " RETURNING failures, suppressed");
      if (!q) return std::move(q).error();
      q->bind(1, out.recipient).bind(2, now).bind(3, threshold).bind(4, reason);
      auto row = q->step();
      if (!row) return std::move(row).error();
      if (!*row) return make_error(ErrorCode::Store, "suppression upsert returned no row");
      out.failures = static_cast<unsigned>(q->u64(0));
      out.suppressed = q->i64(1) != 0;
      if (auto st = q->run(); !st) return std::move(st).error();
    }
    return out;
  });
}

Result<bool> SqlStore::is_suppressed(std::string_view address) {
  auto rd = source_->reader();
  if (!rd) return std::move(rd).error();
  auto q = (*rd)->query("SELECT suppressed FROM suppressions WHERE address = ?1");
  if (!q) return std::move(q).error();
  auto row = q->bind(1, address_key(address)).step();
  if (!row) return std::move(row).error();
  return *row && q->i64(0) != 0;
}

Status SqlStore::add_suppression(std::string_view address, std::string_view reason,
                                 std::int64_t now) {
  std::string key = address_key(address);
  if (key.empty()) return make_error(ErrorCode::Invalid, "no address to suppress");
  return in_write_tx<Status>([&](Connection& db) -> Status {
    auto q = db.query(
        "INSERT INTO suppressions (address, created_at, suppressed, manual, reason)"
        " VALUES (?1, ?2, 1, 1, ?3) ON CONFLICT (address) DO UPDATE SET suppressed = 1,"
        " manual = 1, reason = ?3");
    if (!q) return std::move(q).error();
    return q->bind(1, key).bind(2, now).bind(3, reason).run();
  });
}

Status SqlStore::remove_suppression(std::string_view address) {
  std::string key = address_key(address);
  return in_write_tx<Status>([&](Connection& db) -> Status {
    auto q = db.query("DELETE FROM suppressions WHERE address = ?1");
    if (!q) return std::move(q).error();
    if (auto st = q->bind(1, key).run(); !st) return st;
    if (db.changes() == 0) {
      return make_error(ErrorCode::NotFound, "no suppression or failures for " + key);
    }
    return {};
  });
}

Result<std::vector<Suppression>> SqlStore::list_suppressions() {
  auto rd = source_->reader();
  if (!rd) return std::move(rd).error();
  auto q = (*rd)->query(
      "SELECT address, created_at, failures, last_failure_at, suppressed, manual, reason"
      " FROM suppressions ORDER BY address");
  if (!q) return std::move(q).error();
  std::vector<Suppression> out;
  for (;;) {
    auto row = q->step();
    if (!row) return std::move(row).error();
    if (!*row) return out;
    Suppression s;
    s.address = q->text(0);
    s.created_at = q->i64(1);
    s.failures = static_cast<unsigned>(q->u64(2));
    s.last_failure_at = q->i64(3);
    s.suppressed = q->i64(4) != 0;
    s.manual = q->i64(5) != 0;
    s.reason = q->text(6);
    out.push_back(std::move(s));
  }
}

}  // namespace mailreport::store::sql

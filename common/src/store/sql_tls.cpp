// SqlStore: the TLS collector's counts (issue 5; schema migration 5, tables tls_counts,
// tls_count_failures and tls_rejected).
//
// Each datagram an MTA sends after a TLS attempt (report/tlsrpt_datagram.hpp, libtlsrpt's
// protocol) counts one session per policy it carries, in the row of the UTC day it was received,
// its recipient domain, the TLSRPT record the MTA found and the policy (type, domain, strings,
// MX hosts): RFC 8460 §4.4 total-successful-session-count or total-failure-session-count, and
// for a failure one more session for each of its failure details (RFC 8460 §4.3), counted per
// distinct detail. A batch is summed in memory first and written in one transaction.
//
// Not done: purging old counts (they are small: rows per day and recipient domain).
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "store/json_columns.hpp"
#include "store/report_keys.hpp"
#include "store/sql_aggregate.hpp"
#include "store/sql_store_impl.hpp"

namespace mailreport::store::sql {

namespace {

constexpr std::int64_t kDay = 86400;

// The UTC day of `t` (floor, also before 1970).
std::int64_t day_of(std::int64_t t) {
  std::int64_t r = t % kDay;
  return t - (r < 0 ? r + kDay : r);
}

// (domain, record, policy type, policy domain, policy strings JSON, MX hosts JSON)
using PolicyKey =
    std::tuple<std::string, std::string, std::string, std::string, std::string, std::string>;
// (result type, sending MTA IP, receiving MX name, its HELO, receiving IP, additional
// information, failure reason code)
using DetailKey = std::tuple<std::string, std::string, std::string, std::string, std::string,
                             std::string, std::string>;

struct PolicySum {
  std::uint64_t successful = 0;
  std::uint64_t failed = 0;
  std::map<DetailKey, std::uint64_t> details;
};

// Reads tls_counts rows (columns of kCountColumns) and their failure details.
constexpr const char* kCountColumns =
    "SELECT c.id, c.day, c.domain, c.record, c.policy_type, c.policy_domain, c.policy_string,"
    " c.mx_host, c.successful, c.failed, c.reported_successful, c.reported_failed"
    " FROM tls_counts c";

// `unreported`: counts are the unreported parts, and only details with some are read.
Status read_counts(Connection& db, Query& q, bool unreported,
                   const std::function<bool(TlsPolicyCount&&)>& emit) {
  for (;;) {
    auto row = q.step();
    if (!row) return std::move(row).error();
    if (!*row) return {};
    TlsPolicyCount c;
    c.id = q.i64(0);
    c.day = q.i64(1);
    c.domain = q.text(2);
    c.record = q.text(3);
    c.policy.policy_type = q.text(4);
    c.policy.policy_domain = q.text(5);
    c.policy.policy_string = strings_from_json(q.text(6));
    c.policy.mx_host = strings_from_json(q.text(7));
    const std::uint64_t successful = q.u64(8), failed = q.u64(9);
    c.reported_successful = q.u64(10);
    c.reported_failed = q.u64(11);
    c.policy.total_successful_session_count =
        unreported ? successful - std::min(successful, c.reported_successful) : successful;
    c.policy.total_failure_session_count =
        unreported ? failed - std::min(failed, c.reported_failed) : failed;
    auto f = db.query(unreported ? "SELECT id, result_type, sending_mta_ip, receiving_mx_hostname,"
                                   " receiving_mx_helo, receiving_ip, additional_information,"
                                   " failure_reason_code, count, reported FROM tls_count_failures"
                                   " WHERE count_id = ?1 AND count > reported ORDER BY id"
                                 : "SELECT id, result_type, sending_mta_ip, receiving_mx_hostname,"
                                   " receiving_mx_helo, receiving_ip, additional_information,"
                                   " failure_reason_code, count, reported FROM tls_count_failures"
                                   " WHERE count_id = ?1 ORDER BY id");
    if (!f) return std::move(f).error();
    f->bind(1, c.id);
    for (;;) {
      auto frow = f->step();
      if (!frow) return std::move(frow).error();
      if (!*frow) break;
      TlsFailureCount fc;
      fc.id = f->i64(0);
      fc.detail.result_type = f->text(1);
      fc.detail.sending_mta_ip = f->text(2);
      fc.detail.receiving_mx_hostname = f->text(3);
      fc.detail.receiving_mx_helo = f->text(4);
      fc.detail.receiving_ip = f->text(5);
      fc.detail.additional_information = f->text(6);
      fc.detail.failure_reason_code = f->text(7);
      const std::uint64_t count = f->u64(8);
      fc.reported = f->u64(9);
      fc.detail.failed_session_count = unreported ? count - std::min(count, fc.reported) : count;
      c.failures.push_back(std::move(fc));
    }
    if (!emit(std::move(c))) return {};
  }
}

}  // namespace

Status read_unreported_tls(Connection& db, std::int64_t end, std::string_view domain,
                           const std::function<bool(TlsPolicyCount&&)>& emit) {
  std::string sql = std::string(kCountColumns) +
                    " WHERE c.day < ?1 AND (c.successful > c.reported_successful"
                    " OR c.failed > c.reported_failed OR EXISTS (SELECT 1 FROM tls_count_failures f"
                    " WHERE f.count_id = c.id AND f.count > f.reported))";
  if (!domain.empty()) sql += " AND c.domain = ?2";
  sql += " ORDER BY c.domain, c.record, c.day, c.id";
  auto q = db.query_cursor(sql);
  if (!q) return std::move(q).error();
  q->bind(1, end);
  if (!domain.empty()) q->bind(2, normalize_domain(domain));
  return read_counts(db, *q, true, emit);
}

Status SqlStore::record_tls_results(std::span<const report::TlsrptDatagram> batch,
                                    std::int64_t received_at) {
  // Sum the batch first: one upsert per distinct policy and detail.
  std::map<PolicyKey, PolicySum> sums;
  for (const report::TlsrptDatagram& d : batch) {
    for (const report::TlsrptPolicyResult& p : d.policies) {
      PolicySum& s = sums[{normalize_domain(d.domain), d.record, p.policy_type,
                           normalize_domain(p.policy_domain), strings_to_json(p.policy_string),
                           strings_to_json(p.mx_host)}];
      if (p.success) {
        ++s.successful;
        continue;
      }
      // RFC 8460 §4.4: a failed session counts in the total even without details.
      ++s.failed;
      for (const report::TlsrptFailure& f : p.failures) {
        ++s.details[{f.result_type, f.sending_mta_ip, f.receiving_mx_hostname, f.receiving_mx_helo,
                     f.receiving_ip, f.additional_information, f.failure_reason_code}];
      }
    }
  }
  if (sums.empty()) return {};
  const std::int64_t day = day_of(received_at);
  // In key order (a std::map): concurrent batches lock rows in the same order.
  return in_write_tx<Status>([&](Connection& db) -> Status {
    for (const auto& [k, s] : sums) {
      std::int64_t id = 0;
      {
        auto q = db.query(
            "INSERT INTO tls_counts (day, domain, record, policy_type, policy_domain,"
            " policy_string, mx_host, successful, failed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
            "?9)"
            " ON CONFLICT (domain, record, day, policy_type, policy_domain, policy_string, mx_host)"
            " DO UPDATE SET successful = tls_counts.successful + excluded.successful,"
            " failed = tls_counts.failed + excluded.failed RETURNING id");
        if (!q) return std::move(q).error();
        q->bind(1, day)
            .bind(2, std::get<0>(k))
            .bind(3, std::get<1>(k))
            .bind(4, std::get<2>(k))
            .bind(5, std::get<3>(k))
            .bind(6, std::get<4>(k))
            .bind(7, std::get<5>(k))
            .bind(8, s.successful)
            .bind(9, s.failed);
        auto row = q->step();
        if (!row) return std::move(row).error();
        if (!*row) return make_error(ErrorCode::Store, "TLS count upsert returned no row");
        id = q->i64(0);
        if (auto st = q->run(); !st) return std::move(st).error();
      }
      for (const auto& [d, n] : s.details) {
        auto q = db.query(
            "INSERT INTO tls_count_failures (count_id, result_type, sending_mta_ip,"
            " receiving_mx_hostname, receiving_mx_helo, receiving_ip, additional_information,"
            " failure_reason_code, count) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
            " ON CONFLICT (count_id, result_type, sending_mta_ip, receiving_mx_hostname,"
            " receiving_mx_helo, receiving_ip, additional_information, failure_reason_code)"
            " DO UPDATE SET count = tls_count_failures.count + excluded.count");
        if (!q) return std::move(q).error();
        q->bind(1, id)
            .bind(2, std::get<0>(d))
            .bind(3, std::get<1>(d))
            .bind(4, std::get<2>(d))
            .bind(5, std::get<3>(d))
            .bind(6, std::get<4>(d))
            .bind(7, std::get<5>(d))
            .bind(8, std::get<6>(d))
            .bind(9, n);
        if (auto st = q->run(); !st) return std::move(st).error();
      }
    }
    return {};
  });
}

Status SqlStore::record_tls_rejected(std::string_view datagram, std::string_view reason,
                                     std::int64_t received_at) {
  constexpr std::int64_t kKeep = 1000;
  return in_write_tx<Status>([&](Connection& db) -> Status {
    {
      // As received: the bytes may not be UTF-8 (that may be why it was rejected).
      auto q =
          db.query("INSERT INTO tls_rejected (received_at, datagram, reason) VALUES (?1, ?2, ?3)");
      if (!q) return std::move(q).error();
      q->bind(1, received_at).bind_blob(2, datagram).bind(3, reason);
      if (auto st = q->run(); !st) return st;
    }
    {
      auto q = db.query(
          "DELETE FROM tls_rejected WHERE id <="
          " (SELECT id FROM tls_rejected ORDER BY id DESC LIMIT 1 OFFSET ?1)");
      if (!q) return std::move(q).error();
      if (auto st = q->bind(1, kKeep).run(); !st) return st;
    }
    return {};
  });
}

Result<std::vector<TlsPolicyCount>> SqlStore::list_tls_counts(std::int64_t since,
                                                              std::string_view domain) {
  std::string sql = std::string(kCountColumns) + " WHERE c.day >= ?1";
  if (!domain.empty()) sql += " AND c.domain = ?2";
  sql += " ORDER BY c.day, c.domain, c.record, c.id";
  auto rd = source_->reader();
  if (!rd) return std::move(rd).error();
  Connection& db = **rd;
  // One read transaction: the details match their rows.
  if (auto st = db.exec(db.begin_read_sql()); !st) return std::move(st).error();
  std::vector<TlsPolicyCount> out;
  Status st;
  {
    auto q = db.query(sql);
    if (!q) {
      st = std::move(q).error();
    } else {
      q->bind(1, since);
      if (!domain.empty()) q->bind(2, normalize_domain(domain));
      st = read_counts(db, *q, false, [&out](TlsPolicyCount&& c) {
        out.push_back(std::move(c));
        return true;
      });
    }
  }
  (void)db.exec("COMMIT");
  if (!st) return std::move(st).error();
  return out;
}

}  // namespace mailreport::store::sql

// SqlStore: the milter's evaluations, aggregated as they are recorded (design.md, "Data
// rules"; tables `evaluations` and `evaluation_intervals`, schema migration 2).
//
// An evaluation becomes the record an aggregate report will carry (RFC 9990 §3.1.1, RFC 7489
// App. C): its identity is the UTC hour, the policy domain, the policy as published and how it
// was found, the source IP, the identifiers and every result. The identity columns are hashed
// into `key` (SHA-256, 128 bits kept, of a length-prefixed serialisation), so that adding a
// message is one upsert on the unique index (policy_domain, interval_begin, key). A batch is
// first summed in memory, so that a busy sender costs one statement per distinct row; a row's
// identity columns and key are remembered across batches by its exact inputs (IdentityCache).
//
// Each row also carries `reported` (migration 5): how many of its messages are in an aggregate
// report already; read_unreported_evaluations hands the builder the rest (sqlite_aggregate.cpp).
//
// Not done: purging evaluations (the aggregate report sender decides when rows may go).
#include <algorithm>
#include <charconv>
#include <functional>
#include <iterator>
#include <map>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mailreport/store/sha256.hpp"
#include "store/json_columns.hpp"
#include "store/report_keys.hpp"
#include "store/sql_aggregate.hpp"
#include "store/sql_store_impl.hpp"

namespace mailreport::store::sql {

namespace {

constexpr std::int64_t kInterval = 3600;  // rows per UTC hour

std::int64_t hour_of(std::int64_t t) {
  std::int64_t r = t % kInterval;
  return t - (r < 0 ? r + kInterval : r);
}

// One row to add: the batch's evaluations of one identity summed.
struct Pending {
  std::string policy_domain;
  std::int64_t interval_begin = 0;
  std::int64_t first_seen = 0;
  std::int64_t last_seen = 0;
  std::uint64_t count = 0;
  int pct = 100;
  std::vector<std::string> columns;  // identity columns as text (pct included, for the key)
  std::string rua;                   // JSON
  std::string ruf;
};

// The identity columns, in schema order from discovery_method to spf_results.
std::vector<std::string> identity_columns(const auth::Evaluation& ev) {
  const auth::DmarcVerdict& d = ev.dmarc;
  const auth::DmarcRecord& r = *d.record;
  std::vector<report::DmarcReason> reasons;
  for (const auto& [reason, comment] : d.overrides) {
    reasons.push_back({auth::to_string(reason), comment});
  }
  std::vector<report::DmarcDkimAuth> dkim;
  for (const auto& s : ev.dkim) {
    // RFC 9990 §3.1.1: domain, selector, result, human_result per signature.
    dkim.push_back({normalize_domain(s.domain), s.selector, auth::to_string(s.result), s.reason});
  }
  std::vector<report::DmarcSpfAuth> spf;
  for (const auto& s : ev.spf) {
    spf.push_back(
        {normalize_domain(s.domain), auth::to_string(s.scope), auth::to_string(s.result), {}});
  }
  std::string header_from = ev.header_from.empty() ? d.header_from : ev.header_from;
  return {
      auth::to_string(d.discovery),
      auth::to_string(r.p),
      r.sp ? auth::to_string(*r.sp) : "",
      r.np ? auth::to_string(*r.np) : "",
      auth::to_string(r.adkim),
      auth::to_string(r.aspf),
      std::to_string(r.pct),
      r.fo,
      r.testing ? "y" : "n",
      std::string(1, r.psd),
      ev.source_ip,
      normalize_domain(header_from),
      normalize_domain(ev.envelope_from),
      normalize_domain(ev.envelope_to),
      auth::to_string(d.disposition),
      // RFC 7489 App. C policy_evaluated: the aligned results, pass or fail.
      d.dkim_aligned ? "pass" : "fail",
      d.spf_aligned ? "pass" : "fail",
      reasons_to_json(reasons),
      dkim_auth_to_json(dkim),
      spf_auth_to_json(spf),
  };
}

constexpr std::size_t kIdentityColumns = 20;
constexpr std::size_t kPctColumn = 6;  // bound as an integer

// 128 bits of SHA-256 over the length-prefixed columns: no two identities serialise alike.
std::string key_of(const std::vector<std::string>& columns) {
  Sha256 h;
  for (const auto& c : columns) {
    h.update(std::to_string(c.size()));
    h.update(":");
    h.update(c);
  }
  return h.hex().substr(0, 32);
}

// An exact, cheap grouping key for the evaluations of one batch: every input of the identity
// columns, length-prefixed, without normalising, JSON or hashing. The identity columns and
// their SHA-256 key are then built once per distinct fingerprint, not once per message (the
// milter's writer thread spent most of its time there).
void add_field(std::string& out, std::string_view v) {
  char len[24];
  auto [end, ec] = std::to_chars(std::begin(len), std::end(len), v.size());
  (void)ec;
  out.append(len, end);
  out += ':';
  out.append(v);
}

std::string fingerprint(const auth::Evaluation& ev, std::int64_t hour) {
  const auth::DmarcVerdict& d = ev.dmarc;
  const auth::DmarcRecord& r = *d.record;
  std::string f;
  f.reserve(256);
  add_field(f, d.policy_domain);
  add_field(f, std::to_string(hour));
  add_field(f, auth::to_string(r.p));
  add_field(f, r.sp ? auth::to_string(*r.sp) : "");
  add_field(f, r.np ? auth::to_string(*r.np) : "");
  add_field(f, auth::to_string(r.adkim));
  add_field(f, auth::to_string(r.aspf));
  add_field(f, std::to_string(r.pct));
  add_field(f, r.fo);
  add_field(f, r.testing ? "y" : "n");
  add_field(f, std::string_view(&r.psd, 1));
  add_field(f, auth::to_string(d.discovery));
  add_field(f, ev.source_ip);
  add_field(f, ev.header_from.empty() ? d.header_from : ev.header_from);
  add_field(f, ev.envelope_from);
  add_field(f, ev.envelope_to);
  add_field(f, auth::to_string(d.disposition));
  add_field(f, d.dkim_aligned ? "p" : "f");
  add_field(f, d.spf_aligned ? "p" : "f");
  for (const auto& [reason, comment] : d.overrides) {
    add_field(f, auth::to_string(reason));
    add_field(f, comment);
  }
  f += '|';
  for (const auto& k : ev.dkim) {
    add_field(f, k.domain);
    add_field(f, k.selector);
    add_field(f, auth::to_string(k.result));
    add_field(f, k.reason);
  }
  f += '|';
  for (const auto& sv : ev.spf) {
    add_field(f, sv.domain);
    add_field(f, auth::to_string(sv.scope));
    add_field(f, auth::to_string(sv.result));
  }
  return f;
}

// What a fingerprint stands for: the row's normalized policy domain, identity columns and key.
// Derived from the fingerprint's inputs alone, so an entry is right for as long as it is kept.
struct Identity {
  std::string domain;
  std::vector<std::string> columns;
  std::string key;
};

// Identities of recent fingerprints, across batches: a sender seen in the last batch is seen
// again in this one, and its JSON columns and SHA-256 key need not be built again. Keyed on
// the exact fingerprint (every input, see fingerprint()); bounded, emptied when full. One per
// writing thread (record_evaluations may be called from several), so no lock.
class IdentityCache {
 public:
  const Identity& get(const std::string& fp, const auth::Evaluation& ev) {
    auto it = map_.find(fp);
    if (it != map_.end()) return it->second;
    if (map_.size() >= kMaxEntries) map_.clear();
    Identity id;
    id.domain = normalize_domain(ev.dmarc.policy_domain);
    id.columns = identity_columns(ev);
    id.key = key_of(id.columns);
    return map_.emplace(fp, std::move(id)).first->second;
  }

 private:
  static constexpr std::size_t kMaxEntries = 4096;
  std::unordered_map<std::string, Identity> map_;
};

constexpr const char* kUpsert =
    "INSERT INTO evaluations (policy_domain, interval_begin, key, count, first_seen, last_seen,"
    " discovery_method, p, sp, np, adkim, aspf, pct, fo, testing, psd, source_ip, header_from,"
    " envelope_from, envelope_to, disposition, dkim, spf, reasons, dkim_results, spf_results)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,"
    " ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26)"
    " ON CONFLICT (policy_domain, interval_begin, key) DO UPDATE SET"
    " count = evaluations.count + excluded.count,"
    " first_seen = CASE WHEN excluded.first_seen < evaluations.first_seen"
    " THEN excluded.first_seen ELSE evaluations.first_seen END,"
    " last_seen = CASE WHEN excluded.last_seen > evaluations.last_seen"
    " THEN excluded.last_seen ELSE evaluations.last_seen END";

constexpr const char* kIntervalUpsert =
    "INSERT INTO evaluation_intervals (policy_domain, interval_begin, rua, ruf, updated_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (policy_domain, interval_begin) DO UPDATE SET"
    " rua = excluded.rua, ruf = excluded.ruf, updated_at = excluded.updated_at"
    " WHERE excluded.updated_at >= evaluation_intervals.updated_at";

// A row's columns (read by row_from), then the FROM clause's parts: the rua/ruf of the row's
// policy domain and hour come from evaluation_intervals.
constexpr const char* kColumns =
    "SELECT e.id, e.policy_domain, e.interval_begin, e.count, e.first_seen, e.last_seen,"
    " e.discovery_method, e.p, e.sp, e.np, e.adkim, e.aspf, e.pct, e.fo, e.testing, e.psd,"
    " e.source_ip, e.header_from, e.envelope_from, e.envelope_to, e.disposition, e.dkim, e.spf,"
    " e.reasons, e.dkim_results, e.spf_results, coalesce(i.rua, '[]'), coalesce(i.ruf, '[]'),"
    " e.reported";
constexpr const char* kJoin =
    " LEFT JOIN evaluation_intervals i"
    " ON i.policy_domain = e.policy_domain AND i.interval_begin = e.interval_begin";

// The last rua/ruf column texts read and their lists: a walk meets the same ones row after
// row (a policy domain's hours), and parsing them was a good part of its time.
struct UriCache {
  std::string rua_text, ruf_text;
  std::vector<std::string> rua, ruf;
};

const std::vector<std::string>& cached(std::string_view text, std::string& last,
                                       std::vector<std::string>& parsed) {
  if (text != last || last.empty()) {
    last.assign(text);
    parsed = strings_from_json(text);
  }
  return parsed;
}

EvaluationRow row_from(const Query& q, UriCache* uris = nullptr) {
  EvaluationRow r;
  r.id = q.i64(0);
  r.policy.domain = q.text(1);
  r.interval_begin = q.i64(2);
  r.record.row.count = q.u64(3);
  r.first_seen = q.i64(4);
  r.last_seen = q.i64(5);
  r.policy.discovery_method = q.text(6);
  r.policy.p = q.text(7);
  r.policy.sp = q.text(8);
  r.policy.np = q.text(9);
  r.policy.adkim = q.text(10);
  r.policy.aspf = q.text(11);
  r.policy.pct = static_cast<int>(q.i64(12));
  r.policy.fo = q.text(13);
  r.policy.testing = q.text(14);
  std::string psd = q.text(15);
  r.psd = psd.empty() ? 'u' : psd[0];
  r.record.row.source_ip = q.text(16);
  r.record.identifiers.header_from = q.text(17);
  r.record.identifiers.envelope_from = q.text(18);
  r.record.identifiers.envelope_to = q.text(19);
  r.record.row.policy_evaluated.disposition = q.text(20);
  r.record.row.policy_evaluated.dkim = q.text(21);
  r.record.row.policy_evaluated.spf = q.text(22);
  r.record.row.policy_evaluated.reason = reasons_from_json(q.text(23));
  r.record.auth_results.dkim = dkim_auth_from_json(q.text(24));
  r.record.auth_results.spf = spf_auth_from_json(q.text(25));
  if (uris != nullptr) {
    r.rua = cached(q.blob(26), uris->rua_text, uris->rua);  // the text's bytes, no copy
    r.ruf = cached(q.blob(27), uris->ruf_text, uris->ruf);
  } else {
    r.rua = strings_from_json(q.text(26));
    r.ruf = strings_from_json(q.text(27));
  }
  r.reported = q.u64(28);
  return r;
}

}  // namespace

Result<RecordStats> SqlStore::record_evaluations_counted(std::span<const auth::Evaluation> batch) {
  RecordStats stats;
  bool reports_due = false;  // failure reports are queued also without rua= (sqlite_outbox.cpp)
  // Sum the batch first: (policy domain, hour, key) → row.
  std::map<std::tuple<std::string, std::int64_t, std::string>, Pending> rows;
  // The rows in the order their identity first arrived: new rows get their ids in that order,
  // not in the order of their hash keys.
  std::vector<decltype(rows)::const_iterator> arrival;
  // (policy domain, hour) → (time, rua, ruf) of the newest evaluation.
  std::map<std::pair<std::string, std::int64_t>, std::pair<std::int64_t, const auth::DmarcRecord*>>
      intervals;
  // Fingerprint → its row in `rows` (see fingerprint()).
  std::unordered_map<std::string, Pending*> seen;
  for (const auth::Evaluation& ev : batch) {
    reports_due = reports_due || !ev.failure_reports.empty();
    const auth::DmarcVerdict& d = ev.dmarc;
    // RFC 7489 §6.3 / RFC 9989 §4.7: no rua=, no aggregate report; nothing to keep.
    if (!d.record || d.record->rua.empty() || d.policy_domain.empty()) continue;
    std::int64_t hour = hour_of(ev.time);
    auto [seen_it, new_fingerprint] = seen.try_emplace(fingerprint(ev, hour), nullptr);
    if (new_fingerprint) {
      thread_local IdentityCache identities;
      const Identity& id = identities.get(seen_it->first, ev);
      auto [it, fresh] = rows.try_emplace({id.domain, hour, id.key});
      Pending& p = it->second;
      if (fresh) {
        arrival.push_back(it);
        p.policy_domain = id.domain;
        p.interval_begin = hour;
        p.first_seen = p.last_seen = ev.time;
        p.pct = d.record->pct;
        p.columns = id.columns;
      }
      seen_it->second = &p;
    }
    Pending& p = *seen_it->second;
    const std::string& domain = p.policy_domain;
    p.first_seen = std::min(p.first_seen, ev.time);
    p.last_seen = std::max(p.last_seen, ev.time);
    ++p.count;
    ++stats.rows;
    auto& slot = intervals[{domain, hour}];
    if (slot.second == nullptr || ev.time >= slot.first) slot = {ev.time, &*d.record};
  }
  if (rows.empty() && !reports_due) return stats;

  if (dialect() == Dialect::Postgres) {
    // Several writers (milters of several nodes) upsert the same rows at once: each takes
    // its rows' locks in key order, so that two batches cannot deadlock on each other.
    arrival.clear();
    for (auto it = rows.cbegin(); it != rows.cend(); ++it) arrival.push_back(it);
  }
  return in_write_tx<Result<RecordStats>>([&](Connection& db) -> Result<RecordStats> {
    RecordStats tx_stats = stats;  // a retried transaction starts again from the batch's counts
    for (auto row : arrival) {
      const auto& [k, p] = *row;
      auto q = db.query(kUpsert);
      if (!q) return std::move(q).error();
      q->bind(1, p.policy_domain)
          .bind(2, p.interval_begin)
          .bind(3, std::get<2>(k))
          .bind(4, p.count)
          .bind(5, p.first_seen)
          .bind(6, p.last_seen);
      for (std::size_t i = 0; i < kIdentityColumns; ++i) {
        int param = static_cast<int>(7 + i);
        if (i == kPctColumn) {
          q->bind(param, p.pct);
        } else {
          q->bind(param, p.columns[i]);
        }
      }
      if (auto st = q->run(); !st) return std::move(st).error();
    }
    for (const auto& [k, v] : intervals) {
      auto q = db.query(kIntervalUpsert);
      if (!q) return std::move(q).error();
      q->bind(1, k.first)
          .bind(2, k.second)
          .bind(3, strings_to_json(v.second->rua))
          .bind(4, strings_to_json(v.second->ruf))
          .bind(5, v.first);
      if (auto st = q->run(); !st) return std::move(st).error();
    }
    if (reports_due) {
      if (auto st = queue_failure_reports(db, batch, tx_stats); !st) return std::move(st).error();
    }
    return tx_stats;
  });
}

Result<std::vector<EvaluationRow>> SqlStore::list_evaluations(const EvaluationFilter& filter) {
  std::string sql = std::string(kColumns) + " FROM evaluations e" + kJoin;
  std::string where;
  auto add = [&where](const char* cond) {
    where += where.empty() ? " WHERE " : " AND ";
    where += cond;
  };
  if (!filter.domain.empty()) add("e.policy_domain = ?1");
  if (filter.since) add("e.interval_begin >= ?2");
  if (filter.until) add("e.interval_begin < ?3");
  sql += where + " ORDER BY e.interval_begin DESC, e.policy_domain, e.id LIMIT ?4";
  auto rd = source_->reader();
  if (!rd) return std::move(rd).error();
  auto q = (*rd)->query(sql);
  if (!q) return std::move(q).error();
  if (!filter.domain.empty()) q->bind(1, normalize_domain(filter.domain));
  if (filter.since) q->bind(2, *filter.since);
  if (filter.until) q->bind(3, *filter.until);
  q->bind(4, filter.limit == 0 ? kNoLimit : static_cast<std::int64_t>(filter.limit));
  std::vector<EvaluationRow> out;
  for (;;) {
    auto row = q->step();
    if (!row) return std::move(row).error();
    if (!*row) return out;
    out.push_back(row_from(*q));
  }
}

Status read_unreported_evaluations(Connection& db, std::int64_t end, std::string_view domain,
                                   const std::function<bool(EvaluationRow&&)>& emit) {
  // Through the partial index of unreported rows, in policy-domain order; SQLite sorts each
  // policy domain's rows by policy, hour and id on its own (a temp B-tree for the right part
  // of the ORDER BY), so the walk streams and never sorts the whole table.
  std::string sql = std::string(kColumns) + " FROM evaluations e" +
                    (db.dialect() == Dialect::Sqlite ? " INDEXED BY evaluations_unreported" : "") +
                    kJoin + " WHERE e.count > e.reported AND e.interval_begin < ?1";
  if (!domain.empty()) sql += " AND e.policy_domain = ?2";
  sql +=
      " ORDER BY e.policy_domain, e.discovery_method, e.p, e.sp, e.np, e.adkim, e.aspf, e.pct,"
      " e.fo, e.testing, e.psd, e.interval_begin, e.id";
  auto q = db.query_cursor(sql);
  if (!q) return std::move(q).error();
  q->bind(1, end);
  if (!domain.empty()) q->bind(2, normalize_domain(domain));
  UriCache uris;
  for (;;) {
    auto row = q->step();
    if (!row) return std::move(row).error();
    if (!*row) return {};
    EvaluationRow r = row_from(*q, &uris);
    // The unreported part (rows only grow, and reported <= count by the commit's check).
    r.record.row.count -= std::min(r.reported, r.record.row.count);
    if (!emit(std::move(r))) return {};
  }
}

}  // namespace mailreport::store::sql

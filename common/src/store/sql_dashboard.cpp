// SqlStore: the dashboard's and the JSON API's queries (issue 6), in SQL both dialects read
// alike. Every value is a bound parameter (Params below); only fixed SQL text is concatenated.
//
// - query_reports: a filtered page of ReportSummary rows (the list's own SELECT and row reader,
//   kSummarySelect / summary_from_row in sql_reader.cpp) and the filter's total. Its WHERE
//   clause names only `reports r` and correlated subqueries, so that the total is a plain
//   count(*) over reports.
// - dmarc_daily, top_failing_sources, tls_daily, tls_failures_by_type: incoming reports by
//   period (date_begin in [from, to)), reached through reports_type_begin or
//   reports_type_domain_begin, then their records/policies through the report_id indexes.
//   A day is the UTC midnight of a report's date_begin (date_begin - date_begin % 86400, for
//   the positive epochs reports carry).
// - outbox_stats, evaluation_summary: the reports we send and the milter's evaluations.
//
// DMARC pass is an aligned DKIM or SPF pass (RFC 7489 §3.1: either one is enough), as the
// list and summary() count it. Not done: a source IP index (dropped in SQLite migration 3 for
// ingest speed), so a source_ip filter or dmarc_source_known reads the records of the reports
// the other filters select.
//
// Rough timings (100k DMARC reports of 5 records, SQLite / PostgreSQL, a loaded 2-core box): a
// report page with its total 1–50 ms (a result=pass filter over all DMARC reports 0.3–0.5 s);
// 30 days of dmarc_daily 0.1–0.2 s, top_failing_sources 0.3–0.4 s; a whole year 1–3 s.
#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "store/sql_store_impl.hpp"

namespace mailreport::store::sql {

namespace {

// Values of one statement, numbered in the order they are added: arg() returns the placeholder
// to write into the SQL text.
class Params {
 public:
  std::string arg(std::int64_t v) { return push(v); }
  std::string arg(std::string v) { return push(std::move(v)); }
  std::size_t size() const noexcept { return values_.size(); }
  // Binds the first `n` values (all by default).
  void bind(Query& q, std::size_t n = SIZE_MAX) const {
    n = std::min(n, values_.size());
    for (std::size_t i = 0; i < n; ++i) {
      int pos = static_cast<int>(i + 1);
      if (const auto* v = std::get_if<std::int64_t>(&values_[i])) {
        q.bind(pos, *v);
      } else {
        q.bind(pos, std::get<std::string>(values_[i]));
      }
    }
  }

 private:
  std::string push(std::variant<std::int64_t, std::string> v) {
    values_.push_back(std::move(v));
    return "?" + std::to_string(values_.size());
  }
  std::vector<std::variant<std::int64_t, std::string>> values_;
};

std::int64_t limit_arg(std::size_t limit) {
  return limit == 0 ? kNoLimit : static_cast<std::int64_t>(limit);
}

// RFC 7489 §3.1: a message passes DMARC with an aligned DKIM or SPF pass.
constexpr const char* kRecordPasses = "(d.dkim = 'pass' OR d.spf = 'pass')";
constexpr const char* kDay = "r.date_begin - r.date_begin % 86400";

// "abc%_\" → "%abc\%\_\\%": a LIKE pattern matching `s` as a substring (ESCAPE '\').
std::string contains_pattern(std::string_view s) {
  std::string p = "%";
  for (char c : s) {
    if (c == '%' || c == '_' || c == '\\') p += '\\';
    p += c;
  }
  p += '%';
  return p;
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// The result filter of one report type (ReportQuery::result), as a condition on `r`; empty
// when the type has no such result (so that no report of it matches).
std::string result_condition(report::ReportType type, const std::string& result,
                             const std::string& placeholder) {
  // "pass": no record with a failed message; "fail": one at least (the list's fail > 0).
  const char* dmarc_failing =
      "EXISTS (SELECT 1 FROM dmarc_records m WHERE m.report_id = r.id AND m.count > 0"
      " AND NOT (m.dkim = 'pass' OR m.spf = 'pass'))";
  const char* tls_failing =
      "EXISTS (SELECT 1 FROM tls_policies p WHERE p.report_id = r.id AND p.failure_count > 0)";
  switch (type) {
    case report::ReportType::DmarcAggregate:
    case report::ReportType::TlsAggregate: {
      const char* failing =
          type == report::ReportType::DmarcAggregate ? dmarc_failing : tls_failing;
      if (result == "pass") return std::string("NOT ") + failing;
      if (result == "fail") return failing;
      return {};
    }
    case report::ReportType::Arf:
      return "EXISTS (SELECT 1 FROM arf_reports f WHERE f.report_id = r.id"
             " AND lower(f.feedback_type) = " +
             placeholder + ")";
    case report::ReportType::Dsn:
      // The first recipient's action, as the list shows it.
      return "EXISTS (SELECT 1 FROM dsn_recipients x WHERE x.id ="
             " (SELECT min(id) FROM dsn_recipients WHERE report_id = r.id)"
             " AND lower(x.action) = " +
             placeholder + ")";
  }
  return {};
}

constexpr report::ReportType kTypes[] = {report::ReportType::DmarcAggregate,
                                         report::ReportType::TlsAggregate, report::ReportType::Arf,
                                         report::ReportType::Dsn};

// The WHERE clause of query_reports (on `reports r` alone).
std::string report_where(const ReportQuery& query, Params& params) {
  std::string where;
  auto add = [&where](const std::string& cond) {
    where += where.empty() ? " WHERE " : " AND ";
    where += cond;
  };
  if (query.type) add("r.type = " + params.arg(std::string(report::to_string(*query.type))));
  if (!query.domain.empty()) add("r.policy_domain = " + params.arg(normalize_domain(query.domain)));
  if (!query.reporter.empty()) {
    add("lower(r.org_name) LIKE lower(CAST(" + params.arg(contains_pattern(query.reporter)) +
        " AS TEXT)) ESCAPE '\\'");
  }
  if (query.from) add("r.date_begin >= " + params.arg(*query.from));
  if (query.to) add("r.date_begin < " + params.arg(*query.to));
  if (query.after_id > 0) add("r.id > " + params.arg(query.after_id));
  if (!query.result.empty()) {
    std::string result = ascii_lower(query.result);
    // Bound only when a condition names it (the count query binds no unused parameter).
    bool named = !query.type || *query.type == report::ReportType::Arf ||
                 *query.type == report::ReportType::Dsn;
    std::string placeholder = named ? params.arg(result) : std::string();
    std::string any;
    for (auto t : kTypes) {
      if (query.type && *query.type != t) continue;
      std::string cond = result_condition(t, result, placeholder);
      if (cond.empty()) continue;
      if (!any.empty()) any += " OR ";
      any += query.type ? cond
                        : "(r.type = '" + std::string(report::to_string(t)) + "' AND " + cond + ")";
    }
    add(any.empty() ? "1 = 0" : "(" + any + ")");
  }
  return where;
}

// The period and domain of a series over incoming reports of `type` (joined to dmarc_records
// `d` when `source_ip` applies).
std::string series_where(const SeriesQuery& query, report::ReportType type, bool source_ip,
                         Params& params) {
  std::string where = " WHERE r.type = " + params.arg(std::string(report::to_string(type)));
  if (!query.domain.empty()) {
    where += " AND r.policy_domain = " + params.arg(normalize_domain(query.domain));
  }
  where += " AND r.date_begin >= " + params.arg(query.from);
  if (query.to != 0) where += " AND r.date_begin < " + params.arg(query.to);
  if (source_ip && !query.source_ip.empty()) {
    where += " AND d.source_ip = " + params.arg(query.source_ip);
  }
  return where;
}

template <class T, class Read>
Result<std::vector<T>> read_rows(Query& q, Read&& read) {
  std::vector<T> out;
  for (;;) {
    auto row = q.step();
    if (!row) return std::move(row).error();
    if (!*row) return out;
    out.push_back(read(q));
  }
}

// Runs `sql` with `params` on a reader connection; `read` makes one T of each row.
template <class T, class Read>
Result<std::vector<T>> select_all(Result<Lease> rd, const std::string& sql, const Params& params,
                                  Read&& read) {
  if (!rd) return std::move(rd).error();
  auto q = (*rd)->query(sql);
  if (!q) return std::move(q).error();
  params.bind(*q);
  return read_rows<T>(*q, std::forward<Read>(read));
}

}  // namespace

Result<ReportPage> SqlStore::query_reports(const ReportQuery& query) {
  Params params;
  std::string where = report_where(query, params);
  std::size_t filter_params = params.size();
  std::string sql =
      std::string(kSummarySelect) + where +
      (query.oldest_first ? " ORDER BY r.id" : " ORDER BY r.date_begin DESC, r.id DESC");
  sql += " LIMIT " + params.arg(limit_arg(query.limit));
  sql += " OFFSET " + params.arg(static_cast<std::int64_t>(query.offset));

  auto rd = source_->reader();
  if (!rd) return std::move(rd).error();
  Connection& db = **rd;
  ReadTx tx(db);  // the page and its total from one snapshot
  if (!tx.status()) return tx.status().error();
  ReportPage page;
  {
    auto q = db.query(sql);
    if (!q) return std::move(q).error();
    params.bind(*q);
    auto items = read_rows<ReportSummary>(*q, summary_from_row);
    if (!items) return std::move(items).error();
    page.items = std::move(*items);
  }
  if (query.offset == 0 && (query.limit == 0 || page.items.size() < query.limit)) {
    page.total = page.items.size();  // the whole result is on this page
    return page;
  }
  auto q = db.query("SELECT count(*) FROM reports r" + where);
  if (!q) return std::move(q).error();
  params.bind(*q, filter_params);
  auto row = q->step();
  if (!row) return std::move(row).error();
  page.total = q->u64(0);
  return page;
}

Result<std::vector<DmarcDayPoint>> SqlStore::dmarc_daily(const SeriesQuery& query) {
  Params params;
  std::string where = series_where(query, report::ReportType::DmarcAggregate, true, params);
  std::string sql = std::string("SELECT ") + kDay +
                    " AS day, sum(d.count),"
                    " sum(CASE WHEN " +
                    kRecordPasses +
                    " THEN d.count ELSE 0 END),"
                    " sum(CASE WHEN d.disposition = 'none' THEN d.count ELSE 0 END),"
                    " sum(CASE WHEN d.disposition = 'quarantine' THEN d.count ELSE 0 END),"
                    " sum(CASE WHEN d.disposition = 'reject' THEN d.count ELSE 0 END)"
                    " FROM reports r JOIN dmarc_records d ON d.report_id = r.id" +
                    where + " GROUP BY day ORDER BY day";
  return select_all<DmarcDayPoint>(source_->reader(), sql, params, [](const Query& c) {
    DmarcDayPoint p;
    p.day = c.i64(0);
    p.messages = c.u64(1);
    p.pass = std::min(c.u64(2), p.messages);
    p.fail = p.messages - p.pass;
    p.none = c.u64(3);
    p.quarantine = c.u64(4);
    p.reject = c.u64(5);
    return p;
  });
}

Result<std::vector<SourceStat>> SqlStore::top_failing_sources(const SeriesQuery& query,
                                                              std::size_t limit) {
  Params params;
  std::string where = series_where(query, report::ReportType::DmarcAggregate, true, params);
  std::string sql = std::string(
                        "SELECT d.source_ip, sum(d.count) AS messages,"
                        " sum(CASE WHEN ") +
                    kRecordPasses +
                    " THEN 0 ELSE d.count END) AS failed,"
                    " count(DISTINCT r.id), max(r.date_end)"
                    " FROM reports r JOIN dmarc_records d ON d.report_id = r.id" +
                    where +
                    " GROUP BY d.source_ip ORDER BY failed DESC, messages DESC, d.source_ip"
                    " LIMIT " +
                    params.arg(limit_arg(limit));

  auto rd = source_->reader();
  if (!rd) return std::move(rd).error();
  Connection& db = **rd;
  ReadTx tx(db);
  if (!tx.status()) return tx.status().error();
  std::vector<SourceStat> out;
  {
    auto q = db.query(sql);
    if (!q) return std::move(q).error();
    params.bind(*q);
    auto rows = read_rows<SourceStat>(*q, [](const Query& c) {
      SourceStat s;
      s.source_ip = c.text(0);
      s.messages = c.u64(1);
      s.fail = std::min(c.u64(2), s.messages);
      s.pass = s.messages - s.fail;
      s.reports = c.u64(3);
      s.last_seen = c.i64(4);
      return s;
    });
    if (!rows) return std::move(rows).error();
    out = std::move(*rows);
  }
  if (out.empty()) return out;

  // The header_from and policy domains of these sources, in one more pass over the same
  // reports (the statement is prepared once per number of sources).
  Params detail;
  std::string detail_where = series_where(query, report::ReportType::DmarcAggregate, true, detail);
  std::string in;
  for (const auto& s : out) in += (in.empty() ? "" : ", ") + detail.arg(s.source_ip);
  auto q = db.query(
      "SELECT DISTINCT d.source_ip, lower(d.header_from), r.policy_domain"
      " FROM reports r JOIN dmarc_records d ON d.report_id = r.id" +
      detail_where + " AND d.source_ip IN (" + in + ")");
  if (!q) return std::move(q).error();
  detail.bind(*q);
  std::map<std::string, std::pair<std::set<std::string>, std::set<std::string>>> seen;
  for (;;) {
    auto row = q->step();
    if (!row) return std::move(row).error();
    if (!*row) break;
    auto& [header_from, domains] = seen[q->text(0)];
    if (auto h = q->text(1); !h.empty()) header_from.insert(std::move(h));
    if (auto d = q->text(2); !d.empty()) domains.insert(std::move(d));
  }
  constexpr std::size_t kMaxNames = 5;
  auto first = [](const std::set<std::string>& names) {
    std::vector<std::string> v;
    for (const auto& n : names) {
      if (v.size() == kMaxNames) break;
      v.push_back(n);
    }
    return v;
  };
  for (auto& s : out) {
    auto it = seen.find(s.source_ip);
    if (it == seen.end()) continue;
    s.header_from = first(it->second.first);
    s.policy_domains = first(it->second.second);
  }
  return out;
}

Result<bool> SqlStore::dmarc_source_known(std::string_view domain, std::string_view source_ip,
                                          std::int64_t before_id) {
  auto rd = source_->reader();
  if (!rd) return std::move(rd).error();
  // The domain's earlier reports by reports_type_domain_begin, their records by report.
  auto q = (*rd)->query(
      "SELECT 1 FROM reports r JOIN dmarc_records d ON d.report_id = r.id"
      " WHERE r.type = 'dmarc-aggregate' AND r.policy_domain = ?1 AND r.id < ?2"
      " AND d.source_ip = ?3 LIMIT 1");
  if (!q) return std::move(q).error();
  q->bind(1, normalize_domain(domain)).bind(2, before_id).bind(3, source_ip);
  auto row = q->step();
  if (!row) return std::move(row).error();
  return *row;
}

Result<std::vector<TlsDayPoint>> SqlStore::tls_daily(const SeriesQuery& query) {
  Params params;
  std::string where = series_where(query, report::ReportType::TlsAggregate, false, params);
  return select_all<TlsDayPoint>(source_->reader(),
                                 std::string("SELECT ") + kDay +
                                     " AS day, sum(p.success_count), sum(p.failure_count)"
                                     " FROM reports r JOIN tls_policies p ON p.report_id = r.id" +
                                     where + " GROUP BY day ORDER BY day",
                                 params, [](const Query& c) {
                                   return TlsDayPoint{c.i64(0), c.u64(1), c.u64(2)};
                                 });
}

Result<std::vector<TlsFailureStat>> SqlStore::tls_failures_by_type(const SeriesQuery& query) {
  Params params;
  std::string where = series_where(query, report::ReportType::TlsAggregate, false, params);
  // RFC 8460 §4.3: result types as the reporter wrote them.
  return select_all<TlsFailureStat>(
      source_->reader(),
      "SELECT f.result_type, sum(f.failed_session_count) AS sessions, count(DISTINCT r.id)"
      " FROM reports r JOIN tls_policies p ON p.report_id = r.id"
      " JOIN tls_failures f ON f.policy_id = p.id" +
          where + " GROUP BY f.result_type ORDER BY sessions DESC, f.result_type",
      params, [](const Query& c) {
        return TlsFailureStat{c.text(0), c.u64(1), c.u64(2)};
      });
}

Result<std::vector<OutboxStat>> SqlStore::outbox_stats() {
  return select_all<OutboxStat>(
      source_->reader(),
      "SELECT kind, state, count(*), min(created_at) FROM outbox GROUP BY kind, state"
      " ORDER BY kind, CASE state WHEN 'queued' THEN 0 WHEN 'sent' THEN 1 ELSE 2 END",
      Params{}, [](const Query& c) {
        return OutboxStat{c.text(0),
                          outbox_state_from_string(c.text(1)).value_or(OutboxState::Failed),
                          c.u64(2), c.i64(3)};
      });
}

Result<std::vector<EvaluationStat>> SqlStore::evaluation_summary(const SeriesQuery& query) {
  Params params;
  std::string where = " WHERE e.interval_begin >= " + params.arg(query.from);
  if (query.to != 0) where += " AND e.interval_begin < " + params.arg(query.to);
  if (!query.domain.empty()) {
    where += " AND e.policy_domain = " + params.arg(normalize_domain(query.domain));
  }
  if (!query.source_ip.empty()) where += " AND e.source_ip = " + params.arg(query.source_ip);
  // By evaluations_interval (or evaluations_identity with a domain); busiest domain first.
  return select_all<EvaluationStat>(
      source_->reader(),
      "SELECT e.policy_domain, sum(e.count) AS messages,"
      " sum(CASE WHEN e.dkim = 'pass' OR e.spf = 'pass' THEN e.count ELSE 0 END),"
      " sum(CASE WHEN e.disposition = 'quarantine' THEN e.count ELSE 0 END),"
      " sum(CASE WHEN e.disposition = 'reject' THEN e.count ELSE 0 END),"
      " sum(e.reported), count(DISTINCT e.source_ip), min(e.first_seen), max(e.last_seen)"
      " FROM evaluations e" +
          where + " GROUP BY e.policy_domain ORDER BY messages DESC, e.policy_domain",
      params, [](const Query& c) {
        EvaluationStat s;
        s.policy_domain = c.text(0);
        s.messages = c.u64(1);
        s.pass = std::min(c.u64(2), s.messages);
        s.fail = s.messages - s.pass;
        s.quarantine = c.u64(3);
        s.reject = c.u64(4);
        s.reported = c.u64(5);
        s.sources = c.u64(6);
        s.first_seen = c.i64(7);
        s.last_seen = c.i64(8);
        return s;
      });
}

}  // namespace mailreport::store::sql

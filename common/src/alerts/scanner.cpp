// alerts: the scanner (see mailreport/alerts/alerts.hpp): the rules over incoming reports and
// unparsed raw messages stored since the watermarks "reports" and "raw-unparsed" (ids), the
// events they raise in Stalwart's webhook shape, and one compare-and-set commit of the events
// with the new watermarks (Store::commit_alerts).
//
// - DMARC aggregate reports (RFC 7489 §7.2 / RFC 9990): a record "fails" when neither its
//   aligned DKIM nor its aligned SPF result (policy_evaluated) is pass (RFC 7489 §3.1: either
//   one is enough), as the store's pass/fail figures count it.
// - TLS reports: RFC 8460 §4.4 total-failure-session-count, with the result types (§4.3).
// - ARF: RFC 5965 §3.1 Feedback-Type, RFC 6591 auth-failure.
// - Warnings are logged after the commit, so that a scanner that loses the race logs nothing.
//
// Not done: a report committed with a smaller id after a larger one was scanned (concurrent
// writers on PostgreSQL) is not examined; re-parsed messages get new report ids and warn again.
#include <time.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "mailreport/alerts/alerts.hpp"

namespace mailreport::alerts {

namespace {

using Json = nlohmann::ordered_json;

constexpr std::string_view kReportsMark = "reports";
constexpr std::string_view kRawMark = "raw-unparsed";
constexpr std::size_t kFirstScanPage = 5000;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string rfc3339(std::int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// alerts.domains: [] = every domain; else the domain or one of its subdomains.
bool ours(const config::AlertsConfig& a, std::string_view domain_in) {
  if (a.domains.empty()) return true;
  const std::string d = lower(domain_in);
  for (const std::string& o : a.domains) {
    const std::string ol = lower(o);
    if (d == ol) return true;
    if (d.size() > ol.size() && d.ends_with(ol) && d[d.size() - ol.size() - 1] == '.') return true;
  }
  return false;
}

bool needs_quotes(std::string_view v) {
  if (v.empty()) return true;
  return v.find_first_of(" \t\"'=\\") != std::string_view::npos;
}

std::string quote_value(std::string_view v) {
  if (!needs_quotes(v)) return std::string(v);
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    out += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  }
  out += '"';
  return out;
}

std::string value_text(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {
    std::string s;
    for (const auto& e : v) {
      if (!s.empty()) s += ',';
      s += value_text(e);
    }
    return s;
  }
  if (v.is_object()) {
    std::string s;
    for (const auto& [k, e] : v.items()) {
      if (!s.empty()) s += ',';
      s += k + ":" + value_text(e);
    }
    return s;
  }
  return v.dump();
}

struct Warning {
  std::string type;
  std::string id;  // the event's id
  Json data;
};

// "warning event=NAME key=value ..." (values with spaces or quotes are quoted).
std::string warning_line(const Warning& w) {
  std::string line = "warning event=" + w.type;
  for (const auto& [k, v] : w.data.items()) {
    line += ' ';
    line += k;
    line += '=';
    line += quote_value(value_text(v));
  }
  return line;
}

bool failed(const report::DmarcRecord& r) {
  return r.row.policy_evaluated.dkim != "pass" && r.row.policy_evaluated.spf != "pass";
}

const char* arf_event(std::string_view feedback_type) {
  // RFC 5965 §7.3's registered types and RFC 6591's auth-failure; anything else is "other".
  static constexpr std::pair<std::string_view, const char*> kTypes[] = {
      {"abuse", "arf.abuse"}, {"fraud", "arf.fraud"},       {"virus", "arf.virus"},
      {"other", "arf.other"}, {"not-spam", "arf.not-spam"}, {"auth-failure", "arf.auth-failure"},
  };
  const std::string ft = lower(feedback_type);
  for (const auto& [name, event] : kTypes) {
    if (ft == name) return event;
  }
  return "arf.other";
}

Json report_data(const store::ReportSummary& s) {
  Json d;
  d["domain"] = lower(s.policy_domain);
  d["report"] = s.id;
  d["org"] = s.org_name;
  d["report_id"] = s.report_id;
  d["date_begin"] = s.date_begin;
  d["date_end"] = s.date_end;
  return d;
}

class Scan {
 public:
  Scan(const config::Config& cfg, store::Store& store) : a_(cfg.alerts), store_(store) {}

  Status report(const store::ReportSummary& s) {
    if (!ours(a_, s.policy_domain)) return {};
    switch (s.type) {
      case report::ReportType::DmarcAggregate: return dmarc(s);
      case report::ReportType::TlsAggregate: return tls(s);
      case report::ReportType::Arf: return arf(s);
      case report::ReportType::Dsn: return {};
    }
    return {};
  }

  void unparsed(const store::RawMessageInfo& m) {
    if (!a_.parse_failures) return;
    Json d;
    d["message"] = m.id;
    d["received_at"] = m.meta.received_at;
    d["source"] = m.meta.source;
    d["mail_from"] = m.meta.mail_from;
    d["rcpt_to"] = m.meta.rcpt_to;
    d["size"] = m.size;
    d["error"] = m.parse_error;
    add("report.parse-failure", "message-" + std::to_string(m.id), std::move(d));
  }

  std::vector<Warning>& warnings() { return warnings_; }

 private:
  void add(std::string type, std::string id, Json data) {
    warnings_.push_back({std::move(type), std::move(id), std::move(data)});
  }

  std::string id_of(const store::ReportSummary& s, std::string_view what) {
    return "report-" + std::to_string(s.id) + "-" + std::string(what);
  }

  Status dmarc(const store::ReportSummary& s) {
    // dmarc.failures: a count, or a rate over a report of dmarc-min-messages or more.
    bool by_count = a_.dmarc_failure_count > 0 && s.fail >= a_.dmarc_failure_count;
    bool by_rate =
        a_.dmarc_failure_rate > 0 && s.messages > 0 && s.messages >= a_.dmarc_min_messages &&
        s.fail > 0 &&
        static_cast<double>(s.fail) >= a_.dmarc_failure_rate * static_cast<double>(s.messages);
    if (by_count || by_rate) {
      Json d = report_data(s);
      d["messages"] = s.messages;
      d["pass"] = s.pass;
      d["fail"] = s.fail;
      d["fail_rate"] =
          s.messages == 0 ? 0.0 : static_cast<double>(s.fail) / static_cast<double>(s.messages);
      d["threshold_count"] = a_.dmarc_failure_count;
      d["threshold_rate"] = a_.dmarc_failure_rate;
      add("dmarc.failures", id_of(s, "failures"), std::move(d));
    }
    if (a_.dmarc_disposition_count == 0 && !a_.new_source) return {};
    auto stored = store_.get_report(s.id);
    if (!stored) {
      if (stored.error().code == ErrorCode::NotFound) return {};  // purged meanwhile
      return std::move(stored).error();
    }
    const auto* agg = std::get_if<report::DmarcAggregate>(&stored->report);
    if (agg == nullptr) return {};
    if (a_.dmarc_disposition_count > 0) {
      std::uint64_t quarantine = 0, reject = 0;
      for (const auto& r : agg->records) {
        if (r.row.policy_evaluated.disposition == "quarantine") quarantine += r.row.count;
        if (r.row.policy_evaluated.disposition == "reject") reject += r.row.count;
      }
      if (quarantine + reject >= a_.dmarc_disposition_count) {
        Json d = report_data(s);
        d["messages"] = s.messages;
        d["quarantine"] = quarantine;
        d["reject"] = reject;
        d["policy"] = agg->header.policy_published.p;
        d["threshold"] = a_.dmarc_disposition_count;
        add("dmarc.quarantine-reject", id_of(s, "disposition"), std::move(d));
      }
    }
    if (a_.new_source) {
      // Per failing source IP of this report, in the order of its records.
      std::map<std::string, std::pair<std::uint64_t, std::set<std::string>>> failing;
      std::vector<std::string> order;
      for (const auto& r : agg->records) {
        if (!failed(r) || r.row.source_ip.empty()) continue;
        auto [it, fresh] = failing.try_emplace(r.row.source_ip);
        if (fresh) order.push_back(r.row.source_ip);
        it->second.first += r.row.count;
        if (!r.identifiers.header_from.empty()) {
          it->second.second.insert(lower(r.identifiers.header_from));
        }
      }
      for (const std::string& ip : order) {
        auto known = store_.dmarc_source_known(s.policy_domain, ip, s.id);
        if (!known) return std::move(known).error();
        if (*known) continue;
        Json d = report_data(s);
        d["source_ip"] = ip;
        d["messages"] = failing[ip].first;
        d["header_from"] = Json(failing[ip].second);
        add("dmarc.new-source", id_of(s, "new-source-" + ip), std::move(d));
      }
    }
    return {};
  }

  Status tls(const store::ReportSummary& s) {
    if (a_.tls_failure_count == 0 || s.sessions_failed < a_.tls_failure_count) return {};
    Json d = report_data(s);
    d["successful"] = s.sessions_ok;
    d["failed"] = s.sessions_failed;
    Json types = Json::object();
    auto stored = store_.get_report(s.id);
    if (stored) {
      if (const auto* t = std::get_if<report::TlsReport>(&stored->report)) {
        std::map<std::string, std::uint64_t> by_type;
        for (const auto& p : t->policies) {
          for (const auto& f : p.failure_details) by_type[f.result_type] += f.failed_session_count;
        }
        for (const auto& [k, v] : by_type) types[k] = v;
      }
    } else if (stored.error().code != ErrorCode::NotFound) {
      return std::move(stored).error();
    }
    d["result_types"] = std::move(types);
    d["threshold"] = a_.tls_failure_count;
    add("tls.failures", id_of(s, "tls"), std::move(d));
    return {};
  }

  Status arf(const store::ReportSummary& s) {
    if (!a_.arf) return {};
    const char* event = arf_event(s.feedback_type);
    Json d = report_data(s);
    d.erase("report_id");
    d.erase("date_end");
    d["feedback_type"] = lower(s.feedback_type);
    d["source_ip"] = s.source_ip;
    auto stored = store_.get_report(s.id);
    if (stored) {
      if (const auto* r = std::get_if<report::ArfReport>(&stored->report)) {
        d["reporter"] = r->from;
        d["original_mail_from"] = r->original_mail_from;
        d["auth_failure"] = r->auth_failure;
        d["arrival_date"] = r->arrival_date.value_or(0);
        d["subject"] = r->subject;
        d["message_id"] = r->message_id;
        if (r->incidents) d["incidents"] = *r->incidents;
      }
    } else if (stored.error().code != ErrorCode::NotFound) {
      return std::move(stored).error();
    }
    add(event, id_of(s, "arf"), std::move(d));
    return {};
  }

  const config::AlertsConfig& a_;
  store::Store& store_;
  std::vector<Warning> warnings_;
};

// The largest report id and unparsed raw message id now stored (the first scan's start).
Result<std::int64_t> max_report_id(store::Store& store) {
  std::int64_t after = 0;
  for (;;) {
    store::ReportQuery q;
    q.oldest_first = true;
    q.after_id = after;
    q.limit = kFirstScanPage;
    auto page = store.query_reports(q);
    if (!page) return std::move(page).error();
    if (page->items.empty()) return after;
    for (const auto& s : page->items) after = std::max(after, s.id);
    if (page->items.size() < kFirstScanPage) return after;
  }
}

Result<std::int64_t> max_unparsed_id(store::Store& store) {
  std::int64_t after = 0;
  for (;;) {
    auto page = store.list_raw_messages({store::ParseStatus::Unparsed, after, kFirstScanPage});
    if (!page) return std::move(page).error();
    if (page->empty()) return after;
    for (const auto& m : *page) after = std::max(after, m.id);
    if (page->size() < kFirstScanPage) return after;
  }
}

}  // namespace

AlertScanner::AlertScanner(std::shared_ptr<const config::Config> config, store::Store& store,
                           Logger& log, WarningLog& warnings)
    : config_(std::move(config)), store_(store), log_(log), warnings_(warnings) {}

void AlertScanner::set_config(std::shared_ptr<const config::Config> config) {
  std::atomic_store(&config_, std::move(config));
}

Result<ScanStats> AlertScanner::run_once(std::int64_t now, std::size_t limit) {
  const std::shared_ptr<const config::Config> cfg = std::atomic_load(&config_);
  if (limit == 0) limit = 1000;
  ScanStats stats;
  auto reports_mark = store_.alert_watermark(kReportsMark);
  if (!reports_mark) return std::move(reports_mark).error();
  auto raw_mark = store_.alert_watermark(kRawMark);
  if (!raw_mark) return std::move(raw_mark).error();

  store::AlertBatch batch;
  batch.expect = {{std::string(kReportsMark), *reports_mark}, {std::string(kRawMark), *raw_mark}};
  Scan scan(*cfg, store_);

  // The first scan of a store starts at what is there now: no warnings about the past.
  if (!reports_mark->has_value()) {
    auto max = max_report_id(store_);
    if (!max) return std::move(max).error();
    batch.watermarks.emplace_back(kReportsMark, *max);
  } else {
    store::ReportQuery q;
    q.oldest_first = true;
    q.after_id = **reports_mark;
    q.limit = limit;
    auto page = store_.query_reports(q);
    if (!page) return std::move(page).error();
    std::int64_t mark = **reports_mark;
    for (const auto& s : page->items) {
      if (auto st = scan.report(s); !st) return std::move(st).error();
      mark = std::max(mark, s.id);
      ++stats.reports;
    }
    if (mark != **reports_mark) batch.watermarks.emplace_back(kReportsMark, mark);
  }
  if (!raw_mark->has_value()) {
    auto max = max_unparsed_id(store_);
    if (!max) return std::move(max).error();
    batch.watermarks.emplace_back(kRawMark, *max);
  } else {
    auto page = store_.list_raw_messages({store::ParseStatus::Unparsed, **raw_mark, limit});
    if (!page) return std::move(page).error();
    std::int64_t mark = **raw_mark;
    for (const auto& m : *page) {
      scan.unparsed(m);
      mark = std::max(mark, m.id);
      ++stats.reports;
    }
    if (mark != **raw_mark) batch.watermarks.emplace_back(kRawMark, mark);
  }
  if (batch.watermarks.empty()) return stats;  // nothing new

  const std::vector<Warning>& found = scan.warnings();
  std::vector<std::string> bodies;
  bodies.reserve(found.size());
  for (const Warning& w : found) {
    Json e;
    e["id"] = w.id;
    e["createdAt"] = rfc3339(now);
    e["type"] = w.type;
    e["data"] = w.data;
    bodies.push_back(e.dump());
  }
  for (std::size_t i = 0; i < found.size(); ++i) {
    for (const auto& [id, hook] : cfg->webhooks) {
      // A webhook without events gets none ("*" asks for all).
      if (!event_matches(hook.events, found[i].type)) continue;
      store::WebhookEvent ev;
      ev.webhook = id;
      ev.type = found[i].type;
      ev.created_at = now;
      ev.body = bodies[i];
      batch.events.push_back(std::move(ev));
    }
  }
  if (auto st = store_.commit_alerts(batch); !st) return std::move(st).error();

  for (const Warning& w : found) {
    const std::string line = warning_line(w);
    log_.warning("alerts", line);
    warnings_.write(line);
  }
  stats.warnings = found.size();
  stats.queued = batch.events.size();
  return stats;
}

}  // namespace mailreport::alerts

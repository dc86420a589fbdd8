// The dashboard's HTTP handler (web/dashboard.hpp): the router, the bearer-token check
// (RFC 6750 §2.1 header form only; the token compared in constant time), the JSON API over
// the store (docs/api.md), the page's static files with security headers, the SVG charts
// (web/charts.hpp) and /metrics (web/metrics_text.hpp).
//
// Conventions of the API: every answer is JSON serialized with nlohmann-json, errors are
// {"error": "..."}; a store error maps to 404 (NotFound), 501 (Unsupported: a query this
// store does not answer), 400 (Invalid) or 500; API answers carry Cache-Control: no-store.
// `from` / `to` are YYYY-MM-DD (that day's UTC midnight) or epoch seconds; periods are
// [from, to) on the reports' date_begin; from defaults to now - 30 days, to to none.
//
// Not done: ETags or conditional requests; the raw download is held in memory whole (raw
// messages are bounded by the receiver's size limit).
#include "mailreport/web/dashboard.hpp"

#include <openssl/crypto.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

#include "mailreport/report/json.hpp"
#include "mailreport/web/assets.hpp"
#include "mailreport/web/charts.hpp"
#include "mailreport/web/metrics_text.hpp"
#include "web/request_args.hpp"

namespace mailreport::web {

namespace {

using nlohmann::json;

constexpr std::size_t kRecentAggregates = 20;

// ------------------------------------------------------------------ answers

Response api_json(int status, const json& body) {
  Response r = Response::json(status, body.dump());
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

Response api_error(int status, std::string_view message) {
  Response r = Response::error(status, message);
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

Response store_error(const Error& e) {
  switch (e.code) {
    case ErrorCode::NotFound: return api_error(404, e.message);
    case ErrorCode::Unsupported: return api_error(501, "not supported by this store: " + e.message);
    case ErrorCode::Invalid: return api_error(400, e.message);
    default: return api_error(500, e.describe());
  }
}

// The page's answers: no script, style or image from anywhere but here (the page is
// self-contained), no MIME sniffing, no Referer with the dashboard's address leaving.
void add_page_headers(Response& r) {
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                         "script-src 'self'");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
}

// ------------------------------------------------------------------ parameters

// ------------------------------------------------------------------ JSON of store types

json summary_json(const store::ReportSummary& s) {
  return json{
      {"id", s.id},
      {"type", report::to_string(s.type)},
      {"org_name", s.org_name},
      {"report_id", s.report_id},
      {"policy_domain", s.policy_domain},
      {"date_begin", s.date_begin},
      {"date_end", s.date_end},
      {"received_at", s.received_at},
      {"errors", s.error_count},
      {"messages", s.messages},
      {"pass", s.pass},
      {"fail", s.fail},
      {"sessions_ok", s.sessions_ok},
      {"sessions_failed", s.sessions_failed},
      {"feedback_type", s.feedback_type},
      {"source_ip", s.source_ip},
      {"action", s.action},
      {"status", s.status},
      {"recipient", s.recipient},
      {"message_id", s.message_id},
  };
}

json outbox_stat_json(const store::OutboxStat& s) {
  return json{{"kind", s.kind},
              {"state", store::to_string(s.state)},
              {"count", s.count},
              {"oldest_created_at", s.oldest_created_at}};
}

json outbox_entry_json(const store::OutboxEntry& e) {
  // Without the payload: it can hold the failed message's headers, and is large.
  return json{{"id", e.id},
              {"kind", e.kind},
              {"recipient", e.recipient},
              {"reported_domain", e.reported_domain},
              {"created_at", e.created_at},
              {"state", store::to_string(e.state)},
              {"attempts", e.attempts},
              {"next_attempt_at", e.next_attempt_at},
              {"finished_at", e.finished_at},
              {"last_error", e.last_error},
              {"message_id", e.message_id}};
}

json aggregate_json(const store::AggregateReport& a) {
  return json{{"id", a.id},
              {"kind", a.kind},
              {"report_id", a.report_id},
              {"policy_domain", a.policy_domain},
              {"date_begin", a.date_begin},
              {"date_end", a.date_end},
              {"created_at", a.created_at},
              {"filename", a.filename},
              {"records", a.records},
              {"messages", a.messages}};
}

std::optional<report::ReportType> report_type_arg(std::string_view v) {
  using report::ReportType;
  if (v == "dmarc" || v == "dmarc-aggregate") return ReportType::DmarcAggregate;
  if (v == "tls" || v == "tls-aggregate") return ReportType::TlsAggregate;
  if (v == "arf") return ReportType::Arf;
  if (v == "dsn") return ReportType::Dsn;
  return std::nullopt;
}

// ------------------------------------------------------------------ the handler

class Dashboard {
 public:
  explicit Dashboard(DashboardContext context) : ctx_(std::move(context)) {
    if (!ctx_.now) {
      ctx_.now = [] {
        return std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
      };
    }
    if (!ctx_.token) ctx_.token = [] { return std::string(); };
  }

  Response operator()(const Request& r) {
    // Read-only (RFC 9110 §15.5.6: 405 names the allowed methods).
    if (r.method != "GET" && r.method != "HEAD") {
      Response resp = api_error(405, "method not allowed: the dashboard is read-only");
      resp.headers.emplace_back("Allow", "GET, HEAD");
      return resp;
    }
    if (r.path == "/healthz") return Response::text(200, "ok");
    if (r.path == "/" || r.path.starts_with("/assets/")) return page(r.path);

    if (!authorized(r)) {
      // RFC 6750 §3: the challenge; a wrong token is invalid_token.
      Response resp = api_error(401, "missing or wrong bearer token");
      resp.headers.emplace_back("WWW-Authenticate",
                                r.header("authorization").empty()
                                    ? "Bearer realm=\"mailreport\""
                                    : "Bearer realm=\"mailreport\", error=\"invalid_token\"");
      return resp;
    }

    if (r.path == "/metrics") return metrics();
    if (r.path.starts_with("/api/v1/charts/")) {
      auto chart = handle_chart(r, *ctx_.store, ctx_.now());
      if (!chart) return api_error(404, "no such chart");
      chart->headers.emplace_back("Cache-Control", "no-store");
      chart->headers.emplace_back("X-Content-Type-Options", "nosniff");
      return *chart;
    }
    if (r.path == "/api/v1/summary") return summary();
    if (r.path == "/api/v1/reports") return reports(r);
    if (r.path.starts_with("/api/v1/reports/")) return report_detail(r.path);
    if (r.path == "/api/v1/timeseries/dmarc") return dmarc_series(r);
    if (r.path == "/api/v1/timeseries/tls") return tls_series(r);
    if (r.path == "/api/v1/sources/failing") return failing_sources(r);
    if (r.path == "/api/v1/tls/failures") return tls_failures(r);
    if (r.path == "/api/v1/outgoing") return outgoing(r);
    if (r.path == "/api/v1/evaluations/summary") return evaluations(r);
    return api_error(404, "no such route: " + r.path);
  }

 private:
  bool authorized(const Request& r) const {
    const std::string expected = ctx_.token();
    if (expected.empty()) return true;  // dashboard.allow-no-token
    const std::string value = r.header("authorization");
    // RFC 9110 §11.1: the scheme is case-insensitive; RFC 6750 §2.1: "Bearer" 1*SP token.
    if (value.size() < 7) return false;
    std::string scheme = value.substr(0, 7);
    for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (scheme != "bearer ") return false;
    std::string_view given(value);
    given.remove_prefix(7);
    while (!given.empty() && given.front() == ' ') given.remove_prefix(1);
    while (!given.empty() && given.back() == ' ') given.remove_suffix(1);
    // The length is not secret (it leaks through timing anyway); the bytes are compared in
    // constant time.
    if (given.size() != expected.size()) return false;
    return CRYPTO_memcmp(given.data(), expected.data(), expected.size()) == 0;
  }

  static Response page(const std::string& path) {
    const Asset* asset = find_asset(path);
    if (asset == nullptr) {
      Response r = Response::error(404, "no such file");
      add_page_headers(r);
      return r;
    }
    Response r;
    r.status = 200;
    r.content_type = std::string(asset->content_type);
    r.body = std::string(asset->data);
    add_page_headers(r);
    // The page itself is revalidated each time (a new version shows at once); the rest is small.
    r.headers.emplace_back("Cache-Control", path == "/" ? "no-cache" : "max-age=3600");
    return r;
  }

  Response metrics() {
    auto text = render_metrics(*ctx_.store);
    if (!text) return store_error(text.error());
    Response r;
    r.status = 200;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = std::move(text).value();
    r.headers.emplace_back("Cache-Control", "no-store");
    return r;
  }

  Response summary() {
    auto s = ctx_.store->summary();
    if (!s) return store_error(s.error());
    json reports = json::object();
    for (auto t : {report::ReportType::DmarcAggregate, report::ReportType::TlsAggregate,
                   report::ReportType::Arf, report::ReportType::Dsn}) {
      reports[report::to_string(t)] = 0;
    }
    for (const auto& [type, n] : s->reports_by_type) reports[report::to_string(type)] = n;
    auto stats = ctx_.store->outbox_stats();
    if (!stats) return store_error(stats.error());
    auto depths = ctx_.store->webhook_queue_depths();
    if (!depths) return store_error(depths.error());
    json outbox = json::array();
    for (const auto& st : *stats) outbox.push_back(outbox_stat_json(st));
    json hooks = json::array();
    for (const auto& [id, n] : *depths) hooks.push_back(json{{"webhook", id}, {"pending", n}});
    return api_json(
        200,
        json{
            {"reports", reports},
            {"dmarc",
             {{"messages", s->dmarc_messages}, {"pass", s->dmarc_pass}, {"fail", s->dmarc_fail}}},
            {"tls", {{"successful", s->tls_sessions_ok}, {"failed", s->tls_sessions_failed}}},
            {"raw_messages", s->raw_messages},
            {"unparsed", s->unparsed_messages},
            {"outbox", outbox},
            {"webhooks", hooks},
        });
  }

  Response reports(const Request& r) {
    store::ReportQuery q;
    if (const std::string type = r.arg("type"); !type.empty()) {
      q.type = report_type_arg(type);
      if (!q.type) {
        return api_error(400, "type: expected dmarc, tls, arf or dsn, got \"" + type + "\"");
      }
    }
    q.domain = r.arg("domain");
    q.reporter = r.arg("reporter");
    q.result = r.arg("result");
    std::optional<std::int64_t> from;
    if (auto bad = time_arg(r, "from", from)) return api_error(400, bad->message);
    if (auto bad = time_arg(r, "to", q.to)) return api_error(400, bad->message);
    q.from = from.value_or(ctx_.now() - kDefaultPeriod);
    if (auto bad = limit_arg(r, q.limit)) return api_error(400, bad->message);
    std::int64_t offset = 0;
    if (auto bad = count_arg(r, "offset", offset)) return api_error(400, bad->message);
    q.offset = static_cast<std::size_t>(offset);
    auto page = ctx_.store->query_reports(q);
    if (!page) return store_error(page.error());
    json items = json::array();
    for (const auto& s : page->items) items.push_back(summary_json(s));
    return api_json(
        200,
        json{{"total", page->total}, {"limit", q.limit}, {"offset", q.offset}, {"items", items}});
  }

  Response report_detail(std::string_view path) {
    path.remove_prefix(std::string_view("/api/v1/reports/").size());
    bool raw = false;
    if (path.ends_with("/raw")) {
      raw = true;
      path.remove_suffix(4);
    }
    auto id = parse_count(path);
    if (!id || *id <= 0) return api_error(404, "no such report");
    auto stored = ctx_.store->get_report(*id);
    if (!stored) return store_error(stored.error());
    if (!raw) {
      return api_json(200, json{{"summary", summary_json(stored->summary)},
                                {"report", report::to_json(stored->report)}});
    }
    if (stored->summary.message_id == 0) {
      return api_error(404,
                       "the raw message of report " + std::to_string(*id) + " is no longer stored");
    }
    std::string bytes;
    Status read = ctx_.store->read_raw(stored->summary.message_id, [&](std::span<const char> p) {
      bytes.append(p.data(), p.size());
      return Status{};
    });
    if (!read) return store_error(read.error());
    Response resp;
    resp.status = 200;
    resp.content_type = "message/rfc822";
    resp.body = std::move(bytes);
    resp.headers.emplace_back("Cache-Control", "no-store");
    resp.headers.emplace_back("X-Content-Type-Options", "nosniff");
    resp.headers.emplace_back("Content-Disposition",
                              "attachment; filename=\"report-" + std::to_string(*id) + ".eml\"");
    return resp;
  }

  Response dmarc_series(const Request& r) {
    store::SeriesQuery q;
    if (auto bad = series_args(r, ctx_.now(), true, q)) return api_error(400, bad->message);
    auto points = ctx_.store->dmarc_daily(q);
    if (!points) return store_error(points.error());
    json days = json::array();
    for (const auto& p : *points) {
      days.push_back(json{{"day", p.day},
                          {"messages", p.messages},
                          {"pass", p.pass},
                          {"fail", p.fail},
                          {"none", p.none},
                          {"quarantine", p.quarantine},
                          {"reject", p.reject}});
    }
    return api_json(200, json{{"days", days}});
  }

  Response tls_series(const Request& r) {
    store::SeriesQuery q;
    if (auto bad = series_args(r, ctx_.now(), false, q)) return api_error(400, bad->message);
    auto points = ctx_.store->tls_daily(q);
    if (!points) return store_error(points.error());
    json days = json::array();
    for (const auto& p : *points) {
      days.push_back(json{{"day", p.day}, {"successful", p.successful}, {"failed", p.failed}});
    }
    return api_json(200, json{{"days", days}});
  }

  Response failing_sources(const Request& r) {
    store::SeriesQuery q;
    if (auto bad = series_args(r, ctx_.now(), false, q)) return api_error(400, bad->message);
    std::size_t limit = 0;
    if (auto bad = limit_arg(r, limit)) return api_error(400, bad->message);
    auto sources = ctx_.store->top_failing_sources(q, limit);
    if (!sources) return store_error(sources.error());
    json items = json::array();
    for (const auto& s : *sources) {
      items.push_back(json{{"source_ip", s.source_ip},
                           {"messages", s.messages},
                           {"pass", s.pass},
                           {"fail", s.fail},
                           {"reports", s.reports},
                           {"last_seen", s.last_seen},
                           {"header_from", s.header_from},
                           {"policy_domains", s.policy_domains}});
    }
    return api_json(200, json{{"items", items}});
  }

  Response tls_failures(const Request& r) {
    store::SeriesQuery q;
    if (auto bad = series_args(r, ctx_.now(), false, q)) return api_error(400, bad->message);
    auto stats = ctx_.store->tls_failures_by_type(q);
    if (!stats) return store_error(stats.error());
    json items = json::array();
    for (const auto& s : *stats) {
      items.push_back(
          json{{"result_type", s.result_type}, {"sessions", s.sessions}, {"reports", s.reports}});
    }
    return api_json(200, json{{"items", items}});
  }

  Response outgoing(const Request& r) {
    store::OutboxFilter f;
    if (const std::string state = r.arg("state"); !state.empty()) {
      f.state = store::outbox_state_from_string(state);
      if (!f.state) {
        return api_error(400, "state: expected queued, sent or failed, got \"" + state + "\"");
      }
    }
    f.kind = r.arg("kind");
    if (auto bad = limit_arg(r, f.limit)) return api_error(400, bad->message);
    if (auto bad = count_arg(r, "after_id", f.after_id)) return api_error(400, bad->message);
    auto stats = ctx_.store->outbox_stats();
    if (!stats) return store_error(stats.error());
    auto entries = ctx_.store->list_outbox(f);
    if (!entries) return store_error(entries.error());
    store::AggregateReportFilter af;
    af.limit = kRecentAggregates;
    auto aggregates = ctx_.store->list_aggregate_reports(af);
    if (!aggregates) return store_error(aggregates.error());
    json st = json::array();
    for (const auto& s : *stats) st.push_back(outbox_stat_json(s));
    json items = json::array();
    for (const auto& e : *entries) items.push_back(outbox_entry_json(e));
    json aggs = json::array();
    for (const auto& a : *aggregates) aggs.push_back(aggregate_json(a));
    return api_json(200, json{{"stats", st}, {"items", items}, {"aggregate_reports", aggs}});
  }

  Response evaluations(const Request& r) {
    store::SeriesQuery q;
    if (auto bad = series_args(r, ctx_.now(), false, q)) return api_error(400, bad->message);
    auto stats = ctx_.store->evaluation_summary(q);
    if (!stats) return store_error(stats.error());
    json items = json::array();
    for (const auto& s : *stats) {
      items.push_back(json{{"policy_domain", s.policy_domain},
                           {"messages", s.messages},
                           {"pass", s.pass},
                           {"fail", s.fail},
                           {"quarantine", s.quarantine},
                           {"reject", s.reject},
                           {"reported", s.reported},
                           {"sources", s.sources},
                           {"first_seen", s.first_seen},
                           {"last_seen", s.last_seen}});
    }
    return api_json(200, json{{"items", items}});
  }

  DashboardContext ctx_;
};

}  // namespace

Handler make_dashboard_handler(DashboardContext context) {
  auto dashboard = std::make_shared<Dashboard>(std::move(context));
  return [dashboard](const Request& r) { return (*dashboard)(r); };
}

Result<std::string> load_dashboard_token(const config::DashboardConfig& config) {
  if (!config.token.empty() && !config.token_file.empty()) {
    return make_error(ErrorCode::Invalid,
                      "dashboard.token and dashboard.token-file are both set: keep one");
  }
  if (!config.token.empty()) return config.token;
  if (config.token_file.empty()) return std::string();
  // The configuration's own reader: a file closed to other users (root:mailreport 0640 is
  // what the Debian package makes), one bearer token.
  auto token = config::read_dashboard_token_file(config.token_file);
  if (!token) {
    return make_error(token.error().code, "dashboard.token-file: " + token.error().message);
  }
  return token;
}

}  // namespace mailreport::web

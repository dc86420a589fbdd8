// The dashboard handler (web/dashboard.hpp) over a real SQLite store in a temporary directory,
// with reports stored through the normal write path (WriteTransaction + ReportWriter): the
// bearer-token check, 405, the JSON API's answers field by field, parameter validation, the
// report detail and raw download, the page's security headers, /metrics and /healthz; and
// load_dashboard_token's file checks. The handler is called directly (the HTTP side is
// http_server_test.cpp and the integration test dashboard_api_test.cpp).
#include "mailreport/web/dashboard.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "../store/store_fixtures.hpp"
#include "testsupport.hpp"

namespace mailreport::web {
namespace {

using nlohmann::json;

constexpr std::int64_t kDay0 = 1699920000;  // 2023-11-14 00:00:00 UTC
constexpr std::int64_t kDay = 86400;
constexpr std::int64_t kNow = kDay0 + 10 * kDay;
constexpr const char* kToken = "s3cret-token";
constexpr const char* kRawMessage = "From: reporter@example.org\r\nSubject: r\r\n\r\nbody\r\n";

template <class Fill>
void write_message(store::Store& store, Fill&& fill, std::int64_t received_at) {
  auto tx = store.begin_write();
  ASSERT_TRUE(tx) << tx.error().describe();
  MemorySource src(kRawMessage);
  auto info = (*tx)->add_raw_message(
      {received_at, "test", "a@b.example", {"dmarc@ours.example"}, "unit"}, src);
  ASSERT_TRUE(info) << info.error().describe();
  auto writer = (*tx)->report_writer(info->id, received_at);
  fill(*writer);
  ASSERT_TRUE(writer->finish());
  ASSERT_EQ(writer->stored(), 1u);
  ASSERT_TRUE((*tx)->set_parse_outcome(info->id, store::ParseStatus::Parsed, ""));
  writer.reset();
  ASSERT_TRUE((*tx)->commit());
}

report::DmarcAggregate dmarc(const std::string& id, const std::string& org,
                             const std::string& domain, std::int64_t begin, std::uint64_t pass,
                             std::uint64_t fail, const std::string& fail_ip) {
  auto a = test::sample_dmarc(id, org, domain, begin);
  a.records.clear();
  report::DmarcRecord ok;
  ok.row.source_ip = "192.0.2.1";
  ok.row.count = pass;
  ok.row.policy_evaluated = {"none", "pass", "fail", {}};
  ok.identifiers.header_from = domain;
  a.records.push_back(ok);
  if (fail > 0) {
    report::DmarcRecord bad;
    bad.row.source_ip = fail_ip;
    bad.row.count = fail;
    bad.row.policy_evaluated = {"reject", "fail", "fail", {}};
    bad.identifiers.header_from = domain;
    a.records.push_back(bad);
  }
  return a;
}

class DashboardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = test::open_store(dir_ / "store.db");
    ASSERT_TRUE(store_);
    // D1: example.com day 0, 10 pass + 4 fail from 198.51.100.7
    // D2: example.org day 1, 5 pass
    // D3: example.com day 2, 3 pass + 2 fail from 203.0.113.5
    // T1: TLS example.com day 1, 100 ok, 7 failed (certificate-expired)
    // A1: ARF; S1: DSN
    auto put = [this](const report::DmarcAggregate& a, std::int64_t at) {
      write_message(
          *store_, [&](store::ReportWriter& w) { test::write_dmarc(w, a); }, at);
    };
    put(dmarc("D1", "Google", "example.com", kDay0 + 3600, 10, 4, "198.51.100.7"), kDay0 + kDay);
    put(dmarc("D2", "Yahoo", "example.org", kDay0 + kDay, 5, 0, ""), kDay0 + 2 * kDay);
    put(dmarc("D3", "Google", "example.com", kDay0 + 2 * kDay, 3, 2, "203.0.113.5"),
        kDay0 + 3 * kDay);
    auto t = test::sample_tls("T1");
    t.date_range = {kDay0 + kDay, kDay0 + 2 * kDay - 1};
    t.policies.resize(1);
    t.policies[0].policy_domain = "example.com";
    t.policies[0].total_successful_session_count = 100;
    t.policies[0].total_failure_session_count = 7;
    t.policies[0].failure_details.resize(1);
    t.policies[0].failure_details[0].result_type = "certificate-expired";
    t.policies[0].failure_details[0].failed_session_count = 7;
    write_message(
        *store_, [&](store::ReportWriter& w) { ASSERT_TRUE(w.tls(std::move(t))); },
        kDay0 + 2 * kDay);
    auto arf = test::sample_arf("<arf-1@reporter.example>");
    arf.arrival_date = kDay0 + kDay;
    write_message(
        *store_, [&](store::ReportWriter& w) { ASSERT_TRUE(w.arf(std::move(arf))); }, kDay0 + kDay);
    auto dsn = test::sample_dsn();
    dsn.arrival_date = kDay0 + kDay;
    write_message(
        *store_, [&](store::ReportWriter& w) { ASSERT_TRUE(w.dsn(std::move(dsn))); }, kDay0 + kDay);

    DashboardContext ctx;
    ctx.store = store_.get();
    ctx.config = [] { return std::make_shared<const config::Config>(); };
    ctx.token = [this] {
      std::lock_guard lock(mu_);
      return token_;
    };
    ctx.now = [] { return kNow; };
    handler_ = make_dashboard_handler(std::move(ctx));
  }

  Response get(const std::string& target, bool auth = true, const std::string& method = "GET") {
    Request r;
    r.method = method;
    auto q = target.find('?');
    r.path = target.substr(0, q);
    if (q != std::string::npos) {
      std::string rest = target.substr(q + 1);
      std::size_t pos = 0;
      while (pos <= rest.size()) {
        auto amp = rest.find('&', pos);
        std::string pair =
            rest.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
        auto eq = pair.find('=');
        r.query[pair.substr(0, eq)] = eq == std::string::npos ? "" : pair.substr(eq + 1);
        if (amp == std::string::npos) break;
        pos = amp + 1;
      }
    }
    if (auth) r.headers["authorization"] = std::string("Bearer ") + kToken;
    return handler_(r);
  }

  json get_json(const std::string& target, int status = 200) {
    Response r = get(target);
    EXPECT_EQ(r.status, status) << target << ": " << r.body;
    EXPECT_EQ(r.content_type, "application/json") << target;
    EXPECT_TRUE(has_header(r, "Cache-Control", "no-store")) << target;
    return json::parse(r.body, nullptr, false);
  }

  static bool has_header(const Response& r, const std::string& name, const std::string& value) {
    for (const auto& [n, v] : r.headers) {
      if (n == name && v == value) return true;
    }
    return false;
  }
  static std::string header(const Response& r, const std::string& name) {
    for (const auto& [n, v] : r.headers) {
      if (n == name) return v;
    }
    return {};
  }

  std::int64_t id_of(const std::string& report_id) {
    json page = get_json("/api/v1/reports?from=0&limit=500");
    for (const auto& item : page["items"]) {
      if (item["report_id"] == report_id) return item["id"].get<std::int64_t>();
    }
    ADD_FAILURE() << "no report " << report_id;
    return 0;
  }

  test::TempDir dir_;
  std::unique_ptr<store::Store> store_;
  std::mutex mu_;
  std::string token_ = kToken;
  Handler handler_;
};

TEST_F(DashboardTest, TokenIsRequiredOnDataRoutes) {
  for (const char* path : {"/api/v1/summary", "/api/v1/reports", "/metrics",
                           "/api/v1/charts/dmarc-daily.svg", "/api/v1/nowhere"}) {
    Response r = get(path, false);
    EXPECT_EQ(r.status, 401) << path;
    EXPECT_EQ(header(r, "WWW-Authenticate").rfind("Bearer", 0), 0U) << path;
  }
  Request wrong;
  wrong.method = "GET";
  wrong.path = "/api/v1/summary";
  wrong.headers["authorization"] = "Bearer s3cret-tokeN";
  Response r = handler_(wrong);
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(header(r, "WWW-Authenticate").find("invalid_token"), std::string::npos);
  wrong.headers["authorization"] = "Basic czNjcmV0LXRva2Vu";
  EXPECT_EQ(handler_(wrong).status, 401);
  // The scheme is case-insensitive.
  wrong.headers["authorization"] = std::string("bearer ") + kToken;
  EXPECT_EQ(handler_(wrong).status, 200);
  // A reload changes the token at once.
  {
    std::lock_guard lock(mu_);
    token_ = "other";
  }
  EXPECT_EQ(get("/api/v1/summary").status, 401);
  {
    std::lock_guard lock(mu_);
    token_ = "";  // dashboard.allow-no-token
  }
  EXPECT_EQ(get("/api/v1/summary", false).status, 200);
}

TEST_F(DashboardTest, HealthzAndPageNeedNoToken) {
  Response h = get("/healthz", false);
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.body, "ok");
  Response page = get("/", false);
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.content_type.rfind("text/html", 0), 0U);
  EXPECT_EQ(header(page, "Content-Security-Policy"),
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'");
  EXPECT_EQ(header(page, "X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(header(page, "Referrer-Policy"), "no-referrer");
  EXPECT_EQ(get("/assets/no-such-file.js", false).status, 404);
}

TEST_F(DashboardTest, OnlyGetAndHead) {
  for (const char* method : {"POST", "PUT", "DELETE"}) {
    Response r = get("/api/v1/summary", true, method);
    EXPECT_EQ(r.status, 405) << method;
    EXPECT_EQ(header(r, "Allow"), "GET, HEAD");
  }
  EXPECT_EQ(get("/api/v1/summary", true, "HEAD").status, 200);
}

TEST_F(DashboardTest, Summary) {
  json s = get_json("/api/v1/summary");
  EXPECT_EQ(s["reports"]["dmarc-aggregate"], 3);
  EXPECT_EQ(s["reports"]["tls-aggregate"], 1);
  EXPECT_EQ(s["reports"]["arf"], 1);
  EXPECT_EQ(s["reports"]["dsn"], 1);
  EXPECT_EQ(s["dmarc"]["messages"], 24);
  EXPECT_EQ(s["dmarc"]["pass"], 18);
  EXPECT_EQ(s["dmarc"]["fail"], 6);
  EXPECT_EQ(s["tls"]["successful"], 100);
  EXPECT_EQ(s["tls"]["failed"], 7);
  EXPECT_EQ(s["raw_messages"], 6);
  EXPECT_EQ(s["unparsed"], 0);
  EXPECT_TRUE(s["outbox"].is_array());
  EXPECT_TRUE(s["webhooks"].is_array());
}

TEST_F(DashboardTest, ReportsListFilterAndPage) {
  json all = get_json("/api/v1/reports?from=0");
  EXPECT_EQ(all["total"], 6);
  EXPECT_EQ(all["limit"], 50);
  EXPECT_EQ(all["offset"], 0);
  ASSERT_EQ(all["items"].size(), 6U);

  json dmarc = get_json("/api/v1/reports?type=dmarc&domain=example.com&from=2023-11-14");
  ASSERT_EQ(dmarc["total"], 2);
  // Newest first.
  EXPECT_EQ(dmarc["items"][0]["report_id"], "D3");
  EXPECT_EQ(dmarc["items"][1]["report_id"], "D1");
  const json& d1 = dmarc["items"][1];
  EXPECT_EQ(d1["type"], "dmarc-aggregate");
  EXPECT_EQ(d1["org_name"], "Google");
  EXPECT_EQ(d1["policy_domain"], "example.com");
  EXPECT_EQ(d1["date_begin"], kDay0 + 3600);
  EXPECT_EQ(d1["messages"], 14);
  EXPECT_EQ(d1["pass"], 10);
  EXPECT_EQ(d1["fail"], 4);
  for (const char* key :
       {"id", "report_id", "date_end", "received_at", "errors", "sessions_ok", "sessions_failed",
        "feedback_type", "source_ip", "action", "status", "recipient", "message_id"}) {
    EXPECT_TRUE(d1.contains(key)) << key;
  }

  json paged = get_json("/api/v1/reports?type=dmarc&from=0&limit=1&offset=1");
  EXPECT_EQ(paged["total"], 3);
  EXPECT_EQ(paged["limit"], 1);
  EXPECT_EQ(paged["offset"], 1);
  ASSERT_EQ(paged["items"].size(), 1U);
  EXPECT_EQ(paged["items"][0]["report_id"], "D2");

  json reporter = get_json("/api/v1/reports?reporter=yah&from=0");
  ASSERT_EQ(reporter["total"], 1);
  EXPECT_EQ(reporter["items"][0]["report_id"], "D2");

  json pass = get_json("/api/v1/reports?type=dmarc&result=pass&from=0");
  ASSERT_EQ(pass["total"], 1);

  // [from, to): D2 begins on day 1.
  json window = get_json("/api/v1/reports?type=dmarc&from=2023-11-15&to=2023-11-16");
  ASSERT_EQ(window["total"], 1);
  EXPECT_EQ(window["items"][0]["report_id"], "D2");

  json tls = get_json("/api/v1/reports?type=tls&from=0");
  ASSERT_EQ(tls["total"], 1);
  EXPECT_EQ(tls["items"][0]["sessions_ok"], 100);
  EXPECT_EQ(tls["items"][0]["sessions_failed"], 7);

  // The default period is the last 30 days before now: nothing here is older than that.
  EXPECT_EQ(get_json("/api/v1/reports")["total"], 6);
}

TEST_F(DashboardTest, BadParametersAre400NamingThem) {
  struct Case {
    const char* target;
    const char* name;
  } cases[] = {
      {"/api/v1/reports?from=yesterday", "from"},
      {"/api/v1/reports?to=2023-02-30", "to"},
      {"/api/v1/reports?limit=0", "limit"},
      {"/api/v1/reports?limit=501", "limit"},
      {"/api/v1/reports?limit=ten", "limit"},
      {"/api/v1/reports?offset=-1", "offset"},
      {"/api/v1/reports?type=smtp", "type"},
      {"/api/v1/timeseries/dmarc?from=2023-13-01", "from"},
      {"/api/v1/sources/failing?limit=1000", "limit"},
      {"/api/v1/outgoing?state=lost", "state"},
      {"/api/v1/outgoing?after_id=x", "after_id"},
  };
  for (const auto& c : cases) {
    json e = get_json(c.target, 400);
    ASSERT_TRUE(e.contains("error")) << c.target;
    EXPECT_EQ(e["error"].get<std::string>().rfind(c.name, 0), 0U) << c.target << ": " << e;
  }
}

TEST_F(DashboardTest, ReportDetailAndRaw) {
  const std::int64_t id = id_of("D1");
  json d = get_json("/api/v1/reports/" + std::to_string(id));
  EXPECT_EQ(d["summary"]["id"], id);
  EXPECT_EQ(d["summary"]["report_id"], "D1");
  // The report as `mailreport show --json` prints it (report/json.hpp).
  auto stored = store_->get_report(id);
  ASSERT_TRUE(stored);
  EXPECT_EQ(d["report"], report::to_json(stored->report));
  EXPECT_EQ(d["report"]["type"], "dmarc-aggregate");

  Response raw = get("/api/v1/reports/" + std::to_string(id) + "/raw");
  EXPECT_EQ(raw.status, 200);
  EXPECT_EQ(raw.content_type, "message/rfc822");
  EXPECT_EQ(raw.body, kRawMessage);

  EXPECT_EQ(get_json("/api/v1/reports/999999", 404).count("error"), 1U);
  EXPECT_EQ(get_json("/api/v1/reports/999999/raw", 404).count("error"), 1U);
  EXPECT_EQ(get_json("/api/v1/reports/abc", 404).count("error"), 1U);
  EXPECT_EQ(get_json("/api/v1/nowhere", 404).count("error"), 1U);
}

// The store's dashboard queries may still answer Unsupported in a partial build (501); once
// they are there, the figures must be these.
TEST_F(DashboardTest, TimeSeries) {
  json d = get_json("/api/v1/timeseries/dmarc?from=0");
  ASSERT_EQ(d["days"].size(), 3U);
  EXPECT_EQ(d["days"][0]["day"], kDay0);
  EXPECT_EQ(d["days"][0]["messages"], 14);
  EXPECT_EQ(d["days"][0]["pass"], 10);
  EXPECT_EQ(d["days"][0]["fail"], 4);
  EXPECT_EQ(d["days"][0]["none"], 10);
  EXPECT_EQ(d["days"][0]["reject"], 4);
  EXPECT_EQ(d["days"][0]["quarantine"], 0);

  json one = get_json("/api/v1/timeseries/dmarc?from=0&domain=example.com&source_ip=203.0.113.5");
  ASSERT_EQ(one["days"].size(), 1U);
  EXPECT_EQ(one["days"][0]["day"], kDay0 + 2 * kDay);
  EXPECT_EQ(one["days"][0]["fail"], 2);

  json t = get_json("/api/v1/timeseries/tls?from=0");
  ASSERT_EQ(t["days"].size(), 1U);
  EXPECT_EQ(t["days"][0]["day"], kDay0 + kDay);
  EXPECT_EQ(t["days"][0]["successful"], 100);
  EXPECT_EQ(t["days"][0]["failed"], 7);
}

TEST_F(DashboardTest, FailingSourcesAndTlsFailures) {
  json s = get_json("/api/v1/sources/failing?from=0&domain=example.com");
  ASSERT_GE(s["items"].size(), 2U);
  EXPECT_EQ(s["items"][0]["source_ip"], "198.51.100.7");
  EXPECT_EQ(s["items"][0]["fail"], 4);
  EXPECT_EQ(s["items"][0]["messages"], 4);
  EXPECT_EQ(s["items"][0]["reports"], 1);
  EXPECT_EQ(s["items"][0]["header_from"], json::array({"example.com"}));
  EXPECT_EQ(s["items"][0]["policy_domains"], json::array({"example.com"}));
  EXPECT_TRUE(s["items"][0].contains("last_seen"));
  EXPECT_EQ(s["items"][1]["source_ip"], "203.0.113.5");
  EXPECT_EQ(get_json("/api/v1/sources/failing?from=0&limit=1")["items"].size(), 1U);

  json t = get_json("/api/v1/tls/failures?from=0");
  ASSERT_EQ(t["items"].size(), 1U);
  EXPECT_EQ(t["items"][0]["result_type"], "certificate-expired");
  EXPECT_EQ(t["items"][0]["sessions"], 7);
  EXPECT_EQ(t["items"][0]["reports"], 1);
}

TEST_F(DashboardTest, OutgoingAndEvaluations) {
  store::OutboxEntry e;
  e.kind = "dmarc-failure";
  e.recipient = "ruf@example.net";
  e.reported_domain = "ours.example";
  e.created_at = kNow - 60;
  e.payload = "secret payload";
  auto id = store_->enqueue_outbox(e);
  ASSERT_TRUE(id);
  json o = get_json("/api/v1/outgoing");
  ASSERT_EQ(o["stats"].size(), 1U);
  EXPECT_EQ(o["stats"][0]["kind"], "dmarc-failure");
  EXPECT_EQ(o["stats"][0]["state"], "queued");
  EXPECT_EQ(o["stats"][0]["count"], 1);
  EXPECT_EQ(o["stats"][0]["oldest_created_at"], kNow - 60);
  ASSERT_EQ(o["items"].size(), 1U);
  EXPECT_EQ(o["items"][0]["id"], *id);
  EXPECT_EQ(o["items"][0]["recipient"], "ruf@example.net");
  EXPECT_EQ(o["items"][0]["state"], "queued");
  EXPECT_FALSE(o["items"][0].contains("payload"));
  EXPECT_TRUE(o["aggregate_reports"].is_array());
  EXPECT_EQ(get_json("/api/v1/outgoing?state=sent")["items"].size(), 0U);
  EXPECT_EQ(get_json("/api/v1/outgoing?after_id=" + std::to_string(*id))["items"].size(), 0U);

  json ev = get_json("/api/v1/evaluations/summary?from=0");
  EXPECT_TRUE(ev["items"].is_array());
  EXPECT_EQ(ev["items"].size(), 0U);  // no milter evaluations recorded here
}

TEST_F(DashboardTest, ChartsAndMetrics) {
  Response c = get("/api/v1/charts/dmarc-daily.svg?from=0");
  EXPECT_EQ(c.status, 200) << c.body;
  EXPECT_EQ(c.content_type.rfind("image/svg+xml", 0), 0U);
  EXPECT_NE(c.body.find("<svg"), std::string::npos);
  EXPECT_EQ(get("/api/v1/charts/pie.svg").status, 404);

  Response m = get("/metrics");
  EXPECT_EQ(m.status, 200) << m.body;
  EXPECT_EQ(m.content_type, "text/plain; version=0.0.4; charset=utf-8");
}

TEST(DashboardToken, FromConfigOrFile) {
  test::TempDir dir;
  config::DashboardConfig c;
  auto none = load_dashboard_token(c);
  ASSERT_TRUE(none);
  EXPECT_EQ(*none, "");

  c.token = "abc";
  EXPECT_EQ(*load_dashboard_token(c), "abc");

  const auto file = dir / "token";
  std::ofstream(file) << "from-file\n";
  ::chmod(file.c_str(), 0600);
  c.token.clear();
  c.token_file = file;
  auto t = load_dashboard_token(c);
  ASSERT_TRUE(t) << t.error().describe();
  EXPECT_EQ(*t, "from-file");

  // Its group may read it (root:mailreport 0640, as the Debian package makes it).
  ::chmod(file.c_str(), 0640);
  auto group = load_dashboard_token(c);
  ASSERT_TRUE(group) << group.error().describe();
  EXPECT_EQ(*group, "from-file");

  ::chmod(file.c_str(), 0644);
  auto open = load_dashboard_token(c);
  ASSERT_FALSE(open);
  EXPECT_EQ(open.error().code, ErrorCode::Invalid);
  EXPECT_NE(open.error().message.find("dashboard.token-file"), std::string::npos);

  c.token_file = dir / "missing";
  auto missing = load_dashboard_token(c);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("missing"), std::string::npos);

  const auto empty = dir / "empty";
  std::ofstream(empty) << "\n";
  ::chmod(empty.c_str(), 0400);
  c.token_file = empty;
  EXPECT_FALSE(load_dashboard_token(c));
}

}  // namespace
}  // namespace mailreport::web

// The JSON API of `mailreport serve` as a real process (dashboard.listen on 127.0.0.1 with a
// free port and a token), over a store filled by `mailreport import` of the bundled samples,
// queried with libcurl: 401 without the token, each route's fields against what the store
// holds (read directly), paging, filters, a report's detail and raw download, 404s, /metrics'
// content type and /healthz.
#include <curl/curl.h>
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "child_process.hpp"
#include "mailreport/report/json.hpp"
#include "mailreport/store/sqlite_store.hpp"
#include "process_util.hpp"
#include "testsupport.hpp"

namespace mailreport {
namespace {

using nlohmann::json;
constexpr const char* kToken = "integration-token-0123456789";

struct Answer {
  long status = 0;
  std::string body;
  std::string content_type;
};

size_t append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

struct CurlDeleter {
  void operator()(CURL* c) const noexcept { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const noexcept { curl_slist_free_all(l); }
};

Answer fetch(const std::string& url, bool auth = true) {
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  Answer a;
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, &append);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &a.body);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, 20L);
  curl_easy_setopt(curl.get(), CURLOPT_NOPROXY, "*");
  std::unique_ptr<curl_slist, SlistDeleter> headers;
  if (auth) {
    headers.reset(
        curl_slist_append(nullptr, (std::string("Authorization: Bearer ") + kToken).c_str()));
    curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers.get());
  }
  if (curl_easy_perform(curl.get()) != CURLE_OK) return a;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &a.status);
  const char* ct = nullptr;
  curl_easy_getinfo(curl.get(), CURLINFO_CONTENT_TYPE, &ct);
  if (ct != nullptr) a.content_type = ct;
  return a;
}

class DashboardApi : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = test::free_loopback_port();
    ASSERT_NE(port_, 0);
    std::ofstream(dir_ / "mailreport.toml")
        << "[report]\ndomain = \"ours.example\"\nsubmitter = \"mx.ours.example\"\n"
        << "submit.sendmail-path = \"/bin/true\"\n"
        << "[store]\npath = \"" << (dir_ / "mailreport.db").string() << "\"\n"
        << "[tlsrpt]\nlisten = \"" << (dir_ / "tlsrpt.sock").string() << "\"\n"
        << "[alerts]\nenable = false\n"
        << "[dashboard]\nlisten = \"127.0.0.1:" << port_ << "\"\ntoken = \"" << kToken << "\"\n";
    auto imported =
        test::run_command({test::cli_binary().string(), "-c", (dir_ / "mailreport.toml").string(),
                           "import", (test::source_dir() / "samples" / "reports").string()});
    ASSERT_EQ(imported.exit_code, 0) << imported.err;
    auto child = test::ChildProcess::start(
        {test::cli_binary().string(), "-c", (dir_ / "mailreport.toml").string(), "serve"},
        dir_ / "serve.log");
    ASSERT_TRUE(child) << child.error().describe();
    child_.emplace(std::move(*child));
    base_ = "http://127.0.0.1:" + std::to_string(port_);
    for (int i = 0; i < 200; ++i) {
      if (fetch(base_ + "/healthz", false).status == 200) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    FAIL() << "serve did not listen: " << test::read_file(dir_ / "serve.log");
  }

  json get(const std::string& target, long status = 200) {
    Answer a = fetch(base_ + target);
    EXPECT_EQ(a.status, status) << target << ": " << a.body;
    EXPECT_EQ(a.content_type, "application/json") << target;
    return json::parse(a.body, nullptr, false);
  }

  std::unique_ptr<store::Store> open_store() {
    store::SqliteOptions options;
    options.path = dir_ / "mailreport.db";
    options.read_only = true;
    auto s = store::open_sqlite_store(options);
    EXPECT_TRUE(s) << s.error().describe();
    return s ? std::move(*s) : nullptr;
  }

  test::TempDir dir_;
  std::uint16_t port_ = 0;
  std::string base_;
  std::optional<test::ChildProcess> child_;
};

TEST_F(DashboardApi, ServesTheApiOverTheStore) {
  auto store = open_store();
  ASSERT_TRUE(store);
  store::ReportQuery everything;
  everything.from = 0;
  everything.limit = 0;
  auto all = store->query_reports(everything);
  ASSERT_TRUE(all) << all.error().describe();
  ASSERT_GE(all->total, 5U);

  // Auth.
  EXPECT_EQ(fetch(base_ + "/api/v1/summary", false).status, 401);
  EXPECT_EQ(fetch(base_ + "/metrics", false).status, 401);
  Answer health = fetch(base_ + "/healthz", false);
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, "ok");
  EXPECT_EQ(fetch(base_ + "/", false).status, 200);

  // Summary against Store::summary.
  auto sum = store->summary();
  ASSERT_TRUE(sum);
  json s = get("/api/v1/summary");
  for (const auto& [type, n] : sum->reports_by_type) {
    EXPECT_EQ(s["reports"][report::to_string(type)], n) << report::to_string(type);
  }
  EXPECT_EQ(s["dmarc"]["messages"], sum->dmarc_messages);
  EXPECT_EQ(s["dmarc"]["pass"], sum->dmarc_pass);
  EXPECT_EQ(s["tls"]["successful"], sum->tls_sessions_ok);
  EXPECT_EQ(s["raw_messages"], sum->raw_messages);
  EXPECT_EQ(s["unparsed"], sum->unparsed_messages);

  // The list, all of it, then paged.
  json list = get("/api/v1/reports?from=0&limit=500");
  EXPECT_EQ(list["total"], all->total);
  ASSERT_EQ(list["items"].size(), all->items.size());
  for (std::size_t i = 0; i < all->items.size(); ++i) {
    EXPECT_EQ(list["items"][i]["id"], all->items[i].id);
    EXPECT_EQ(list["items"][i]["report_id"], all->items[i].report_id);
    EXPECT_EQ(list["items"][i]["type"], report::to_string(all->items[i].type));
    EXPECT_EQ(list["items"][i]["messages"], all->items[i].messages);
  }
  json page = get("/api/v1/reports?from=0&limit=2&offset=1");
  EXPECT_EQ(page["total"], all->total);
  ASSERT_EQ(page["items"].size(), 2U);
  EXPECT_EQ(page["items"][0]["id"], all->items[1].id);

  // Filters.
  json dmarc = get("/api/v1/reports?from=0&type=dmarc");
  ASSERT_GE(dmarc["items"].size(), 1U);
  for (const auto& item : dmarc["items"]) EXPECT_EQ(item["type"], "dmarc-aggregate");
  const std::string domain = dmarc["items"][0]["policy_domain"];
  json by_domain = get("/api/v1/reports?from=0&domain=" + domain);
  for (const auto& item : by_domain["items"]) EXPECT_EQ(item["policy_domain"], domain);
  EXPECT_EQ(get("/api/v1/reports?from=0&domain=nowhere.invalid")["total"], 0);
  EXPECT_EQ(get("/api/v1/reports?from=bad", 400)["error"].get<std::string>().rfind("from", 0), 0U);

  // Detail and raw.
  const std::int64_t id = all->items[0].id;
  json detail = get("/api/v1/reports/" + std::to_string(id));
  EXPECT_EQ(detail["summary"]["id"], id);
  auto stored = store->get_report(id);
  ASSERT_TRUE(stored);
  EXPECT_EQ(detail["report"], report::to_json(stored->report));
  Answer raw = fetch(base_ + "/api/v1/reports/" + std::to_string(id) + "/raw");
  EXPECT_EQ(raw.status, 200);
  EXPECT_EQ(raw.content_type, "message/rfc822");
  std::string expected;
  ASSERT_TRUE(store->read_raw(stored->summary.message_id, [&](std::span<const char> p) {
    expected.append(p.data(), p.size());
    return Status{};
  }));
  EXPECT_EQ(raw.body, expected);
  EXPECT_EQ(fetch(base_ + "/api/v1/reports/99999").status, 404);
  EXPECT_EQ(fetch(base_ + "/api/v1/reports/99999/raw").status, 404);
  EXPECT_EQ(fetch(base_ + "/api/v1/nothing").status, 404);

  // Series and rankings against the store's own answers.
  store::SeriesQuery q;
  auto days = store->dmarc_daily(q);
  ASSERT_TRUE(days);
  json series = get("/api/v1/timeseries/dmarc?from=0");
  ASSERT_EQ(series["days"].size(), days->size());
  for (std::size_t i = 0; i < days->size(); ++i) {
    EXPECT_EQ(series["days"][i]["day"], (*days)[i].day);
    EXPECT_EQ(series["days"][i]["messages"], (*days)[i].messages);
    EXPECT_EQ(series["days"][i]["fail"], (*days)[i].fail);
  }
  auto tls = store->tls_daily(q);
  ASSERT_TRUE(tls);
  EXPECT_EQ(get("/api/v1/timeseries/tls?from=0")["days"].size(), tls->size());
  auto sources = store->top_failing_sources(q, 50);
  ASSERT_TRUE(sources);
  json failing = get("/api/v1/sources/failing?from=0");
  ASSERT_EQ(failing["items"].size(), sources->size());
  if (!sources->empty()) {
    EXPECT_EQ(failing["items"][0]["source_ip"], (*sources)[0].source_ip);
  }
  auto tls_fail = store->tls_failures_by_type(q);
  ASSERT_TRUE(tls_fail);
  EXPECT_EQ(get("/api/v1/tls/failures?from=0")["items"].size(), tls_fail->size());
  json out = get("/api/v1/outgoing");
  EXPECT_TRUE(out["stats"].is_array());
  EXPECT_TRUE(out["items"].is_array());
  EXPECT_TRUE(out["aggregate_reports"].is_array());
  EXPECT_TRUE(get("/api/v1/evaluations/summary?from=0")["items"].is_array());

  // /metrics and a chart.
  Answer metrics = fetch(base_ + "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.content_type, "text/plain; version=0.0.4; charset=utf-8");
  Answer chart = fetch(base_ + "/api/v1/charts/dmarc-daily.svg?from=0");
  EXPECT_EQ(chart.status, 200);
  EXPECT_EQ(chart.content_type.rfind("image/svg+xml", 0), 0U);

  EXPECT_EQ(child_->stop(), 0) << test::read_file(dir_ / "serve.log");
}

TEST_F(DashboardApi, ReloadReadsTheNewToken) {
  // The same file with another token; SIGHUP.
  std::string config = test::read_file(dir_ / "mailreport.toml");
  config.replace(config.find(kToken), std::string(kToken).size(), "new-token");
  std::ofstream(dir_ / "mailreport.toml") << config;
  child_->signal(SIGHUP);
  for (int i = 0; i < 100 && fetch(base_ + "/api/v1/summary").status != 401; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(fetch(base_ + "/api/v1/summary").status, 401);
}

}  // namespace
}  // namespace mailreport

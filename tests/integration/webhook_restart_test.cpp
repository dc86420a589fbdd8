// Webhooks across a restart (issue 6): `mailreport serve` (a real process) with a webhook to a
// loopback receiver that is DOWN (answers 503) while reports arrive (`mailreport import` into
// the store serve uses); serve is stopped with SIGTERM and started again with the receiver up:
// every warning queued before the restart arrives, none twice, each POST's X-Signature valid.
#include <signal.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "child_process.hpp"
#include "mailreport/alerts/webhooks.hpp"
#include "mailreport/store/sqlite_store.hpp"
#include "mailreport/web/http_server.hpp"
#include "process_util.hpp"
#include "testsupport.hpp"

namespace mailreport {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kKey = "restart-key";

class WebhookRestart : public ::testing::Test {
 protected:
  void SetUp() override {
    web::ServerOptions o;
    auto s = web::HttpServer::start(o, [this](const web::Request& r) { return handle(r); });
    ASSERT_TRUE(s) << s.error().describe();
    server_ = std::move(*s);
    std::ofstream(dir_ / "mailreport.toml")
        << "[report]\ndomain = \"ours.example\"\nsubmitter = \"mx.ours.example\"\n"
        << "[store]\npath = \"" << (dir_ / "mailreport.db").string() << "\"\n"
        << "[serve]\noutbox-interval = \"1s\"\n"
        // No TLS collector, no dashboard listener: only the alerts matter here.
        << "[tlsrpt]\nlisten = \"\"\n[dashboard]\nlisten = \"\"\n"
        << "[alerts]\ninterval = \"1s\"\ndmarc-failure-count = 1\n"
        << "[webhook.rx]\nurl = \"http://127.0.0.1:" << server_->port() << "/hook\"\n"
        << "events = [\"*\"]\nsignature-key = \"" << kKey << "\"\nthrottle = \"100ms\"\n"
        << "timeout = \"5s\"\n";
  }

  web::Response handle(const web::Request& r) {
    std::lock_guard lock(mu_);
    ++requests_;
    if (!up_) return web::Response::error(503, "down for maintenance");
    ++accepted_posts_;
    if (r.header("x-signature") != alerts::webhook_signature(kKey, r.body)) ++bad_signatures_;
    json body = json::parse(r.body, nullptr, false);
    if (body.is_discarded() || !body.contains("events")) {
      ++bad_signatures_;
      return web::Response::error(400, "not a webhook body");
    }
    for (const auto& e : body["events"]) received_.push_back(e["id"].get<std::string>());
    return web::Response::json(200, "{}");
  }

  std::unique_ptr<store::Store> open() {
    store::SqliteOptions o;
    o.path = dir_ / "mailreport.db";
    auto s = store::open_sqlite_store(o);
    EXPECT_TRUE(s) << s.error().describe();
    return s ? std::move(*s) : nullptr;
  }

  template <class Pred>
  bool wait_until(Pred pred, std::chrono::seconds limit = std::chrono::seconds(30)) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (pred()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  test::ChildProcess serve() {
    auto child = test::ChildProcess::start(
        {test::cli_binary().string(), "-c", (dir_ / "mailreport.toml").string(), "serve"},
        dir_ / "serve.log");
    EXPECT_TRUE(child) << child.error().describe();
    return std::move(*child);
  }

  std::string log() { return test::read_file(dir_ / "serve.log"); }

  test::TempDir dir_;
  std::unique_ptr<web::HttpServer> server_;
  std::mutex mu_;
  bool up_ = false;
  int requests_ = 0;
  int accepted_posts_ = 0;
  int bad_signatures_ = 0;
  std::vector<std::string> received_;
};

TEST_F(WebhookRestart, EventsQueuedWhileTheReceiverIsDownArriveOnceAfterARestart) {
  auto first = serve();
  // The first scan starts at the present (an empty store): wait for its watermark.
  ASSERT_TRUE(wait_until([&] {
    auto s = open();
    auto w = s ? s->alert_watermark("reports")
               : Result<std::optional<std::int64_t>>(std::optional<std::int64_t>{});
    return w && w->has_value();
  })) << log();

  // Reports arrive while the receiver is down.
  auto r =
      test::run_command({test::cli_binary().string(), "-c", (dir_ / "mailreport.toml").string(),
                         "import", (test::source_dir() / "samples" / "reports").string()},
                        "/dev/null", std::chrono::seconds(60));
  ASSERT_FALSE(r.timed_out);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;

  // Warnings are queued and tried (503) at least once.
  std::set<std::string> queued;
  ASSERT_TRUE(wait_until([&] {
    auto s = open();
    if (!s) return false;
    auto events = s->list_webhook_events("rx");
    if (!events || events->empty()) return false;
    for (const auto& e : *events) {
      if (e.attempts == 0) return false;
    }
    queued.clear();
    for (const auto& e : *events) queued.insert(json::parse(e.body)["id"].get<std::string>());
    return true;
  })) << log();
  {
    std::lock_guard lock(mu_);
    EXPECT_GE(requests_, 1);
    EXPECT_TRUE(received_.empty());
  }
  // The samples: DMARC failures, quarantine/reject and new sources, a TLS failure, ARF abuse
  // and auth-failure, a message that is not a report.
  EXPECT_GE(queued.size(), 5u);

  EXPECT_EQ(first.stop(), 0) << log();
  {
    std::lock_guard lock(mu_);
    up_ = true;
  }
  auto second = serve();
  EXPECT_TRUE(wait_until([&] {
    auto s = open();
    auto events = s ? s->list_webhook_events("")
                    : Result<std::vector<store::WebhookEvent>>(std::vector<store::WebhookEvent>{});
    return events && events->empty();
  })) << log();
  // A little longer: nothing else may arrive.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(second.stop(), 0) << log();

  std::lock_guard lock(mu_);
  EXPECT_EQ(bad_signatures_, 0);
  std::multiset<std::string> got(received_.begin(), received_.end());
  EXPECT_EQ(got.size(), queued.size()) << "some event arrived twice or was lost";
  EXPECT_EQ(std::set<std::string>(received_.begin(), received_.end()), queued);
  std::string l = log();
  EXPECT_NE(l.find("warning event=dmarc.failures"), std::string::npos) << l;
  EXPECT_NE(l.find("503"), std::string::npos) << l;
}

}  // namespace
}  // namespace mailreport

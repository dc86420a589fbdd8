// Webhook delivery to a loopback receiver (web::HttpServer): the receiver checks X-Signature
// with the key, the headers and basic auth; a 500 is retried with backoff and the events then
// arrive exactly once; the throttle puts several events in one POST; discard-after drops old
// events with no POST; events of a webhook no longer configured are dropped.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "../store/store_fixtures.hpp"
#include "mailreport/alerts/webhooks.hpp"
#include "mailreport/config/config.hpp"
#include "mailreport/web/http_server.hpp"

namespace mailreport::alerts {
namespace {

using nlohmann::json;

constexpr std::int64_t kT = 1700100000;  // seconds
constexpr const char* kKey = "s3cret-key";

// Answers `fail_first` POSTs with 500, then 200; keeps every POST it accepted.
class Receiver {
 public:
  explicit Receiver(int fail_first = 0) : fail_left_(fail_first) {
    web::ServerOptions o;
    auto s = web::HttpServer::start(o, [this](const web::Request& r) { return handle(r); });
    if (!s) {
      ADD_FAILURE() << s.error().describe();
      return;
    }
    server_ = std::move(*s);
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(server_->port()) + "/hook";
  }

  struct Post {
    json body;
    std::string signature;
    bool signature_ok = false;
    std::string authorization;
    std::string team;
    std::string content_type;
  };
  std::vector<Post> accepted() {
    std::lock_guard lock(mu_);
    return accepted_;
  }
  int requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  web::Response handle(const web::Request& r) {
    std::lock_guard lock(mu_);
    ++requests_;
    if (r.method != "POST") return web::Response::error(405, "POST only");
    if (fail_left_ > 0) {
      --fail_left_;
      return web::Response::error(500, "try again");
    }
    Post p;
    p.body = json::parse(r.body, nullptr, false);
    p.signature = r.header("x-signature");
    p.signature_ok = p.signature == webhook_signature(kKey, r.body);
    p.authorization = r.header("authorization");
    p.team = r.header("x-team");
    p.content_type = r.header("content-type");
    accepted_.push_back(std::move(p));
    return web::Response::json(200, "{}");
  }

  std::mutex mu_;
  int fail_left_;
  int requests_ = 0;
  std::vector<Post> accepted_;
  std::unique_ptr<web::HttpServer> server_;
};

std::shared_ptr<const config::Config> hook_config(const std::string& url,
                                                  const std::string& extra = "") {
  std::string toml = "[webhook.ops]\nurl = \"" + url + "\"\nevents = [\"*\"]\nsignature-key = \"" +
                     kKey + "\"\nthrottle = \"1s\"\ntimeout = \"5s\"\n" + extra +
                     "[webhook.ops.headers]\nX-Team = \"mail\"\n"
                     "[webhook.ops.auth]\nusername = \"mr\"\nsecret = \"pw\"\n";
  auto r = config::load_string(toml);
  for (const auto& p : r.problems) ADD_FAILURE() << p.describe();
  return r.config;
}

store::WebhookEvent event(const std::string& id, std::int64_t created_at,
                          const std::string& webhook = "ops") {
  store::WebhookEvent e;
  e.webhook = webhook;
  e.type = "dmarc.failures";
  e.created_at = created_at;
  e.body = json{{"id", id},
                {"createdAt", "2023-11-16T02:00:00Z"},
                {"type", e.type},
                {"data", {{"domain", "example.com"}}}}
               .dump();
  return e;
}

class Delivery : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = test::open_store(dir_.path() / "store.db");
    ASSERT_TRUE(store_);
  }
  void queue(std::vector<store::WebhookEvent> events) {
    store::AlertBatch b;
    b.events = std::move(events);
    ASSERT_TRUE(store_->commit_alerts(b));
  }
  std::vector<std::string> ids(const std::vector<Receiver::Post>& posts) {
    std::vector<std::string> out;
    for (const auto& p : posts) {
      for (const auto& e : p.body["events"]) out.push_back(e["id"]);
    }
    return out;
  }

  test::TempDir dir_;
  std::unique_ptr<store::Store> store_;
  NullLogger log_;
};

TEST_F(Delivery, RetriedAfterA500ThenDeliveredOnceWithAValidSignature) {
  Receiver rx(1);
  WebhookDispatcher d(hook_config(rx.url()), *store_, log_);
  queue({event("e1", kT), event("e2", kT)});

  auto first = d.run_once(kT * 1000);
  ASSERT_TRUE(first) << first.error().describe();
  EXPECT_EQ(first->posts, 1u);
  EXPECT_EQ(first->retried, 2u);
  EXPECT_EQ(rx.requests(), 1);
  auto pending = store_->list_webhook_events("ops");
  ASSERT_EQ(pending->size(), 2u);
  EXPECT_EQ((*pending)[0].attempts, 1u);
  EXPECT_EQ((*pending)[0].next_attempt_at, kT + 1);  // backoff 1s
  EXPECT_NE((*pending)[0].last_error.find("500"), std::string::npos);

  // Not before the backoff (and the throttle) ends.
  auto early = d.run_once(kT * 1000 + 500);
  ASSERT_TRUE(early);
  EXPECT_EQ(early->posts, 0u);
  auto second = d.run_once(kT * 1000 + 1000);
  ASSERT_TRUE(second) << second.error().describe();
  EXPECT_EQ(second->delivered, 2u);
  auto third = d.run_once(kT * 1000 + 5000);
  ASSERT_TRUE(third);
  EXPECT_EQ(third->posts, 0u);

  auto got = rx.accepted();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(ids(got), (std::vector<std::string>{"e1", "e2"}));
  EXPECT_TRUE(got[0].signature_ok) << got[0].signature;
  EXPECT_EQ(got[0].team, "mail");
  EXPECT_EQ(got[0].authorization, "Basic bXI6cHc=");  // base64("mr:pw")
  EXPECT_EQ(got[0].content_type, "application/json");
  EXPECT_EQ(got[0].body["events"][0]["type"], "dmarc.failures");
  EXPECT_TRUE(store_->list_webhook_events("")->empty());
}

TEST_F(Delivery, ThrottleBatchesEventsIntoOnePost) {
  Receiver rx;
  WebhookDispatcher d(hook_config(rx.url()), *store_, log_);
  queue({event("a", kT)});
  ASSERT_TRUE(d.run_once(kT * 1000));
  // Three more arrive within the throttle: held back, then sent together.
  queue({event("b", kT), event("c", kT), event("d", kT)});
  auto held = d.run_once(kT * 1000 + 300);
  ASSERT_TRUE(held);
  EXPECT_EQ(held->posts, 0u);
  EXPECT_LE(d.next_wait(std::chrono::milliseconds(10000)), std::chrono::milliseconds(1000));
  auto batch = d.run_once(kT * 1000 + 1000);
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->posts, 1u);
  EXPECT_EQ(batch->delivered, 3u);
  auto got = rx.accepted();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].body["events"].size(), 3u);
  EXPECT_EQ(ids(got), (std::vector<std::string>{"a", "b", "c", "d"}));
  for (const auto& p : got) EXPECT_TRUE(p.signature_ok);
}

TEST_F(Delivery, DiscardAfterDropsOldEventsAndUnconfiguredWebhooksLoseTheirs) {
  Receiver rx;
  WebhookDispatcher d(hook_config(rx.url(), "discard-after = \"1h\"\n"), *store_, log_);
  queue({event("old", kT - 7200), event("new", kT - 60), event("x", kT, "removed")});
  auto r = d.run_once(kT * 1000);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->discarded, 2u);
  EXPECT_EQ(r->delivered, 1u);
  EXPECT_EQ(ids(rx.accepted()), (std::vector<std::string>{"new"}));
  EXPECT_TRUE(store_->list_webhook_events("")->empty());
}

TEST_F(Delivery, ReceiverDownIsRetriedWithGrowingBackoff) {
  // Nothing listens on the port of a server that was stopped.
  std::string url;
  {
    Receiver gone;
    url = gone.url();
  }
  WebhookDispatcher d(hook_config(url), *store_, log_);
  queue({event("e", kT)});
  std::int64_t t = kT * 1000;
  for (unsigned i = 0; i < 4; ++i) {
    auto r = d.run_once(t);
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_EQ(r->retried, 1u);
    auto e = store_->list_webhook_events("ops");
    ASSERT_EQ(e->size(), 1u);
    EXPECT_EQ((*e)[0].attempts, i + 1);
    EXPECT_EQ((*e)[0].next_attempt_at, t / 1000 + (std::int64_t{1} << i));  // 1s, 2s, 4s, 8s
    t = (*e)[0].next_attempt_at * 1000;
  }
}

TEST_F(Delivery, AlertServiceScansAndDeliversUntilStopped) {
  Receiver rx;
  auto r = config::load_string(
      "[alerts]\ninterval = \"1h\"\ndmarc-failure-count = 1\n"
      "[webhook.ops]\nurl = \"" +
      rx.url() + "\"\nevents = [\"dmarc.failures\"]\nsignature-key = \"" + kKey +
      "\"\nthrottle = \"0s\"\n");
  ASSERT_TRUE(r.config) << (r.problems.empty() ? "" : r.problems[0].describe());
  struct Quiet final : WarningLog {
    void write(std::string_view) override {}
  };
  AlertService service(r.config, *store_, log_, std::make_unique<Quiet>());
  std::atomic<bool> stop{false};
  std::thread runner([&] { service.run(stop); });
  auto wait_for = [](auto pred) {
    for (int i = 0; i < 100 && !pred(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return pred();
  };
  // The first scan (at start) only sets the watermarks.
  EXPECT_TRUE(wait_for([&] { return store_->alert_watermark("reports")->has_value(); }));
  {
    auto tx = store_->begin_write();
    ASSERT_TRUE(tx);
    MemorySource src("From: a@b.example\r\n\r\nx\r\n");
    auto info = (*tx)->add_raw_message({kT, "test", "", {}, ""}, src);
    ASSERT_TRUE(info);
    auto w = (*tx)->report_writer(info->id, kT);
    test::write_dmarc(*w, test::sample_dmarc("svc-1"));
    ASSERT_TRUE(w->finish());
    ASSERT_TRUE((*tx)->set_parse_outcome(info->id, store::ParseStatus::Parsed, ""));
    w.reset();
    ASSERT_TRUE((*tx)->commit());
  }
  // The interval is an hour: wake() makes it scan now, and the event goes out at once.
  service.wake();
  EXPECT_TRUE(wait_for([&] { return rx.accepted().size() == 1; }));
  stop = true;
  runner.join();
  auto got = rx.accepted();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].signature_ok);
  EXPECT_EQ(got[0].body["events"][0]["type"], "dmarc.failures");
  EXPECT_TRUE(store_->list_webhook_events("")->empty());
}

}  // namespace
}  // namespace mailreport::alerts

// The alert scanner's rules over a real SQLite store, with reports written through the store's
// normal write path (a raw message, the report writer, the parse outcome, commit): DMARC
// failures by count and by rate, quarantine/reject, a new failing source vs a known one, TLS
// failures, ARF abuse and auth-failure, an unparsed message; the domains filter, event
// wildcards, the first scan's start at the present, and two scanners racing (compare-and-set:
// each warning queued once). Plus the X-Signature value against a known HMAC-SHA256 vector.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <thread>

#include "../store/store_fixtures.hpp"
#include "mailreport/alerts/alerts.hpp"
#include "mailreport/alerts/webhooks.hpp"
#include "mailreport/config/config.hpp"

namespace mailreport::alerts {
namespace {

using nlohmann::json;
using test::TempDir;

constexpr std::int64_t kNow = 1700100000;

class ListWarningLog final : public WarningLog {
 public:
  void write(std::string_view line) override {
    std::lock_guard lock(mu_);
    lines.emplace_back(line);
  }
  std::vector<std::string> lines;

 private:
  std::mutex mu_;
};

std::shared_ptr<const config::Config> load(const std::string& toml) {
  auto r = config::load_string(toml);
  for (const auto& p : r.problems) ADD_FAILURE() << p.describe();
  return r.config;
}

// Two webhooks: "all" takes every event, "arf" only ARF.
constexpr const char* kHooks = R"(
[webhook.all]
url = "http://127.0.0.1:1/all"
events = ["*"]
[webhook.arf]
url = "http://127.0.0.1:1/arf"
events = ["arf.*"]
)";

template <class Fill>
std::int64_t store_message(store::Store& s, Fill&& fill, bool parsed = true) {
  auto tx = s.begin_write();
  EXPECT_TRUE(tx) << tx.error().describe();
  if (!tx) return 0;
  MemorySource src("From: reporter@example.org\r\n\r\nbody\r\n");
  auto info = (*tx)->add_raw_message(
      {kNow - 100, "test", "reporter@example.org", {"dmarc@example.com"}, "unit"}, src);
  EXPECT_TRUE(info) << info.error().describe();
  if (!info) return 0;
  auto writer = (*tx)->report_writer(info->id, kNow - 100);
  fill(*writer);
  EXPECT_TRUE(writer->finish());
  EXPECT_TRUE((*tx)->set_parse_outcome(
      info->id, parsed ? store::ParseStatus::Parsed : store::ParseStatus::Unparsed,
      parsed ? "" : "no report found in the message"));
  writer.reset();
  EXPECT_TRUE((*tx)->commit());
  return info->id;
}

void store_dmarc(store::Store& s, const report::DmarcAggregate& a) {
  store_message(s, [&](report::ReportSink& sink) { test::write_dmarc(sink, a); });
}
void store_tls(store::Store& s, report::TlsReport t) {
  store_message(s, [&](report::ReportSink& sink) { ASSERT_TRUE(sink.tls(std::move(t))); });
}
void store_arf(store::Store& s, report::ArfReport a) {
  store_message(s, [&](report::ReportSink& sink) { ASSERT_TRUE(sink.arf(std::move(a))); });
}

class Scanner : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = test::open_store(dir_.path() / "store.db");
    ASSERT_TRUE(store_);
  }
  // A scanner with this configuration, after its first scan (which only sets watermarks).
  void start(const std::string& toml) {
    config_ = load(toml);
    ASSERT_TRUE(config_);
    scanner_ = std::make_unique<AlertScanner>(config_, *store_, log_, warnings_);
    auto first = scanner_->run_once(kNow);
    ASSERT_TRUE(first) << first.error().describe();
    EXPECT_EQ(first->warnings, 0u);
  }
  ScanStats scan() {
    auto r = scanner_->run_once(kNow);
    EXPECT_TRUE(r) << r.error().describe();
    return r ? *r : ScanStats{};
  }
  // The queued events of one webhook, parsed.
  std::vector<json> events(const std::string& webhook) {
    auto list = store_->list_webhook_events(webhook);
    EXPECT_TRUE(list) << list.error().describe();
    std::vector<json> out;
    if (list) {
      for (const auto& e : *list) {
        json j = json::parse(e.body);
        EXPECT_EQ(j["type"], e.type);
        out.push_back(std::move(j));
      }
    }
    return out;
  }
  std::vector<std::string> types(const std::string& webhook) {
    std::vector<std::string> out;
    for (const auto& e : events(webhook)) out.push_back(e["type"]);
    return out;
  }

  TempDir dir_;
  std::unique_ptr<store::Store> store_;
  NullLogger log_;
  ListWarningLog warnings_;
  std::shared_ptr<const config::Config> config_;
  std::unique_ptr<AlertScanner> scanner_;
};

TEST(EventMatches, NamesAndWildcards) {
  EXPECT_TRUE(event_matches({"*"}, "dmarc.failures"));
  EXPECT_TRUE(event_matches({"dmarc.*"}, "dmarc.new-source"));
  EXPECT_TRUE(event_matches({"tls.failures", "arf.*"}, "arf.auth-failure"));
  EXPECT_TRUE(event_matches({"tls.failures"}, "tls.failures"));
  EXPECT_FALSE(event_matches({"dmarc.*"}, "dmarcx.failures"));
  EXPECT_FALSE(event_matches({"dmarc.*"}, "dmarc."));
  EXPECT_FALSE(event_matches({"tls.failures"}, "tls.failures2"));
  EXPECT_FALSE(event_matches({}, "arf.abuse"));
}

TEST(Signature, KnownHmacSha256Vector) {
  // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog") =
  // f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8, in base64:
  EXPECT_EQ(webhook_signature("key", "The quick brown fox jumps over the lazy dog"),
            "97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg=");
  // RFC 4231 test case 2.
  EXPECT_EQ(webhook_signature("Jefe", "what do ya want for nothing?"),
            "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=");
}

TEST_F(Scanner, FirstScanStartsAtThePresent) {
  auto a = test::sample_dmarc("old-1");
  a.records[1].row.count = 500;  // far over every threshold
  store_dmarc(*store_, a);
  store_message(
      *store_, [](report::ReportSink&) {}, false);
  start(std::string("[alerts]\ndmarc-failure-count = 1\n") + kHooks);
  EXPECT_TRUE(warnings_.lines.empty());
  EXPECT_TRUE(events("").empty());
  EXPECT_TRUE(store_->alert_watermark("reports")->has_value());
  // Nothing new: nothing to do.
  auto again = scan();
  EXPECT_EQ(again.reports, 0u);
  EXPECT_EQ(again.warnings, 0u);
}

TEST_F(Scanner, DmarcFailuresQuarantineRejectAndNewSource) {
  start(std::string("[alerts]\ndmarc-failure-count = 3\n") + kHooks);
  // 18 messages, 3 fail (2001:db8::1, rejected).
  store_dmarc(*store_, test::sample_dmarc("r-1"));
  auto st = scan();
  EXPECT_EQ(st.reports, 1u);
  EXPECT_EQ(st.warnings, 3u);
  EXPECT_EQ(st.queued, 3u);  // webhook "all" only
  EXPECT_EQ(types("all"), (std::vector<std::string>{"dmarc.failures", "dmarc.quarantine-reject",
                                                    "dmarc.new-source"}));
  EXPECT_TRUE(events("arf").empty());
  auto ev = events("all");
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[0]["data"]["domain"], "example.com");
  EXPECT_EQ(ev[0]["data"]["messages"], 18);
  EXPECT_EQ(ev[0]["data"]["fail"], 3);
  EXPECT_EQ(ev[0]["data"]["org"], "Example Org");
  EXPECT_EQ(ev[0]["createdAt"], "2023-11-16T02:00:00Z");
  EXPECT_TRUE(ev[0].contains("id"));
  EXPECT_NE(ev[0]["id"], ev[1]["id"]);
  EXPECT_EQ(ev[1]["data"]["reject"], 3);
  EXPECT_EQ(ev[1]["data"]["quarantine"], 0);
  EXPECT_EQ(ev[2]["data"]["source_ip"], "2001:db8::1");
  EXPECT_EQ(ev[2]["data"]["messages"], 3);
  ASSERT_EQ(warnings_.lines.size(), 3u);
  EXPECT_EQ(warnings_.lines[0].rfind("warning event=dmarc.failures domain=example.com ", 0), 0u)
      << warnings_.lines[0];
  EXPECT_NE(warnings_.lines[0].find(" org=\"Example Org\""), std::string::npos);

  // The same source again in a later report: known, no new-source; a new failing one is.
  auto b = test::sample_dmarc("r-2");
  b.records[0].row.policy_evaluated = {"none", "fail", "fail", {}};
  b.records[0].row.source_ip = "203.0.113.99";
  store_dmarc(*store_, b);
  scan();
  auto all = types("all");
  EXPECT_EQ(std::count(all.begin(), all.end(), "dmarc.new-source"), 2);
  auto last = events("all").back();
  EXPECT_EQ(last["type"], "dmarc.new-source");
  EXPECT_EQ(last["data"]["source_ip"], "203.0.113.99");
}

TEST_F(Scanner, FailureThresholdsByCountAndRate) {
  // Default count (100) and rate 0.1 with at least 20 messages: 3 of 18 raises nothing.
  start(std::string("[alerts]\ndmarc-disposition-count = 0\nnew-source = false\n") + kHooks);
  store_dmarc(*store_, test::sample_dmarc("r-1"));
  EXPECT_EQ(scan().warnings, 0u);
  // 3 of 23 (13%) with 23 >= 20 messages: over the rate.
  auto b = test::sample_dmarc("r-2");
  b.records[0].row.count = 15;
  store_dmarc(*store_, b);
  EXPECT_EQ(scan().warnings, 1u);
  // 3 of 48 (6%): under the rate and the count.
  auto c = test::sample_dmarc("r-3");
  c.records[0].row.count = 40;
  store_dmarc(*store_, c);
  EXPECT_EQ(scan().warnings, 0u);
  EXPECT_EQ(types("all"), (std::vector<std::string>{"dmarc.failures"}));
}

TEST_F(Scanner, DomainsFilterKeepsOurDomainsAndTheirSubdomains) {
  start(std::string("[alerts]\ndomains = [\"Example.NET\"]\ndmarc-failure-count = 1\n") + kHooks);
  store_dmarc(*store_, test::sample_dmarc("r-1", "Org", "example.com"));
  EXPECT_EQ(scan().warnings, 0u);
  store_dmarc(*store_, test::sample_dmarc("r-2", "Org", "example.net"));
  EXPECT_EQ(scan().warnings, 3u);
  store_dmarc(*store_, test::sample_dmarc("r-3", "Org", "mail.example.net"));
  EXPECT_EQ(scan().warnings, 3u);
  store_dmarc(*store_, test::sample_dmarc("r-4", "Org", "badexample.net"));
  EXPECT_EQ(scan().warnings, 0u);
}

TEST_F(Scanner, TlsFailures) {
  start(kHooks);
  store_tls(*store_, test::sample_tls("tls-1"));
  auto ok = test::sample_tls("tls-2");
  for (auto& p : ok.policies) {
    p.total_failure_session_count = 0;
    p.failure_details.clear();
  }
  store_tls(*store_, ok);
  EXPECT_EQ(scan().warnings, 1u);
  auto ev = events("all");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0]["type"], "tls.failures");
  EXPECT_EQ(ev[0]["data"]["failed"], 303);
  EXPECT_EQ(ev[0]["data"]["successful"], 5336);
  EXPECT_EQ(ev[0]["data"]["result_types"]["certificate-expired"], 100);
  EXPECT_EQ(ev[0]["data"]["result_types"]["starttls-not-supported"], 203);
}

TEST_F(Scanner, ArfAbuseAndAuthFailureGoToTheMatchingWebhooks) {
  start(kHooks);
  store_arf(*store_, test::sample_arf("<arf-1@reporter.example>"));  // auth-failure
  auto abuse = test::sample_arf("<arf-2@reporter.example>");
  abuse.feedback_type = "abuse";
  store_arf(*store_, abuse);
  auto odd = test::sample_arf("<arf-3@reporter.example>");
  odd.feedback_type = "opt-out";
  store_arf(*store_, odd);
  auto st = scan();
  EXPECT_EQ(st.warnings, 3u);
  EXPECT_EQ(st.queued, 6u);
  EXPECT_EQ(types("arf"), (std::vector<std::string>{"arf.auth-failure", "arf.abuse", "arf.other"}));
  auto ev = events("arf");
  EXPECT_EQ(ev[0]["data"]["source_ip"], "192.0.2.9");
  EXPECT_EQ(ev[0]["data"]["auth_failure"], "dmarc");
  EXPECT_EQ(ev[0]["data"]["domain"], "example.com");
  EXPECT_EQ(ev[2]["data"]["feedback_type"], "opt-out");
}

TEST_F(Scanner, UnparsedMessageAndSwitches) {
  start(std::string("[alerts]\narf = false\n") + kHooks);
  store_message(
      *store_, [](report::ReportSink&) {}, false);
  store_arf(*store_, test::sample_arf());
  EXPECT_EQ(scan().warnings, 1u);
  auto ev = events("all");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0]["type"], "report.parse-failure");
  EXPECT_EQ(ev[0]["data"]["error"], "no report found in the message");
  EXPECT_EQ(ev[0]["data"]["mail_from"], "reporter@example.org");
  EXPECT_NE(warnings_.lines.at(0).find("error=\"no report found in the message\""),
            std::string::npos);
}

TEST_F(Scanner, TwoScannersQueueEachWarningOnce) {
  start(std::string("[alerts]\ndmarc-failure-count = 1\n") + kHooks);
  auto other_store = test::open_store(dir_.path() / "store.db");
  ASSERT_TRUE(other_store);
  ListWarningLog other_warnings;
  AlertScanner other(config_, *other_store, log_, other_warnings);
  std::size_t warned = 0;
  for (int round = 0; round < 5; ++round) {
    store_dmarc(*store_, test::sample_dmarc("r-" + std::to_string(round)));
    Result<ScanStats> ra = ScanStats{}, rb = ScanStats{};
    std::thread ta([&] { ra = scanner_->run_once(kNow); });
    std::thread tb([&] { rb = other.run_once(kNow); });
    ta.join();
    tb.join();
    for (auto* r : {&ra, &rb}) {
      if (*r) {
        warned += (*r)->warnings;
      } else {
        EXPECT_EQ(r->error().code, ErrorCode::Conflict) << r->error().describe();
      }
    }
    // Whoever lost continues from the winner's watermark next time.
    auto rest = other.run_once(kNow);
    ASSERT_TRUE(rest) << rest.error().describe();
    warned += rest->warnings;
  }
  // Each report: failures, quarantine-reject; only the first has a new source.
  EXPECT_EQ(warned, 11u);
  EXPECT_EQ(events("all").size(), 11u);
  EXPECT_EQ(warnings_.lines.size() + other_warnings.lines.size(), 11u);
}

}  // namespace
}  // namespace mailreport::alerts

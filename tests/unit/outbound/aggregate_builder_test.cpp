// The aggregate report builder with the DMARC source on a real SQLite store, the clock
// injected: intervals aligned to UTC (weeks from Monday), due kGrace after their end and built
// in order from the watermark; reports that parse back with our own parser in both formats and
// validate against the schemas; identical rows merged, 100 DKIM results at most; rua= mailto
// URIs in order with !size; exactly once across a restart mid-interval, late rows, a failed
// build, a racing builder and a week of downtime; close_now, the domain filter, the dry run,
// hourly and weekly intervals.
#include "mailreport/outbound/aggregate_builder.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "mailreport/outbound/dmarc_aggregate.hpp"
#include "mailreport/report/dmarc_xml.hpp"
#include "mailreport/report/sink.hpp"
#include "mailreport/store/aggregate_payload.hpp"
#include "mailreport/store/sqlite_store.hpp"
#include "sample_evaluation.hpp"
#include "testsupport.hpp"
#include "xml_schema.hpp"

namespace mailreport::outbound {
namespace {

using config::AggregateFrequency;
using test::sample_evaluation;

constexpr std::int64_t kHourS = 3600;
constexpr std::int64_t kDayS = 86400;
constexpr std::int64_t kDay1 = 1699920000;  // 2023-11-14 00:00:00 UTC, a Tuesday
constexpr std::int64_t kDay2 = kDay1 + kDayS;
constexpr std::int64_t kDay3 = kDay2 + kDayS;
constexpr std::int64_t kMonday = 1699833600;  // 2023-11-13 00:00:00 UTC
const std::string kKind(store::kDmarcAggregateKind);

// ---------------------------------------------------------------- pure parts

TEST(AlignInterval, HourDayAndWeekFromMonday) {
  const std::int64_t t = 1699999980;  // 2023-11-14 22:13:00 UTC
  EXPECT_EQ(align_interval(t, AggregateFrequency::Hourly), 1699999200);
  EXPECT_EQ(align_interval(t, AggregateFrequency::Daily), kDay1);
  EXPECT_EQ(align_interval(t, AggregateFrequency::Weekly), kMonday);
  // Boundaries belong to the interval they begin.
  EXPECT_EQ(align_interval(kDay1, AggregateFrequency::Daily), kDay1);
  EXPECT_EQ(align_interval(kMonday, AggregateFrequency::Weekly), kMonday);
  EXPECT_EQ(align_interval(kMonday - 1, AggregateFrequency::Weekly), kMonday - 7 * kDayS);
  // Sunday 23:59:59 is still the week that began on Monday.
  EXPECT_EQ(align_interval(kMonday + 7 * kDayS - 1, AggregateFrequency::Weekly), kMonday);
  // The epoch was a Thursday: its week began on Monday 1969-12-29.
  EXPECT_EQ(align_interval(0, AggregateFrequency::Weekly), -3 * kDayS);
  EXPECT_EQ(align_interval(-1, AggregateFrequency::Hourly), -kHourS);
}

TEST(AggregateFilename, SubmitterDomainBeginEndIdExtension) {
  EXPECT_EQ(aggregate_filename("mx.ours.example", "example.com", 1013662812, 1013749130, "abc1",
                               "xml.gz"),
            "mx.ours.example!example.com!1013662812!1013749130!abc1.xml.gz");
}

TEST(NewReportId, DatePlusRandomHexOnlyLettersAndDigits) {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    std::string id = new_report_id(kDay1 + 5000);
    ASSERT_EQ(id.size(), 24u) << id;
    EXPECT_EQ(id.substr(0, 8), "20231114");
    // RFC 9990 §3.5.2: the filename's unique-id is 1*(ALPHA / DIGIT).
    EXPECT_TRUE(std::all_of(id.begin(), id.end(), [](char c) { return std::isalnum(c) != 0; }));
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 1000u);
}

TEST(FirstAttempt, AtOnceForCloseNowElseSpreadAfterTheEnd) {
  std::mt19937_64 rng(42);
  EXPECT_EQ(
      AggregateBuilder::first_attempt(kDay2, kDay2 + 10, std::chrono::seconds(3600), true, rng),
      kDay2 + 10);
  EXPECT_EQ(AggregateBuilder::first_attempt(kDay2, kDay2 + 10, std::chrono::seconds(0), false, rng),
            kDay2 + 10);
  std::set<std::int64_t> seen;
  for (int i = 0; i < 200; ++i) {
    // Built late (downtime): from now on, not from the interval's end.
    const auto t =
        AggregateBuilder::first_attempt(kDay2, kDay3, std::chrono::seconds(3600), false, rng);
    EXPECT_GE(t, kDay3);
    EXPECT_LT(t, kDay3 + 3600);
    seen.insert(t);
  }
  EXPECT_GT(seen.size(), 100u);  // spread, not one instant
  EXPECT_EQ(AggregateBuilder::first_attempt(kDay2, kDay1, std::chrono::seconds(1), false, rng),
            kDay2);
}

// ---------------------------------------------------------------- with a store

// A toy organizational domain: the last two labels.
std::string org(std::string_view d) {
  auto last = d.rfind('.');
  if (last == std::string_view::npos || last == 0) return std::string(d);
  auto prev = d.rfind('.', last - 1);
  return std::string(prev == std::string_view::npos ? d : d.substr(prev + 1));
}

class CapturingLogger final : public Logger {
 public:
  void log(LogLevel, std::string_view context, std::string_view message) override {
    std::lock_guard lock(mu_);
    lines_.push_back(std::string(context) + ": " + std::string(message));
  }
  bool contains(std::string_view needle) {
    std::lock_guard lock(mu_);
    return std::any_of(lines_.begin(), lines_.end(),
                       [&](const std::string& l) { return l.find(needle) != std::string::npos; });
  }

 private:
  std::mutex mu_;
  std::vector<std::string> lines_;
};

std::string gunzip(const std::string& gz) {
  z_stream z{};
  EXPECT_EQ(inflateInit2(&z, 15 + 16), Z_OK);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  z.avail_in = static_cast<uInt>(gz.size());
  std::string out;
  char buf[65536];
  int rc = Z_OK;
  while (rc == Z_OK) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    rc = inflate(&z, Z_NO_FLUSH);
    out.append(buf, sizeof buf - z.avail_out);
  }
  EXPECT_EQ(rc, Z_STREAM_END) << "not a complete gzip stream";
  inflateEnd(&z);
  return out;
}

report::DmarcAggregate parse_xml(const std::string& xml) {
  MemorySource src(xml);
  report::CollectingSink sink;
  auto st = report::parse_dmarc_xml(src, sink);
  EXPECT_TRUE(st) << st.error().describe();
  EXPECT_EQ(sink.reports().size(), 1u);
  if (sink.reports().empty()) return {};
  auto agg = std::get<report::DmarcAggregate>(std::move(sink.reports().front()));
  EXPECT_TRUE(agg.errors.empty()) << agg.errors.front() << "\n" << xml;
  return agg;
}

// One store file, a config and builders made on demand (a new builder = a restart).
class Harness {
 public:
  explicit Harness(AggregateFrequency send = AggregateFrequency::Daily,
                   config::DmarcAggregateFormat format = config::DmarcAggregateFormat::Rfc9990) {
    auto c = std::make_shared<config::Config>(*config::Config::defaults());
    c->report.domain = "ours.example";
    c->report.submitter = "mx.ours.example";
    auto& a = c->report.dmarc_aggregate;
    a.org_name = "Ours Org";
    a.from_address = "noreply-dmarc@ours.example";
    a.contact_info = "https://ours.example/dmarc";
    a.send = send;
    a.format = format;
    a.spread = std::chrono::seconds(3600);
    config_ = c;
    open();
  }

  std::shared_ptr<const config::Config> config_ptr() const { return config_; }
  store::Store& store() { return *store_; }
  CapturingLogger& log() { return log_; }

  // Closes and reopens the store file: what a restart of mailreport serve does.
  void restart() {
    store_.reset();
    open();
  }

  std::unique_ptr<AggregateBuilder> builder() {
    return std::make_unique<AggregateBuilder>(*store_, make_dmarc_source(config_, org, log_), log_);
  }

  BuildStats run(std::int64_t now, BuildOptions options = {}) {
    options.now = now;
    auto stats = builder()->run(options);
    EXPECT_TRUE(stats) << stats.error().describe();
    return stats ? *stats : BuildStats{};
  }

  void record(std::vector<auth::Evaluation> batch) {
    auto st = store_->record_evaluations(batch);
    ASSERT_TRUE(st) << st.error().describe();
  }

  // Every report stored, oldest first, with content.
  std::vector<store::AggregateReport> reports() {
    auto list = store_->list_aggregate_reports({});
    EXPECT_TRUE(list) << list.error().describe();
    std::vector<store::AggregateReport> out;
    if (!list) return out;
    for (const auto& r : *list) {
      auto full = store_->get_aggregate_report(r.id);
      EXPECT_TRUE(full) << full.error().describe();
      if (full) out.push_back(std::move(*full));
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    return out;
  }

  std::vector<store::OutboxEntry> outbox() {
    store::OutboxFilter f;
    f.kind = kKind;
    f.with_payload = true;
    auto list = store_->list_outbox(f);
    EXPECT_TRUE(list) << list.error().describe();
    return list ? *list : std::vector<store::OutboxEntry>{};
  }

  std::optional<std::int64_t> watermark() {
    auto w = store_->aggregate_watermark(kKind);
    EXPECT_TRUE(w) << w.error().describe();
    return w ? *w : std::nullopt;
  }

  // Messages recorded and messages marked reported, over every row.
  std::pair<std::uint64_t, std::uint64_t> counts() {
    auto rows = store_->list_evaluations({});
    EXPECT_TRUE(rows) << rows.error().describe();
    std::uint64_t recorded = 0, reported = 0;
    if (rows) {
      for (const auto& r : *rows) {
        recorded += r.record.row.count;
        reported += r.reported;
      }
    }
    return {recorded, reported};
  }

 private:
  void open() {
    store::SqliteOptions o;
    o.path = dir_ / "store.db";
    o.synchronous_full = false;
    auto s = store::open_sqlite_store(o);
    if (!s) throw std::runtime_error(s.error().describe());
    store_ = std::move(*s);
  }

  test::TempDir dir_;
  std::shared_ptr<config::Config> config_;
  std::unique_ptr<store::Store> store_;
  CapturingLogger log_;
};

std::uint64_t messages_in(const std::vector<store::AggregateReport>& reports) {
  std::uint64_t n = 0;
  for (const auto& r : reports) n += r.messages;
  return n;
}

std::uint64_t count_in(const report::DmarcAggregate& a) {
  std::uint64_t n = 0;
  for (const auto& r : a.records) n += r.row.count;
  return n;
}

TEST(AggregateBuilder, DailyReportsParseBackWithTheirMetadataAndMergedRows) {
  Harness h;
  h.record({sample_evaluation(kDay1 + kHourS), sample_evaluation(kDay1 + kHourS + 60),
            sample_evaluation(kDay1 + 5 * kHourS),  // another hour, same identity: merged
            sample_evaluation(kDay1 + 6 * kHourS, "192.0.2.2"),
            sample_evaluation(kDay1 + 7 * kHourS, "198.51.100.1", "other.example"),
            sample_evaluation(kDay1 + 8 * kHourS, "198.51.100.1", "other.example")});
  // Not due before the grace has passed.
  EXPECT_EQ(h.run(kDay2 + kGrace.count() - 1).intervals, 0u);
  EXPECT_TRUE(h.reports().empty());

  const std::int64_t now = kDay2 + kGrace.count();
  BuildStats st = h.run(now);
  EXPECT_EQ(st.intervals, 1u);
  EXPECT_EQ(st.reports, 2u);
  EXPECT_EQ(st.deliveries, 2u);
  EXPECT_EQ(st.messages, 6u);
  EXPECT_EQ(h.watermark(), kDay2);

  auto reports = h.reports();
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_EQ(st.bytes, reports[0].content.size() + reports[1].content.size());
  const auto& r = reports[0];
  EXPECT_EQ(r.kind, kKind);
  EXPECT_EQ(r.policy_domain, "example.com");
  EXPECT_EQ(r.date_begin, kDay1);
  EXPECT_EQ(r.date_end, kDay2);
  EXPECT_EQ(r.created_at, now);
  EXPECT_EQ(r.records, 2u);
  EXPECT_EQ(r.messages, 4u);
  EXPECT_EQ(r.filename, "mx.ours.example!example.com!" + std::to_string(kDay1) + "!" +
                            std::to_string(kDay2 - 1) + "!" + r.report_id + ".xml.gz");

  auto a = parse_xml(gunzip(r.content));
  EXPECT_EQ(a.header.xml_namespace, "urn:ietf:params:xml:ns:dmarc-2.0");
  EXPECT_EQ(a.header.version, "1.0");
  const auto& md = a.header.report_metadata;
  EXPECT_EQ(md.org_name, "Ours Org");
  EXPECT_EQ(md.email, "noreply-dmarc@ours.example");
  EXPECT_EQ(md.extra_contact_info, "https://ours.example/dmarc");
  EXPECT_EQ(md.report_id, r.report_id);
  EXPECT_EQ(md.date_range.begin, kDay1);
  EXPECT_EQ(md.date_range.end, kDay2 - 1);
  EXPECT_EQ(md.generator.rfind("mailreport/", 0), 0u) << md.generator;
  EXPECT_GT(md.generator.size(), std::string("mailreport/").size());
  const auto& pp = a.header.policy_published;
  EXPECT_EQ(pp.domain, "example.com");
  EXPECT_EQ(pp.p, "reject");
  EXPECT_EQ(pp.discovery_method, "treewalk");
  EXPECT_EQ(pp.testing, "n");
  ASSERT_EQ(a.records.size(), 2u);
  EXPECT_EQ(a.records[0].row.source_ip, "192.0.2.1");
  EXPECT_EQ(a.records[0].row.count, 3u);
  EXPECT_EQ(a.records[0].row.policy_evaluated.dkim, "pass");
  EXPECT_EQ(a.records[0].identifiers.header_from, "example.com");
  ASSERT_EQ(a.records[0].auth_results.dkim.size(), 1u);
  EXPECT_EQ(a.records[0].auth_results.dkim[0].selector, "s1");
  EXPECT_EQ(a.records[1].row.source_ip, "192.0.2.2");
  EXPECT_EQ(a.records[1].row.count, 1u);

  auto b = parse_xml(gunzip(reports[1].content));
  EXPECT_EQ(b.header.policy_published.domain, "other.example");
  EXPECT_EQ(count_in(b), 2u);

  // One outbox entry per report, due within the spread after the interval's end.
  auto out = h.outbox();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].recipient, "dmarc@example.com");
  EXPECT_EQ(out[0].reported_domain, "example.com");
  EXPECT_EQ(out[0].state, store::OutboxState::Queued);
  EXPECT_EQ(out[0].created_at, now);
  EXPECT_GE(out[0].next_attempt_at, now);
  EXPECT_LT(out[0].next_attempt_at, now + 3600);
  auto payload = store::aggregate_payload_from_json(out[0].payload);
  ASSERT_TRUE(payload) << out[0].payload;
  EXPECT_EQ(payload->report, r.id);
  EXPECT_EQ(payload->uri, "mailto:dmarc@example.com");
  EXPECT_EQ(payload->max_size, 0u);
  EXPECT_EQ(out[1].recipient, "dmarc@other.example");

  EXPECT_EQ(h.counts(), std::make_pair(std::uint64_t{6}, std::uint64_t{6}));
  // Built once: the next run has nothing to do.
  EXPECT_EQ(h.run(now + 60).intervals, 0u);
  EXPECT_EQ(h.reports().size(), 2u);
  EXPECT_TRUE(h.log().contains("2 reports, 2 deliveries, 6 messages"));
}

TEST(AggregateBuilder, Rfc7489FormatParsesBack) {
  Harness h(AggregateFrequency::Daily, config::DmarcAggregateFormat::Rfc7489);
  h.record({sample_evaluation(kDay1 + kHourS), sample_evaluation(kDay1 + 2 * kHourS),
            sample_evaluation(kDay1 + 3 * kHourS, "2001:db8::25")});
  EXPECT_EQ(h.run(kDay2 + 600).reports, 1u);
  auto reports = h.reports();
  ASSERT_EQ(reports.size(), 1u);
  auto a = parse_xml(gunzip(reports[0].content));
  EXPECT_EQ(a.header.xml_namespace, "");
  EXPECT_TRUE(a.header.report_metadata.generator.empty());
  EXPECT_EQ(a.header.report_metadata.report_id, reports[0].report_id);
  EXPECT_EQ(a.header.report_metadata.date_range.begin, kDay1);
  EXPECT_EQ(a.header.policy_published.pct, 100);
  EXPECT_EQ(a.header.policy_published.sp, "reject");  // RFC 7489: sp defaults to p
  ASSERT_EQ(a.records.size(), 2u);
  EXPECT_EQ(a.records[0].row.count, 2u);
  EXPECT_EQ(a.records[1].row.source_ip, "2001:db8:0:0:0:0:0:25");
  EXPECT_EQ(count_in(a), 3u);
}

TEST(AggregateBuilder, ReportsValidateAgainstBothSchemas) {
  MAILREPORT_REQUIRE_CORPUS();
  for (auto format :
       {config::DmarcAggregateFormat::Rfc9990, config::DmarcAggregateFormat::Rfc7489}) {
    Harness h(AggregateFrequency::Daily, format);
    auto failing = sample_evaluation(kDay1 + kHourS, "192.0.2.9");
    failing.dkim[0].result = auth::DkimResult::Fail;
    failing.dkim[0].reason = "body hash mismatch";
    failing.dmarc.dkim_aligned = false;
    failing.dmarc.spf_aligned = false;
    failing.dmarc.result = auth::DmarcResult::Fail;
    failing.dmarc.disposition = auth::Disposition::Reject;
    h.record({sample_evaluation(kDay1 + kHourS), failing});
    ASSERT_EQ(h.run(kDay2 + 600).reports, 1u);
    const std::string xml = gunzip(h.reports().at(0).content);
    if (format == config::DmarcAggregateFormat::Rfc9990) {
      EXPECT_EQ(test::schema_errors(xml, "dmarc-2.0-rfc9990.xsd"), "") << xml;
    } else {
      EXPECT_EQ(test::schema_errors(xml, "dmarc-rfc7489.xsd", "http://dmarc.org/dmarc-xml/0.1"), "")
          << xml;
    }
  }
}

TEST(AggregateBuilder, AtMostOneHundredDkimResultsAlignedPassFirst) {
  Harness h;
  auto ev = sample_evaluation(kDay1 + kHourS);
  auto aligned = ev.dkim[0];
  ev.dkim.clear();
  for (int i = 0; i < 150; ++i) {
    ev.dkim.push_back({auth::DkimResult::Fail, "x" + std::to_string(i) + ".example", "s",
                       "@x.example", "rsa-sha256", "no key", false, "b" + std::to_string(1000 + i),
                       false, "", "", ""});
  }
  ev.dkim.push_back(aligned);
  h.record({ev});
  ASSERT_EQ(h.run(kDay2 + 600).reports, 1u);
  auto a = parse_xml(gunzip(h.reports().at(0).content));
  ASSERT_EQ(a.records.size(), 1u);
  const auto& dkim = a.records[0].auth_results.dkim;
  ASSERT_EQ(dkim.size(), kMaxDkimResultsPerRecord);
  EXPECT_EQ(dkim[0].domain, "example.com");  // RFC 9990 §3.1.3: the aligned pass first
  EXPECT_EQ(dkim[0].result, "pass");
  EXPECT_EQ(dkim[1].domain, "x0.example");
}

TEST(AggregateBuilder, RuaMailtoUrisInOrderWithSizeOthersSkippedAndLogged) {
  Harness h;
  auto ev = sample_evaluation(kDay1 + kHourS);
  ev.dmarc.record->rua = {"https://reports.example/dmarc", "mailto:a@example.com!10m",
                          "mailto:A@Example.com", "mailto:b@reports.example.net"};
  auto older = sample_evaluation(kDay1 + 30);  // an earlier record: its rua= is not used
  older.source_ip = "192.0.2.77";
  older.dmarc.record->rua = {"mailto:old@example.com"};
  h.record({older, ev});
  ASSERT_EQ(h.run(kDay2 + 600).deliveries, 2u);
  auto out = h.outbox();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].recipient, "a@example.com");
  auto p0 = store::aggregate_payload_from_json(out[0].payload);
  ASSERT_TRUE(p0);
  EXPECT_EQ(p0->uri, "mailto:a@example.com!10m");
  EXPECT_EQ(p0->max_size, 10ull << 20);
  EXPECT_EQ(out[1].recipient, "b@reports.example.net");
  EXPECT_EQ(out[0].reported_domain, "example.com");
  EXPECT_TRUE(h.log().contains("https://reports.example/dmarc"));
  // Both rows are in the one report.
  EXPECT_EQ(h.reports().at(0).messages, 2u);
}

TEST(AggregateBuilder, OneReportPerPublishedPolicy) {
  Harness h;
  h.record({sample_evaluation(kDay1 + kHourS),
            sample_evaluation(kDay1 + 9 * kHourS, "192.0.2.1", "example.com",
                              auth::Policy::Quarantine)});
  ASSERT_EQ(h.run(kDay2 + 600).reports, 2u);
  auto reports = h.reports();
  ASSERT_EQ(reports.size(), 2u);
  std::set<std::string> policies;
  for (const auto& r : reports) {
    auto a = parse_xml(gunzip(r.content));
    EXPECT_EQ(a.header.policy_published.domain, "example.com");
    EXPECT_EQ(count_in(a), 1u);
    policies.insert(a.header.policy_published.p);
  }
  EXPECT_EQ(policies, (std::set<std::string>{"reject", "quarantine"}));
  EXPECT_NE(reports[0].report_id, reports[1].report_id);
}

TEST(AggregateBuilder, ExactlyOnceAcrossRestartMidIntervalAndLateRows) {
  Harness h;
  h.record({sample_evaluation(kDay1 + kHourS), sample_evaluation(kDay1 + kHourS + 5)});
  ASSERT_EQ(h.run(kDay2 + 600).messages, 2u);

  // Recorded after day 1 was built: one late for day 1, three for day 2, one other domain.
  h.record({sample_evaluation(kDay1 + 20 * kHourS), sample_evaluation(kDay2 + kHourS),
            sample_evaluation(kDay2 + 2 * kHourS), sample_evaluation(kDay2 + 3 * kHourS),
            sample_evaluation(kDay2 + 4 * kHourS, "198.51.100.1", "other.example")});
  // Restart in the middle of day 2: nothing is due.
  h.restart();
  EXPECT_EQ(h.run(kDay2 + 12 * kHourS).intervals, 0u);
  EXPECT_EQ(h.reports().size(), 1u);

  BuildStats st = h.run(kDay3 + 600);
  EXPECT_EQ(st.intervals, 1u);
  EXPECT_EQ(st.reports, 2u);
  EXPECT_EQ(st.messages, 5u);
  auto reports = h.reports();
  ASSERT_EQ(reports.size(), 3u);
  // The late row is in day 2's report, which then begins at its hour.
  const auto& late = reports[1];
  EXPECT_EQ(late.policy_domain, "example.com");
  EXPECT_EQ(late.date_begin, kDay1 + 20 * kHourS);
  EXPECT_EQ(late.date_end, kDay3);
  auto a = parse_xml(gunzip(late.content));
  EXPECT_EQ(a.header.report_metadata.date_range.begin, kDay1 + 20 * kHourS);
  ASSERT_EQ(a.records.size(), 1u);
  EXPECT_EQ(a.records[0].row.count, 4u);
  EXPECT_EQ(reports[2].policy_domain, "other.example");
  EXPECT_EQ(reports[2].date_begin, kDay2);

  // Nothing twice, nothing missed.
  h.restart();
  EXPECT_EQ(h.run(kDay3 + 700).intervals, 0u);
  EXPECT_EQ(messages_in(h.reports()), 7u);
  EXPECT_EQ(h.counts(), std::make_pair(std::uint64_t{7}, std::uint64_t{7}));
  EXPECT_EQ(h.watermark(), kDay3);
}

// Wraps the DMARC source: fails after handing over `fail_after` reports, or lets another
// builder move the watermark first (a second node winning the race).
class MeddlingSource final : public AggregateSource {
 public:
  MeddlingSource(std::unique_ptr<AggregateSource> inner, int fail_after, bool race)
      : inner_(std::move(inner)), fail_after_(fail_after), race_(race) {}
  std::string_view kind() const noexcept override { return inner_->kind(); }
  const config::AggregateReportSettings& settings() const noexcept override {
    return inner_->settings();
  }
  Result<std::optional<std::int64_t>> earliest_unreported(store::Store& store,
                                                          std::string_view domain) override {
    return inner_->earliest_unreported(store, domain);
  }
  Status build(store::Store& store, const BuildInterval& interval,
               const BuiltReportSink& sink) override {
    if (race_) {
      store::AggregateBatch other;
      other.kind = kKind;
      other.watermark = interval.end;
      auto ids = store.commit_aggregate_batch(other);
      if (!ids) return std::move(ids).error();
    }
    int handed = 0;
    return inner_->build(store, interval, [&](BuiltReport&& r) -> Status {
      if (fail_after_ >= 0 && handed >= fail_after_) {
        return make_error(ErrorCode::Io, "disk on fire");
      }
      ++handed;
      return sink(std::move(r));
    });
  }

 private:
  std::unique_ptr<AggregateSource> inner_;
  int fail_after_;
  bool race_;
};

TEST(AggregateBuilder, AFailedBuildCommitsNothingAndTheNextRunBuildsEverythingOnce) {
  Harness h;
  h.record({sample_evaluation(kDay1 + kHourS),
            sample_evaluation(kDay1 + kHourS, "192.0.2.3", "other.example")});
  AggregateBuilder failing(
      h.store(),
      std::make_unique<MeddlingSource>(make_dmarc_source(h.config_ptr(), org, h.log()), 1, false),
      h.log());
  BuildOptions o;
  o.now = kDay2 + 600;
  auto st = failing.run(o);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::Io);
  EXPECT_TRUE(h.reports().empty());
  EXPECT_EQ(h.watermark(), std::nullopt);
  EXPECT_EQ(h.counts().second, 0u);

  EXPECT_EQ(h.run(kDay2 + 700).reports, 2u);
  EXPECT_EQ(h.counts(), std::make_pair(std::uint64_t{2}, std::uint64_t{2}));
}

TEST(AggregateBuilder, ARacingBuilderGetsConflictAndCommitsNothing) {
  Harness h;
  h.record({sample_evaluation(kDay1 + kHourS)});
  AggregateBuilder racing(
      h.store(),
      std::make_unique<MeddlingSource>(make_dmarc_source(h.config_ptr(), org, h.log()), -1, true),
      h.log());
  BuildOptions o;
  o.now = kDay2 + 600;
  auto st = racing.run(o);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::Conflict);
  EXPECT_TRUE(h.reports().empty());
  EXPECT_EQ(h.counts().second, 0u);
  EXPECT_TRUE(h.log().contains("another builder"));
}

TEST(AggregateBuilder, AWeekOfDowntimeGivesOneReportPerMissedIntervalInOrder) {
  Harness h;
  h.record({sample_evaluation(kDay1 - 3600)});
  ASSERT_EQ(h.run(kDay1 + 600).reports, 1u);
  ASSERT_EQ(h.watermark(), kDay1);
  std::vector<auth::Evaluation> batch;
  for (int d = 0; d < 7; ++d) {
    if (d == 3) continue;  // a day without mail: no report, but the watermark moves on
    batch.push_back(sample_evaluation(kDay1 + d * kDayS + 3600));
    batch.push_back(sample_evaluation(kDay1 + d * kDayS + 7200, "192.0.2.8"));
  }
  h.record(batch);
  BuildStats st = h.run(kDay1 + 7 * kDayS + 600);
  EXPECT_EQ(st.intervals, 7u);
  EXPECT_EQ(st.reports, 6u);
  EXPECT_EQ(st.messages, 12u);
  auto reports = h.reports();
  ASSERT_EQ(reports.size(), 7u);
  std::vector<std::int64_t> begins;
  for (std::size_t i = 1; i < reports.size(); ++i) {
    begins.push_back(reports[i].date_begin);
    EXPECT_EQ(reports[i].date_end, reports[i].date_begin + kDayS);
    EXPECT_EQ(reports[i].messages, 2u);
  }
  EXPECT_EQ(begins,
            (std::vector<std::int64_t>{kDay1, kDay1 + kDayS, kDay1 + 2 * kDayS, kDay1 + 4 * kDayS,
                                       kDay1 + 5 * kDayS, kDay1 + 6 * kDayS}));
  EXPECT_EQ(h.watermark(), kDay1 + 7 * kDayS);
  EXPECT_EQ(h.counts(), std::make_pair(std::uint64_t{13}, std::uint64_t{13}));
}

TEST(AggregateBuilder, CloseNowSendsAtOnceThenTheRegularRunContinues) {
  Harness h;
  h.record({sample_evaluation(kDay1 + 10 * kHourS + 600)});
  const std::int64_t now = kDay1 + 10 * kHourS + 1800;  // 10:30
  BuildOptions o;
  o.close_now = true;
  BuildStats st = h.run(now, o);
  EXPECT_EQ(st.intervals, 1u);
  EXPECT_EQ(st.reports, 1u);
  EXPECT_EQ(h.watermark(), now);
  auto reports = h.reports();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].date_begin, kDay1);
  EXPECT_EQ(reports[0].date_end, now);
  EXPECT_EQ(parse_xml(gunzip(reports[0].content)).header.report_metadata.date_range.end, now - 1);
  auto out = h.outbox();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].next_attempt_at, now);  // at once, no spread
  // Closing again at the same instant has nothing to close.
  EXPECT_EQ(h.run(now, o).intervals, 0u);

  // More in the same hour, and later that day; the rest of day 1 is due after midnight.
  h.record({sample_evaluation(kDay1 + 10 * kHourS + 3000), sample_evaluation(kDay1 + 14 * kHourS)});
  EXPECT_EQ(h.run(kDay1 + 20 * kHourS).intervals, 0u);
  st = h.run(kDay2 + 600);
  EXPECT_EQ(st.intervals, 1u);
  EXPECT_EQ(st.messages, 2u);
  reports = h.reports();
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_EQ(reports[1].date_begin, kDay1 + 10 * kHourS);  // the hour of the 10:50 message
  EXPECT_EQ(reports[1].date_end, kDay2);
  EXPECT_EQ(h.watermark(), kDay2);
  out = h.outbox();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_GE(out[1].next_attempt_at, kDay2 + 600);
  EXPECT_EQ(h.counts(), std::make_pair(std::uint64_t{3}, std::uint64_t{3}));
}

TEST(AggregateBuilder, CloseNowAfterDowntimeBuildsTheEndedIntervalsFirst) {
  Harness h;
  h.record({sample_evaluation(kDay1 + kHourS)});
  ASSERT_EQ(h.run(kDay2 + 600).reports, 1u);
  h.record({sample_evaluation(kDay2 + kHourS), sample_evaluation(kDay3 + kHourS)});
  BuildOptions o;
  o.close_now = true;
  // Day 2 ended 2 minutes ago (within the grace): built in full, then day 3 until now.
  BuildStats st = h.run(kDay3 + 2 * kHourS, o);
  EXPECT_EQ(st.intervals, 2u);
  auto reports = h.reports();
  ASSERT_EQ(reports.size(), 3u);
  EXPECT_EQ(reports[1].date_begin, kDay2);
  EXPECT_EQ(reports[1].date_end, kDay3);
  EXPECT_EQ(reports[2].date_begin, kDay3);
  EXPECT_EQ(reports[2].date_end, kDay3 + 2 * kHourS);
  EXPECT_EQ(h.watermark(), kDay3 + 2 * kHourS);
}

TEST(AggregateBuilder, DomainFilterBuildsOneDomainAndLeavesTheWatermark) {
  Harness h;
  h.record({sample_evaluation(kDay1 + kHourS),
            sample_evaluation(kDay1 + kHourS, "198.51.100.1", "other.example")});
  BuildOptions o;
  o.domain = "other.example";
  BuildStats st = h.run(kDay2 + 600, o);
  EXPECT_EQ(st.reports, 1u);
  EXPECT_EQ(h.watermark(), std::nullopt);
  auto reports = h.reports();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].policy_domain, "other.example");

  st = h.run(kDay2 + 700);
  EXPECT_EQ(st.reports, 1u);
  reports = h.reports();
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_EQ(reports[1].policy_domain, "example.com");
  EXPECT_EQ(h.watermark(), kDay2);
  EXPECT_EQ(h.counts(), std::make_pair(std::uint64_t{2}, std::uint64_t{2}));
}

TEST(AggregateBuilder, DryRunHandsReportsOverAndChangesNothing) {
  Harness h;
  h.record({sample_evaluation(kDay1 + kHourS), sample_evaluation(kDay2 + kHourS)});
  std::vector<BuiltReport> seen;
  BuildOptions o;
  o.dry_run = [&](const BuiltReport& r) -> Status {
    seen.push_back(r);
    return {};
  };
  // Two days due: shown as one build (nothing is marked reported between them).
  BuildStats st = h.run(kDay3 + 600, o);
  EXPECT_EQ(st.reports, 1u);
  EXPECT_EQ(st.messages, 2u);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].report.kind, kKind);
  EXPECT_EQ(seen[0].report.date_begin, kDay1);
  EXPECT_EQ(seen[0].report.date_end, kDay3);
  ASSERT_EQ(seen[0].deliveries.size(), 1u);
  EXPECT_EQ(seen[0].deliveries[0].recipient, "dmarc@example.com");
  EXPECT_EQ(seen[0].reported.size(), 2u);
  EXPECT_EQ(count_in(parse_xml(gunzip(seen[0].report.content))), 2u);

  EXPECT_TRUE(h.reports().empty());
  EXPECT_TRUE(h.outbox().empty());
  EXPECT_EQ(h.watermark(), std::nullopt);
  EXPECT_EQ(h.counts().second, 0u);

  // The real run afterwards builds both days, one report each.
  EXPECT_EQ(h.run(kDay3 + 700).reports, 2u);
}

TEST(AggregateBuilder, HourlyIntervalsEachDueAfterTheGrace) {
  Harness h(AggregateFrequency::Hourly);
  const std::int64_t h0 = kDay1 + 5 * kHourS;
  h.record({sample_evaluation(h0 + 100), sample_evaluation(h0 + kHourS + 100),
            sample_evaluation(h0 + 2 * kHourS + 100)});
  BuildStats st = h.run(h0 + 3 * kHourS + kGrace.count() - 1);
  EXPECT_EQ(st.intervals, 2u);
  EXPECT_EQ(st.reports, 2u);
  EXPECT_EQ(h.watermark(), h0 + 2 * kHourS);
  st = h.run(h0 + 3 * kHourS + kGrace.count());
  EXPECT_EQ(st.intervals, 1u);
  auto reports = h.reports();
  ASSERT_EQ(reports.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(reports[i].date_begin, h0 + i * kHourS);
    EXPECT_EQ(reports[i].date_end, h0 + (i + 1) * kHourS);
    EXPECT_EQ(reports[i].messages, 1u);
  }
}

TEST(AggregateBuilder, WeeklyIntervalsBeginOnMonday) {
  Harness h(AggregateFrequency::Weekly);
  h.record({sample_evaluation(kDay1 + kHourS),                  // Tuesday
            sample_evaluation(kMonday + 6 * kDayS + kHourS)});  // Sunday
  const std::int64_t next_monday = kMonday + 7 * kDayS;
  EXPECT_EQ(h.run(next_monday - 600).intervals, 0u);
  BuildStats st = h.run(next_monday + 600);
  EXPECT_EQ(st.intervals, 1u);
  auto reports = h.reports();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].date_begin, kMonday);
  EXPECT_EQ(reports[0].date_end, next_monday);
  auto a = parse_xml(gunzip(reports[0].content));
  ASSERT_EQ(a.records.size(), 1u);
  EXPECT_EQ(a.records[0].row.count, 2u);
}

TEST(AggregateBuilder, NeverBuildsNothing) {
  Harness h(AggregateFrequency::Never);
  h.record({sample_evaluation(kDay1 + kHourS)});
  BuildStats st = h.run(kDay3);
  EXPECT_EQ(st.intervals, 0u);
  EXPECT_TRUE(h.reports().empty());
  EXPECT_EQ(h.watermark(), std::nullopt);
}

TEST(AggregateBuilder, ManyDomainsAreCommittedInSeveralBatches) {
  Harness h;
  std::vector<auth::Evaluation> batch;
  for (int i = 0; i < 1201; ++i) {
    batch.push_back(
        sample_evaluation(kDay1 + kHourS + i, "192.0.2.1", "d" + std::to_string(i) + ".example"));
  }
  h.record(batch);
  BuildStats st = h.run(kDay2 + 600);
  EXPECT_EQ(st.reports, 1201u);
  EXPECT_EQ(h.reports().size(), 1201u);
  EXPECT_EQ(h.outbox().size(), 1201u);
  EXPECT_EQ(h.counts(), std::make_pair(std::uint64_t{1201}, std::uint64_t{1201}));
  EXPECT_EQ(h.watermark(), kDay2);
}

}  // namespace
}  // namespace mailreport::outbound

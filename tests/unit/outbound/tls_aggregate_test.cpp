// The TLS report source: TLSRPT record parsing (RFC 8460 §3), and the reports built from the
// collector's counts: one per recipient domain and record, RFC 8460 §4 JSON that parses back
// with our own parser (policy types, result types, counts), gzip, filename, deliveries, and the
// reported counts the builder commits. Then the whole path with the SQLite store: datagrams
// built as libtlsrpt writes them, through the collector's batcher, into a report.
#include "mailreport/outbound/tls_aggregate.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <map>
#include <string>
#include <vector>

#include "fake_tls_store.hpp"
#include "mailreport/ingest/tlsrpt_collector.hpp"
#include "mailreport/report/tlsrpt_json.hpp"
#include "mailreport/store/aggregate_payload.hpp"
#include "mailreport/store/sqlite_store.hpp"
#include "tlsrpt_datagram_builder.hpp"

namespace mailreport::outbound {
namespace {

// ---------------------------------------------------------------- parse_tlsrpt_record

TEST(TlsrptRecord, ParsesTheRfcExamples) {
  auto r = parse_tlsrpt_record("v=TLSRPTv1;rua=mailto:reports@example.com");
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->rua, std::vector<std::string>{"mailto:reports@example.com"});
  r = parse_tlsrpt_record("v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt");
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->rua, std::vector<std::string>{"https://reporting.example.com/v1/tlsrpt"});
}

TEST(TlsrptRecord, SeveralUrisInOrderWithBlanksAndATrailingDelimiter) {
  auto r = parse_tlsrpt_record(
      "v=TLSRPTv1 ;  rua=mailto:a@example.com , https://r.example.net/x,mailto:b@example.org ; ");
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->rua, (std::vector<std::string>{"mailto:a@example.com", "https://r.example.net/x",
                                              "mailto:b@example.org"}));
}

TEST(TlsrptRecord, PercentEncodedDelimitersStayInTheUri) {
  // RFC 8460 §3: "," "!" ";" inside a URI are %-encoded, so they do not split the list.
  auto r = parse_tlsrpt_record(
      "v=TLSRPTv1;rua=mailto:tls%21reports@example.com,https://r.example.com/a%2Cb%3Bc");
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->rua, (std::vector<std::string>{"mailto:tls%21reports@example.com",
                                              "https://r.example.com/a%2Cb%3Bc"}));
  // A %-encoded "," in a mailto address would name two addresses once decoded: not usable.
  EXPECT_FALSE(parse_tlsrpt_record("v=TLSRPTv1;rua=mailto:a%2Cb@example.com"));
}

TEST(TlsrptRecord, VersionMustComeFirstAndExactly) {
  EXPECT_FALSE(parse_tlsrpt_record("rua=mailto:a@example.com; v=TLSRPTv1"));
  EXPECT_FALSE(parse_tlsrpt_record(" v=TLSRPTv1; rua=mailto:a@example.com"));
  EXPECT_FALSE(parse_tlsrpt_record("v=tlsrptv1; rua=mailto:a@example.com"));  // %s: exact case
  EXPECT_FALSE(parse_tlsrpt_record("v=TLSRPTv10; rua=mailto:a@example.com"));
  EXPECT_FALSE(parse_tlsrpt_record("v=DMARC1; rua=mailto:a@example.com"));
  EXPECT_FALSE(parse_tlsrpt_record(""));
}

TEST(TlsrptRecord, RuaIsRequiredAndMustHoldAUsableUri) {
  EXPECT_FALSE(parse_tlsrpt_record("v=TLSRPTv1"));
  EXPECT_FALSE(parse_tlsrpt_record("v=TLSRPTv1;"));
  EXPECT_FALSE(parse_tlsrpt_record("v=TLSRPTv1; ext=1"));
  EXPECT_FALSE(parse_tlsrpt_record("v=TLSRPTv1; rua="));
  EXPECT_FALSE(parse_tlsrpt_record("v=TLSRPTv1; rua=ftp://example.com/x"));
  EXPECT_FALSE(parse_tlsrpt_record("v=TLSRPTv1; rua=mailto:"));
  EXPECT_FALSE(parse_tlsrpt_record("v=TLSRPTv1; rua=mailto:a@example.com!10m"));  // raw "!"
  EXPECT_FALSE(parse_tlsrpt_record("v=TLSRPTv1; RUA=mailto:a@example.com"));      // %s"rua="
  // An unusable URI next to a usable one: the record stands; the URI is listed as written.
  auto r = parse_tlsrpt_record("v=TLSRPTv1; rua=ftp://example.com/x,mailto:a@example.com");
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->rua.size(), 2u);
}

TEST(TlsrptRecord, UnknownFieldsAreIgnored) {
  auto r =
      parse_tlsrpt_record("v=TLSRPTv1; future_ext.1=some-value; rua=mailto:a@example.com; x-y=z");
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->rua, std::vector<std::string>{"mailto:a@example.com"});
  EXPECT_FALSE(parse_tlsrpt_record("v=TLSRPTv1; rua=mailto:a@example.com; garbage"));
}

// ---------------------------------------------------------------- the source

constexpr std::int64_t kDay = 1767225600;  // 2026-01-01 00:00:00 UTC
const std::string kRecordA = "v=TLSRPTv1; rua=mailto:tlsrpt@a.example,https://r.a.example/tls";
const std::string kRecordA2 = "v=TLSRPTv1; rua=mailto:z-other@a.example";  // sorts after A
const std::string kRecordB = "v=TLSRPTv1;rua=mailto:tls%21reports@b.example";

std::shared_ptr<const config::Config> test_config(std::string contact_info = "") {
  auto c = std::make_shared<config::Config>(*config::Config::defaults());
  c->report.submitter = "mx.ours.example";
  auto& t = c->report.tls_aggregate;
  t.from_name = "TLS Report";
  t.from_address = "noreply-tls@ours.example";
  t.org_name = "Ours Inc.";
  t.contact_info = std::move(contact_info);
  t.max_size = 26214400;
  return c;
}

std::string gunzip(const std::string& gz) {
  z_stream z{};
  EXPECT_EQ(inflateInit2(&z, 16 + MAX_WBITS), Z_OK);
  std::string out;
  char buf[16384];
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  z.avail_in = static_cast<uInt>(gz.size());
  int rc = Z_OK;
  while (rc == Z_OK) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    rc = inflate(&z, Z_NO_FLUSH);
    out.append(buf, sizeof buf - z.avail_out);
  }
  EXPECT_EQ(rc, Z_STREAM_END);
  inflateEnd(&z);
  return out;
}

store::TlsPolicyCount policy_row(std::int64_t id, std::int64_t day, std::string domain,
                                 std::string record, std::string type, std::uint64_t ok,
                                 std::uint64_t failed) {
  store::TlsPolicyCount r;
  r.id = id;
  r.day = day;
  r.domain = domain;
  r.record = std::move(record);
  r.policy.policy_type = std::move(type);
  r.policy.policy_domain = domain;
  r.policy.total_successful_session_count = ok;
  r.policy.total_failure_session_count = failed;
  return r;
}

store::TlsFailureCount failure_row(std::int64_t id, std::string type, std::uint64_t count,
                                   std::uint64_t reported = 0) {
  store::TlsFailureCount f;
  f.id = id;
  f.detail.result_type = std::move(type);
  f.detail.sending_mta_ip = "192.0.2.25";
  f.detail.receiving_mx_hostname = "mx.a.example";
  f.detail.receiving_ip = "198.51.100.7";
  f.detail.failure_reason_code = "X509_V_ERR";
  f.detail.failed_session_count = count;
  f.reported = reported;
  return f;
}

std::vector<BuiltReport> build_all(AggregateSource& source, store::Store& store,
                                   const BuildInterval& interval) {
  std::vector<BuiltReport> out;
  auto st = source.build(store, interval, [&](BuiltReport&& r) -> Status {
    out.push_back(std::move(r));
    return {};
  });
  EXPECT_TRUE(st) << st.error().describe();
  return out;
}

const store::ReportedCount* reported_for(const BuiltReport& r, store::ReportedCount::Table t,
                                         std::int64_t id) {
  for (const auto& c : r.reported) {
    if (c.table == t && c.id == id) return &c;
  }
  return nullptr;
}

class TlsSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // a.example, record A: an STS policy with successes and failures (two details), a TLSA
    // policy, and no-policy-found without a policy domain; partly reported already.
    auto sts = policy_row(1, kDay, "a.example", kRecordA, "sts", 90, 4);
    sts.policy.policy_string = {"version: STSv1", "mode: enforce", "mx: mx.a.example",
                                "max_age: 86400"};
    sts.policy.mx_host = {"mx.a.example"};
    sts.reported_successful = 10;
    sts.reported_failed = 1;
    sts.failures = {failure_row(11, "certificate-expired", 3, 1),
                    failure_row(12, "validation-failure", 1)};
    auto tlsa = policy_row(2, kDay, "a.example", kRecordA, "tlsa", 5, 0);
    tlsa.policy.policy_string = {"3 1 1 0123456789ABCDEF"};
    auto none = policy_row(3, kDay, "a.example", kRecordA, "no-policy-found", 0, 2);
    none.policy.policy_domain.clear();
    none.failures = {failure_row(13, "starttls-not-supported", 2)};
    // a.example with another record (it changed during the day): a report of its own.
    auto other = policy_row(4, kDay, "a.example", kRecordA2, "no-policy-found", 7, 0);
    // b.example: the same STS policy on the previous day (counted late) and today.
    auto b_old = policy_row(5, kDay - 86400, "b.example", kRecordB, "sts", 2, 1);
    b_old.policy.policy_string = {"version: STSv1", "mode: testing"};
    b_old.failures = {failure_row(14, "sts-webpki-invalid", 1)};
    auto b_new = b_old;
    b_new.id = 6;
    b_new.day = kDay;
    b_new.policy.total_successful_session_count = 3;
    b_new.failures = {failure_row(15, "sts-webpki-invalid", 1)};
    store.tls_rows = {b_new, other, none, sts, b_old, tlsa};  // the fake sorts them
  }

  test::FakeTlsStore store;
  NullLogger log;
  BuildInterval interval{kDay, kDay + 86400, "", kDay + 86400 + 600};
};

TEST_F(TlsSourceTest, OneReportPerDomainAndRecordInDomainOrder) {
  auto source = make_tls_source(test_config(), log);
  EXPECT_EQ(source->kind(), store::kTlsAggregateKind);
  auto reports = build_all(*source, store, interval);
  ASSERT_EQ(reports.size(), 3u);
  EXPECT_EQ(reports[0].report.policy_domain, "a.example");
  EXPECT_EQ(reports[1].report.policy_domain, "a.example");
  EXPECT_EQ(reports[2].report.policy_domain, "b.example");
  for (const auto& r : reports) {
    EXPECT_EQ(r.report.kind, store::kTlsAggregateKind);
    EXPECT_FALSE(r.report.report_id.empty());
  }
  EXPECT_NE(reports[0].report.report_id, reports[1].report.report_id);
}

TEST_F(TlsSourceTest, ReportJsonParsesBackWithTheCounts) {
  auto source = make_tls_source(test_config(), log);
  auto reports = build_all(*source, store, interval);
  ASSERT_GE(reports.size(), 1u);
  const auto& built = reports[0];  // a.example, record A
  const auto& ar = built.report;
  EXPECT_EQ(ar.date_begin, kDay);
  EXPECT_EQ(ar.date_end, kDay + 86400);
  EXPECT_EQ(ar.records, 3u);
  EXPECT_EQ(ar.messages, 90u + 4 + 5 + 2);
  EXPECT_EQ(ar.filename, "ours.example!a.example!" + std::to_string(kDay) + "!" +
                             std::to_string(kDay + 86400) + "!" + ar.report_id + ".json.gz");
  ASSERT_GE(ar.content.size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(ar.content[0]), 0x1f);  // gzip magic
  EXPECT_EQ(static_cast<unsigned char>(ar.content[1]), 0x8b);

  const std::string json = gunzip(ar.content);
  auto parsed = report::parse_tlsrpt_json(json);
  ASSERT_TRUE(parsed) << parsed.error().describe() << "\n" << json;
  const auto& r = *parsed;
  EXPECT_EQ(r.organization_name, "Ours Inc.");
  EXPECT_EQ(r.contact_info, "noreply-tls@ours.example");  // contact-info unset: from-address
  EXPECT_EQ(r.report_id, ar.report_id);
  EXPECT_EQ(r.date_range.begin, kDay);
  EXPECT_EQ(r.date_range.end, kDay + 86399);
  EXPECT_NE(json.find("\"start-datetime\":\"2026-01-01T00:00:00Z\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"end-datetime\":\"2026-01-01T23:59:59Z\""), std::string::npos) << json;
  ASSERT_EQ(r.policies.size(), 3u);
  std::map<std::string, const report::TlsPolicy*> by_type;
  for (const auto& p : r.policies) by_type[p.policy_type] = &p;
  ASSERT_TRUE(by_type.count("sts") && by_type.count("tlsa") && by_type.count("no-policy-found"));

  const auto& sts = *by_type["sts"];
  EXPECT_EQ(sts.policy_domain, "a.example");
  EXPECT_EQ(sts.policy_string.size(), 4u);
  EXPECT_EQ(sts.mx_host, std::vector<std::string>{"mx.a.example"});
  EXPECT_EQ(sts.total_successful_session_count, 90u);  // the unreported parts only
  EXPECT_EQ(sts.total_failure_session_count, 4u);
  ASSERT_EQ(sts.failure_details.size(), 2u);
  EXPECT_EQ(sts.failure_details[0].result_type, "certificate-expired");
  EXPECT_EQ(sts.failure_details[0].failed_session_count, 3u);
  EXPECT_EQ(sts.failure_details[0].sending_mta_ip, "192.0.2.25");
  EXPECT_EQ(sts.failure_details[0].receiving_mx_hostname, "mx.a.example");
  EXPECT_EQ(sts.failure_details[0].receiving_ip, "198.51.100.7");
  EXPECT_EQ(sts.failure_details[0].failure_reason_code, "X509_V_ERR");
  EXPECT_EQ(sts.failure_details[1].result_type, "validation-failure");

  const auto& tlsa = *by_type["tlsa"];
  EXPECT_EQ(tlsa.policy_string, std::vector<std::string>{"3 1 1 0123456789ABCDEF"});
  EXPECT_EQ(tlsa.total_successful_session_count, 5u);
  EXPECT_TRUE(tlsa.failure_details.empty());

  const auto& none = *by_type["no-policy-found"];
  EXPECT_EQ(none.policy_domain, "a.example");  // filled in: RFC 8460 §4.4 requires it
  EXPECT_EQ(none.total_failure_session_count, 2u);
  ASSERT_EQ(none.failure_details.size(), 1u);
  EXPECT_EQ(none.failure_details[0].result_type, "starttls-not-supported");
}

TEST_F(TlsSourceTest, DeliveriesAreTheRuaUrisInOrder) {
  auto source = make_tls_source(test_config(), log);
  auto reports = build_all(*source, store, interval);
  ASSERT_EQ(reports.size(), 3u);
  const auto& d = reports[0].deliveries;
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].recipient, "tlsrpt@a.example");
  EXPECT_EQ(d[1].recipient, "https://r.a.example/tls");
  for (const auto& e : d) EXPECT_EQ(e.reported_domain, "a.example");
  auto p0 = store::aggregate_payload_from_json(d[0].payload);
  ASSERT_TRUE(p0) << p0.error().describe();
  EXPECT_EQ(p0->report, 0);
  EXPECT_EQ(p0->uri, "mailto:tlsrpt@a.example");
  EXPECT_EQ(p0->max_size, 0u);
  auto p1 = store::aggregate_payload_from_json(d[1].payload);
  ASSERT_TRUE(p1);
  EXPECT_EQ(p1->uri, "https://r.a.example/tls");
  // %-decoded address, the URI as published.
  ASSERT_EQ(reports[2].deliveries.size(), 1u);
  EXPECT_EQ(reports[2].deliveries[0].recipient, "tls!reports@b.example");
  EXPECT_EQ(store::aggregate_payload_from_json(reports[2].deliveries[0].payload)->uri,
            "mailto:tls%21reports@b.example");
}

TEST_F(TlsSourceTest, ReportedCountsCoverEveryPolicyAndDetailRow) {
  auto source = make_tls_source(test_config(), log);
  auto reports = build_all(*source, store, interval);
  ASSERT_EQ(reports.size(), 3u);
  using T = store::ReportedCount::Table;
  const auto& a = reports[0];
  EXPECT_EQ(a.reported.size(), 3u + 3u);  // 3 policy rows, 3 failure detail rows
  const auto* sts = reported_for(a, T::TlsPolicy, 1);
  ASSERT_NE(sts, nullptr);
  EXPECT_EQ(sts->count, 100u);  // 10 reported + 90 read
  EXPECT_EQ(sts->count2, 5u);   // 1 + 4
  EXPECT_EQ(sts->was, 10u);
  EXPECT_EQ(sts->was2, 1u);
  const auto* expired = reported_for(a, T::TlsFailure, 11);
  ASSERT_NE(expired, nullptr);
  EXPECT_EQ(expired->count, 4u);  // 1 + 3
  EXPECT_EQ(expired->was, 1u);
  ASSERT_NE(reported_for(a, T::TlsPolicy, 2), nullptr);
  ASSERT_NE(reported_for(a, T::TlsPolicy, 3), nullptr);
  ASSERT_NE(reported_for(a, T::TlsFailure, 12), nullptr);
  ASSERT_NE(reported_for(a, T::TlsFailure, 13), nullptr);
  EXPECT_NE(reported_for(reports[1], T::TlsPolicy, 4), nullptr);
}

TEST_F(TlsSourceTest, LateRowsOfAnEarlierDayMergeIntoOnePolicy) {
  auto source = make_tls_source(test_config(), log);
  auto reports = build_all(*source, store, interval);
  ASSERT_EQ(reports.size(), 3u);
  const auto& b = reports[2];
  EXPECT_EQ(b.report.date_begin, kDay - 86400);  // starts at the late row's day
  EXPECT_EQ(b.report.date_end, kDay + 86400);
  EXPECT_EQ(b.report.records, 1u);
  auto parsed = report::parse_tlsrpt_json(gunzip(b.report.content));
  ASSERT_TRUE(parsed);
  ASSERT_EQ(parsed->policies.size(), 1u);
  const auto& p = parsed->policies[0];
  EXPECT_EQ(p.total_successful_session_count, 5u);
  EXPECT_EQ(p.total_failure_session_count, 2u);
  ASSERT_EQ(p.failure_details.size(), 1u);
  EXPECT_EQ(p.failure_details[0].result_type, "sts-webpki-invalid");
  EXPECT_EQ(p.failure_details[0].failed_session_count, 2u);
  using T = store::ReportedCount::Table;
  EXPECT_NE(reported_for(b, T::TlsPolicy, 5), nullptr);
  EXPECT_NE(reported_for(b, T::TlsPolicy, 6), nullptr);
  EXPECT_NE(reported_for(b, T::TlsFailure, 14), nullptr);
  EXPECT_NE(reported_for(b, T::TlsFailure, 15), nullptr);
}

TEST_F(TlsSourceTest, ContactInfoAndSubmitterFromContactInfo) {
  auto cfg = test_config("tls-contact@Contact.Example");
  EXPECT_EQ(tls_report_submitter(*cfg), "contact.example");
  auto source = make_tls_source(cfg, log);
  auto reports = build_all(*source, store, interval);
  ASSERT_FALSE(reports.empty());
  auto parsed = report::parse_tlsrpt_json(gunzip(reports[0].report.content));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->contact_info, "tls-contact@Contact.Example");
  EXPECT_EQ(reports[0].report.filename.rfind("contact.example!a.example!", 0), 0u);
  // Not an address: report.submitter.
  EXPECT_EQ(tls_report_submitter(*test_config("https://ours.example/tls")), "mx.ours.example");
}

TEST_F(TlsSourceTest, DomainFilterAndIntervalEnd) {
  auto source = make_tls_source(test_config(), log);
  BuildInterval only_b = interval;
  only_b.domain = "B.Example";  // send-reports --domain as typed
  auto reports = build_all(*source, store, only_b);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].report.policy_domain, "b.example");
  // The day before: only the late b.example row is in it.
  BuildInterval yesterday{kDay - 86400, kDay, "", kDay + 600};
  reports = build_all(*source, store, yesterday);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].report.date_begin, kDay - 86400);
  EXPECT_EQ(reports[0].report.date_end, kDay);
  auto earliest = source->earliest_unreported(store, "");
  ASSERT_TRUE(earliest);
  EXPECT_EQ(*earliest, std::optional<std::int64_t>(kDay - 86400));
  earliest = source->earliest_unreported(store, "a.example");
  ASSERT_TRUE(earliest);
  EXPECT_EQ(*earliest, std::optional<std::int64_t>(kDay));
}

TEST_F(TlsSourceTest, UnusableRecordGivesAReportWithoutDestinations) {
  store.tls_rows = {
      policy_row(1, kDay, "c.example", "v=TLSRPTv1; rua=ftp://x.example/", "sts", 3, 0)};
  auto source = make_tls_source(test_config(), log);
  auto reports = build_all(*source, store, interval);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_TRUE(reports[0].deliveries.empty());  // the builder keeps nothing, marks counts
  ASSERT_EQ(reports[0].reported.size(), 1u);
  EXPECT_EQ(reports[0].reported[0].count, 3u);
}

TEST_F(TlsSourceTest, MaxSizeLimitsMailOnly) {
  auto cfg = std::make_shared<config::Config>(*test_config());
  cfg->report.tls_aggregate.max_size = 10;  // every report is larger
  auto source = make_tls_source(cfg, log);
  auto reports = build_all(*source, store, interval);
  ASSERT_EQ(reports.size(), 3u);
  ASSERT_EQ(reports[0].deliveries.size(), 1u);
  EXPECT_EQ(reports[0].deliveries[0].recipient, "https://r.a.example/tls");
  EXPECT_TRUE(reports[2].deliveries.empty());
}

TEST_F(TlsSourceTest, SinkErrorStopsTheBuild) {
  auto source = make_tls_source(test_config(), log);
  int calls = 0;
  auto st = source->build(store, interval, [&](BuiltReport&&) -> Status {
    ++calls;
    return make_error(ErrorCode::Store, "disk full");
  });
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message, "disk full");
  EXPECT_EQ(calls, 1);
}

// ---------------------------------------------------------------- datagrams to report

TEST(TlsSourceSqlite, DatagramsThroughTheStoreIntoAReport) {
  auto opened = store::open_sqlite_store({.path = ":memory:"});
  ASSERT_TRUE(opened) << opened.error().describe();
  auto& store = **opened;
  NullLogger log;
  const std::string record = "v=TLSRPTv1; rua=mailto:tlsrpt@example.net";
  ingest::TlsrptBatcher batcher(store, log, 100);
  for (int i = 0; i < 4; ++i) batcher.add(test::sts_success("example.net", record), kDay + 60);
  batcher.add(test::no_policy_success("example.net", record), kDay + 70);
  for (int i = 0; i < 2; ++i) {
    batcher.add(test::dane_failure("example.net", record, 204, "expired"), kDay + 80);
  }
  batcher.add(test::dane_failure("example.net", record, 306, "no usable TLSA"), kDay + 90);
  batcher.flush();
  if (batcher.stats().store_errors > 0) {
    GTEST_SKIP() << "the SQLite store does not count TLS results yet";
  }
  auto source = make_tls_source(test_config(), log);
  std::vector<BuiltReport> reports;
  auto st =
      source->build(store, {kDay, kDay + 86400, "", kDay + 90000}, [&](BuiltReport&& r) -> Status {
        reports.push_back(std::move(r));
        return {};
      });
  if (!st && st.error().code == ErrorCode::Unsupported) {
    GTEST_SKIP() << "the SQLite store does not read TLS counts yet";
  }
  ASSERT_TRUE(st) << st.error().describe();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].report.messages, 8u);
  auto parsed = report::parse_tlsrpt_json(gunzip(reports[0].report.content));
  ASSERT_TRUE(parsed) << parsed.error().describe();
  std::map<std::string, const report::TlsPolicy*> by_type;
  for (const auto& p : parsed->policies) by_type[p.policy_type] = &p;
  ASSERT_EQ(by_type.size(), 3u);
  EXPECT_EQ(by_type["sts"]->total_successful_session_count, 4u);
  EXPECT_EQ(by_type["no-policy-found"]->total_successful_session_count, 1u);
  EXPECT_EQ(by_type["no-policy-found"]->policy_domain, "example.net");
  const auto& tlsa = *by_type["tlsa"];
  EXPECT_EQ(tlsa.total_failure_session_count, 3u);
  std::map<std::string, std::uint64_t> details;
  for (const auto& d : tlsa.failure_details) details[d.result_type] = d.failed_session_count;
  EXPECT_EQ(details["certificate-expired"], 2u);
  EXPECT_EQ(details["dane-required"], 1u);
  ASSERT_EQ(reports[0].deliveries.size(), 1u);
  EXPECT_EQ(reports[0].deliveries[0].recipient, "tlsrpt@example.net");

  // Committed as the builder would, nothing is left to report.
  store::AggregateBatch batch;
  batch.kind = std::string(store::kTlsAggregateKind);
  batch.reports.push_back({reports[0].report, reports[0].deliveries});
  batch.reported = reports[0].reported;
  auto committed = store.commit_aggregate_batch(batch);
  ASSERT_TRUE(committed) << committed.error().describe();
  int rows = 0;
  ASSERT_TRUE(store.for_each_unreported_tls(kDay + 86400, "", [&](const auto&) {
    ++rows;
    return true;
  }));
  EXPECT_EQ(rows, 0);
}

}  // namespace
}  // namespace mailreport::outbound

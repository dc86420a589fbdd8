// Golden reports: what we send, byte for byte, for fixed input. The milter's evaluations (or
// the collector's datagrams) of one day go into a store, the builder runs as mailreport serve
// runs it (dry run: the reports are captured, nothing is committed), and the gunzipped report
// must equal the committed file under tests/data/outgoing/ — the DMARC report in both XML
// formats and the TLS report's JSON. The random report id and the version in the generator are
// replaced by placeholders first. After a deliberate change, regenerate and review the diff:
//   MAILREPORT_BLESS=1 build/release/tests/test-outbound --gtest_filter='AggregateGolden*'
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../../../common/src/report/gzip.hpp"
#include "mailreport/ingest/tlsrpt_collector.hpp"
#include "mailreport/outbound/aggregate_builder.hpp"
#include "mailreport/outbound/dmarc_aggregate.hpp"
#include "mailreport/outbound/tls_aggregate.hpp"
#include "mailreport/store/sqlite_store.hpp"
#include "sample_evaluation.hpp"
#include "testsupport.hpp"
#include "tlsrpt_datagram_builder.hpp"

namespace mailreport::outbound {
namespace {

constexpr std::int64_t kDay = 1699920000;  // 2023-11-14 00:00:00 UTC
constexpr std::int64_t kNow = kDay + 86400 + kGrace.count();

std::filesystem::path golden(const std::string& name) {
  return test::source_dir() / "tests/data/outgoing" / name;
}

std::string gunzip(const std::string& gz) {
  MemorySource compressed(gz);
  report::detail::GzipSource src(compressed);
  std::string out;
  char buf[4096];
  for (;;) {
    auto n = src.read(buf);
    EXPECT_TRUE(n) << n.error().describe();
    if (!n || *n == 0) break;
    out.append(buf, *n);
  }
  return out;
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return;
  for (auto at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
}

// Text golden comparison (XML); rewritten when blessing.
void expect_golden_text(const std::string& got, const std::filesystem::path& expected) {
  if (test::blessing()) {
    std::ofstream(expected, std::ios::binary) << got;
    return;
  }
  ASSERT_TRUE(std::filesystem::exists(expected))
      << expected << " is missing; run with MAILREPORT_BLESS=1 to write it";
  EXPECT_EQ(got, test::read_file(expected)) << "differs from " << expected;
}

std::shared_ptr<config::Config> make_config(config::DmarcAggregateFormat format) {
  auto c = std::make_shared<config::Config>(*config::Config::defaults());
  c->report.domain = "ours.example";
  c->report.submitter = "mx.ours.example";
  auto& d = c->report.dmarc_aggregate;
  d.org_name = "Ours Org";
  d.from_address = "noreply-dmarc@ours.example";
  d.contact_info = "https://ours.example/dmarc";
  d.format = format;
  auto& t = c->report.tls_aggregate;
  t.org_name = "Ours Org";
  t.from_address = "noreply-tls@ours.example";
  t.contact_info = "tls-reports@ours.example";
  return c;
}

std::string last_two_labels(std::string_view d) {
  auto last = d.rfind('.');
  if (last == std::string_view::npos || last == 0) return std::string(d);
  auto prev = d.rfind('.', last - 1);
  return std::string(prev == std::string_view::npos ? d : d.substr(prev + 1));
}

// The reports one dry run of `source` builds over `store`, in order.
std::vector<BuiltReport> dry_run(store::Store& store, std::unique_ptr<AggregateSource> source) {
  NullLogger log;
  AggregateBuilder builder(store, std::move(source), log);
  std::vector<BuiltReport> seen;
  BuildOptions o;
  o.now = kNow;
  o.dry_run = [&](const BuiltReport& r) -> Status {
    seen.push_back(r);
    return {};
  };
  auto st = builder.run(o);
  EXPECT_TRUE(st) << st.error().describe();
  return seen;
}

std::unique_ptr<store::Store> open_store(const test::TempDir& dir) {
  store::SqliteOptions o;
  o.path = dir / "s.db";
  o.synchronous_full = false;
  auto s = store::open_sqlite_store(o);
  EXPECT_TRUE(s) << s.error().describe();
  return s ? std::move(*s) : nullptr;
}

// A day of evaluations for example.com: passes from two sources (one merged over two hours), a
// DKIM failure rejected by policy, a forwarded message with two signatures.
std::vector<auth::Evaluation> day_of_evaluations() {
  using test::sample_evaluation;
  std::vector<auth::Evaluation> evs = {sample_evaluation(kDay + 3600, "192.0.2.1"),
                                       sample_evaluation(kDay + 7 * 3600, "192.0.2.1"),
                                       sample_evaluation(kDay + 8 * 3600, "2001:db8::25")};
  auto failing = sample_evaluation(kDay + 9 * 3600, "198.51.100.7");
  failing.dkim[0].result = auth::DkimResult::Fail;
  failing.dkim[0].reason = "signature did not verify";
  failing.spf[0].result = auth::SpfResult::SoftFail;
  failing.dmarc.result = auth::DmarcResult::Fail;
  failing.dmarc.dkim_aligned = false;
  failing.dmarc.spf_aligned = false;
  failing.dmarc.disposition = auth::Disposition::Reject;
  evs.push_back(failing);
  auto forwarded = sample_evaluation(kDay + 10 * 3600, "203.0.113.40");
  forwarded.dkim.push_back(forwarded.dkim[0]);
  forwarded.dkim[1].domain = "list.example.org";
  forwarded.dkim[1].identity = "@list.example.org";
  forwarded.dkim[1].selector = "k2";
  forwarded.spf[0].result = auth::SpfResult::Fail;
  forwarded.spf[0].domain = "list.example.org";
  forwarded.dmarc.spf_aligned = false;
  evs.push_back(forwarded);
  return evs;
}

class AggregateGolden : public ::testing::TestWithParam<config::DmarcAggregateFormat> {};

TEST_P(AggregateGolden, DmarcReportIsTheCommittedOne) {
  test::TempDir dir;
  auto store = open_store(dir);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->record_evaluations(day_of_evaluations()));
  NullLogger log;
  auto cfg = make_config(GetParam());
  auto reports = dry_run(*store, make_dmarc_source(cfg, last_two_labels, log));
  ASSERT_EQ(reports.size(), 1u);
  const auto& r = reports[0].report;
  std::string xml = gunzip(r.content);
  replace_all(xml, r.report_id, "REPORT-ID");
  // The generator names our version (RFC 9990 only).
  if (auto a = xml.find("<generator>"), b = xml.find("</generator>");
      a != std::string::npos && b != std::string::npos) {
    xml.replace(a + 11, b - a - 11, "mailreport/VERSION");
  }
  const bool v9990 = GetParam() == config::DmarcAggregateFormat::Rfc9990;
  expect_golden_text(xml, golden(v9990 ? "dmarc-rfc9990.xml" : "dmarc-rfc7489.xml"));
  std::string filename = r.filename;
  replace_all(filename, r.report_id, "REPORT-ID");
  EXPECT_EQ(filename, "mx.ours.example!example.com!1699920000!1700006399!REPORT-ID.xml.gz");
  ASSERT_EQ(reports[0].deliveries.size(), 1u);
  EXPECT_EQ(reports[0].deliveries[0].recipient, "dmarc@example.com");
}

INSTANTIATE_TEST_SUITE_P(Formats, AggregateGolden,
                         ::testing::Values(config::DmarcAggregateFormat::Rfc9990,
                                           config::DmarcAggregateFormat::Rfc7489),
                         [](const auto& p) { return std::string(config::to_string(p.param)); });

TEST(AggregateGoldenTls, TlsReportIsTheCommittedOne) {
  test::TempDir dir;
  auto store = open_store(dir);
  ASSERT_TRUE(store);
  NullLogger log;
  const std::string record = "v=TLSRPTv1; rua=mailto:tlsrpt@example.net,https://r.example.net/t";
  ingest::TlsrptBatcher batcher(*store, log, 100);
  for (int i = 0; i < 5; ++i) batcher.add(test::sts_success("example.net", record), kDay + 60 * i);
  batcher.add(test::dane_failure("example.net", record, 204, "TLSA mismatch"), kDay + 3600);
  batcher.add(test::dane_failure("example.net", record, 204, "TLSA mismatch"), kDay + 7200);
  batcher.add(test::starttls_missing("example.net", record), kDay + 9000);
  batcher.flush();
  ASSERT_EQ(batcher.stats().recorded, 8u);

  auto reports = dry_run(*store, make_tls_source(make_config({}), log));
  ASSERT_EQ(reports.size(), 1u);
  const auto& r = reports[0].report;
  std::string json_text = gunzip(r.content);
  replace_all(json_text, r.report_id, "REPORT-ID");
  auto parsed = nlohmann::json::parse(json_text, nullptr, false);
  ASSERT_FALSE(parsed.is_discarded()) << json_text;
  test::expect_golden(parsed, golden("tls.json"));
  ASSERT_EQ(reports[0].deliveries.size(), 2u);
  EXPECT_EQ(reports[0].deliveries[0].recipient, "tlsrpt@example.net");
  EXPECT_EQ(reports[0].deliveries[1].recipient, "https://r.example.net/t");
}

}  // namespace
}  // namespace mailreport::outbound

// The DMARC aggregate writer: what it writes parses back with our own parser to the same
// report (both formats), validates against the schemas in ../shared/schemas, streams, and
// stops on an output error.
#include "mailreport/report/dmarc_xml_writer.hpp"

#include <gtest/gtest.h>
#include <libxml/parser.h>

#include <memory>
#include <string>
#include <vector>

#include "mailreport/report/dmarc_xml.hpp"
#include "mailreport/report/sink.hpp"
#include "mailreport/util/bytes.hpp"
#include "testsupport.hpp"
#include "xml_schema.hpp"

namespace mailreport::report {
namespace {

DmarcAggregate sample() {
  DmarcAggregate a;
  auto& md = a.header.report_metadata;
  md.org_name = "mx.example";
  md.email = "noreply-dmarc@mx.example";
  md.extra_contact_info = "https://mx.example/dmarc";
  md.report_id = "1763683200.example.com.ab12";
  md.date_range = {1763683200, 1763769599};
  auto& pp = a.header.policy_published;
  pp.domain = "example.com";
  pp.adkim = "r";
  pp.aspf = "s";
  pp.p = "quarantine";
  pp.sp = "reject";
  pp.np = "reject";
  pp.discovery_method = "treewalk";
  pp.fo = "1";
  pp.testing = "n";

  DmarcRecord r1;
  r1.row.source_ip = "192.0.2.10";
  r1.row.count = 42;
  r1.row.policy_evaluated = {"none", "pass", "fail", {}};
  r1.identifiers = {"ours.example", "bounce.example.com", "example.com"};
  r1.auth_results.dkim = {{"example.com", "s1", "pass", ""},
                          {"other.example", "s2", "fail", "body hash <mismatch> & more"}};
  r1.auth_results.spf = {{"bounce.example.com", "mfrom", "softfail", ""},
                         {"mail.example.com", "helo", "pass", ""}};
  DmarcRecord r2;
  r2.row.source_ip = "2001:db8::25";
  r2.row.count = 3;
  r2.row.policy_evaluated = {"quarantine",
                             "fail",
                             "fail",
                             {{"policy_test_mode", ""}, {"local_policy", "observe\x01only"}}};
  r2.identifiers = {"", "", "example.com"};
  r2.auth_results.spf = {{"example.com", "helo", "none", ""}};
  a.records = {r1, r2};
  return a;
}

DmarcAggregate parse(const std::string& xml) {
  MemorySource src(xml);
  CollectingSink sink;
  auto st = parse_dmarc_xml(src, sink);
  EXPECT_TRUE(st) << st.error().describe();
  EXPECT_EQ(sink.reports().size(), 1u);
  if (sink.reports().empty()) return {};
  return std::get<DmarcAggregate>(sink.reports().front());
}

using test::schema_errors;

TEST(DmarcXmlWriter, Rfc9990RoundTripsThroughOurParser) {
  auto xml = write_dmarc_xml(sample(), DmarcXmlFormat::Rfc9990);
  ASSERT_TRUE(xml) << xml.error().describe();
  EXPECT_NE(xml->find("<feedback xmlns=\"urn:ietf:params:xml:ns:dmarc-2.0\">"), std::string::npos);
  DmarcAggregate got = parse(*xml);
  EXPECT_TRUE(got.errors.empty()) << got.errors.front();
  EXPECT_EQ(got.header.xml_namespace, "urn:ietf:params:xml:ns:dmarc-2.0");
  EXPECT_EQ(got.header.version, "1.0");
  const auto& md = got.header.report_metadata;
  EXPECT_EQ(md.org_name, "mx.example");
  EXPECT_EQ(md.email, "noreply-dmarc@mx.example");
  EXPECT_EQ(md.extra_contact_info, "https://mx.example/dmarc");
  EXPECT_EQ(md.report_id, "1763683200.example.com.ab12");
  EXPECT_EQ(md.date_range.begin, 1763683200);
  EXPECT_EQ(md.date_range.end, 1763769599);
  EXPECT_EQ(md.generator, "mailreport");
  const auto& pp = got.header.policy_published;
  EXPECT_EQ(pp.domain, "example.com");
  EXPECT_EQ(pp.adkim, "r");
  EXPECT_EQ(pp.aspf, "s");
  EXPECT_EQ(pp.p, "quarantine");
  EXPECT_EQ(pp.sp, "reject");
  EXPECT_EQ(pp.np, "reject");
  EXPECT_EQ(pp.discovery_method, "treewalk");
  EXPECT_EQ(pp.fo, "1");
  EXPECT_EQ(pp.testing, "n");
  EXPECT_FALSE(pp.pct.has_value());

  ASSERT_EQ(got.records.size(), 2u);
  const auto& r1 = got.records[0];
  EXPECT_EQ(r1.row.source_ip, "192.0.2.10");
  EXPECT_EQ(r1.row.count, 42u);
  EXPECT_EQ(r1.row.policy_evaluated.disposition, "none");
  EXPECT_EQ(r1.row.policy_evaluated.dkim, "pass");
  EXPECT_EQ(r1.row.policy_evaluated.spf, "fail");
  EXPECT_EQ(r1.identifiers.envelope_to, "ours.example");
  EXPECT_EQ(r1.identifiers.envelope_from, "bounce.example.com");
  EXPECT_EQ(r1.identifiers.header_from, "example.com");
  ASSERT_EQ(r1.auth_results.dkim.size(), 2u);
  EXPECT_EQ(r1.auth_results.dkim[1].domain, "other.example");
  EXPECT_EQ(r1.auth_results.dkim[1].selector, "s2");
  EXPECT_EQ(r1.auth_results.dkim[1].result, "fail");
  EXPECT_EQ(r1.auth_results.dkim[1].human_result, "body hash <mismatch> & more");
  // RFC 9990: the MAIL FROM result only.
  ASSERT_EQ(r1.auth_results.spf.size(), 1u);
  EXPECT_EQ(r1.auth_results.spf[0].domain, "bounce.example.com");
  EXPECT_EQ(r1.auth_results.spf[0].scope, "mfrom");
  EXPECT_EQ(r1.auth_results.spf[0].result, "softfail");

  const auto& r2 = got.records[1];
  EXPECT_EQ(r2.row.source_ip, "2001:db8::25");
  ASSERT_EQ(r2.row.policy_evaluated.reason.size(), 2u);
  EXPECT_EQ(r2.row.policy_evaluated.reason[0].type, "policy_test_mode");
  EXPECT_EQ(r2.row.policy_evaluated.reason[1].type, "local_policy");
  EXPECT_EQ(r2.row.policy_evaluated.reason[1].comment, "observe only");  // C0 control gone
  EXPECT_TRUE(r2.identifiers.envelope_from.empty());
  EXPECT_TRUE(r2.auth_results.spf.empty());  // only a HELO result: not in RFC 9990
}

TEST(DmarcXmlWriter, Rfc7489RoundTripsThroughOurParser) {
  DmarcAggregate in = sample();
  in.header.policy_published.sp.clear();
  in.header.policy_published.fo.clear();
  auto xml = write_dmarc_xml(in, DmarcXmlFormat::Rfc7489);
  ASSERT_TRUE(xml) << xml.error().describe();
  EXPECT_NE(xml->find("<feedback>"), std::string::npos);
  DmarcAggregate got = parse(*xml);
  EXPECT_TRUE(got.header.xml_namespace.empty());
  const auto& pp = got.header.policy_published;
  EXPECT_EQ(pp.sp, "quarantine");  // RFC 7489 §6.3: sp defaults to p
  EXPECT_EQ(pp.pct, 100);
  EXPECT_EQ(pp.fo, "0");
  EXPECT_TRUE(pp.np.empty());
  EXPECT_TRUE(pp.discovery_method.empty());
  EXPECT_TRUE(got.header.report_metadata.generator.empty());
  ASSERT_EQ(got.records.size(), 2u);
  ASSERT_EQ(got.records[0].auth_results.spf.size(), 2u);
  EXPECT_EQ(got.records[0].auth_results.spf[1].scope, "helo");
  const auto& r2 = got.records[1];
  EXPECT_EQ(r2.row.source_ip, "2001:db8:0:0:0:0:0:25");
  EXPECT_EQ(r2.row.policy_evaluated.reason[0].type, "other");
  EXPECT_EQ(r2.row.policy_evaluated.reason[0].comment, "policy_test_mode");
  ASSERT_EQ(r2.auth_results.spf.size(), 1u);
  EXPECT_EQ(r2.auth_results.spf[0].scope, "helo");
}

TEST(DmarcXmlWriter, OutputValidatesAgainstBothSchemas) {
  MAILREPORT_REQUIRE_CORPUS();
  auto v9990 = write_dmarc_xml(sample(), DmarcXmlFormat::Rfc9990);
  ASSERT_TRUE(v9990);
  EXPECT_EQ(schema_errors(*v9990, "dmarc-2.0-rfc9990.xsd"), "") << *v9990;
  auto v7489 = write_dmarc_xml(sample(), DmarcXmlFormat::Rfc7489);
  ASSERT_TRUE(v7489);
  EXPECT_EQ(schema_errors(*v7489, "dmarc-rfc7489.xsd", "http://dmarc.org/dmarc-xml/0.1"), "")
      << *v7489;
  // The check does reject what the schema forbids.
  std::string bad = *v9990;
  bad.replace(bad.find("<p>quarantine</p>"), 17, "<p>maybe</p>");
  EXPECT_NE(schema_errors(bad, "dmarc-2.0-rfc9990.xsd"), "");
}

TEST(DmarcXmlWriter, StreamsRecordsBeforeTheEnd) {
  std::size_t bytes = 0;
  DmarcXmlWriter w(DmarcXmlFormat::Rfc9990, [&](std::string_view piece) -> Status {
    bytes += piece.size();
    return {};
  });
  DmarcAggregate a = sample();
  ASSERT_TRUE(w.begin(a.header));
  for (int i = 0; i < 20000; ++i) ASSERT_TRUE(w.record(a.records[0]));
  EXPECT_GT(bytes, 1000000u);  // written as it goes, not held until finish()
  ASSERT_TRUE(w.finish());
}

TEST(DmarcXmlWriter, StopsOnAnOutputError) {
  int calls = 0;
  DmarcXmlWriter w(DmarcXmlFormat::Rfc9990, [&](std::string_view) -> Status {
    ++calls;
    return make_error(ErrorCode::Io, "disk full");
  });
  DmarcAggregate a = sample();
  Status st = w.begin(a.header);
  for (int i = 0; st && i < 20000; ++i) st = w.record(a.records[0]);
  if (st) st = w.finish();
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message, "disk full");
  EXPECT_EQ(calls, 1);
}

TEST(DmarcXmlWriter, FormatNames) {
  EXPECT_EQ(dmarc_xml_format_from("rfc9990"), DmarcXmlFormat::Rfc9990);
  EXPECT_EQ(dmarc_xml_format_from("rfc7489"), DmarcXmlFormat::Rfc7489);
  EXPECT_FALSE(dmarc_xml_format_from("rfc1234"));
  EXPECT_STREQ(to_string(DmarcXmlFormat::Rfc7489), "rfc7489");
}

}  // namespace
}  // namespace mailreport::report

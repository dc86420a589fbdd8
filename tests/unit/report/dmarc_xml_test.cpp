// Tests of the DMARC aggregate report parser (report/dmarc_xml.hpp) and its JSON rendering:
// hand-written inputs for each real-world quirk, namespaces, XML attacks, streaming and sink
// errors, and every dmarc-agg-xml file of the shared corpus.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <optional>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "mailreport/report/dmarc_xml.hpp"
#include "mailreport/report/json.hpp"
#include "testsupport.hpp"

namespace mailreport::report {
namespace {

struct Parsed {
  Status status;
  DmarcAggregate report;
  bool delivered = false;  // dmarc_begin .. dmarc_end happened
};

Parsed parse_string(std::string_view xml) {
  MemorySource src(xml);
  CollectingSink sink;
  Parsed out;
  out.status = parse_dmarc_xml(src, sink);
  if (!sink.reports().empty()) {
    out.delivered = true;
    out.report = std::get<DmarcAggregate>(sink.reports().front());
  }
  return out;
}

Parsed parse_corpus(const std::string& relative) {
  return parse_string(test::read_file(test::corpus_dir() / relative));
}

std::uint64_t message_count(const DmarcAggregate& r) {
  std::uint64_t n = 0;
  for (const auto& rec : r.records) n += rec.row.count;
  return n;
}

bool any_error_contains(const DmarcAggregate& r, std::string_view needle) {
  for (const auto& e : r.errors) {
    if (e.find(needle) != std::string::npos) return true;
  }
  return false;
}

std::string all_errors(const DmarcAggregate& r) {
  std::string s;
  for (const auto& e : r.errors) s += e + "\n";
  return s;
}

// A minimal, complete report; `policy`, `records` and `extra` are spliced in.
std::string report_xml(std::string_view records, std::string_view root_attrs = "",
                       std::string_view policy = "<domain>example.com</domain><p>none</p>") {
  std::string s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback";
  s += root_attrs;
  s += ">\n<report_metadata><org_name>Reporter</org_name><email>r@example.net</email>"
       "<report_id>id-1</report_id><date_range><begin>1000</begin><end>2000</end></date_range>"
       "</report_metadata>\n<policy_published>";
  s += policy;
  s += "</policy_published>\n";
  s += records;
  s += "</feedback>\n";
  return s;
}

std::string record_xml(std::string_view ip, int count) {
  return "<record><row><source_ip>" + std::string(ip) + "</source_ip><count>" +
         std::to_string(count) +
         "</count><policy_evaluated><disposition>none</disposition><dkim>pass</dkim>"
         "<spf>fail</spf></policy_evaluated></row><identifiers><header_from>example.com"
         "</header_from></identifiers><auth_results><spf><domain>example.com</domain>"
         "<result>fail</result></spf></auth_results></record>\n";
}

// ------------------------------------------------------------------ baseline and namespaces

TEST(DmarcXml, ParsesEveryFieldOfAnRfc7489Report) {
  const std::string xml = R"(<?xml version="1.0" encoding="UTF-8"?>
<feedback xmlns="http://dmarc.org/dmarc-xml/0.1">
  <version>1.0</version>
  <report_metadata>
    <org_name>Receiver Inc</org_name>
    <email>dmarc@receiver.example</email>
    <extra_contact_info>https://receiver.example/dmarc</extra_contact_info>
    <report_id>r-42</report_id>
    <date_range><begin>1700000000</begin><end>1700086399</end></date_range>
    <error>first problem</error>
    <error>second problem</error>
  </report_metadata>
  <policy_published>
    <domain>example.com</domain>
    <adkim>r</adkim>
    <aspf>s</aspf>
    <p>quarantine</p>
    <sp>reject</sp>
    <pct>50</pct>
    <fo>1:d</fo>
  </policy_published>
  <record>
    <row>
      <source_ip>192.0.2.1</source_ip>
      <count>12</count>
      <policy_evaluated>
        <disposition>quarantine</disposition>
        <dkim>fail</dkim>
        <spf>pass</spf>
        <reason><type>forwarded</type><comment>via list</comment></reason>
        <reason><type>local_policy</type></reason>
      </policy_evaluated>
    </row>
    <identifiers>
      <envelope_to>receiver.example</envelope_to>
      <envelope_from>bounce.example.com</envelope_from>
      <header_from>example.com</header_from>
    </identifiers>
    <auth_results>
      <dkim><domain>example.com</domain><selector>s1</selector><result>fail</result>
            <human_result>bad signature</human_result></dkim>
      <dkim><domain>other.example</domain><selector>s2</selector><result>pass</result></dkim>
      <spf><domain>bounce.example.com</domain><scope>mfrom</scope><result>pass</result></spf>
    </auth_results>
  </record>
</feedback>
)";
  auto p = parse_string(xml);
  ASSERT_TRUE(p.status.ok()) << p.status.error().describe();
  const DmarcAggregate& r = p.report;
  EXPECT_TRUE(r.errors.empty()) << all_errors(r);
  EXPECT_EQ(r.header.version, "1.0");
  EXPECT_EQ(r.header.xml_namespace, "http://dmarc.org/dmarc-xml/0.1");
  const auto& md = r.header.report_metadata;
  EXPECT_EQ(md.org_name, "Receiver Inc");
  EXPECT_EQ(md.email, "dmarc@receiver.example");
  EXPECT_EQ(md.extra_contact_info, "https://receiver.example/dmarc");
  EXPECT_EQ(md.report_id, "r-42");
  EXPECT_EQ(md.date_range.begin, 1700000000);
  EXPECT_EQ(md.date_range.end, 1700086399);
  EXPECT_EQ(md.error, (std::vector<std::string>{"first problem", "second problem"}));
  EXPECT_EQ(md.generator, "");
  const auto& pp = r.header.policy_published;
  EXPECT_EQ(pp.domain, "example.com");
  EXPECT_EQ(pp.adkim, "r");
  EXPECT_EQ(pp.aspf, "s");
  EXPECT_EQ(pp.p, "quarantine");
  EXPECT_EQ(pp.sp, "reject");
  EXPECT_EQ(pp.np, "");
  EXPECT_EQ(pp.pct, 50);
  EXPECT_EQ(pp.fo, "1:d");
  EXPECT_EQ(pp.testing, "");
  EXPECT_EQ(pp.discovery_method, "");
  ASSERT_EQ(r.records.size(), 1u);
  const DmarcRecord& rec = r.records[0];
  EXPECT_EQ(rec.row.source_ip, "192.0.2.1");
  EXPECT_EQ(rec.row.count, 12u);
  EXPECT_EQ(rec.row.policy_evaluated.disposition, "quarantine");
  EXPECT_EQ(rec.row.policy_evaluated.dkim, "fail");
  EXPECT_EQ(rec.row.policy_evaluated.spf, "pass");
  ASSERT_EQ(rec.row.policy_evaluated.reason.size(), 2u);
  EXPECT_EQ(rec.row.policy_evaluated.reason[0].type, "forwarded");
  EXPECT_EQ(rec.row.policy_evaluated.reason[0].comment, "via list");
  EXPECT_EQ(rec.row.policy_evaluated.reason[1].type, "local_policy");
  EXPECT_EQ(rec.row.policy_evaluated.reason[1].comment, "");
  EXPECT_EQ(rec.identifiers.envelope_to, "receiver.example");
  EXPECT_EQ(rec.identifiers.envelope_from, "bounce.example.com");
  EXPECT_EQ(rec.identifiers.header_from, "example.com");
  ASSERT_EQ(rec.auth_results.dkim.size(), 2u);
  EXPECT_EQ(rec.auth_results.dkim[0].domain, "example.com");
  EXPECT_EQ(rec.auth_results.dkim[0].selector, "s1");
  EXPECT_EQ(rec.auth_results.dkim[0].result, "fail");
  EXPECT_EQ(rec.auth_results.dkim[0].human_result, "bad signature");
  EXPECT_EQ(rec.auth_results.dkim[1].domain, "other.example");
  EXPECT_EQ(rec.auth_results.dkim[1].result, "pass");
  ASSERT_EQ(rec.auth_results.spf.size(), 1u);
  EXPECT_EQ(rec.auth_results.spf[0].domain, "bounce.example.com");
  EXPECT_EQ(rec.auth_results.spf[0].scope, "mfrom");
  EXPECT_EQ(rec.auth_results.spf[0].result, "pass");
}

TEST(DmarcXml, NoNamespaceLeavesXmlNamespaceEmpty) {
  auto p = parse_string(report_xml(record_xml("192.0.2.1", 3)));
  ASSERT_TRUE(p.status.ok()) << p.status.error().describe();
  EXPECT_EQ(p.report.header.xml_namespace, "");
  EXPECT_EQ(p.report.header.version, "");
  ASSERT_EQ(p.report.records.size(), 1u);
  EXPECT_EQ(p.report.records[0].row.count, 3u);
  EXPECT_TRUE(p.report.errors.empty()) << all_errors(p.report);
}

TEST(DmarcXml, Rfc9990NamespaceAndFields) {
  const std::string xml = R"(<feedback xmlns="urn:ietf:params:xml:ns:dmarc-2.0"
    xmlns:ext="https://ext.example/v1">
  <version>1.0</version>
  <report_metadata>
    <org_name>Sample</org_name><email>a@b.example</email><report_id>x</report_id>
    <date_range><begin>1</begin><end>2</end></date_range>
    <generator>Gen 1.2</generator>
  </report_metadata>
  <policy_published>
    <domain>example.com</domain><discovery_method>TreeWalk</discovery_method>
    <p>reject</p><sp>quarantine</sp><np>Reject</np><testing>Y</testing>
  </policy_published>
  <extension><ext:thing><ext:record>not a record</ext:record></ext:thing></extension>
  <record>
    <row><source_ip>2001:db8::1</source_ip><count>5</count>
      <policy_evaluated><disposition>PASS</disposition><dkim>pass</dkim><spf>fail</spf>
        <reason><type>Policy_Test_Mode</type></reason></policy_evaluated></row>
    <identifiers><header_from>example.com</header_from></identifiers>
    <auth_results>
      <dkim><domain>example.com</domain><selector>sel</selector><result>pass</result></dkim>
      <ext:dkim><domain>wrong.example</domain></ext:dkim>
    </auth_results>
    <ext:row>ignored</ext:row>
  </record>
</feedback>)";
  auto p = parse_string(xml);
  ASSERT_TRUE(p.status.ok()) << p.status.error().describe();
  const auto& h = p.report.header;
  EXPECT_EQ(h.xml_namespace, "urn:ietf:params:xml:ns:dmarc-2.0");
  EXPECT_EQ(h.version, "1.0");
  EXPECT_EQ(h.report_metadata.generator, "Gen 1.2");
  EXPECT_EQ(h.policy_published.discovery_method, "treewalk");
  EXPECT_EQ(h.policy_published.np, "reject");
  EXPECT_EQ(h.policy_published.testing, "y");
  EXPECT_FALSE(h.policy_published.pct.has_value());
  ASSERT_EQ(p.report.records.size(), 1u);
  const auto& rec = p.report.records[0];
  EXPECT_EQ(rec.row.source_ip, "2001:db8::1");
  EXPECT_EQ(rec.row.policy_evaluated.disposition, "pass");
  ASSERT_EQ(rec.row.policy_evaluated.reason.size(), 1u);
  EXPECT_EQ(rec.row.policy_evaluated.reason[0].type, "policy_test_mode");
  ASSERT_EQ(rec.auth_results.dkim.size(), 1u);  // the ext:dkim extension is not a DKIM result
  EXPECT_EQ(rec.auth_results.dkim[0].selector, "sel");
  EXPECT_TRUE(p.report.errors.empty()) << all_errors(p.report);
}

TEST(DmarcXml, PrefixedElementsInADmarcNamespace) {
  const std::string xml = R"(<d:feedback xmlns:d="urn:ietf:params:xml:ns:dmarc-2.0">
  <d:report_metadata><d:org_name>Pfx</d:org_name><d:report_id>1</d:report_id></d:report_metadata>
  <d:policy_published><d:domain>example.com</d:domain><d:p>none</d:p></d:policy_published>
  <d:record><d:row><d:source_ip>192.0.2.9</d:source_ip><d:count>2</d:count></d:row></d:record>
</d:feedback>)";
  auto p = parse_string(xml);
  ASSERT_TRUE(p.status.ok()) << p.status.error().describe();
  EXPECT_EQ(p.report.header.xml_namespace, "urn:ietf:params:xml:ns:dmarc-2.0");
  EXPECT_EQ(p.report.header.report_metadata.org_name, "Pfx");
  ASSERT_EQ(p.report.records.size(), 1u);
  EXPECT_EQ(p.report.records[0].row.count, 2u);
}

TEST(DmarcXml, UndeclaredPrefixesStillParse) {
  const std::string xml = R"(<ns1:feedback>
  <ns1:report_metadata><ns1:org_name>Stray</ns1:org_name></ns1:report_metadata>
  <policy_published><domain>example.com</domain></policy_published>
  <ns1:record><ns1:row><ns1:source_ip>192.0.2.7</ns1:source_ip><ns1:count>4</ns1:count></ns1:row>
  </ns1:record>
</ns1:feedback>)";
  auto p = parse_string(xml);
  ASSERT_TRUE(p.status.ok()) << p.status.error().describe();
  EXPECT_EQ(p.report.header.report_metadata.org_name, "Stray");
  EXPECT_EQ(p.report.header.policy_published.domain, "example.com");
  ASSERT_EQ(p.report.records.size(), 1u);
  EXPECT_EQ(p.report.records[0].row.count, 4u);
  EXPECT_TRUE(any_error_contains(p.report, "ns1")) << all_errors(p.report);
}

TEST(DmarcXml, UnknownElementsAreSkippedWithoutConfusingTheStructure) {
  const std::string records =
      "<record><row><source_ip>192.0.2.1</source_ip>"
      "<unknown-tag1><count>999</count><row><count>7</count></row></unknown-tag1>"
      "<count>1</count></row>"
      "<arc-results><record><row><count>5</count></row></record></arc-results>"
      "<identifiers><header_from>example.com</header_from></identifiers></record>\n" +
      record_xml("192.0.2.2", 2);
  auto p =
      parse_string(report_xml(records, "", "<domain>example.com</domain><unknown/><p>none</p>"));
  ASSERT_TRUE(p.status.ok()) << p.status.error().describe();
  ASSERT_EQ(p.report.records.size(), 2u);
  EXPECT_EQ(p.report.records[0].row.count, 1u);
  EXPECT_EQ(p.report.records[0].identifiers.header_from, "example.com");
  EXPECT_EQ(p.report.records[1].row.count, 2u);
  EXPECT_EQ(p.report.header.policy_published.p, "none");
  EXPECT_TRUE(p.report.errors.empty()) << all_errors(p.report);
}

TEST(DmarcXml, CorpusRfc9990FullReport) {
  MAILREPORT_REQUIRE_CORPUS();
  auto p = parse_corpus("dmarc-report-parser-avvertix/tests/fixtures/rfc9990-full.xml");
  ASSERT_TRUE(p.status.ok()) << p.status.error().describe();
  const auto& h = p.report.header;
  EXPECT_EQ(h.xml_namespace, "urn:ietf:params:xml:ns:dmarc-2.0");
  EXPECT_EQ(h.version, "1.0");
  EXPECT_EQ(h.report_metadata.generator, "Example DMARC Aggregate Reporter v1.2");
  EXPECT_EQ(h.report_metadata.error,
            (std::vector<std::string>{"Multiple DMARC Policy Records found"}));
  EXPECT_EQ(h.policy_published.discovery_method, "treewalk");
  EXPECT_EQ(h.policy_published.np, "reject");
  EXPECT_EQ(h.policy_published.testing, "y");
  EXPECT_EQ(h.policy_published.adkim, "s");
  EXPECT_FALSE(h.policy_published.pct.has_value());
  ASSERT_EQ(p.report.records.size(), 2u);
  EXPECT_EQ(p.report.records[0].row.policy_evaluated.reason.at(0).type, "policy_test_mode");
  EXPECT_EQ(p.report.records[0].auth_results.dkim.size(), 2u);
  EXPECT_EQ(p.report.records[1].auth_results.spf.at(0).scope, "mfrom");
  EXPECT_EQ(message_count(p.report), 8u);
  EXPECT_TRUE(p.report.errors.empty()) << all_errors(p.report);
}

TEST(DmarcXml, CorpusVersion2WithoutNamespaceAndUnknownTags) {
  MAILREPORT_REQUIRE_CORPUS();
  auto p = parse_corpus("mail-auth/resources/dmarc-feedback/001.xml");
  ASSERT_TRUE(p.status.ok()) << p.status.error().describe();
  EXPECT_EQ(p.report.header.version, "2.0");
  EXPECT_EQ(p.report.header.xml_namespace, "");
  EXPECT_EQ(p.report.header.report_metadata.date_range.begin, 161212415);
  EXPECT_EQ(p.report.header.report_metadata.date_range.end, 161221511);
  EXPECT_EQ(p.report.header.policy_published.testing, "n");
  ASSERT_EQ(p.report.records.size(), 1u);
  EXPECT_EQ(p.report.records[0].row.count, 123u);
  EXPECT_EQ(p.report.records[0].auth_results.dkim.at(0).selector, "abc123");
  EXPECT_TRUE(p.report.errors.empty()) << all_errors(p.report);
}

// ------------------------------------------------------------------ real-world quirks

TEST(DmarcXml, StrayUnclosedSchemaTagBeforeFeedback) {
  MAILREPORT_REQUIRE_CORPUS();
  auto p =
      parse_corpus("parsedmarc/samples/aggregate/ikea.com!example.de!1538690400!1538776800.xml");
  ASSERT_TRUE(p.status.ok()) << p.status.error().describe();
  const auto& h = p.report.header;
  EXPECT_EQ(h.report_metadata.org_name, "ikea.com");
  EXPECT_EQ(h.report_metadata.date_range.end - h.report_metadata.date_range.begin, 86400);
  EXPECT_EQ(h.policy_published.domain, "example.de");
  EXPECT_EQ(h.policy_published.pct, 100);
  EXPECT_EQ(h.policy_published.fo, "0");
  ASSERT_EQ(p.report.records.size(), 1u);
  EXPECT_EQ(p.report.records[0].row.source_ip, "234.234.234.234");
  EXPECT_EQ(p.report.records[0].auth_results.spf.at(0).scope, "helo");
  EXPECT_TRUE(
      any_error_contains(p.report, "dropped a stray start tag before <feedback>: <xs:schema"))
      << all_errors(p.report);
}

TEST(DmarcXml, StraySchemaTagVariantsAndOtherWrappers) {
  const std::string body = report_xml(record_xml("192.0.2.1", 3));
  const std::string feedback = body.substr(body.find("<feedback"));
  const std::string decl = "<?xml version=\"1.0\"?>\n";
  const std::string schema = "<xsd:schema xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" a='>'";
  for (const std::string& xml : {
           decl + schema + "/>\n" + feedback,                     // self-closed: two roots
           decl + schema + ">\n" + feedback + "</xsd:schema>\n",  // a closed wrapper
           schema + ">" + feedback,                               // no declaration
       }) {
    SCOPED_TRACE(xml.substr(0, 120));
    auto p = parse_string(xml);
    ASSERT_TRUE(p.status.ok()) << p.status.error().describe();
    EXPECT_EQ(message_count(p.report), 3u);
    EXPECT_TRUE(any_error_contains(p.report, "dropped a stray start tag")) << all_errors(p.report);
  }
  // Past the look-ahead, or any other wrapper: <feedback> is found below the root.
  for (const std::string& xml : {
           decl + "<!--" + std::string(5000, 'x') + " -->\n" + schema + ">" + feedback,
           decl + "<envelope><feedback>" + feedback.substr(10) + "</envelope>",
       }) {
    auto p = parse_string(xml);
    ASSERT_TRUE(p.status.ok()) << p.status.error().describe();
    EXPECT_EQ(message_count(p.report), 3u);
    EXPECT_TRUE(any_error_contains(p.report, "not the document root")) << all_errors(p.report);
  }
}

TEST(DmarcXml, InvalidUtf8IsReplacedAndReported) {
  MAILREPORT_REQUIRE_CORPUS();
  auto p = parse_corpus("parsedmarc/samples/aggregate/invalid_utf_8.xml");
  ASSERT_TRUE(p.status.ok()) << p.status.error().describe();
  ASSERT_EQ(p.report.records.size(), 1u);
  const auto& rec = p.report.records[0];
  EXPECT_EQ(rec.row.source_ip, "12.20.127.122");
  EXPECT_EQ(rec.identifiers.header_from.rfind("bad_byte", 0), 0u) << rec.identifiers.header_from;
  EXPECT_EQ(rec.auth_results.spf.at(0).result, "none");
  EXPECT_FALSE(p.report.errors.empty());
  // Whatever libxml2 made of the byte, the model holds valid UTF-8 (JSON output needs it).
  EXPECT_NO_THROW((void)to_json(p.report).dump());
}

TEST(DmarcXml, InvalidUtf8InHandWrittenInput) {
  auto p = parse_string(report_xml(record_xml("192.0.2.1", 1), "",
                                   "<domain>ex\xff\xfe"
                                   "ample.com</domain><p>none</p>"));
  ASSERT_TRUE(p.status.ok()) << p.status.error().describe();
  EXPECT_EQ(p.report.records.size(), 1u);
  EXPECT_NO_THROW((void)to_json(p.report).dump());
  EXPECT_FALSE(p.report.errors.empty());
}

TEST(DmarcXml, Windows1252Declaration) {
  MAILREPORT_REQUIRE_CORPUS();
  auto p = parse_corpus("dmarc_aggregate_parser/sample-data/dmarc.xml");
  ASSERT_TRUE(p.status.ok()) << p.status.error().describe();
  EXPECT_EQ(p.report.header.report_metadata.org_name, "AOL");
  EXPECT_EQ(p.report.header.policy_published.p, "reject");
  ASSERT_EQ(p.report.records.size(), 1u);
  EXPECT_EQ(p.report.records[0].row.source_ip, "125.125.125.125");
  EXPECT_TRUE(p.report.errors.empty()) << all_errors(p.report);

  // A windows-1252 byte (0x92, right single quote) is converted to UTF-8.
  std::string xml = report_xml(record_xml("192.0.2.1", 1));
  xml.replace(xml.find("UTF-8"), 5, "windows-1252");
  xml.replace(xml.find("Reporter"), 8, "O\x92Reilly");
  auto q = parse_string(xml);
  ASSERT_TRUE(q.status.ok()) << q.status.error().describe();
  EXPECT_EQ(q.report.header.report_metadata.org_name, "O\xE2\x80\x99Reilly");
}

TEST(DmarcXml, Utf16WithByteOrderMark) {
  std::string utf8 = report_xml(record_xml("192.0.2.1", 6));
  utf8.replace(utf8.find("UTF-8"), 5, "UTF-16");
  std::string utf16 = "\xFF\xFE";
  for (char c : utf8) {
    utf16 += c;
    utf16 += '\0';
  }
  auto p = parse_string(utf16);
  ASSERT_TRUE(p.status.ok()) << p.status.error().describe();
  ASSERT_EQ(p.report.records.size(), 1u);
  EXPECT_EQ(p.report.records[0].row.count, 6u);
}

// Reads one byte at a time, to cross every buffer boundary.
class TrickleSource final : public ByteSource {
 public:
  explicit TrickleSource(std::string_view data) : data_(data) {}
  Result<std::size_t> read(std::span<char> buf) override {
    if (pos_ == data_.size() || buf.empty()) return std::size_t{0};
    buf[0] = data_[pos_++];
    return std::size_t{1};
  }

 private:
  std::string_view data_;
  std::size_t pos_ = 0;
};

std::string with_encoding(std::string xml, std::string_view encoding) {
  xml.replace(xml.find("UTF-8"), 5, encoding);
  return xml;
}

TEST(DmarcXml, BytesALegacyEncodingDoesNotDefineCostOneCharacter) {
  // 0x81 is undefined in windows-1252, 0xE9 is not US-ASCII: libxml2 alone would stop the
  // document there (and print to stderr); the records after it must survive.
  for (auto [encoding, bad] :
       {std::pair<std::string_view, std::string_view>{"windows-1252", "\x81"},
        {"US-ASCII", "\xE9"}}) {
    SCOPED_TRACE(encoding);
    std::string xml = with_encoding(
        report_xml(record_xml("192.0.2.1", 1) + record_xml("192.0.2.2", 2)), encoding);
    xml.replace(xml.find("Reporter"), 8, "Re" + std::string(bad) + "porter");
    testing::internal::CaptureStderr();
    auto p = parse_string(xml);
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_EQ(err, "");
    ASSERT_TRUE(p.status.ok()) << p.status.error().describe();
    EXPECT_EQ(p.report.header.report_metadata.org_name, "Re\xEF\xBF\xBDporter");
    EXPECT_EQ(p.report.records.size(), 2u);
    EXPECT_EQ(message_count(p.report), 3u);
    EXPECT_TRUE(any_error_contains(p.report, "replaced by U+FFFD")) << all_errors(p.report);
  }
}

TEST(DmarcXml, MultiByteLegacyEncodingAcrossReadBoundaries) {
  // Shift_JIS "\u65e5\u672c" (Japan), read one byte at a time.
  std::string xml = with_encoding(report_xml(record_xml("192.0.2.1", 1)), "Shift_JIS");
  xml.replace(xml.find("Reporter"), 8, "\x93\xFA\x96\x7B");
  TrickleSource src(xml);
  CollectingSink sink;
  ASSERT_TRUE(parse_dmarc_xml(src, sink).ok());
  const auto& r = std::get<DmarcAggregate>(sink.reports().at(0));
  EXPECT_EQ(r.header.report_metadata.org_name, "\xE6\x97\xA5\xE6\x9C\xAC");
  EXPECT_EQ(r.records.size(), 1u);
  EXPECT_TRUE(r.errors.empty()) << all_errors(r);
}

TEST(DmarcXml, LargeLegacyEncodedReport) {
  std::string records;
  for (int i = 0; i < 3000; ++i) records += record_xml("192.0.2." + std::to_string(i % 250), 2);
  std::string xml = with_encoding(report_xml(records), "ISO-8859-1");
  xml.replace(xml.find("Reporter"), 8, "R\xE9porter");
  auto p = parse_string(xml);
  ASSERT_TRUE(p.status.ok());
  EXPECT_EQ(p.report.header.report_metadata.org_name, "R\xC3\xA9porter");
  EXPECT_EQ(p.report.records.size(), 3000u);
  EXPECT_EQ(message_count(p.report), 6000u);
  EXPECT_TRUE(p.report.errors.empty()) << all_errors(p.report);
}

TEST(DmarcXml, UnknownOrWrongEncodingIsReadAsUtf8) {
  for (std::string_view encoding : {"x-no-such-charset", "UTF-16"}) {
    SCOPED_TRACE(encoding);
    std::string xml = with_encoding(report_xml(record_xml("192.0.2.1", 5)), encoding);
    xml.replace(xml.find("Reporter"), 8, "R\xC3\xA9porter");
    auto p = parse_string(xml);
    ASSERT_TRUE(p.status.ok()) << p.status.error().describe();
    EXPECT_EQ(p.report.header.report_metadata.org_name, "R\xC3\xA9porter");
    EXPECT_EQ(message_count(p.report), 5u);
    EXPECT_TRUE(any_error_contains(p.report, std::string(encoding))) << all_errors(p.report);
  }
}

TEST(DmarcXml, BrokenUtf16DoesNotPrintToStderr) {
  std::string utf8 = report_xml(record_xml("192.0.2.1", 6));
  std::string utf16 = "\xFF\xFE";
  for (char c : utf8) {
    utf16 += c;
    utf16 += '\0';
  }
  auto at = utf16.find(std::string("R\0e\0p\0", 6));
  utf16.insert(at, std::string("\x00\xD8", 2));  // an unpaired high surrogate
  testing::internal::CaptureStderr();
  auto p = parse_string(utf16);
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
  if (p.status.ok()) {
    EXPECT_FALSE(p.report.errors.empty());
  } else {
    EXPECT_EQ(p.status.error().code, ErrorCode::Invalid);
  }
}

TEST(DmarcXml, ChildElementsOfTextElementsAreIgnored) {
  auto p = parse_string(report_xml(record_xml("192.0.2.1", 1), "",
                                   "<domain>example.com<b>bold</b></domain><p>none</p>"));
  ASSERT_TRUE(p.status.ok());
  EXPECT_EQ(p.report.header.policy_published.domain, "example.com");
  EXPECT_EQ(p.report.header.policy_published.p, "none");
  EXPECT_TRUE(any_error_contains(p.report, "<b> inside <domain> ignored")) << all_errors(p.report);
}

TEST(DmarcXml, UnescapedLessThanInText) {
  MAILREPORT_REQUIRE_CORPUS();
  auto p = parse_corpus("parsedmarc/samples/aggregate/invalid_xml.xml");
  ASSERT_TRUE(p.status.ok()) << p.status.error().describe();
  const auto& h = p.report.header;
  EXPECT_EQ(h.report_metadata.org_name, "veeam.com");
  EXPECT_EQ(h.report_metadata.email, "<bad-xml@bad-xml.net>");
  EXPECT_EQ(h.report_metadata.report_id, "sonexushealth.com:1530233361");
  EXPECT_EQ(h.report_metadata.date_range.begin, 1530133200);
  EXPECT_EQ(h.policy_published.domain, "example.com");
  EXPECT_EQ(h.policy_published.sp, "none");
  ASSERT_EQ(p.report.records.size(), 1u);
  const auto& rec = p.report.records[0];
  EXPECT_EQ(rec.row.source_ip, "199.230.200.36");
  EXPECT_EQ(rec.row.count, 1u);
  EXPECT_EQ(rec.identifiers.header_from, "bad<xml.net");
  ASSERT_EQ(rec.auth_results.spf.size(), 1u);
  EXPECT_EQ(rec.auth_results.spf[0].result, "none");
  EXPECT_TRUE(any_error_contains(p.report, "line 5:")) << all_errors(p.report);
  EXPECT_TRUE(any_error_contains(p.report, "line 31:")) << all_errors(p.report);
}

TEST(DmarcXml, UpperCaseEnumValuesAreLowerCased) {
  MAILREPORT_REQUIRE_CORPUS();
  auto p = parse_corpus("parsedmarc/samples/aggregate_invalid/report_with_upper_cased_pass.xml");
  ASSERT_TRUE(p.status.ok()) << p.status.error().describe();
  EXPECT_EQ(p.report.header.report_metadata.org_name, "example.com");  // trailing space trimmed
  ASSERT_EQ(p.report.records.size(), 1u);
  const auto& rec = p.report.records[0];
  EXPECT_EQ(rec.row.policy_evaluated.disposition, "none");
  EXPECT_EQ(rec.row.policy_evaluated.dkim, "pass");
  EXPECT_EQ(rec.row.policy_evaluated.spf, "pass");
  EXPECT_EQ(rec.auth_results.dkim.at(0).result, "pass");
  EXPECT_EQ(rec.auth_results.dkim.at(0).human_result, "verify result: all signatures verified");
  EXPECT_EQ(rec.auth_results.spf.at(0).result, "pass");
}

TEST(DmarcXml, NonEnumValuesKeepTheirCase) {
  auto p = parse_string(report_xml(record_xml("192.0.2.1", 1), "",
                                   "<domain>Example.COM</domain><P>None</P><p>REJECT</p>"
                                   "<adkim>S</adkim><fo>D:S</fo>"));
  ASSERT_TRUE(p.status.ok());
  EXPECT_EQ(p.report.header.policy_published.domain, "Example.COM");
  EXPECT_EQ(p.report.header.policy_published.p, "reject");  // <P> is not <p>: XML is case-sensitive
  EXPECT_EQ(p.report.header.policy_published.adkim, "s");
  EXPECT_EQ(p.report.header.policy_published.fo, "D:S");
}

TEST(DmarcXml, OutOfOrderChildren) {
  MAILREPORT_REQUIRE_CORPUS();
  auto acme = parse_corpus("dmarc-report-viewer/testdata/dmarc-reports/acme.xml");
  ASSERT_TRUE(acme.status.ok());
  EXPECT_EQ(acme.report.header.report_metadata.error.size(), 1u);
  EXPECT_NE(acme.report.header.report_metadata.date_range.begin, 0);
  auto hard = parse_corpus("dmarc-report-viewer/testdata/dmarc-reports/hardfail.xml");
  ASSERT_TRUE(hard.status.ok());
  EXPECT_FALSE(hard.report.header.policy_published.domain.empty());
  EXPECT_FALSE(hard.report.header.policy_published.adkim.empty());
  ASSERT_EQ(hard.report.records.size(), 1u);
  EXPECT_EQ(hard.report.records[0].row.policy_evaluated.disposition, "quarantine");

  // Record children reversed, policy_published after the records, metadata last.
  const std::string xml = R"(<feedback>
  <record>
    <auth_results><spf><result>pass</result><domain>example.com</domain></spf></auth_results>
    <identifiers><header_from>example.com</header_from></identifiers>
    <row><policy_evaluated><spf>pass</spf><dkim>fail</dkim><disposition>none</disposition>
      </policy_evaluated><count>9</count><source_ip>192.0.2.3</source_ip></row>
  </record>
  <policy_published><p>none</p><domain>example.com</domain></policy_published>
  <report_metadata><date_range><end>20</end><begin>10</begin></date_range>
    <report_id>late</report_id></report_metadata>
</feedback>)";
  auto p = parse_string(xml);
  ASSERT_TRUE(p.status.ok());
  ASSERT_EQ(p.report.records.size(), 1u);
  EXPECT_EQ(p.report.records[0].row.count, 9u);
  EXPECT_EQ(p.report.records[0].row.source_ip, "192.0.2.3");
  EXPECT_EQ(p.report.records[0].row.policy_evaluated.dkim, "fail");
  EXPECT_EQ(p.report.records[0].auth_results.spf.at(0).domain, "example.com");
  // The final header (dmarc_end) has what came after the records.
  EXPECT_EQ(p.report.header.policy_published.domain, "example.com");
  EXPECT_EQ(p.report.header.report_metadata.report_id, "late");
  EXPECT_EQ(p.report.header.report_metadata.date_range.begin, 10);
  EXPECT_EQ(p.report.header.report_metadata.date_range.end, 20);
}

TEST(DmarcXml, MissingElementsAreEmpty) {
  MAILREPORT_REQUIRE_CORPUS();
  auto p = parse_corpus("dmarc-report-parser-avvertix/tests/fixtures/dmarc-missing-elements.xml");
  ASSERT_TRUE(p.status.ok());
  EXPECT_EQ(p.report.header.policy_published.sp, "");
  EXPECT_EQ(p.report.header.policy_published.fo, "");
  EXPECT_EQ(p.report.header.report_metadata.extra_contact_info, "");
  EXPECT_EQ(p.report.header.policy_published.p, "quarantine");  // CRLF + TAB trimmed

  auto q = parse_string(report_xml("<record><row><source_ip>192.0.2.1</source_ip></row></record>"));
  ASSERT_TRUE(q.status.ok());
  EXPECT_FALSE(q.report.header.policy_published.pct.has_value());
  EXPECT_EQ(q.report.header.policy_published.sp, "");
  ASSERT_EQ(q.report.records.size(), 1u);
  EXPECT_EQ(q.report.records[0].row.count, 0u);
  EXPECT_TRUE(q.report.records[0].auth_results.dkim.empty());
}

TEST(DmarcXml, EmptyElements) {
  MAILREPORT_REQUIRE_CORPUS();
  auto p = parse_corpus("parsedmarc/samples/aggregate/empty_reason.xml");
  ASSERT_TRUE(p.status.ok());
  ASSERT_EQ(p.report.records.size(), 1u);
  ASSERT_EQ(p.report.records[0].row.policy_evaluated.reason.size(), 1u);
  EXPECT_EQ(p.report.records[0].row.policy_evaluated.reason[0].type, "");
  EXPECT_EQ(p.report.records[0].row.policy_evaluated.reason[0].comment, "");

  auto q =
      parse_string(report_xml(record_xml("192.0.2.1", 1), "", "<domain/><p></p><pct/><sp>  </sp>"));
  ASSERT_TRUE(q.status.ok());
  EXPECT_EQ(q.report.header.policy_published.domain, "");
  EXPECT_EQ(q.report.header.policy_published.sp, "");
  EXPECT_FALSE(q.report.header.policy_published.pct.has_value());
  EXPECT_TRUE(q.report.errors.empty()) << all_errors(q.report);
}

TEST(DmarcXml, EmptyRecordsAreDroppedWithANote) {
  auto p = parse_string(report_xml("<record/>\n<record>\n  </record>\n" +
                                   record_xml("192.0.2.1", 4) + "<record><x/></record>"));
  ASSERT_TRUE(p.status.ok());
  ASSERT_EQ(p.report.records.size(), 1u);
  EXPECT_EQ(p.report.records[0].row.count, 4u);
  EXPECT_EQ(p.report.errors.size(), 3u) << all_errors(p.report);
  EXPECT_TRUE(any_error_contains(p.report, "empty <record>"));
}

TEST(DmarcXml, CrlfAndTrailingWhitespace) {
  std::string xml = report_xml(
      "<record>\r\n\t<row>\t\r\n<source_ip>\r\n 192.0.2.5\t\r\n</source_ip>\t\r\n"
      "<count>\t 17 \r\n</count></row></record>\r\n",
      "", "<domain>example.com\t</domain>\r\n<p>\tNone \t</p>");
  auto p = parse_string(xml);
  ASSERT_TRUE(p.status.ok());
  EXPECT_EQ(p.report.header.policy_published.domain, "example.com");
  EXPECT_EQ(p.report.header.policy_published.p, "none");
  ASSERT_EQ(p.report.records.size(), 1u);
  EXPECT_EQ(p.report.records[0].row.source_ip, "192.0.2.5");
  EXPECT_EQ(p.report.records[0].row.count, 17u);
  EXPECT_TRUE(p.report.errors.empty()) << all_errors(p.report);
}

TEST(DmarcXml, CommentsCdataAndCharacterReferences) {
  MAILREPORT_REQUIRE_CORPUS();
  auto wiki = parse_corpus("parsedmarc/samples/aggregate/old_draft_from_wiki.xml");
  ASSERT_TRUE(wiki.status.ok());
  EXPECT_EQ(wiki.report.header.report_metadata.org_name, "acme.com");
  EXPECT_EQ(message_count(wiki.report), 2u);

  auto p =
      parse_string(report_xml("<!-- a record follows -->" + record_xml("192.0.2.1", 1), "",
                              "<domain>exa<!-- hidden -->mple.com</domain><p><![CDATA[ none ]]></p>"
                              "<fo>&#x31;&amp;&lt;&gt;&quot;&apos;&#48;</fo>"));
  ASSERT_TRUE(p.status.ok());
  EXPECT_EQ(p.report.header.policy_published.domain, "example.com");
  EXPECT_EQ(p.report.header.policy_published.p, "none");
  EXPECT_EQ(p.report.header.policy_published.fo, "1&<>\"'0");
  EXPECT_EQ(p.report.records.size(), 1u);
}

TEST(DmarcXml, NumbersTolerateWhitespaceAndReportGarbage) {
  const std::string records =
      "<record><row><source_ip>192.0.2.1</source_ip><count> 18446744073709551615 </count></row>"
      "</record>"
      "<record><row><source_ip>192.0.2.2</source_ip><count>12abc</count></row></record>"
      "<record><row><source_ip>192.0.2.3</source_ip><count>-1</count></row></record>";
  auto p = parse_string(report_xml(records, "", "<domain>example.com</domain><pct>1000</pct>"));
  ASSERT_TRUE(p.status.ok());
  ASSERT_EQ(p.report.records.size(), 3u);
  EXPECT_EQ(p.report.records[0].row.count, 18446744073709551615u);
  EXPECT_EQ(p.report.records[1].row.count, 0u);
  EXPECT_EQ(p.report.records[2].row.count, 0u);
  EXPECT_FALSE(p.report.header.policy_published.pct.has_value());
  EXPECT_TRUE(any_error_contains(p.report, "\"12abc\"")) << all_errors(p.report);
  EXPECT_TRUE(any_error_contains(p.report, "\"-1\"")) << all_errors(p.report);
  EXPECT_TRUE(any_error_contains(p.report, "<pct>")) << all_errors(p.report);

  std::string xml = report_xml(record_xml("192.0.2.1", 1));
  xml.replace(xml.find("<begin>1000</begin>"), 19, "<begin>\n 1538690400 \n</begin>");
  xml.replace(xml.find("<end>2000</end>"), 15, "<end>tomorrow</end>");
  auto q = parse_string(xml);
  ASSERT_TRUE(q.status.ok());
  EXPECT_EQ(q.report.header.report_metadata.date_range.begin, 1538690400);
  EXPECT_EQ(q.report.header.report_metadata.date_range.end, 0);
  EXPECT_TRUE(any_error_contains(q.report, "<end>")) << all_errors(q.report);
}

TEST(DmarcXml, LongValuesAreTruncated) {
  std::string big(200 * 1024, 'a');
  auto p = parse_string(
      report_xml(record_xml("192.0.2.1", 1), "", "<domain>" + big + "</domain><p>none</p>"));
  ASSERT_TRUE(p.status.ok());
  EXPECT_EQ(p.report.header.policy_published.domain.size(), 64u * 1024u);
  EXPECT_EQ(p.report.header.policy_published.p, "none");
  EXPECT_TRUE(any_error_contains(p.report, "truncated")) << all_errors(p.report);
  EXPECT_EQ(p.report.records.size(), 1u);
}

TEST(DmarcXml, ListsAndErrorsAreBounded) {
  std::string dkims;
  for (int i = 0; i < 1500; ++i) {
    dkims +=
        "<dkim><domain>d" + std::to_string(i) + ".example</domain><result>pass</result></dkim>";
  }
  std::string garbage_counts;
  for (int i = 0; i < 300; ++i) {
    garbage_counts +=
        "<record><row><source_ip>192.0.2.1</source_ip><count>x</count></row></record>";
  }
  auto p = parse_string(report_xml("<record><row><count>1</count></row><auth_results>" + dkims +
                                   "</auth_results></record>" + garbage_counts));
  ASSERT_TRUE(p.status.ok());
  ASSERT_EQ(p.report.records.size(), 301u);
  EXPECT_EQ(p.report.records[0].auth_results.dkim.size(), 1000u);
  EXPECT_EQ(p.report.records[0].auth_results.dkim.back().domain, "d999.example");
  EXPECT_TRUE(any_error_contains(p.report, "more than 1000 <dkim>")) << all_errors(p.report);
  ASSERT_EQ(p.report.errors.size(), 101u);
  EXPECT_EQ(p.report.errors.back(), "... and 201 more errors");
}

TEST(DmarcXml, TruncatedInputDeliversWhatWasParsed) {
  std::string xml = report_xml(record_xml("192.0.2.1", 2) + record_xml("192.0.2.2", 3) +
                               record_xml("192.0.2.3", 4));
  std::size_t cut = xml.find("192.0.2.3") + 4;
  auto p = parse_string(xml.substr(0, cut));
  ASSERT_TRUE(p.status.ok()) << p.status.error().describe();
  ASSERT_EQ(p.report.records.size(), 2u);
  EXPECT_EQ(message_count(p.report), 5u);
  EXPECT_EQ(p.report.header.policy_published.domain, "example.com");
  EXPECT_TRUE(any_error_contains(p.report, "before </feedback>")) << all_errors(p.report);
  EXPECT_TRUE(any_error_contains(p.report, "incomplete")) << all_errors(p.report);

  // Cut inside the metadata: the header is partial, there are no records.
  auto q = parse_string(xml.substr(0, xml.find("<report_id>")));
  ASSERT_TRUE(q.status.ok());
  EXPECT_TRUE(q.delivered);
  EXPECT_EQ(q.report.header.report_metadata.org_name, "Reporter");
  EXPECT_TRUE(q.report.records.empty());
  EXPECT_FALSE(q.report.errors.empty());
  EXPECT_FALSE(q.report.header.complete);
  EXPECT_FALSE(p.report.header.complete);
  EXPECT_TRUE(parse_string(xml).report.header.complete);
}

TEST(DmarcXml, FeedbackFollowedByBinaryGarbageIsNotAReport) {
  // Seen in the wild as a gzip member holding "<feedback" and then NUL bytes: nothing in it
  // names a reporter, a report or a domain, so it must not be stored as an (empty) parsed report.
  auto p = parse_string(std::string("<feedback") + std::string(64, '\0') + "\x01\x02");
  ASSERT_FALSE(p.status.ok());
  EXPECT_EQ(p.status.error().code, mailreport::ErrorCode::Invalid);
  EXPECT_NE(p.status.error().message.find("holds no report metadata"), std::string::npos)
      << p.status.error().message;
  EXPECT_FALSE(p.delivered);

  auto q = parse_string("<?xml version=\"1.0\"?><feedback></feedback>");
  ASSERT_FALSE(q.status.ok());
  EXPECT_FALSE(q.delivered);
}

TEST(DmarcXml, TrailingGarbageAfterFeedbackIsIgnored) {
  auto p = parse_string(report_xml(record_xml("192.0.2.1", 1)) + "</xs:schema>\n\x01garbage<<<");
  ASSERT_TRUE(p.status.ok());
  EXPECT_EQ(p.report.records.size(), 1u);
  EXPECT_TRUE(p.report.errors.empty()) << all_errors(p.report);
}

TEST(DmarcXml, DamagedInputNeverBreaksTheParser) {
  const std::string base = report_xml(record_xml("192.0.2.1", 1) + record_xml("192.0.2.2", 2),
                                      " xmlns=\"urn:ietf:params:xml:ns:dmarc-2.0\"");
  std::size_t parsed = 0;
  for (std::size_t i = 0; i < base.size(); ++i) {
    for (int damage = 0; damage < 4; ++damage) {
      std::string xml = base;
      switch (damage) {
        case 0: xml.insert(i, "<"); break;
        case 1: xml[i] = '&'; break;
        case 2: xml.erase(i, 1); break;
        default: xml[i] = '\xff'; break;
      }
      auto p = parse_string(xml);
      if (!p.status.ok()) {
        EXPECT_EQ(p.status.error().code, ErrorCode::Invalid) << xml;
        continue;
      }
      ++parsed;
      EXPECT_LE(p.report.records.size(), 2u) << xml;
      EXPECT_NO_THROW((void)to_json(p.report).dump()) << xml;
    }
  }
  EXPECT_GT(parsed, base.size() * 3);  // nearly every damaged copy is still a report
}

// ------------------------------------------------------------------ not a report

TEST(DmarcXml, DocumentsWithoutFeedbackAreInvalid) {
  for (std::string_view input :
       {std::string_view("<html><body><p>hello</p></body></html>"), std::string_view(""),
        std::string_view("{\"organization-name\": \"x\"}"),
        std::string_view("\x1f\x8b\x08\x00garbage", 12),
        std::string_view("<?xml version=\"1.0\"?><report><record/></report>")}) {
    MemorySource src(input);
    CollectingSink sink;
    auto st = parse_dmarc_xml(src, sink);
    ASSERT_FALSE(st.ok()) << input;
    EXPECT_EQ(st.error().code, ErrorCode::Invalid);
    EXPECT_EQ(st.error().message.rfind("not a DMARC aggregate report: ", 0), 0u)
        << st.error().message;
    EXPECT_TRUE(sink.reports().empty());
  }
  MemorySource src("<html/>");
  CollectingSink sink;
  auto st = parse_dmarc_xml(src, sink);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("<html>"), std::string::npos) << st.error().message;
}

// ------------------------------------------------------------------ XML attacks

TEST(DmarcXml, BillionLaughsIsNotExpanded) {
  std::string xml = "<?xml version=\"1.0\"?>\n<!DOCTYPE feedback [\n<!ENTITY lol \"lol\">\n";
  xml += "<!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n";
  for (int i = 2; i <= 9; ++i) {
    xml += "<!ENTITY lol" + std::to_string(i) + " \"";
    for (int k = 0; k < 10; ++k) xml += "&lol" + std::to_string(i - 1) + ";";
    xml += "\">\n";
  }
  xml += "]>\n";
  std::string body = report_xml(record_xml("192.0.2.1", 1));
  body.replace(body.find("Reporter"), 8, "&lol9;");
  xml += body.substr(body.find("<feedback"));

  auto t0 = std::chrono::steady_clock::now();
  auto p = parse_string(xml);
  auto elapsed = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(elapsed, std::chrono::seconds(2));
  ASSERT_TRUE(p.status.ok()) << p.status.error().describe();
  EXPECT_EQ(p.report.header.report_metadata.org_name.find("lollol"), std::string::npos);
  EXPECT_LE(p.report.header.report_metadata.org_name.size(), 16u);
  EXPECT_EQ(p.report.records.size(), 1u);
  EXPECT_TRUE(any_error_contains(p.report, "lol9")) << all_errors(p.report);
  EXPECT_TRUE(any_error_contains(p.report, "DOCTYPE")) << all_errors(p.report);
}

TEST(DmarcXml, ExternalEntitiesAreNotLoaded) {
  std::string body = report_xml(record_xml("192.0.2.1", 1));
  body.replace(body.find("Reporter"), 8, "&xxe;");
  std::string xml =
      "<?xml version=\"1.0\"?>\n<!DOCTYPE feedback [\n"
      "<!ENTITY xxe SYSTEM \"file:///etc/passwd\">\n]>\n" +
      body.substr(body.find("<feedback"));
  auto p = parse_string(xml);
  ASSERT_TRUE(p.status.ok()) << p.status.error().describe();
  const std::string& org = p.report.header.report_metadata.org_name;
  EXPECT_EQ(org.find("root:"), std::string::npos) << org;
  EXPECT_LE(org.size(), 8u) << org;
  EXPECT_EQ(p.report.records.size(), 1u);
  EXPECT_TRUE(any_error_contains(p.report, "xxe")) << all_errors(p.report);

  // An external DTD and an external parameter entity are not fetched either.
  std::string xml2 =
      "<?xml version=\"1.0\"?>\n<!DOCTYPE feedback SYSTEM \"file:///etc/passwd\" [\n"
      "<!ENTITY % pe SYSTEM \"file:///etc/passwd\"> %pe;\n]>\n" +
      body.substr(body.find("<feedback"));
  auto q = parse_string(xml2);
  ASSERT_TRUE(q.status.ok()) << q.status.error().describe();
  EXPECT_EQ(q.report.header.report_metadata.org_name.find("root:"), std::string::npos);
  EXPECT_EQ(q.report.records.size(), 1u);
  for (const auto& e : q.report.errors) EXPECT_EQ(e.find("root:"), std::string::npos) << e;
}

TEST(DmarcXml, TooManyDistinctNamesIsALimit) {
  std::string ext = "<extension>";
  for (int i = 0; i < 110000; ++i) ext += "<e" + std::to_string(i) + "/>";
  ext += "</extension>";
  std::string xml = report_xml(ext + record_xml("192.0.2.1", 1));
  auto p = parse_string(xml);
  ASSERT_FALSE(p.status.ok());
  EXPECT_EQ(p.status.error().code, ErrorCode::LimitExceeded);
}

// ------------------------------------------------------------------ streaming and the sink

// Generates a report with `n` records without holding it in memory.
class GeneratedReport final : public ByteSource {
 public:
  explicit GeneratedReport(std::uint64_t records) : left_(records) {
    pending_ = report_xml("");
    tail_ = pending_.substr(pending_.find("</feedback>"));
    pending_.resize(pending_.size() - tail_.size());
  }
  Result<std::size_t> read(std::span<char> buf) override {
    std::size_t n = 0;
    while (n < buf.size()) {
      if (pos_ == pending_.size()) {
        pos_ = 0;
        if (left_ > 0) {
          --left_;
          pending_ = record_xml("192.0.2." + std::to_string(left_ % 250), 1);
        } else if (!tail_.empty()) {
          pending_ = std::move(tail_);
          tail_.clear();
        } else {
          pending_.clear();
          break;
        }
      }
      std::size_t k = std::min(buf.size() - n, pending_.size() - pos_);
      std::memcpy(buf.data() + n, pending_.data() + pos_, k);
      pos_ += k;
      n += k;
    }
    return n;
  }

 private:
  std::uint64_t left_;
  std::string pending_;
  std::string tail_;
  std::size_t pos_ = 0;
};

class CountingSink final : public ReportSink {
 public:
  Status dmarc_begin(const DmarcHeader& h) override {
    events.push_back("begin");
    begin_org = h.report_metadata.org_name;
    return {};
  }
  Status dmarc_record(DmarcRecord&& r) override {
    ++records;
    messages += r.row.count;
    if (events.back() != "record") events.push_back("record");
    if (fail_at != 0 && records == fail_at) return make_error(ErrorCode::Store, "disk full");
    if (throw_at != 0 && records == throw_at) throw std::runtime_error("sink exploded");
    return {};
  }
  Status dmarc_end(const DmarcHeader&, const std::vector<std::string>& errors) override {
    events.push_back("end");
    error_count = errors.size();
    return {};
  }
  Status tls(TlsReport&&) override { return {}; }
  Status arf(ArfReport&&) override { return {}; }
  Status dsn(DsnReport&&) override { return {}; }

  std::vector<std::string> events;
  std::string begin_org;
  std::uint64_t records = 0, messages = 0, fail_at = 0, throw_at = 0;
  std::size_t error_count = 0;
};

TEST(DmarcXml, StreamsRecordsBetweenBeginAndEnd) {
  GeneratedReport src(20000);
  CountingSink sink;
  auto st = parse_dmarc_xml(src, sink);
  ASSERT_TRUE(st.ok()) << st.error().describe();
  EXPECT_EQ(sink.events, (std::vector<std::string>{"begin", "record", "end"}));
  EXPECT_EQ(sink.begin_org, "Reporter");
  EXPECT_EQ(sink.records, 20000u);
  EXPECT_EQ(sink.messages, 20000u);
  EXPECT_EQ(sink.error_count, 0u);
}

TEST(DmarcXml, ReportWithoutRecordsStillBeginsAndEnds) {
  const std::string xml = report_xml("");
  MemorySource src(xml);
  CountingSink sink;
  ASSERT_TRUE(parse_dmarc_xml(src, sink).ok());
  EXPECT_EQ(sink.events, (std::vector<std::string>{"begin", "end"}));
}

TEST(DmarcXml, SinkErrorStopsTheParse) {
  GeneratedReport src(1000);
  CountingSink sink;
  sink.fail_at = 3;
  auto st = parse_dmarc_xml(src, sink);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::Store);
  EXPECT_EQ(st.error().message, "disk full");
  EXPECT_EQ(sink.records, 3u);
  EXPECT_EQ(sink.events.back(), "record");
}

TEST(DmarcXml, SinkExceptionIsRethrownOutsideLibxml2) {
  GeneratedReport src(1000);
  CountingSink sink;
  sink.throw_at = 2;
  EXPECT_THROW((void)parse_dmarc_xml(src, sink), std::runtime_error);
  EXPECT_EQ(sink.records, 2u);
}

class FailingSource final : public ByteSource {
 public:
  Result<std::size_t> read(std::span<char> buf) override {
    if (served_) return make_error(ErrorCode::Io, "read: connection reset");
    served_ = true;
    std::string head = report_xml(record_xml("192.0.2.1", 1)).substr(0, 300);
    std::size_t n = std::min(buf.size(), head.size());
    std::memcpy(buf.data(), head.data(), n);
    return n;
  }

 private:
  bool served_ = false;
};

TEST(DmarcXml, SourceErrorIsReturned) {
  FailingSource src;
  CollectingSink sink;
  auto st = parse_dmarc_xml(src, sink);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::Io);
}

// ------------------------------------------------------------------ JSON

TEST(DmarcJson, RendersEveryKeyWithXmlNames) {
  auto p = parse_string(report_xml(
      "<record><row><source_ip>192.0.2.1</source_ip><count>3</count><policy_evaluated>"
      "<disposition>none</disposition><dkim>pass</dkim><spf>fail</spf><reason><type>forwarded"
      "</type><comment>list</comment></reason></policy_evaluated></row><identifiers>"
      "<header_from>example.com</header_from></identifiers><auth_results><dkim><domain>"
      "example.com</domain><selector>s</selector><result>pass</result></dkim><spf><domain>"
      "example.com</domain><scope>mfrom</scope><result>fail</result></spf></auth_results>"
      "</record>"));
  ASSERT_TRUE(p.status.ok());
  nlohmann::json j = to_json(p.report);
  const nlohmann::json expected = nlohmann::json::parse(R"({
    "version": "", "xml_namespace": "",
    "report_metadata": {"org_name": "Reporter", "email": "r@example.net",
      "extra_contact_info": "", "report_id": "id-1",
      "date_range": {"begin": 1000, "end": 2000}, "error": [], "generator": ""},
    "policy_published": {"domain": "example.com", "discovery_method": "", "adkim": "",
      "aspf": "", "p": "none", "sp": "", "np": "", "pct": null, "fo": "", "testing": ""},
    "records": [{
      "row": {"source_ip": "192.0.2.1", "count": 3,
        "policy_evaluated": {"disposition": "none", "dkim": "pass", "spf": "fail",
          "reason": [{"type": "forwarded", "comment": "list"}]}},
      "identifiers": {"envelope_to": "", "envelope_from": "", "header_from": "example.com"},
      "auth_results": {
        "dkim": [{"domain": "example.com", "selector": "s", "result": "pass", "human_result": ""}],
        "spf": [{"domain": "example.com", "scope": "mfrom", "result": "fail", "human_result": ""}]}
    }],
    "errors": []
  })");
  EXPECT_EQ(j, expected) << j.dump(2);

  Report any = p.report;
  EXPECT_EQ(to_json(any)["type"], "dmarc-aggregate");
  p.report.header.policy_published.pct = 0;
  EXPECT_EQ(to_json(p.report.header)["policy_published"]["pct"], 0);
}

// ------------------------------------------------------------------ the corpus

std::vector<test::ManifestRow> manifest_rows(const std::string& kind) {
  return test::corpus_manifest(kind);
}

// "N records/M msgs" in a manifest note (no std::regex: GCC 12 warns inside <regex> under the
// sanitizers).
std::optional<std::pair<std::uint64_t, std::uint64_t>> note_counts(const std::string& notes) {
  const auto at = notes.find(" records/");
  if (at == std::string::npos) return std::nullopt;
  auto begin = notes.find_last_not_of("0123456789", at - 1);
  begin = begin == std::string::npos ? 0 : begin + 1;
  const std::string records = notes.substr(begin, at - begin);
  const auto msgs_at = at + std::string_view(" records/").size();
  const auto msgs_end = notes.find(" msgs", msgs_at);
  if (records.empty() || msgs_end == std::string::npos) return std::nullopt;
  return std::pair{std::stoull(records), std::stoull(notes.substr(msgs_at, msgs_end - msgs_at))};
}

// "org=NAME |" in a manifest note.
std::optional<std::string> note_org(const std::string& notes) {
  const auto at = notes.find("org=");
  if (at == std::string::npos) return std::nullopt;
  const auto end = notes.find(" |", at);
  if (end == std::string::npos) return std::nullopt;
  return notes.substr(at + 4, end - at - 4);
}

TEST(DmarcXmlCorpus, EveryAggregateXmlParsesWithTheExpectedCounts) {
  MAILREPORT_REQUIRE_CORPUS();
  auto rows = manifest_rows("dmarc-agg-xml");
  ASSERT_GE(rows.size(), 30u);
  std::size_t with_counts = 0;
  for (const auto& row : rows) {
    SCOPED_TRACE(row.file);
    auto p = parse_corpus(row.file);
    ASSERT_TRUE(p.status.ok()) << p.status.error().describe();
    ASSERT_TRUE(p.delivered);
    EXPECT_NO_THROW((void)to_json(p.report).dump());
    if (auto counts = note_counts(row.notes)) {
      ++with_counts;
      EXPECT_EQ(p.report.records.size(), counts->first);
      EXPECT_EQ(message_count(p.report), counts->second);
    } else {
      // The notes of the three malformed files give no counts; each holds one record.
      EXPECT_EQ(p.report.records.size(), 1u);
      EXPECT_EQ(message_count(p.report), 1u);
    }
    if (auto org = note_org(row.notes)) {
      EXPECT_EQ(p.report.header.report_metadata.org_name, *org);
    }
  }
  EXPECT_GE(with_counts, rows.size() - 3);
}

}  // namespace
}  // namespace mailreport::report

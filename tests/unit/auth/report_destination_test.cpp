// External destination verification of DMARC report URIs (auth/report_destination, RFC 7489
// §7.1, RFC 9990 §4) on a resolver answering from a map, Organizational Domains from the public
// suffix list: same organization (no lookup), an authorizing record, none, a record that is
// not DMARC1, a replacement rua=/ruf= on the same host (the tag asked for only) and on another
// host, a DNS error, a name too long to look up.
#include "mailreport/auth/report_destination.hpp"

#include <gtest/gtest.h>

#include "dmarc_fake_resolver.hpp"

namespace mailreport::auth {
namespace {

using dmarc_test::FakeResolver;

class ReportDestination : public ::testing::Test {
 protected:
  std::shared_ptr<FakeResolver> dns = std::make_shared<FakeResolver>();
  DmarcEvaluator dmarc{dns, DmarcOptions{Discovery::Psl, {}}};

  DestinationVerdict verify(const std::string& uri, ReportUriTag tag = ReportUriTag::Rua,
                            const std::string& policy_domain = "example.com") {
    auto dest = parse_report_mailto(uri);
    EXPECT_TRUE(dest) << uri;
    return verify_report_destination(*dns, dmarc, policy_domain, "", *dest, tag);
  }
};

TEST_F(ReportDestination, SameOrganizationNeedsNoRecord) {
  auto v = verify("mailto:rua@reports.example.com!10m", ReportUriTag::Rua, "mail.example.com");
  EXPECT_EQ(v.status, DestinationStatus::Authorized) << v.why;
  ASSERT_EQ(v.targets.size(), 1u);
  EXPECT_EQ(v.targets[0].address, "rua@reports.example.com");
  EXPECT_EQ(v.targets[0].max_size, 10u << 20);
  EXPECT_TRUE(dns->asked().empty());
}

TEST_F(ReportDestination, AnExternalHostNeedsTheVerificationRecord) {
  auto v = verify("mailto:agg@reports.example.net");
  EXPECT_EQ(v.status, DestinationStatus::NotAuthorized);
  EXPECT_TRUE(v.targets.empty());
  EXPECT_EQ(dns->asked(),
            std::vector<std::string>{"example.com._report._dmarc.reports.example.net"});
  dns->txt("example.com._report._dmarc.reports.example.net", {"v=DMARC1"});
  v = verify("mailto:agg@reports.example.net");
  EXPECT_EQ(v.status, DestinationStatus::Authorized) << v.why;
  ASSERT_EQ(v.targets.size(), 1u);
  EXPECT_EQ(v.targets[0].address, "agg@reports.example.net");
}

TEST_F(ReportDestination, ARecordThatIsNotDmarc1DoesNotAuthorize) {
  dns->txt("example.com._report._dmarc.reports.example.net", {"v=spf1 -all", "hello"});
  EXPECT_EQ(verify("mailto:agg@reports.example.net").status, DestinationStatus::NotAuthorized);
}

TEST_F(ReportDestination, AReplacementOnTheSameHostIsTheTarget) {
  dns->txt("example.com._report._dmarc.reports.example.net",
           {"v=DMARC1; rua=mailto:a@reports.example.net!1m,mailto:b@reports.example.net; "
            "ruf=mailto:f@reports.example.net"});
  auto v = verify("mailto:agg@reports.example.net");
  EXPECT_EQ(v.status, DestinationStatus::Authorized) << v.why;
  ASSERT_EQ(v.targets.size(), 2u);
  EXPECT_EQ(v.targets[0].address, "a@reports.example.net");
  EXPECT_EQ(v.targets[0].max_size, 1u << 20);
  EXPECT_EQ(v.targets[1].address, "b@reports.example.net");
  // For failure reports the record's ruf= is the replacement.
  v = verify("mailto:agg@reports.example.net", ReportUriTag::Ruf);
  EXPECT_EQ(v.status, DestinationStatus::Authorized) << v.why;
  ASSERT_EQ(v.targets.size(), 1u);
  EXPECT_EQ(v.targets[0].address, "f@reports.example.net");
}

TEST_F(ReportDestination, AReplacementOnAnotherHostAuthorizesNeither) {
  dns->txt("example.com._report._dmarc.reports.example.net",
           {"v=DMARC1; rua=mailto:a@reports.example.net,mailto:x@elsewhere.example.org"});
  auto v = verify("mailto:agg@reports.example.net");
  EXPECT_EQ(v.status, DestinationStatus::NotAuthorized);
  EXPECT_TRUE(v.targets.empty());
  EXPECT_NE(v.why.find("another host"), std::string::npos) << v.why;
}

TEST_F(ReportDestination, ADnsErrorIsTemporary) {
  dns->fail("example.com._report._dmarc.reports.example.net");
  auto v = verify("mailto:agg@reports.example.net");
  EXPECT_EQ(v.status, DestinationStatus::TempError);
  EXPECT_NE(v.why.find("SERVFAIL"), std::string::npos) << v.why;
}

TEST_F(ReportDestination, ANameTooLongIsNotAuthorizedWithoutALookup) {
  const std::string label(60, 'a');
  const std::string policy = label + "." + label + "." + label + ".example.com";
  auto v = verify("mailto:agg@" + label + ".reports.example.net", ReportUriTag::Rua, policy);
  EXPECT_EQ(v.status, DestinationStatus::NotAuthorized);
  EXPECT_TRUE(dns->asked().empty());
}

}  // namespace
}  // namespace mailreport::auth

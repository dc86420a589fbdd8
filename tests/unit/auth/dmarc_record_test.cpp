// Tests of the DMARC policy record parser (RFC 9989 §4.7, §4.8; RFC 7489 §6.3 pct and ri):
// every tag, defaults, the v=DMARC1 rule, lenient handling of syntax errors and unknown tags,
// and the invalid-policy rule of RFC 9989 §4.10.1.
#include <gtest/gtest.h>

#include "mailreport/auth/dmarc.hpp"

namespace mailreport::auth {
namespace {

DmarcRecord parse_ok(std::string_view txt) {
  auto r = parse_dmarc_record(txt);
  EXPECT_TRUE(r.ok()) << txt << ": " << (r.ok() ? "" : r.error().describe());
  return r.ok() ? *r : DmarcRecord{};
}

TEST(DmarcRecord, ParsesEveryTag) {
  const char* txt =
      "v=DMARC1; p=reject; sp=quarantine; np=none; adkim=s; aspf=s; pct=25; t=y; psd=n; "
      "fo=1:d:s; rua=mailto:agg@example.com,mailto:agg2@example.net!10m; "
      "ruf=mailto:fail@example.com; ri=3600";
  DmarcRecord r = parse_ok(txt);
  EXPECT_EQ(r.p, Policy::Reject);
  EXPECT_EQ(r.sp, Policy::Quarantine);
  EXPECT_EQ(r.np, Policy::None);
  EXPECT_EQ(r.adkim, Alignment::Strict);
  EXPECT_EQ(r.aspf, Alignment::Strict);
  EXPECT_EQ(r.pct, 25);
  EXPECT_TRUE(r.testing);
  EXPECT_EQ(r.psd, 'n');
  EXPECT_EQ(r.fo, "1:d:s");
  ASSERT_EQ(r.rua.size(), 2u);
  EXPECT_EQ(r.rua[0], "mailto:agg@example.com");
  EXPECT_EQ(r.rua[1], "mailto:agg2@example.net!10m");  // RFC 7489 §6.4 size kept as published
  ASSERT_EQ(r.ruf.size(), 1u);
  EXPECT_EQ(r.ri, 3600u);
  EXPECT_EQ(r.text, txt);
}

TEST(DmarcRecord, Defaults) {
  // RFC 9989 §4.7: p absent → none; adkim/aspf r; fo 0; psd u; t n; RFC 7489: pct 100, ri 86400.
  DmarcRecord r = parse_ok("v=DMARC1");
  EXPECT_EQ(r.p, Policy::None);
  EXPECT_FALSE(r.sp);
  EXPECT_FALSE(r.np);
  EXPECT_EQ(r.adkim, Alignment::Relaxed);
  EXPECT_EQ(r.aspf, Alignment::Relaxed);
  EXPECT_EQ(r.pct, 100);
  EXPECT_FALSE(r.testing);
  EXPECT_EQ(r.psd, 'u');
  EXPECT_EQ(r.fo, "0");
  EXPECT_TRUE(r.rua.empty());
  EXPECT_EQ(r.ri, 86400u);
}

TEST(DmarcRecord, VersionMustComeFirstAndMatchExactly) {
  // RFC 9989 §4.7: v first, value DMARC1 case-sensitive, else the record is ignored.
  for (const char* txt :
       {"p=reject; v=DMARC1", "v=DMARC2; p=reject", "v=dmarc1; p=reject", "v=DMARC10; p=reject",
        "v=DMARC1 p=reject", "v=spf1 -all", "", "DMARC1; p=reject", "x=DMARC1; p=reject"}) {
    auto r = parse_dmarc_record(txt);
    ASSERT_FALSE(r.ok()) << txt;
    EXPECT_EQ(r.error().code, ErrorCode::NotAReport) << txt;
  }
  // RFC 9989 §4.8: equals = *WSP "=" *WSP, dmarc-sep = *WSP ";" *WSP, a trailing sep allowed.
  DmarcRecord r = parse_ok("v = DMARC1 ;\tp = reject ; ");
  EXPECT_EQ(r.p, Policy::Reject);
  EXPECT_EQ(parse_ok("V=DMARC1;p=quarantine").p, Policy::Quarantine);
}

TEST(DmarcRecord, TagNamesAndKeywordsAreCaseInsensitive) {
  DmarcRecord r = parse_ok("v=DMARC1; P=Reject; SP=QUARANTINE; ADKIM=S; T=Y");
  EXPECT_EQ(r.p, Policy::Reject);
  EXPECT_EQ(r.sp, Policy::Quarantine);
  EXPECT_EQ(r.adkim, Alignment::Strict);
  EXPECT_TRUE(r.testing);
}

TEST(DmarcRecord, UnknownTagsAndBadValuesFallBackToDefaults) {
  // RFC 9989 §4.8: unknown tags MUST be ignored; syntax errors discarded in favour of
  // defaults. rf= and ri= are RFC 7489 tags (ri kept, rf unknown now).
  DmarcRecord r = parse_ok(
      "v=DMARC1; p=quarantine; foo=bar; rf=afrf; adkim=x; aspf=; pct=150; t=maybe; psd=q; "
      "fo=2; ri=-1; garbage; 9x=1; rua=not a uri");
  EXPECT_EQ(r.p, Policy::Quarantine);
  EXPECT_EQ(r.adkim, Alignment::Relaxed);
  EXPECT_EQ(r.aspf, Alignment::Relaxed);
  EXPECT_EQ(r.pct, 100);
  EXPECT_FALSE(r.testing);
  EXPECT_EQ(r.psd, 'u');
  EXPECT_EQ(r.fo, "0");
  EXPECT_EQ(r.ri, 86400u);
  EXPECT_TRUE(r.rua.empty());
  EXPECT_EQ(parse_ok("v=DMARC1; pct=0").pct, 0);
  EXPECT_EQ(parse_ok("v=DMARC1; fo=0:1").fo, "0");  // RFC 9989: 0 and 1 exclusive
  EXPECT_EQ(parse_ok("v=DMARC1; fo=d").fo, "d");
}

TEST(DmarcRecord, FirstOfARepeatedTagWins) {
  EXPECT_EQ(parse_ok("v=DMARC1; p=none; p=reject").p, Policy::None);
}

TEST(DmarcRecord, ReportUrisKeepValidOnes) {
  DmarcRecord r = parse_ok(
      "v=DMARC1; p=none; rua = mailto:a@example.com , bogus , https://r.example/x!1k,"
      "mailto:b%2Cc@example.com");
  ASSERT_EQ(r.rua.size(), 3u);
  EXPECT_EQ(r.rua[0], "mailto:a@example.com");
  EXPECT_EQ(r.rua[1], "https://r.example/x!1k");
  EXPECT_EQ(r.rua[2], "mailto:b%2Cc@example.com");
}

TEST(DmarcRecord, InvalidPolicyWithValidRuaIsPolicyNone) {
  // RFC 9989 §4.10.1: invalid p/sp/np with at least one valid rua URI → act as p=none.
  for (const char* txt : {"v=DMARC1; p=bogus; sp=reject; rua=mailto:r@example.com",
                          "v=DMARC1; p=reject; sp=bogus; rua=mailto:r@example.com",
                          "v=DMARC1; p=reject; np=; rua=mailto:r@example.com"}) {
    DmarcRecord r = parse_ok(txt);
    EXPECT_EQ(r.p, Policy::None) << txt;
    EXPECT_FALSE(r.sp) << txt;
    EXPECT_FALSE(r.np) << txt;
    EXPECT_EQ(r.rua.size(), 1u);
  }
}

TEST(DmarcRecord, InvalidPolicyWithoutValidRuaIsInvalid) {
  for (const char* txt :
       {"v=DMARC1; p=bogus", "v=DMARC1; p=reject; np=deny", "v=DMARC1; p=; rua=not-a-uri"}) {
    auto r = parse_dmarc_record(txt);
    ASSERT_FALSE(r.ok()) << txt;
    EXPECT_EQ(r.error().code, ErrorCode::Invalid) << txt;
  }
}

}  // namespace
}  // namespace mailreport::auth

namespace mailreport::auth {
namespace {

TEST(ReportMailto, AddressHostAndSize) {
  auto m = parse_report_mailto(" mailto:Reports%2Bdmarc@Example.COM!10m ");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->address, "Reports+dmarc@example.com");
  EXPECT_EQ(m->host, "example.com");
  EXPECT_EQ(m->max_size, 10u << 20);
  m = parse_report_mailto("MAILTO:a@b.example?subject=x");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->address, "a@b.example");
  EXPECT_EQ(m->max_size, 0u);
  EXPECT_EQ(parse_report_mailto("mailto:a@b.example!1234")->max_size, 1234u);
}

TEST(ReportMailto, RefusesWhatIsNotOneMailbox) {
  EXPECT_FALSE(parse_report_mailto("https://r.example/dmarc"));
  EXPECT_FALSE(parse_report_mailto("mailto:a@b.example%2Cc@d.example"));  // two addresses
  EXPECT_FALSE(parse_report_mailto("mailto:nodomain"));
  EXPECT_FALSE(parse_report_mailto("mailto:a@localhost"));
  EXPECT_FALSE(parse_report_mailto("mailto:a b@b.example"));
  EXPECT_FALSE(parse_report_mailto("mailto:a@b.example!x"));  // '!' not followed by a size
}

}  // namespace
}  // namespace mailreport::auth

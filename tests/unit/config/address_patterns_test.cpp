// AddressPatterns: prefix, suffix and exact patterns, +tags, case, angle brackets.
#include <gtest/gtest.h>

#include "mailreport/config/config.hpp"

namespace mailreport::config {
namespace {

TEST(AddressPatterns, Prefix) {
  AddressPatterns p({"dmarc@*"});
  EXPECT_TRUE(p.matches("dmarc@example.com"));
  EXPECT_TRUE(p.matches("dmarc@other.example"));
  EXPECT_FALSE(p.matches("dmarc-reports@example.com"));
  EXPECT_FALSE(p.matches("xdmarc@example.com"));
}

TEST(AddressPatterns, Suffix) {
  AddressPatterns p({"*@reports.example.com"});
  EXPECT_TRUE(p.matches("anything@reports.example.com"));
  EXPECT_FALSE(p.matches("anything@example.com"));
  EXPECT_FALSE(p.matches("anything@reports.example.com.evil"));
}

TEST(AddressPatterns, Exact) {
  AddressPatterns p({"dmarc@example.com"});
  EXPECT_TRUE(p.matches("dmarc@example.com"));
  EXPECT_FALSE(p.matches("dmarc@example.org"));
  EXPECT_FALSE(p.matches("dmarc@example.com.org"));
}

TEST(AddressPatterns, TagIsIgnored) {
  AddressPatterns prefix({"dmarc@*"});
  AddressPatterns exact({"dmarc@example.com"});
  EXPECT_TRUE(prefix.matches("dmarc+google@example.com"));
  EXPECT_TRUE(exact.matches("dmarc+google@example.com"));
  EXPECT_TRUE(exact.matches("dmarc+a+b@example.com"));
  // A '+' in the domain is not a tag.
  EXPECT_FALSE(exact.matches("dmarc@example+x.com"));
}

TEST(AddressPatterns, CaseInsensitive) {
  AddressPatterns p({"DMARC@Example.COM", "TLSRPT@*"});
  EXPECT_EQ(p.patterns()[0], "dmarc@example.com");
  EXPECT_TRUE(p.matches("Dmarc@EXAMPLE.com"));
  EXPECT_TRUE(p.matches("TlsRpt+x@example.net"));
}

TEST(AddressPatterns, AngleBracketsAndSpaces) {
  AddressPatterns p({"dmarc@*"});
  EXPECT_TRUE(p.matches("<dmarc@example.com>"));
  EXPECT_TRUE(p.matches(" <Dmarc+x@example.com> "));
  EXPECT_FALSE(p.matches("<>"));
  EXPECT_FALSE(p.matches(""));
}

TEST(AddressPatterns, NoDomain) {
  AddressPatterns p({"postmaster"});
  EXPECT_TRUE(p.matches("<Postmaster>"));  // RFC 5321 §4.1.1.3 allows RCPT TO:<Postmaster>
  EXPECT_FALSE(AddressPatterns().matches("dmarc@example.com"));
}

TEST(AddressPatterns, Defaults) {
  const auto& p = Config::defaults()->report.analysis_addresses;
  for (const char* a : {"dmarc@example.com", "dmarc-reports@example.com", "tlsrpt@example.com",
                        "abuse@example.com", "postmaster@example.com", "DMARC+x@example.com"}) {
    EXPECT_TRUE(p.matches(a)) << a;
  }
  EXPECT_FALSE(p.matches("alice@example.com"));
}

}  // namespace
}  // namespace mailreport::config

// parse_duration, parse_size and their inverses.
#include <gtest/gtest.h>

#include "mailreport/config/config.hpp"

namespace mailreport::config {
namespace {

using std::chrono::seconds;

TEST(ParseDuration, Units) {
  EXPECT_EQ(parse_duration("30d").value(), seconds(30 * 86400));
  EXPECT_EQ(parse_duration("12h").value(), seconds(12 * 3600));
  EXPECT_EQ(parse_duration("5m").value(), seconds(300));
  EXPECT_EQ(parse_duration("90s").value(), seconds(90));
  EXPECT_EQ(parse_duration("2w").value(), seconds(14 * 86400));
  EXPECT_EQ(parse_duration("3600").value(), seconds(3600));
  EXPECT_EQ(parse_duration(" 7 d ").value(), seconds(7 * 86400));
  EXPECT_EQ(parse_duration("0").value(), seconds(0));
}

TEST(ParseDuration, Rejects) {
  for (const char* bad :
       {"", "d", "1.5h", "10y", "-5m", "5 minutes", "h5", "99999999999999999999"}) {
    EXPECT_FALSE(parse_duration(bad).ok()) << bad;
  }
  // Fits in uint64 seconds but not in a signed chrono count after scaling.
  EXPECT_FALSE(parse_duration("18446744073709551615w").ok());
  EXPECT_NE(parse_duration("10y").error().message.find("unknown unit"), std::string::npos);
}

TEST(ParseSize, Units) {
  EXPECT_EQ(parse_size("50MB").value(), 50ull << 20);
  EXPECT_EQ(parse_size("256KB").value(), 256ull << 10);
  EXPECT_EQ(parse_size("1GB").value(), 1ull << 30);
  EXPECT_EQ(parse_size("1024").value(), 1024u);
  EXPECT_EQ(parse_size("2T").value(), 2ull << 40);
  EXPECT_EQ(parse_size("8 mb").value(), 8ull << 20);
  EXPECT_EQ(parse_size("3KiB").value(), 3ull << 10);
  EXPECT_EQ(parse_size("12B").value(), 12u);
}

TEST(ParseSize, Rejects) {
  for (const char* bad :
       {"", "MB", "1.5MB", "10PB", "-1", "18446744073709551616", "17179869184GB"}) {
    EXPECT_FALSE(parse_size(bad).ok()) << bad;
  }
}

TEST(Format, RoundTrips) {
  EXPECT_EQ(format_duration(seconds(30 * 86400)), "30d");
  EXPECT_EQ(format_duration(seconds(14 * 86400)), "2w");
  EXPECT_EQ(format_duration(seconds(300)), "5m");
  EXPECT_EQ(format_duration(seconds(90)), "90s");
  EXPECT_EQ(format_duration(seconds(0)), "0s");
  EXPECT_EQ(format_size(50ull << 20), "50MB");
  EXPECT_EQ(format_size(256ull << 10), "256KB");
  EXPECT_EQ(format_size(1000), "1000");
  for (const char* d : {"30d", "12h", "5m", "90s", "2w"}) {
    EXPECT_EQ(format_duration(parse_duration(d).value()), d);
  }
}

}  // namespace
}  // namespace mailreport::config

// The keys of the reports we send in aggregate (report.dmarc.aggregate, report.tls.aggregate),
// report.suppress-after and the TLS result collector ([tlsrpt]): Stalwart's defaults, the
// computed defaults that follow report.domain, every key parsed, and each check's message.
#include <gtest/gtest.h>

#include "mailreport/config/config.hpp"

namespace mailreport::config {
namespace {

using std::chrono::seconds;

std::string dump(const std::vector<Problem>& problems) {
  std::string out;
  for (const auto& p : problems) out += p.describe() + "\n";
  return out;
}

std::shared_ptr<const Config> load_ok(std::string_view text) {
  LoadResult r = load_string(text);
  EXPECT_TRUE(r.problems.empty()) << dump(r.problems);
  return r.config;
}

// The single problem of `text`: its key, line and whether its message says `says`.
void expect_problem(std::string_view text, std::string_view key, int line, std::string_view says) {
  LoadResult r = load_string(text);
  EXPECT_FALSE(r.config) << text;
  ASSERT_EQ(r.problems.size(), 1u) << text << "\n" << dump(r.problems);
  EXPECT_EQ(r.problems[0].key, key) << text;
  EXPECT_EQ(r.problems[0].line, line) << text;
  EXPECT_NE(r.problems[0].message.find(says), std::string::npos)
      << text << ": " << r.problems[0].message;
}

TEST(AggregateConfig, StalwartDefaults) {
  auto c = load_ok("report.domain = \"example.org\"");
  ASSERT_TRUE(c);
  const AggregateReportSettings& d = c->report.dmarc_aggregate;
  EXPECT_EQ(d.from_name, "DMARC Report");
  EXPECT_EQ(d.from_address, "noreply-dmarc@example.org");
  EXPECT_EQ(d.org_name, "example.org");
  EXPECT_EQ(d.contact_info, "");
  EXPECT_EQ(d.send, AggregateFrequency::Daily);
  EXPECT_TRUE(d.sign.empty());  // rsa-/ed25519-example.org do not exist: unsigned
  EXPECT_EQ(d.max_size, 25u << 20);
  EXPECT_EQ(d.spread, seconds(3600));
  EXPECT_EQ(d.format, DmarcAggregateFormat::Rfc9990);
  const AggregateReportSettings& t = c->report.tls_aggregate;
  EXPECT_EQ(t.from_name, "TLS Report");
  EXPECT_EQ(t.from_address, "noreply-tls@example.org");
  EXPECT_EQ(t.org_name, "example.org");
  EXPECT_EQ(t.contact_info, "noreply-tls@example.org");  // RFC 8460 §4.4: required
  EXPECT_EQ(t.send, AggregateFrequency::Daily);
  EXPECT_TRUE(t.sign.empty());
  EXPECT_EQ(t.max_size, 25u << 20);
  EXPECT_EQ(t.spread, seconds(3600));
  EXPECT_EQ(c->report.suppress_after, 5u);
  EXPECT_EQ(c->tlsrpt.listen, "/run/mailreport/tlsrpt.sock");
  EXPECT_EQ(c->tlsrpt.socket_mode, 0660u);
  EXPECT_EQ(c->tlsrpt.socket_group, "");
  EXPECT_EQ(c->tlsrpt.flush_interval, seconds(5));
  EXPECT_EQ(c->tlsrpt.batch_size, 1000u);
}

TEST(AggregateConfig, DefaultsMatchTheStructsAndFollowTheHostDomain) {
  auto c = Config::defaults();
  const Config header;
  EXPECT_EQ(c->report.dmarc_aggregate.from_address, "noreply-dmarc@" + c->report.domain);
  EXPECT_EQ(c->report.dmarc_aggregate.org_name, c->report.domain);
  EXPECT_EQ(c->report.tls_aggregate.from_address, "noreply-tls@" + c->report.domain);
  for (auto [got, want] : {std::pair{&c->report.dmarc_aggregate, &header.report.dmarc_aggregate},
                           std::pair{&c->report.tls_aggregate, &header.report.tls_aggregate}}) {
    EXPECT_EQ(got->send, want->send);
    EXPECT_EQ(got->max_size, want->max_size);
    EXPECT_EQ(got->spread, want->spread);
    EXPECT_EQ(got->format, want->format);
  }
  EXPECT_EQ(c->report.suppress_after, header.report.suppress_after);
  EXPECT_EQ(c->tlsrpt.listen, header.tlsrpt.listen);
  EXPECT_EQ(c->tlsrpt.socket_mode, header.tlsrpt.socket_mode);
  EXPECT_EQ(c->tlsrpt.flush_interval, header.tlsrpt.flush_interval);
  EXPECT_EQ(c->tlsrpt.batch_size, header.tlsrpt.batch_size);
  // config_get of an unset computed key gives its default.
  auto e = load_ok(R"toml(
report.domain = "example.net"
report.dkim.subject = "config_get('report.tls.aggregate.from-address')"
)toml");
  EXPECT_EQ(e->report.dkim.subject, "noreply-tls@example.net");
}

TEST(AggregateConfig, EveryKeyIsParsed) {
  auto c = load_ok(R"toml(
[report]
domain = "example.com"
suppress-after = 0

[report.dmarc.aggregate]
from-name = "Example DMARC"
from-address = "dmarc-reports@example.com"
org-name = "Example Inc."
contact-info = "postmaster@example.com"
send = "hourly"
sign = ["rsa"]
max-size = "10MB"
spread = "30m"
format = "rfc7489"

[report.tls.aggregate]
from-name = ""
from-address = "'tls@' + config_get('report.domain')"
org-name = "config_get('report.dmarc.aggregate.org-name')"
contact-info = "https://example.com/tls"
send = "never"
sign = "['rsa']"
max-size = 1048576
spread = 0

[tlsrpt]
listen = ""
socket-mode = "0620"
socket-group = "postfix"
flush-interval = "1m"
batch-size = 50

[signature.rsa]
private-key = "/k"
domain = "example.com"
selector = "s"
)toml");
  ASSERT_TRUE(c);
  const auto& d = c->report.dmarc_aggregate;
  EXPECT_EQ(d.from_name, "Example DMARC");
  EXPECT_EQ(d.from_address, "dmarc-reports@example.com");
  EXPECT_EQ(d.org_name, "Example Inc.");
  EXPECT_EQ(d.contact_info, "postmaster@example.com");
  EXPECT_EQ(d.send, AggregateFrequency::Hourly);
  EXPECT_EQ(d.sign, std::vector<std::string>{"rsa"});
  EXPECT_EQ(d.max_size, 10u << 20);
  EXPECT_EQ(d.spread, seconds(1800));
  EXPECT_EQ(d.format, DmarcAggregateFormat::Rfc7489);
  const auto& t = c->report.tls_aggregate;
  EXPECT_EQ(t.from_name, "");
  EXPECT_EQ(t.from_address, "tls@example.com");
  EXPECT_EQ(t.org_name, "Example Inc.");
  EXPECT_EQ(t.contact_info, "https://example.com/tls");
  EXPECT_EQ(t.send, AggregateFrequency::Never);
  EXPECT_EQ(t.sign, std::vector<std::string>{"rsa"});
  EXPECT_EQ(t.max_size, 1u << 20);
  EXPECT_EQ(t.spread, seconds(0));
  EXPECT_EQ(c->report.suppress_after, 0u);
  EXPECT_EQ(c->tlsrpt.listen, "");
  EXPECT_EQ(c->tlsrpt.socket_mode, 0620u);
  EXPECT_EQ(c->tlsrpt.socket_group, "postfix");
  EXPECT_EQ(c->tlsrpt.flush_interval, seconds(60));
  EXPECT_EQ(c->tlsrpt.batch_size, 50u);
}

TEST(AggregateConfig, FalseMeansNever) {
  auto c = load_ok(R"toml(
report.dmarc.aggregate.send = false
report.tls.aggregate.send = "false"
)toml");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->report.dmarc_aggregate.send, AggregateFrequency::Never);
  EXPECT_EQ(c->report.tls_aggregate.send, AggregateFrequency::Never);
  // The spread is not bounded by an interval that does not exist.
  auto n = load_ok("report.dmarc.aggregate.send = false\nreport.dmarc.aggregate.spread = \"2w\"");
  ASSERT_TRUE(n);
  EXPECT_EQ(n->report.dmarc_aggregate.spread, seconds(14 * 86400));
}

TEST(AggregateConfig, ValueChecks) {
  expect_problem("report.dmarc.aggregate.send = true", "report.dmarc.aggregate.send", 1,
                 "true is not a frequency");
  expect_problem("report.tls.aggregate.send = true", "report.tls.aggregate.send", 1,
                 "write \"daily\", or false");
  expect_problem("\nreport.dmarc.aggregate.send = \"monthly\"", "report.dmarc.aggregate.send", 2,
                 "'monthly': must be \"hourly\", \"daily\", \"weekly\" or \"never\"");
  expect_problem("report.dmarc.aggregate.send = 1", "report.dmarc.aggregate.send", 1,
                 "must be a string, not an integer");
  // RFC 8460 §4.1: TLS reports cover a UTC day.
  expect_problem("report.tls.aggregate.send = \"hourly\"", "report.tls.aggregate.send", 1,
                 "'hourly': must be \"daily\" or \"never\" (RFC 8460 §4.1");
  expect_problem("report.tls.aggregate.send = \"weekly\"", "report.tls.aggregate.send", 1,
                 "must be \"daily\" or \"never\"");
  expect_problem("report.dmarc.aggregate.format = \"rfc9999\"", "report.dmarc.aggregate.format", 1,
                 "'rfc9999': must be \"rfc9990\" or \"rfc7489\"");
  expect_problem("report.tls.aggregate.format = \"rfc7489\"", "report.tls.aggregate.format", 1,
                 "unknown key");
  expect_problem("report.dmarc.aggregate.from-address = \"not an address\"",
                 "report.dmarc.aggregate.from-address", 1, "");
  expect_problem("report.tls.aggregate.from-name = \"a\\nb\"", "report.tls.aggregate.from-name", 1,
                 "must be one line of text");
  expect_problem("report.dmarc.aggregate.org-name = \"\"", "report.dmarc.aggregate.org-name", 1,
                 "must not be empty");
  expect_problem("report.tls.aggregate.contact-info = \"a\\tb\"",
                 "report.tls.aggregate.contact-info", 1, "must be one line of text");
  expect_problem("report.dmarc.aggregate.sign = [\"nope\"]", "report.dmarc.aggregate.sign", 1,
                 "no signature 'nope'");
  expect_problem("report.dmarc.aggregate.max-size = \"1KB\"", "report.dmarc.aggregate.max-size", 1,
                 "must be at least 4KB");
  expect_problem("report.tls.aggregate.max-size = \"lots\"", "report.tls.aggregate.max-size", 1,
                 "");
  expect_problem("report.dmarc.aggregate.send = \"hourly\"\nreport.dmarc.aggregate.spread = \"2h\"",
                 "report.dmarc.aggregate.spread", 2,
                 "must not be longer than the interval (send = \"hourly\": 1h)");
  expect_problem("report.tls.aggregate.spread = \"2d\"", "report.tls.aggregate.spread", 1,
                 "(send = \"daily\": 1d)");
  expect_problem("report.dmarc.aggregate.spread = -1", "report.dmarc.aggregate.spread", 1,
                 "must not be negative");
  expect_problem("report.suppress-after = -1", "report.suppress-after", 1,
                 "must be 0 (never suppress) or a positive integer");
  expect_problem("report.suppress-after = \"5\"", "report.suppress-after", 1, "must be an integer");
  expect_problem("report.suppress-after = 2000000", "report.suppress-after", 1,
                 "must be at most 1000000");
  expect_problem("tlsrpt.listen = \"run/tlsrpt.sock\"", "tlsrpt.listen", 1,
                 "must be an absolute path, or \"\" for no collector");
  expect_problem("tlsrpt.listen = \"/" + std::string(120, 'x') + "\"", "tlsrpt.listen", 1,
                 "is longer than a socket path may be (107)");
  expect_problem("tlsrpt.socket-mode = 660", "tlsrpt.socket-mode", 1, "write the mode in octal");
  expect_problem("tlsrpt.socket-group = \"bad group\"", "tlsrpt.socket-group", 1,
                 "'bad group' is not a group name");
  expect_problem("tlsrpt.flush-interval = 0", "tlsrpt.flush-interval", 1, "must be longer than 0s");
  expect_problem("tlsrpt.batch-size = 0", "tlsrpt.batch-size", 1, "must be a positive integer");
  expect_problem("tlsrpt.batch-size = 2000000", "tlsrpt.batch-size", 1, "must be at most 1000000");
  expect_problem("[tlsrpt]\nlisten = \"/x\"\nsocket = \"/y\"", "tlsrpt.socket", 3, "unknown key");
}

TEST(AggregateConfig, FrequencyNamesAndIntervals) {
  EXPECT_STREQ(to_string(AggregateFrequency::Never), "never");
  EXPECT_STREQ(to_string(AggregateFrequency::Hourly), "hourly");
  EXPECT_STREQ(to_string(AggregateFrequency::Daily), "daily");
  EXPECT_STREQ(to_string(AggregateFrequency::Weekly), "weekly");
  EXPECT_EQ(interval_length(AggregateFrequency::Never), seconds(0));
  EXPECT_EQ(interval_length(AggregateFrequency::Hourly), seconds(3600));
  EXPECT_EQ(interval_length(AggregateFrequency::Daily), seconds(86400));
  EXPECT_EQ(interval_length(AggregateFrequency::Weekly), seconds(7 * 86400));
  EXPECT_STREQ(to_string(DmarcAggregateFormat::Rfc9990), "rfc9990");
  EXPECT_STREQ(to_string(DmarcAggregateFormat::Rfc7489), "rfc7489");
}

}  // namespace
}  // namespace mailreport::config

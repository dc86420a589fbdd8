// The failure-report keys (report.dmarc|dkim|spf, report.dsn, report.failure, report.submit)
// and the signing keys (signature.<id>): Stalwart's defaults, every key parsed, the checks and
// their messages, and parse_rate_limit.
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

constexpr std::string_view kRsaSignature = R"toml(
[signature."rsa-example.com"]
private-key = "/etc/mailreport/rsa.key"
domain = "example.com"
selector = "mr2024"
)toml";

TEST(ReportConfig, StalwartDefaults) {
  auto c = load_ok("report.domain = \"example.org\"");
  ASSERT_TRUE(c);
  struct Want {
    const FailureReportSettings* got;
    const char* address;
    const char* subject;
  };
  for (const Want& w : {
           Want{&c->report.dmarc, "noreply-dmarc@example.org",
                "DMARC Authentication Failure Report"},
           Want{&c->report.dkim, "noreply-dkim@example.org", "DKIM Authentication Failure Report"},
           Want{&c->report.spf, "noreply-spf@example.org", "SPF Authentication Failure Report"},
       }) {
    EXPECT_EQ(w.got->from_name, "Report Subsystem");
    EXPECT_EQ(w.got->from_address, w.address);
    EXPECT_EQ(w.got->subject, w.subject);
    // ['rsa-example.org', 'ed25519-example.org'], neither of which exists: unsigned.
    EXPECT_TRUE(w.got->sign.empty());
    ASSERT_TRUE(w.got->send.has_value());
    EXPECT_EQ(w.got->send->count, 1u);
    EXPECT_EQ(w.got->send->period, seconds(86400));
  }
  EXPECT_EQ(c->report.dsn.from_name, "");
  EXPECT_EQ(c->report.dsn.from_address, "");
  EXPECT_TRUE(c->report.dsn.sign.empty());
  EXPECT_EQ(c->report.failure.include, FailureOriginal::Headers);
  EXPECT_EQ(c->report.failure.max_original, 64u << 10);
  EXPECT_FALSE(c->report.failure.redact);
  EXPECT_EQ(c->report.failure.redact_key, "");
  EXPECT_EQ(c->report.submit.method, SubmitMethod::Sendmail);
  EXPECT_EQ(c->report.submit.sendmail_path, "/usr/sbin/sendmail");
  EXPECT_EQ(c->report.submit.smtp_url, "smtp://127.0.0.1:25");
  EXPECT_EQ(c->report.submit.timeout, seconds(60));
  EXPECT_EQ(c->report.submit.max_age, seconds(3 * 86400));
  EXPECT_TRUE(c->signatures.empty());
  // The defaults are what config_get sees.
  auto d = load_ok(R"toml(
report.domain = "example.org"
report.dmarc.subject = "config_get('report.spf.from-address') + ' ' + config_get('report.dkim.subject')"
)toml");
  EXPECT_EQ(d->get("report.dmarc.subject"),
            "noreply-spf@example.org DKIM Authentication Failure Report");
}

TEST(ReportConfig, DefaultsFollowTheHostDomainAndMatchTheStructs) {
  auto c = Config::defaults();
  EXPECT_EQ(c->report.dmarc.from_address, "noreply-dmarc@" + c->report.domain);
  const Config header;
  EXPECT_EQ(c->report.dmarc.from_name, header.report.dmarc.from_name);
  EXPECT_EQ(c->report.failure.include, header.report.failure.include);
  EXPECT_EQ(c->report.failure.max_original, header.report.failure.max_original);
  EXPECT_EQ(c->report.submit.sendmail_path, header.report.submit.sendmail_path);
  EXPECT_EQ(c->report.submit.smtp_url, header.report.submit.smtp_url);
  EXPECT_EQ(c->report.submit.timeout, header.report.submit.timeout);
  EXPECT_EQ(c->report.submit.max_age, header.report.submit.max_age);
  EXPECT_EQ(c->report.spf.send->count, header.report.spf.send->count);
  EXPECT_EQ(c->report.spf.send->period, header.report.spf.send->period);
}

TEST(ReportConfig, EveryKeyIsParsed) {
  auto c = load_ok(std::string(kRsaSignature) + R"toml(
[signature.ed]
private-key = "/etc/mailreport/ed.key"
domain = "reports.example.com"
selector = "ed.2024"
algorithm = "ed25519-sha256"
headers = ["From", "Subject", "Date"]
canonicalization = "simple/relaxed"

[report]
domain = "example.com"

[report.dmarc]
from-name = "DMARC Reports"
from-address = "dmarc-noreply@reports.example.com"
subject = "DMARC failure"
sign = ["ed", "'rsa-' + config_get('report.domain')"]
send = "10/12h"

[report.dkim]
sign = "['rsa-' + config_get('report.domain'), 'ed']"
send = "[2, 1h]"

[report.spf]
from-name = ""
sign = []
send = false

[report.dsn]
from-name = "Mail Delivery System"
from-address = "mailer-daemon@example.com"
sign = ["rsa-example.com"]

[report.failure]
include = "message"
max-original = "1MB"
redact = true
redact-key = "0123456789abcdef0123"

[report.submit]
method = "smtp"
sendmail-path = "/usr/lib/sendmail"
smtp-url = "smtps://relay.example.com:465"
timeout = "2m"
max-age = "1d"
)toml");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->report.dmarc.from_name, "DMARC Reports");
  EXPECT_EQ(c->report.dmarc.from_address, "dmarc-noreply@reports.example.com");
  EXPECT_EQ(c->report.dmarc.subject, "DMARC failure");
  EXPECT_EQ(c->report.dmarc.sign, (std::vector<std::string>{"ed", "rsa-example.com"}));
  ASSERT_TRUE(c->report.dmarc.send);
  EXPECT_EQ(c->report.dmarc.send->count, 10u);
  EXPECT_EQ(c->report.dmarc.send->period, seconds(12 * 3600));

  EXPECT_EQ(c->report.dkim.from_address, "noreply-dkim@example.com");
  EXPECT_EQ(c->report.dkim.sign, (std::vector<std::string>{"rsa-example.com", "ed"}));
  ASSERT_TRUE(c->report.dkim.send);
  EXPECT_EQ(c->report.dkim.send->count, 2u);
  EXPECT_EQ(c->report.dkim.send->period, seconds(3600));

  EXPECT_EQ(c->report.spf.from_name, "");
  EXPECT_TRUE(c->report.spf.sign.empty());
  EXPECT_FALSE(c->report.spf.send.has_value());

  EXPECT_EQ(c->report.dsn.from_name, "Mail Delivery System");
  EXPECT_EQ(c->report.dsn.from_address, "mailer-daemon@example.com");
  EXPECT_EQ(c->report.dsn.sign, (std::vector<std::string>{"rsa-example.com"}));

  EXPECT_EQ(c->report.failure.include, FailureOriginal::Message);
  EXPECT_EQ(c->report.failure.max_original, 1u << 20);
  EXPECT_TRUE(c->report.failure.redact);
  EXPECT_EQ(c->report.failure.redact_key, "0123456789abcdef0123");

  EXPECT_EQ(c->report.submit.method, SubmitMethod::Smtp);
  EXPECT_EQ(c->report.submit.sendmail_path, "/usr/lib/sendmail");
  EXPECT_EQ(c->report.submit.smtp_url, "smtps://relay.example.com:465");
  EXPECT_EQ(c->report.submit.timeout, seconds(120));
  EXPECT_EQ(c->report.submit.max_age, seconds(86400));

  ASSERT_EQ(c->signatures.size(), 2u);
  const SignatureConfig& rsa = c->signatures.at("rsa-example.com");
  EXPECT_EQ(rsa.id, "rsa-example.com");
  EXPECT_EQ(rsa.private_key, "/etc/mailreport/rsa.key");
  EXPECT_EQ(rsa.domain, "example.com");
  EXPECT_EQ(rsa.selector, "mr2024");
  EXPECT_EQ(rsa.algorithm, "rsa-sha256");
  EXPECT_EQ(rsa.headers,
            (std::vector<std::string>{"From", "To", "Cc", "Subject", "Date", "Message-ID",
                                      "In-Reply-To", "References", "MIME-Version", "Content-Type",
                                      "Content-Transfer-Encoding", "Auto-Submitted",
                                      "TLS-Report-Domain", "TLS-Report-Submitter"}));
  EXPECT_EQ(rsa.canonicalization, "relaxed/relaxed");
  const SignatureConfig& ed = c->signatures.at("ed");
  EXPECT_EQ(ed.algorithm, "ed25519-sha256");
  EXPECT_EQ(ed.selector, "ed.2024");
  EXPECT_EQ(ed.headers, (std::vector<std::string>{"From", "Subject", "Date"}));
  EXPECT_EQ(ed.canonicalization, "simple/relaxed");

  // Signature keys are in raw under their dotted names, and config_get reaches them.
  EXPECT_EQ(c->get("signature.rsa-example.com.selector"), "mr2024");
  EXPECT_EQ(c->get("report.spf.send"), "false");
  EXPECT_EQ(c->get("report.dkim.sign"), "[ 'rsa-example.com', 'ed' ]");
}

TEST(ReportConfig, TheDefaultSignListKeepsTheIdsThatExist) {
  auto c = load_ok(std::string("report.domain = \"example.com\"\n") + std::string(kRsaSignature));
  ASSERT_TRUE(c);
  // ['rsa-example.com', 'ed25519-example.com']: only the RSA key is configured.
  for (const auto* f : {&c->report.dmarc, &c->report.dkim, &c->report.spf}) {
    EXPECT_EQ(f->sign, (std::vector<std::string>{"rsa-example.com"}));
  }
  EXPECT_TRUE(c->report.dsn.sign.empty());  // DSNs are left alone unless asked
  // Writing the default out changes nothing.
  auto d = load_ok(std::string(kRsaSignature) + R"toml(
[report]
domain = "example.com"
[report.dmarc]
sign = ["'rsa-' + config_get('report.domain')", "'ed25519-' + config_get('report.domain')"]
[report.spf]
sign = "['rsa-' + config_get('report.domain'), 'ed25519-' + config_get('report.domain')]"
)toml");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->report.dmarc.sign, (std::vector<std::string>{"rsa-example.com"}));
  EXPECT_EQ(d->report.spf.sign, (std::vector<std::string>{"rsa-example.com"}));
}

TEST(ReportConfig, AnExplicitIdMustExist) {
  expect_problem("report.domain = \"example.com\"\n[report.dkim]\nsign = [\"rsa\"]\n",
                 "report.dkim.sign", 3, "no signature 'rsa'");
  LoadResult r = load_string("[report.dsn]\nsign = [\n  \"a\",\n  \"b\",\n]\n");
  ASSERT_EQ(r.problems.size(), 2u) << dump(r.problems);
  EXPECT_EQ(r.problems[0].line, 3);
  EXPECT_EQ(r.problems[1].line, 4);
  expect_problem(std::string(kRsaSignature) + "[report.spf]\nsign = \"rsa-example.org\"\n",
                 "report.spf.sign", 7, "no signature 'rsa-example.org'");
  expect_problem("report.dmarc.sign = \"['a',, 'b']\"", "report.dmarc.sign", 1, "empty element");
  expect_problem("report.dmarc.sign = 5", "report.dmarc.sign", 1, "array of signature ids");
  expect_problem("report.dmarc.sign = [5]", "report.dmarc.sign", 1, "array of strings");
}

TEST(ReportConfig, SendRates) {
  auto c = load_ok(R"toml(
report.dmarc.send = "false"
report.dkim.send = "'3/' + '1w'"
report.spf.send = " 7 / 90s "
)toml");
  EXPECT_FALSE(c->report.dmarc.send);
  ASSERT_TRUE(c->report.dkim.send);
  EXPECT_EQ(c->report.dkim.send->count, 3u);
  EXPECT_EQ(c->report.dkim.send->period, seconds(7 * 86400));
  EXPECT_EQ(c->report.spf.send->count, 7u);
  EXPECT_EQ(c->report.spf.send->period, seconds(90));

  expect_problem("report.dmarc.send = true", "report.dmarc.send", 1, "true is not a rate");
  expect_problem("report.dmarc.send = 5", "report.dmarc.send", 1, "must be a rate");
  expect_problem("report.dmarc.send = \"0/1d\"", "report.dmarc.send", 1, "at least 1");
  expect_problem("report.dkim.send = \"1/0s\"", "report.dkim.send", 1, "longer than 0s");
  expect_problem("report.spf.send = \"daily\"", "report.spf.send", 1, "not a rate");
  expect_problem("report.spf.send = \"1/1y\"", "report.spf.send", 1, "unknown unit");
}

TEST(ReportConfig, ValueChecks) {
  struct Case {
    const char* text;
    const char* key;
    const char* says;
  };
  for (const Case& c : {
           Case{"report.dmarc.from-address = \"noreply\"", "report.dmarc.from-address",
                "not a mail address"},
           Case{"report.dkim.from-address = \"a b@example.com\"", "report.dkim.from-address",
                "may not contain"},
           Case{"report.spf.from-address = \"x@-bad-\"", "report.spf.from-address",
                "not a domain name"},
           Case{"report.dsn.from-address = \"<x@example.com>\"", "report.dsn.from-address",
                "may not contain '<'"},
           Case{"report.dmarc.subject = \"\"", "report.dmarc.subject", "must not be empty"},
           Case{"report.dmarc.subject = \"a\\nBcc: x@example.com\"", "report.dmarc.subject",
                "one line"},
           Case{"report.dkim.from-name = \"a\\r\\nb\"", "report.dkim.from-name", "one line"},
           Case{"report.failure.include = \"body\"", "report.failure.include",
                "must be \"headers\" or \"message\""},
           Case{"report.failure.max-original = 100", "report.failure.max-original", "at least 1KB"},
           Case{"report.failure.redact = true", "report.failure.redact", "at least 16"},
           Case{"report.submit.method = \"lmtp\"", "report.submit.method",
                "must be \"sendmail\" or \"smtp\""},
           Case{"report.submit.sendmail-path = \"sendmail\"", "report.submit.sendmail-path",
                "absolute"},
           Case{"report.submit.smtp-url = \"http://relay\"", "report.submit.smtp-url",
                "smtp://HOST"},
           Case{"report.submit.smtp-url = \"smtp://\"", "report.submit.smtp-url", "smtp://HOST"},
           Case{"report.submit.timeout = 0", "report.submit.timeout", "longer than 0s"},
           Case{"report.submit.max-age = \"0d\"", "report.submit.max-age", "longer than 0s"},
           Case{"report.dmarc.from = \"x\"", "report.dmarc.from", "unknown key"},
           Case{"report.dkim.subjet = \"x\"", "report.dkim.subjet",
                "did you mean report.dkim.subject?"},
       }) {
    LoadResult r = load_string(c.text);
    ASSERT_EQ(r.problems.size(), 1u) << c.text << "\n" << dump(r.problems);
    EXPECT_EQ(r.problems[0].key, c.key) << c.text;
    EXPECT_EQ(r.problems[0].line, 1) << c.text;
    EXPECT_NE(r.problems[0].message.find(c.says), std::string::npos)
        << c.text << ": " << r.problems[0].message;
  }
  // A short key is refused where it is written.
  expect_problem("[report.failure]\nredact = true\nredact-key = \"short\"\n",
                 "report.failure.redact-key", 3, "at least 16");
  // Without redact the key is not checked.
  EXPECT_TRUE(load_ok("report.failure.redact-key = \"x\""));
}

TEST(ReportConfig, SignatureChecks) {
  expect_problem("[signature.a]\ndomain = \"example.com\"\nselector = \"s\"\n",
                 "signature.a.private-key", 1, "missing");
  {
    LoadResult r = load_string("[signature.empty]\n");
    ASSERT_EQ(r.problems.size(), 3u) << dump(r.problems);
    EXPECT_EQ(r.problems[0].key, "signature.empty.private-key");
    EXPECT_EQ(r.problems[1].key, "signature.empty.domain");
    EXPECT_EQ(r.problems[2].key, "signature.empty.selector");
  }
  const std::string base =
      "[signature.a]\nprivate-key = \"/k\"\ndomain = \"example.com\"\nselector = \"s\"\n";
  expect_problem(base + "algorithm = \"rsa-sha1\"\n", "signature.a.algorithm", 5,
                 "\"rsa-sha256\" or \"ed25519-sha256\"");
  expect_problem(base + "canonicalization = \"relaxed/nowsp\"\n", "signature.a.canonicalization", 5,
                 "simple");
  expect_problem(base + "headers = [\"To\", \"Subject\"]\n", "signature.a.headers", 5,
                 "must include From");
  expect_problem(base + "headers = [\"From\", \"Bad Name\"]\n", "signature.a.headers", 5,
                 "not a header field name");
  expect_problem(base + "key-file = \"/k\"\n", "signature.a.key-file", 5, "unknown key");
  expect_problem(base + "private-key = \"\"\n", "", 5, "");  // a duplicate key: TOML's error
  expect_problem("[signature.a]\nprivate-key = \"\"\ndomain = \"example.com\"\nselector = \"s\"\n",
                 "signature.a.private-key", 2, "must not be empty");
  expect_problem(
      "[signature.a]\nprivate-key = \"/k\"\ndomain = \"example..com\"\nselector = \"s\"\n",
      "signature.a.domain", 3, "not a domain name");
  expect_problem(
      "[signature.a]\nprivate-key = \"/k\"\ndomain = \"example.com\"\nselector = \"a b\"\n",
      "signature.a.selector", 4, "not a DKIM selector");
  expect_problem("signature = 5", "signature", 1, "must be a table");
  expect_problem("signature.a = \"x\"", "signature.a", 1, "must be a table");
  // "relaxed" alone means relaxed/simple (RFC 6376 §3.5: the body defaults to simple).
  auto c = load_ok(base + "canonicalization = \"Relaxed\"\nheaders = [\"from\"]\n");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->signatures.at("a").canonicalization, "relaxed/simple");
  // The key file is not looked at here (mailreport serve reads it at start).
  EXPECT_EQ(c->signatures.at("a").private_key, "/k");
}

TEST(ReportConfig, FailureAndAggregateSendAreSeparateKeys) {
  auto c = load_ok(R"toml(
[report.dmarc]
send = "2/1d"
[report.dmarc.aggregate]
send = "weekly"
)toml");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->report.dmarc.send->count, 2u);
  EXPECT_EQ(c->report.dmarc_aggregate.send, AggregateFrequency::Weekly);
  EXPECT_EQ(c->get("report.dmarc.aggregate.send"), "weekly");
}

TEST(ReportConfig, ParseRateLimit) {
  auto r = parse_rate_limit("1/1d");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->count, 1u);
  EXPECT_EQ(r->period, seconds(86400));
  r = parse_rate_limit("[10, 12h]");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->count, 10u);
  EXPECT_EQ(r->period, seconds(12 * 3600));
  r = parse_rate_limit("5/3600");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->period, seconds(3600));
  for (const char* bad : {"", "1", "/1d", "1/", "x/1d", "1.5/1d", "0/1d", "1/0", "-1/1d",
                          "4294967296/1d", "[1 1d]", "1/1d/2"}) {
    EXPECT_FALSE(parse_rate_limit(bad).ok()) << bad;
  }
}

TEST(ReportConfig, EnumNames) {
  EXPECT_STREQ(to_string(FailureOriginal::Headers), "headers");
  EXPECT_STREQ(to_string(FailureOriginal::Message), "message");
  EXPECT_STREQ(to_string(SubmitMethod::Sendmail), "sendmail");
  EXPECT_STREQ(to_string(SubmitMethod::Smtp), "smtp");
}

}  // namespace
}  // namespace mailreport::config

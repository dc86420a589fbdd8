// The configuration loader: defaults, every key, expressions, problems with their lines,
// unknown and reserved keys, and the shipped conf/mailreport.toml.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "mailreport/config/config.hpp"
#include "testsupport.hpp"

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
  EXPECT_TRUE(r.config);
  return r.config;
}

std::vector<Problem> load_bad(std::string_view text) {
  LoadResult r = load_string(text);
  EXPECT_FALSE(r.config);
  EXPECT_FALSE(r.problems.empty());
  return r.problems;
}

// The one problem of `text`, which must have exactly one.
Problem one_problem(std::string_view text) {
  auto problems = load_bad(text);
  EXPECT_EQ(problems.size(), 1u) << dump(problems);
  return problems.empty() ? Problem{} : problems.front();
}

bool mentions(const Problem& p, std::string_view needle) {
  return p.message.find(needle) != std::string::npos;
}

TEST(ConfigDefaults, EmptyFileGivesDefaults) {
  auto c = load_ok("");
  EXPECT_EQ(c->store.type, "sqlite");
  EXPECT_EQ(c->store.path, "/var/lib/mailreport/mailreport.db");
  EXPECT_EQ(c->report.analysis_retention, seconds(30 * 86400));
  EXPECT_EQ(c->report.analysis_addresses.patterns(),
            (std::vector<std::string>{"dmarc@*", "dmarc-reports@*", "tlsrpt@*", "abuse@*",
                                      "postmaster@*"}));
  EXPECT_EQ(c->lmtp.unix_socket, "/run/mailreport/lmtp.sock");
  EXPECT_EQ(c->lmtp.unix_socket_mode, 0660u);
  EXPECT_EQ(c->lmtp.tcp, "");
  EXPECT_FALSE(c->lmtp.allow_non_loopback);
  EXPECT_EQ(c->lmtp.max_connections, 32u);
  EXPECT_EQ(c->lmtp.idle_timeout, seconds(300));
  EXPECT_EQ(c->lmtp.data_timeout, seconds(600));
  EXPECT_EQ(c->lmtp.spool_dir, "/var/lib/mailreport");
  EXPECT_EQ(c->lmtp.hostname, c->report.submitter);
  EXPECT_EQ(c->limits.message_size, 50ull << 20);
  EXPECT_EQ(c->limits.decompressed_size, 256ull << 20);
  EXPECT_EQ(c->limits.compression_ratio, 200.0);
  EXPECT_EQ(c->limits.line_length, 65536u);
  EXPECT_EQ(c->limits.command_line_length, 4096u);
  EXPECT_EQ(c->log.level, LogLevel::Info);
  EXPECT_TRUE(c->raw.empty());
  EXPECT_FALSE(c->get("store.path").has_value());  // not set in the file
}

TEST(ConfigDefaults, MatchTheStructDefaults) {
  // The header's initialisers and the loader's key table must agree.
  const Config header;
  auto c = Config::defaults();
  EXPECT_EQ(c->store.type, header.store.type);
  EXPECT_EQ(c->store.path, header.store.path);
  EXPECT_EQ(c->report.analysis_retention, header.report.analysis_retention);
  EXPECT_EQ(c->lmtp.unix_socket, header.lmtp.unix_socket);
  EXPECT_EQ(c->lmtp.unix_socket_mode, header.lmtp.unix_socket_mode);
  EXPECT_EQ(c->lmtp.max_connections, header.lmtp.max_connections);
  EXPECT_EQ(c->lmtp.idle_timeout, header.lmtp.idle_timeout);
  EXPECT_EQ(c->lmtp.data_timeout, header.lmtp.data_timeout);
  EXPECT_EQ(c->limits.message_size, header.limits.message_size);
  EXPECT_EQ(c->limits.decompressed_size, header.limits.decompressed_size);
  EXPECT_EQ(c->limits.compression_ratio, header.limits.compression_ratio);
  EXPECT_EQ(c->limits.line_length, header.limits.line_length);
  EXPECT_EQ(c->limits.command_line_length, header.limits.command_line_length);
  EXPECT_EQ(c->log.level, header.log.level);
  EXPECT_EQ(c->source, "");
  EXPECT_EQ(Config::defaults(), c);  // built once
}

TEST(ConfigDefaults, DomainAndSubmitterComeFromTheHostName) {
  auto c = Config::defaults();
  char buf[256] = {};
  ASSERT_EQ(gethostname(buf, sizeof buf - 1), 0);
  std::string host(buf);
  for (char& ch : host) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  ASSERT_FALSE(c->report.submitter.empty());
  ASSERT_FALSE(c->report.domain.empty());
  if (host.find('.') != std::string::npos) {
    EXPECT_EQ(c->report.submitter, host);
  } else {  // the canonical name when the resolver knows one, else the plain name
    EXPECT_TRUE(c->report.submitter == host || c->report.submitter.starts_with(host + "."))
        << c->report.submitter;
  }
  const auto dot = c->report.submitter.find('.');
  EXPECT_EQ(c->report.domain,
            dot == std::string::npos ? c->report.submitter : c->report.submitter.substr(dot + 1));
}

TEST(ConfigKeys, EveryKeyIsParsed) {
  auto c = load_ok(R"toml(
[report]
domain = "example.com"
submitter = "mx1.example.com"

[report.analysis]
addresses = ["dmarc@example.com", "*@reports.example.com"]
store = "2w"

[store]
type = "sqlite"
path = "/srv/mailreport/reports.db"

[lmtp]
hostname = "lmtp.example.com"
unix-socket = "/run/mr/lmtp.sock"
unix-socket-mode = "0600"
unix-socket-owner = "mailreport"
unix-socket-group = "postfix"
tcp = "[::1]:2424"
allow-non-loopback = false
max-connections = 8
idle-timeout = "90s"
data-timeout = 1200
spool-dir = "/var/spool/mailreport"
user = "mailreport"

[limits]
message-size = "10MB"
decompressed-size = 1073741824
compression-ratio = 50.5
line-length = "128KB"
command-line-length = 2048

[log]
level = "debug"
)toml");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->report.domain, "example.com");
  EXPECT_EQ(c->report.submitter, "mx1.example.com");
  EXPECT_EQ(c->report.analysis_addresses.patterns(),
            (std::vector<std::string>{"dmarc@example.com", "*@reports.example.com"}));
  EXPECT_EQ(c->report.analysis_retention, seconds(14 * 86400));
  EXPECT_EQ(c->store.path, "/srv/mailreport/reports.db");
  EXPECT_EQ(c->lmtp.hostname, "lmtp.example.com");
  EXPECT_EQ(c->lmtp.unix_socket, "/run/mr/lmtp.sock");
  EXPECT_EQ(c->lmtp.unix_socket_mode, 0600u);
  EXPECT_EQ(c->lmtp.unix_socket_owner, "mailreport");
  EXPECT_EQ(c->lmtp.unix_socket_group, "postfix");
  EXPECT_EQ(c->lmtp.tcp, "[::1]:2424");
  EXPECT_EQ(c->lmtp.max_connections, 8u);
  EXPECT_EQ(c->lmtp.idle_timeout, seconds(90));
  EXPECT_EQ(c->lmtp.data_timeout, seconds(1200));
  EXPECT_EQ(c->lmtp.spool_dir, "/var/spool/mailreport");
  EXPECT_EQ(c->lmtp.user, "mailreport");
  EXPECT_EQ(c->limits.message_size, 10ull << 20);
  EXPECT_EQ(c->limits.decompressed_size, 1ull << 30);
  EXPECT_EQ(c->limits.compression_ratio, 50.5);
  EXPECT_EQ(c->limits.line_length, 128u << 10);
  EXPECT_EQ(c->limits.command_line_length, 2048u);
  EXPECT_EQ(c->log.level, LogLevel::Debug);
  EXPECT_EQ(c->source, "<string>");
  // raw holds every key of the file, numbers and booleans as text.
  EXPECT_EQ(c->get("report.domain"), "example.com");
  EXPECT_EQ(c->get("lmtp.max-connections"), "8");
  EXPECT_EQ(c->get("lmtp.allow-non-loopback"), "false");
  EXPECT_EQ(c->get("lmtp.data-timeout"), "1200");
  EXPECT_EQ(c->raw.size(), 24u);
}

TEST(ConfigKeys, DottedKeysAndDerivedDefaults) {
  auto c = load_ok(
      "report.submitter = \"mx9.example.net\"\n"
      "store.path = \"/data/m.db\"\n");
  EXPECT_EQ(c->lmtp.hostname, "mx9.example.net");  // defaults to report.submitter
  EXPECT_EQ(c->lmtp.spool_dir, "/data");           // defaults to the store's directory
}

TEST(ConfigKeys, LogLevels) {
  EXPECT_EQ(load_ok("log.level = \"warning\"")->log.level, LogLevel::Warning);
  EXPECT_EQ(load_ok("log.level = \"error\"")->log.level, LogLevel::Error);
  EXPECT_EQ(load_ok("log.level = \"info\"")->log.level, LogLevel::Info);
  Problem p = one_problem("log.level = \"loud\"");
  EXPECT_EQ(p.key, "log.level");
  EXPECT_TRUE(mentions(p, "debug, info, warning or error"));
}

TEST(ConfigKeys, ModeAsTomlOctalInteger) {
  EXPECT_EQ(load_ok("lmtp.unix-socket-mode = 0o640")->lmtp.unix_socket_mode, 0640u);
  EXPECT_EQ(load_ok("lmtp.unix-socket-mode = \"660\"")->lmtp.unix_socket_mode, 0660u);
  EXPECT_TRUE(mentions(one_problem("lmtp.unix-socket-mode = 660"), "octal"));
  EXPECT_TRUE(mentions(one_problem("lmtp.unix-socket-mode = \"0690\""), "octal"));
  EXPECT_TRUE(mentions(one_problem("lmtp.unix-socket-mode = \"4755\""), "0777"));
}

TEST(ConfigKeys, LmtpTcpMustBeLoopback) {
  EXPECT_EQ(load_ok("lmtp.tcp = \"127.0.0.1:2424\"")->lmtp.tcp, "127.0.0.1:2424");
  EXPECT_EQ(load_ok("lmtp.tcp = \"localhost:24\"")->lmtp.tcp, "localhost:24");
  EXPECT_EQ(load_ok("lmtp.tcp = \"[::1]:2424\"")->lmtp.tcp, "[::1]:2424");
  EXPECT_EQ(load_ok("lmtp.tcp = \"\"")->lmtp.tcp, "");

  Problem p = one_problem("[lmtp]\ntcp = \"192.0.2.1:2424\"\n");
  EXPECT_EQ(p.key, "lmtp.tcp");
  EXPECT_EQ(p.line, 2);
  EXPECT_TRUE(mentions(p, "loopback"));
  EXPECT_TRUE(mentions(p, "allow-non-loopback"));
  EXPECT_TRUE(mentions(one_problem("lmtp.tcp = \"[2001:db8::1]:2424\""), "loopback"));
  EXPECT_TRUE(mentions(one_problem("lmtp.tcp = \"mx.example.com:2424\""), "loopback"));

  auto c = load_ok("[lmtp]\ntcp = \"0.0.0.0:2424\"\nallow-non-loopback = true\n");
  EXPECT_EQ(c->lmtp.tcp, "0.0.0.0:2424");
  EXPECT_TRUE(c->lmtp.allow_non_loopback);
  // Port 0: any free port (tests, the demo's fallback).
  EXPECT_EQ(load_ok("[lmtp]\ntcp = \"127.0.0.1:0\"\n")->lmtp.tcp, "127.0.0.1:0");

  for (const char* bad : {"127.0.0.1", "127.0.0.1:65536", "::1:2424", "[::1]2424", "[nope]:24",
                          "127.0.0.1:http", "bad_host:24"}) {
    LoadResult r = load_string(std::string("lmtp.tcp = \"") + bad + "\"");
    EXPECT_FALSE(r.config) << bad;
    ASSERT_EQ(r.problems.size(), 1u) << bad << "\n" << dump(r.problems);
    EXPECT_EQ(r.problems[0].key, "lmtp.tcp");
  }
}

TEST(ConfigKeys, StoreType) {
  Problem p = one_problem("[store]\ntype = \"postgresql\"\n");
  EXPECT_EQ(p.key, "store.type");
  EXPECT_EQ(p.line, 2);
  EXPECT_TRUE(mentions(p, "needs store.url or store.url-file"));
  EXPECT_EQ(one_problem("store.type = \"mysql\"").key, "store.type");
}

TEST(ConfigKeys, ValueChecks) {
  struct Case {
    const char* text;
    const char* key;
    const char* says;
  };
  for (const Case& c : {
           Case{"lmtp.max-connections = 0", "lmtp.max-connections", "must be a positive integer"},
           Case{"lmtp.max-connections = -3", "lmtp.max-connections", "positive"},
           Case{"lmtp.max-connections = 100000", "lmtp.max-connections", "at most"},
           Case{"lmtp.idle-timeout = \"0s\"", "lmtp.idle-timeout", "longer than 0s"},
           Case{"lmtp.data-timeout = \"ten minutes\"", "lmtp.data-timeout", "duration"},
           Case{"lmtp.unix-socket = \"run/lmtp.sock\"", "lmtp.unix-socket", "absolute"},
           Case{"lmtp.user = \"root user\"", "lmtp.user", "user or group name"},
           Case{"lmtp.unix-socket-group = \"-x\"", "lmtp.unix-socket-group", "user or group"},
           Case{"limits.message-size = 0", "limits.message-size", "larger than 0"},
           Case{"limits.message-size = -1", "limits.message-size", "negative"},
           Case{"limits.message-size = \"50XB\"", "limits.message-size", "unknown unit"},
           Case{"limits.compression-ratio = 0.5", "limits.compression-ratio", "at least 1"},
           Case{"limits.line-length = 999", "limits.line-length", "RFC 5321"},
           Case{"limits.command-line-length = 100", "limits.command-line-length", "512"},
           Case{"report.domain = \"-bad-.example\"", "report.domain", "not a domain name"},
           Case{"report.submitter = \"a..b\"", "report.submitter", "not a host name"},
           Case{"report.analysis.store = \"0d\"", "report.analysis.store", "longer than 0s"},
           Case{"report.analysis.addresses = []", "report.analysis.addresses", "at least one"},
           Case{"report.analysis.addresses = [\"dm*rc@x\"]", "report.analysis.addresses",
                "start or the end"},
           Case{"report.analysis.addresses = [\"dmarc+x@*\"]", "report.analysis.addresses",
                "never matches"},
           Case{"store.path = \"\"", "store.path", "empty"},
       }) {
    LoadResult r = load_string(c.text);
    ASSERT_EQ(r.problems.size(), 1u) << c.text << "\n" << dump(r.problems);
    EXPECT_EQ(r.problems[0].key, c.key) << c.text;
    EXPECT_EQ(r.problems[0].line, 1) << c.text;
    EXPECT_TRUE(mentions(r.problems[0], c.says)) << c.text << ": " << r.problems[0].message;
  }
}

TEST(ConfigKeys, WrongTypes) {
  struct Case {
    const char* text;
    const char* says;
  };
  for (const Case& c : {
           Case{"report.domain = 5", "must be a string, not an integer"},
           Case{"lmtp.max-connections = \"32\"", "must be an integer, not a string"},
           Case{"lmtp.allow-non-loopback = \"yes\"", "must be true or false"},
           Case{"limits.message-size = true", "must be a size"},
           Case{"lmtp.idle-timeout = 1.5", "must be a duration"},
           Case{"limits.compression-ratio = \"200\"", "must be a number"},
           Case{"report.analysis.addresses = \"dmarc@*\"", "must be an array of strings"},
           Case{"report.analysis.addresses = [\"dmarc@*\", 5]", "array of strings"},
           Case{"store.path = 1979-05-27", "not a date/time"},
           Case{"report = 5", "must be a table"},
       }) {
    LoadResult r = load_string(c.text);
    ASSERT_EQ(r.problems.size(), 1u) << c.text << "\n" << dump(r.problems);
    EXPECT_TRUE(mentions(r.problems[0], c.says)) << c.text << ": " << r.problems[0].message;
  }
}

TEST(ConfigExpressions, Literal) {
  auto c = load_ok("report.domain = \"'example.org'\"");
  EXPECT_EQ(c->report.domain, "example.org");
  EXPECT_EQ(c->get("report.domain"), "example.org");
}

TEST(ConfigExpressions, Concatenation) {
  auto c = load_ok("report.dmarc.subject = \"'a' + 'b'+'c'  +  'd'\"");
  EXPECT_EQ(c->get("report.dmarc.subject"), "abcd");
  auto e = load_ok(R"(report.dmarc.subject = "'it\\'s' + ' a \\\\ b'")");
  EXPECT_EQ(e->get("report.dmarc.subject"), "it's a \\ b");
}

TEST(ConfigExpressions, ConfigGet) {
  auto c = load_ok(R"toml(
[report]
domain = "example.com"
submitter = "'mx.' + config_get('report.domain')"
[report.dmarc.aggregate]
from-address = "'noreply-dmarc@' + config_get('report.domain')"
)toml");
  EXPECT_EQ(c->report.submitter, "mx.example.com");
  EXPECT_EQ(c->lmtp.hostname, "mx.example.com");
  EXPECT_EQ(c->get("report.dmarc.aggregate.from-address"), "noreply-dmarc@example.com");
}

TEST(ConfigExpressions, ConfigGetOfAnUnsetKeyGivesItsDefault) {
  // Header values of a webhook are free text: they hold the results here.
  auto c = load_ok(R"toml(
[webhook.t]
url = "http://127.0.0.1/"
throttle = "config_get('webhook.t.timeout')"
[webhook.t.headers]
from = "'noreply-tls@' + config_get('report.domain')"
db = "config_get('store.path')"
hostname = "config_get('lmtp.hostname')"
size = "config_get('limits.message-size')"
ruf-from = "config_get('report.dmarc.from-address')"
sign = "config_get('report.dkim.sign')"
send = "config_get('report.spf.send')"
events = "config_get('webhook.t.events')"
)toml");
  const std::string h = "webhook.t.headers.";
  EXPECT_EQ(c->get(h + "from"), "noreply-tls@" + c->report.domain);
  EXPECT_EQ(c->get(h + "db"), "/var/lib/mailreport/mailreport.db");
  EXPECT_EQ(c->get(h + "hostname"), c->report.submitter);
  EXPECT_EQ(c->get(h + "size"), "50MB");
  EXPECT_EQ(c->get(h + "ruf-from"), "noreply-dmarc@" + c->report.domain);
  EXPECT_EQ(c->get(h + "sign"),
            "[ 'rsa-" + c->report.domain + "', 'ed25519-" + c->report.domain + "' ]");
  EXPECT_EQ(c->get(h + "send"), "1/1d");
  EXPECT_EQ(c->get(h + "events"), "[ '*' ]");  // a webhook's defaults too
  EXPECT_EQ(c->webhooks.at("t").throttle, std::chrono::seconds(30));
}

TEST(ConfigExpressions, ConfigGetOfTypedValues) {
  auto c = load_ok(R"toml(
store.path = "config_get('lmtp.spool-dir') + '/m.db'"
lmtp.spool-dir = "/srv/mr"
lmtp.max-connections = 12
report.dmarc.subject = "'n=' + config_get('lmtp.max-connections')"
)toml");
  EXPECT_EQ(c->store.path, "/srv/mr/m.db");
  EXPECT_EQ(c->get("report.dmarc.subject"), "n=12");
}

TEST(ConfigExpressions, PlainStringsAreTakenAsWritten) {
  auto c = load_ok("report.dmarc.subject = \"Report domain: + something\"");
  EXPECT_EQ(c->get("report.dmarc.subject"), "Report domain: + something");
  EXPECT_EQ(c->report.dmarc.subject, "Report domain: + something");
}

TEST(ConfigExpressions, Cycle) {
  auto problems = load_bad(R"toml(
[report]
domain = "config_get('report.submitter')"
submitter = "'mx.' + config_get('report.domain')"
)toml");
  ASSERT_EQ(problems.size(), 2u) << dump(problems);
  EXPECT_EQ(problems[0].key, "report.domain");
  EXPECT_EQ(problems[0].line, 3);
  EXPECT_EQ(problems[1].key, "report.submitter");
  EXPECT_EQ(problems[1].line, 4);
  for (const auto& p : problems) EXPECT_TRUE(mentions(p, "cycle")) << p.message;
  EXPECT_TRUE(mentions(problems[0], "report.domain -> report.submitter -> report.domain"));
}

TEST(ConfigExpressions, SelfReferenceAndCycleThroughADefault) {
  Problem p = one_problem("[webhook.x]\nurl = \"config_get('webhook.x.url')\"");
  EXPECT_EQ(p.key, "webhook.x.url");
  EXPECT_TRUE(mentions(p, "cycle"));
  // lmtp.hostname is unset, so its default (report.submitter) closes the loop.
  Problem q = one_problem("report.submitter = \"config_get('lmtp.hostname')\"");
  EXPECT_EQ(q.key, "report.submitter");
  EXPECT_TRUE(mentions(q, "report.submitter -> lmtp.hostname -> report.submitter"));
}

TEST(ConfigExpressions, BadSyntax) {
  for (const char* bad : {
           "'unterminated",
           "'a' + ",
           "'a' 'b'",
           "'a' - 'b'",
           "config_get(report.domain)",
           "config_get('report.domain'",
           "config_get('')",
           "'bad \\x escape'",
           "O'Brien",
       }) {
    std::string text = "report.domain = \"" + std::string(bad) + "\"";
    // TOML needs the backslash escaped inside a basic string.
    text = std::regex_replace(text, std::regex(R"(\\)"), R"(\\)");
    LoadResult r = load_string(text);
    ASSERT_EQ(r.problems.size(), 1u) << bad << "\n" << dump(r.problems);
    EXPECT_EQ(r.problems[0].key, "report.domain") << bad;
    EXPECT_TRUE(mentions(r.problems[0], "bad expression at column")) << r.problems[0].message;
  }
}

TEST(ConfigExpressions, UnknownKeyInConfigGet) {
  Problem p = one_problem("\n\nreport.domain = \"config_get('report.domian')\"");
  EXPECT_EQ(p.key, "report.domain");
  EXPECT_EQ(p.line, 3);
  EXPECT_TRUE(mentions(p, "no such key"));
  EXPECT_TRUE(mentions(p, "did you mean report.domain?"));
  // A webhook's keys exist only when the webhook does; its headers only when they are set.
  EXPECT_TRUE(
      mentions(one_problem("report.domain = \"config_get('webhook.x.url')\""), "no such key"));
  EXPECT_TRUE(mentions(one_problem("report.domain = \"config_get('webhook.x.headers.a')\"\n"
                                   "[webhook.x]\nurl = \"http://127.0.0.1/\""),
                       "no such key"));
  EXPECT_TRUE(
      mentions(one_problem("report.domain = \"config_get('report.dmarc.from')\""), "no such key"));
}

TEST(ConfigExpressions, WebhookAndDashboardKeysAreExpressionsToo) {
  auto c = load_ok(R"toml(
report.domain = "example.com"
[webhook.a]
url = "'https://hooks.' + config_get('report.domain') + '/x'"
events = ["'dmarc' + '.*'"]
)toml");
  EXPECT_EQ(c->webhooks.at("a").url, "https://hooks.example.com/x");
  EXPECT_EQ(c->webhooks.at("a").events, std::vector<std::string>{"dmarc.*"});
  Problem p = one_problem("[webhook.a]\nurl = \"'https://x' +\"\n");
  EXPECT_EQ(p.key, "webhook.a.url");
  EXPECT_TRUE(mentions(p, "bad expression")) << p.message;
}

TEST(ConfigExpressions, ListElementsAreExpressions) {
  auto c = load_ok(R"toml(
report.domain = "example.com"
report.analysis.addresses = ["'dmarc@' + config_get('report.domain')", "tlsrpt@*"]
)toml");
  EXPECT_EQ(c->report.analysis_addresses.patterns(),
            (std::vector<std::string>{"dmarc@example.com", "tlsrpt@*"}));
  EXPECT_TRUE(c->report.analysis_addresses.matches("dmarc+x@example.com"));
}

TEST(ConfigProblems, AllAreReportedWithTheirLines) {
  LoadResult r = load_string(R"toml([report]
domain = "example.com"
bogus = 1

[lmtp]
max-connections = 0
tcp = "203.0.113.9:24"
idle-timeout = "forever"

[limits]
message-size = "huge"
compression-ratio = "x"

[nonsense]
a = 1
)toml");
  EXPECT_FALSE(r.config);
  ASSERT_EQ(r.problems.size(), 7u) << dump(r.problems);
  const std::vector<std::pair<int, std::string>> want = {
      {3, "report.bogus"},      {6, "lmtp.max-connections"}, {7, "lmtp.tcp"},
      {8, "lmtp.idle-timeout"}, {11, "limits.message-size"}, {12, "limits.compression-ratio"},
      {14, "nonsense"},
  };
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(r.problems[i].line, want[i].first) << dump(r.problems);
    EXPECT_EQ(r.problems[i].key, want[i].second) << dump(r.problems);
  }
  EXPECT_EQ(r.problems[1].describe(), "6: lmtp.max-connections: must be a positive integer");
}

TEST(ConfigProblems, ArrayElementsHaveTheirOwnLines) {
  LoadResult r = load_string(R"toml(report.analysis.addresses = [
  "dmarc@*",
  "a*b@example.com",
  "tlsrpt+x@*",
]
)toml");
  ASSERT_EQ(r.problems.size(), 2u) << dump(r.problems);
  EXPECT_EQ(r.problems[0].line, 3);
  EXPECT_EQ(r.problems[1].line, 4);
}

TEST(ConfigProblems, UnknownKeysAreRejected) {
  Problem p = one_problem("\n[lmtp]\nmax-conections = 5\n");
  EXPECT_EQ(p.key, "lmtp.max-conections");
  EXPECT_EQ(p.line, 3);
  EXPECT_TRUE(mentions(p, "unknown key"));
  EXPECT_TRUE(mentions(p, "did you mean lmtp.max-connections?"));
  EXPECT_TRUE(mentions(one_problem("report.tcp = \"x\""), "did you mean lmtp.tcp?"));
  EXPECT_TRUE(mentions(one_problem("[report.analysis.extra]\nx = 1"), "unknown section"));
  EXPECT_TRUE(mentions(one_problem("[report]\nanalysis.forward = true"), "unknown key"));
  EXPECT_TRUE(mentions(one_problem("\"lmtp.tcp\" = \"127.0.0.1:1\""), "quoted key"));
}

TEST(ConfigProblems, TomlSyntaxError) {
  Problem p = one_problem("[lmtp]\nmax-connections = \n");
  EXPECT_EQ(p.line, 2);
  EXPECT_EQ(p.key, "");
  EXPECT_EQ(p.describe().substr(0, 3), "2: ");
  EXPECT_EQ(one_problem("a = 1\na = 2\n").line, 2);  // duplicate key
}

TEST(ConfigProblems, Describe) {
  EXPECT_EQ((Problem{"lmtp.max-connections", 12, "must be a positive integer"}.describe()),
            "12: lmtp.max-connections: must be a positive integer");
  EXPECT_EQ((Problem{"store.path", 0, "x"}.describe()), "store.path: x");
  EXPECT_EQ((Problem{"", 0, "cannot read"}.describe()), "cannot read");
}

TEST(ConfigReserved, WebhookAndDashboardSectionsAreCheckedNow) {
  auto c = load_ok(R"toml(
[webhook.alerts]
url = "https://hooks.example/x"
timeout = 3
[dashboard]
listen = "127.0.0.1:8080"
)toml");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->get("webhook.alerts.url"), "https://hooks.example/x");
  EXPECT_EQ(c->get("webhook.alerts.timeout"), "3");
  EXPECT_EQ(c->get("dashboard.listen"), "127.0.0.1:8080");
  EXPECT_FALSE(c->get("webhook.alerts").has_value());  // a table, not a value
  Problem p = one_problem("[webhook.alerts]\nurl = \"https://hooks.example/x\"\nretries = 3\n");
  EXPECT_EQ(p.key, "webhook.alerts.retries");
  EXPECT_TRUE(mentions(p, "unknown key")) << p.message;
  Problem q = one_problem("[dashboard]\nlisen = \"127.0.0.1:8080\"\n");
  EXPECT_TRUE(mentions(q, "did you mean dashboard.listen?")) << q.message;
}

TEST(ConfigReserved, AggregateAndTlsrptSectionsAreCheckedNow) {
  Problem p = one_problem("[report.dmarc.aggregate]\nsned = \"daily\"\n");
  EXPECT_EQ(p.key, "report.dmarc.aggregate.sned");
  EXPECT_TRUE(mentions(p, "did you mean report.dmarc.aggregate.send?")) << p.message;
  EXPECT_TRUE(mentions(one_problem("[tlsrpt]\nsocket = \"/run/tlsrpt.sock\"\n"), "unknown key"));
  EXPECT_TRUE(mentions(one_problem("[report.tls]\nfrom = \"x\"\n"), "unknown key"));
}

TEST(ConfigFile, ShippedFileLoadsWithoutProblems) {
  const auto path = mailreport::test::source_dir() / "conf/mailreport.toml";
  LoadResult r = load_file(path);
  ASSERT_TRUE(r.problems.empty()) << dump(r.problems);
  ASSERT_TRUE(r.config);
  EXPECT_EQ(r.config->source, path);
  EXPECT_TRUE(r.config->raw.empty());  // everything is commented out: all defaults
}

// Uncommenting every "#key = value" line of the shipped file must still load, and give the
// defaults for every key whose default is not computed from the host: the documentation
// shows the real defaults.
TEST(ConfigFile, ShippedFileDocumentsTheRealDefaults) {
  std::istringstream in(
      mailreport::test::read_file(mailreport::test::source_dir() / "conf/mailreport.toml"));
  std::string text, line;
  int keys = 0;
  const std::regex setting(R"(^#([a-z-]+) = .*)");
  while (std::getline(in, line)) {
    if (std::regex_match(line, setting)) {
      line.erase(0, 1);
      ++keys;
    }
    text += line + "\n";
  }
  EXPECT_EQ(keys, 122);
  LoadResult r = load_string(text);
  ASSERT_TRUE(r.problems.empty()) << dump(r.problems);
  EXPECT_EQ(r.config->raw.size(), 122u);
  auto d = Config::defaults();
  const Config& c = *r.config;
  EXPECT_EQ(c.report.analysis_addresses.patterns(), d->report.analysis_addresses.patterns());
  EXPECT_EQ(c.report.analysis_retention, d->report.analysis_retention);
  EXPECT_EQ(c.store.type, d->store.type);
  EXPECT_EQ(c.store.path, d->store.path);
  EXPECT_EQ(c.store.url, d->store.url);
  EXPECT_EQ(c.store.url_file, d->store.url_file);
  EXPECT_EQ(c.store.pool_size, d->store.pool_size);
  EXPECT_EQ(c.store.acquire_timeout, d->store.acquire_timeout);
  EXPECT_EQ(c.lmtp.unix_socket, d->lmtp.unix_socket);
  EXPECT_EQ(c.lmtp.unix_socket_mode, d->lmtp.unix_socket_mode);
  EXPECT_EQ(c.lmtp.unix_socket_owner, d->lmtp.unix_socket_owner);
  EXPECT_EQ(c.lmtp.unix_socket_group, d->lmtp.unix_socket_group);
  EXPECT_EQ(c.lmtp.tcp, d->lmtp.tcp);
  EXPECT_EQ(c.lmtp.allow_non_loopback, d->lmtp.allow_non_loopback);
  EXPECT_EQ(c.lmtp.max_connections, d->lmtp.max_connections);
  EXPECT_EQ(c.lmtp.idle_timeout, d->lmtp.idle_timeout);
  EXPECT_EQ(c.lmtp.data_timeout, d->lmtp.data_timeout);
  EXPECT_EQ(c.lmtp.spool_dir, d->lmtp.spool_dir);
  EXPECT_EQ(c.lmtp.user, d->lmtp.user);
  EXPECT_EQ(c.limits.message_size, d->limits.message_size);
  EXPECT_EQ(c.limits.decompressed_size, d->limits.decompressed_size);
  EXPECT_EQ(c.limits.compression_ratio, d->limits.compression_ratio);
  EXPECT_EQ(c.limits.line_length, d->limits.line_length);
  EXPECT_EQ(c.limits.command_line_length, d->limits.command_line_length);
  EXPECT_EQ(c.log.level, d->log.level);
  EXPECT_EQ(c.dns.nameservers, d->dns.nameservers);
  EXPECT_EQ(c.dns.local_data, d->dns.local_data);
  EXPECT_EQ(c.dns.local_nxdomain, d->dns.local_nxdomain);
  EXPECT_EQ(c.dns.local_only, d->dns.local_only);
  EXPECT_EQ(c.dns.timeout, d->dns.timeout);
  EXPECT_EQ(c.dns.cache_size, d->dns.cache_size);
  EXPECT_EQ(c.milter.socket, d->milter.socket);
  EXPECT_EQ(c.milter.socket_path, d->milter.socket_path);
  EXPECT_EQ(c.milter.socket_mode, d->milter.socket_mode);
  EXPECT_EQ(c.milter.socket_owner, d->milter.socket_owner);
  EXPECT_EQ(c.milter.socket_group, d->milter.socket_group);
  EXPECT_EQ(c.milter.allow_non_loopback, d->milter.allow_non_loopback);
  EXPECT_EQ(c.milter.user, d->milter.user);
  EXPECT_EQ(c.milter.timeout, d->milter.timeout);
  EXPECT_EQ(c.milter.trust_authserv_ids, d->milter.trust_authserv_ids);
  EXPECT_EQ(c.milter.trusted_networks.texts(), d->milter.trusted_networks.texts());
  EXPECT_EQ(c.milter.add_header, d->milter.add_header);
  EXPECT_EQ(c.milter.dmarc_enforce, d->milter.dmarc_enforce);
  EXPECT_EQ(c.milter.dmarc_temperror, d->milter.dmarc_temperror);
  EXPECT_EQ(c.milter.dmarc_quarantine, d->milter.dmarc_quarantine);
  EXPECT_EQ(c.milter.dmarc_discovery, d->milter.dmarc_discovery);
  EXPECT_EQ(c.milter.queue_size, d->milter.queue_size);
  EXPECT_EQ(c.milter.batch_size, d->milter.batch_size);
  EXPECT_EQ(c.milter.flush_interval, d->milter.flush_interval);
  EXPECT_EQ(c.serve.user, d->serve.user);
  EXPECT_EQ(c.serve.outbox_interval, d->serve.outbox_interval);
  EXPECT_EQ(c.tlsrpt.listen, d->tlsrpt.listen);
  EXPECT_EQ(c.tlsrpt.socket_mode, d->tlsrpt.socket_mode);
  EXPECT_EQ(c.tlsrpt.socket_group, d->tlsrpt.socket_group);
  EXPECT_EQ(c.tlsrpt.flush_interval, d->tlsrpt.flush_interval);
  EXPECT_EQ(c.tlsrpt.batch_size, d->tlsrpt.batch_size);
  EXPECT_EQ(c.report.suppress_after, d->report.suppress_after);
  EXPECT_EQ(c.dashboard.listen, d->dashboard.listen);
  EXPECT_EQ(c.dashboard.allow_non_loopback, d->dashboard.allow_non_loopback);
  EXPECT_EQ(c.dashboard.token, d->dashboard.token);
  EXPECT_EQ(c.dashboard.token_file, d->dashboard.token_file);
  EXPECT_EQ(c.dashboard.allow_no_token, d->dashboard.allow_no_token);
  EXPECT_EQ(c.dashboard.max_connections, d->dashboard.max_connections);
  EXPECT_EQ(c.dashboard.timeout, d->dashboard.timeout);
  EXPECT_EQ(c.alerts.enable, d->alerts.enable);
  EXPECT_EQ(c.alerts.interval, d->alerts.interval);
  EXPECT_EQ(c.alerts.domains, d->alerts.domains);
  EXPECT_EQ(c.alerts.dmarc_failure_count, d->alerts.dmarc_failure_count);
  EXPECT_EQ(c.alerts.dmarc_failure_rate, d->alerts.dmarc_failure_rate);
  EXPECT_EQ(c.alerts.dmarc_min_messages, d->alerts.dmarc_min_messages);
  EXPECT_EQ(c.alerts.dmarc_disposition_count, d->alerts.dmarc_disposition_count);
  EXPECT_EQ(c.alerts.new_source, d->alerts.new_source);
  EXPECT_EQ(c.alerts.tls_failure_count, d->alerts.tls_failure_count);
  EXPECT_EQ(c.alerts.arf, d->alerts.arf);
  EXPECT_EQ(c.alerts.parse_failures, d->alerts.parse_failures);
  EXPECT_TRUE(c.webhooks.empty());
  for (auto [got, want] : {std::pair{&c.report.dmarc_aggregate, &d->report.dmarc_aggregate},
                           std::pair{&c.report.tls_aggregate, &d->report.tls_aggregate}}) {
    EXPECT_EQ(got->from_name, want->from_name);
    EXPECT_EQ(got->send, want->send);
    EXPECT_EQ(got->sign, want->sign);
    EXPECT_EQ(got->max_size, want->max_size);
    EXPECT_EQ(got->spread, want->spread);
    EXPECT_EQ(got->format, want->format);
  }
  // Written out for the documented domain, example.com.
  EXPECT_EQ(c.report.dmarc_aggregate.from_address, "noreply-dmarc@example.com");
  EXPECT_EQ(c.report.dmarc_aggregate.org_name, "example.com");
  EXPECT_EQ(c.report.dmarc_aggregate.contact_info, "");
  EXPECT_EQ(c.report.tls_aggregate.from_address, "noreply-tls@example.com");
  EXPECT_EQ(c.report.tls_aggregate.org_name, "example.com");
  EXPECT_EQ(c.report.tls_aggregate.contact_info, "noreply-tls@example.com");
  for (auto [got, want] :
       {std::pair{&c.report.dmarc, &d->report.dmarc}, std::pair{&c.report.dkim, &d->report.dkim},
        std::pair{&c.report.spf, &d->report.spf}}) {
    EXPECT_EQ(got->from_name, want->from_name);
    EXPECT_EQ(got->subject, want->subject);
    EXPECT_EQ(got->sign, want->sign);  // both empty: no [signature.<id>] for the default ids
    ASSERT_TRUE(got->send && want->send);
    EXPECT_EQ(got->send->count, want->send->count);
    EXPECT_EQ(got->send->period, want->send->period);
  }
  // The documented domain is example.com, so the from-addresses are written out for it.
  EXPECT_EQ(c.report.dmarc.from_address, "noreply-dmarc@example.com");
  EXPECT_EQ(c.report.dkim.from_address, "noreply-dkim@example.com");
  EXPECT_EQ(c.report.spf.from_address, "noreply-spf@example.com");
  EXPECT_EQ(c.report.dsn.from_name, d->report.dsn.from_name);
  EXPECT_EQ(c.report.dsn.from_address, d->report.dsn.from_address);
  EXPECT_EQ(c.report.dsn.sign, d->report.dsn.sign);
  EXPECT_EQ(c.report.failure.include, d->report.failure.include);
  EXPECT_EQ(c.report.failure.max_original, d->report.failure.max_original);
  EXPECT_EQ(c.report.failure.redact, d->report.failure.redact);
  EXPECT_EQ(c.report.failure.redact_key, d->report.failure.redact_key);
  EXPECT_EQ(c.report.submit.method, d->report.submit.method);
  EXPECT_EQ(c.report.submit.sendmail_path, d->report.submit.sendmail_path);
  EXPECT_EQ(c.report.submit.smtp_url, d->report.submit.smtp_url);
  EXPECT_EQ(c.report.submit.timeout, d->report.submit.timeout);
  EXPECT_EQ(c.report.submit.max_age, d->report.submit.max_age);
}

TEST(ConfigFile, MissingFile) {
  LoadResult r = load_file("/nonexistent/mailreport.toml");
  EXPECT_FALSE(r.config);
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_TRUE(mentions(r.problems[0], "No such file"));
}

TEST(ConfigFile, FromDisk) {
  mailreport::test::TempDir dir;
  const auto path = dir / "m.toml";
  std::ofstream(path) << "[store]\npath = \"" << (dir / "x.db").string() << "\"\n";
  LoadResult r = load_file(path);
  ASSERT_TRUE(r.config) << dump(r.problems);
  EXPECT_EQ(r.config->store.path, dir / "x.db");
  EXPECT_EQ(r.config->lmtp.spool_dir, dir.path());
  EXPECT_EQ(r.config->source, path);
}

}  // namespace
}  // namespace mailreport::config

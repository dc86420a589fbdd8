// [dashboard], [alerts] and [webhook.<id>] (issue 6): defaults, every key parsed, every problem
// reported with its key, webhook tables with headers and auth, and what Config::get returns.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "mailreport/config/config.hpp"
#include "testsupport.hpp"

namespace mailreport::config {
namespace {

std::string dump(const std::vector<Problem>& problems) {
  std::string out;
  for (const auto& p : problems) out += p.describe() + "\n";
  return out;
}

std::shared_ptr<const Config> load_ok(const std::string& text) {
  LoadResult r = load_string(text);
  EXPECT_TRUE(r.problems.empty()) << text << "\n" << dump(r.problems);
  return r.config;
}

// The one problem of `text`, which must have exactly one.
Problem one_problem(const std::string& text) {
  LoadResult r = load_string(text);
  EXPECT_FALSE(r.config) << text;
  EXPECT_EQ(r.problems.size(), 1u) << text << "\n" << dump(r.problems);
  return r.problems.empty() ? Problem{} : r.problems.front();
}

bool mentions(const Problem& p, std::string_view needle) {
  return p.message.find(needle) != std::string::npos;
}

// `text` must give one problem, on `key`, that says `says`.
void expect_problem(const std::string& text, const std::string& key, std::string_view says) {
  Problem p = one_problem(text);
  EXPECT_EQ(p.key, key) << text << "\n" << p.describe();
  EXPECT_TRUE(mentions(p, says)) << text << "\n" << p.describe();
}

constexpr const char* kHook = "[webhook.ops]\nurl = \"https://hooks.example.com/mail\"\n";

TEST(DashboardConfig, Defaults) {
  auto d = Config::defaults();
  EXPECT_EQ(d->dashboard.listen, "127.0.0.1:8470");
  EXPECT_FALSE(d->dashboard.allow_non_loopback);
  EXPECT_EQ(d->dashboard.token, "");
  EXPECT_EQ(d->dashboard.token_file, "");
  EXPECT_FALSE(d->dashboard.allow_no_token);
  EXPECT_EQ(d->dashboard.max_connections, 64u);
  EXPECT_EQ(d->dashboard.timeout, std::chrono::seconds(30));
  const DashboardConfig header;
  EXPECT_EQ(header.listen, d->dashboard.listen);
  EXPECT_EQ(header.max_connections, d->dashboard.max_connections);
  EXPECT_EQ(header.timeout, d->dashboard.timeout);
  EXPECT_FALSE(d->get("dashboard.listen").has_value());  // not set in the file
}

TEST(DashboardConfig, EveryKey) {
  auto c = load_ok(R"toml(
[dashboard]
listen = "[::1]:9000"
allow-non-loopback = true
token = "c2VjcmV0LXRva2Vu+/~._-=="
allow-no-token = true
max-connections = 10000
timeout = "2m"
)toml");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->dashboard.listen, "[::1]:9000");
  EXPECT_TRUE(c->dashboard.allow_non_loopback);
  EXPECT_EQ(c->dashboard.token, "c2VjcmV0LXRva2Vu+/~._-==");
  EXPECT_TRUE(c->dashboard.allow_no_token);
  EXPECT_EQ(c->dashboard.max_connections, 10000u);
  EXPECT_EQ(c->dashboard.timeout, std::chrono::minutes(2));
  EXPECT_EQ(c->get("dashboard.listen"), "[::1]:9000");
  EXPECT_EQ(c->get("dashboard.max-connections"), "10000");
  EXPECT_EQ(c->get("dashboard.timeout"), "2m");
}

TEST(DashboardConfig, ListenForms) {
  EXPECT_EQ(load_ok("dashboard.listen = \"\"")->dashboard.listen, "");  // off
  EXPECT_EQ(load_ok("dashboard.listen = \"localhost:1\"")->dashboard.listen, "localhost:1");
  EXPECT_EQ(load_ok("dashboard.listen = \"127.0.0.2:65535\"")->dashboard.listen, "127.0.0.2:65535");
  auto c = load_ok("[dashboard]\nlisten = \"0.0.0.0:8470\"\nallow-non-loopback = true\n");
  EXPECT_EQ(c->dashboard.listen, "0.0.0.0:8470");
  // The token is a literal, not an expression (like store.url): a quote is refused as a
  // character of a bearer token, not as a bad expression.
  expect_problem("dashboard.token = \"abc'def\"", "dashboard.token", "RFC 6750");
}

TEST(DashboardConfig, ListenProblems) {
  const std::string key = "dashboard.listen";
  expect_problem("dashboard.listen = \"127.0.0.1\"", key, "HOST:PORT");
  expect_problem("dashboard.listen = \"127.0.0.1:0\"", key, "from 1 to 65535");
  expect_problem("dashboard.listen = \"127.0.0.1:65536\"", key, "65535");
  expect_problem("dashboard.listen = \"127.0.0.1:http\"", key, "port");
  expect_problem("dashboard.listen = \"[::1]8470\"", key, "':PORT'");
  expect_problem("dashboard.listen = \"[mx]:8470\"", key, "not an IPv6 address");
  expect_problem("dashboard.listen = \"::1:8470\"", key, "brackets");
  expect_problem("dashboard.listen = \"dash.example.com:8470\"", key, "must be an IP address");
  expect_problem("dashboard.listen = \"192.0.2.1:8470\"", key, "allow-non-loopback");
  expect_problem("dashboard.listen = \"[2001:db8::1]:8470\"", key, "not a loopback address");
  expect_problem("dashboard.listen = 8470", key, "must be a string");
}

TEST(DashboardConfig, TokenProblems) {
  expect_problem("dashboard.token = \"has space\"", "dashboard.token", "RFC 6750");
  expect_problem("dashboard.token = \"a=b\"", "dashboard.token", "RFC 6750");
  expect_problem("dashboard.token = 5", "dashboard.token", "must be a string");
  expect_problem("dashboard.token-file = \"token\"", "dashboard.token-file", "absolute path");
  expect_problem("dashboard.token-file = \"/nonexistent/token\"", "dashboard.token-file",
                 "No such file");
  expect_problem("dashboard.max-connections = 0", "dashboard.max-connections", "1 and 10000");
  expect_problem("dashboard.max-connections = 10001", "dashboard.max-connections", "1 and 10000");
  expect_problem("dashboard.timeout = 0", "dashboard.timeout", "longer than 0s");
  expect_problem("dashboard.timeout = \"soon\"", "dashboard.timeout", "duration");
  expect_problem("dashboard.allow-no-token = \"yes\"", "dashboard.allow-no-token", "true or false");
  // Without a token, only a loopback listener may serve everyone.
  expect_problem(
      "[dashboard]\nlisten = \"0.0.0.0:8470\"\nallow-non-loopback = true\nallow-no-token = true\n",
      "dashboard.allow-no-token", "needs a token");
  EXPECT_TRUE(
      load_ok("[dashboard]\nlisten = \"0.0.0.0:8470\"\nallow-non-loopback = true\n"
              "allow-no-token = true\ntoken = \"abc\"\n"));
}

TEST(DashboardConfig, TokenFile) {
  test::TempDir dir;
  const auto good = dir / "token";
  std::ofstream(good) << "  0123456789abcdef\n";
  ::chmod(good.c_str(), 0640);
  auto c = load_ok("dashboard.token-file = \"" + good.string() + "\"");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->dashboard.token_file, good);
  EXPECT_EQ(c->dashboard.token, "");  // read by the web module (load_dashboard_token)
  EXPECT_EQ(c->get("dashboard.token-file"), good.string());

  const auto open = dir / "open";
  std::ofstream(open) << "0123456789abcdef\n";
  ::chmod(open.c_str(), 0644);
  expect_problem("dashboard.token-file = \"" + open.string() + "\"", "dashboard.token-file",
                 "mode 0644");
  const auto bad = dir / "bad";
  std::ofstream(bad) << "not a token\n";
  ::chmod(bad.c_str(), 0600);
  expect_problem("dashboard.token-file = \"" + bad.string() + "\"", "dashboard.token-file",
                 "RFC 6750");
  const auto empty = dir / "empty";
  std::ofstream(empty) << "\n";
  ::chmod(empty.c_str(), 0600);
  expect_problem("dashboard.token-file = \"" + empty.string() + "\"", "dashboard.token-file",
                 "empty");
  expect_problem("[dashboard]\ntoken = \"abc\"\ntoken-file = \"" + good.string() + "\"\n",
                 "dashboard.token-file", "dashboard.token is set too");
}

TEST(AlertsConfig, Defaults) {
  auto d = Config::defaults();
  const AlertsConfig header;
  EXPECT_TRUE(d->alerts.enable);
  EXPECT_EQ(d->alerts.interval, std::chrono::seconds(10));
  EXPECT_TRUE(d->alerts.domains.empty());
  EXPECT_EQ(d->alerts.dmarc_failure_count, header.dmarc_failure_count);
  EXPECT_EQ(d->alerts.dmarc_failure_count, 100u);
  EXPECT_DOUBLE_EQ(d->alerts.dmarc_failure_rate, 0.1);
  EXPECT_EQ(d->alerts.dmarc_min_messages, 20u);
  EXPECT_EQ(d->alerts.dmarc_disposition_count, 1u);
  EXPECT_TRUE(d->alerts.new_source);
  EXPECT_EQ(d->alerts.tls_failure_count, 1u);
  EXPECT_TRUE(d->alerts.arf);
  EXPECT_TRUE(d->alerts.parse_failures);
  EXPECT_TRUE(d->webhooks.empty());
}

TEST(AlertsConfig, EveryKey) {
  auto c = load_ok(R"toml(
[alerts]
enable = false
interval = "1m"
domains = ["Example.COM", "example.org.", "example.com"]
dmarc-failure-count = 5
dmarc-failure-rate = 1
dmarc-min-messages = 0
dmarc-disposition-count = 0
new-source = false
tls-failure-count = 3
arf = false
parse-failures = false
)toml");
  ASSERT_TRUE(c);
  const auto& a = c->alerts;
  EXPECT_FALSE(a.enable);
  EXPECT_EQ(a.interval, std::chrono::minutes(1));
  EXPECT_EQ(a.domains, (std::vector<std::string>{"example.com", "example.org"}));
  EXPECT_EQ(a.dmarc_failure_count, 5u);
  EXPECT_DOUBLE_EQ(a.dmarc_failure_rate, 1.0);
  EXPECT_EQ(a.dmarc_min_messages, 0u);
  EXPECT_EQ(a.dmarc_disposition_count, 0u);
  EXPECT_FALSE(a.new_source);
  EXPECT_EQ(a.tls_failure_count, 3u);
  EXPECT_FALSE(a.arf);
  EXPECT_FALSE(a.parse_failures);
  EXPECT_EQ(c->get("alerts.dmarc-failure-rate"), "1");
  EXPECT_DOUBLE_EQ(load_ok("alerts.dmarc-failure-rate = 0.25")->alerts.dmarc_failure_rate, 0.25);
}

TEST(AlertsConfig, Problems) {
  expect_problem("alerts.enable = 1", "alerts.enable", "true or false");
  expect_problem("alerts.interval = 0", "alerts.interval", "longer than 0s");
  expect_problem("alerts.domains = \"example.com\"", "alerts.domains", "array of strings");
  expect_problem("alerts.domains = [\"example.com\", \"not a domain\"]", "alerts.domains",
                 "'not a domain' is not a domain name");
  expect_problem("alerts.dmarc-failure-count = 0", "alerts.dmarc-failure-count", "positive");
  expect_problem("alerts.dmarc-failure-rate = 1.5", "alerts.dmarc-failure-rate", "from 0 to 1");
  expect_problem("alerts.dmarc-failure-rate = -0.1", "alerts.dmarc-failure-rate", "from 0 to 1");
  expect_problem("alerts.dmarc-failure-rate = nan", "alerts.dmarc-failure-rate", "from 0 to 1");
  expect_problem("alerts.dmarc-failure-rate = \"10%\"", "alerts.dmarc-failure-rate",
                 "must be a number");
  expect_problem("alerts.dmarc-min-messages = -1", "alerts.dmarc-min-messages", "negative");
  expect_problem("alerts.dmarc-disposition-count = -1", "alerts.dmarc-disposition-count",
                 "0 (off)");
  expect_problem("alerts.tls-failure-count = 1.5", "alerts.tls-failure-count", "an integer");
  expect_problem("alerts.new-source = \"no\"", "alerts.new-source", "true or false");
  expect_problem("alerts.arf = 0", "alerts.arf", "true or false");
  expect_problem("alerts.parse-failures = []", "alerts.parse-failures", "true or false");
  expect_problem("[alerts]\ndomain = []\n", "alerts.domain", "did you mean alerts.domains?");
}

TEST(WebhookConfig, MinimalGetsTheDefaults) {
  auto c = load_ok(kHook);
  ASSERT_TRUE(c);
  ASSERT_EQ(c->webhooks.size(), 1u);
  const WebhookConfig& w = c->webhooks.at("ops");
  const WebhookConfig header;
  EXPECT_EQ(w.id, "ops");
  EXPECT_EQ(w.url, "https://hooks.example.com/mail");
  EXPECT_EQ(w.events, std::vector<std::string>{"*"});
  EXPECT_EQ(w.timeout, header.timeout);
  EXPECT_EQ(w.throttle, header.throttle);
  EXPECT_EQ(w.throttle, std::chrono::seconds(1));
  EXPECT_EQ(w.discard_after, std::chrono::days(1));
  EXPECT_EQ(w.discard_after, header.discard_after);
  EXPECT_EQ(w.signature_key, "");
  EXPECT_TRUE(w.headers.empty());
  EXPECT_EQ(w.auth_username, "");
  EXPECT_EQ(w.auth_secret, "");
  EXPECT_FALSE(w.allow_invalid_certs);
  EXPECT_EQ(c->get("webhook.ops.url"), "https://hooks.example.com/mail");
  EXPECT_FALSE(c->get("webhook.ops.timeout").has_value());  // not set in the file
}

TEST(WebhookConfig, EveryKeyWithHeadersAndAuth) {
  auto c = load_ok(R"toml(
report.domain = "example.com"

[webhook."ops"]
url = "http://user:pw@[::1]:8080/hook?x=1"
events = ["dmarc.*", "tls.failures", "arf.auth-failure"]
timeout = "5s"
throttle = "500ms"
discard-after = "2h"
signature-key = "k'ey with spaces"
allow-invalid-certs = true

[webhook.ops.headers]
X-Team = "mail"
X-Domain = "config_get('report.domain')"
"X.Dotted" = ""

[webhook.ops.auth]
username = "mailreport"
secret = "s'ecret"

[webhook.pager-2]
url = "https://192.0.2.7/"
auth.username = "u"
auth.secret = "p"
throttle = 0
)toml");
  ASSERT_TRUE(c);
  ASSERT_EQ(c->webhooks.size(), 2u);
  const WebhookConfig& w = c->webhooks.at("ops");
  EXPECT_EQ(w.url, "http://user:pw@[::1]:8080/hook?x=1");
  EXPECT_EQ(w.events, (std::vector<std::string>{"dmarc.*", "tls.failures", "arf.auth-failure"}));
  EXPECT_EQ(w.timeout, std::chrono::seconds(5));
  EXPECT_EQ(w.throttle, std::chrono::milliseconds(500));
  EXPECT_EQ(w.discard_after, std::chrono::hours(2));
  EXPECT_EQ(w.signature_key, "k'ey with spaces");  // a literal, not an expression
  EXPECT_TRUE(w.allow_invalid_certs);
  ASSERT_EQ(w.headers.size(), 3u);
  auto header = [&w](const std::string& name) {
    for (const auto& [n, v] : w.headers) {
      if (n == name) return std::optional<std::string>(v);
    }
    return std::optional<std::string>();
  };
  EXPECT_EQ(header("X-Team"), "mail");
  EXPECT_EQ(header("X-Domain"), "example.com");
  EXPECT_EQ(header("X.Dotted"), "");
  EXPECT_EQ(w.auth_username, "mailreport");
  EXPECT_EQ(w.auth_secret, "s'ecret");
  const WebhookConfig& p = c->webhooks.at("pager-2");
  EXPECT_EQ(p.auth_username, "u");
  EXPECT_EQ(p.auth_secret, "p");
  EXPECT_EQ(p.throttle, std::chrono::milliseconds(0));
  // Config::get: evaluated values, under their dotted names.
  EXPECT_EQ(c->get("webhook.ops.throttle"), "500ms");
  EXPECT_EQ(c->get("webhook.ops.headers.X-Domain"), "example.com");
  EXPECT_EQ(c->get("webhook.ops.auth.username"), "mailreport");
  EXPECT_EQ(c->get("webhook.ops.allow-invalid-certs"), "true");
  EXPECT_EQ(c->get("webhook.ops.events"), "[ 'dmarc.*', 'tls.failures', 'arf.auth-failure' ]");
  EXPECT_EQ(c->get("webhook.pager-2.auth.secret"), "p");
  EXPECT_FALSE(c->get("webhook.ops.headers").has_value());  // a table
}

TEST(WebhookConfig, Throttle) {
  for (auto [text, ms] :
       {std::pair{"\"1500ms\"", 1500}, std::pair{"\"2s\"", 2000}, std::pair{"\"1m\"", 60000},
        std::pair{"3", 3000}, std::pair{"\"0ms\"", 0}}) {
    auto c = load_ok(std::string(kHook) + "throttle = " + text + "\n");
    ASSERT_TRUE(c) << text;
    EXPECT_EQ(c->webhooks.at("ops").throttle, std::chrono::milliseconds(ms)) << text;
  }
  expect_problem(std::string(kHook) + "throttle = \"1us\"\n", "webhook.ops.throttle",
                 "unknown unit (use ms, s, m, h, d or w)");
  expect_problem(std::string(kHook) + "throttle = -1\n", "webhook.ops.throttle", "negative");
}

TEST(WebhookConfig, UrlProblems) {
  const std::string key = "webhook.ops.url";
  auto url = [](const std::string& u) { return "[webhook.ops]\nurl = \"" + u + "\"\n"; };
  expect_problem("[webhook.ops]\nevents = [\"*\"]\n", key, "missing");
  expect_problem(url("ftp://hooks.example.com/"), key, "http:// or https://");
  expect_problem(url("hooks.example.com/x"), key, "http:// or https://");
  expect_problem(url("https://"), key, "no host");
  expect_problem(url("https:///path"), key, "no host");
  expect_problem(url("https://user@/path"), key, "no host");
  expect_problem(url("https://hooks example.com/"), key, "spaces");
  expect_problem(url("https://hooks_example!.com/"), key, "not a host name");
  expect_problem(url("https://hooks.example.com:0/"), key, "port");
  expect_problem(url("https://hooks.example.com:99999/"), key, "port");
  expect_problem(url("https://hooks.example.com:/"), key, "port");
  expect_problem(url("https://[::1/"), key, "']'");
  expect_problem(url("https://[example]/"), key, "IPv6");
  expect_problem(url("https://[::1]x/"), key, "':PORT'");
  expect_problem("[webhook.ops]\nurl = 5\n", key, "must be a string");
  // The password is masked in the message.
  Problem p = one_problem(url("ftp://user:hunter2@hooks.example.com/"));
  EXPECT_FALSE(mentions(p, "hunter2")) << p.message;
  EXPECT_TRUE(mentions(p, "user:***@")) << p.message;
  // Upper-case schemes and a plain IPv4 host with a port are fine.
  EXPECT_TRUE(load_ok(url("HTTPS://192.0.2.1:8443")));
  EXPECT_TRUE(load_ok(url("http://localhost/x#frag")));
}

TEST(WebhookConfig, EventProblems) {
  const std::string key = "webhook.ops.events";
  for (const char* bad : {"DMARC.*", "dmarc.", ".dmarc", "dmarc..failures", "dmarc*", "*.x",
                          "dmarc.*.x", "dmarc failures", ""}) {
    expect_problem(std::string(kHook) + "events = [\"" + bad + "\"]\n", key,
                   "not an event name or pattern");
  }
  expect_problem(std::string(kHook) + "events = []\n", key, "at least one event");
  expect_problem(std::string(kHook) + "events = \"*\"\n", key, "array of strings");
  expect_problem(std::string(kHook) + "events = [\"*\", 1]\n", key, "array of strings");
}

TEST(WebhookConfig, OtherProblems) {
  const std::string h(kHook);
  expect_problem(h + "timeout = 0\n", "webhook.ops.timeout", "longer than 0s");
  expect_problem(h + "discard-after = \"0s\"\n", "webhook.ops.discard-after", "longer than 0s");
  expect_problem(h + "signature-key = \"a\\nb\"\n", "webhook.ops.signature-key", "one line");
  expect_problem(h + "allow-invalid-certs = \"yes\"\n", "webhook.ops.allow-invalid-certs",
                 "true or false");
  expect_problem(h + "lossy = true\n", "webhook.ops.lossy", "unknown key");
  expect_problem(h + "[webhook.ops.extra]\na = 1\n", "webhook.ops.extra", "unknown section");
  expect_problem(h + "\"auth.username\" = \"u\"\n", "webhook.ops.auth.username", "unknown key");
  // Headers.
  expect_problem(h + "headers = [\"X-A: b\"]\n", "webhook.ops.headers", "must be a table");
  expect_problem(h + "[webhook.ops.headers]\n\"X A\" = \"b\"\n", "webhook.ops.headers.X A",
                 "not an HTTP header field name");
  expect_problem(h + "[webhook.ops.headers]\n\"X:A\" = \"b\"\n", "webhook.ops.headers.X:A",
                 "not an HTTP header field name");
  expect_problem(h + "[webhook.ops.headers]\nX-A = \"b\\r\\nX-Evil: 1\"\n",
                 "webhook.ops.headers.X-A", "no CR, LF");
  expect_problem(h + "[webhook.ops.headers]\nX-A = 1\n", "webhook.ops.headers.X-A",
                 "must be a string");
  expect_problem(h + "[webhook.ops.headers]\nX-A = \"1\"\nx-a = \"2\"\n", "webhook.ops.headers.x-a",
                 "given twice");
  expect_problem(h + "[webhook.ops.headers]\ncontent-type = \"text/plain\"\n",
                 "webhook.ops.headers.content-type", "set by mailreport");
  // Auth: both or neither.
  expect_problem(h + "auth.username = \"u\"\n", "webhook.ops.auth.secret", "both");
  expect_problem(h + "auth.secret = \"s\"\n", "webhook.ops.auth.username", "both");
  expect_problem(h + "auth.username = \"u:v\"\nauth.secret = \"s\"\n", "webhook.ops.auth.username",
                 "':'");
  expect_problem(h + "auth.user = \"u\"\n", "webhook.ops.auth.user", "username and secret");
  expect_problem(h + "auth = \"u:p\"\n", "webhook.ops.auth", "must be a table");
  // Ids and tables.
  expect_problem("[webhook.\"a.b\"]\nurl = \"http://x/\"\n", "webhook.a.b", "not a webhook id");
  expect_problem("[webhook.\"\"]\nurl = \"http://x/\"\n", "webhook.", "not a webhook id");
  expect_problem("webhook.ops = \"http://x/\"\n", "webhook.ops", "must be a table");
  expect_problem("webhook = 1\n", "webhook", "must be a table");
}

TEST(WebhookConfig, ProblemsOfSeveralWebhooksAreAllReported) {
  LoadResult r = load_string(R"toml(
[webhook.a]
url = "gopher://x/"
[webhook.b]
url = "https://ok.example/"
timeout = 0
[webhook.c]
url = "https://ok.example/"
)toml");
  EXPECT_FALSE(r.config);
  ASSERT_EQ(r.problems.size(), 2u) << dump(r.problems);
  EXPECT_EQ(r.problems[0].key, "webhook.a.url");
  EXPECT_EQ(r.problems[0].line, 3);
  EXPECT_EQ(r.problems[1].key, "webhook.b.timeout");
  EXPECT_EQ(r.problems[1].line, 6);
}

}  // namespace
}  // namespace mailreport::config

// The [dns] and [milter] keys: defaults, every key parsed, the checks and their messages, and
// NetworkList (milter.trusted-networks).
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

// The single problem of `text`: its key, and whether its message says `says`.
void expect_problem(std::string_view text, std::string_view key, std::string_view says) {
  LoadResult r = load_string(text);
  EXPECT_FALSE(r.config) << text;
  ASSERT_EQ(r.problems.size(), 1u) << text << "\n" << dump(r.problems);
  EXPECT_EQ(r.problems[0].key, key) << text;
  EXPECT_NE(r.problems[0].message.find(says), std::string::npos)
      << text << ": " << r.problems[0].message;
}

TEST(MilterConfig, Defaults) {
  auto c = Config::defaults();
  EXPECT_TRUE(c->dns.nameservers.empty());
  EXPECT_TRUE(c->dns.local_data.empty());
  EXPECT_TRUE(c->dns.local_nxdomain.empty());
  EXPECT_FALSE(c->dns.local_only);
  EXPECT_EQ(c->dns.timeout, seconds(5));
  EXPECT_EQ(c->dns.cache_size, 8ull << 20);
  EXPECT_EQ(c->milter.socket, "unix:/run/mailreport/milter.sock");
  EXPECT_EQ(c->milter.socket_path, "/run/mailreport/milter.sock");
  EXPECT_EQ(c->milter.socket_mode, 0660u);
  EXPECT_EQ(c->milter.user, "");
  EXPECT_EQ(c->milter.timeout, seconds(7200));
  EXPECT_FALSE(c->milter.authserv_id.empty());  // the host name
  EXPECT_EQ(c->milter.authserv_id, c->report.submitter);
  EXPECT_TRUE(c->milter.trust_authserv_ids.empty());
  EXPECT_EQ(c->milter.trusted_networks.texts(),
            (std::vector<std::string>{"127.0.0.0/8", "::1/128"}));
  EXPECT_TRUE(c->milter.add_header);
  EXPECT_FALSE(c->milter.dmarc_enforce);
  EXPECT_EQ(c->milter.dmarc_temperror, TempErrorAction::TempFail);
  EXPECT_EQ(c->milter.dmarc_quarantine, QuarantineAction::Hold);
  EXPECT_EQ(c->milter.dmarc_discovery, DmarcDiscovery::TreeWalk);
  EXPECT_EQ(c->milter.queue_size, 10000u);
  EXPECT_EQ(c->milter.batch_size, 500u);
  EXPECT_EQ(c->milter.flush_interval, seconds(1));
}

TEST(MilterConfig, MatchTheStructDefaults) {
  const Config header;
  auto c = Config::defaults();
  EXPECT_EQ(c->dns.timeout, header.dns.timeout);
  EXPECT_EQ(c->dns.cache_size, header.dns.cache_size);
  EXPECT_EQ(c->milter.socket, header.milter.socket);
  EXPECT_EQ(c->milter.socket_path, header.milter.socket_path);
  EXPECT_EQ(c->milter.socket_mode, header.milter.socket_mode);
  EXPECT_EQ(c->milter.timeout, header.milter.timeout);
  EXPECT_EQ(c->milter.trusted_networks.texts(), header.milter.trusted_networks.texts());
  EXPECT_EQ(c->milter.queue_size, header.milter.queue_size);
  EXPECT_EQ(c->milter.batch_size, header.milter.batch_size);
  EXPECT_EQ(c->milter.flush_interval, header.milter.flush_interval);
  EXPECT_EQ(c->milter.add_header, header.milter.add_header);
}

TEST(MilterConfig, EveryKeyIsParsed) {
  auto c = load_ok(R"toml(
[dns]
nameservers = ["192.0.2.53", "2001:db8::53", "127.0.0.1@5353"]
local-data = ["_dmarc.example.com. 300 IN TXT \"v=DMARC1; p=reject\"", "example.com. A 192.0.2.1"]
local-nxdomain = ["nope.example.", "gone.example.net"]
local-only = true
timeout = "3s"
cache-size = "32MB"

[milter]
socket = "inet:8891@127.0.0.1"
socket-mode = "0600"
socket-owner = "mailreport"
socket-group = "postfix"
allow-non-loopback = false
user = "mailreport"
timeout = "5m"
authserv-id = "mx.example.com"
trust-authserv-ids = ["Relay.Example.com", "opendkim.example.com"]
trusted-networks = ["192.0.2.0/24", "2001:db8::/32", "198.51.100.7"]
add-header = false
dmarc-enforce = true
dmarc-temperror = "accept"
dmarc-quarantine = "accept"
dmarc-discovery = "psl"
queue-size = 200
batch-size = 50
flush-interval = "10s"
)toml");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->dns.nameservers,
            (std::vector<std::string>{"192.0.2.53", "2001:db8::53", "127.0.0.1@5353"}));
  EXPECT_EQ(c->dns.local_data.size(), 2u);
  EXPECT_EQ(c->dns.local_data[0], "_dmarc.example.com. 300 IN TXT \"v=DMARC1; p=reject\"");
  EXPECT_EQ(c->dns.local_nxdomain, (std::vector<std::string>{"nope.example.", "gone.example.net"}));
  EXPECT_TRUE(c->dns.local_only);
  EXPECT_EQ(c->dns.timeout, seconds(3));
  EXPECT_EQ(c->dns.cache_size, 32ull << 20);
  EXPECT_EQ(c->milter.socket, "inet:8891@127.0.0.1");
  EXPECT_EQ(c->milter.socket_path, "");
  EXPECT_EQ(c->milter.socket_mode, 0600u);
  EXPECT_EQ(c->milter.socket_owner, "mailreport");
  EXPECT_EQ(c->milter.socket_group, "postfix");
  EXPECT_EQ(c->milter.user, "mailreport");
  EXPECT_EQ(c->milter.timeout, seconds(300));
  EXPECT_EQ(c->milter.authserv_id, "mx.example.com");
  // Kept in lower case: authserv-ids compare without case.
  EXPECT_EQ(c->milter.trust_authserv_ids,
            (std::vector<std::string>{"relay.example.com", "opendkim.example.com"}));
  EXPECT_TRUE(c->milter.trusted_networks.contains("192.0.2.200"));
  EXPECT_TRUE(c->milter.trusted_networks.contains("198.51.100.7"));
  EXPECT_FALSE(c->milter.trusted_networks.contains("198.51.100.8"));
  EXPECT_FALSE(c->milter.trusted_networks.contains("127.0.0.1"));  // the default is replaced
  EXPECT_FALSE(c->milter.add_header);
  EXPECT_TRUE(c->milter.dmarc_enforce);
  EXPECT_EQ(c->milter.dmarc_temperror, TempErrorAction::Accept);
  EXPECT_EQ(c->milter.dmarc_quarantine, QuarantineAction::Accept);
  EXPECT_EQ(c->milter.dmarc_discovery, DmarcDiscovery::Psl);
  EXPECT_EQ(c->milter.queue_size, 200u);
  EXPECT_EQ(c->milter.batch_size, 50u);
  EXPECT_EQ(c->milter.flush_interval, seconds(10));
  EXPECT_EQ(c->get("milter.queue-size"), "200");
  EXPECT_EQ(c->raw.size(), 24u);
}

TEST(MilterConfig, SocketSyntax) {
  struct Case {
    const char* socket;
    const char* path;
  };
  for (const Case& k :
       {Case{"unix:/run/m.sock", "/run/m.sock"}, Case{"local:/run/m.sock", "/run/m.sock"},
        Case{"/run/m.sock", "/run/m.sock"}, Case{"inet:8891@127.0.0.1", ""},
        Case{"inet:8891@[127.0.0.1]", ""}, Case{"inet:8891@localhost", ""},
        Case{"inet6:8891@[::1]", ""}, Case{"inet6:8891@::1", ""}}) {
    auto c = load_ok(std::string("milter.socket = \"") + k.socket + "\"");
    ASSERT_TRUE(c) << k.socket;
    EXPECT_EQ(c->milter.socket, k.socket);
    EXPECT_EQ(c->milter.socket_path, k.path) << k.socket;
  }
}

TEST(MilterConfig, InetSocketMustBeLoopbackUnlessAllowed) {
  expect_problem("[milter]\nsocket = \"inet:8891@192.0.2.1\"\n", "milter.socket",
                 "allow-non-loopback");
  expect_problem("milter.socket = \"inet:8891\"", "milter.socket", "beyond this host");
  expect_problem("milter.socket = \"inet6:8891@[2001:db8::1]\"", "milter.socket", "loopback");
  auto c = load_ok("[milter]\nsocket = \"inet:8891\"\nallow-non-loopback = true\n");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->milter.socket, "inet:8891");
  EXPECT_TRUE(c->milter.allow_non_loopback);
}

TEST(MilterConfig, BadSockets) {
  struct Case {
    const char* socket;
    const char* says;
  };
  for (const Case& k : {
           Case{"unix:run/m.sock", "absolute path"},
           Case{"tcp:8891@127.0.0.1", "unknown socket type 'tcp'"},
           Case{"inet:@127.0.0.1", "port number"},
           Case{"inet:smtp@127.0.0.1", "port number"},
           Case{"inet:0@127.0.0.1", "from 1 to 65535"},
           Case{"inet:70000@127.0.0.1", "from 1 to 65535"},
           Case{"inet:8891@", "empty host"},
           Case{"inet:8891@[localhost]", "not an IP address"},
           Case{"inet:8891@[::1]", "needs inet6:"},
           Case{"inet6:8891@[127.0.0.1]", "needs inet:"},
           Case{"inet:8891@bad_host", "not an address or a host name"},
       }) {
    expect_problem(std::string("milter.socket = \"") + k.socket + "\"", "milter.socket", k.says);
  }
  expect_problem("milter.socket = \"unix:/" + std::string(120, 'x') + "\"", "milter.socket",
                 "longer than 107");
}

TEST(MilterConfig, ValueChecks) {
  struct Case {
    const char* text;
    const char* key;
    const char* says;
  };
  for (const Case& c : {
           Case{"dns.nameservers = [\"dns.example\"]", "dns.nameservers", "not an IP address"},
           Case{"dns.nameservers = [\"192.0.2.1@0\"]", "dns.nameservers", "from 1 to 65535"},
           Case{"dns.nameservers = [\"192.0.2.1:53\"]", "dns.nameservers", "ADDRESS@PORT"},
           Case{"dns.local-data = [\"example.com.\"]", "dns.local-data", "NAME [TTL]"},
           Case{"dns.local-data = [\"a..b. A 192.0.2.1\"]", "dns.local-data", "not a DNS name"},
           Case{"dns.local-nxdomain = [\"a b\"]", "dns.local-nxdomain", "not a DNS name"},
           Case{"dns.timeout = \"0s\"", "dns.timeout", "longer than 0s"},
           Case{"dns.timeout = \"1h\"", "dns.timeout", "at most 5m"},
           Case{"dns.cache-size = \"1KB\"", "dns.cache-size", "at least 64KB"},
           Case{"dns.local-only = \"yes\"", "dns.local-only", "true or false"},
           Case{"milter.socket-mode = \"0999\"", "milter.socket-mode", "octal"},
           Case{"milter.user = \"mail report\"", "milter.user", "not a user or group name"},
           Case{"milter.socket-group = \"-x\"", "milter.socket-group", "user or group"},
           Case{"milter.timeout = \"0s\"", "milter.timeout", "longer than 0s"},
           Case{"milter.authserv-id = \"mx example\"", "milter.authserv-id", "authserv-id"},
           Case{"milter.authserv-id = \"mx;x\"", "milter.authserv-id", "authserv-id"},
           Case{"milter.trust-authserv-ids = [\"a b\"]", "milter.trust-authserv-ids",
                "not a valid authserv-id"},
           Case{"milter.trusted-networks = [\"10.0.0.0/33\"]", "milter.trusted-networks",
                "at most 32"},
           Case{"milter.trusted-networks = [\"10.0.0.1/8\"]", "milter.trusted-networks",
                "host bits"},
           Case{"milter.trusted-networks = [\"2001:db8::/129\"]", "milter.trusted-networks",
                "at most 128"},
           Case{"milter.trusted-networks = [\"mx.example.com\"]", "milter.trusted-networks",
                "not an IP address or network"},
           Case{"milter.trusted-networks = [\"10.0.0.0/\"]", "milter.trusted-networks",
                "prefix length must be a number"},
           Case{"milter.dmarc-enforce = 1", "milter.dmarc-enforce", "true or false"},
           Case{"milter.dmarc-temperror = \"reject\"", "milter.dmarc-temperror",
                "must be \"tempfail\" or \"accept\""},
           Case{"milter.dmarc-quarantine = \"discard\"", "milter.dmarc-quarantine",
                "must be \"hold\" or \"accept\""},
           Case{"milter.dmarc-discovery = \"walk\"", "milter.dmarc-discovery",
                "must be \"treewalk\" or \"psl\""},
           Case{"milter.queue-size = 0", "milter.queue-size", "positive"},
           Case{"milter.queue-size = 100000000", "milter.queue-size", "at most"},
           Case{"milter.batch-size = 0", "milter.batch-size", "positive"},
           Case{"milter.batch-size = 20000", "milter.batch-size",
                "not be larger than milter.queue-size (10000)"},
           Case{"milter.flush-interval = \"0s\"", "milter.flush-interval", "longer than 0s"},
           Case{"milter.queue-size = \"10\"", "milter.queue-size", "must be an integer"},
       }) {
    LoadResult r = load_string(c.text);
    ASSERT_EQ(r.problems.size(), 1u) << c.text << "\n" << dump(r.problems);
    EXPECT_EQ(r.problems[0].key, c.key) << c.text;
    EXPECT_EQ(r.problems[0].line, 1) << c.text;
    EXPECT_NE(r.problems[0].message.find(c.says), std::string::npos)
        << c.text << ": " << r.problems[0].message;
  }
}

TEST(MilterConfig, OurOwnAuthservIdCannotBeTrusted) {
  expect_problem(
      "[milter]\nauthserv-id = \"mx.example.com\"\ntrust-authserv-ids = [\"MX.example.com\"]\n",
      "milter.trust-authserv-ids", "removed as forged");
}

TEST(MilterConfig, ListElementsHaveTheirLines) {
  LoadResult r = load_string(
      "[milter]\n"
      "trusted-networks = [\n"
      "  \"10.0.0.0/8\",\n"
      "  \"10.1.0.0/33\",\n"
      "  \"nope\",\n"
      "]\n");
  ASSERT_EQ(r.problems.size(), 2u) << dump(r.problems);
  EXPECT_EQ(r.problems[0].line, 4);
  EXPECT_EQ(r.problems[1].line, 5);
}

TEST(MilterConfig, UnknownKeysInTheNewSectionsAreRejected) {
  expect_problem("[dns]\nresolver = \"system\"\n", "dns.resolver", "unknown key");
  expect_problem("[milter]\nsokcet = \"unix:/x\"\n", "milter.sokcet",
                 "did you mean milter.socket?");
}

TEST(MilterConfig, ConfigGetOfTheNewKeys) {
  auto c = load_ok(
      "[milter]\nauthserv-id = \"'mx.' + config_get('report.domain')\"\n"
      "[report]\ndomain = \"example.org\"\n");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->milter.authserv_id, "mx.example.org");
}

TEST(NetworkList, Contains) {
  auto list = NetworkList::parse({"192.0.2.0/24", "10.0.0.0/8", "2001:db8::/32", "198.51.100.7",
                                  "2001:db8:ffff::1/128", "172.16.0.0/12", "0.0.0.0/0"});
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->contains("8.8.8.8"));  // 0.0.0.0/0
  auto l = NetworkList::parse({"192.0.2.0/24", "172.16.0.0/12", "2001:db8::/32", "::1"});
  ASSERT_TRUE(l.ok());
  EXPECT_TRUE(l->contains("192.0.2.0"));
  EXPECT_TRUE(l->contains("192.0.2.255"));
  EXPECT_FALSE(l->contains("192.0.3.0"));
  EXPECT_TRUE(l->contains("172.31.255.255"));  // /12 ends inside the second octet
  EXPECT_FALSE(l->contains("172.32.0.0"));
  EXPECT_TRUE(l->contains("2001:db8:1234::5"));
  EXPECT_TRUE(l->contains("2001:DB8::1"));
  EXPECT_FALSE(l->contains("2001:db9::1"));
  EXPECT_TRUE(l->contains("::1"));
  EXPECT_FALSE(l->contains("::2"));
  // An IPv4-mapped IPv6 client address is the IPv4 host (RFC 4291 §2.5.5.2).
  EXPECT_TRUE(l->contains("::ffff:192.0.2.9"));
  EXPECT_FALSE(l->contains("not an ip"));
  EXPECT_FALSE(l->contains(""));
  EXPECT_FALSE(NetworkList().contains("127.0.0.1"));
  EXPECT_TRUE(NetworkList::loopback().contains("127.1.2.3"));
  EXPECT_TRUE(NetworkList::loopback().contains("::1"));
  EXPECT_FALSE(NetworkList::loopback().contains("128.0.0.1"));
}

TEST(NetworkList, ParseErrorsNameTheEntry) {
  auto r = NetworkList::parse({"10.0.0.0/8", "10.0.0.0/x"});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("'10.0.0.0/x'"), std::string::npos) << r.error().message;
  EXPECT_FALSE(NetworkList::parse({"::ffff:10.0.0.0/104"}).ok());
  EXPECT_FALSE(NetworkList::parse({"1.2.3"}).ok());
  EXPECT_FALSE(NetworkList::parse({"10.0.0.0/0008"}).ok());
}

TEST(MilterConfig, EnumNames) {
  EXPECT_STREQ(to_string(TempErrorAction::TempFail), "tempfail");
  EXPECT_STREQ(to_string(TempErrorAction::Accept), "accept");
  EXPECT_STREQ(to_string(QuarantineAction::Hold), "hold");
  EXPECT_STREQ(to_string(DmarcDiscovery::TreeWalk), "treewalk");
  EXPECT_STREQ(to_string(DmarcDiscovery::Psl), "psl");
}

}  // namespace
}  // namespace mailreport::config

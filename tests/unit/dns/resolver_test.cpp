// Tests of the libunbound resolver: local data answers (TXT, A, AAAA, MX, PTR, CNAME chains),
// NXDOMAIN / NODATA, local_only refusal, timeouts against a silent upstream on loopback, many
// threads sharing one resolver, and configuration errors. Nothing here touches the network.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <resolv.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "mailreport/dns/resolver.hpp"

namespace mailreport::dns {
namespace {

using namespace std::chrono_literals;

std::shared_ptr<Resolver> make(ResolverOptions o) {
  static NullLogger log;
  auto r = make_unbound_resolver(o, log);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().describe());
  return r.ok() ? *r : nullptr;
}

ResolverOptions local(std::vector<std::string> data) {
  ResolverOptions o;
  o.local_only = true;
  o.local_data = std::move(data);
  return o;
}

TEST(Resolver, TxtJoinsCharacterStringsAndKeepsEveryRecord) {
  auto r = make(local({
      R"(example.com. 300 IN TXT "v=spf1 " "ip4:192.0.2.0/24" " -all")",
      R"(example.com. 300 IN TXT "google-site-verification=abc")",
  }));
  Answer a = r->query("example.com", RType::TXT);
  ASSERT_EQ(a.status, Status::Ok) << a.why;
  auto txt = txt_records(a);
  ASSERT_EQ(txt.size(), 2u);
  std::sort(txt.begin(), txt.end());
  EXPECT_EQ(txt[0], "google-site-verification=abc");
  EXPECT_EQ(txt[1], "v=spf1 ip4:192.0.2.0/24 -all");
  EXPECT_EQ(a.ttl, 300u);
  EXPECT_FALSE(a.secure);
  // The wire-format reply libopendkim's hook wants: one question, two TXT answers.
  ns_msg msg;
  ASSERT_EQ(ns_initparse(a.packet.data(), static_cast<int>(a.packet.size()), &msg), 0);
  EXPECT_EQ(ns_msg_count(msg, ns_s_qd), 1);
  EXPECT_EQ(ns_msg_count(msg, ns_s_an), 2);
  EXPECT_EQ(ns_msg_getflag(msg, ns_f_rcode), ns_r_noerror);
  // A trailing dot means the same name.
  EXPECT_EQ(txt_records(r->query("example.com.", RType::TXT)).size(), 2u);
}

TEST(Resolver, TxtLongerThan255OctetsComesBackWhole) {
  std::string a(255, 'a'), b(100, 'b');
  auto r = make(local({"sel._domainkey.example.com. IN TXT \"" + a + "\" \"" + b + "\""}));
  auto txt = txt_records(r->query("sel._domainkey.example.com", RType::TXT));
  ASSERT_EQ(txt.size(), 1u);
  EXPECT_EQ(txt[0], a + b);
}

TEST(Resolver, Addresses) {
  auto r = make(local({
      "mail.example.com. 60 IN A 192.0.2.25",
      "mail.example.com. 60 IN A 192.0.2.26",
      "mail.example.com. 120 IN AAAA 2001:db8::25",
  }));
  Answer v4 = r->query("mail.example.com", RType::A);
  ASSERT_EQ(v4.status, Status::Ok) << v4.why;
  auto a4 = addresses(v4);
  std::sort(a4.begin(), a4.end());
  EXPECT_EQ(a4, (std::vector<std::string>{"192.0.2.25", "192.0.2.26"}));
  EXPECT_EQ(v4.ttl, 60u);
  Answer v6 = r->query("MAIL.Example.COM", RType::AAAA);  // names are case-insensitive
  ASSERT_EQ(v6.status, Status::Ok) << v6.why;
  EXPECT_EQ(addresses(v6), std::vector<std::string>{"2001:db8::25"});
}

TEST(Resolver, MxIncludingNullMx) {
  auto r = make(local({
      "example.com. IN MX 10 MX1.Example.com.",
      "example.com. IN MX 20 mx2.example.net.",
      "nomail.example.com. IN MX 0 .",
  }));
  auto mx = mx_records(r->query("example.com", RType::MX));
  ASSERT_EQ(mx.size(), 2u);
  std::sort(mx.begin(), mx.end(), [](auto& x, auto& y) { return x.preference < y.preference; });
  EXPECT_EQ(mx[0].preference, 10);
  EXPECT_EQ(mx[0].exchange, "mx1.example.com");
  EXPECT_EQ(mx[1].preference, 20);
  EXPECT_EQ(mx[1].exchange, "mx2.example.net");
  auto null_mx = mx_records(r->query("nomail.example.com", RType::MX));
  ASSERT_EQ(null_mx.size(), 1u);
  EXPECT_EQ(null_mx[0].preference, 0);
  EXPECT_EQ(null_mx[0].exchange, "");  // RFC 7505
}

TEST(Resolver, Ptr) {
  auto r = make(local({"25.2.0.192.in-addr.arpa. IN PTR Mail.Example.com."}));
  Answer a = r->query("25.2.0.192.in-addr.arpa", RType::PTR);
  ASSERT_EQ(a.status, Status::Ok) << a.why;
  EXPECT_EQ(names(a), std::vector<std::string>{"mail.example.com"});
}

TEST(Resolver, FollowsLocalCnameChains) {
  auto r = make(local({
      "_dmarc.example.com. 600 IN CNAME _dmarc.hop.example.net.",
      "_dmarc.hop.example.net. 300 IN CNAME policy.example.org.",
      "policy.example.org. 900 IN TXT \"v=DMARC1; p=reject\"",
  }));
  Answer a = r->query("_dmarc.example.com", RType::TXT);
  ASSERT_EQ(a.status, Status::Ok) << a.why;
  EXPECT_EQ(txt_records(a), std::vector<std::string>{"v=DMARC1; p=reject"});
  EXPECT_EQ(a.ttl, 300u);  // the smallest along the chain
  // Asking for the CNAME itself does not follow it.
  Answer c = r->query("_dmarc.example.com", RType::CNAME);
  ASSERT_EQ(c.status, Status::Ok) << c.why;
  EXPECT_EQ(names(c), std::vector<std::string>{"_dmarc.hop.example.net"});
  // A chain ending at a name with no record of the type is NODATA.
  EXPECT_EQ(r->query("_dmarc.example.com", RType::A).status, Status::NoData);
}

TEST(Resolver, CnameLoopIsTempError) {
  auto r = make(local({
      "a.example.com. IN CNAME b.example.com.",
      "b.example.com. IN CNAME a.example.com.",
  }));
  Answer a = r->query("a.example.com", RType::TXT);
  EXPECT_EQ(a.status, Status::TempError);
  EXPECT_NE(a.why.find("CNAME chain"), std::string::npos) << a.why;
}

TEST(Resolver, NxDomainAndNoData) {
  ResolverOptions o = local({
      "example.com. IN TXT \"v=spf1 -all\"",
      "kept.gone.example. IN TXT \"still here\"",
  });
  o.local_nxdomain = {"gone.example."};
  auto r = make(o);
  // RFC 2308 §2.2: the name exists, the type does not.
  Answer nodata = r->query("example.com", RType::MX);
  EXPECT_EQ(nodata.status, Status::NoData) << nodata.why;
  EXPECT_TRUE(nodata.rdata.empty());
  EXPECT_TRUE(mx_records(nodata).empty());
  EXPECT_FALSE(nodata.packet.empty());
  for (const char* n : {"gone.example", "www.gone.example", "a.b.gone.example"}) {
    Answer nx = r->query(n, RType::TXT);
    EXPECT_EQ(nx.status, Status::NxDomain) << n << ": " << nx.why;
    EXPECT_TRUE(txt_records(nx).empty());
  }
  // Local data inside an NXDOMAIN zone still answers.
  EXPECT_EQ(txt_records(r->query("kept.gone.example", RType::TXT)),
            std::vector<std::string>{"still here"});
  // Below a local-data owner there is nothing (the owner is a zone of its own).
  EXPECT_EQ(r->query("sub.example.com", RType::TXT).status, Status::NxDomain);
}

TEST(Resolver, LocalOnlyAnswersTempErrorAtOnceForUnknownNames) {
  ResolverOptions o = local({"example.com. IN TXT \"x\""});
  o.timeout = 5s;
  auto r = make(o);
  auto t0 = std::chrono::steady_clock::now();
  Answer a = r->query("unknown.example.org", RType::TXT);
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(a.status, Status::TempError);
  EXPECT_NE(a.why.find("no upstream"), std::string::npos) << a.why;
  EXPECT_TRUE(a.packet.empty());
  EXPECT_LT(took, 500ms);
}

TEST(Resolver, LocalNxdomainRootMakesEveryUnknownNameNxDomain) {
  ResolverOptions o = local({"example.com. IN TXT \"x\""});
  o.local_nxdomain = {"."};
  auto r = make(o);
  EXPECT_EQ(r->query("unknown.example.org", RType::TXT).status, Status::NxDomain);
  EXPECT_EQ(r->query("example.com", RType::TXT).status, Status::Ok);
}

TEST(Resolver, InvalidNamesAreNxDomain) {
  auto r = make(local({}));
  Answer a = r->query(std::string(64, 'a') + ".example.com", RType::TXT);  // label > 63
  EXPECT_EQ(a.status, Status::NxDomain);
  EXPECT_EQ(r->query(std::string("a\0b.example.com", 15), RType::TXT).status, Status::NxDomain);
  EXPECT_EQ(r->query("", RType::TXT).status, Status::NxDomain);
}

TEST(Resolver, EightThreadsShareOneResolver) {
  std::vector<std::string> data;
  for (int i = 0; i < 50; ++i) {
    data.push_back("h" + std::to_string(i) + ".example.com. IN TXT \"value " + std::to_string(i) +
                   "\"");
  }
  auto r = make(local(data));
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < 200; ++k) {
        int i = (t * 7 + k) % 60;  // 10 of the 60 names are unknown
        Answer a = r->query("h" + std::to_string(i) + ".example.com", RType::TXT);
        bool good = i < 50
                        ? txt_records(a) == std::vector<std::string>{"value " + std::to_string(i)}
                        : a.status == Status::TempError;
        if (!good) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

// A UDP socket bound on loopback that never answers: an upstream that is down.
class SilentServer {
 public:
  SilentServer() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    socklen_t len = sizeof sa;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin_port);
  }
  ~SilentServer() { ::close(fd_); }
  std::string address() const { return "127.0.0.1@" + std::to_string(port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST(Resolver, SilentUpstreamIsTempErrorWithinTheTimeout) {
  SilentServer server;
  ResolverOptions o;
  o.nameservers = {server.address()};
  o.local_data = {"local.example.com. IN A 192.0.2.1"};
  o.timeout = 400ms;
  auto r = make(o);
  auto t0 = std::chrono::steady_clock::now();
  Answer a = r->query("remote.example.org", RType::TXT);
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(a.status, Status::TempError);
  EXPECT_FALSE(a.why.empty());
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 1500ms);
  // Local data still answers at once when the upstream is down, and a local name's other
  // types are NODATA without asking upstream.
  EXPECT_EQ(addresses(r->query("local.example.com", RType::A)),
            std::vector<std::string>{"192.0.2.1"});
  t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(r->query("local.example.com", RType::TXT).status, Status::NoData);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 300ms);
}

TEST(Resolver, ConfigurationErrorsNameTheValue) {
  NullLogger log;
  ResolverOptions bad_data = local({"example.com. IN TXT \"ok\"", "this is not a record"});
  auto r1 = make_unbound_resolver(bad_data, log);
  ASSERT_FALSE(r1.ok());
  EXPECT_NE(r1.error().message.find("this is not a record"), std::string::npos)
      << r1.error().message;

  ResolverOptions bad_ns;
  bad_ns.nameservers = {"not-an-address"};
  auto r2 = make_unbound_resolver(bad_ns, log);
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.error().message.find("not-an-address"), std::string::npos) << r2.error().message;
}

TEST(Resolver, TypedViewsOfAFailedAnswerAreEmpty) {
  Answer a;
  a.status = Status::TempError;
  a.rdata = {{3, 'a', 'b', 'c'}};
  EXPECT_TRUE(txt_records(a).empty());
  EXPECT_TRUE(addresses(a).empty());
  EXPECT_TRUE(names(a).empty());
  EXPECT_TRUE(mx_records(a).empty());
}

TEST(Resolver, MalformedRdataIsSkipped) {
  Answer a;
  a.status = Status::Ok;
  a.rdata = {{5, 'a', 'b'}, {2, 'o', 'k'}, {}};
  EXPECT_EQ(txt_records(a), std::vector<std::string>{"ok"});
  a.rdata = {{1, 2, 3}, {192, 0, 2, 1}};
  EXPECT_EQ(addresses(a), std::vector<std::string>{"192.0.2.1"});
  a.rdata = {{0, 10}, {0, 10, 3, 'm', 'x'}, {0, 10, 2, 'm', 'x', 0}};
  auto mx = mx_records(a);
  ASSERT_EQ(mx.size(), 1u);
  EXPECT_EQ(mx[0].exchange, "mx");
}

TEST(Resolver, Spellings) {
  EXPECT_STREQ(to_string(RType::TXT), "TXT");
  EXPECT_STREQ(to_string(RType::AAAA), "AAAA");
  EXPECT_STREQ(to_string(Status::NxDomain), "nxdomain");
  EXPECT_STREQ(to_string(Status::TempError), "temperror");
}

}  // namespace
}  // namespace mailreport::dns

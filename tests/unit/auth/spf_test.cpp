// Tests of SpfVerifier (RFC 7208 with libspf2) over the libunbound Resolver answering from
// local data only: every result (pass, fail, softfail, neutral, none, temperror, permerror),
// the mechanisms ip4, ip6, a, mx, include, and redirect=, exp= text, the null sender (HELO
// identity as postmaster@HELO), the HELO check, and many threads sharing one verifier. Nothing
// here touches the network.
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "mailreport/auth/spf.hpp"
#include "mailreport/dns/resolver.hpp"

namespace mailreport::auth {
namespace {

// Forwards to the real resolver and remembers what was asked, to show that every libspf2
// lookup goes through our Resolver.
class RecordingResolver final : public dns::Resolver {
 public:
  explicit RecordingResolver(std::shared_ptr<dns::Resolver> inner) : inner_(std::move(inner)) {}
  dns::Answer query(std::string_view name, dns::RType type) override {
    {
      std::lock_guard lock(mu_);
      asked_.insert(std::string(name) + "/" + dns::to_string(type));
    }
    ++count_;
    return inner_->query(name, type);
  }
  bool asked(const std::string& name, dns::RType type) {
    std::lock_guard lock(mu_);
    return asked_.count(name + "/" + dns::to_string(type)) > 0;
  }
  int count() const { return count_.load(); }

 private:
  std::shared_ptr<dns::Resolver> inner_;
  std::mutex mu_;
  std::set<std::string> asked_;
  std::atomic<int> count_{0};
};

std::vector<std::string> zone() {
  std::vector<std::string> z = {
      R"(pass.example. 300 IN TXT "v=spf1 ip4:192.0.2.10 -all")",
      R"(pass.example. 300 IN TXT "some-other=verification")",
      R"(fail.example. 300 IN TXT "v=spf1 ip4:192.0.2.10 -all exp=why.fail.example")",
      R"(why.fail.example. 300 IN TXT "%{i} is not a mail server of %{d}")",
      R"(softfail.example. 300 IN TXT "v=spf1 ~all")",
      R"(neutral.example. 300 IN TXT "v=spf1 ?all")",
      R"(nospf.example. 300 IN A 192.0.2.99)",
      R"(nospf.example. 300 IN TXT "just some text")",
      R"(two.example. 300 IN TXT "v=spf1 -all")",
      R"(two.example. 300 IN TXT "v=spf1 +all")",
      R"(syntax.example. 300 IN TXT "v=spf1 ip4:192.0.2.300 -all")",
      R"(inc.example. 300 IN TXT "v=spf1 include:pass.example -all")",
      R"(incnone.example. 300 IN TXT "v=spf1 include:nospf.example -all")",
      R"(a.example. 300 IN TXT "v=spf1 a a:other.a.example/28 -all")",
      R"(a.example. 300 IN A 192.0.2.20)",
      R"(other.a.example. 300 IN A 198.51.100.1)",
      R"(mx.example. 300 IN TXT "v=spf1 mx -all")",
      R"(mx.example. 300 IN MX 10 mail.mx.example.)",
      R"(mail.mx.example. 300 IN A 192.0.2.30)",
      R"(mail.mx.example. 300 IN AAAA 2001:db8::30)",
      R"(ip6.example. 300 IN TXT "v=spf1 ip6:2001:db8:1::/48 -all")",
      R"(redir.example. 300 IN TXT "v=spf1 redirect=pass.example")",
      R"(temp.example. 300 IN TXT "v=spf1 a:host.unresolvable.example -all")",
      R"(helo.example. 300 IN TXT "v=spf1 a -all")",
      R"(helo.example. 300 IN A 192.0.2.40)",
      R"(exists.example. 300 IN TXT "v=spf1 exists:%{ir}.list.exists.example -all")",
      R"(10.2.0.192.list.exists.example. 300 IN A 127.0.0.2)",
  };
  // Eleven DNS-querying mechanisms: one more than RFC 7208 §4.6.4 allows.
  std::string many = "v=spf1";
  for (int i = 1; i <= 11; ++i) {
    many += " a:h" + std::to_string(i) + ".many.example";
    z.push_back("h" + std::to_string(i) + ".many.example. 300 IN A 198.51.100." +
                std::to_string(i));
  }
  z.push_back("many.example. 300 IN TXT \"" + many + " -all\"");
  return z;
}

class SpfTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dns::ResolverOptions o;
    o.local_only = true;
    o.local_data = zone();
    o.local_nxdomain = {"nxdomain.example.", "11.2.0.192.list.exists.example."};
    // Names without local data answer TempError at once ("no upstream"); the bound only keeps
    // the test short should that ever wait.
    o.timeout = std::chrono::milliseconds(1000);
    auto r = dns::make_unbound_resolver(o, log_);
    ASSERT_TRUE(r.ok()) << r.error().describe();
    resolver_ = std::make_shared<RecordingResolver>(*r);
    auto v = SpfVerifier::create(resolver_, "mx.receiver.example", log_);
    ASSERT_TRUE(v.ok()) << v.error().describe();
    spf_ = *v;
  }

  SpfVerdict mfrom(std::string_view ip, std::string_view from, std::string_view helo = "h.test") {
    return spf_->check_mail_from(ip, helo, from);
  }

  NullLogger log_;
  std::shared_ptr<RecordingResolver> resolver_;
  std::shared_ptr<SpfVerifier> spf_;
};

TEST_F(SpfTest, PassAndFailOnIp4) {
  SpfVerdict v = mfrom("192.0.2.10", "alice@pass.example");
  EXPECT_EQ(v.result, SpfResult::Pass) << v.explanation;
  EXPECT_EQ(v.scope, SpfScope::MailFrom);
  EXPECT_EQ(v.domain, "pass.example");
  EXPECT_EQ(v.identity, "alice@pass.example");
  EXPECT_NE(v.explanation.find("designates 192.0.2.10 as permitted sender"), std::string::npos)
      << v.explanation;
  EXPECT_NE(v.explanation.find("mx.receiver.example"), std::string::npos) << v.explanation;

  v = mfrom("192.0.2.11", "alice@pass.example");
  EXPECT_EQ(v.result, SpfResult::Fail) << v.explanation;
  // Every lookup went through our Resolver, and only as TXT (never type SPF, RFC 7208 §3.1).
  EXPECT_TRUE(resolver_->asked("pass.example", dns::RType::TXT));
}

TEST_F(SpfTest, FailCarriesTheDomainsExplanation) {
  SpfVerdict v = mfrom("192.0.2.11", "bob@fail.example");
  EXPECT_EQ(v.result, SpfResult::Fail);
  // RFC 7208 §6.2: exp= names a TXT record whose macros are expanded.
  EXPECT_NE(v.explanation.find("192.0.2.11 is not a mail server of fail.example"),
            std::string::npos)
      << v.explanation;
}

TEST_F(SpfTest, SoftfailNeutral) {
  EXPECT_EQ(mfrom("192.0.2.1", "x@softfail.example").result, SpfResult::SoftFail);
  EXPECT_EQ(mfrom("192.0.2.1", "x@neutral.example").result, SpfResult::Neutral);
}

TEST_F(SpfTest, NoneWithoutRecordOrDomain) {
  EXPECT_EQ(mfrom("192.0.2.1", "x@nospf.example").result, SpfResult::None);
  SpfVerdict v = mfrom("192.0.2.1", "x@nxdomain.example");
  EXPECT_EQ(v.result, SpfResult::None) << v.explanation;
  // RFC 7208 §4.3: not a multi-label domain name → none without a lookup.
  int before = resolver_->count();
  EXPECT_EQ(mfrom("192.0.2.1", "x@localhost").result, SpfResult::None);
  EXPECT_EQ(mfrom("192.0.2.1", "x@bad..example").result, SpfResult::None);
  EXPECT_EQ(resolver_->count(), before);
}

TEST_F(SpfTest, TempErrorWhenDnsFails) {
  // local_only: a name without local data answers TempError ("no upstream").
  SpfVerdict v = mfrom("192.0.2.1", "x@unknown.example");
  EXPECT_EQ(v.result, SpfResult::TempError) << v.explanation;
  // A DNS failure inside a mechanism is a temperror too (RFC 7208 §5).
  v = mfrom("192.0.2.1", "x@temp.example");
  EXPECT_EQ(v.result, SpfResult::TempError) << v.explanation;
}

TEST_F(SpfTest, PermErrors) {
  // RFC 7208 §4.5: two SPF records.
  SpfVerdict v = mfrom("192.0.2.1", "x@two.example");
  EXPECT_EQ(v.result, SpfResult::PermError) << v.explanation;
  // Syntax error in a mechanism.
  v = mfrom("192.0.2.1", "x@syntax.example");
  EXPECT_EQ(v.result, SpfResult::PermError) << v.explanation;
  // RFC 7208 §4.6.4: more than 10 DNS-querying terms.
  v = mfrom("192.0.2.1", "x@many.example");
  EXPECT_EQ(v.result, SpfResult::PermError) << v.explanation;
  // RFC 7208 §5.2: include: of a domain without a record.
  v = mfrom("192.0.2.1", "x@incnone.example");
  EXPECT_EQ(v.result, SpfResult::PermError) << v.explanation;
}

TEST_F(SpfTest, IncludeAndRedirect) {
  EXPECT_EQ(mfrom("192.0.2.10", "x@inc.example").result, SpfResult::Pass);
  EXPECT_EQ(mfrom("192.0.2.11", "x@inc.example").result, SpfResult::Fail);
  EXPECT_EQ(mfrom("192.0.2.10", "x@redir.example").result, SpfResult::Pass);
  SpfVerdict v = mfrom("192.0.2.11", "x@redir.example");
  EXPECT_EQ(v.result, SpfResult::Fail);
  // The verdict keeps the checked identity's domain, not the redirect target.
  EXPECT_EQ(v.domain, "redir.example");
}

TEST_F(SpfTest, AAndMxMechanisms) {
  EXPECT_EQ(mfrom("192.0.2.20", "x@a.example").result, SpfResult::Pass);
  EXPECT_EQ(mfrom("198.51.100.14", "x@a.example").result, SpfResult::Pass);  // a:/28
  EXPECT_EQ(mfrom("198.51.100.17", "x@a.example").result, SpfResult::Fail);
  EXPECT_EQ(mfrom("192.0.2.30", "x@mx.example").result, SpfResult::Pass);
  EXPECT_EQ(mfrom("2001:db8::30", "x@mx.example").result, SpfResult::Pass);
  EXPECT_EQ(mfrom("192.0.2.31", "x@mx.example").result, SpfResult::Fail);
  EXPECT_TRUE(resolver_->asked("mail.mx.example", dns::RType::AAAA));
  EXPECT_EQ(mfrom("192.0.2.10", "x@exists.example").result, SpfResult::Pass);
  EXPECT_EQ(mfrom("192.0.2.11", "x@exists.example").result, SpfResult::Fail);
}

TEST_F(SpfTest, Ip6AndMappedAddresses) {
  EXPECT_EQ(mfrom("2001:db8:1::25", "x@ip6.example").result, SpfResult::Pass);
  EXPECT_EQ(mfrom("2001:db8:2::25", "x@ip6.example").result, SpfResult::Fail);
  EXPECT_EQ(mfrom("192.0.2.10", "x@ip6.example").result, SpfResult::Fail);
  // An IPv4-mapped IPv6 client is checked as the IPv4 address it carries.
  EXPECT_EQ(mfrom("::ffff:192.0.2.10", "x@pass.example").result, SpfResult::Pass);
  EXPECT_EQ(mfrom("not-an-ip", "x@pass.example").result, SpfResult::None);
}

TEST_F(SpfTest, NullSenderUsesHelo) {
  // RFC 7208 §2.4: MAIL FROM:<> → the identity is postmaster@HELO.
  SpfVerdict v = mfrom("192.0.2.40", "", "helo.example");
  EXPECT_EQ(v.result, SpfResult::Pass) << v.explanation;
  EXPECT_EQ(v.domain, "helo.example");
  EXPECT_EQ(v.identity, "postmaster@helo.example");
  EXPECT_EQ(mfrom("192.0.2.41", "", "helo.example").result, SpfResult::Fail);
}

TEST_F(SpfTest, HeloCheckAndBothScopes) {
  std::vector<SpfVerdict> vs = spf_->check("192.0.2.40", "helo.example", "x@softfail.example");
  ASSERT_EQ(vs.size(), 2u);
  EXPECT_EQ(vs[0].scope, SpfScope::MailFrom);
  EXPECT_EQ(vs[0].result, SpfResult::SoftFail);
  EXPECT_EQ(vs[0].domain, "softfail.example");
  EXPECT_EQ(vs[1].scope, SpfScope::Helo);
  EXPECT_EQ(vs[1].result, SpfResult::Pass) << vs[1].explanation;
  EXPECT_EQ(vs[1].domain, "helo.example");
  EXPECT_EQ(vs[1].identity, "helo.example");

  EXPECT_EQ(spf_->check_helo("192.0.2.41", "helo.example").result, SpfResult::Fail);
  // RFC 7208 §2.3: an address literal or a bare name cannot be checked → none.
  EXPECT_EQ(spf_->check_helo("192.0.2.41", "[192.0.2.41]").result, SpfResult::None);
  EXPECT_EQ(spf_->check_helo("192.0.2.41", "mailhost").result, SpfResult::None);
}

TEST_F(SpfTest, ManyThreadsShareOneVerifier) {
  struct Case {
    const char* ip;
    const char* from;
    SpfResult want;
  };
  const std::vector<Case> cases = {
      {"192.0.2.10", "a@pass.example", SpfResult::Pass},
      {"192.0.2.11", "a@pass.example", SpfResult::Fail},
      {"192.0.2.30", "a@mx.example", SpfResult::Pass},
      {"2001:db8:1::1", "a@ip6.example", SpfResult::Pass},
      {"192.0.2.1", "a@two.example", SpfResult::PermError},
      {"192.0.2.1", "a@softfail.example", SpfResult::SoftFail},
      {"192.0.2.11", "a@fail.example", SpfResult::Fail},
      {"192.0.2.1", "a@nospf.example", SpfResult::None},
  };
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 40; ++i) {
        const Case& c = cases[static_cast<std::size_t>(t + i) % cases.size()];
        if (spf_->check_mail_from(c.ip, "h.test", c.from).result != c.want) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace mailreport::auth

// DMARC through the real resolver (libunbound) with local data only (local_only = true):
// the RFC 9989 tree walk and np= over answers unbound builds, TXT records split in several
// character-strings, and a name outside the local data (no upstream) as a DNS temperror.
#include <gtest/gtest.h>

#include "mailreport/auth/dmarc.hpp"
#include "mailreport/dns/resolver.hpp"
#include "mailreport/util/log.hpp"

namespace mailreport::auth {
namespace {

std::shared_ptr<dns::Resolver> local_resolver() {
  static NullLogger log;
  dns::ResolverOptions o;
  o.local_only = true;
  o.local_nxdomain = {"example.", "com."};
  o.local_data = {
      // RFC 9989 App. B.3.3: a PSD record at bank.example, an Organizational Domain record at
      // giant.bank.example.
      R"(_dmarc.bank.example. 300 IN TXT "v=DMARC1; p=reject; sp=quarantine; np=reject; psd=y")",
      R"(_dmarc.giant.bank.example. 300 IN TXT "v=DMARC1; " "p=none; " "rua=mailto:d@giant.bank.example")",
      "giant.bank.example. 300 IN A 192.0.2.1",
      "small.bank.example. 300 IN MX 10 mx.small.bank.example.",
      R"(_dmarc.example.com. 300 IN TXT "v=DMARC1; p=reject; sp=quarantine; np=none")",
      R"(_dmarc.example.com. 300 IN TXT "v=spf1 -all")",
      "mail.example.com. 300 IN A 192.0.2.2",
  };
  auto r = dns::make_unbound_resolver(o, log);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().describe());
  return r.ok() ? *r : nullptr;
}

DkimVerdict dkim_pass(std::string d) {
  DkimVerdict v;
  v.result = DkimResult::Pass;
  v.domain = std::move(d);
  return v;
}

SpfVerdict spf_pass(std::string d) {
  SpfVerdict v;
  v.result = SpfResult::Pass;
  v.domain = std::move(d);
  return v;
}

TEST(DmarcUnbound, PsdExampleThroughUnbound) {
  auto resolver = local_resolver();
  ASSERT_TRUE(resolver);
  DmarcEvaluator e(resolver);
  EXPECT_EQ(e.organizational_domain("mail.giant.bank.example"), "giant.bank.example");
  EXPECT_EQ(e.organizational_domain("mail.mega.bank.example"), "mega.bank.example");
  auto v =
      e.evaluate({"<ceo@giant.bank.example>"}, std::vector{spf_pass("mail.giant.bank.example")},
                 std::vector{dkim_pass("mail.mega.bank.example")});
  EXPECT_EQ(v.result, DmarcResult::Pass) << v.reason;
  EXPECT_TRUE(v.spf_aligned);
  EXPECT_FALSE(v.dkim_aligned);
  EXPECT_EQ(v.policy_domain, "giant.bank.example");
  ASSERT_TRUE(v.record);
  // The record's three character-strings are one record.
  EXPECT_EQ(v.record->text, "v=DMARC1; p=none; rua=mailto:d@giant.bank.example");
  EXPECT_EQ(v.record->rua.size(), 1u);

  // No Organizational Domain record: the PSD's, sp for an existing name, np for NXDOMAIN.
  auto d = e.discover("small.bank.example");
  ASSERT_EQ(d.status, DmarcResult::Pass) << d.why;
  EXPECT_EQ(d.policy_domain, "bank.example");
  EXPECT_EQ(d.policy, Policy::Quarantine);
  d = e.discover("gone.bank.example");
  ASSERT_EQ(d.status, DmarcResult::Pass) << d.why;
  EXPECT_FALSE(d.author_domain_exists);
  EXPECT_EQ(d.policy, Policy::Reject);
}

TEST(DmarcUnbound, SubdomainPoliciesAndFailure) {
  auto resolver = local_resolver();
  ASSERT_TRUE(resolver);
  DmarcEvaluator e(resolver);
  auto v = e.evaluate({"a@mail.example.com"}, {}, std::vector{dkim_pass("other.example")});
  EXPECT_EQ(v.result, DmarcResult::Fail);
  EXPECT_EQ(v.applied_policy, Policy::Quarantine);  // sp: mail.example.com exists
  EXPECT_EQ(v.disposition, Disposition::Quarantine);
  v = e.evaluate({"a@nowhere.example.com"}, {}, {});
  EXPECT_EQ(v.result, DmarcResult::Fail);
  EXPECT_EQ(v.applied_policy, Policy::None);  // np: NXDOMAIN
  v = e.evaluate({"a@example.com"}, {}, std::vector{dkim_pass("mail.example.com")});
  EXPECT_EQ(v.result, DmarcResult::Pass) << v.reason;
}

TEST(DmarcUnbound, NameOutsideLocalDataIsTempError) {
  auto resolver = local_resolver();
  ASSERT_TRUE(resolver);
  DmarcEvaluator e(resolver);
  // (Not under .test: unbound answers that reserved name itself, NXDOMAIN.)
  auto v = e.evaluate({"a@elsewhere.org"}, {}, {});
  EXPECT_EQ(v.result, DmarcResult::TempError) << v.reason;
  EXPECT_EQ(v.header_from, "elsewhere.org");
  EXPECT_NE(v.reason.find("no upstream"), std::string::npos) << v.reason;
}

TEST(DmarcUnbound, PslDiscoveryThroughUnbound) {
  auto resolver = local_resolver();
  ASSERT_TRUE(resolver);
  DmarcOptions o;
  o.discovery = Discovery::Psl;
  DmarcEvaluator e(resolver, o);
  // "example" is not on the public suffix list: libpsl's "*" rule makes bank.example the
  // registrable domain, whose record (psd=y is an RFC 9989 tag) applies with sp.
  auto d = e.discover("giant.bank.example");
  ASSERT_EQ(d.status, DmarcResult::Pass) << d.why;
  EXPECT_EQ(d.policy_domain, "giant.bank.example");
  d = e.discover("small.bank.example");
  ASSERT_EQ(d.status, DmarcResult::Pass) << d.why;
  EXPECT_EQ(d.org_domain, "bank.example");
  EXPECT_EQ(d.policy_domain, "bank.example");
  EXPECT_EQ(d.policy, Policy::Quarantine);
}

}  // namespace
}  // namespace mailreport::auth

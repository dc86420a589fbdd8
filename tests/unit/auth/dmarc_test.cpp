// Tests of DMARC policy discovery and evaluation (auth/dmarc) against a resolver with local
// data: the RFC 9989 §4.10 tree walk (8-query bound, psd=y/psd=n stops, discarded record
// sets), §4.10.1 policy choice (p/sp/np, PSD records only without an Organizational Domain
// record), §4.10.2 Organizational Domains (with the RFC's own examples), alignment, results,
// DNS temperrors, t=y and pct, the From header rules, and PSL discovery (RFC 7489).
#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "dmarc_fake_resolver.hpp"
#include "mailreport/auth/dmarc.hpp"
#include "mailreport/mime/address.hpp"

namespace mailreport::auth {
namespace {

using dmarc_test::FakeResolver;

SpfVerdict spf(SpfResult r, std::string domain, SpfScope scope = SpfScope::MailFrom) {
  SpfVerdict v;
  v.scope = scope;
  v.result = r;
  v.domain = std::move(domain);
  return v;
}

DkimVerdict dkim(DkimResult r, std::string domain) {
  DkimVerdict v;
  v.result = r;
  v.domain = std::move(domain);
  v.selector = "s1";
  return v;
}

class Dmarc : public ::testing::Test {
 protected:
  std::shared_ptr<FakeResolver> dns = std::make_shared<FakeResolver>();

  DmarcEvaluator evaluator(DmarcOptions o = {}) { return DmarcEvaluator(dns, std::move(o)); }

  DmarcVerdict eval(const std::string& from, std::vector<SpfVerdict> s, std::vector<DkimVerdict> d,
                    DmarcOptions o = {}) {
    return evaluator(std::move(o)).evaluate({from}, s, d);
  }
};

// ---------------------------------------------------------------- tree walk, RFC 9989 §4.10

TEST_F(Dmarc, AuthorRecordAppliesItsP) {
  dns->txt("_dmarc.example.com", {"v=DMARC1; p=reject; sp=none"});
  auto d = evaluator().discover("example.com");
  ASSERT_EQ(d.status, DmarcResult::Pass) << d.why;
  EXPECT_EQ(d.policy_domain, "example.com");
  EXPECT_EQ(d.org_domain, "example.com");
  EXPECT_EQ(d.policy, Policy::Reject);
  EXPECT_EQ(d.how, Discovery::TreeWalk);
  ASSERT_TRUE(d.record);
  EXPECT_EQ(d.record->text, "v=DMARC1; p=reject; sp=none");
  // §4.10.2 needs the rest of the walk for the Organizational Domain.
  EXPECT_EQ(dns->asked(), (std::vector<std::string>{"_dmarc.example.com", "_dmarc.com"}));
}

TEST_F(Dmarc, LongNamesJumpToSevenLabelsAndNeverAskMoreThanEight) {
  // RFC 9989 §4.10's own example: 14 labels, eight queries.
  auto d = evaluator().discover("a.b.c.d.e.f.g.h.i.j.mail.example.com");
  EXPECT_EQ(d.status, DmarcResult::None);
  EXPECT_EQ(dns->asked(), (std::vector<std::string>{
                              "_dmarc.a.b.c.d.e.f.g.h.i.j.mail.example.com",
                              "_dmarc.g.h.i.j.mail.example.com",
                              "_dmarc.h.i.j.mail.example.com",
                              "_dmarc.i.j.mail.example.com",
                              "_dmarc.j.mail.example.com",
                              "_dmarc.mail.example.com",
                              "_dmarc.example.com",
                              "_dmarc.com",
                          }));
  EXPECT_EQ(d.org_domain, "a.b.c.d.e.f.g.h.i.j.mail.example.com");  // no record: itself
  // Exactly 8 labels: the jump to 7 is one label, eight queries in all.
  dns->clear_log();
  (void)evaluator().discover("h.g.f.e.d.c.b.a");
  EXPECT_EQ(dns->asked().size(), 8u);
  EXPECT_EQ(dns->asked()[1], "_dmarc.g.f.e.d.c.b.a");
  // Names of up to 7 labels: one query per label.
  dns->clear_log();
  (void)evaluator().discover("x.mail.example.com");
  EXPECT_EQ(dns->asked().size(), 4u);
}

TEST_F(Dmarc, DeepTreeWalkExampleFindsTheOrganizationalDomainsRecord) {
  // RFC 9989 App. B.3.2 "Deep Tree Walk Example".
  dns->txt("_dmarc.example.com", {"v=DMARC1; p=reject"});
  dns->txt("_dmarc.signing.example.com", {"v=DMARC1; p=none"});
  dns->exists("a.b.c.d.e.f.g.h.i.j.k.example.com");
  auto v = eval("x@a.b.c.d.e.f.g.h.i.j.k.example.com", {spf(SpfResult::Fail, "example.com")},
                {dkim(DkimResult::Pass, "signing.example.com")});
  EXPECT_EQ(v.result, DmarcResult::Pass) << v.reason;
  EXPECT_EQ(v.policy_domain, "example.com");
  EXPECT_EQ(v.org_domain, "example.com");
  EXPECT_TRUE(v.dkim_aligned);
  EXPECT_FALSE(v.spf_aligned);
  EXPECT_LE(dns->asked().size(), 8u + 3u);  // author walk + signing.example.com's (memoised)
}

TEST_F(Dmarc, PsdNStopsTheWalkAndIsTheOrganizationalDomain) {
  dns->txt("_dmarc.mail.example.com", {"v=DMARC1; p=quarantine; psd=n"});
  dns->txt("_dmarc.example.com", {"v=DMARC1; p=reject"});
  dns->exists("a.mail.example.com");
  auto d = evaluator().discover("a.mail.example.com");
  ASSERT_EQ(d.status, DmarcResult::Pass) << d.why;
  EXPECT_EQ(d.org_domain, "mail.example.com");  // §4.10.2 rule 1
  EXPECT_EQ(d.policy_domain, "mail.example.com");
  EXPECT_EQ(d.policy, Policy::Quarantine);  // sp absent → p
  EXPECT_EQ(dns->asked(),
            (std::vector<std::string>{"_dmarc.a.mail.example.com", "_dmarc.mail.example.com"}));
  EXPECT_EQ(evaluator().organizational_domain("a.mail.example.com"), "mail.example.com");
}

TEST_F(Dmarc, PsdYStopsTheWalkAndAppliesOnlyWithoutAnOrganizationalRecord) {
  dns->txt("_dmarc.bank.example", {"v=DMARC1; p=reject; sp=quarantine; np=reject; psd=y"});
  dns->txt("_dmarc.giant.bank.example", {"v=DMARC1; p=none"});
  dns->exists("giant.bank.example");
  dns->exists("mail.giant.bank.example");
  dns->exists("small.bank.example");
  // An Organizational Domain with its own record: the PSD record does not apply (§4.10.1).
  auto d = evaluator().discover("mail.giant.bank.example");
  ASSERT_EQ(d.status, DmarcResult::Pass) << d.why;
  EXPECT_EQ(d.policy_domain, "giant.bank.example");
  EXPECT_EQ(d.org_domain, "giant.bank.example");
  EXPECT_EQ(d.policy, Policy::None);
  // Without one: the PSD's record, with sp for an existing domain...
  dns->clear_log();
  d = evaluator().discover("small.bank.example");
  ASSERT_EQ(d.status, DmarcResult::Pass) << d.why;
  EXPECT_EQ(d.policy_domain, "bank.example");
  EXPECT_EQ(d.org_domain, "small.bank.example");  // one label below the psd=y domain
  EXPECT_EQ(d.policy, Policy::Quarantine);
  EXPECT_TRUE(d.author_domain_exists);
  // The walk stopped at psd=y: _dmarc.example was never asked.
  EXPECT_EQ(dns->asked(),
            (std::vector<std::string>{"_dmarc.small.bank.example", "_dmarc.bank.example"}));
  // ... and np for a name that does not exist.
  d = evaluator().discover("gone.bank.example");
  ASSERT_EQ(d.status, DmarcResult::Pass) << d.why;
  EXPECT_EQ(d.policy, Policy::Reject);
  EXPECT_FALSE(d.author_domain_exists);
  // A PSD that mails as itself: its own record, p.
  d = evaluator().discover("bank.example");
  EXPECT_EQ(d.policy_domain, "bank.example");
  EXPECT_EQ(d.org_domain, "bank.example");
  EXPECT_EQ(d.policy, Policy::Reject);
}

TEST_F(Dmarc, PsdExampleOfRfc9989Alignment) {
  // RFC 9989 App. B.3.3 "Example with a PSD DMARC Policy Record".
  dns->txt("_dmarc.bank.example", {"v=DMARC1; p=reject; psd=y"});
  dns->txt("_dmarc.giant.bank.example", {"v=DMARC1; p=reject"});
  auto e = evaluator();
  EXPECT_EQ(e.organizational_domain("giant.bank.example"), "giant.bank.example");
  EXPECT_EQ(e.organizational_domain("mail.giant.bank.example"), "giant.bank.example");
  EXPECT_EQ(e.organizational_domain("mail.mega.bank.example"), "mega.bank.example");
  auto v = e.evaluate({"<ceo@giant.bank.example>"},
                      std::vector{spf(SpfResult::Pass, "mail.giant.bank.example")},
                      std::vector{dkim(DkimResult::Pass, "mail.mega.bank.example")});
  EXPECT_EQ(v.result, DmarcResult::Pass);
  EXPECT_TRUE(v.spf_aligned);
  EXPECT_FALSE(v.dkim_aligned);
}

TEST_F(Dmarc, OrganizationalDomainIsTheRecordWithFewestLabels) {
  // RFC 9989 §4.10.2 examples.
  dns->txt("_dmarc.mail.example.com", {"v=DMARC1; p=none"});
  dns->txt("_dmarc.example.com", {"v=DMARC1; p=none"});
  auto e = evaluator();
  EXPECT_EQ(e.organizational_domain("a.mail.example.com"), "example.com");
  EXPECT_EQ(e.organizational_domain("example.com"), "example.com");
  EXPECT_EQ(e.organizational_domain("other.test"), "other.test");  // no record: itself
  // A psd=y record at the start domain does not count as "a PSD above" (§4.10.2 rule 2).
  dns->txt("_dmarc.psd.test", {"v=DMARC1; p=none; psd=y"});
  EXPECT_EQ(e.organizational_domain("psd.test"), "psd.test");
  EXPECT_EQ(e.organizational_domain("x.y.psd.test"), "y.psd.test");
}

TEST_F(Dmarc, PolicyComesFromTheOrganizationalDomainNotTheFirstRecordAbove) {
  // RFC 9989 §4.10.1: Author Domain, then its Organizational Domain, then its PSD. A record at
  // an intermediate name that is neither is not used.
  dns->txt("_dmarc.b.example.com", {"v=DMARC1; p=none"});
  dns->txt("_dmarc.example.com", {"v=DMARC1; p=reject"});
  dns->exists("a.b.example.com");
  auto d = evaluator().discover("a.b.example.com");
  ASSERT_EQ(d.status, DmarcResult::Pass);
  EXPECT_EQ(d.org_domain, "example.com");
  EXPECT_EQ(d.policy_domain, "example.com");
  EXPECT_EQ(d.policy, Policy::Reject);
}

TEST_F(Dmarc, MultipleRecordsAreDiscardedAndTheWalkGoesOn) {
  // RFC 9989 §4.10 step 2 (RFC 7489 §6.6.3 step 3 alike).
  dns->txt("_dmarc.a.example.com", {"v=DMARC1; p=none", "v=DMARC1; p=reject"});
  dns->txt("_dmarc.example.com", {"v=DMARC1; p=quarantine; sp=quarantine"});
  dns->exists("a.example.com");
  auto d = evaluator().discover("a.example.com");
  ASSERT_EQ(d.status, DmarcResult::Pass) << d.why;
  EXPECT_EQ(d.policy_domain, "example.com");
  EXPECT_EQ(d.policy, Policy::Quarantine);
  EXPECT_NE(d.why.find("2 DMARC records at _dmarc.a.example.com discarded"), std::string::npos)
      << d.why;
  // Two records at the only level: no policy at all.
  dns->txt("_dmarc.twice.test", {"v=DMARC1; p=reject", "v=DMARC1; p=reject"});
  EXPECT_EQ(evaluator().discover("twice.test").status, DmarcResult::None);
}

TEST_F(Dmarc, NonDmarcRecordsAreDiscarded) {
  dns->txt("_dmarc.example.com",
           {"v=spf1 -all", "v=DMARC1; p=reject", "some-verification=123", "v=DMARC2; p=none"});
  auto d = evaluator().discover("example.com");
  ASSERT_EQ(d.status, DmarcResult::Pass) << d.why;
  EXPECT_EQ(d.policy, Policy::Reject);
  // Only non-DMARC1 records: as if none.
  dns->txt("_dmarc.other.test", {"v=spf1 -all"});
  EXPECT_EQ(evaluator().discover("other.test").status, DmarcResult::None);
}

TEST_F(Dmarc, SubdomainPolicySpAndNonExistentNp) {
  dns->txt("_dmarc.example.com", {"v=DMARC1; p=reject; sp=quarantine; np=none"});
  dns->exists("mail.example.com");
  auto d = evaluator().discover("mail.example.com");
  EXPECT_EQ(d.policy, Policy::Quarantine);
  EXPECT_TRUE(d.author_domain_exists);
  // RFC 9989 §3.2.13: NXDOMAIN means the name does not exist: np.
  dns->clear_log();
  d = evaluator().discover("nowhere.example.com");
  EXPECT_EQ(d.policy, Policy::None);
  EXPECT_FALSE(d.author_domain_exists);
  EXPECT_EQ(dns->asked(dns::RType::A), std::vector<std::string>{"nowhere.example.com"});
}

TEST_F(Dmarc, NpFallsBackToSpThenP) {
  // RFC 9989 §4.7 np: absent → sp, else p. No existence query is needed then.
  dns->txt("_dmarc.example.com", {"v=DMARC1; p=reject; sp=none"});
  auto d = evaluator().discover("nowhere.example.com");
  EXPECT_EQ(d.policy, Policy::None);
  dns->txt("_dmarc.example.net", {"v=DMARC1; p=quarantine"});
  d = evaluator().discover("nowhere.example.net");
  EXPECT_EQ(d.policy, Policy::Quarantine);
  EXPECT_TRUE(dns->asked(dns::RType::A).empty());
  EXPECT_TRUE(dns->asked(dns::RType::MX).empty());
}

TEST_F(Dmarc, ExistenceCheckTriesAaaaAndMxWhenATempFails) {
  dns->txt("_dmarc.example.com", {"v=DMARC1; p=reject; np=quarantine"});
  dns->fail("mail.example.com", dns::RType::A);
  dns->exists("mail.example.com");
  auto d = evaluator().discover("mail.example.com");
  EXPECT_EQ(d.status, DmarcResult::Pass);
  EXPECT_TRUE(d.author_domain_exists);
  EXPECT_EQ(d.policy, Policy::Reject);
  dns->fail("broken.example.com");
  d = evaluator().discover("broken.example.com");
  EXPECT_EQ(d.status, DmarcResult::TempError);
}

TEST_F(Dmarc, InvalidPolicyRecord) {
  // RFC 9989 §4.10.1: invalid p without a valid rua: no DMARC processing (permerror, §9.2);
  // with a valid rua: p=none.
  dns->txt("_dmarc.example.com", {"v=DMARC1; p=block"});
  auto v = eval("a@example.com", {}, {});
  EXPECT_EQ(v.result, DmarcResult::PermError);
  EXPECT_EQ(v.policy_domain, "example.com");
  EXPECT_FALSE(v.record);
  dns->txt("_dmarc.example.net", {"v=DMARC1; p=block; rua=mailto:d@example.net"});
  v = eval("a@example.net", {}, {});
  EXPECT_EQ(v.result, DmarcResult::Fail);
  EXPECT_EQ(v.applied_policy, Policy::None);
  EXPECT_EQ(v.disposition, Disposition::None);
}

TEST_F(Dmarc, NoRecordIsNone) {
  dns->exists("example.org");
  auto v = eval("a@example.org", {spf(SpfResult::Pass, "example.org")}, {});
  EXPECT_EQ(v.result, DmarcResult::None);
  EXPECT_EQ(v.header_from, "example.org");
  EXPECT_EQ(v.disposition, Disposition::None);
  EXPECT_FALSE(v.record);
}

// ------------------------------------------------------------------ DNS errors, RFC 9989 §5.3.6

TEST_F(Dmarc, TempErrorDuringTheWalkIsTempError) {
  dns->fail("_dmarc.example.com");
  auto d = evaluator().discover("mail.example.com");
  EXPECT_EQ(d.status, DmarcResult::TempError);
  EXPECT_NE(d.why.find("SERVFAIL"), std::string::npos);
  auto v = eval("a@mail.example.com", {spf(SpfResult::Pass, "mail.example.com")},
                {dkim(DkimResult::Pass, "mail.example.com")});
  EXPECT_EQ(v.result, DmarcResult::TempError);
  EXPECT_EQ(v.disposition, Disposition::None);
  EXPECT_EQ(evaluator().organizational_domain("mail.example.com"), "");
}

TEST_F(Dmarc, TempErrorAfterTheAuthorRecordOnlyMattersForRelaxedAlignment) {
  dns->txt("_dmarc.mail.example.com", {"v=DMARC1; p=reject"});
  dns->fail("_dmarc.example.com");
  auto d = evaluator().discover("mail.example.com");
  EXPECT_EQ(d.status, DmarcResult::Pass);  // the Author Domain's record is known
  EXPECT_EQ(d.org_domain, "");             // but not its Organizational Domain
  // Identical identifiers need no Organizational Domain (RFC 9989 §4.10.2 note).
  auto v = eval("a@mail.example.com", {}, {dkim(DkimResult::Pass, "mail.example.com")});
  EXPECT_EQ(v.result, DmarcResult::Pass);
  // Relaxed alignment of another name does: neither pass nor fail.
  v = eval("a@mail.example.com", {spf(SpfResult::Pass, "bounce.example.com")},
           {dkim(DkimResult::Pass, "example.com")});
  EXPECT_EQ(v.result, DmarcResult::TempError) << v.reason;
  // An identifier under another TLD can never align: a fail, DNS trouble or not.
  v = eval("a@mail.example.com", {}, {dkim(DkimResult::Pass, "example.net")});
  EXPECT_EQ(v.result, DmarcResult::Fail);
  EXPECT_EQ(v.disposition, Disposition::Reject);
}

TEST_F(Dmarc, AuthenticationTempErrorOnAnAlignedIdentifierIsTempError) {
  dns->txt("_dmarc.example.com", {"v=DMARC1; p=reject"});
  auto v = eval("a@example.com", {spf(SpfResult::Fail, "example.com")},
                {dkim(DkimResult::TempError, "example.com")});
  EXPECT_EQ(v.result, DmarcResult::TempError) << v.reason;
  v = eval("a@example.com", {spf(SpfResult::TempError, "example.com")}, {});
  EXPECT_EQ(v.result, DmarcResult::TempError) << v.reason;
  // A temperror for a name that could not align changes nothing: fail.
  v = eval("a@example.com", {spf(SpfResult::TempError, "example.net")},
           {dkim(DkimResult::TempError, "other.org")});
  EXPECT_EQ(v.result, DmarcResult::Fail);
  // And an aligned pass wins over a temperror elsewhere.
  v = eval("a@example.com", {spf(SpfResult::TempError, "example.com")},
           {dkim(DkimResult::Pass, "example.com")});
  EXPECT_EQ(v.result, DmarcResult::Pass);
}

// ------------------------------------------------------------------ alignment

TEST_F(Dmarc, RelaxedAlignment) {
  dns->txt("_dmarc.example.com", {"v=DMARC1; p=reject"});
  dns->exists("news.example.com");
  auto v = eval("a@news.example.com", {spf(SpfResult::Pass, "bounce.example.com")},
                {dkim(DkimResult::Pass, "foo.example.com")});
  EXPECT_EQ(v.result, DmarcResult::Pass) << v.reason;
  EXPECT_TRUE(v.spf_aligned);
  EXPECT_TRUE(v.dkim_aligned);
  EXPECT_EQ(v.org_domain, "example.com");
  EXPECT_EQ(v.policy_domain, "example.com");
  EXPECT_EQ(v.disposition, Disposition::None);
  // RFC 9989 §4.4 table: foo.example.net vs news.example.com: none.
  v = eval("a@news.example.com", {}, {dkim(DkimResult::Pass, "foo.example.net")});
  EXPECT_EQ(v.result, DmarcResult::Fail);
}

TEST_F(Dmarc, StrictAlignment) {
  dns->txt("_dmarc.example.com", {"v=DMARC1; p=reject; adkim=s; aspf=s"});
  auto v = eval("a@example.com", {spf(SpfResult::Pass, "bounce.example.com")},
                {dkim(DkimResult::Pass, "mail.example.com")});
  EXPECT_EQ(v.result, DmarcResult::Fail);
  EXPECT_FALSE(v.spf_aligned);
  EXPECT_FALSE(v.dkim_aligned);
  EXPECT_EQ(v.disposition, Disposition::Reject);
  // Identical names align strictly, compared case-insensitively with trailing dots dropped.
  v = eval("a@example.com", {spf(SpfResult::Pass, "EXAMPLE.com.")}, {});
  EXPECT_EQ(v.result, DmarcResult::Pass);
  EXPECT_TRUE(v.spf_aligned);
  v = eval("a@example.com", {}, {dkim(DkimResult::Pass, "Example.COM")});
  EXPECT_TRUE(v.dkim_aligned);
}

TEST_F(Dmarc, OnlyTheMailFromSpfVerdictCounts) {
  // RFC 7489 §3.1.2, RFC 9989 §4.4.2: the HELO identity never aligns for DMARC.
  dns->txt("_dmarc.example.com", {"v=DMARC1; p=quarantine"});
  auto v = eval(
      "a@example.com",
      {spf(SpfResult::None, "other.net"), spf(SpfResult::Pass, "example.com", SpfScope::Helo)}, {});
  EXPECT_EQ(v.result, DmarcResult::Fail);
  EXPECT_EQ(v.disposition, Disposition::Quarantine);
  // HELO first in the list, MAIL FROM second: still the MAIL FROM one.
  v = eval(
      "a@example.com",
      {spf(SpfResult::Fail, "example.com", SpfScope::Helo), spf(SpfResult::Pass, "example.com")},
      {});
  EXPECT_EQ(v.result, DmarcResult::Pass);
  // SPF results other than pass never align.
  for (auto r : {SpfResult::SoftFail, SpfResult::Neutral, SpfResult::Fail, SpfResult::PermError}) {
    EXPECT_EQ(eval("a@example.com", {spf(r, "example.com")}, {}).result, DmarcResult::Fail);
  }
}

TEST_F(Dmarc, AnyPassingAlignedSignatureCounts) {
  dns->txt("_dmarc.example.com", {"v=DMARC1; p=reject"});
  auto v = eval("a@example.com", {},
                {dkim(DkimResult::Pass, "esp.example.net"), dkim(DkimResult::Fail, "example.com"),
                 dkim(DkimResult::Pass, "example.com")});
  EXPECT_EQ(v.result, DmarcResult::Pass);
  EXPECT_TRUE(v.dkim_aligned);
  v = eval("a@example.com", {},
           {dkim(DkimResult::Fail, "example.com"), dkim(DkimResult::Policy, "example.com"),
            dkim(DkimResult::Pass, "esp.example.net")});
  EXPECT_EQ(v.result, DmarcResult::Fail);
}

TEST_F(Dmarc, UnalignableIdentifiersCostNoQueries) {
  dns->txt("_dmarc.example.com", {"v=DMARC1; p=reject"});
  auto e = evaluator();
  dns->clear_log();
  (void)e.evaluate({"a@example.com"}, std::vector{spf(SpfResult::Pass, "esp.example.net")},
                   std::vector{dkim(DkimResult::Pass, "esp.example.org")});
  for (const auto& n : dns->asked()) {
    EXPECT_EQ(n.find("example.net"), std::string::npos) << n;
    EXPECT_EQ(n.find("example.org"), std::string::npos) << n;
  }
}

// ------------------------------------------------------------------ disposition

TEST_F(Dmarc, DispositionFollowsThePolicyOnFailOnly) {
  dns->txt("_dmarc.example.com", {"v=DMARC1; p=reject"});
  dns->txt("_dmarc.example.net", {"v=DMARC1; p=quarantine"});
  dns->txt("_dmarc.example.org", {"v=DMARC1; p=none"});
  EXPECT_EQ(eval("a@example.com", {}, {}).disposition, Disposition::Reject);
  EXPECT_EQ(eval("a@example.net", {}, {}).disposition, Disposition::Quarantine);
  EXPECT_EQ(eval("a@example.org", {}, {}).disposition, Disposition::None);
  auto v = eval("a@example.com", {}, {dkim(DkimResult::Pass, "example.com")});
  EXPECT_EQ(v.disposition, Disposition::None);
  EXPECT_EQ(v.applied_policy, Policy::Reject);
  EXPECT_TRUE(v.overrides.empty());
}

TEST_F(Dmarc, TestingModeLowersByOneLevel) {
  // RFC 9989 §4.7 t=y: reject → quarantine, quarantine → none; no effect on p=none.
  dns->txt("_dmarc.example.com", {"v=DMARC1; p=reject; t=y"});
  dns->txt("_dmarc.example.net", {"v=DMARC1; p=quarantine; t=y"});
  dns->txt("_dmarc.example.org", {"v=DMARC1; p=none; t=y"});
  auto v = eval("a@example.com", {}, {});
  EXPECT_EQ(v.result, DmarcResult::Fail);
  EXPECT_EQ(v.applied_policy, Policy::Reject);
  EXPECT_EQ(v.disposition, Disposition::Quarantine);
  ASSERT_EQ(v.overrides.size(), 1u);
  EXPECT_EQ(v.overrides[0].first, OverrideReason::PolicyTestMode);
  v = eval("a@example.net", {}, {});
  EXPECT_EQ(v.disposition, Disposition::None);
  ASSERT_EQ(v.overrides.size(), 1u);
  EXPECT_EQ(v.overrides[0].first, OverrideReason::PolicyTestMode);
  v = eval("a@example.org", {}, {});
  EXPECT_EQ(v.disposition, Disposition::None);
  EXPECT_TRUE(v.overrides.empty());
}

TEST_F(Dmarc, PctSamplingFallsToTheNextLowerPolicy) {
  // RFC 7489 §6.6.4: selected when a random 0..99 is below pct; else the next lower policy.
  dns->txt("_dmarc.example.com", {"v=DMARC1; p=reject; pct=50"});
  int roll = 0;
  DmarcOptions o;
  o.random_percent = [&] { return roll; };
  roll = 49;
  auto v = eval("a@example.com", {}, {}, o);
  EXPECT_EQ(v.disposition, Disposition::Reject);
  EXPECT_TRUE(v.overrides.empty());
  roll = 50;
  v = eval("a@example.com", {}, {}, o);
  EXPECT_EQ(v.disposition, Disposition::Quarantine);
  ASSERT_EQ(v.overrides.size(), 1u);
  EXPECT_EQ(v.overrides[0].first, OverrideReason::SampledOut);
  EXPECT_EQ(v.overrides[0].second, "pct=50");
  // pct=0: never selected; quarantine → none.
  dns->txt("_dmarc.example.net", {"v=DMARC1; p=quarantine; pct=0"});
  roll = 0;
  v = eval("a@example.net", {}, {}, o);
  EXPECT_EQ(v.disposition, Disposition::None);
  EXPECT_EQ(v.overrides.size(), 1u);
  // pct=100 never asks for a number.
  bool asked = false;
  o.random_percent = [&] {
    asked = true;
    return 99;
  };
  (void)eval("a@example.org", {}, {}, o);
  dns->txt("_dmarc.example.org", {"v=DMARC1; p=reject"});
  EXPECT_EQ(eval("a@example.org", {}, {}, o).disposition, Disposition::Reject);
  EXPECT_FALSE(asked);
}

TEST_F(Dmarc, DefaultSamplerStaysInRange) {
  dns->txt("_dmarc.example.com", {"v=DMARC1; p=reject; pct=50"});
  auto e = evaluator();
  int rejected = 0;
  for (int i = 0; i < 400; ++i) {
    auto v = e.evaluate({"a@example.com"}, {}, {});
    rejected += v.disposition == Disposition::Reject ? 1 : 0;
  }
  EXPECT_GT(rejected, 100);
  EXPECT_LT(rejected, 300);
}

// ------------------------------------------------------------------ From header

TEST_F(Dmarc, FromHeaderRules) {
  dns->txt("_dmarc.example.com", {"v=DMARC1; p=reject"});
  auto e = evaluator();
  std::vector<SpfVerdict> none_spf;
  std::vector<DkimVerdict> pass{dkim(DkimResult::Pass, "example.com")};
  // Missing: permerror, no header_from.
  auto v = e.evaluate({}, none_spf, pass);
  EXPECT_EQ(v.result, DmarcResult::PermError);
  EXPECT_EQ(v.header_from, "");
  // Repeated From field (RFC 9989 §4.4: no alignment possible), even with the same domain.
  v = e.evaluate({"a@example.com", "b@example.com"}, none_spf, pass);
  EXPECT_EQ(v.result, DmarcResult::PermError);
  EXPECT_EQ(v.header_from, "");
  // One field, two domains (RFC 9989 §5.3.1).
  v = e.evaluate({"a@example.com, b@evil.example"}, none_spf, pass);
  EXPECT_EQ(v.result, DmarcResult::PermError);
  EXPECT_EQ(v.header_from, "");
  EXPECT_NE(v.reason.find("evil.example"), std::string::npos);
  // One field, two mailboxes of one domain: one Author Domain.
  v = e.evaluate({"a@example.com, \"B\" <b@EXAMPLE.COM>"}, none_spf, pass);
  EXPECT_EQ(v.result, DmarcResult::Pass);
  EXPECT_EQ(v.header_from, "example.com");
  // No domain at all.
  v = e.evaluate({"undisclosed-recipients:;"}, none_spf, pass);
  EXPECT_EQ(v.result, DmarcResult::PermError);
  // Display names, comments, encoded words and folding.
  v = e.evaluate({"=?utf-8?q?J=C3=BCrgen?= (the boss)\r\n <juergen@Example.Com.>"}, none_spf, pass);
  EXPECT_EQ(v.result, DmarcResult::Pass) << v.reason;
  EXPECT_EQ(v.header_from, "example.com");
}

TEST_F(Dmarc, IdnAuthorDomainsAreALabels) {
  // RFC 9989 §5.3.1: U-labels become A-labels; A-labels are used as they are.
  dns->txt("_dmarc.xn--bcher-kva.example", {"v=DMARC1; p=reject"});
  auto v = eval("a@xn--bcher-kva.example", {}, {dkim(DkimResult::Pass, "xn--bcher-kva.example")});
  EXPECT_EQ(v.result, DmarcResult::Pass);
  EXPECT_EQ(v.header_from, "xn--bcher-kva.example");
  v = eval("a@bücher.example", {}, {});
  EXPECT_EQ(v.header_from, "xn--bcher-kva.example");
  EXPECT_EQ(v.result, DmarcResult::Fail);
  EXPECT_EQ(v.disposition, Disposition::Reject);
}

TEST_F(Dmarc, AuthorDomainIsNormalised) {
  dns->txt("_dmarc.example.com", {"v=DMARC1; p=reject"});
  auto d = evaluator().discover("EXAMPLE.Com.");
  EXPECT_EQ(d.status, DmarcResult::Pass);
  EXPECT_EQ(d.policy_domain, "example.com");
  EXPECT_EQ(evaluator().discover("not a domain").status, DmarcResult::PermError);
  EXPECT_EQ(evaluator().discover("").status, DmarcResult::PermError);
  EXPECT_EQ(evaluator().discover("a..b").status, DmarcResult::PermError);
  EXPECT_EQ(eval("a@[192.0.2.1]", {}, {}).result, DmarcResult::PermError);
}

TEST(AddressDomains, EveryMailboxInOrder) {
  EXPECT_EQ(mime::address_domains("a@Example.COM, \"x, y\" <b@sub.example.net.>, c"),
            (std::vector<std::string>{"example.com", "sub.example.net"}));
  EXPECT_EQ(mime::address_domains("team: a@one.test, b@two.test;"),
            (std::vector<std::string>{"one.test", "two.test"}));
  EXPECT_TRUE(mime::address_domains("").empty());
  EXPECT_EQ(mime::address_domains("x@bücher.example"),
            std::vector<std::string>{"xn--bcher-kva.example"});
}

// ------------------------------------------------------------------ PSL, RFC 7489

TEST_F(Dmarc, PslDiscoveryAsksTheAuthorThenTheOrganizationalDomain) {
  DmarcOptions o;
  o.discovery = Discovery::Psl;
  dns->txt("_dmarc.example.co.uk", {"v=DMARC1; p=reject; sp=quarantine"});
  dns->exists("mail.example.co.uk");
  auto e = evaluator(o);
  EXPECT_EQ(e.discovery(), Discovery::Psl);
  auto d = e.discover("a.mail.example.co.uk");
  ASSERT_EQ(d.status, DmarcResult::Pass) << d.why;
  EXPECT_EQ(d.how, Discovery::Psl);
  EXPECT_EQ(d.org_domain, "example.co.uk");
  EXPECT_EQ(d.policy_domain, "example.co.uk");
  EXPECT_EQ(d.policy, Policy::Quarantine);
  EXPECT_EQ(dns->asked(),
            (std::vector<std::string>{"_dmarc.a.mail.example.co.uk", "_dmarc.example.co.uk"}));
  EXPECT_EQ(e.organizational_domain("A.B.Example.CO.UK."), "example.co.uk");
  EXPECT_EQ(e.organizational_domain("co.uk"), "co.uk");
  EXPECT_EQ(e.organizational_domain("example.com"), "example.com");
}

TEST_F(Dmarc, PslAlignmentNeedsNoWalk) {
  DmarcOptions o;
  o.discovery = Discovery::Psl;
  dns->txt("_dmarc.example.co.uk", {"v=DMARC1; p=reject"});
  dns->txt("_dmarc.co.uk", {"v=DMARC1; p=none; psd=y"});  // RFC 7489 knows no PSD records
  dns->exists("news.example.co.uk");
  auto v = eval("a@news.example.co.uk", {}, {dkim(DkimResult::Pass, "mail.example.co.uk")}, o);
  EXPECT_EQ(v.result, DmarcResult::Pass);
  EXPECT_EQ(v.discovery, Discovery::Psl);
  for (const auto& n : dns->asked()) EXPECT_NE(n, "_dmarc.co.uk");
  // Another registrable domain under the same suffix does not align.
  v = eval("a@news.example.co.uk", {}, {dkim(DkimResult::Pass, "other.co.uk")}, o);
  EXPECT_EQ(v.result, DmarcResult::Fail);
  // No record at the author or the Organizational Domain: none (the PSD is not asked).
  dns->clear_log();
  v = eval("a@nobody.co.uk", {}, {}, o);
  EXPECT_EQ(v.result, DmarcResult::None);
  EXPECT_EQ(dns->asked(), std::vector<std::string>{"_dmarc.nobody.co.uk"});
}

TEST_F(Dmarc, PslTempError) {
  DmarcOptions o;
  o.discovery = Discovery::Psl;
  dns->fail("_dmarc.example.com");
  EXPECT_EQ(evaluator(o).discover("mail.example.com").status, DmarcResult::TempError);
}

// ------------------------------------------------------------------ threads

TEST_F(Dmarc, OneEvaluatorManyThreads) {
  dns->txt("_dmarc.example.com", {"v=DMARC1; p=reject; pct=50"});
  dns->exists("mail.example.com");
  auto e = evaluator();
  std::atomic<int> passes{0}, fails{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        auto v = e.evaluate(
            {"a@mail.example.com"}, std::vector<SpfVerdict>{},
            std::vector{dkim(i % 2 ? DkimResult::Pass : DkimResult::Fail, "example.com")});
        (v.result == DmarcResult::Pass ? passes : fails)++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(passes.load(), 400);
  EXPECT_EQ(fails.load(), 400);
}

}  // namespace
}  // namespace mailreport::auth

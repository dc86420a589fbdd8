// Tests of the failure-report planner (auth/failure) on hand-made evaluations and a resolver
// answering from a map: the DMARC fo= matrix, psd=y, ruf parsing (!size, %-encoding, non-mailto)
// and external destination verification (accepted, refused, same organization, DNS error,
// replacement ruf=), DKIM r=y with _report._domainkey ra/rp/rr (RFC 6651), SPF ra/rp/rr
// modifiers of the MAIL FROM domain's own record (RFC 6652), send = false, rate limits, and
// messages that are reports or our own traffic.
#include "mailreport/auth/failure.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "dmarc_fake_resolver.hpp"

namespace mailreport::auth {
namespace {

using dmarc_test::FakeResolver;

DmarcRecord record(std::string fo, std::vector<std::string> ruf) {
  DmarcRecord r;
  r.p = Policy::Reject;
  r.fo = std::move(fo);
  r.ruf = std::move(ruf);
  return r;
}

SpfVerdict spf(SpfResult r, std::string domain) {
  SpfVerdict v;
  v.scope = SpfScope::MailFrom;
  v.result = r;
  v.domain = std::move(domain);
  return v;
}

DkimVerdict dkim(DkimResult r, std::string domain, std::string reason = "",
                 std::string auth_failure = "") {
  DkimVerdict v;
  v.result = r;
  v.domain = std::move(domain);
  v.selector = "s1";
  v.reason = std::move(reason);
  v.auth_failure = std::move(auth_failure);
  return v;
}

// A message From example.com evaluated against `rec` (found at example.com).
Evaluation message(DmarcRecord rec) {
  Evaluation ev;
  ev.time = 1763719200;
  ev.source_ip = "192.0.2.1";
  ev.header_from = "example.com";
  ev.envelope_from = "example.com";
  ev.dmarc.header_from = "example.com";
  ev.dmarc.policy_domain = "example.com";
  ev.dmarc.org_domain = "example.com";
  ev.dmarc.record = std::move(rec);
  ev.dmarc.applied_policy = Policy::Reject;
  return ev;
}

class FailurePlan : public ::testing::Test {
 protected:
  std::shared_ptr<FakeResolver> dns = std::make_shared<FakeResolver>();
  std::shared_ptr<config::Config> cfg =
      std::make_shared<config::Config>(*config::Config::defaults());
  double random = 0.0;

  void SetUp() override {
    dns->txt("_dmarc.example.com", {"v=DMARC1; p=reject"});
    cfg->report.dmarc.send = config::RateLimit{1, std::chrono::hours(24)};
    cfg->report.dkim.send = config::RateLimit{2, std::chrono::hours(12)};
    cfg->report.spf.send = config::RateLimit{3, std::chrono::hours(1)};
  }

  std::vector<FailureReportRequest> plan(const Evaluation& ev, MessageTraits traits = {}) {
    FailurePlanner planner(dns, cfg, [this] { return random; });
    return planner.plan(ev, traits);
  }

  std::vector<FailureReportRequest> of_kind(const Evaluation& ev, FailureKind kind) {
    std::vector<FailureReportRequest> out;
    for (auto& r : plan(ev)) {
      if (r.kind == kind) out.push_back(std::move(r));
    }
    return out;
  }
};

// ------------------------------------------------------------------ DMARC fo= (RFC 7489 §6.3)

// The situations of the fo= matrix: which mechanisms gave an aligned pass, and what failed.
enum class Scenario {
  AllAligned,          // DKIM and SPF aligned passes, nothing failed
  DkimOnlySpfFails,    // DKIM aligned pass; SPF fail
  SpfOnlyDkimFails,    // SPF aligned pass; the aligned signature failed
  BothFail,            // signature failed, SPF failed: DMARC fail
  AllAlignedThirdSig,  // both aligned passes, plus a failed third-party signature
  NoSigSoftFail,       // no signature, SPF softfail: DMARC fail
  NoSigNeutral,        // no signature, SPF neutral: DMARC fail
};

Evaluation scenario(Scenario s, const std::string& fo) {
  Evaluation ev = message(record(fo, {"mailto:ruf@example.com"}));
  DmarcVerdict& d = ev.dmarc;
  switch (s) {
    case Scenario::AllAligned:
      d.result = DmarcResult::Pass;
      d.dkim_aligned = d.spf_aligned = true;
      ev.dkim = {dkim(DkimResult::Pass, "example.com")};
      ev.spf = {spf(SpfResult::Pass, "example.com")};
      break;
    case Scenario::DkimOnlySpfFails:
      d.result = DmarcResult::Pass;
      d.dkim_aligned = true;
      ev.dkim = {dkim(DkimResult::Pass, "example.com")};
      ev.spf = {spf(SpfResult::Fail, "bounces.example.net")};
      break;
    case Scenario::SpfOnlyDkimFails:
      d.result = DmarcResult::Pass;
      d.spf_aligned = true;
      ev.dkim = {dkim(DkimResult::Fail, "example.com", "body hash mismatch", "bodyhash")};
      ev.spf = {spf(SpfResult::Pass, "example.com")};
      break;
    case Scenario::BothFail:
      d.result = DmarcResult::Fail;
      d.disposition = Disposition::Reject;
      ev.dkim = {dkim(DkimResult::Fail, "example.com", "signature did not verify", "signature")};
      ev.spf = {spf(SpfResult::Fail, "example.com")};
      break;
    case Scenario::AllAlignedThirdSig:
      d.result = DmarcResult::Pass;
      d.dkim_aligned = d.spf_aligned = true;
      ev.dkim = {dkim(DkimResult::Pass, "example.com"),
                 dkim(DkimResult::PermError, "esp.example.org", "no key")};
      ev.spf = {spf(SpfResult::Pass, "example.com")};
      break;
    case Scenario::NoSigSoftFail:
      d.result = DmarcResult::Fail;
      d.disposition = Disposition::Quarantine;
      ev.spf = {spf(SpfResult::SoftFail, "example.com")};
      break;
    case Scenario::NoSigNeutral:
      d.result = DmarcResult::Fail;
      d.disposition = Disposition::Reject;
      ev.spf = {spf(SpfResult::Neutral, "example.com")};
      break;
  }
  return ev;
}

TEST_F(FailurePlan, FoMatrix) {
  using S = Scenario;
  const std::vector<S> all = {S::AllAligned,  S::DkimOnlySpfFails,   S::SpfOnlyDkimFails,
                              S::BothFail,    S::AllAlignedThirdSig, S::NoSigSoftFail,
                              S::NoSigNeutral};
  // RFC 7489 §6.3: 0 = all mechanisms failed to give an aligned pass; 1 = any did; d = a
  // signature failed, aligned or not; s = SPF failed, aligned or not.
  const std::map<std::string, std::vector<S>> expected = {
      {"0", {S::BothFail, S::NoSigSoftFail, S::NoSigNeutral}},
      {"1",
       {S::DkimOnlySpfFails, S::SpfOnlyDkimFails, S::BothFail, S::NoSigSoftFail, S::NoSigNeutral}},
      {"d", {S::SpfOnlyDkimFails, S::BothFail, S::AllAlignedThirdSig}},
      {"s", {S::DkimOnlySpfFails, S::BothFail, S::NoSigSoftFail}},
      {"1:d",
       {S::DkimOnlySpfFails, S::SpfOnlyDkimFails, S::BothFail, S::AllAlignedThirdSig,
        S::NoSigSoftFail, S::NoSigNeutral}},
      {"0:s", {S::DkimOnlySpfFails, S::BothFail, S::NoSigSoftFail, S::NoSigNeutral}},
      {"d:s",
       {S::DkimOnlySpfFails, S::SpfOnlyDkimFails, S::BothFail, S::AllAlignedThirdSig,
        S::NoSigSoftFail}},
      {"s : D",
       {S::DkimOnlySpfFails, S::SpfOnlyDkimFails, S::BothFail, S::AllAlignedThirdSig,
        S::NoSigSoftFail}},
  };
  for (const auto& [fo, due] : expected) {
    for (S s : all) {
      const auto reqs = of_kind(scenario(s, fo), FailureKind::Dmarc);
      const bool want = std::find(due.begin(), due.end(), s) != due.end();
      EXPECT_EQ(reqs.size(), want ? 1u : 0u) << "fo=" << fo << " scenario " << static_cast<int>(s);
    }
  }
}

TEST_F(FailurePlan, DmarcRequestFields) {
  dns->txt("example.com", {"v=spf1 ip4:198.51.100.0/24 -all"});
  const auto reqs = plan(scenario(Scenario::BothFail, "1"));
  ASSERT_EQ(reqs.size(), 1u);
  const auto& r = reqs.front();
  EXPECT_EQ(r.kind, FailureKind::Dmarc);
  EXPECT_EQ(r.recipient, "ruf@example.com");
  EXPECT_EQ(r.max_size, 0u);
  EXPECT_EQ(r.reported_domain, "example.com");
  EXPECT_EQ(r.auth_failure, "dmarc");
  EXPECT_EQ(r.identity_alignment, "dkim, spf");  // RFC 9991: the ones that failed
  EXPECT_EQ(r.delivery_result, "reject");
  EXPECT_EQ(r.dkim_index, 0);  // the failed signature of the From domain
  EXPECT_EQ(r.spf_record, "v=spf1 ip4:198.51.100.0/24 -all");
  EXPECT_EQ(r.limit_count, 1u);
  EXPECT_EQ(r.limit_period, 86400);

  const auto q = plan(scenario(Scenario::DkimOnlySpfFails, "1"));
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(q.front().identity_alignment, "spf");
  EXPECT_EQ(q.front().delivery_result, "delivered");
  EXPECT_EQ(q.front().dkim_index, -1);  // no signature failed
  EXPECT_EQ(plan(scenario(Scenario::NoSigSoftFail, "0")).front().delivery_result, "spam");
  EXPECT_EQ(plan(scenario(Scenario::SpfOnlyDkimFails, "1")).front().identity_alignment, "dkim");
  EXPECT_EQ(plan(scenario(Scenario::AllAlignedThirdSig, "d")).front().identity_alignment, "none");
  // fo=d names the failed third-party signature; fo=1 would not (it did not fail alignment).
  EXPECT_EQ(plan(scenario(Scenario::AllAlignedThirdSig, "d")).front().dkim_index, 1);
}

TEST_F(FailurePlan, NoReportWithoutDmarcPassOrFail) {
  for (DmarcResult r : {DmarcResult::None, DmarcResult::TempError, DmarcResult::PermError}) {
    Evaluation ev = scenario(Scenario::BothFail, "1");
    ev.dmarc.result = r;
    EXPECT_TRUE(of_kind(ev, FailureKind::Dmarc).empty()) << to_string(r);
  }
  Evaluation ev = scenario(Scenario::BothFail, "1");
  ev.dmarc.record->ruf.clear();
  EXPECT_TRUE(plan(ev).empty());
  EXPECT_TRUE(FailurePlanner::may_report(ev));  // SPF failed: an SPF report could be due
  ev.spf.front().result = SpfResult::Pass;
  EXPECT_FALSE(FailurePlanner::may_report(ev));
}

TEST_F(FailurePlan, NeverForPsdRecords) {
  Evaluation ev = scenario(Scenario::BothFail, "1");
  ev.dmarc.record->psd = 'y';
  EXPECT_TRUE(of_kind(ev, FailureKind::Dmarc).empty());
  ev.dmarc.record->psd = 'n';
  EXPECT_EQ(of_kind(ev, FailureKind::Dmarc).size(), 1u);
}

// ------------------------------------------------------------------ ruf URIs (RFC 7489 §6.4)

TEST_F(FailurePlan, RufSizesEncodingAndSchemes) {
  Evaluation ev = scenario(Scenario::BothFail, "0");
  ev.dmarc.record->ruf = {"mailto:a@example.com!10m", "mailto:b@example.com!500",
                          "mailto:c@example.com!2K",  "mailto:d%2Bx@example.com?subject=x",
                          "https://example.com/ruf",  "mailto:not-an-address",
                          "mailto:a@example.com",     "mailto:e@example.com!1t",
                          "mailto:f@example.com!12q"};
  const auto reqs = of_kind(ev, FailureKind::Dmarc);
  std::map<std::string, std::uint64_t> got;
  for (const auto& r : reqs) got[r.recipient] = r.max_size;
  EXPECT_EQ(got, (std::map<std::string, std::uint64_t>{
                     {"a@example.com", 10ull << 20},  // the repeat of a@ is dropped
                     {"b@example.com", 500},
                     {"c@example.com", 2048},
                     {"d+x@example.com", 0},
                     {"e@example.com", 1ull << 40},
                 }));
}

// --------------------------------------- external destination verification (RFC 7489 §7.1)

TEST_F(FailurePlan, ExternalDestinationAccepted) {
  dns->txt("example.com._report._dmarc.thirdparty.example", {"v=DMARC1"});
  Evaluation ev = scenario(Scenario::BothFail, "0");
  ev.dmarc.record->ruf = {"mailto:ruf@thirdparty.example"};
  const auto reqs = of_kind(ev, FailureKind::Dmarc);
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs.front().recipient, "ruf@thirdparty.example");
}

TEST_F(FailurePlan, ExternalDestinationRefused) {
  Evaluation ev = scenario(Scenario::BothFail, "0");
  ev.dmarc.record->ruf = {"mailto:ruf@thirdparty.example"};
  EXPECT_TRUE(of_kind(ev, FailureKind::Dmarc).empty());  // NXDOMAIN
  const auto asked = dns->asked();
  EXPECT_NE(std::find(asked.begin(), asked.end(), "example.com._report._dmarc.thirdparty.example"),
            asked.end());
  // A record that is not a DMARC1 record does not authorize.
  dns->txt("example.com._report._dmarc.thirdparty.example", {"v=spf1 -all", "hello"});
  EXPECT_TRUE(of_kind(ev, FailureKind::Dmarc).empty());
  // Nor does a DNS error (no guess).
  dns->fail("example.com._report._dmarc.thirdparty.example");
  EXPECT_TRUE(of_kind(ev, FailureKind::Dmarc).empty());
}

TEST_F(FailurePlan, SameOrganizationNeedsNoVerification) {
  Evaluation ev = scenario(Scenario::BothFail, "0");
  ev.dmarc.record->ruf = {"mailto:ruf@reports.example.com"};
  const auto reqs = of_kind(ev, FailureKind::Dmarc);
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs.front().recipient, "ruf@reports.example.com");
  for (const auto& name : dns->asked()) {
    EXPECT_EQ(name.find("._report._dmarc."), std::string::npos) << name;
  }
}

TEST_F(FailurePlan, VerificationRecordMayReplaceTheAddressOnTheSameHost) {
  dns->txt("example.com._report._dmarc.thirdparty.example",
           {"v=DMARC1; ruf=mailto:customer-42@thirdparty.example!1m"});
  Evaluation ev = scenario(Scenario::BothFail, "0");
  ev.dmarc.record->ruf = {"mailto:ruf@thirdparty.example"};
  auto reqs = of_kind(ev, FailureKind::Dmarc);
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs.front().recipient, "customer-42@thirdparty.example");
  EXPECT_EQ(reqs.front().max_size, 1u << 20);
  // RFC 7489 §7.1 step 4: a replacement on another host means neither is used.
  dns->txt("example.com._report._dmarc.thirdparty.example",
           {"v=DMARC1; ruf=mailto:x@elsewhere.example"});
  EXPECT_TRUE(of_kind(ev, FailureKind::Dmarc).empty());
}

// ------------------------------------------------------------------ DKIM (RFC 6651)

class DkimReports : public FailurePlan {
 protected:
  // A message whose only signature, by signer.example, failed as `v` says, with r=y.
  Evaluation signed_message(DkimVerdict v) {
    Evaluation ev = message(record("0", {}));
    ev.dmarc.result = DmarcResult::Fail;
    v.report_requested = true;
    ev.dkim = {std::move(v)};
    return ev;
  }
  Evaluation bodyhash() {
    return signed_message(
        dkim(DkimResult::Fail, "Signer.Example", "body hash mismatch", "bodyhash"));
  }
};

TEST_F(DkimReports, FailedSignatureWithRyAndRa) {
  dns->txt("_report._domainkey.signer.example", {"ra=dkim-fail; rp=100; rr=v"});
  const auto reqs = of_kind(bodyhash(), FailureKind::Dkim);
  ASSERT_EQ(reqs.size(), 1u);
  const auto& r = reqs.front();
  EXPECT_EQ(r.recipient, "dkim-fail@signer.example");
  EXPECT_EQ(r.reported_domain, "signer.example");
  EXPECT_EQ(r.auth_failure, "bodyhash");
  EXPECT_EQ(r.dkim_index, 0);
  EXPECT_EQ(r.limit_count, 2u);
  EXPECT_EQ(r.limit_period, 12 * 3600);
  EXPECT_EQ(r.delivery_result, "delivered");
}

TEST_F(DkimReports, NothingWithoutRyOrRaOrOneRecord) {
  dns->txt("_report._domainkey.signer.example", {"rp=100; rr=all"});
  EXPECT_TRUE(of_kind(bodyhash(), FailureKind::Dkim).empty());  // no ra=
  dns->txt("_report._domainkey.signer.example", {"ra=a", "ra=b"});
  EXPECT_TRUE(of_kind(bodyhash(), FailureKind::Dkim).empty());  // two records
  dns->fail("_report._domainkey.signer.example");
  EXPECT_TRUE(of_kind(bodyhash(), FailureKind::Dkim).empty());  // DNS error

  auto fresh = std::make_shared<FakeResolver>();
  dns = fresh;
  dns->txt("_report._domainkey.signer.example", {"ra=dkim-fail"});
  Evaluation ev = bodyhash();
  ev.dkim.front().report_requested = false;
  EXPECT_TRUE(of_kind(ev, FailureKind::Dkim).empty());  // no r=y
  const auto asked = dns->asked();
  EXPECT_EQ(std::find(asked.begin(), asked.end(), "_report._domainkey.signer.example"),
            asked.end());
  ev = signed_message(dkim(DkimResult::Pass, "signer.example"));
  EXPECT_TRUE(of_kind(ev, FailureKind::Dkim).empty());  // it passed
  // ra= in quoted-printable (RFC 6651 §3.2), default rp and rr.
  dns->txt("_report._domainkey.signer.example", {"ra=dkim=2Dfail"});
  ASSERT_EQ(of_kind(bodyhash(), FailureKind::Dkim).size(), 1u);
  EXPECT_EQ(of_kind(bodyhash(), FailureKind::Dkim).front().recipient, "dkim-fail@signer.example");
}

TEST_F(DkimReports, SamplingWithRp) {
  dns->txt("_report._domainkey.signer.example", {"ra=r; rp=0"});
  random = 0.0;
  EXPECT_TRUE(of_kind(bodyhash(), FailureKind::Dkim).empty());
  dns->txt("_report._domainkey.signer.example", {"ra=r; rp=100"});
  random = 99.99;
  EXPECT_EQ(of_kind(bodyhash(), FailureKind::Dkim).size(), 1u);
  dns->txt("_report._domainkey.signer.example", {"ra=r; rp=25"});
  random = 24.9;
  EXPECT_EQ(of_kind(bodyhash(), FailureKind::Dkim).size(), 1u);
  random = 25.0;
  EXPECT_TRUE(of_kind(bodyhash(), FailureKind::Dkim).empty());
  dns->txt("_report._domainkey.signer.example", {"ra=r; rp=lots"});
  random = 0.0;
  EXPECT_TRUE(of_kind(bodyhash(), FailureKind::Dkim).empty());  // unreadable record
}

TEST_F(DkimReports, RequestedReportClasses) {
  struct Case {
    DkimVerdict verdict;
    std::string cls;  // RFC 6651 §3.2 rr= class it belongs to
    std::string auth_failure;
  };
  const std::vector<Case> cases = {
      {dkim(DkimResult::Fail, "signer.example", "body hash mismatch", "bodyhash"), "v", "bodyhash"},
      {dkim(DkimResult::Fail, "signer.example", "signature did not verify", "signature"), "v",
       "signature"},
      {dkim(DkimResult::Fail, "signer.example", "key revoked", "revoked"), "o", "revoked"},
      {dkim(DkimResult::TempError, "signer.example", "key lookup failed (temporary DNS error)"),
       "d", "signature"},
      {dkim(DkimResult::PermError, "signer.example", "no key"), "d", "signature"},
      {dkim(DkimResult::PermError, "signer.example", "several key records"), "d", "signature"},
      {dkim(DkimResult::PermError, "signer.example", "key syntax: key type missing"), "s",
       "signature"},
      {dkim(DkimResult::PermError, "signer.example", "signature syntax: h= missing"), "s",
       "signature"},
      {dkim(DkimResult::PermError, "signer.example", "signature expired"), "x", "signature"},
      {dkim(DkimResult::Policy, "signer.example", "key too small (512 bits)"), "p", "signature"},
      {dkim(DkimResult::PermError, "signer.example",
            "rsa-sha1 not accepted (RFC 8301); the signature itself verified"),
       "p", "signature"},
      {dkim(DkimResult::PermError, "signer.example", "signature timestamp in the future"), "o",
       "signature"},
  };
  for (const std::string rr : {"d", "o", "p", "s", "u", "v", "x"}) {
    dns->txt("_report._domainkey.signer.example", {"ra=r; rr=" + rr});
    for (const auto& c : cases) {
      const auto reqs = of_kind(signed_message(c.verdict), FailureKind::Dkim);
      ASSERT_EQ(reqs.size(), c.cls == rr ? 1u : 0u) << "rr=" << rr << " " << c.verdict.reason;
      if (!reqs.empty()) {
        EXPECT_EQ(reqs.front().auth_failure, c.auth_failure) << c.verdict.reason;
      }
    }
  }
  dns->txt("_report._domainkey.signer.example", {"ra=r; rr=x:ALL"});
  for (const auto& c : cases) {
    EXPECT_EQ(of_kind(signed_message(c.verdict), FailureKind::Dkim).size(), 1u) << c.verdict.reason;
  }
  dns->txt("_report._domainkey.signer.example", {"ra=r; rr=d:v"});
  EXPECT_EQ(of_kind(signed_message(cases[0].verdict), FailureKind::Dkim).size(), 1u);
  EXPECT_EQ(of_kind(signed_message(cases[4].verdict), FailureKind::Dkim).size(), 1u);
  EXPECT_TRUE(of_kind(signed_message(cases[8].verdict), FailureKind::Dkim).empty());
}

// ------------------------------------------------------------------ SPF (RFC 6652)

class SpfReports : public FailurePlan {
 protected:
  Evaluation spf_message(SpfResult r) {
    Evaluation ev = message(record("0", {}));
    ev.dmarc.result = DmarcResult::Fail;
    ev.envelope_from = "sender.example";
    ev.spf = {spf(r, "sender.example")};
    return ev;
  }
};

TEST_F(SpfReports, FailWithRa) {
  dns->txt("sender.example", {"v=spf1 ip4:198.51.100.0/24 ra=spf-fail rp=100 rr=f -all",
                              "google-site-verification=x"});
  const auto reqs = of_kind(spf_message(SpfResult::Fail), FailureKind::Spf);
  ASSERT_EQ(reqs.size(), 1u);
  const auto& r = reqs.front();
  EXPECT_EQ(r.recipient, "spf-fail@sender.example");
  EXPECT_EQ(r.reported_domain, "sender.example");
  EXPECT_EQ(r.auth_failure, "spf");
  EXPECT_EQ(r.spf_record, "v=spf1 ip4:198.51.100.0/24 ra=spf-fail rp=100 rr=f -all");
  EXPECT_EQ(r.dkim_index, -1);
  EXPECT_EQ(r.limit_count, 3u);
  EXPECT_EQ(r.limit_period, 3600);
  EXPECT_TRUE(of_kind(spf_message(SpfResult::Pass), FailureKind::Spf).empty());
}

TEST_F(SpfReports, RequestedResultClasses) {
  const std::vector<std::pair<SpfResult, std::string>> cases = {
      {SpfResult::Fail, "f"},      {SpfResult::SoftFail, "s"},  {SpfResult::Neutral, "n"},
      {SpfResult::PermError, "e"}, {SpfResult::TempError, "e"},
  };
  for (const std::string rr : {"e", "f", "s", "n"}) {
    dns->txt("sender.example", {"v=spf1 -all RA=r RR=" + rr});
    for (const auto& [result, cls] : cases) {
      EXPECT_EQ(of_kind(spf_message(result), FailureKind::Spf).size(), cls == rr ? 1u : 0u)
          << "rr=" << rr << " " << to_string(result);
    }
  }
  dns->txt("sender.example", {"v=spf1 -all ra=r"});  // default rr=all
  for (const auto& [result, cls] : cases) {
    EXPECT_EQ(of_kind(spf_message(result), FailureKind::Spf).size(), 1u) << to_string(result);
  }
  dns->txt("sender.example", {"v=spf1 -all ra=r rr=e:s"});
  EXPECT_EQ(of_kind(spf_message(SpfResult::SoftFail), FailureKind::Spf).size(), 1u);
  EXPECT_TRUE(of_kind(spf_message(SpfResult::Fail), FailureKind::Spf).empty());
}

TEST_F(SpfReports, SamplingWithRp) {
  dns->txt("sender.example", {"v=spf1 -all ra=r rp=0"});
  EXPECT_TRUE(of_kind(spf_message(SpfResult::Fail), FailureKind::Spf).empty());
  dns->txt("sender.example", {"v=spf1 -all ra=r rp=100"});
  random = 99.9;
  EXPECT_EQ(of_kind(spf_message(SpfResult::Fail), FailureKind::Spf).size(), 1u);
  dns->txt("sender.example", {"v=spf1 -all ra=r rp=10"});
  random = 9.5;
  EXPECT_EQ(of_kind(spf_message(SpfResult::Fail), FailureKind::Spf).size(), 1u);
  random = 10.5;
  EXPECT_TRUE(of_kind(spf_message(SpfResult::Fail), FailureKind::Spf).empty());
}

TEST_F(SpfReports, IncludedRecordsAreNotUsed) {
  dns->txt("sender.example", {"v=spf1 include:esp.example -all"});
  dns->txt("esp.example", {"v=spf1 ip4:203.0.113.0/24 ra=esp-reports -all"});
  EXPECT_TRUE(of_kind(spf_message(SpfResult::Fail), FailureKind::Spf).empty());
  for (const auto& name : dns->asked()) EXPECT_NE(name, "esp.example");
}

TEST_F(SpfReports, NoRecordSeveralRecordsOrDnsErrorMeanNoReport) {
  EXPECT_TRUE(of_kind(spf_message(SpfResult::Fail), FailureKind::Spf).empty());
  dns->txt("sender.example", {"v=spf1 -all ra=a", "v=spf1 -all ra=b"});
  EXPECT_TRUE(of_kind(spf_message(SpfResult::Fail), FailureKind::Spf).empty());
  dns->fail("sender.example");
  EXPECT_TRUE(of_kind(spf_message(SpfResult::Fail), FailureKind::Spf).empty());
}

// ------------------------------------------------------------------ what stops every report

TEST_F(FailurePlan, SendFalseStopsThatKindOnly) {
  dns->txt("example.com", {"v=spf1 -all ra=spf"});
  Evaluation ev = scenario(Scenario::BothFail, "1");
  EXPECT_EQ(plan(ev).size(), 2u);  // dmarc + spf
  cfg->report.dmarc.send.reset();
  auto reqs = plan(ev);
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs.front().kind, FailureKind::Spf);
  cfg->report.spf.send.reset();
  EXPECT_TRUE(plan(ev).empty());
}

TEST_F(FailurePlan, NeverAboutReportsOrOurOwnTraffic) {
  Evaluation ev = scenario(Scenario::BothFail, "1");
  ASSERT_EQ(plan(ev).size(), 1u);
  MessageTraits report;
  report.is_report = true;
  EXPECT_TRUE(plan(ev, report).empty());
  MessageTraits own;
  own.own_traffic = true;
  EXPECT_TRUE(plan(ev, own).empty());
}

TEST_F(FailurePlan, PassingMailNeedsNoPlanning) {
  const Evaluation ev = scenario(Scenario::AllAligned, "1");
  EXPECT_FALSE(FailurePlanner::may_report(ev));
  dns->clear_log();
  EXPECT_TRUE(plan(ev).empty());
  EXPECT_EQ(dns->total(), 0u);
  EXPECT_TRUE(FailurePlanner::may_report(scenario(Scenario::NoSigNeutral, "0")));
}

}  // namespace
}  // namespace mailreport::auth

// Agreement of our DMARC evaluation (auth/dmarc) with OpenDMARC's library (libopendmarc 1.4.2,
// Debian package libopendmarc2; headers from libopendmarc-dev) on the same inputs, with no
// network: libopendmarc answers every DMARC lookup from its test table
// (opendmarc_dns_fake_record(); once the table is not empty it never calls the resolver, see
// opendmarc_dns.c), ours from an in-memory resolver holding the same records. OpenDMARC's
// Organizational Domain comes from the same public suffix list file libpsl reads
// (/usr/share/publicsuffix). The library is dlopen()ed so that the test binary links nothing
// new; without the header or the library the test is skipped.
//
// For each scenario (a From domain, DMARC records, SPF and DKIM results) both sides give one
// outcome: "pass@<policy domain>", "fail/<disposition>@<policy domain>", "none", or an error.
// OpenDMARC implements RFC 7489 with a PSL, so it is compared with our Discovery::Psl; the
// RFC 9989 tree walk (our default) is checked on the same table, with its own expectation
// where RFC 9989 changed the rule.
//
// Where they differ, and the RFC section that decides (each is a scenario below):
//  1. No p= tag: OpenDMARC refuses the record (DMARC_PARSE_ERROR_NO_REQUIRED_P); we apply
//     p=none. RFC 9989 §4.7 (p absent ⇒ p=none); with a valid rua also RFC 7489 §6.6.3.
//  2. A bad value in an optional tag (adkim=x): OpenDMARC refuses the whole record; we use the
//     default. RFC 9989 §4.8 / RFC 7489 §6.3: syntax errors are discarded in favour of
//     defaults.
//  3. Abbreviated policies (p=rej): OpenDMARC takes any prefix of reject/none/quarantine; we
//     take the exact keywords only (RFC 9989 §4.8 dmarc-request, RFC 7489 §6.4), so the record
//     has an invalid p and no rua: permerror (RFC 9989 §4.10.1, §9.2).
//  4. v=DMARC1 not first: OpenDMARC accepts it anywhere; we ignore the record. RFC 9989 §4.7,
//     RFC 7489 §6.3: v MUST be the first tag.
//  5. A public suffix as DKIM d= (or SPF domain) under relaxed alignment: OpenDMARC aligns any
//     name that is a parent or child of the From domain (opendmarc_policy_check_alignment);
//     we compare Organizational Domains, and co.uk's is co.uk. RFC 7489 §3.1.1, §3.2;
//     RFC 9989 §3.2.10.1.
//  6. An SPF pass for the HELO identity: OpenDMARC's policy check ignores the origin it was
//     given; we use the MAIL FROM identity only. RFC 7489 §3.1.2, RFC 9989 §4.4.2.
//  7. SPF temperror and nothing aligned: OpenDMARC fails the message; we answer temperror.
//     RFC 9989 §5.3.6 (neither pass nor fail when a query did not complete).
//  8. np= for a non-existent subdomain: OpenDMARC knows no np (RFC 9091) and applies sp.
//     RFC 9989 §4.7, §4.10.1.
//  9. t=y: OpenDMARC knows no t and returns the published policy; we apply one level below
//     (policy_test_mode). RFC 9989 §4.7.
// 10. PSD records (psd=y): OpenDMARC never asks a public suffix domain; our tree walk applies
//     its record when the Organizational Domain has none (our PSL mode does as OpenDMARC).
//     RFC 9989 §4.10.1.
// 11. psd=n below the registrable domain: the tree walk makes that name the Organizational
//     Domain (policy and alignment); OpenDMARC and our PSL mode use the registrable domain.
//     RFC 9989 §4.10.2.
// 12. An invalid p= with a valid rua=: OpenDMARC refuses the record; we apply p=none.
//     RFC 7489 §6.6.3 (SHOULD), RFC 9989 §4.10.1 (MUST).
// 13. A repeated tag (p=none; p=reject): OpenDMARC keeps the last, we keep the first. No RFC
//     rule: RFC 9989 §4.8's grammar neither allows nor forbids repeats.
// 14. A name under a TLD missing from the PSL (.zz): OpenDMARC makes the name its own
//     Organizational Domain and asks it twice; libpsl applies the list's default rule "*"
//     (the TLD is a public suffix), so the registrable domain's record applies. RFC 7489 §3.2
//     delegates to the PSL, whose algorithm has that default rule.
// 15. Strict alignment when the From domain is itself an Organizational Domain: OpenDMARC
//     also compares it with the identifier's Organizational Domain, so d=mail.example.com
//     passes adkim=s for From example.com; we require identical names. RFC 7489 §3.1.1,
//     §3.1.2; RFC 9989 §3.2.10.2. (With From news.example.com both fail: rows Strict*.)
// Not compared, read from OpenDMARC's source only:
//  - Several DMARC records at one name: OpenDMARC uses the first TXT record containing
//    "v=DMARC"; we discard them all (RFC 7489 §6.6.3, RFC 9989 §4.10). Its test table holds
//    one answer per name, so this cannot be exercised here.
//  - DNS errors: its test table has no way to answer SERVFAIL (unit tests cover ours).
//  - pct= sampling and the From header rules live in the opendmarc milter, not the library.
#include <dlfcn.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#if __has_include(<opendmarc/dmarc.h>)
#include <netinet/in.h>
#include <sys/types.h>

#include <opendmarc/dmarc.h>
#define MAILREPORT_HAVE_OPENDMARC_H 1
#endif

#include "../unit/auth/dmarc_fake_resolver.hpp"
#include "mailreport/auth/dmarc.hpp"

namespace mailreport::auth {
namespace {

struct Scenario {
  const char* name;
  std::string from;                                          // the Author Domain
  std::vector<std::pair<std::string, std::string>> records;  // name → its one DMARC record
  SpfVerdict spf;
  std::vector<std::pair<std::string, DkimResult>> dkim;
  std::string opendmarc;   // expected OpenDMARC outcome
  std::string ours;        // expected outcome of our Discovery::Psl
  std::string walk;        // expected outcome of our tree walk ("" = as `ours`)
  const char* decided_by;  // nullptr where both agree
};

SpfVerdict mfrom(std::string domain, SpfResult r, SpfScope scope = SpfScope::MailFrom) {
  SpfVerdict v;
  v.domain = std::move(domain);
  v.result = r;
  v.scope = scope;
  return v;
}
SpfVerdict no_spf() {
  return mfrom("", SpfResult::None);
}

const std::vector<Scenario>& scenarios() {
  using R = DkimResult;
  static const std::vector<Scenario> all = {
      // ---- the same rule on both sides
      {"AuthorRecordAlignedDkim",
       "agree01.com",
       {{"agree01.com", "v=DMARC1; p=reject"}},
       no_spf(),
       {{"agree01.com", R::Pass}},
       "pass@agree01.com",
       "pass@agree01.com",
       "",
       nullptr},
      {"RelaxedDkim",
       "agree02.com",
       {{"agree02.com", "v=DMARC1; p=reject"}},
       no_spf(),
       {{"mail.agree02.com", R::Pass}},
       "pass@agree02.com",
       "pass@agree02.com",
       "",
       nullptr},
      {"StrictDkim",
       "news.agree03.com",
       {{"agree03.com", "v=DMARC1; p=reject; adkim=s"}},
       no_spf(),
       {{"mail.agree03.com", R::Pass}},
       "fail/reject@agree03.com",
       "fail/reject@agree03.com",
       "",
       nullptr},
      {"RelaxedSpf",
       "agree04.com",
       {{"agree04.com", "v=DMARC1; p=quarantine"}},
       mfrom("bounce.agree04.com", SpfResult::Pass),
       {},
       "pass@agree04.com",
       "pass@agree04.com",
       "",
       nullptr},
      {"StrictSpf",
       "news.agree05.com",
       {{"agree05.com", "v=DMARC1; p=quarantine; aspf=s"}},
       mfrom("bounce.agree05.com", SpfResult::Pass),
       {},
       "fail/quarantine@agree05.com",
       "fail/quarantine@agree05.com",
       "",
       nullptr},
      {"OrganizationalRecordSp",
       "news.agree06.com",
       {{"agree06.com", "v=DMARC1; p=reject; sp=quarantine"}},
       no_spf(),
       {},
       "fail/quarantine@agree06.com",
       "fail/quarantine@agree06.com",
       "",
       nullptr},
      {"OrganizationalRecordWithoutSp",
       "news.agree07.com",
       {{"agree07.com", "v=DMARC1; p=quarantine"}},
       no_spf(),
       {},
       "fail/quarantine@agree07.com",
       "fail/quarantine@agree07.com",
       "",
       nullptr},
      {"AuthorRecordBeforeOrganizational",
       "news.agree08.com",
       {{"news.agree08.com", "v=DMARC1; p=none"}, {"agree08.com", "v=DMARC1; p=reject"}},
       no_spf(),
       {},
       "fail/none@news.agree08.com",
       "fail/none@news.agree08.com",
       "",
       nullptr},
      {"NoRecord",
       "agree09.com",
       {},
       mfrom("agree09.com", SpfResult::Pass),
       {},
       "none",
       "none",
       "",
       nullptr},
      {"PolicyNone",
       "agree10.com",
       {{"agree10.com", "v=DMARC1; p=none"}},
       mfrom("agree10.com", SpfResult::Fail),
       {},
       "fail/none@agree10.com",
       "fail/none@agree10.com",
       "",
       nullptr},
      {"UnalignedPass",
       "agree11.com",
       {{"agree11.com", "v=DMARC1; p=reject"}},
       mfrom("esp.example.net", SpfResult::Pass),
       {{"esp.example.org", R::Pass}},
       "fail/reject@agree11.com",
       "fail/reject@agree11.com",
       "",
       nullptr},
      {"TwoLabelPublicSuffix",
       "news.agree12.co.uk",
       {{"agree12.co.uk", "v=DMARC1; p=reject"}},
       no_spf(),
       {{"mail.agree12.co.uk", R::Pass}},
       "pass@agree12.co.uk",
       "pass@agree12.co.uk",
       "",
       nullptr},
      {"SeveralSignatures",
       "agree13.com",
       {{"agree13.com", "v=DMARC1; p=reject"}},
       no_spf(),
       {{"agree13.com", R::Fail}, {"esp.example.net", R::Pass}, {"agree13.com", R::Pass}},
       "pass@agree13.com",
       "pass@agree13.com",
       "",
       nullptr},
      {"AlignedSignatureFails",
       "agree14.com",
       {{"agree14.com", "v=DMARC1; p=reject"}},
       no_spf(),
       {{"agree14.com", R::Fail}},
       "fail/reject@agree14.com",
       "fail/reject@agree14.com",
       "",
       nullptr},
      {"CaseInsensitiveTags",
       "sub.agree15.com",
       {{"agree15.com", "V=DMARC1; P=Quarantine; SP=None"}},
       no_spf(),
       {},
       "fail/none@agree15.com",
       "fail/none@agree15.com",
       "",
       nullptr},
      {"UnknownAndRfc7489Tags",
       "agree16.com",
       {{"agree16.com", "v=DMARC1; p=reject; foo=bar; rf=afrf; ri=3600; fo=1"}},
       no_spf(),
       {},
       "fail/reject@agree16.com",
       "fail/reject@agree16.com",
       "",
       nullptr},
      {"PctSelected",
       "agree17.com",
       {{"agree17.com", "v=DMARC1; p=reject; pct=30"}},
       no_spf(),
       {},
       "fail/reject@agree17.com",
       "fail/reject@agree17.com",
       "",
       nullptr},
      {"DeepRelaxedSignature",
       "agree18.com",
       {{"agree18.com", "v=DMARC1; p=reject"}},
       no_spf(),
       {{"deep.a.b.agree18.com", R::Pass}},
       "pass@agree18.com",
       "pass@agree18.com",
       "",
       nullptr},

      // ---- differences (numbered as in the comment at the top)
      {"D1_NoPTag",
       "agree-d1.com",
       {{"agree-d1.com", "v=DMARC1; rua=mailto:r@agree-d1.com"}},
       no_spf(),
       {},
       "error",
       "fail/none@agree-d1.com",
       "",
       "RFC 9989 §4.7; RFC 7489 §6.6.3"},
      {"D2_BadOptionalValue",
       "agree-d2.com",
       {{"agree-d2.com", "v=DMARC1; p=reject; adkim=x"}},
       no_spf(),
       {{"mail.agree-d2.com", R::Pass}},
       "error",
       "pass@agree-d2.com",
       "",
       "RFC 9989 §4.8; RFC 7489 §6.3"},
      {"D3_AbbreviatedPolicy",
       "agree-d3.com",
       {{"agree-d3.com", "v=DMARC1; p=rej"}},
       no_spf(),
       {},
       "fail/reject@agree-d3.com",
       "permerror",
       "",
       "RFC 9989 §4.8, §4.10.1; RFC 7489 §6.4"},
      {"D4_VersionNotFirst",
       "agree-d4.com",
       {{"agree-d4.com", "p=reject; v=DMARC1"}},
       no_spf(),
       {},
       "fail/reject@agree-d4.com",
       "none",
       "",
       "RFC 9989 §4.7; RFC 7489 §6.3"},
      {"D5_PublicSuffixSignature",
       "agree-d5.co.uk",
       {{"agree-d5.co.uk", "v=DMARC1; p=reject"}},
       no_spf(),
       {{"co.uk", R::Pass}},
       "pass@agree-d5.co.uk",
       "fail/reject@agree-d5.co.uk",
       "",
       "RFC 7489 §3.1.1, §3.2; RFC 9989 §3.2.10.1"},
      {"D6_HeloIdentity",
       "agree-d6.com",
       {{"agree-d6.com", "v=DMARC1; p=reject"}},
       mfrom("agree-d6.com", SpfResult::Pass, SpfScope::Helo),
       {},
       "pass@agree-d6.com",
       "fail/reject@agree-d6.com",
       "",
       "RFC 7489 §3.1.2; RFC 9989 §4.4.2"},
      {"D7_SpfTempError",
       "agree-d7.com",
       {{"agree-d7.com", "v=DMARC1; p=reject"}},
       mfrom("agree-d7.com", SpfResult::TempError),
       {},
       "fail/reject@agree-d7.com",
       "temperror",
       "",
       "RFC 9989 §5.3.6"},
      {"D8_NonExistentSubdomain",
       "gone.agree-d8.com",
       {{"agree-d8.com", "v=DMARC1; p=reject; sp=quarantine; np=none"}},
       no_spf(),
       {},
       "fail/quarantine@agree-d8.com",
       "fail/none@agree-d8.com",
       "",
       "RFC 9989 §4.7, §4.10.1"},
      {"D9_TestingMode",
       "agree-d9.com",
       {{"agree-d9.com", "v=DMARC1; p=reject; t=y"}},
       no_spf(),
       {},
       "fail/reject@agree-d9.com",
       "fail/quarantine@agree-d9.com",
       "",
       "RFC 9989 §4.7"},
      {"D10_PublicSuffixDomainRecord",
       "agree-d10.net",
       {{"net", "v=DMARC1; p=reject; psd=y"}},
       no_spf(),
       {},
       "none",
       "none",
       "fail/reject@net",
       "RFC 9989 §4.10.1"},
      {"D11_PsdNBelowTheRegistrableDomain",
       "x.sub.agree-d11.com",
       {{"sub.agree-d11.com", "v=DMARC1; p=reject; psd=n"}, {"agree-d11.com", "v=DMARC1; p=none"}},
       no_spf(),
       {{"agree-d11.com", R::Pass}},
       "pass@agree-d11.com",
       "pass@agree-d11.com",
       "fail/reject@sub.agree-d11.com",
       "RFC 9989 §4.10.2"},
      {"D12_InvalidPolicyWithRua",
       "agree-d12.com",
       {{"agree-d12.com", "v=DMARC1; p=bogus; rua=mailto:r@agree-d12.com"}},
       no_spf(),
       {},
       "error",
       "fail/none@agree-d12.com",
       "",
       "RFC 7489 §6.6.3; RFC 9989 §4.10.1"},
      {"D13_RepeatedTag",
       "agree-d13.com",
       {{"agree-d13.com", "v=DMARC1; p=none; p=reject"}},
       no_spf(),
       {},
       "fail/reject@agree-d13.com",
       "fail/none@agree-d13.com",
       "",
       "no RFC rule (RFC 9989 §4.8 grammar)"},
      {"D14_TldMissingFromThePsl",
       "sub.agree-d14.zz",
       {{"agree-d14.zz", "v=DMARC1; p=reject"}},
       no_spf(),
       {},
       "none",
       "fail/reject@agree-d14.zz",
       "",
       "RFC 7489 §3.2 (PSL default rule)"},
      {"D15_StrictWithTheOrganizationalDomainAsAuthor",
       "agree-d15.com",
       {{"agree-d15.com", "v=DMARC1; p=reject; adkim=s; aspf=s"}},
       mfrom("bounce.agree-d15.com", SpfResult::Pass),
       {{"mail.agree-d15.com", R::Pass}},
       "pass@agree-d15.com",
       "fail/reject@agree-d15.com",
       "",
       "RFC 7489 §3.1.1, §3.1.2; RFC 9989 §3.2.10.2"},
  };
  return all;
}

std::string outcome(const DmarcVerdict& v) {
  switch (v.result) {
    case DmarcResult::Pass: return "pass@" + v.policy_domain;
    case DmarcResult::Fail:
      return std::string("fail/") + to_string(v.disposition) + "@" + v.policy_domain;
    default: return to_string(v.result);
  }
}

std::string ours(const Scenario& s, Discovery how) {
  auto dns = std::make_shared<dmarc_test::FakeResolver>();
  for (const auto& [name, record] : s.records) dns->txt("_dmarc." + name, {record});
  DmarcOptions o;
  o.discovery = how;
  o.random_percent = [] { return 0; };  // always inside a pct sample, as OpenDMARC's library
  DmarcEvaluator e(dns, o);
  std::vector<SpfVerdict> spf;
  if (!s.spf.domain.empty()) spf.push_back(s.spf);
  std::vector<DkimVerdict> dkim;
  for (const auto& [d, r] : s.dkim) {
    DkimVerdict v;
    v.domain = d;
    v.selector = "s";
    v.result = r;
    dkim.push_back(v);
  }
  return outcome(e.evaluate({"Someone <someone@" + s.from + ">"}, spf, dkim));
}

#ifdef MAILREPORT_HAVE_OPENDMARC_H

// libopendmarc, dlopen()ed once for the process. RTLD_NODELETE keeps it mapped after
// dlclose() so that its process-wide tables (the PSL, the test DNS table) stay reachable.
class OpenDmarc {
 public:
  static OpenDmarc* get() {
    static std::unique_ptr<OpenDmarc> instance = load();
    return instance.get();
  }

  std::string evaluate(const Scenario& s) const {
    auto u = [](const std::string& x) {
      return reinterpret_cast<u_char*>(const_cast<char*>(x.c_str()));
    };
    u_char ip[] = "192.0.2.1";
    std::unique_ptr<DMARC_POLICY_T, decltype(connect_shutdown)> pctx(connect_init(ip, 0),
                                                                     connect_shutdown);
    if (!pctx) return "no context";
    std::string from = s.from;
    if (store_from_domain(pctx.get(), u(from)) != DMARC_PARSE_OKAY) return "bad from";
    int q = query_dmarc(pctx.get(), u(from));
    if (q == DMARC_DNS_ERROR_NO_RECORD) return "none";
    if (q != DMARC_PARSE_OKAY) return "error";
    if (!s.spf.domain.empty()) {
      int r = DMARC_POLICY_SPF_OUTCOME_NONE;
      switch (s.spf.result) {
        case SpfResult::Pass: r = DMARC_POLICY_SPF_OUTCOME_PASS; break;
        case SpfResult::Fail:
        case SpfResult::SoftFail:
        case SpfResult::PermError: r = DMARC_POLICY_SPF_OUTCOME_FAIL; break;
        case SpfResult::TempError: r = DMARC_POLICY_SPF_OUTCOME_TMPFAIL; break;
        default: break;
      }
      int origin = s.spf.scope == SpfScope::Helo ? DMARC_POLICY_SPF_ORIGIN_HELO
                                                 : DMARC_POLICY_SPF_ORIGIN_MAILFROM;
      std::string d = s.spf.domain;
      if (store_spf(pctx.get(), u(d), r, origin, nullptr) != DMARC_PARSE_OKAY) return "bad spf";
    }
    for (const auto& [domain, result] : s.dkim) {
      int r = result == DkimResult::Pass        ? DMARC_POLICY_DKIM_OUTCOME_PASS
              : result == DkimResult::TempError ? DMARC_POLICY_DKIM_OUTCOME_TMPFAIL
                                                : DMARC_POLICY_DKIM_OUTCOME_FAIL;
      std::string d = domain;
      std::string sel = "s";
      if (store_dkim(pctx.get(), u(d), u(sel), r, nullptr) != DMARC_PARSE_OKAY) return "bad dkim";
    }
    int p = policy_to_enforce(pctx.get());
    u_char buf[256] = {0};
    utilized_domain(pctx.get(), buf, sizeof buf - 1);
    std::string at = std::string("@") + reinterpret_cast<char*>(buf);
    switch (p) {
      case DMARC_POLICY_PASS: return "pass" + at;
      case DMARC_POLICY_REJECT: return "fail/reject" + at;
      case DMARC_POLICY_QUARANTINE: return "fail/quarantine" + at;
      case DMARC_POLICY_NONE: return "fail/none" + at;
      case DMARC_POLICY_ABSENT: return "none";
      default: return "status " + std::to_string(p);
    }
  }

 private:
  struct Close {
    void operator()(void* h) const noexcept { dlclose(h); }
  };
  template <class F>
  bool sym(F& f, const char* name) {
    f = reinterpret_cast<F>(dlsym(handle_.get(), name));
    return f != nullptr;
  }

  static std::unique_ptr<OpenDmarc> load() {
    auto o = std::make_unique<OpenDmarc>();
    o->handle_.reset(dlopen("libopendmarc.so.2", RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE));
    if (!o->handle_) return nullptr;
    bool ok = o->sym(o->library_init, "opendmarc_policy_library_init") &&
              o->sym(o->fake_record, "opendmarc_dns_fake_record") &&
              o->sym(o->connect_init, "opendmarc_policy_connect_init") &&
              o->sym(o->connect_shutdown, "opendmarc_policy_connect_shutdown") &&
              o->sym(o->store_from_domain, "opendmarc_policy_store_from_domain") &&
              o->sym(o->query_dmarc, "opendmarc_policy_query_dmarc") &&
              o->sym(o->store_spf, "opendmarc_policy_store_spf") &&
              o->sym(o->store_dkim, "opendmarc_policy_store_dkim") &&
              o->sym(o->policy_to_enforce, "opendmarc_get_policy_to_enforce") &&
              o->sym(o->utilized_domain, "opendmarc_policy_fetch_utilized_domain");
    if (!ok) return nullptr;
    OPENDMARC_LIB_T lib{};
    lib.tld_type = OPENDMARC_TLD_TYPE_MOZILLA;
    std::string psl = "/usr/share/publicsuffix/effective_tld_names.dat";
    std::copy(psl.begin(), psl.end(), lib.tld_source_file);
    if (o->library_init(&lib) != DMARC_PARSE_OKAY) return nullptr;
    // The test table: from now on libopendmarc answers every lookup from it (a name not in it
    // is NO_DATA) and never uses the network. Names are unique across scenarios.
    o->fake_record("_dmarc.never-asked.invalid", "v=DMARC1; p=none");
    for (const auto& s : scenarios()) {
      for (const auto& [name, record] : s.records) {
        o->fake_record(("_dmarc." + name).c_str(), record.c_str());
      }
    }
    return o;
  }

  std::unique_ptr<void, Close> handle_;
  decltype(&opendmarc_policy_library_init) library_init = nullptr;
  decltype(&opendmarc_dns_fake_record) fake_record = nullptr;
  decltype(&opendmarc_policy_connect_init) connect_init = nullptr;
  decltype(&opendmarc_policy_connect_shutdown) connect_shutdown = nullptr;
  decltype(&opendmarc_policy_store_from_domain) store_from_domain = nullptr;
  decltype(&opendmarc_policy_query_dmarc) query_dmarc = nullptr;
  decltype(&opendmarc_policy_store_spf) store_spf = nullptr;
  decltype(&opendmarc_policy_store_dkim) store_dkim = nullptr;
  decltype(&opendmarc_get_policy_to_enforce) policy_to_enforce = nullptr;
  decltype(&opendmarc_policy_fetch_utilized_domain) utilized_domain = nullptr;
};

#endif

class OpenDmarcAgreement : public ::testing::TestWithParam<Scenario> {};

TEST_P(OpenDmarcAgreement, SameInputsSameOutcomeOrTheListedDifference) {
  const Scenario& s = GetParam();
  // The table itself: an agreement row expects one outcome; a difference names its RFC.
  if (s.decided_by == nullptr) {
    ASSERT_EQ(s.opendmarc, s.ours) << "table row " << s.name;
  }

  EXPECT_EQ(ours(s, Discovery::Psl), s.ours) << s.name;
  EXPECT_EQ(ours(s, Discovery::TreeWalk), s.walk.empty() ? s.ours : s.walk) << s.name;

#ifdef MAILREPORT_HAVE_OPENDMARC_H
  OpenDmarc* odm = OpenDmarc::get();
  if (!odm) {
    GTEST_SKIP() << "libopendmarc.so.2 not loadable (package libopendmarc2)";
  }
  EXPECT_EQ(odm->evaluate(s), s.opendmarc)
      << s.name
      << (s.decided_by ? std::string(" (difference decided by ") + s.decided_by + ")"
                       : std::string(" (should agree)"));
#else
  GTEST_SKIP() << "built without <opendmarc/dmarc.h> (package libopendmarc-dev)";
#endif
}

INSTANTIATE_TEST_SUITE_P(Scenarios, OpenDmarcAgreement, ::testing::ValuesIn(scenarios()),
                         [](const ::testing::TestParamInfo<Scenario>& p) {
                           return std::string(p.param.name);
                         });

}  // namespace
}  // namespace mailreport::auth

// Agreement of our DKIM verdicts (auth::DkimVerifier) with OpenDKIM's (the Debian opendkim
// package, 2.11) on the same messages, signed here with keys made at run time, and the same DNS
// data: ours from dns::Resolver local data (local_only), OpenDKIM's from an unbound
// configuration file with the same local-data lines ("ResolverConfiguration"; Debian builds
// opendkim with USE_UNBOUND), a "static" zone at each owner and NXDOMAIN name, and "." as a
// "refuse" zone so that nothing leaves the host on either side. OpenDKIM runs in its test mode
// (`opendkim -x conf -t message -vv`), which drives the filter's own milter callbacks over the
// message and prints the Authentication-Results field it would add: one "dkim=" result per
// signature, in header order (dkimf_ar_all_sigs), which we compare with ours, signature by
// signature (matched by header.b and header.s).
//
// Where the two differ, the RFC decides, and each difference is pinned by the test:
//  1. rsa-sha1 signature that verifies: OpenDKIM pass; ours permerror.
//     RFC 8301 §3.1: rsa-sha1 MUST NOT be used for verifying; such signatures "have
//     permanently failed evaluation" (RFC 6376 §6.1 PERMFAIL).
//  2. No key record (NXDOMAIN, or the name has no TXT): OpenDKIM fail ("key not found in
//     DNS"); ours permerror. RFC 6376 §6.1.2 step 3: PERMFAIL (no key for signature) — no
//     signature was checked, so it is not RFC 8601 §2.7.1 "fail" (signature failed the
//     verification test) but "permerror" (unrecoverable error).
//  3. DNS failure (SERVFAIL, REFUSED): OpenDKIM fail ("key not found in DNS": its unbound glue
//     hands the error reply to libopendkim, which sees no answer); ours temperror.
//     RFC 6376 §6.1.2 step 2: the query "fails to respond" → TEMPFAIL (key unavailable);
//     RFC 8601 §2.7.1 temperror. (A timeout is temperror on both sides.)
//  4. Several TXT records at the selector: OpenDKIM temperror; ours permerror. RFC 6376
//     §3.6.2.2: several records make "the results undefined", and asking again will not change
//     what is published, so it is not RFC 8601 §2.7.1 temperror but permerror ("a later
//     attempt is unlikely to produce a final result"). (§6.1.2 step 4 would also let a
//     verifier try each record; libopendkim, under both, does not.)
//  5. Key record of an unknown key type (k=dsa): OpenDKIM fail; ours permerror.
//     RFC 6376 §6.1.2 step 8 (key unsuitable for a=/k= → PERMFAIL, inappropriate key
//     algorithm) — no signature was checked: RFC 8601 §2.7.1 permerror.
//  6. A malformed DKIM-Signature (no d=) beside a valid one: OpenDKIM stops at the end of the
//     headers (On-SignatureError, default accept) and reports nothing, not even for the valid
//     signature; ours: permerror for the malformed one and pass for the valid one.
//     RFC 6376 §6.1: each signature is verified on its own, a failing one only sends the
//     verifier on to the next ("SHOULD continue to check signatures until a signature
//     successfully verifies", §4); RFC 6376 §6.1.1 makes the malformed one PERMFAIL.
// Everything else agrees: pass (rsa-sha256, ed25519-sha256 by another signer, relaxed and
// simple, folded headers), fail (body hash, header signature, wrong key, revoked key),
// policy (RSA key under 1024 bits), permerror (undecodable key, expired signature), and
// testing keys (t=y) keep their result.
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>

#include <gtest/gtest.h>

#include "../unit/auth/dkim_test_keys.hpp"
#include "mailreport/auth/dkim.hpp"
#include "mailreport/dns/resolver.hpp"
#include "process_util.hpp"
#include "testsupport.hpp"

namespace mailreport::auth {
namespace {

namespace dk = test::dkim;
namespace fs = std::filesystem;

const char* const kOpendkim = "/usr/sbin/opendkim";

struct Keys {
  dk::TestKey rsa = dk::make_key(false);
  dk::TestKey rsa2 = dk::make_key(false);
  dk::TestKey ed = dk::make_key(true);
  dk::TestKey small = dk::make_key(false, 768);
};

struct Zone {
  std::vector<std::string> data;      // unbound local-data lines, for both sides
  std::vector<std::string> nxdomain;  // names that answer NXDOMAIN
};

Zone zone(const Keys& k) {
  Zone z;
  z.data = {
      dk::txt_line("rsa._domainkey.example.com", k.rsa.record()),
      dk::txt_line("ed._domainkey.example.com", k.ed.record()),
      dk::txt_line("wrong._domainkey.example.com", k.rsa2.record()),
      dk::txt_line("revoked._domainkey.example.com", "v=DKIM1; k=rsa; p="),
      dk::txt_line("testing._domainkey.example.com", k.rsa.record("t=y; ")),
      dk::txt_line("badkey._domainkey.example.com", "v=DKIM1; k=rsa; p=bm90IGEga2V5"),
      dk::txt_line("unknownk._domainkey.example.com", "v=DKIM1; k=dsa; p=" + k.rsa.p),
      dk::txt_line("small._domainkey.example.com", k.small.record()),
      dk::txt_line("two._domainkey.example.com", k.rsa.record()),
      dk::txt_line("two._domainkey.example.com", k.rsa2.record()),
      "nodata._domainkey.example.com. 300 IN A 192.0.2.1",
  };
  z.nxdomain = {"gone._domainkey.example.com."};
  return z;
}

// The owner name of a local-data line ("name. 300 IN TXT ...").
std::string owner(const std::string& line) {
  return line.substr(0, line.find(' '));
}

// OpenDKIM's view of the same zone: an unbound configuration file.
std::string unbound_conf(const Zone& z) {
  std::string conf = "server:\n  local-zone: \".\" refuse\n";
  std::set<std::string> zones;
  for (const auto& line : z.data) zones.insert(owner(line));
  for (const auto& name : z.nxdomain) zones.insert(name);
  for (const auto& name : zones) conf += "  local-zone: \"" + name + "\" static\n";
  for (const auto& line : z.data) conf += "  local-data: '" + line + "'\n";
  return conf;
}

struct Case {
  std::string name;
  dk::TestMessage message;
  std::vector<DkimResult> ours;      // expected, per signature in header order
  std::vector<DkimResult> opendkim;  // expected from OpenDKIM, per signature
};

struct OpendkimVerdict {
  std::string result;
  std::string selector;
  std::string header_b;
};

// Parses the Authentication-Results value opendkim -t -vv prints ("### INSHEADER: ...").
std::vector<OpendkimVerdict> parse_opendkim(const std::string& out) {
  std::vector<OpendkimVerdict> v;
  std::size_t at = out.find("hname='Authentication-Results'");
  if (at == std::string::npos) return v;
  std::string ar = out.substr(at);
  ar = ar.substr(0, ar.find("'\n"));
  static const std::regex re(R"(dkim=([a-z]+)[^\n]*?header\.s=([^ ;]+)(?: header\.b=([^ ;']+))?)");
  for (std::sregex_iterator it(ar.begin(), ar.end(), re), end; it != end; ++it) {
    v.push_back({(*it)[1].str(), (*it)[2].str(), (*it)[3].str()});
  }
  return v;
}

class OpendkimAgreement : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kOpendkim)) {
      if (test::running_in_ci()) FAIL() << kOpendkim << " missing (Debian package opendkim)";
      GTEST_SKIP() << kOpendkim << " missing (Debian package opendkim)";
    }
  }
};

std::vector<DkimVerdict> verify_ours(DkimVerifier& verifier, const dk::TestMessage& m) {
  auto v = verifier.start("agreement");
  for (const auto& [name, value] : m.headers) {
    // As the milter hands them: folded lines joined with a bare "\n".
    std::string lf;
    for (char c : value) {
      if (c != '\r') lf += c;
    }
    EXPECT_TRUE(v->header(name, lf).ok()) << name;
  }
  EXPECT_TRUE(v->end_of_headers().ok());
  EXPECT_TRUE(v->body(std::span<const char>(m.body.data(), m.body.size())).ok());
  return v->finish();
}

TEST_F(OpendkimAgreement, PerSignatureVerdicts) {
  const Keys keys;
  const Zone z = zone(keys);
  test::TempDir dir;

  // Our side.
  static NullLogger log;
  dns::ResolverOptions o;
  o.local_only = true;
  o.local_data = z.data;
  o.local_nxdomain = z.nxdomain;
  o.timeout = std::chrono::milliseconds(2000);
  auto resolver = dns::make_unbound_resolver(o, log);
  ASSERT_TRUE(resolver.ok()) << resolver.error().describe();
  auto verifier = DkimVerifier::create(*resolver, log);
  ASSERT_TRUE(verifier.ok()) << verifier.error().describe();

  // OpenDKIM's side.
  {
    std::ofstream(dir / "unbound.conf") << unbound_conf(z);
    std::ofstream(dir / "opendkim.conf")
        << "Mode v\n"
        << "ResolverConfiguration " << (dir / "unbound.conf").string() << "\n"
        << "DNSTimeout 2\n"
        << "Syslog no\n";
  }

  auto sign = [&](dk::TestMessage m, const dk::TestKey& key, const std::string& sel,
                  dkim_alg_t alg = DKIM_SIGN_RSASHA256, dkim_canon_t hc = DKIM_CANON_RELAXED,
                  dkim_canon_t bc = DKIM_CANON_RELAXED) {
    dk::SignOptions so;
    so.selector = sel;
    so.algorithm = alg;
    so.header_canon = hc;
    so.body_canon = bc;
    m.prepend("DKIM-Signature", dk::sign(m, key, so));
    return m;
  };
  auto hand = [&](dk::TestMessage m, const dk::TestKey& key, const std::string& sel, bool relaxed,
                  const std::string& extra = "") {
    dk::HandSignOptions ho;
    ho.selector = sel;
    ho.relaxed = relaxed;
    ho.extra_tags = extra;
    m.prepend("DKIM-Signature", dk::sign_by_hand(m, key, ho));
    return m;
  };
  const dk::TestMessage base = dk::sample_message();
  using R = DkimResult;
  std::vector<Case> cases;
  cases.push_back({"rsa-relaxed", sign(base, keys.rsa, "rsa"), {R::Pass}, {R::Pass}});
  cases.push_back(
      {"rsa-simple",
       sign(base, keys.rsa, "rsa", DKIM_SIGN_RSASHA256, DKIM_CANON_SIMPLE, DKIM_CANON_SIMPLE),
       {R::Pass},
       {R::Pass}});
  cases.push_back({"ed25519-relaxed", hand(base, keys.ed, "ed", true), {R::Pass}, {R::Pass}});
  cases.push_back({"ed25519-simple", hand(base, keys.ed, "ed", false), {R::Pass}, {R::Pass}});
  cases.push_back({"rsa-by-hand", hand(base, keys.rsa, "rsa", false), {R::Pass}, {R::Pass}});
  {
    dk::TestMessage two = sign(base, keys.rsa, "rsa");
    two = sign(two, keys.rsa, "wrong");
    cases.push_back({"two-signatures", two, {R::Fail, R::Pass}, {R::Fail, R::Pass}});
  }
  {
    dk::TestMessage m = sign(base, keys.rsa, "rsa");
    m.body.insert(0, "Tampered. ");
    cases.push_back({"body-hash", m, {R::Fail}, {R::Fail}});
    m = hand(base, keys.ed, "ed", true);
    for (auto& [name, value] : m.headers) {
      if (name == "Subject") value = "Another subject";
    }
    cases.push_back({"header-signature", m, {R::Fail}, {R::Fail}});
  }
  cases.push_back({"revoked", sign(base, keys.rsa, "revoked"), {R::Fail}, {R::Fail}});
  cases.push_back({"testing", sign(base, keys.rsa, "testing"), {R::Pass}, {R::Pass}});
  cases.push_back({"small-key", sign(base, keys.small, "small"), {R::Policy}, {R::Policy}});
  cases.push_back(
      {"undecodable-key", sign(base, keys.rsa, "badkey"), {R::PermError}, {R::PermError}});
  cases.push_back({"expired",
                   hand(base, keys.rsa, "rsa", true, "t=1000000000; x=1000000100; "),
                   {R::PermError},
                   {R::PermError}});
  // The differences (see the top of this file).
  cases.push_back(
      {"1-rsa-sha1", sign(base, keys.rsa, "rsa", DKIM_SIGN_RSASHA1), {R::PermError}, {R::Pass}});
  cases.push_back({"2-nxdomain", sign(base, keys.rsa, "gone"), {R::PermError}, {R::Fail}});
  cases.push_back({"2-nodata", sign(base, keys.rsa, "nodata"), {R::PermError}, {R::Fail}});
  {
    dk::SignOptions so;
    so.selector = "sel";
    so.domain = "unreachable.example";  // no local data: REFUSED / TempError
    dk::TestMessage m = base;
    m.prepend("DKIM-Signature", dk::sign(m, keys.rsa, so));
    cases.push_back({"3-dns-failure", m, {R::TempError}, {R::Fail}});
  }
  cases.push_back(
      {"4-two-key-records", sign(base, keys.rsa, "two"), {R::PermError}, {R::TempError}});
  cases.push_back(
      {"5-unknown-key-type", sign(base, keys.rsa, "unknownk"), {R::PermError}, {R::Fail}});
  {
    dk::TestMessage m = sign(base, keys.rsa, "rsa");
    m.prepend("DKIM-Signature", "v=1; a=rsa-sha256; s=rsa; h=From; bh=AAAA; b=AAAA");  // no d=
    cases.push_back({"6-malformed-beside-valid", m, {R::PermError, R::Pass}, {}});
  }

  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<DkimVerdict> ours = verify_ours(**verifier, c.message);
    ASSERT_EQ(ours.size(), c.ours.size());
    for (std::size_t i = 0; i < ours.size(); ++i) {
      EXPECT_EQ(to_string(ours[i].result), std::string(to_string(c.ours[i])))
          << "signature " << i << ": " << ours[i].reason;
    }

    const fs::path msg = dir / (c.name + ".eml");
    std::ofstream(msg, std::ios::binary) << c.message.raw();
    test::RunResult run = test::run_command(
        {kOpendkim, "-x", (dir / "opendkim.conf").string(), "-t", msg.string(), "-vv"});
    ASSERT_FALSE(run.timed_out);
    std::vector<OpendkimVerdict> theirs = parse_opendkim(run.out);
    if (c.opendkim.empty()) {
      // OpenDKIM gave up on the message: no Authentication-Results at all.
      EXPECT_TRUE(theirs.empty()) << run.out;
      EXPECT_NE(run.err.find("mlfi_eoh() returned SMFIS_ACCEPT"), std::string::npos) << run.err;
      continue;
    }
    ASSERT_EQ(run.exit_code, 0) << run.err;
    ASSERT_EQ(theirs.size(), c.opendkim.size()) << run.out;
    for (std::size_t i = 0; i < theirs.size(); ++i) {
      EXPECT_EQ(theirs[i].result, std::string(to_string(c.opendkim[i])))
          << "signature " << i << ": " << run.out;
      // Same signature on both sides: OpenDKIM's header.b is the same unique prefix of b=
      // (RFC 6008) libopendkim gives us.
      if (!theirs[i].header_b.empty() && !ours[i].header_b.empty()) {
        EXPECT_EQ(theirs[i].header_b, ours[i].header_b) << "signature " << i;
      }
      if (!ours[i].selector.empty()) {
        EXPECT_EQ(theirs[i].selector, ours[i].selector);
      }
    }
  }
}

}  // namespace
}  // namespace mailreport::auth

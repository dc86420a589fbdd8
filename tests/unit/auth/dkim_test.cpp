// Tests of DkimVerifier / DkimVerification (libopendkim) with keys generated here and key
// records served by the libunbound Resolver from local data only: rsa-sha256 and
// ed25519-sha256 passes, a signature made without libopendkim, two signatures (one good, one
// bad), broken body hash and header signature, revoked key, no key (NXDOMAIN and NODATA),
// testing keys, DNS temperror, key syntax errors, small keys, rsa-sha1, malformed signatures,
// relaxed and simple canonicalisation with headers folded as a milter hands them, and many
// threads sharing one verifier.
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "dkim_test_keys.hpp"
#include "mailreport/auth/dkim.hpp"
#include "mailreport/dns/resolver.hpp"

namespace mailreport::auth {
namespace {

using test::dkim::SignOptions;
using test::dkim::TestKey;
using test::dkim::TestMessage;
using test::dkim::txt_line;

struct Keys {
  TestKey rsa = test::dkim::make_key(false);
  TestKey rsa2 = test::dkim::make_key(false);
  TestKey ed = test::dkim::make_key(true);
  TestKey small = test::dkim::make_key(false, 768);
};

const Keys& keys() {
  static const Keys k;
  return k;
}

std::vector<std::string> zone() {
  const Keys& k = keys();
  return {
      txt_line("rsa._domainkey.example.com", k.rsa.record()),
      txt_line("ed._domainkey.example.com", k.ed.record()),
      // "wrong" publishes another key than the one that signs.
      txt_line("wrong._domainkey.example.com", k.rsa2.record()),
      txt_line("revoked._domainkey.example.com", "v=DKIM1; k=rsa; p="),
      txt_line("testing._domainkey.example.com", k.rsa.record("t=y; ")),
      txt_line("badkey._domainkey.example.com", "v=DKIM1; k=rsa; p=bm90IGEga2V5"),
      txt_line("unknownk._domainkey.example.com", "v=DKIM1; k=dsa; p=" + k.rsa.p),
      txt_line("small._domainkey.example.com", k.small.record()),
      txt_line("two._domainkey.example.com", k.rsa.record()),
      txt_line("two._domainkey.example.com", k.rsa2.record()),
      // NODATA: the name exists, without TXT.
      "nodata._domainkey.example.com. 300 IN A 192.0.2.1",
      txt_line("rsa._domainkey.other.example", k.rsa.record()),
  };
}

class DkimTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dns::ResolverOptions o;
    o.local_only = true;  // "temp._domainkey..." has no data: TempError ("no upstream")
    o.local_data = zone();
    o.local_nxdomain = {"gone._domainkey.example.com."};
    o.timeout = std::chrono::milliseconds(1000);
    auto r = dns::make_unbound_resolver(o, log_);
    ASSERT_TRUE(r.ok()) << r.error().describe();
    auto v = DkimVerifier::create(*r, log_);
    ASSERT_TRUE(v.ok()) << v.error().describe();
    verifier_ = *v;
  }
  static void TearDownTestSuite() { verifier_.reset(); }

  static TestMessage signed_message(const SignOptions& o, const TestKey& key,
                                    TestMessage m = test::dkim::sample_message()) {
    m.prepend("DKIM-Signature", test::dkim::sign(m, key, o));
    return m;
  }

  // Hands the message to a verification the way the milter does: values without the space after
  // the colon, folded lines joined with bare "\n" (Postfix's milter client) unless `crlf`.
  static std::vector<DkimVerdict> verify(const TestMessage& m, bool crlf = false,
                                         std::size_t chunk = 7) {
    auto v = verifier_->start("test-job");
    for (const auto& [name, value] : m.headers) {
      std::string val = value;
      if (!crlf) {
        std::string lf;
        for (char c : val) {
          if (c != '\r') lf += c;
        }
        val = lf;
      }
      EXPECT_TRUE(v->header(name, val).ok()) << name;
    }
    EXPECT_TRUE(v->end_of_headers().ok());
    for (std::size_t i = 0; i < m.body.size(); i += chunk) {
      std::string_view part = std::string_view(m.body).substr(i, chunk);
      EXPECT_TRUE(v->body(std::span<const char>(part.data(), part.size())).ok());
    }
    return v->finish();
  }

  static test::dkim::HandSignOptions hand(std::string selector, bool relaxed) {
    test::dkim::HandSignOptions o;
    o.selector = std::move(selector);
    o.relaxed = relaxed;
    return o;
  }

  static SignOptions opts(std::string selector) {
    SignOptions o;
    o.selector = std::move(selector);
    return o;
  }

  static inline NullLogger log_;
  static inline std::shared_ptr<DkimVerifier> verifier_;
};

TEST_F(DkimTest, NoSignatureGivesNoVerdict) {
  EXPECT_TRUE(verify(test::dkim::sample_message()).empty());
  // Also when the body is never handed over.
  auto v = verifier_->start("empty");
  EXPECT_TRUE(v->header("From", "a@example.com").ok());
  EXPECT_TRUE(v->finish().empty());
}

TEST_F(DkimTest, RsaSha256Passes) {
  auto got = verify(signed_message(opts("rsa"), keys().rsa));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].result, DkimResult::Pass) << got[0].reason;
  EXPECT_EQ(got[0].domain, "example.com");
  EXPECT_EQ(got[0].selector, "rsa");
  EXPECT_EQ(got[0].identity, "@example.com");
  EXPECT_EQ(got[0].algorithm, "rsa-sha256");
  EXPECT_GE(got[0].header_b.size(), 8u);
  EXPECT_TRUE(got[0].reason.empty()) << got[0].reason;
  EXPECT_FALSE(got[0].testing);
}

TEST_F(DkimTest, Ed25519Sha256Passes) {
  ASSERT_TRUE(verifier_->supports_ed25519()) << "Debian 12's libopendkim 2.11 supports RFC 8463";
  TestMessage m = test::dkim::sample_message();
  m.prepend("DKIM-Signature", test::dkim::sign_by_hand(m, keys().ed, hand("ed", true)));
  auto got = verify(m);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].result, DkimResult::Pass) << got[0].reason;
  EXPECT_EQ(got[0].algorithm, "ed25519-sha256");
  EXPECT_EQ(got[0].selector, "ed");
  // A changed body fails as with RSA.
  m.body += "PS.\r\n";
  got = verify(m);
  EXPECT_EQ(got[0].result, DkimResult::Fail);
  EXPECT_EQ(got[0].reason, "body hash mismatch");
}

TEST_F(DkimTest, SignaturesMadeWithoutLibopendkimPass) {
  for (const auto* key : {&keys().rsa, &keys().ed}) {
    for (bool relaxed : {false, true}) {
      TestMessage m = test::dkim::sample_message();
      std::string sel = key->algorithm == "rsa" ? "rsa" : "ed";
      m.prepend("DKIM-Signature", test::dkim::sign_by_hand(m, *key, hand(sel, relaxed)));
      auto got = verify(m);
      ASSERT_EQ(got.size(), 1u);
      EXPECT_EQ(got[0].result, DkimResult::Pass)
          << key->algorithm << (relaxed ? " relaxed: " : " simple: ") << got[0].reason;
    }
  }
}

TEST_F(DkimTest, TwoSignaturesOneGoodOneBadInHeaderOrder) {
  TestMessage m = test::dkim::sample_message();
  m.prepend("DKIM-Signature", test::dkim::sign(m, keys().rsa, opts("rsa")));
  // The second signature (added later, so it is first in the header) uses the wrong key.
  m.prepend("DKIM-Signature", test::dkim::sign(m, keys().rsa, opts("wrong")));
  auto got = verify(m);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].selector, "wrong");
  EXPECT_EQ(got[0].result, DkimResult::Fail);
  EXPECT_EQ(got[0].reason, "signature did not verify");
  EXPECT_EQ(got[1].selector, "rsa");
  EXPECT_EQ(got[1].result, DkimResult::Pass) << got[1].reason;
  EXPECT_NE(got[0].header_b, got[1].header_b);
}

TEST_F(DkimTest, BrokenBodyHash) {
  TestMessage m = signed_message(opts("rsa"), keys().rsa);
  m.body.insert(0, "Tampered. ");
  auto got = verify(m);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].result, DkimResult::Fail);
  EXPECT_EQ(got[0].reason, "body hash mismatch");
}

TEST_F(DkimTest, BrokenHeaderSignature) {
  TestMessage m = signed_message(opts("rsa"), keys().rsa);
  for (auto& [name, value] : m.headers) {
    if (name == "Subject") value = "Another subject";
  }
  auto got = verify(m);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].result, DkimResult::Fail);
  EXPECT_EQ(got[0].reason, "signature did not verify");
}

TEST_F(DkimTest, RevokedKeyFails) {
  auto got = verify(signed_message(opts("revoked"), keys().rsa));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].result, DkimResult::Fail);
  EXPECT_EQ(got[0].reason, "key revoked");
}

TEST_F(DkimTest, NoKeyIsPermError) {
  for (const char* sel : {"gone", "nodata"}) {
    auto got = verify(signed_message(opts(sel), keys().rsa));
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].result, DkimResult::PermError) << sel;
    EXPECT_EQ(got[0].reason, "no key") << sel;
  }
}

TEST_F(DkimTest, DnsFailureIsTempError) {
  auto got = verify(signed_message(opts("temp"), keys().rsa));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].result, DkimResult::TempError);
  EXPECT_NE(got[0].reason.find("key lookup failed"), std::string::npos) << got[0].reason;
}

TEST_F(DkimTest, TestingKeyKeepsResultAndSaysSo) {
  auto got = verify(signed_message(opts("testing"), keys().rsa));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].result, DkimResult::Pass);
  EXPECT_TRUE(got[0].testing);
  EXPECT_EQ(got[0].reason, "testing key (t=y)");
}

TEST_F(DkimTest, UnusableKeyRecordsArePermErrors) {
  for (const char* sel : {"badkey", "unknownk", "two"}) {
    auto got = verify(signed_message(opts(sel), keys().rsa));
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].result, DkimResult::PermError) << sel << ": " << got[0].reason;
    EXPECT_FALSE(got[0].reason.empty());
  }
  auto got = verify(signed_message(opts("two"), keys().rsa));
  EXPECT_EQ(got[0].reason, "several key records");
}

TEST_F(DkimTest, SmallRsaKeyIsPolicy) {
  // RFC 8301 §3.2: RSA keys under 1024 bits are not acceptable.
  auto got = verify(signed_message(opts("small"), keys().small));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].result, DkimResult::Policy);
  EXPECT_EQ(got[0].reason, "key too small (768 bits)");
}

TEST_F(DkimTest, RsaSha1NeverPasses) {
  SignOptions o = opts("rsa");
  o.algorithm = DKIM_SIGN_RSASHA1;
  auto got = verify(signed_message(o, keys().rsa));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].result, DkimResult::PermError);
  EXPECT_EQ(got[0].algorithm, "rsa-sha1");
  EXPECT_NE(got[0].reason.find("rsa-sha1"), std::string::npos) << got[0].reason;
  EXPECT_NE(got[0].reason.find("verified"), std::string::npos) << got[0].reason;
}

TEST_F(DkimTest, MalformedSignatureStillGetsAVerdict) {
  TestMessage m = signed_message(opts("rsa"), keys().rsa);
  m.prepend("DKIM-Signature", "v=1; a=rsa-sha256; s=rsa; h=From; bh=AAAA; b=AAAA");  // no d=
  m.prepend("DKIM-Signature", "this is not a tag list");
  auto got = verify(m);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].result, DkimResult::PermError) << got[0].reason;
  EXPECT_EQ(got[1].result, DkimResult::PermError) << got[1].reason;
  EXPECT_EQ(got[2].result, DkimResult::Pass) << got[2].reason;
}

TEST_F(DkimTest, RelaxedCanonicalisationToleratesWhitespace) {
  TestMessage m = signed_message(opts("rsa"), keys().rsa);
  for (auto& [name, value] : m.headers) {
    if (name == "Subject") value = "A folded   \r\n  subject   line";  // refolded, more spaces
  }
  m.body = "Hello Bob,  \r\n\r\nthis message has double  spaces and a tab.\r\n";
  auto got = verify(m);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].result, DkimResult::Pass) << got[0].reason;
}

TEST_F(DkimTest, SimpleCanonicalisationWithMilterFoldedHeaders) {
  SignOptions o = opts("rsa");
  o.header_canon = DKIM_CANON_SIMPLE;
  o.body_canon = DKIM_CANON_SIMPLE;
  TestMessage m = signed_message(o, keys().rsa);
  // Folded lines as Postfix hands them (bare LF) and as CRLF: both rebuild the signed bytes.
  auto got = verify(m, /*crlf=*/false);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].result, DkimResult::Pass) << got[0].reason;
  got = verify(m, /*crlf=*/true, /*chunk=*/1);
  EXPECT_EQ(got[0].result, DkimResult::Pass) << got[0].reason;
  // Simple canonicalisation sees what relaxed forgives.
  TestMessage changed = m;
  for (auto& [name, value] : changed.headers) {
    if (name == "Subject") value = "A folded \r\n\tsubject line";
  }
  got = verify(changed);
  EXPECT_EQ(got[0].result, DkimResult::Fail);
  changed = m;
  changed.body = "Hello Bob,  \r\n\r\nthis  message has  double spaces \t and a tab.\r\n";
  got = verify(changed);
  EXPECT_EQ(got[0].result, DkimResult::Fail);
  EXPECT_EQ(got[0].reason, "body hash mismatch");
}

TEST_F(DkimTest, LeadingSpaceKeptByTheMta) {
  SignOptions o = opts("rsa");
  o.header_canon = DKIM_CANON_SIMPLE;
  TestMessage m = signed_message(o, keys().rsa);
  auto v = verifier_->start("leadspc", /*header_leading_space_kept=*/true);
  for (const auto& [name, value] : m.headers) ASSERT_TRUE(v->header(name, " " + value).ok());
  ASSERT_TRUE(v->body(std::span<const char>(m.body.data(), m.body.size())).ok());
  auto got = v->finish();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].result, DkimResult::Pass) << got[0].reason;
}

TEST_F(DkimTest, BadHeaderNamesAreRefused) {
  auto v = verifier_->start("bad-names");
  EXPECT_FALSE(v->header("", "x").ok());
  EXPECT_FALSE(v->header("Bad Name", "x").ok());
  EXPECT_FALSE(v->header("Bad:Name", "x").ok());
  EXPECT_TRUE(v->end_of_headers().ok());
  EXPECT_FALSE(v->header("Late", "x").ok());
  EXPECT_TRUE(v->finish().empty());
}

// Forwards to a real resolver and records the names asked.
class RecordingResolver final : public dns::Resolver {
 public:
  explicit RecordingResolver(std::shared_ptr<dns::Resolver> inner) : inner_(std::move(inner)) {}
  dns::Answer query(std::string_view name, dns::RType type) override {
    std::lock_guard lock(mu_);
    asked_.push_back(std::string(name) + "/" + dns::to_string(type));
    return inner_->query(name, type);
  }
  std::vector<std::string> asked() {
    std::lock_guard lock(mu_);
    return asked_;
  }

 private:
  std::shared_ptr<dns::Resolver> inner_;
  std::mutex mu_;
  std::vector<std::string> asked_;
};

TEST_F(DkimTest, EveryKeyLookupGoesThroughOurResolver) {
  dns::ResolverOptions o;
  o.local_only = true;
  o.local_data = zone();
  auto inner = dns::make_unbound_resolver(o, log_);
  ASSERT_TRUE(inner.ok());
  auto recording = std::make_shared<RecordingResolver>(*inner);
  auto v = DkimVerifier::create(recording, log_);
  ASSERT_TRUE(v.ok());
  TestMessage m = test::dkim::sample_message();
  m.prepend("DKIM-Signature", test::dkim::sign(m, keys().rsa, opts("rsa")));
  m.prepend("DKIM-Signature", test::dkim::sign(m, keys().rsa, opts("revoked")));
  auto verification = (*v)->start("recording");
  for (const auto& [name, value] : m.headers) ASSERT_TRUE(verification->header(name, value).ok());
  ASSERT_TRUE(verification->body(std::span<const char>(m.body.data(), m.body.size())).ok());
  auto got = verification->finish();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].result, DkimResult::Fail);
  EXPECT_EQ(got[1].result, DkimResult::Pass);
  EXPECT_EQ(recording->asked(), (std::vector<std::string>{"revoked._domainkey.example.com/TXT",
                                                          "rsa._domainkey.example.com/TXT"}));
}

TEST_F(DkimTest, ManyThreadsShareOneVerifier) {
  TestMessage ed = test::dkim::sample_message();
  ed.prepend("DKIM-Signature", test::dkim::sign_by_hand(ed, keys().ed, hand("ed", true)));
  const std::vector<std::pair<TestMessage, DkimResult>> cases = {
      {signed_message(opts("rsa"), keys().rsa), DkimResult::Pass},
      {ed, DkimResult::Pass},
      {signed_message(opts("wrong"), keys().rsa), DkimResult::Fail},
      {signed_message(opts("gone"), keys().rsa), DkimResult::PermError},
      {signed_message(opts("temp"), keys().rsa), DkimResult::TempError},
  };
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        const auto& [msg, want] = cases[static_cast<std::size_t>(t + i) % cases.size()];
        auto got = verify(msg, false, 64);
        if (got.size() != 1 || got[0].result != want) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace mailreport::auth

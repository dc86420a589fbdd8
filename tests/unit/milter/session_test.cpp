// The milter Session driven event by event through a recording Actions, with the real
// verifiers (libspf2, libopendkim, our DMARC) on the libunbound resolver answering from local
// data only, and DKIM keys made by the test: verdicts, the Authentication-Results added and the
// forged ones removed, trusted upstream mode, the mail that is not evaluated, enforcement
// replies, DNS temperror handling, and what goes to the writer's queue.
#include "mailreport/milter/session.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "../auth/dkim_test_keys.hpp"
#include "mailreport/milter/environment.hpp"

namespace mailreport::milter {
namespace {

using test::dkim::TestKey;
using test::dkim::TestMessage;

constexpr std::int64_t kNow = 1763719200;  // 2025-11-21 10:00:00 UTC
constexpr const char* kOurId = "mx.receiver.example";

class RecordingActions final : public Actions {
 public:
  Status add_header(std::string_view name, std::string_view value) override {
    ops.push_back("add " + std::string(name) + ": " + std::string(value));
    return {};
  }
  Status insert_header(int index, std::string_view name, std::string_view value) override {
    ops.push_back("insert " + std::to_string(index) + " " + std::string(name) + ":" +
                  std::string(value));
    inserted.emplace_back(std::string(value));
    return {};
  }
  Status change_header(std::string_view name, int index, std::string_view value) override {
    ops.push_back("change " + std::string(name) + " " + std::to_string(index) + " '" +
                  std::string(value) + "'");
    return {};
  }
  Status quarantine(std::string_view reason) override {
    ops.push_back("quarantine " + std::string(reason));
    if (refuse_quarantine) return make_error(ErrorCode::Io, "smfi_quarantine failed");
    return {};
  }
  Status set_reply(std::string_view code, std::string_view xcode, std::string_view text) override {
    reply = std::string(code) + " " + std::string(xcode) + " " + std::string(text);
    ops.push_back("reply " + reply);
    return {};
  }

  std::vector<std::string> ops;
  std::vector<std::string> inserted;  // values of inserted fields
  std::string reply;
  bool refuse_quarantine = false;
};

class FakeQueue final : public EvaluationQueue {
 public:
  bool push(auth::Evaluation e) override {
    if (!accept) {
      ++dropped;
      return false;
    }
    pushed.push_back(std::move(e));
    return true;
  }
  std::vector<auth::Evaluation> pushed;
  bool accept = true;
  int dropped = 0;
};

class MapMacros final : public Macros {
 public:
  MapMacros() = default;
  MapMacros(std::initializer_list<std::pair<const std::string, std::string>> m) : m_(m) {}
  std::optional<std::string> get(std::string_view name) const override {
    auto it = m_.find(std::string(name));
    if (it == m_.end()) return std::nullopt;
    return it->second;
  }

 private:
  std::map<std::string, std::string> m_;
};

struct Keys {
  TestKey rsa = test::dkim::make_key(false, 1024);
  TestKey ed = test::dkim::make_key(true);
};

Keys& keys() {
  static Keys k;
  return k;
}

std::vector<std::string> zone() {
  const Keys& k = keys();
  return {
      R"(example.com. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 -all")",
      R"(_dmarc.example.com. 300 IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@example.com")",
      test::dkim::txt_line("sel._domainkey.example.com", k.rsa.record()),
      test::dkim::txt_line("ed._domainkey.example.com", k.ed.record()),
      R"(quarantine.example. 300 IN TXT "v=spf1 -all")",
      R"(_dmarc.quarantine.example. 300 IN TXT "v=DMARC1; p=quarantine; rua=mailto:d@quarantine.example")",
      R"(none.example. 300 IN TXT "v=spf1 a:host.unresolvable.example -all")",
      R"(_dmarc.none.example. 300 IN TXT "v=DMARC1; p=none; rua=mailto:d@none.example")",
      R"(norua.example. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 -all")",
      R"(_dmarc.norua.example. 300 IN TXT "v=DMARC1; p=reject")",
      R"(nodmarc.example. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 -all")",
      // The tempreject domain has a strict policy but its SPF needs a name nobody answers.
      R"(tempreject.example. 300 IN TXT "v=spf1 a:host.unresolvable.example -all")",
      R"(_dmarc.tempreject.example. 300 IN TXT "v=DMARC1; p=reject; rua=mailto:d@tempreject.example")",
  };
}

std::string base_config(const std::string& extra_milter = "") {
  return "[report.analysis]\naddresses = [\"dmarc@*\", \"*@reports.receiver.example\"]\n"
         "[milter]\nauthserv-id = \"" +
         std::string(kOurId) + "\"\n" + extra_milter;
}

struct Envelope {
  std::string ip = "192.0.2.10";
  std::string helo = "mail.example.com";
  std::string mail_from = "<alice@example.com>";
  std::vector<std::string> rcpts = {"<bob@receiver.example>"};
  std::string auth_user;
};

class SessionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dns::ResolverOptions o;
    o.local_only = true;  // names without local data: TempError ("no upstream")
    o.local_data = zone();
    // The tree walk ends at the TLD; those names answer "no record".
    o.local_nxdomain = {"_dmarc.example.", "_dmarc.com."};
    o.timeout = std::chrono::milliseconds(1000);
    auto r = dns::make_unbound_resolver(o, log_);
    ASSERT_TRUE(r.ok()) << r.error().describe();
    resolver_ = *r;
  }
  static void TearDownTestSuite() { resolver_.reset(); }

  // A new environment with this configuration ([milter] lines added to the base).
  void configure(const std::string& extra_milter = "") {
    auto loaded = config::load_string(base_config(extra_milter));
    ASSERT_TRUE(loaded.config) << (loaded.problems.empty() ? "" : loaded.problems[0].describe());
    auto env = std::make_shared<Environment>();
    env->config = loaded.config;
    env->resolver = resolver_;
    env->spf = *auth::SpfVerifier::create(resolver_, kOurId, log_);
    env->dkim = *auth::DkimVerifier::create(resolver_, log_);
    env->dmarc = std::make_shared<const auth::DmarcEvaluator>(resolver_);
    env->now = [] { return kNow; };
    env_ = env;
  }

  void SetUp() override { configure(); }

  std::unique_ptr<Session> session(SessionOptions o = {}) {
    return std::make_unique<Session>(env_, actions_, queue_, log_, std::move(o));
  }

  // One message through every step; the body in chunks of `chunk` bytes. Headers are handed
  // the way Postfix does: no space after the colon, folded lines joined with "\n".
  Decision deliver(Session& s, const TestMessage& m, const Envelope& e = {}, std::size_t chunk = 5,
                   bool leading_space = false) {
    std::vector<std::string> from = {e.mail_from, "SIZE=1000"};
    MapMacros mail = e.auth_user.empty() ? MapMacros{{"i", "QID1"}}
                                         : MapMacros{{"i", "QID1"}, {"{auth_authen}", e.auth_user}};
    EXPECT_EQ(s.envfrom(from, mail), Decision::Continue);
    for (const auto& r : e.rcpts) {
      std::vector<std::string> args = {r};
      EXPECT_EQ(s.envrcpt(args), Decision::Continue);
    }
    for (const auto& [name, value] : m.headers) {
      std::string v;
      for (char c : value) {
        if (c != '\r') v += c;
      }
      if (leading_space) v.insert(0, " ");
      EXPECT_EQ(s.header(name, v), Decision::Continue);
    }
    EXPECT_EQ(s.eoh(), Decision::Continue);
    for (std::size_t i = 0; i < m.body.size(); i += chunk) {
      std::string_view part = std::string_view(m.body).substr(i, chunk);
      EXPECT_EQ(s.body({part.data(), part.size()}), Decision::Continue);
    }
    return s.eom(MapMacros{{"i", "QID1"}});
  }

  Decision deliver(const TestMessage& m, const Envelope& e = {}) {
    auto s = session();
    s->connect("client.example", e.ip, MapMacros{});
    s->helo(e.helo);
    Decision d = deliver(*s, m, e);
    last_ = s->last_evaluation();
    s->close();
    return d;
  }

  static TestMessage message(const std::string& from_domain = "example.com") {
    return test::dkim::sample_message(from_domain);
  }

  static TestMessage signed_message(const std::string& from_domain = "example.com",
                                    bool ed25519 = false) {
    TestMessage m = message(from_domain);
    if (ed25519) {
      // libopendkim's signer leaks every ed25519 private key it loads: sign by hand.
      test::dkim::HandSignOptions h;
      h.selector = "ed";
      m.prepend("DKIM-Signature", test::dkim::sign_by_hand(m, keys().ed, h));
      return m;
    }
    test::dkim::SignOptions o;
    o.selector = "sel";
    o.domain = "example.com";
    m.prepend("DKIM-Signature", test::dkim::sign(m, keys().rsa, o));
    return m;
  }

  std::string added_ar() const {
    return actions_.inserted.empty() ? std::string() : actions_.inserted.back();
  }

  static bool has(const std::string& text, std::string_view needle) {
    return text.find(needle) != std::string::npos;
  }

  static inline NullLogger log_;
  static inline std::shared_ptr<dns::Resolver> resolver_;
  std::shared_ptr<const Environment> env_;
  RecordingActions actions_;
  FakeQueue queue_;
  std::optional<auth::Evaluation> last_;
};

TEST_F(SessionTest, AlignedPassAddsAuthenticationResultsAndRecords) {
  EXPECT_EQ(deliver(signed_message()), Decision::Continue);
  ASSERT_TRUE(last_);
  const auth::Evaluation& ev = *last_;
  EXPECT_EQ(ev.time, kNow);
  EXPECT_EQ(ev.source_ip, "192.0.2.10");
  EXPECT_EQ(ev.helo, "mail.example.com");
  EXPECT_EQ(ev.envelope_from, "example.com");
  EXPECT_EQ(ev.envelope_to, "receiver.example");
  EXPECT_EQ(ev.header_from, "example.com");
  EXPECT_EQ(ev.message_id, "<1234@example.com>");
  ASSERT_EQ(ev.spf.size(), 2u);
  EXPECT_EQ(ev.spf[0].scope, auth::SpfScope::MailFrom);
  EXPECT_EQ(ev.spf[0].result, auth::SpfResult::Pass);
  ASSERT_EQ(ev.dkim.size(), 1u);
  EXPECT_EQ(ev.dkim[0].result, auth::DkimResult::Pass) << ev.dkim[0].reason;
  EXPECT_EQ(ev.dkim[0].domain, "example.com");
  EXPECT_EQ(ev.dkim[0].selector, "sel");
  EXPECT_EQ(ev.dmarc.result, auth::DmarcResult::Pass);
  EXPECT_TRUE(ev.dmarc.dkim_aligned);
  EXPECT_TRUE(ev.dmarc.spf_aligned);
  EXPECT_FALSE(ev.trusted_upstream);

  ASSERT_EQ(actions_.ops.size(), 1u);
  EXPECT_TRUE(actions_.ops[0].starts_with("insert 0 Authentication-Results:")) << actions_.ops[0];
  const std::string ar = added_ar();
  EXPECT_TRUE(ar.starts_with(kOurId)) << ar;
  EXPECT_TRUE(has(ar, "spf=pass")) << ar;
  EXPECT_TRUE(has(ar, "dkim=pass")) << ar;
  EXPECT_TRUE(has(ar, "header.d=example.com")) << ar;
  EXPECT_TRUE(has(ar, "dmarc=pass")) << ar;
  EXPECT_FALSE(has(ar, "\r")) << "libmilter wants LF folding";

  ASSERT_EQ(queue_.pushed.size(), 1u);
  EXPECT_EQ(queue_.pushed[0].dmarc.record->rua,
            std::vector<std::string>{"mailto:dmarc@example.com"});
}

TEST_F(SessionTest, DkimIsStreamedInAnyChunking) {
  for (std::size_t chunk : {1u, 3u, 64u, 100000u}) {
    auto s = session();
    s->connect("client.example", "192.0.2.10", MapMacros{});
    s->helo("mail.example.com");
    deliver(*s, signed_message("example.com", /*ed25519=*/true), {}, chunk);
    ASSERT_TRUE(s->last_evaluation());
    ASSERT_EQ(s->last_evaluation()->dkim.size(), 1u);
    EXPECT_EQ(s->last_evaluation()->dkim[0].result, auth::DkimResult::Pass) << chunk;
    EXPECT_EQ(s->last_evaluation()->dkim[0].algorithm, "ed25519-sha256");
  }
}

TEST_F(SessionTest, HeaderValuesWithTheirLeadingSpace) {
  SessionOptions o;
  o.header_leading_space = true;
  auto s = session(o);
  s->connect("client.example", "192.0.2.10", MapMacros{});
  s->helo("mail.example.com");
  EXPECT_EQ(deliver(*s, signed_message(), {}, 7, /*leading_space=*/true), Decision::Continue);
  ASSERT_TRUE(s->last_evaluation());
  EXPECT_EQ(s->last_evaluation()->dkim.at(0).result, auth::DkimResult::Pass);
  EXPECT_EQ(s->last_evaluation()->header_from, "example.com");
  // With SMFIP_HDR_LEADSPC the MTA adds no space of its own to the fields we add.
  EXPECT_TRUE(added_ar().starts_with(std::string(" ") + kOurId)) << added_ar();
}

TEST_F(SessionTest, BrokenSignatureFailsDmarcButObserveModeDelivers) {
  TestMessage m = signed_message();
  m.body += "appended by a mailing list\r\n";  // body hash mismatch
  Envelope e;
  e.ip = "203.0.113.5";  // not in example.com's SPF
  EXPECT_EQ(deliver(m, e), Decision::Continue);
  ASSERT_TRUE(last_);
  EXPECT_EQ(last_->spf.at(0).result, auth::SpfResult::Fail);
  EXPECT_EQ(last_->dkim.at(0).result, auth::DkimResult::Fail);
  EXPECT_EQ(last_->dmarc.result, auth::DmarcResult::Fail);
  // Not enforced: delivered, and the report says why the policy was not applied.
  EXPECT_EQ(last_->dmarc.disposition, auth::Disposition::None);
  ASSERT_EQ(last_->dmarc.overrides.size(), 1u);
  EXPECT_EQ(last_->dmarc.overrides[0].first, auth::OverrideReason::LocalPolicy);
  EXPECT_TRUE(actions_.reply.empty());
  EXPECT_TRUE(has(added_ar(), "dmarc=fail")) << added_ar();
  EXPECT_TRUE(has(added_ar(), "spf=fail")) << added_ar();
  ASSERT_EQ(queue_.pushed.size(), 1u);
}

TEST_F(SessionTest, EnforcedRejectNamesThePolicyDomain) {
  configure("dmarc-enforce = true\n");
  Envelope e;
  e.ip = "203.0.113.5";
  EXPECT_EQ(deliver(message(), e), Decision::Reject);
  EXPECT_EQ(actions_.reply, "550 5.7.1 Email rejected per DMARC policy for example.com");
  EXPECT_TRUE(actions_.inserted.empty());  // no header on a rejected message
  ASSERT_EQ(queue_.pushed.size(), 1u);     // rejections are reported too
  EXPECT_EQ(queue_.pushed[0].dmarc.disposition, auth::Disposition::Reject);
  EXPECT_TRUE(queue_.pushed[0].dmarc.overrides.empty());
}

TEST_F(SessionTest, EnforcedQuarantineHoldsTheMessage) {
  configure("dmarc-enforce = true\n");
  Envelope e;
  e.mail_from = "<x@quarantine.example>";
  EXPECT_EQ(deliver(message("quarantine.example"), e), Decision::Continue);
  ASSERT_TRUE(last_);
  EXPECT_EQ(last_->dmarc.result, auth::DmarcResult::Fail);
  EXPECT_EQ(last_->dmarc.disposition, auth::Disposition::Quarantine);
  EXPECT_NE(std::find(actions_.ops.begin(), actions_.ops.end(),
                      "quarantine DMARC policy quarantine for quarantine.example"),
            actions_.ops.end());
  EXPECT_TRUE(has(added_ar(), "dmarc=fail"));
}

TEST_F(SessionTest, QuarantineAcceptDeliversAndSaysSo) {
  configure("dmarc-enforce = true\ndmarc-quarantine = \"accept\"\n");
  Envelope e;
  e.mail_from = "<x@quarantine.example>";
  EXPECT_EQ(deliver(message("quarantine.example"), e), Decision::Continue);
  ASSERT_TRUE(last_);
  EXPECT_EQ(last_->dmarc.disposition, auth::Disposition::None);
  ASSERT_EQ(last_->dmarc.overrides.size(), 1u);
  EXPECT_EQ(last_->dmarc.overrides[0].first, auth::OverrideReason::LocalPolicy);
  for (const auto& op : actions_.ops) EXPECT_FALSE(op.starts_with("quarantine")) << op;
}

TEST_F(SessionTest, QuarantineTheMtaRefusesIsRecordedAsNotApplied) {
  configure("dmarc-enforce = true\n");
  actions_.refuse_quarantine = true;
  Envelope e;
  e.mail_from = "<x@quarantine.example>";
  EXPECT_EQ(deliver(message("quarantine.example"), e), Decision::Continue);
  ASSERT_TRUE(last_);
  EXPECT_EQ(last_->dmarc.disposition, auth::Disposition::None);
  EXPECT_EQ(last_->dmarc.overrides.size(), 1u);
}

TEST_F(SessionTest, DnsTemperrorTempfailsWhenEnforcing) {
  configure("dmarc-enforce = true\n");
  Envelope e;
  e.mail_from = "<x@temp.example>";  // no local data: the policy lookup fails
  EXPECT_EQ(deliver(message("temp.example"), e), Decision::TempFail);
  ASSERT_TRUE(last_);
  EXPECT_EQ(last_->dmarc.result, auth::DmarcResult::TempError);
  EXPECT_TRUE(actions_.reply.starts_with("451 4.7.1 ")) << actions_.reply;
  EXPECT_TRUE(has(actions_.reply, "temp.example")) << actions_.reply;
  EXPECT_TRUE(queue_.pushed.empty());  // it will come again
}

TEST_F(SessionTest, DnsTemperrorOfTheChecksTempfailsAStrictPolicy) {
  configure("dmarc-enforce = true\n");
  Envelope e;
  e.ip = "203.0.113.5";
  e.mail_from = "<x@tempreject.example>";
  EXPECT_EQ(deliver(message("tempreject.example"), e), Decision::TempFail);
  ASSERT_TRUE(last_);
  EXPECT_EQ(last_->spf.at(0).result, auth::SpfResult::TempError);
  EXPECT_EQ(last_->dmarc.result, auth::DmarcResult::TempError);
}

TEST_F(SessionTest, DnsTemperrorUnderPolicyNoneIsNoReasonToWait) {
  configure("dmarc-enforce = true\n");
  Envelope e;
  e.ip = "203.0.113.5";
  e.mail_from = "<x@none.example>";
  EXPECT_EQ(deliver(message("none.example"), e), Decision::Continue);
  ASSERT_TRUE(last_);
  EXPECT_EQ(last_->dmarc.result, auth::DmarcResult::TempError);
  EXPECT_TRUE(actions_.reply.empty());
}

TEST_F(SessionTest, DnsTemperrorAcceptedWhenConfigured) {
  configure("dmarc-enforce = true\ndmarc-temperror = \"accept\"\n");
  Envelope e;
  e.mail_from = "<x@temp.example>";
  EXPECT_EQ(deliver(message("temp.example"), e), Decision::Continue);
  EXPECT_TRUE(actions_.reply.empty());
  EXPECT_TRUE(has(added_ar(), "dmarc=temperror")) << added_ar();
}

TEST_F(SessionTest, DnsTemperrorNotEnforcedDelivers) {
  Envelope e;
  e.mail_from = "<x@temp.example>";
  EXPECT_EQ(deliver(message("temp.example"), e), Decision::Continue);
}

TEST_F(SessionTest, ForgedAuthenticationResultsAreRemovedHighestIndexFirst) {
  TestMessage m = signed_message();
  m.prepend("Authentication-Results", std::string(kOurId) + "; dmarc=pass header.from=example.com");
  m.prepend("Authentication-Results", "other.example; spf=fail smtp.mailfrom=example.com");
  m.prepend("Authentication-Results",
            "MX.Receiver.Example;\r\n\tdkim=pass header.d=example.com");  // case-insensitive
  EXPECT_EQ(deliver(m), Decision::Continue);
  ASSERT_EQ(actions_.ops.size(), 3u);
  EXPECT_EQ(actions_.ops[0], "change Authentication-Results 3 ''");
  EXPECT_EQ(actions_.ops[1], "change Authentication-Results 1 ''");
  EXPECT_TRUE(actions_.ops[2].starts_with("insert 0 Authentication-Results:"));
  // The forged "pass" was not believed: the real checks ran.
  EXPECT_EQ(last_->dmarc.result, auth::DmarcResult::Pass);
  EXPECT_FALSE(last_->trusted_upstream);
}

TEST_F(SessionTest, AuthenticatedSubmissionIsNotEvaluatedButForgeriesGo) {
  TestMessage m = message();
  m.prepend("Authentication-Results", std::string(kOurId) + "; spf=pass");
  Envelope e;
  e.ip = "203.0.113.5";
  e.auth_user = "alice";
  EXPECT_EQ(deliver(m, e), Decision::Continue);
  EXPECT_FALSE(last_);
  ASSERT_EQ(actions_.ops.size(), 1u);
  EXPECT_EQ(actions_.ops[0], "change Authentication-Results 1 ''");
  EXPECT_TRUE(queue_.pushed.empty());
}

TEST_F(SessionTest, TrustedNetworksAreNotEvaluated) {
  configure("trusted-networks = [\"198.51.100.0/24\"]\n");
  TestMessage m = message();
  m.prepend("Authentication-Results", std::string(kOurId) + "; spf=pass");
  Envelope e;
  e.ip = "198.51.100.7";
  EXPECT_EQ(deliver(m, e), Decision::Continue);
  EXPECT_FALSE(last_);
  EXPECT_EQ(actions_.ops, std::vector<std::string>{"change Authentication-Results 1 ''"});
  // The default list (loopback) is replaced.
  e.ip = "127.0.0.1";
  actions_.ops.clear();
  deliver(message(), e);
  EXPECT_TRUE(last_);
}

TEST_F(SessionTest, LoopbackAndLocalClientsAreNotEvaluatedByDefault) {
  Envelope e;
  e.ip = "127.0.0.1";
  deliver(message(), e);
  EXPECT_FALSE(last_);
  e.ip = "::1";
  deliver(message(), e);
  EXPECT_FALSE(last_);
  e.ip = "";  // no address: local submission
  deliver(message(), e);
  EXPECT_FALSE(last_);
  EXPECT_TRUE(actions_.ops.empty());
  EXPECT_TRUE(queue_.pushed.empty());
}

TEST_F(SessionTest, TrustedUpstreamVerdictsReplaceOurChecks) {
  configure("trust-authserv-ids = [\"relay.example.net\"]\n");
  TestMessage m = message();  // unsigned, and the client is not in example.com's SPF
  m.prepend("Authentication-Results",
            "relay.example.net;\r\n\tspf=pass smtp.mailfrom=alice@example.com;\r\n"
            "\tdkim=pass header.d=example.com header.s=sel header.i=@example.com");
  Envelope e;
  e.ip = "203.0.113.5";
  EXPECT_EQ(deliver(m, e), Decision::Continue);
  ASSERT_TRUE(last_);
  EXPECT_TRUE(last_->trusted_upstream);
  ASSERT_EQ(last_->spf.size(), 1u);
  EXPECT_EQ(last_->spf[0].result, auth::SpfResult::Pass);
  EXPECT_EQ(last_->spf[0].domain, "example.com");
  ASSERT_EQ(last_->dkim.size(), 1u);
  EXPECT_EQ(last_->dkim[0].result, auth::DkimResult::Pass);
  EXPECT_EQ(last_->dkim[0].selector, "sel");
  // DMARC is always ours, on the trusted verdicts.
  EXPECT_EQ(last_->dmarc.result, auth::DmarcResult::Pass);
  EXPECT_TRUE(last_->dmarc.record.has_value());
  // The trusted field stays; ours is added.
  ASSERT_EQ(actions_.ops.size(), 1u);
  EXPECT_TRUE(has(added_ar(), "dmarc=pass"));
  EXPECT_EQ(queue_.pushed.size(), 1u);
}

TEST_F(SessionTest, TrustedUpstreamWithoutSpfLeavesSpfToUs) {
  configure("trust-authserv-ids = [\"relay.example.net\"]\n");
  TestMessage m = message();
  m.prepend("Authentication-Results", "relay.example.net; dkim=none");
  Envelope e;
  e.ip = "203.0.113.5";
  deliver(m, e);
  ASSERT_TRUE(last_);
  EXPECT_TRUE(last_->trusted_upstream);
  ASSERT_EQ(last_->spf.size(), 2u);  // ours: mfrom and helo
  EXPECT_EQ(last_->spf[0].result, auth::SpfResult::Fail);
  EXPECT_TRUE(last_->dkim.empty());  // the upstream found no signature
  EXPECT_EQ(last_->dmarc.result, auth::DmarcResult::Fail);
}

TEST_F(SessionTest, TheNewestTrustedFieldWins) {
  configure("trust-authserv-ids = [\"relay.example.net\", \"older.example.net\"]\n");
  TestMessage m = message();
  m.prepend("Authentication-Results", "older.example.net; spf=pass smtp.mailfrom=example.com");
  m.prepend("Authentication-Results", "relay.example.net; spf=fail smtp.mailfrom=example.com");
  Envelope e;
  e.ip = "203.0.113.5";
  deliver(m, e);
  ASSERT_TRUE(last_);
  ASSERT_EQ(last_->spf.size(), 1u);
  EXPECT_EQ(last_->spf[0].result, auth::SpfResult::Fail);
}

TEST_F(SessionTest, UntrustedAuthenticationResultsAreIgnored) {
  configure("trust-authserv-ids = [\"relay.example.net\"]\n");
  TestMessage m = message();
  m.prepend("Authentication-Results",
            "evil.example; spf=pass smtp.mailfrom=example.com; dkim=pass header.d=example.com");
  Envelope e;
  e.ip = "203.0.113.5";
  deliver(m, e);
  ASSERT_TRUE(last_);
  EXPECT_FALSE(last_->trusted_upstream);
  EXPECT_EQ(last_->dmarc.result, auth::DmarcResult::Fail);
  ASSERT_EQ(actions_.ops.size(), 1u);  // not ours to delete either
}

TEST_F(SessionTest, MailToReportMailboxesIsNotRecorded) {
  Envelope e;
  e.rcpts = {"<dmarc@receiver.example>", "<x@reports.receiver.example>"};
  deliver(signed_message(), e);
  ASSERT_TRUE(last_);
  EXPECT_EQ(last_->dmarc.result, auth::DmarcResult::Pass);
  EXPECT_FALSE(actions_.inserted.empty());  // still evaluated and marked
  EXPECT_TRUE(queue_.pushed.empty());

  // One ordinary recipient among them: recorded.
  e.rcpts = {"<dmarc@receiver.example>", "<bob@receiver.example>"};
  deliver(signed_message(), e);
  EXPECT_EQ(queue_.pushed.size(), 1u);
  EXPECT_EQ(queue_.pushed[0].envelope_to, "receiver.example");  // the first recipient's
}

TEST_F(SessionTest, OnlyRecordsWithRuaAreQueued) {
  Envelope e;
  e.mail_from = "<x@norua.example>";
  deliver(message("norua.example"), e);
  ASSERT_TRUE(last_);
  EXPECT_EQ(last_->dmarc.result, auth::DmarcResult::Pass);  // SPF aligned
  EXPECT_TRUE(queue_.pushed.empty());
  e.mail_from = "<x@nodmarc.example>";
  deliver(message("nodmarc.example"), e);
  ASSERT_TRUE(last_);
  EXPECT_EQ(last_->dmarc.result, auth::DmarcResult::None);
  EXPECT_TRUE(has(added_ar(), "dmarc=none")) << added_ar();
  EXPECT_TRUE(queue_.pushed.empty());
}

TEST_F(SessionTest, AFullQueueNeverStopsTheMail) {
  queue_.accept = false;
  auto s = session();
  s->connect("client.example", "192.0.2.10", MapMacros{});
  s->helo("mail.example.com");
  EXPECT_EQ(deliver(*s, signed_message()), Decision::Continue);
  EXPECT_FALSE(s->last_recorded());
  EXPECT_EQ(queue_.dropped, 1);
  EXPECT_FALSE(actions_.inserted.empty());
}

TEST_F(SessionTest, SeveralMessagesAndAnAbortOnOneConnection) {
  auto s = session();
  s->connect("client.example", "192.0.2.10", MapMacros{});
  s->helo("mail.example.com");
  // First message: authenticated, not evaluated.
  Envelope e;
  e.auth_user = "alice";
  deliver(*s, message(), e);
  EXPECT_FALSE(s->last_evaluation());
  // Second: aborted halfway (RSET).
  std::vector<std::string> from = {"<bob@example.com>"};
  s->envfrom(from, MapMacros{});
  s->header("From", "bob@example.com");
  s->abort();
  // Third: evaluated on its own, with nothing of the others.
  deliver(*s, signed_message());
  ASSERT_TRUE(s->last_evaluation());
  EXPECT_EQ(s->last_evaluation()->dmarc.result, auth::DmarcResult::Pass);
  EXPECT_EQ(s->last_evaluation()->dkim.size(), 1u);
  EXPECT_EQ(queue_.pushed.size(), 1u);
}

TEST_F(SessionTest, MappedIpv4AddressIsReportedAsIpv4) {
  Envelope e;
  e.ip = "::ffff:192.0.2.10";
  deliver(signed_message(), e);
  ASSERT_TRUE(last_);
  EXPECT_EQ(last_->source_ip, "192.0.2.10");
  EXPECT_EQ(last_->spf.at(0).result, auth::SpfResult::Pass);
  // And loopback in mapped form is still loopback.
  e.ip = "::ffff:127.0.0.1";
  deliver(message(), e);
  EXPECT_FALSE(last_);
}

TEST_F(SessionTest, NullSenderUsesTheHeloIdentity) {
  Envelope e;
  e.mail_from = "<>";
  e.helo = "example.com";
  deliver(signed_message(), e);
  ASSERT_TRUE(last_);
  EXPECT_EQ(last_->envelope_from, "");
  // RFC 7208 §2.4: the MAIL FROM identity is postmaster@HELO.
  EXPECT_EQ(last_->spf.at(0).domain, "example.com");
  EXPECT_EQ(last_->spf.at(0).result, auth::SpfResult::Pass);
}

TEST_F(SessionTest, MultipleFromHeadersArePermError) {
  TestMessage m = message();
  m.headers.emplace_back("From", "mallory@other.example");
  deliver(m);
  ASSERT_TRUE(last_);
  EXPECT_EQ(last_->dmarc.result, auth::DmarcResult::PermError);
  EXPECT_TRUE(has(added_ar(), "dmarc=permerror")) << added_ar();
}

TEST_F(SessionTest, AddHeaderOff) {
  configure("add-header = false\n");
  deliver(signed_message());
  ASSERT_TRUE(last_);
  EXPECT_TRUE(actions_.inserted.empty());
  EXPECT_EQ(queue_.pushed.size(), 1u);
}

TEST_F(SessionTest, ReloadedEnvironmentOnlyForNewSessions) {
  auto old_session = session();
  configure("dmarc-enforce = true\n");
  auto new_session = session();
  Envelope e;
  e.ip = "203.0.113.5";
  for (auto* s : {old_session.get(), new_session.get()}) {
    s->connect("client.example", e.ip, MapMacros{});
    s->helo("mail.example.com");
  }
  EXPECT_EQ(deliver(*old_session, message(), e), Decision::Continue);  // observe mode still
  EXPECT_EQ(deliver(*new_session, message(), e), Decision::Reject);
}

TEST(SessionEnvironment, MakeEnvironmentFromConfig) {
  NullLogger log;
  auto loaded = config::load_string(
      "[dns]\nlocal-only = true\nlocal-data = [\"example.com. 300 IN TXT \\\"v=spf1 -all\\\"\"]\n"
      "[milter]\nauthserv-id = \"mx.example.net\"\ndmarc-discovery = \"psl\"\n");
  ASSERT_TRUE(loaded.config);
  auto env = make_environment(loaded.config, log);
  ASSERT_TRUE(env.ok()) << env.error().describe();
  EXPECT_TRUE((*env)->resolver && (*env)->spf && (*env)->dkim && (*env)->dmarc);
  EXPECT_EQ((*env)->dmarc->discovery(), auth::Discovery::Psl);
  // Same [dns]: the resolver (and its cache) is kept.
  auto again = make_environment(loaded.config, log, env->get());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->resolver, (*env)->resolver);
  auto other = config::load_string("[dns]\nlocal-only = true\n");
  ASSERT_TRUE(other.config);
  auto third = make_environment(other.config, log, env->get());
  ASSERT_TRUE(third.ok());
  EXPECT_NE((*third)->resolver, (*env)->resolver);
  EXPECT_EQ(restart_only_changes(*loaded.config, *other.config), std::vector<std::string>{});
  auto moved = config::load_string("[milter]\nsocket = \"unix:/tmp/x.sock\"\nqueue-size = 500\n");
  ASSERT_TRUE(moved.config);
  EXPECT_EQ(restart_only_changes(*loaded.config, *moved.config),
            (std::vector<std::string>{"milter.socket", "milter.queue-size"}));
}

TEST(SessionEnvironment, BadDnsConfigurationIsAnError) {
  NullLogger log;
  auto loaded = config::load_string("[dns]\nlocal-data = [\"example.com. 300 IN BOGUS x\"]\n");
  ASSERT_TRUE(loaded.config);
  auto env = make_environment(loaded.config, log);
  ASSERT_FALSE(env.ok());
  EXPECT_NE(env.error().message.find("[dns]"), std::string::npos) << env.error().message;
}

}  // namespace
}  // namespace mailreport::milter

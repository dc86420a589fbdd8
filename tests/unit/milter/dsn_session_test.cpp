// The milter Session's handling of DSNs the MTA generates (report.dsn): a null-sender
// multipart/report; report-type=delivery-status message from a local connection gets its From
// changed and a DKIM-Signature at the top, made over the changed From with a key the test
// generates; the rebuilt message verifies with our DkimVerifier. DSNs from other hosts, mail
// that is not a DSN, and configurations without report.dsn are left alone.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../auth/dkim_test_keys.hpp"
#include "mailreport/milter/environment.hpp"
#include "mailreport/milter/session.hpp"

namespace mailreport::milter {
namespace {

using test::dkim::TestKey;
using test::dkim::TestMessage;

constexpr const char* kOurId = "mx.receiver.example";

class RecordingActions final : public Actions {
 public:
  Status add_header(std::string_view name, std::string_view value) override {
    ops.push_back("add " + std::string(name) + ": " + std::string(value));
    return {};
  }
  Status insert_header(int index, std::string_view name, std::string_view value) override {
    ops.push_back("insert " + std::to_string(index) + " " + std::string(name));
    inserted.emplace_back(std::string(name), std::string(value));
    return {};
  }
  Status change_header(std::string_view name, int index, std::string_view value) override {
    ops.push_back("change " + std::string(name) + " " + std::to_string(index) + " '" +
                  std::string(value) + "'");
    return {};
  }
  Status quarantine(std::string_view) override { return {}; }
  Status set_reply(std::string_view, std::string_view, std::string_view) override { return {}; }

  std::vector<std::string> ops;
  std::vector<std::pair<std::string, std::string>> inserted;
};

class FakeQueue final : public EvaluationQueue {
 public:
  bool push(auth::Evaluation) override { return true; }
};

class NoMacrosHere final : public Macros {
 public:
  std::optional<std::string> get(std::string_view) const override { return std::nullopt; }
};

const TestKey& key() {
  static const TestKey k = test::dkim::make_key(false);
  return k;
}

// A DSN as Postfix's bounce daemon writes it (shortened).
TestMessage bounce() {
  TestMessage m;
  m.headers = {
      {"From", "MAILER-DAEMON@mx.receiver.example (Mail Delivery System)"},
      {"Subject", "Undelivered Mail Returned to Sender"},
      {"To", "alice@receiver.example"},
      {"Auto-Submitted", "auto-replied"},
      {"MIME-Version", "1.0"},
      {"Content-Type",
       "multipart/report; report-type=delivery-status;\r\n\tboundary=\"4B2C.1763719200/mx\""},
      {"Message-Id", "<20251121100000.4B2C@mx.receiver.example>"},
      {"Date", "Fri, 21 Nov 2025 10:00:00 +0000 (UTC)"},
  };
  m.body =
      "This is a MIME-encapsulated message.\r\n\r\n--4B2C.1763719200/mx\r\n"
      "Content-Description: Notification\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
      "I'm sorry to have to inform you that your message could not\r\nbe delivered.\r\n\r\n"
      "--4B2C.1763719200/mx\r\nContent-Description: Delivery report\r\n"
      "Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.receiver.example\r\n"
      "\r\nFinal-Recipient: rfc822; nobody@elsewhere.example\r\nAction: failed\r\n"
      "Status: 5.1.1\r\n\r\n--4B2C.1763719200/mx--\r\n";
  return m;
}

class DsnSession : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    key_path_ = std::filesystem::temp_directory_path() /
                ("mailreport-dsn-key-" + std::to_string(::getpid()) + ".pem");
    std::ofstream(key_path_) << key().private_pem;
    dns::ResolverOptions o;
    o.local_only = true;
    o.local_data = {test::dkim::txt_line("dsn._domainkey.receiver.example", key().record())};
    o.timeout = std::chrono::milliseconds(1000);
    auto r = dns::make_unbound_resolver(o, log_);
    ASSERT_TRUE(r.ok()) << r.error().describe();
    resolver_ = *r;
    auto v = auth::DkimVerifier::create(resolver_, log_);
    ASSERT_TRUE(v.ok());
    verifier_ = *v;
  }
  static void TearDownTestSuite() {
    std::filesystem::remove(key_path_);
    verifier_.reset();
    resolver_.reset();
  }

  static std::string dsn_config(const std::string& dsn_lines) {
    return "[report]\ndomain = \"receiver.example\"\n[report.dsn]\n" + dsn_lines +
           "\n[signature.dsn-rsa]\nprivate-key = \"" + key_path_.string() +
           "\"\ndomain = \"receiver.example\"\nselector = \"dsn\"\n"
           "algorithm = \"rsa-sha256\"\n[milter]\nauthserv-id = \"" +
           kOurId + "\"\nadd-header = false\n";
  }

  void configure(const std::string& dsn_lines) {
    auto loaded = config::load_string(dsn_config(dsn_lines));
    ASSERT_TRUE(loaded.config) << (loaded.problems.empty() ? "" : loaded.problems[0].describe());
    auto signers = load_dsn_signers(*loaded.config);
    ASSERT_TRUE(signers.ok()) << signers.error().describe();
    auto env = std::make_shared<Environment>();
    env->config = loaded.config;
    env->resolver = resolver_;
    env->dkim = verifier_;
    env->dmarc = std::make_shared<const auth::DmarcEvaluator>(resolver_);
    env->signers = *signers;
    env->now = [] { return std::int64_t{1763719200}; };
    env_ = env;
  }

  void SetUp() override {
    configure(
        "from-name = \"Mail Delivery System\"\nfrom-address = \"postmaster@receiver.example\"\n"
        "sign = [\"dsn-rsa\"]");
  }

  // Hands `m` over as Postfix does (values without the space after the colon, folds with
  // "\n"), from a connection with address `ip` ("" = none).
  void deliver(const TestMessage& m, const std::string& ip = "127.0.0.1",
               const std::string& mail_from = "<>") {
    Session s(env_, actions_, queue_, log_);
    s.connect("localhost", ip, NoMacrosHere{});
    std::vector<std::string> from = {mail_from};
    s.envfrom(from, NoMacrosHere{});
    std::vector<std::string> rcpt = {"<alice@receiver.example>"};
    s.envrcpt(rcpt);
    for (const auto& [name, value] : m.headers) s.header(name, lf(value));
    s.eoh();
    for (std::size_t i = 0; i < m.body.size(); i += 64) {
      std::string_view part = std::string_view(m.body).substr(i, 64);
      s.body({part.data(), part.size()});
    }
    s.eom(NoMacrosHere{});
  }

  static std::string lf(std::string_view v) {
    std::string out;
    for (char c : v) {
      if (c != '\r') out += c;
    }
    return out;
  }

  // The message as the MTA will send it after our changes, verified by our DKIM verifier.
  std::vector<auth::DkimVerdict> verify_result(TestMessage m, const std::string& new_from) {
    for (auto& [name, value] : m.headers) {
      if (name == "From") value = new_from;
    }
    for (const auto& [name, value] : actions_.inserted) m.prepend(name, value);
    auto v = verifier_->start("dsn-check");
    for (const auto& [name, value] : m.headers) EXPECT_TRUE(v->header(name, lf(value)).ok());
    EXPECT_TRUE(v->end_of_headers().ok());
    EXPECT_TRUE(v->body({m.body.data(), m.body.size()}).ok());
    return v->finish();
  }

  static inline NullLogger log_;
  static inline std::filesystem::path key_path_;
  static inline std::shared_ptr<dns::Resolver> resolver_;
  static inline std::shared_ptr<auth::DkimVerifier> verifier_;
  std::shared_ptr<const Environment> env_;
  RecordingActions actions_;
  FakeQueue queue_;
};

TEST_F(DsnSession, LocalDsnGetsItsFromAndASignatureThatVerifies) {
  deliver(bounce());
  const std::string from = "Mail Delivery System <postmaster@receiver.example>";
  ASSERT_EQ(actions_.ops.size(), 2u);
  EXPECT_EQ(actions_.ops[0], "change From 1 '" + from + "'");
  EXPECT_EQ(actions_.ops[1], "insert 0 DKIM-Signature");
  const std::string& sig = actions_.inserted.front().second;
  EXPECT_NE(sig.find("d=receiver.example"), std::string::npos) << sig;
  EXPECT_NE(sig.find("s=dsn"), std::string::npos) << sig;
  EXPECT_EQ(sig.find('\r'), std::string::npos);  // folded with LF for the MTA

  const auto verdicts = verify_result(bounce(), from);
  ASSERT_EQ(verdicts.size(), 1u);
  EXPECT_EQ(verdicts[0].result, auth::DkimResult::Pass) << verdicts[0].reason;
  EXPECT_EQ(verdicts[0].domain, "receiver.example");
}

TEST_F(DsnSession, ConnectionWithoutAddressToo) {
  deliver(bounce(), "");
  ASSERT_EQ(actions_.inserted.size(), 1u);
  const auto verdicts =
      verify_result(bounce(), "Mail Delivery System <postmaster@receiver.example>");
  ASSERT_EQ(verdicts.size(), 1u);
  EXPECT_EQ(verdicts[0].result, auth::DkimResult::Pass) << verdicts[0].reason;
}

TEST_F(DsnSession, OnlyTheDisplayNameChangesWhenNoAddressIsSet) {
  configure("from-name = \"Bounce Robot, Receiver\"");
  deliver(bounce());
  ASSERT_EQ(actions_.ops.size(), 1u);
  EXPECT_EQ(actions_.ops[0],
            "change From 1 '\"Bounce Robot, Receiver\" <MAILER-DAEMON@mx.receiver.example>'");
}

TEST_F(DsnSession, SigningAloneKeepsTheFrom) {
  configure("sign = [\"dsn-rsa\"]");
  deliver(bounce());
  ASSERT_EQ(actions_.ops.size(), 1u);
  EXPECT_EQ(actions_.ops[0], "insert 0 DKIM-Signature");
  const auto verdicts =
      verify_result(bounce(), "MAILER-DAEMON@mx.receiver.example (Mail Delivery System)");
  ASSERT_EQ(verdicts.size(), 1u);
  EXPECT_EQ(verdicts[0].result, auth::DkimResult::Pass) << verdicts[0].reason;
}

TEST_F(DsnSession, OtherMailIsLeftAlone) {
  deliver(bounce(), "198.51.100.7");  // a DSN from another host
  TestMessage text = bounce();
  text.headers[5].second = "text/plain";
  deliver(text);  // not a multipart/report
  TestMessage feedback = bounce();
  feedback.headers[5].second = "multipart/report; report-type=feedback-report; boundary=x";
  deliver(feedback);                                           // another report type
  deliver(bounce(), "127.0.0.1", "<alice@receiver.example>");  // not from the null sender
  EXPECT_TRUE(actions_.ops.empty()) << actions_.ops.front();
  configure("");
  deliver(bounce());  // report.dsn not configured
  EXPECT_TRUE(actions_.ops.empty());
}

}  // namespace
}  // namespace mailreport::milter

// DkimSigner / Signers (libopendkim's signer): messages signed with rsa-sha256 and
// ed25519-sha256 keys made here, verified by our own auth::DkimVerifier against key records
// served from local DNS data; both canonicalizations, the streaming session, LF input, several
// signatures, the h= list, tampering, many threads, and the key-file checks. The ed25519 tests
// sign many messages, so that a leak of libopendkim's ed25519 key material would show under
// LeakSanitizer.
#include <gtest/gtest.h>
#include <openssl/pem.h>

#include <fstream>
#include <thread>

#include "../auth/dkim_test_keys.hpp"
#include "mailreport/auth/dkim.hpp"
#include "mailreport/config/config.hpp"
#include "mailreport/dns/resolver.hpp"
#include "mailreport/outbound/signer.hpp"
#include "testsupport.hpp"

namespace mailreport::outbound {
namespace {

using test::dkim::TestKey;
using test::dkim::txt_line;

struct Keys {
  TestKey rsa = test::dkim::make_key(false);
  TestKey ed = test::dkim::make_key(true);
  TestKey small = test::dkim::make_key(false, 768);
};

const Keys& keys() {
  static const Keys k;
  return k;
}

// A message split into header fields (name, value as the milter hands it: no space after the
// colon, folds as bare "\n") and its body.
struct Parsed {
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

Parsed parse(const std::string& message) {
  Parsed p;
  const auto end = message.find("\r\n\r\n");
  EXPECT_NE(end, std::string::npos) << message;
  const std::string head = message.substr(0, end + 2);
  p.body = message.substr(end + 4);
  std::size_t pos = 0;
  while (pos < head.size()) {
    std::size_t eol = head.find("\r\n", pos);
    while (eol + 2 < head.size() && (head[eol + 2] == ' ' || head[eol + 2] == '\t')) {
      eol = head.find("\r\n", eol + 2);
    }
    std::string field = head.substr(pos, eol - pos);
    const auto colon = field.find(':');
    std::string value = field.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.erase(0, 1);
    std::string lf;
    for (char c : value) {
      if (c != '\r') lf += c;
    }
    p.headers.emplace_back(field.substr(0, colon), lf);
    pos = eol + 2;
  }
  return p;
}

std::string sample(const std::string& eol = "\r\n") {
  return "From: Report Subsystem <noreply-dmarc@example.com>" + eol +
         "To: dmarc-ruf@receiver.example" + eol + "Subject: DMARC Authentication Failure" + eol +
         "\tReport for example.org" + eol + "Date: Sat, 21 Nov 2026 06:00:00 +0000" + eol +
         "Message-ID: <r1@example.com>" + eol + "MIME-Version: 1.0" + eol +
         "Content-Type: text/plain; charset=us-ascii" + eol + "Auto-Submitted: auto-generated" +
         eol + "X-Not-Signed: yes" + eol + eol + "This  is a report.  " + eol + eol +
         "With two paragraphs." + eol + eol + eol;
}

class SignerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    write(*dir_ / "rsa.pem", keys().rsa.private_pem);
    write(*dir_ / "ed.pem", keys().ed.private_pem);
    write(*dir_ / "small.pem", keys().small.private_pem);
    dns::ResolverOptions o;
    o.local_only = true;
    o.local_data = {
        txt_line("rsa._domainkey.example.com", keys().rsa.record()),
        txt_line("ed._domainkey.example.com", keys().ed.record()),
        txt_line("other._domainkey.reports.example.net", keys().rsa.record()),
    };
    auto r = dns::make_unbound_resolver(o, log_);
    ASSERT_TRUE(r.ok()) << r.error().describe();
    auto v = auth::DkimVerifier::create(*r, log_);
    ASSERT_TRUE(v.ok()) << v.error().describe();
    verifier_ = *v;
  }
  static void TearDownTestSuite() {
    verifier_.reset();
    delete dir_;
    dir_ = nullptr;
  }

  static void write(const std::filesystem::path& p, const std::string& text) {
    std::ofstream(p, std::ios::binary) << text;
  }

  static config::SignatureConfig sig(std::string id, std::string selector, std::string file,
                                     std::string algorithm = "rsa-sha256") {
    config::SignatureConfig s;
    s.id = std::move(id);
    s.private_key = *dir_ / file;
    s.domain = "example.com";
    s.selector = std::move(selector);
    s.algorithm = std::move(algorithm);
    s.headers = {"From",
                 "To",
                 "Cc",
                 "Subject",
                 "Date",
                 "Message-ID",
                 "In-Reply-To",
                 "References",
                 "MIME-Version",
                 "Content-Type",
                 "Content-Transfer-Encoding",
                 "Auto-Submitted"};
    return s;
  }

  static std::shared_ptr<const DkimSigner> load(const config::SignatureConfig& s) {
    auto signer = DkimSigner::load(s);
    EXPECT_TRUE(signer.ok()) << signer.error().describe();
    return signer.ok() ? *signer : nullptr;
  }

  static std::vector<auth::DkimVerdict> verify(const std::string& message) {
    const Parsed p = parse(message);
    auto v = verifier_->start("signer-test");
    for (const auto& [name, value] : p.headers) EXPECT_TRUE(v->header(name, value).ok()) << name;
    EXPECT_TRUE(v->end_of_headers().ok());
    EXPECT_TRUE(v->body(std::span<const char>(p.body.data(), p.body.size())).ok());
    return v->finish();
  }

  static std::string tag(const std::string& value, const std::string& name) {
    std::string flat;
    for (char c : value) {
      if (c != '\r' && c != '\n' && c != '\t' && c != ' ') flat += c;
    }
    const auto at = flat.find(";" + name + "=");
    const auto start = flat.starts_with(name + "=") ? name.size() + 1
                       : at == std::string::npos    ? std::string::npos
                                                    : at + name.size() + 2;
    if (start == std::string::npos) return "";
    return flat.substr(start, flat.find(';', start) - start);
  }

  static inline NullLogger log_;
  static inline std::shared_ptr<auth::DkimVerifier> verifier_;
  static inline test::TempDir* dir_ = nullptr;
};

TEST_F(SignerTest, RsaSha256SignatureVerifies) {
  auto signer = load(sig("rsa-example.com", "rsa", "rsa.pem"));
  ASSERT_TRUE(signer);
  EXPECT_EQ(signer->settings().id, "rsa-example.com");
  auto value = signer->sign(sample());
  ASSERT_TRUE(value.ok()) << value.error().describe();
  EXPECT_EQ(tag(*value, "a"), "rsa-sha256");
  EXPECT_EQ(tag(*value, "c"), "relaxed/relaxed");
  EXPECT_EQ(tag(*value, "d"), "example.com");
  EXPECT_EQ(tag(*value, "s"), "rsa");
  // Only the configured fields the message has; X-Not-Signed is not among them.
  EXPECT_EQ(tag(*value, "h"),
            "From:To:Subject:Date:Message-ID:MIME-Version:Content-Type:Auto-Submitted");
  // Folded with CRLF, as a field on the wire.
  EXPECT_NE(value->find("\r\n\t"), std::string::npos);
  EXPECT_EQ(value->find("\n\t", 0) - 1, value->find("\r\n\t"));

  auto got = verify("DKIM-Signature: " + *value + "\r\n" + sample());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].result, auth::DkimResult::Pass) << got[0].reason;
  EXPECT_EQ(got[0].domain, "example.com");
  EXPECT_EQ(got[0].selector, "rsa");
  EXPECT_EQ(got[0].algorithm, "rsa-sha256");
}

TEST_F(SignerTest, Ed25519Sha256SignatureVerifies) {
  auto signer = load(sig("ed25519-example.com", "ed", "ed.pem", "ed25519-sha256"));
  ASSERT_TRUE(signer);
  // Many signatures: each used to leave libopendkim's copy of the private key behind.
  for (int i = 0; i < 50; ++i) {
    const std::string message = sample() + "Number " + std::to_string(i) + "\r\n";
    auto value = signer->sign(message);
    ASSERT_TRUE(value.ok()) << value.error().describe();
    EXPECT_EQ(tag(*value, "a"), "ed25519-sha256");
    if (i % 10 == 0) {
      auto got = verify("DKIM-Signature: " + *value + "\r\n" + message);
      ASSERT_EQ(got.size(), 1u);
      EXPECT_EQ(got[0].result, auth::DkimResult::Pass) << got[0].reason;
      EXPECT_EQ(got[0].algorithm, "ed25519-sha256");
      EXPECT_EQ(got[0].selector, "ed");
    }
  }
}

TEST_F(SignerTest, SimpleCanonicalization) {
  for (const char* canon : {"simple/simple", "simple/relaxed", "relaxed/simple"}) {
    for (bool ed : {false, true}) {
      auto s = ed ? sig("ed", "ed", "ed.pem", "ed25519-sha256") : sig("rsa", "rsa", "rsa.pem");
      s.canonicalization = canon;
      auto signer = load(s);
      ASSERT_TRUE(signer);
      auto value = signer->sign(sample());
      ASSERT_TRUE(value.ok()) << value.error().describe();
      EXPECT_EQ(tag(*value, "c"), canon);
      auto got = verify("DKIM-Signature: " + *value + "\r\n" + sample());
      ASSERT_EQ(got.size(), 1u);
      EXPECT_EQ(got[0].result, auth::DkimResult::Pass)
          << canon << " " << ed << ": " << got[0].reason;
    }
  }
}

TEST_F(SignerTest, TamperedMessagesFail) {
  auto signer = load(sig("rsa", "rsa", "rsa.pem"));
  ASSERT_TRUE(signer);
  auto value = signer->sign(sample());
  ASSERT_TRUE(value.ok());
  std::string body_changed = sample();
  body_changed.replace(body_changed.find("two paragraphs"), 3, "TWO");
  auto got = verify("DKIM-Signature: " + *value + "\r\n" + body_changed);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].result, auth::DkimResult::Fail);
  EXPECT_EQ(got[0].auth_failure, "bodyhash");
  std::string header_changed = sample();
  header_changed.replace(header_changed.find("r1@"), 2, "r2");
  got = verify("DKIM-Signature: " + *value + "\r\n" + header_changed);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].result, auth::DkimResult::Fail);
  EXPECT_EQ(got[0].auth_failure, "signature");
}

TEST_F(SignerTest, StreamingSessionAsTheMilterFeedsIt) {
  for (const char* canon : {"relaxed/relaxed", "simple/simple"}) {
    auto s = sig("ed", "ed", "ed.pem", "ed25519-sha256");
    s.canonicalization = canon;
    auto signer = load(s);
    ASSERT_TRUE(signer);
    const Parsed p = parse(sample());
    auto session = signer->start();
    bool crlf_folds = false;
    for (const auto& [name, value] : p.headers) {
      // Postfix hands values without the space after the colon, folds as "\n"; take both.
      std::string crlf;
      for (char c : value) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
      ASSERT_TRUE(session->header(name, crlf_folds ? crlf : value).ok()) << name;
      crlf_folds = !crlf_folds;
    }
    ASSERT_TRUE(session->end_of_headers().ok());
    for (std::size_t i = 0; i < p.body.size(); i += 5) {
      const std::string_view part = std::string_view(p.body).substr(i, 5);
      ASSERT_TRUE(session->body(std::span<const char>(part.data(), part.size())).ok());
    }
    auto value = session->finish();
    ASSERT_TRUE(value.ok()) << value.error().describe();
    auto got = verify("DKIM-Signature: " + *value + "\r\n" + sample());
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].result, auth::DkimResult::Pass) << canon << ": " << got[0].reason;
    // A finished session refuses more.
    EXPECT_FALSE(session->finish().ok());
    EXPECT_FALSE(session->header("X", "y").ok());
  }
}

TEST_F(SignerTest, SessionAbandonedBeforeTheEnd) {
  auto signer = load(sig("ed", "ed", "ed.pem", "ed25519-sha256"));
  ASSERT_TRUE(signer);
  auto session = signer->start();
  ASSERT_TRUE(session->header("From", "a@example.com").ok());
  ASSERT_TRUE(session->end_of_headers().ok());
  session.reset();  // nothing may leak (LeakSanitizer)
}

TEST_F(SignerTest, SignersPrependOneFieldPerIdInOrder) {
  config::Config c;
  c.signatures.emplace("rsa-example.com", sig("rsa-example.com", "rsa", "rsa.pem"));
  c.signatures.emplace("ed25519-example.com",
                       sig("ed25519-example.com", "ed", "ed.pem", "ed25519-sha256"));
  auto signers = Signers::load(c);
  ASSERT_TRUE(signers.ok()) << signers.error().describe();
  // LF line ends in, CRLF out.
  auto message = signers->sign({"ed25519-example.com", "rsa-example.com"}, sample("\n"));
  ASSERT_TRUE(message.ok()) << message.error().describe();
  EXPECT_EQ(message->find("DKIM-Signature: "), 0u);
  EXPECT_EQ(message->find('\n'), message->find("\r\n") + 1);
  EXPECT_NE(message->find(sample()), std::string::npos);
  auto got = verify(*message);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].algorithm, "ed25519-sha256");
  EXPECT_EQ(got[1].algorithm, "rsa-sha256");
  for (const auto& v : got) EXPECT_EQ(v.result, auth::DkimResult::Pass) << v.reason;

  // No ids: the message as it is (CRLF).
  auto unsigned_message = signers->sign({}, sample("\n"));
  ASSERT_TRUE(unsigned_message.ok());
  EXPECT_EQ(*unsigned_message, sample());

  auto unknown = signers->get({"rsa-example.com", "nope"});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("nope"), std::string::npos);
  auto both = signers->get({"rsa-example.com", "ed25519-example.com"});
  ASSERT_TRUE(both.ok());
  ASSERT_EQ(both->size(), 2u);
  EXPECT_EQ((*both)[1]->settings().algorithm, "ed25519-sha256");
}

TEST_F(SignerTest, SignersFromTheConfigurationFile) {
  const std::string toml = "[signature.\"rsa-example.com\"]\nprivate-key = \"" +
                           (*dir_ / "rsa.pem").string() +
                           "\"\ndomain = \"reports.example.net\"\nselector = \"other\"\n"
                           "headers = [\"From\", \"Subject\"]\n";
  auto loaded = config::load_string(toml);
  ASSERT_TRUE(loaded.config);
  auto signers = Signers::load(*loaded.config);
  ASSERT_TRUE(signers.ok()) << signers.error().describe();
  auto message = signers->sign({"rsa-example.com"}, sample());
  ASSERT_TRUE(message.ok());
  auto got = verify(*message);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].result, auth::DkimResult::Pass) << got[0].reason;
  EXPECT_EQ(got[0].domain, "reports.example.net");
  EXPECT_EQ(tag(message->substr(0, message->find("\r\nFrom:")), "h"), "From:Subject");

  // A key file that is missing stops the load, naming the signature and the file.
  auto broken = config::load_string(
      "[signature.gone]\nprivate-key = \"/nonexistent/k.pem\"\ndomain = \"example.com\"\n"
      "selector = \"s\"\n");
  ASSERT_TRUE(broken.config);
  auto none = Signers::load(*broken.config);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("signature.gone"), std::string::npos);
  EXPECT_NE(none.error().message.find("/nonexistent/k.pem"), std::string::npos);
}

TEST_F(SignerTest, ManyThreadsShareOneSigner) {
  auto rsa = load(sig("rsa", "rsa", "rsa.pem"));
  auto ed = load(sig("ed", "ed", "ed.pem", "ed25519-sha256"));
  ASSERT_TRUE(rsa && ed);
  std::vector<std::thread> threads;
  std::vector<std::string> values(8);
  for (std::size_t t = 0; t < values.size(); ++t) {
    threads.emplace_back([&, t] {
      const auto& signer = t % 2 == 0 ? rsa : ed;
      for (int i = 0; i < 10; ++i) {
        auto v = signer->sign(sample());
        if (v.ok()) values[t] = *v;
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& v : values) {
    ASSERT_FALSE(v.empty());
    auto got = verify("DKIM-Signature: " + v + "\r\n" + sample());
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].result, auth::DkimResult::Pass) << got[0].reason;
  }
}

TEST_F(SignerTest, KeyFileChecks) {
  struct Case {
    config::SignatureConfig s;
    const char* says;
  };
  write(*dir_ / "garbage.pem", "not a key\n");
  // A public key is not a private key.
  write(*dir_ / "public.pem",
        "-----BEGIN PUBLIC KEY-----\n" + keys().rsa.p + "\n-----END PUBLIC KEY-----\n");
  for (const Case& c : {
           Case{sig("x", "s", "missing.pem"), "cannot read"},
           Case{sig("x", "s", "garbage.pem"), "not a PEM private key"},
           Case{sig("x", "s", "public.pem"), "not a PEM private key"},
           Case{sig("x", "s", "ed.pem"), "not RSA"},
           Case{sig("x", "s", "rsa.pem", "ed25519-sha256"), "not Ed25519"},
           Case{sig("x", "s", "small.pem"), "768 bits"},
       }) {
    auto r = DkimSigner::load(c.s);
    ASSERT_FALSE(r.ok()) << c.s.private_key;
    EXPECT_NE(r.error().message.find(c.says), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("signature.x"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find(c.s.private_key.filename().string()), std::string::npos)
        << r.error().message;
  }
}

TEST_F(SignerTest, TraditionalRsaPemAsOpendkimGenkeyWritesIt) {
  test::dkim::PkeyPtr pkey;
  std::unique_ptr<BIO, test::dkim::BioFree> bio(BIO_new(BIO_s_mem()));
  ASSERT_TRUE(PEM_write_bio_PrivateKey_traditional(bio.get(), keys().rsa.pkey.get(), nullptr,
                                                   nullptr, 0, nullptr, nullptr));
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  const std::string pem(data, static_cast<std::size_t>(len));
  ASSERT_NE(pem.find("BEGIN RSA PRIVATE KEY"), std::string::npos);
  write(*dir_ / "traditional.pem", pem);
  auto signer = load(sig("t", "rsa", "traditional.pem"));
  ASSERT_TRUE(signer);
  auto value = signer->sign(sample());
  ASSERT_TRUE(value.ok());
  auto got = verify("DKIM-Signature: " + *value + "\r\n" + sample());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].result, auth::DkimResult::Pass) << got[0].reason;
}

}  // namespace
}  // namespace mailreport::outbound

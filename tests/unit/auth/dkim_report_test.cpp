// Tests of what the DKIM verifier tells the failure-report planner (RFC 6651, RFC 6591): r=y
// on each verdict and the Auth-Failure word of failed signatures (bodyhash, signature,
// revoked), with signatures made by hand (OpenSSL) and key records served by the libunbound
// resolver from local data; then the planner on those verdicts asks _report._domainkey through
// the same resolver and addresses ra@d.
#include <gtest/gtest.h>

#include "dkim_test_keys.hpp"
#include "mailreport/auth/dkim.hpp"
#include "mailreport/auth/failure.hpp"
#include "mailreport/dns/resolver.hpp"

namespace mailreport::auth {
namespace {

using test::dkim::TestKey;
using test::dkim::TestMessage;
using test::dkim::txt_line;

const TestKey& key() {
  static const TestKey k = test::dkim::make_key(false);
  return k;
}
const TestKey& other_key() {
  static const TestKey k = test::dkim::make_key(false);
  return k;
}

class DkimReportTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dns::ResolverOptions o;
    o.local_only = true;
    o.local_data = {
        txt_line("sel._domainkey.example.com", key().record()),
        txt_line("wrong._domainkey.example.com", other_key().record()),
        txt_line("revoked._domainkey.example.com", "v=DKIM1; k=rsa; p="),
        txt_line("_report._domainkey.example.com", "ra=dkim-failures; rp=100; rr=v"),
    };
    o.timeout = std::chrono::milliseconds(1000);
    auto r = dns::make_unbound_resolver(o, log_);
    ASSERT_TRUE(r.ok()) << r.error().describe();
    resolver_ = *r;
    auto v = DkimVerifier::create(resolver_, log_);
    ASSERT_TRUE(v.ok()) << v.error().describe();
    verifier_ = *v;
  }
  static void TearDownTestSuite() {
    verifier_.reset();
    resolver_.reset();
  }

  // The sample message signed by hand with `tags` before h= (e.g. "r=y; "), then `tamper`ed.
  static DkimVerdict verify(const std::string& selector, const std::string& tags,
                            bool tamper_body = false) {
    TestMessage m = test::dkim::sample_message();
    test::dkim::HandSignOptions o;
    o.selector = selector;
    o.extra_tags = tags;
    m.prepend("DKIM-Signature", test::dkim::sign_by_hand(m, key(), o));
    if (tamper_body) m.body += "P.S. added in transit\r\n";
    auto v = verifier_->start("report-test");
    for (const auto& [name, value] : m.headers) EXPECT_TRUE(v->header(name, value).ok());
    EXPECT_TRUE(v->end_of_headers().ok());
    EXPECT_TRUE(v->body(std::span<const char>(m.body.data(), m.body.size())).ok());
    auto verdicts = v->finish();
    EXPECT_EQ(verdicts.size(), 1u);
    return verdicts.empty() ? DkimVerdict{} : verdicts.front();
  }

  static inline NullLogger log_;
  static inline std::shared_ptr<dns::Resolver> resolver_;
  static inline std::shared_ptr<DkimVerifier> verifier_;
};

TEST_F(DkimReportTest, ReportRequestedFollowsTheRTag) {
  const DkimVerdict pass = verify("sel", "r=y; ");
  EXPECT_EQ(pass.result, DkimResult::Pass) << pass.reason;
  EXPECT_TRUE(pass.report_requested);
  EXPECT_EQ(pass.auth_failure, "");
  EXPECT_TRUE(verify("sel", "r=Y; ").report_requested);
  EXPECT_TRUE(verify("sel", "r =\r\n\t y ; ").report_requested);  // RFC 6376 §3.2 FWS
  EXPECT_FALSE(verify("sel", "r=n; ").report_requested);
  EXPECT_FALSE(verify("sel", "").report_requested);
}

TEST_F(DkimReportTest, AuthFailureOfFailedSignatures) {
  const DkimVerdict bh = verify("sel", "r=y; ", /*tamper_body=*/true);
  EXPECT_EQ(bh.result, DkimResult::Fail);
  EXPECT_EQ(bh.auth_failure, "bodyhash");
  EXPECT_TRUE(bh.report_requested);
  const DkimVerdict sig = verify("wrong", "r=y; ");
  EXPECT_EQ(sig.result, DkimResult::Fail);
  EXPECT_EQ(sig.auth_failure, "signature");
  const DkimVerdict revoked = verify("revoked", "r=y; ");
  EXPECT_EQ(revoked.result, DkimResult::Fail);
  EXPECT_EQ(revoked.auth_failure, "revoked");
  const DkimVerdict nokey = verify("absent", "r=y; ");
  EXPECT_NE(nokey.result, DkimResult::Pass);
  EXPECT_EQ(nokey.auth_failure, "");
  // Not produced (see dkim.cpp): libopendkim only gives them as temporary files.
  EXPECT_TRUE(bh.canonicalized_header.empty());
  EXPECT_TRUE(bh.canonicalized_body.empty());
}

TEST_F(DkimReportTest, PlannerReportsToRaAtD) {
  auto cfg = std::make_shared<config::Config>(*config::Config::defaults());
  FailurePlanner planner(resolver_, cfg, [] { return 0.0; });
  Evaluation ev;
  ev.header_from = "example.com";
  ev.dkim = {verify("sel", "r=y; ", /*tamper_body=*/true)};
  auto reqs = planner.plan(ev, {});
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs.front().kind, FailureKind::Dkim);
  EXPECT_EQ(reqs.front().recipient, "dkim-failures@example.com");
  EXPECT_EQ(reqs.front().auth_failure, "bodyhash");
  // rr=v: a revoked key is class o, not reported; nor is a signature without r=y.
  ev.dkim = {verify("revoked", "r=y; ")};
  EXPECT_TRUE(planner.plan(ev, {}).empty());
  ev.dkim = {verify("wrong", "")};
  EXPECT_TRUE(planner.plan(ev, {}).empty());
}

}  // namespace
}  // namespace mailreport::auth

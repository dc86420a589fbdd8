// The messages that carry our aggregate reports (outbound/aggregate_message): the header fields
// RFC 9990 §3.5.2 and RFC 8460 §5.3 ask for (Subject form, TLS-Report-Domain/-Submitter,
// Auto-Submitted), the MIME structure (multipart/mixed + application/gzip; multipart/report;
// report-type="tlsrpt" + application/tlsrpt+gzip) with the report's filename, a round trip
// through our own extractor (the attachment parses back to the same report), and a DKIM
// signature made with report.<kind>.aggregate.sign that our verifier accepts.
#include "mailreport/outbound/aggregate_message.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "../auth/dkim_test_keys.hpp"
#include "aggregate_test_support.hpp"

#include "mailreport/auth/dkim.hpp"
#include "mailreport/outbound/signer.hpp"
#include "mailreport/report/extract.hpp"
#include "testsupport.hpp"

namespace mailreport::outbound {
namespace {

using namespace aggregate_test;

// The header block's fields, unfolded: (name, value).
std::vector<std::pair<std::string, std::string>> header_fields(const std::string& message) {
  std::vector<std::pair<std::string, std::string>> out;
  const std::string head = message.substr(0, message.find("\r\n\r\n") + 2);
  std::size_t pos = 0;
  while (pos < head.size()) {
    std::size_t eol = head.find("\r\n", pos);
    while (eol + 2 < head.size() && (head[eol + 2] == ' ' || head[eol + 2] == '\t')) {
      eol = head.find("\r\n", eol + 2);
    }
    std::string field = head.substr(pos, eol - pos);
    const auto colon = field.find(':');
    std::string value;
    for (char c : field.substr(colon + 1)) {
      if (c != '\r' && c != '\n') value += c;
    }
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    out.emplace_back(field.substr(0, colon), value);
    pos = eol + 2;
  }
  return out;
}

std::string header(const std::string& message, const std::string& name) {
  for (const auto& [n, v] : header_fields(message)) {
    if (n == name) return v;
  }
  return "<none>";
}

std::vector<report::Report> extract(const std::string& message) {
  report::CollectingSink sink;
  auto out = report::extract_reports(Input::from_memory(message), sink);
  EXPECT_TRUE(out) << out.error().describe();
  return std::move(sink.reports());
}

class AggregateMessageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = std::make_shared<config::Config>(*config::Config::defaults());
    configure(*config_);
  }
  std::shared_ptr<config::Config> config_;
};

TEST_F(AggregateMessageTest, DmarcMessageHasTheRfc9990Form) {
  const auto source = sample_dmarc();
  const auto report = dmarc_report(source);
  auto m = build_aggregate_message(report, *config_, "rua@example.com", kEnd + 600,
                                   "fixed@ours.example");
  ASSERT_TRUE(m) << m.error().describe();
  EXPECT_EQ(m->message_id, "fixed@ours.example");
  EXPECT_EQ(m->envelope_from, "noreply-dmarc@ours.example");
  const std::string& msg = m->message;
  EXPECT_EQ(header(msg, "Subject"),
            "Report Domain: example.com Submitter: mx.ours.example Report-ID: "
            "<20251121.0123456789abcdef>");
  EXPECT_EQ(header(msg, "From"), "DMARC Report <noreply-dmarc@ours.example>");
  EXPECT_EQ(header(msg, "To"), "rua@example.com");
  EXPECT_EQ(header(msg, "Message-Id"), "<fixed@ours.example>");
  EXPECT_EQ(header(msg, "MIME-Version"), "1.0");
  EXPECT_EQ(header(msg, "Auto-Submitted"), "auto-generated");
  EXPECT_NE(header(msg, "Date"), "<none>");
  EXPECT_EQ(header(msg, "TLS-Report-Domain"), "<none>");
  EXPECT_EQ(header(msg, "Content-Type").rfind("multipart/mixed;", 0), 0u)
      << header(msg, "Content-Type");
  // CRLF everywhere, no bare LF.
  for (std::size_t i = 0; i < msg.size(); ++i) {
    if (msg[i] == '\n') {
      ASSERT_TRUE(i > 0 && msg[i - 1] == '\r') << "bare LF at " << i;
    }
  }
  EXPECT_NE(msg.find("Content-Type: text/plain"), std::string::npos);
  EXPECT_NE(msg.find("This is a DMARC aggregate report"), std::string::npos);
  EXPECT_NE(msg.find("Content-Type: application/gzip;\r\n\tname=\"" + report.filename + "\""),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("Content-Disposition: attachment;\r\n\tfilename=\"" + report.filename + "\""),
            std::string::npos);
  EXPECT_NE(msg.find("Content-Transfer-Encoding: base64"), std::string::npos);

  // Round trip: the attachment is the report we built.
  auto got = extract(msg);
  ASSERT_EQ(got.size(), 1u);
  auto* a = std::get_if<report::DmarcAggregate>(&got[0]);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->header.report_metadata.report_id, source.header.report_metadata.report_id);
  EXPECT_EQ(a->header.report_metadata.org_name, "ours.example");
  EXPECT_EQ(a->header.report_metadata.date_range.begin, kBegin);
  EXPECT_EQ(a->header.policy_published.domain, "example.com");
  EXPECT_EQ(a->header.policy_published.p, "reject");
  ASSERT_EQ(a->records.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(a->records[i].row.source_ip, source.records[i].row.source_ip);
    EXPECT_EQ(a->records[i].row.count, source.records[i].row.count);
    EXPECT_EQ(a->records[i].row.policy_evaluated.disposition,
              source.records[i].row.policy_evaluated.disposition);
    EXPECT_EQ(a->records[i].auth_results.dkim.size(), 1u);
    EXPECT_EQ(a->records[i].auth_results.dkim[0].result,
              source.records[i].auth_results.dkim[0].result);
  }
}

TEST_F(AggregateMessageTest, TlsMessageIsAMultipartReportOfTypeTlsrpt) {
  const auto source = sample_tls();
  const auto report = tls_report(source);
  auto m = build_aggregate_message(report, *config_, "tlsrpt@example.com", kEnd + 600);
  ASSERT_TRUE(m) << m.error().describe();
  EXPECT_EQ(m->message_id.substr(m->message_id.find('@')), "@ours.example");
  EXPECT_EQ(m->envelope_from, "noreply-tls@ours.example");
  const std::string& msg = m->message;
  // RFC 8460 §5.3: Report-ID as "<" id-left "@" id-right ">"; submitter = the filename's.
  EXPECT_EQ(header(msg, "Subject"),
            "Report Domain: example.com Submitter: ours.example Report-ID: "
            "<20251121.fedcba9876543210@ours.example>");
  EXPECT_EQ(header(msg, "TLS-Report-Domain"), "example.com");
  EXPECT_EQ(header(msg, "TLS-Report-Submitter"), "ours.example");
  EXPECT_EQ(header(msg, "TLS-Required"), "No");
  EXPECT_EQ(header(msg, "From"), "TLS Report <noreply-tls@ours.example>");
  EXPECT_EQ(header(msg, "Auto-Submitted"), "auto-generated");
  const std::string type = header(msg, "Content-Type");
  EXPECT_EQ(type.rfind("multipart/report;", 0), 0u) << type;
  EXPECT_NE(type.find("report-type=tlsrpt"), std::string::npos) << type;
  EXPECT_NE(msg.find("This is an SMTP TLS report"), std::string::npos);
  EXPECT_NE(
      msg.find("Content-Type: application/tlsrpt+gzip;\r\n\tname=\"" + report.filename + "\""),
      std::string::npos)
      << msg;
  EXPECT_NE(msg.find("Content-Disposition: attachment;\r\n\tfilename=\"" + report.filename + "\""),
            std::string::npos);

  auto got = extract(msg);
  ASSERT_EQ(got.size(), 1u);
  auto* t = std::get_if<report::TlsReport>(&got[0]);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->report_id, source.report_id);
  EXPECT_EQ(t->organization_name, "ours.example");
  EXPECT_EQ(t->contact_info, source.contact_info);
  EXPECT_EQ(t->date_range.begin, kBegin);
  ASSERT_EQ(t->policies.size(), 1u);
  EXPECT_EQ(t->policies[0].policy_type, "sts");
  EXPECT_EQ(t->policies[0].policy_string, source.policies[0].policy_string);
  EXPECT_EQ(t->policies[0].total_successful_session_count, 40u);
  ASSERT_EQ(t->policies[0].failure_details.size(), 1u);
  EXPECT_EQ(t->policies[0].failure_details[0].result_type, "certificate-expired");
  EXPECT_EQ(t->policies[0].failure_details[0].failed_session_count, 2u);
}

TEST_F(AggregateMessageTest, MissingPiecesAreErrors) {
  auto report = dmarc_report(sample_dmarc());
  EXPECT_FALSE(build_aggregate_message(report, *config_, "", kEnd));
  config_->report.dmarc_aggregate.from_address.clear();
  auto r = build_aggregate_message(report, *config_, "rua@example.com", kEnd);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("report.dmarc.aggregate.from-address"), std::string::npos);
  configure(*config_);
  report.kind = "dmarc-failure";
  EXPECT_FALSE(build_aggregate_message(report, *config_, "rua@example.com", kEnd));
  report = dmarc_report(sample_dmarc());
  report.content.clear();
  EXPECT_FALSE(build_aggregate_message(report, *config_, "rua@example.com", kEnd));
}

// Signed as the runner signs it (Signers with report.<kind>.aggregate.sign), the message
// verifies with our DKIM verifier against the key record, TLS-Report-* fields untouched.
TEST_F(AggregateMessageTest, SignedReportsVerify) {
  test::TempDir dir;
  auto key = test::dkim::make_key(true);
  std::ofstream(dir / "ed.pem") << key.private_pem;
  config::SignatureConfig sig;
  sig.id = "ed";
  sig.private_key = dir / "ed.pem";
  sig.domain = "ours.example";
  sig.selector = "mr";
  sig.algorithm = "ed25519-sha256";
  // As the default signature.<id>.headers: the TLS-Report-* fields are signed when present.
  sig.headers = {"From",
                 "To",
                 "Subject",
                 "Date",
                 "Message-ID",
                 "MIME-Version",
                 "Content-Type",
                 "Auto-Submitted",
                 "TLS-Report-Domain",
                 "TLS-Report-Submitter"};
  config_->signatures["ed"] = sig;
  auto signers = Signers::load(*config_);
  ASSERT_TRUE(signers) << signers.error().describe();

  NullLogger log;
  dns::ResolverOptions o;
  o.local_only = true;
  o.local_data = {test::dkim::txt_line("mr._domainkey.ours.example", key.record())};
  auto resolver = dns::make_unbound_resolver(o, log);
  ASSERT_TRUE(resolver) << resolver.error().describe();
  auto verifier = auth::DkimVerifier::create(*resolver, log);
  ASSERT_TRUE(verifier) << verifier.error().describe();

  for (const auto& report : {dmarc_report(sample_dmarc()), tls_report(sample_tls())}) {
    auto m = build_aggregate_message(report, *config_, "rua@example.com", kEnd + 600);
    ASSERT_TRUE(m) << m.error().describe();
    auto signed_message = signers->sign({"ed"}, m->message);
    ASSERT_TRUE(signed_message) << signed_message.error().describe();
    const std::string& msg = *signed_message;
    ASSERT_EQ(msg.rfind("DKIM-Signature:", 0), 0u);
    // RFC 8460 §5.3: TLS-Report-Domain and TLS-Report-Submitter SHOULD be signed.
    std::string h_tag;
    for (const auto& [name, value] : header_fields(msg)) {
      if (name != "DKIM-Signature") continue;
      std::istringstream tags(value);
      for (std::string tag; std::getline(tags, tag, ';');) {
        tag.erase(0, tag.find_first_not_of(" \t"));
        if (tag.rfind("h=", 0) == 0) h_tag = tag;
      }
    }
    const bool tls = report.kind == store::kTlsAggregateKind;
    EXPECT_EQ(h_tag.find("TLS-Report-Domain") != std::string::npos, tls) << h_tag;
    EXPECT_EQ(h_tag.find("TLS-Report-Submitter") != std::string::npos, tls) << h_tag;

    auto v = (*verifier)->start("aggregate-message-test");
    for (const auto& [name, value] : header_fields(msg)) {
      // Unfolded values (relaxed header canonicalization, RFC 6376 §3.4.2, unfolds anyway).
      ASSERT_TRUE(v->header(name, value).ok()) << name;
    }
    ASSERT_TRUE(v->end_of_headers().ok());
    const std::string body = msg.substr(msg.find("\r\n\r\n") + 4);
    ASSERT_TRUE(v->body(std::span<const char>(body.data(), body.size())).ok());
    auto verdicts = v->finish();
    ASSERT_EQ(verdicts.size(), 1u) << report.kind;
    EXPECT_EQ(verdicts[0].result, auth::DkimResult::Pass)
        << report.kind << ": " << verdicts[0].reason;
    EXPECT_EQ(verdicts[0].domain, "ours.example");
  }
}

}  // namespace
}  // namespace mailreport::outbound

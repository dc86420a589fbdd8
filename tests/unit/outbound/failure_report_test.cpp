// build_failure_report: for each kind (dmarc, dkim, spf) a report built from a FailurePayload
// is read back with our own extractor and ARF parser (report/extract.hpp) and every field is
// asserted; the MIME layout (RFC 5965 §2) is checked with our MIME parser; RFC 6590 redaction
// on and off; include = headers and message; max-original; the ruf "!size" limit.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <strings.h>

#include <algorithm>
#include <cstring>

#include "mailreport/config/config.hpp"
#include "mailreport/mime/message.hpp"
#include "mailreport/outbound/failure_report.hpp"
#include "mailreport/report/extract.hpp"
#include "mailreport/report/sink.hpp"

namespace mailreport::outbound {
namespace {

constexpr std::int64_t kArrival = 1795240798;  // Sat, 21 Nov 2026 05:59:58 +0000
constexpr std::int64_t kNow = 1795241400;
constexpr const char* kKey = "a secret of more than 16 characters";

const std::string kHeader =
    "Received: from mail.example.org (mail.example.org [192.0.2.1])\r\n"
    "\tby mx.receiver.example with ESMTPS id 4Abc\r\n"
    "\tfor <bob@receiver.example>; Sat, 21 Nov 2026 05:59:58 +0000\r\n"
    "From: Alice Example <alice@example.org>\r\n"
    "To: Bob <bob@receiver.example>, carol@receiver.example\r\n"
    "Subject: Quarterly figures\r\n"
    "Date: Sat, 21 Nov 2026 05:59:50 +0000\r\n"
    "Message-ID: <m1@example.org>\r\n"
    "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org; s=sel; r=y;\r\n"
    "\th=From:To:Subject; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n"
    "\tb=dGhpcyBpcyBub3QgYSByZWFsIHNpZ25hdHVyZQ==\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=us-ascii\r\n";
const std::string kBody = "Figures attached.\r\n\r\nAlice\r\n";

std::shared_ptr<const config::Config> base_config() {
  auto r = config::load_string(R"toml(
[report]
domain = "receiver.example"
submitter = "mx.receiver.example"
[milter]
authserv-id = "mx.receiver.example"
)toml");
  EXPECT_TRUE(r.config);
  return r.config;
}

config::Config make_config(bool redact = false,
                           config::FailureOriginal include = config::FailureOriginal::Headers,
                           std::uint64_t max_original = 64 << 10) {
  config::Config c = *base_config();
  c.report.failure.redact = redact;
  c.report.failure.redact_key = redact ? kKey : "";
  c.report.failure.include = include;
  c.report.failure.max_original = max_original;
  return c;
}

auth::Evaluation evaluation(bool with_body = false) {
  auth::Evaluation ev;
  ev.time = kArrival;
  ev.source_ip = "192.0.2.1";
  ev.helo = "mail.example.org";
  ev.envelope_from = "example.org";
  ev.envelope_to = "receiver.example";
  ev.header_from = "example.org";
  ev.message_id = "<m1@example.org>";
  auth::SpfVerdict spf;
  spf.result = auth::SpfResult::Fail;
  spf.domain = "example.org";
  spf.identity = "alice@example.org";
  ev.spf.push_back(spf);
  auth::DkimVerdict dkim;
  dkim.result = auth::DkimResult::Fail;
  dkim.domain = "example.org";
  dkim.selector = "sel";
  dkim.identity = "@example.org";
  dkim.algorithm = "rsa-sha256";
  dkim.reason = "body hash mismatch";
  dkim.header_b = "dGhpcyBp";
  dkim.report_requested = true;
  dkim.auth_failure = "bodyhash";
  dkim.canonicalized_header = "from:Alice Example <alice@example.org>\r\nto:Bob\r\n";
  dkim.canonicalized_body = "Figures attached.\r\n\r\nAlice\r\n";
  ev.dkim.push_back(dkim);
  ev.dmarc.result = auth::DmarcResult::Fail;
  ev.dmarc.header_from = "example.org";
  ev.dmarc.policy_domain = "example.org";
  ev.dmarc.org_domain = "example.org";
  auth::DmarcRecord rec;
  rec.p = auth::Policy::Reject;
  rec.fo = "1";
  rec.ruf = {"mailto:ruf@reports.example.net"};
  ev.dmarc.record = rec;
  ev.dmarc.applied_policy = auth::Policy::Reject;
  ev.dmarc.disposition = auth::Disposition::Reject;
  ev.mail_from = "alice@example.org";
  ev.rcpt_to = {"bob@receiver.example", "carol@receiver.example"};
  ev.authentication_results =
      "mx.receiver.example;\n\tspf=fail smtp.mailfrom=alice@example.org;\n\tdkim=fail "
      "reason=\"body hash mismatch\" header.d=example.org header.s=sel;\n\tdmarc=fail "
      "(p=reject dis=reject) header.from=example.org";
  ev.original = kHeader + (with_body ? "\r\n" + kBody : std::string());
  return ev;
}

store::FailurePayload payload(auth::FailureKind kind, bool with_body = false) {
  store::FailurePayload p;
  p.evaluation = evaluation(with_body);
  p.request.kind = kind;
  p.request.delivery_result = "reject";
  switch (kind) {
    case auth::FailureKind::Dmarc:
      p.request.recipient = "ruf@reports.example.net";
      p.request.reported_domain = "example.org";
      p.request.auth_failure = "dmarc";
      p.request.dkim_index = 0;
      p.request.spf_record = "v=spf1 ip4:198.51.100.0/24 -all";
      p.request.identity_alignment = "dkim, spf";
      break;
    case auth::FailureKind::Dkim:
      p.request.recipient = "dkim-reports@example.org";
      p.request.reported_domain = "example.org";
      p.request.auth_failure = "bodyhash";
      p.request.dkim_index = 0;
      break;
    case auth::FailureKind::Spf:
      p.request.recipient = "spf-reports@example.org";
      p.request.reported_domain = "example.org";
      p.request.auth_failure = "spf";
      p.request.spf_record = "v=spf1 ip4:198.51.100.0/24 ra=spf-reports -all";
      break;
  }
  return p;
}

BuiltFailureReport build(const store::FailurePayload& p, const config::Config& c,
                         std::string id = "report-1@receiver.example") {
  auto r = build_failure_report(p, c, kNow, std::move(id));
  EXPECT_TRUE(r.ok()) << r.error().describe();
  return r.ok() ? std::move(r).value() : BuiltFailureReport{};
}

report::ArfReport parse_back(const std::string& message) {
  report::CollectingSink sink;
  auto r = report::extract_reports(Input::from_memory(message), sink);
  EXPECT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(sink.reports().size(), 1u);
  if (sink.reports().size() != 1 || !std::holds_alternative<report::ArfReport>(sink.reports()[0])) {
    ADD_FAILURE() << "not one ARF report:\n" << message;
    return {};
  }
  return std::get<report::ArfReport>(sink.reports()[0]);
}

const mime::HeaderField* field(const std::vector<mime::HeaderField>& fields,
                               std::string_view name) {
  return mime::find_field(fields, name);
}

std::string value_of(const std::vector<mime::HeaderField>& fields, std::string_view name) {
  const auto* f = field(fields, name);
  return f ? f->value : std::string();
}

int count_of(const std::vector<mime::HeaderField>& fields, std::string_view name) {
  return static_cast<int>(std::count_if(fields.begin(), fields.end(), [&](const auto& f) {
    return f.name.size() == name.size() &&
           strncasecmp(f.name.c_str(), name.data(), name.size()) == 0;
  }));
}

std::string hashed(std::string_view local_part) {
  std::string l(local_part);
  for (char& c : l) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), kKey, static_cast<int>(std::strlen(kKey)),
       reinterpret_cast<const unsigned char*>(l.data()), l.size(), mac, &n);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < 8; ++i) {
    out += kHex[mac[i] >> 4];
    out += kHex[mac[i] & 15];
  }
  return out;
}

std::string base64_decode(std::string_view b64) {
  std::string out(b64.size(), '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(b64.data()),
                                static_cast<int>(b64.size()));
  if (n < 0) return "<bad base64>";
  std::size_t len = static_cast<std::size_t>(n);
  if (b64.ends_with("=="))
    len -= 2;
  else if (b64.ends_with("="))
    len -= 1;
  out.resize(len);
  return out;
}

// Every line ends with CRLF and none is longer than RFC 5322 §2.1.1 allows.
void expect_wire_format(const std::string& m) {
  for (std::size_t i = 0; i < m.size(); ++i) {
    if (m[i] == '\n') {
      ASSERT_TRUE(i > 0 && m[i - 1] == '\r') << "bare LF at " << i;
    }
  }
  std::size_t start = 0;
  while (start < m.size()) {
    const auto eol = m.find("\r\n", start);
    ASSERT_NE(eol, std::string::npos);
    EXPECT_LE(eol - start, 998u) << m.substr(start, 80);
    start = eol + 2;
  }
}

// The common RFC 5965 / RFC 6591 fields and the outer header.
void expect_common(const report::ArfReport& r, const store::FailurePayload& p,
                   const BuiltFailureReport& b) {
  EXPECT_TRUE(r.errors.empty()) << ::testing::PrintToString(r.errors);
  EXPECT_EQ(r.feedback_type, "auth-failure");
  EXPECT_EQ(r.user_agent.rfind("mailreport/", 0), 0u) << r.user_agent;
  EXPECT_EQ(r.version, "1");
  EXPECT_EQ(r.arrival_date, kArrival);
  EXPECT_EQ(r.source_ip, "192.0.2.1");
  EXPECT_EQ(r.reporting_mta, "mx.receiver.example");
  EXPECT_EQ(r.reported_domain, std::vector<std::string>{p.request.reported_domain});
  EXPECT_EQ(r.auth_failure, p.request.auth_failure);
  EXPECT_EQ(r.delivery_result, "reject");
  EXPECT_EQ(r.message_id, "<" + b.message_id + ">");
  EXPECT_EQ(b.message_id, "report-1@receiver.example");
  EXPECT_EQ(b.recipient, p.request.recipient);
  // RFC 6591 §3.1: the A-R covers the failed method only, under our authserv-id.
  EXPECT_EQ(r.authentication_results.rfind("mx.receiver.example; ", 0), 0u)
      << r.authentication_results;
}

TEST(FailureReport, DmarcReportCarriesEveryField) {
  const auto p = payload(auth::FailureKind::Dmarc);
  const auto c = make_config();
  const BuiltFailureReport b = build(p, c);
  expect_wire_format(b.message);
  EXPECT_EQ(b.from_address, "noreply-dmarc@receiver.example");
  const report::ArfReport r = parse_back(b.message);
  expect_common(r, p, b);
  EXPECT_EQ(r.original_mail_from, "<alice@example.org>");
  EXPECT_EQ(r.original_rcpt_to,
            (std::vector<std::string>{"<bob@receiver.example>", "<carol@receiver.example>"}));
  EXPECT_EQ(r.authentication_results,
            "mx.receiver.example; dmarc=fail (p=reject dis=reject) header.from=example.org");
  EXPECT_EQ(r.dkim_domain, "example.org");
  EXPECT_EQ(r.dkim_identity, "@example.org");
  EXPECT_EQ(r.dkim_selector, "sel");
  EXPECT_EQ(base64_decode(r.dkim_canonicalized_header), p.evaluation.dkim[0].canonicalized_header);
  EXPECT_EQ(base64_decode(r.dkim_canonicalized_body), p.evaluation.dkim[0].canonicalized_body);
  EXPECT_EQ(r.spf_dns, "txt : example.org : \"v=spf1 ip4:198.51.100.0/24 -all\"");
  EXPECT_EQ(r.identity_alignment, "dkim, spf");
  EXPECT_FALSE(r.incidents.has_value());
  // The outer header.
  EXPECT_EQ(r.subject, "DMARC Authentication Failure Report for example.org");
  EXPECT_NE(r.from.find("noreply-dmarc@receiver.example"), std::string::npos) << r.from;
  EXPECT_NE(r.from.find("Report Subsystem"), std::string::npos) << r.from;
  // Part 3: the reported header, byte for byte (CRLF), no body.
  EXPECT_EQ(r.original_message_type, "text/rfc822-headers");
  EXPECT_EQ(value_of(r.original_headers, "Subject"), "Quarterly figures");
  EXPECT_EQ(value_of(r.original_headers, "From"), "Alice Example <alice@example.org>");
  EXPECT_NE(b.message.find(kHeader), std::string::npos);
  EXPECT_EQ(b.message.find("Figures attached."), std::string::npos);
  EXPECT_NE(r.human_readable.find("failed DMARC evaluation for example.org"), std::string::npos)
      << r.human_readable;
  EXPECT_NE(r.human_readable.find("192.0.2.1"), std::string::npos);
}

TEST(FailureReport, MimeLayoutAndOuterHeader) {
  const BuiltFailureReport b = build(payload(auth::FailureKind::Dmarc), make_config());
  auto m = mime::Message::parse(Input::from_memory(b.message));
  ASSERT_TRUE(m.ok()) << m.error().describe();
  const auto& parts = m->parts();
  ASSERT_EQ(parts.size(), 4u);
  EXPECT_EQ(parts[0].content_type, "multipart/report");
  ASSERT_NE(parts[0].parameter("report-type"), nullptr);
  EXPECT_EQ(*parts[0].parameter("report-type"), "feedback-report");
  EXPECT_EQ(parts[0].children.size(), 3u);
  EXPECT_EQ(parts[1].content_type, "text/plain");
  EXPECT_EQ(parts[2].content_type, "message/feedback-report");
  EXPECT_EQ(parts[3].content_type, "text/rfc822-headers");
  const auto& h = m->headers();
  EXPECT_EQ(value_of(h, "Auto-Submitted"), "auto-generated");
  EXPECT_EQ(count_of(h, "MIME-Version"), 1);
  EXPECT_EQ(value_of(h, "MIME-Version"), "1.0");
  EXPECT_EQ(value_of(h, "To"), "ruf@reports.example.net");
  EXPECT_EQ(value_of(h, "Date"), "Sat, 21 Nov 2026 06:10:00 +0000");
  EXPECT_EQ(value_of(h, "Message-ID"), "<report-1@receiver.example>");
  EXPECT_EQ(count_of(h, "From"), 1);
  EXPECT_EQ(count_of(h, "Reply-To"), 0);
  // The feedback-report part's fields, in order, each once but Original-Rcpt-To.
  auto fb = m->text(2, 1 << 20);
  ASSERT_TRUE(fb.ok());
  const auto fields = mime::parse_header_fields(*fb);
  std::vector<std::string> names;
  for (const auto& f : fields) names.push_back(f.name);
  EXPECT_EQ(names, (std::vector<std::string>{"Feedback-Type",
                                             "User-Agent",
                                             "Version",
                                             "Original-Mail-From",
                                             "Arrival-Date",
                                             "Source-IP",
                                             "Reporting-MTA",
                                             "Original-Rcpt-To",
                                             "Original-Rcpt-To",
                                             "Reported-Domain",
                                             "Authentication-Results",
                                             "Auth-Failure",
                                             "Delivery-Result",
                                             "DKIM-Domain",
                                             "DKIM-Identity",
                                             "DKIM-Selector",
                                             "DKIM-Canonicalized-Header",
                                             "DKIM-Canonicalized-Body",
                                             "SPF-DNS",
                                             "Identity-Alignment"}));
}

TEST(FailureReport, DkimReport) {
  const auto p = payload(auth::FailureKind::Dkim);
  const auto c = make_config();
  const BuiltFailureReport b = build(p, c);
  expect_wire_format(b.message);
  EXPECT_EQ(b.from_address, "noreply-dkim@receiver.example");
  const report::ArfReport r = parse_back(b.message);
  expect_common(r, p, b);
  EXPECT_EQ(r.authentication_results,
            "mx.receiver.example; dkim=fail reason=\"body hash mismatch\" header.d=example.org "
            "header.s=sel header.i=@example.org header.b=dGhpcyBp");
  EXPECT_EQ(r.dkim_domain, "example.org");
  EXPECT_EQ(r.dkim_identity, "@example.org");
  EXPECT_EQ(r.dkim_selector, "sel");
  EXPECT_EQ(base64_decode(r.dkim_canonicalized_body), p.evaluation.dkim[0].canonicalized_body);
  EXPECT_EQ(r.spf_dns, "");
  EXPECT_EQ(r.identity_alignment, "");  // dmarc reports only
  EXPECT_EQ(r.subject, "DKIM Authentication Failure Report for example.org");
  EXPECT_NE(r.human_readable.find("DKIM signature (d=example.org, s=sel) did not verify"),
            std::string::npos)
      << r.human_readable;
  EXPECT_EQ(r.original_message_type, "text/rfc822-headers");
}

TEST(FailureReport, SpfReport) {
  const auto p = payload(auth::FailureKind::Spf);
  const auto c = make_config();
  const BuiltFailureReport b = build(p, c);
  expect_wire_format(b.message);
  EXPECT_EQ(b.from_address, "noreply-spf@receiver.example");
  const report::ArfReport r = parse_back(b.message);
  expect_common(r, p, b);
  EXPECT_EQ(r.authentication_results,
            "mx.receiver.example; spf=fail smtp.mailfrom=alice@example.org");
  EXPECT_EQ(r.spf_dns, "txt : example.org : \"v=spf1 ip4:198.51.100.0/24 ra=spf-reports -all\"");
  EXPECT_EQ(r.dkim_domain, "");
  EXPECT_EQ(r.identity_alignment, "");
  EXPECT_EQ(r.subject, "SPF Authentication Failure Report for example.org");
  EXPECT_NE(r.human_readable.find("failed the SPF check of example.org (result: fail)"),
            std::string::npos);
}

TEST(FailureReport, ConfiguredFromAndSubject) {
  auto c = make_config();
  c.report.spf.from_name = "Postmaster \"Reports\" Bot";
  c.report.spf.from_address = "spf-noreply@reports.receiver.example";
  c.report.spf.subject = "SPF-Fehlerbericht für";
  const BuiltFailureReport b = build(payload(auth::FailureKind::Spf), c);
  EXPECT_EQ(b.from_address, "spf-noreply@reports.receiver.example");
  const report::ArfReport r = parse_back(b.message);
  EXPECT_EQ(r.subject, "SPF-Fehlerbericht für for example.org");  // RFC 2047 round trip
  EXPECT_NE(r.from.find("spf-noreply@reports.receiver.example"), std::string::npos);
  EXPECT_NE(r.from.find("Reports"), std::string::npos) << r.from;
  expect_wire_format(b.message);
}

TEST(FailureReport, RedactionHashesLocalParts) {
  const auto p = payload(auth::FailureKind::Dmarc);
  const auto c = make_config(/*redact=*/true);
  const BuiltFailureReport b = build(p, c);
  expect_wire_format(b.message);
  const report::ArfReport r = parse_back(b.message);
  EXPECT_TRUE(r.errors.empty()) << ::testing::PrintToString(r.errors);
  const std::string alice = hashed("alice");
  EXPECT_EQ(alice.size(), 16u);
  EXPECT_EQ(r.original_mail_from, "<" + alice + "@example.org>");
  EXPECT_EQ(r.original_rcpt_to,
            (std::vector<std::string>{"<" + hashed("bob") + "@receiver.example>",
                                      "<" + hashed("carol") + "@receiver.example>"}));
  EXPECT_EQ(value_of(r.original_headers, "From"), "Alice Example <" + alice + "@example.org>");
  EXPECT_EQ(value_of(r.original_headers, "To"), "Bob <" + hashed("bob") + "@receiver.example>, " +
                                                    hashed("carol") + "@receiver.example");
  EXPECT_NE(value_of(r.original_headers, "Received").find("for <" + hashed("bob") + "@"),
            std::string::npos);
  // Fields without addresses stay as they were.
  EXPECT_EQ(value_of(r.original_headers, "Message-ID"), "<m1@example.org>");
  EXPECT_EQ(value_of(r.original_headers, "Subject"), "Quarterly figures");
  // RFC 6591 §3.2: no canonicalized header or body in a redacted report.
  EXPECT_EQ(r.dkim_canonicalized_header, "");
  EXPECT_EQ(r.dkim_canonicalized_body, "");
  EXPECT_EQ(r.dkim_domain, "example.org");  // the rest stays
  // No local-part appears anywhere in the message.
  for (const char* who : {"alice@", "bob@", "carol@", "Alice Example <alice"}) {
    EXPECT_EQ(b.message.find(who), std::string::npos) << who;
  }
  EXPECT_NE(r.human_readable.find("RFC 6590"), std::string::npos);
  EXPECT_NE(r.human_readable.find("<" + alice + "@example.org>"), std::string::npos);
  // The same address gives the same hash in every report (correlation stays possible).
  const BuiltFailureReport again = build(payload(auth::FailureKind::Spf), c);
  const report::ArfReport s = parse_back(again.message);
  EXPECT_EQ(s.original_mail_from, r.original_mail_from);
  EXPECT_EQ(s.authentication_results,
            "mx.receiver.example; spf=fail smtp.mailfrom=" + alice + "@example.org");
}

TEST(FailureReport, RedactionOffKeepsAddresses) {
  const BuiltFailureReport b = build(payload(auth::FailureKind::Dmarc), make_config(false));
  EXPECT_NE(b.message.find("alice@example.org"), std::string::npos);
  EXPECT_EQ(b.message.find(hashed("alice")), std::string::npos);
}

TEST(FailureReport, IncludeMessageAttachesTheOriginalAsReceived) {
  const auto p = payload(auth::FailureKind::Dmarc, /*with_body=*/true);
  const BuiltFailureReport b = build(p, make_config(false, config::FailureOriginal::Message));
  expect_wire_format(b.message);
  const report::ArfReport r = parse_back(b.message);
  EXPECT_TRUE(r.errors.empty()) << ::testing::PrintToString(r.errors);
  EXPECT_EQ(r.original_message_type, "message/rfc822");
  EXPECT_EQ(value_of(r.original_headers, "Subject"), "Quarterly figures");
  auto m = mime::Message::parse(Input::from_memory(b.message));
  ASSERT_TRUE(m.ok());
  const auto& parts = m->parts();
  auto rfc822 = std::find_if(parts.begin(), parts.end(),
                             [](const mime::Part& x) { return x.is_type("message/rfc822"); });
  ASSERT_NE(rfc822, parts.end());
  auto text = m->text(rfc822->index, 1 << 20);
  ASSERT_TRUE(text.ok());
  std::string lf;
  for (char ch : p.evaluation.original) {
    if (ch != '\r') lf += ch;
  }
  std::string got;
  for (char ch : *text) {
    if (ch != '\r') got += ch;
  }
  EXPECT_EQ(got, lf);  // header and body as received
  EXPECT_NE(r.human_readable.find("The message is attached."), std::string::npos);

  // Without the body (the milter kept headers only) it falls back to text/rfc822-headers.
  const BuiltFailureReport h = build(payload(auth::FailureKind::Dmarc, false),
                                     make_config(false, config::FailureOriginal::Message));
  EXPECT_EQ(parse_back(h.message).original_message_type, "text/rfc822-headers");
  // include = headers never attaches the body, even when the payload has it.
  const BuiltFailureReport only = build(p, make_config(false, config::FailureOriginal::Headers));
  EXPECT_EQ(parse_back(only.message).original_message_type, "text/rfc822-headers");
  EXPECT_EQ(only.message.find("Figures attached."), std::string::npos);
}

TEST(FailureReport, MaxOriginalCutsTheOriginal) {
  auto p = payload(auth::FailureKind::Dkim, /*with_body=*/true);
  std::string many;
  for (int i = 0; i < 40; ++i) {
    many += "Received: from relay" + std::to_string(i) +
            ".example.org (relay.example.org [198.51.100." + std::to_string(i) +
            "])\r\n\tby next.example.org; Sat, 21 Nov 2026 05:59:00 +0000\r\n";
  }
  p.evaluation.original = many + p.evaluation.original;
  ASSERT_GT(p.evaluation.original.size(), 4096u);
  // Headers: cut after the last whole line that fits.
  const BuiltFailureReport b = build(p, make_config(false, config::FailureOriginal::Headers, 1024));
  const report::ArfReport r = parse_back(b.message);
  EXPECT_EQ(r.original_message_type, "text/rfc822-headers");
  auto m = mime::Message::parse(Input::from_memory(b.message));
  ASSERT_TRUE(m.ok());
  auto original = m->text(m->parts().back().index, 1 << 20);
  ASSERT_TRUE(original.ok());
  EXPECT_LE(original->size(), 1024u + 64u);  // CRLF added back to at most ~40 lines
  EXPECT_TRUE(original->ends_with("\n"));
  EXPECT_EQ(original->find("Subject:"), std::string::npos);  // beyond the cut
  EXPECT_NE(r.human_readable.find("cut short"), std::string::npos);
  EXPECT_FALSE(r.original_headers.empty());
  // Message: cut at max-original bytes, the body gone.
  const BuiltFailureReport w = build(p, make_config(false, config::FailureOriginal::Message, 2048));
  EXPECT_EQ(w.message.find("Figures attached."), std::string::npos);
  EXPECT_NE(parse_back(w.message).human_readable.find("cut short"), std::string::npos);
  // A payload the milter already cut says so too.
  auto q = payload(auth::FailureKind::Dkim);
  q.evaluation.original_truncated = true;
  EXPECT_NE(parse_back(build(q, make_config()).message).human_readable.find("cut short"),
            std::string::npos);
}

TEST(FailureReport, RufSizeLimit) {
  auto p = payload(auth::FailureKind::Dmarc, /*with_body=*/true);
  p.evaluation.original += std::string(6000, 'x') + "\r\n";
  const auto c = make_config(false, config::FailureOriginal::Message);
  const std::size_t whole = build(p, c).message.size();
  const std::size_t headers = build(p, make_config()).message.size();
  ASSERT_GT(whole, headers + 6000);
  // Too large whole: headers only.
  p.request.max_size = headers + 100;
  auto r = build_failure_report(p, c, kNow, "x@receiver.example");
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_LE(r->message.size(), p.request.max_size);
  EXPECT_EQ(parse_back(r->message).original_message_type, "text/rfc822-headers");
  // Too large even so: refused.
  p.request.max_size = 500;
  r = build_failure_report(p, c, kNow, "x@receiver.example");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::LimitExceeded);
  EXPECT_NE(r.error().message.find("ruf"), std::string::npos);
  // Room is kept for the signatures to come: 1KB each.
  auto signing = make_config(false, config::FailureOriginal::Message);
  signing.report.dmarc.sign = {"rsa-receiver.example", "ed25519-receiver.example"};
  p.request.max_size = headers + 1500;
  r = build_failure_report(p, signing, kNow, "x@receiver.example");
  EXPECT_FALSE(r.ok());
  p.request.max_size = headers + 2100;
  r = build_failure_report(p, signing, kNow, "x@receiver.example");
  ASSERT_TRUE(r.ok());
  EXPECT_LE(r->message.size() + 2048, p.request.max_size);
}

TEST(FailureReport, GeneratedMessageIdAndNullSender) {
  auto p = payload(auth::FailureKind::Spf);
  p.evaluation.mail_from = "";
  auto r = build_failure_report(p, make_config(), kNow);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->message_id.ends_with("@receiver.example")) << r->message_id;
  EXPECT_GE(r->message_id.size(), std::string("@receiver.example").size() + 32);
  auto again = build_failure_report(p, make_config(), kNow);
  ASSERT_TRUE(again.ok());
  EXPECT_NE(again->message_id, r->message_id);
  const report::ArfReport a = parse_back(r->message);
  EXPECT_EQ(a.original_mail_from, "<>");
  EXPECT_EQ(a.message_id, "<" + r->message_id + ">");
}

TEST(FailureReport, LongValuesAreFolded) {
  auto p = payload(auth::FailureKind::Dkim);
  p.evaluation.dkim[0].canonicalized_header = std::string(3000, 'h');
  p.evaluation.dkim[0].canonicalized_body = std::string(5000, 'b');
  const BuiltFailureReport b = build(p, make_config());
  expect_wire_format(b.message);
  const report::ArfReport r = parse_back(b.message);
  EXPECT_EQ(base64_decode(r.dkim_canonicalized_header), std::string(3000, 'h'));
  EXPECT_EQ(base64_decode(r.dkim_canonicalized_body), std::string(5000, 'b'));
}

TEST(FailureReport, RefusesWhatCannotBeSent) {
  auto p = payload(auth::FailureKind::Dmarc);
  p.request.recipient.clear();
  EXPECT_FALSE(build_failure_report(p, make_config(), kNow).ok());
  auto c = make_config(true);
  c.report.failure.redact_key.clear();
  EXPECT_FALSE(build_failure_report(payload(auth::FailureKind::Dmarc), c, kNow).ok());
}

}  // namespace
}  // namespace mailreport::outbound

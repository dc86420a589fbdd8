// Tests for the RFC 3464 delivery status notification parser and its JSON rendering:
// hand-written DSNs for each field and each real-world bend of the format, then the
// dsn-eml files of the shared corpus (split into parts by a test helper).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "eml_parts_helper.hpp"
#include "mailreport/report/dsn.hpp"
#include "mailreport/report/json.hpp"
#include "testsupport.hpp"

namespace mailreport::report {
namespace {

using test::expect_golden;
using test::has_error;

Result<DsnReport> parse_status(std::string_view text) {
  DsnParts p;
  p.delivery_status = text;
  return parse_dsn(p);
}

// Postfix, two recipients (RFC 3464 §2.2 and §2.3 fields, comments, odd case).
constexpr const char* kPostfix =
    "Reporting-MTA: dns; mail.example.org\n"
    "X-Postfix-Queue-ID: 4F2A31C0123\n"
    "X-Postfix-Sender: rfc822; reports@example.org\n"
    "Arrival-Date: Tue, 3 Sep 2024 10:00:00 +0200 (CEST)\n"
    "Original-Envelope-Id: Report-1234\n"
    "Received-From-MTA: dns; submit.example.org\n"
    "DSN-Gateway: dns; gw.example.org\n"
    "\n"
    "Final-Recipient: rfc822; dmarc@example.com\n"
    "Original-Recipient: rfc822;dmarc@example.com\n"
    "Action: Failed\n"
    "Status: 5.1.1 (user unknown)\n"
    "Remote-MTA: dns; mx.example.com\n"
    "Diagnostic-Code: smtp; 550 5.1.1 <dmarc@example.com>: Recipient address\n"
    "    rejected: User unknown in virtual mailbox table\n"
    "Last-Attempt-Date: Tue, 3 Sep 2024 10:00:05 +0200\n"
    "Final-Log-ID: abc123\n"
    "\n"
    "Final-Recipient: RFC822; tls@example.net\n"
    "Action: delayed\n"
    "Status: 4.4.1\n"
    "Diagnostic-Code: X-Postfix; connect to mx.example.net[192.0.2.1]:25: Connection\n"
    "    timed out\n"
    "Will-Retry-Until: Fri, 6 Sep 2024 10:00:00 +0200\n";

TEST(Dsn, ParsesPerMessageAndPerRecipientFields) {
  DsnParts p;
  p.delivery_status = kPostfix;
  p.outer_headers = {{"From", "MAILER-DAEMON@mail.example.org (Mail Delivery System)"},
                     {"Subject", "Undelivered Mail Returned to Sender"},
                     {"Message-Id", "<20240903080005.1@mail.example.org>"}};
  p.original =
      "Received: by mail.example.org (Postfix)\n"
      "From: reports@example.org\n"
      "Message-ID: <report-1234@example.org>\n"
      "Subject: Report Domain: example.com\n"
      "\n"
      "body that is not kept\n";
  auto r = parse_dsn(p);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->reporting_mta, "mail.example.org");
  EXPECT_EQ(r->original_envelope_id, "Report-1234");
  EXPECT_EQ(r->received_from_mta, "submit.example.org");
  EXPECT_EQ(r->dsn_gateway, "gw.example.org");
  EXPECT_EQ(r->arrival_date, std::optional<std::int64_t>(1725350400));
  ASSERT_EQ(r->fields.size(), 7u);
  EXPECT_EQ(r->fields[1].name, "X-Postfix-Queue-ID");  // extensions kept in order

  ASSERT_EQ(r->recipients.size(), 2u);
  const auto& a = r->recipients[0];
  EXPECT_EQ(a.final_recipient, "dmarc@example.com");
  EXPECT_EQ(a.original_recipient, "dmarc@example.com");
  EXPECT_EQ(a.action, "failed");
  EXPECT_EQ(a.status, "5.1.1");
  EXPECT_EQ(a.remote_mta, "mx.example.com");
  EXPECT_EQ(a.diagnostic_code.rfind("550 5.1.1 <dmarc@example.com>: Recipient address", 0), 0u);
  EXPECT_NE(a.diagnostic_code.find("User unknown in virtual mailbox table"), std::string::npos);
  EXPECT_EQ(a.last_attempt_date, std::optional<std::int64_t>(1725350405));
  EXPECT_EQ(a.final_log_id, "abc123");
  EXPECT_FALSE(a.will_retry_until);
  EXPECT_EQ(a.fields.size(), 8u);
  const auto& b = r->recipients[1];
  EXPECT_EQ(b.final_recipient, "tls@example.net");
  EXPECT_EQ(b.action, "delayed");
  EXPECT_EQ(b.status, "4.4.1");
  EXPECT_EQ(b.diagnostic_code.rfind("connect to mx.example.net[192.0.2.1]:25", 0), 0u);
  EXPECT_EQ(b.will_retry_until, std::optional<std::int64_t>(1725609600));

  EXPECT_EQ(r->from, "MAILER-DAEMON@mail.example.org (Mail Delivery System)");
  EXPECT_EQ(r->subject, "Undelivered Mail Returned to Sender");
  EXPECT_EQ(r->message_id, "<20240903080005.1@mail.example.org>");
  ASSERT_EQ(r->original_headers.size(), 4u);
  EXPECT_EQ(r->original_headers[2].value, "<report-1234@example.org>");
  EXPECT_TRUE(r->errors.empty()) << r->errors.front();
}

TEST(Dsn, AnyLineEnding) {
  const std::string lf = kPostfix;
  std::string crlf;
  std::string cr;
  for (char c : lf) {
    crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
    cr += c == '\n' ? '\r' : c;
  }
  for (const auto& text : {lf, crlf, cr}) {
    auto r = parse_status(text);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->recipients.size(), 2u);
    EXPECT_EQ(r->recipients[0].status, "5.1.1");
    EXPECT_EQ(r->recipients[1].final_recipient, "tls@example.net");
    EXPECT_NE(r->recipients[0].diagnostic_code.find("virtual mailbox"), std::string::npos);
    EXPECT_TRUE(r->errors.empty());
  }
}

TEST(Dsn, BlankLinesWithWhiteSpaceAndLeadingJunk) {
  auto r = parse_status(
      "\n\n"
      "Reporting-MTA: dns; a.example\n"
      "   \t\n"
      "This report is about:\n"
      "Final-Recipient: rfc822; x@b.example\n"
      "Action: failed\n"
      "Status: 5.0.0\n"
      "\n\n\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->reporting_mta, "a.example");
  ASSERT_EQ(r->recipients.size(), 1u);
  EXPECT_EQ(r->recipients[0].final_recipient, "x@b.example");
  EXPECT_TRUE(r->errors.empty());
}

TEST(Dsn, PerMessageAndRecipientInOneBlock) {
  auto r = parse_status(
      "Reporting-MTA: dns;eu-smtp-inbound-delivery-1.mimecast.com\n"
      "Arrival-Date : Sat, 08 Feb 2025 11:22:21 GMT\n"
      "Action : failed\n"
      "Status : 5.0.0\n"
      "Original-Recipient : rfc/822;sabatora@example.net\n"
      "Final-Recipient : rfc/822;sabatora@example.net\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->reporting_mta, "eu-smtp-inbound-delivery-1.mimecast.com");
  EXPECT_EQ(r->arrival_date, std::optional<std::int64_t>(1739013741));
  ASSERT_EQ(r->recipients.size(), 1u);
  EXPECT_EQ(r->recipients[0].action, "failed");
  EXPECT_EQ(r->recipients[0].status, "5.0.0");
  // "rfc/822" is not a token: the value is kept whole.
  EXPECT_EQ(r->recipients[0].final_recipient, "rfc/822;sabatora@example.net");
  EXPECT_TRUE(has_error(r->errors, "per-message and per-recipient fields in one block"));
}

TEST(Dsn, RecipientsWithoutBlankLineBetweenThem) {
  auto r = parse_status(
      "Reporting-MTA: dns; mx.aol.example\n"
      "\n"
      "Original-Recipient: rfc822;a@x.example\n"
      "Final-Recipient: rfc822;a@x.example\n"
      "Action: failed\n"
      "Status: 5.1.1\n"
      "Original-Recipient: rfc822;b@x.example\n"
      "Final-Recipient: rfc822;b@x.example\n"
      "Action: failed\n"
      "Status: 5.2.2\n");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->recipients.size(), 2u);
  EXPECT_EQ(r->recipients[0].final_recipient, "a@x.example");
  EXPECT_EQ(r->recipients[1].original_recipient, "b@x.example");
  EXPECT_EQ(r->recipients[1].status, "5.2.2");
  EXPECT_TRUE(has_error(r->errors, "not separated by a blank line"));
}

TEST(Dsn, RecipientSpreadOverTwoBlocksIsMerged) {
  auto r = parse_status(
      "Reporting-MTA: dns; boxbe.com\n"
      "Remote-MTA: dns; yahoo.com\n"
      "Action: failed\n"
      "\n"
      "Final-Recipient: rfc822; bloggs.fred@example.com\n"
      "Diagnostic-Code: X-Boxbe-Notice; Sender not pre-approved.\n"
      "Status: 4.7.0\n");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->recipients.size(), 1u);
  EXPECT_EQ(r->recipients[0].remote_mta, "yahoo.com");
  EXPECT_EQ(r->recipients[0].action, "failed");
  EXPECT_EQ(r->recipients[0].final_recipient, "bloggs.fred@example.com");
  EXPECT_EQ(r->recipients[0].diagnostic_code, "Sender not pre-approved.");
  EXPECT_EQ(r->recipients[0].status, "4.7.0");
}

TEST(Dsn, UnindentedDiagnosticContinuation) {
  auto r = parse_status(
      "Reporting-MTA: dns; server-0.example\n"
      "\n"
      "Diagnostic-Code: smtp; 550-Please turn on SMTP Authentication in your mail client.\n"
      "550-mail0.example [198.51.100.21]:11111 is not permitted to\n"
      "550 relay through this server without authentication.\n"
      "Status: 5.0.0\n"
      "Action: failed\n"
      "Final-Recipient: rfc822; kijitora@example.com\n");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->recipients.size(), 1u);
  const auto& d = r->recipients[0].diagnostic_code;
  EXPECT_EQ(d.rfind("550-Please turn on", 0), 0u);
  EXPECT_NE(d.find("550 relay through this server without authentication."), std::string::npos);
  EXPECT_EQ(r->recipients[0].final_recipient, "kijitora@example.com");
}

TEST(Dsn, LeakedMimeBoundaryEndsTheBody) {
  auto r = parse_status(
      "Reporting-MTA: dns; mail4.example.co.jp\n"
      "\n"
      "Final-Recipient: RFC822; shironeko@example.ne.jp\n"
      "Action: failed\n"
      "Status: 5.2.1\n"
      "\n"
      "--r4B00000000000.0000007/mail4.example.co.jp\n"
      "Content-Type: text/rfc822-headers\n"
      "\n"
      "From: a@b\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->recipients.size(), 1u);
  EXPECT_EQ(r->fields.size(), 1u);
  EXPECT_TRUE(has_error(r->errors, "starts with a MIME boundary"));
}

TEST(Dsn, DiagnosticCodeWithoutType) {
  auto r = parse_status(
      "Reporting-MTA: dns; a.example\n\n"
      "Final-Recipient: rfc822; x@b.example\nAction: failed\nStatus: 5.1.1\n"
      "Diagnostic-Code: 550 5.1.1 <x@b.example>; user unknown\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->recipients[0].diagnostic_code, "550 5.1.1 <x@b.example>; user unknown");
}

TEST(Dsn, MissingRequiredFieldsAreNoted) {
  auto r = parse_status(
      "Reporting-MTA: dns; a.example\n"
      "Arrival-Date: not a date\n"
      "\n"
      "Final-Recipient: rfc822; x@b.example\n"
      "Action: expired\n"
      "Status: 5.1\n"
      "\n"
      "Original-Recipient: rfc822; y@b.example\n"
      "Last-Attempt-Date: never\n");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->recipients.size(), 2u);
  EXPECT_FALSE(r->arrival_date);
  EXPECT_EQ(r->recipients[0].status, "5.1");  // kept as sent
  EXPECT_TRUE(has_error(r->errors, "Arrival-Date: not a date"));
  EXPECT_TRUE(has_error(r->errors, "Last-Attempt-Date: not a date"));
  EXPECT_TRUE(has_error(r->errors, "recipient 1: Action \"expired\" is not an RFC 3464 action"));
  EXPECT_TRUE(has_error(r->errors, "recipient 1: Status \"5.1\" is not an RFC 3464"));
  EXPECT_TRUE(has_error(r->errors, "recipient 2: Final-Recipient missing"));
  EXPECT_TRUE(has_error(r->errors, "recipient 2: Action missing"));
  EXPECT_TRUE(has_error(r->errors, "recipient 2: Status missing"));
}

TEST(Dsn, SalvagesAReportWithOnlyOneSide) {
  auto only_mta =
      parse_status("Reporting-MTA: dns; a.example\nArrival-Date: Mon, 1 Jan 2024 00:00:00 +0000\n");
  ASSERT_TRUE(only_mta.ok());
  EXPECT_TRUE(only_mta->recipients.empty());
  EXPECT_TRUE(has_error(only_mta->errors, "no per-recipient block"));

  auto only_rcpt = parse_status("Final-Recipient: rfc822; x@b\nAction: failed\nStatus: 5.0.0\n");
  ASSERT_TRUE(only_rcpt.ok());
  EXPECT_EQ(only_rcpt->recipients.size(), 1u);
  EXPECT_TRUE(has_error(only_rcpt->errors, "Reporting-MTA: missing"));
}

TEST(Dsn, NothingDsnLikeIsNotAReport) {
  for (const char* text :
       {"", "\n\n", "Hello there,\nyour mail bounced.\n", "X-Foo: bar\nSubject: hi\n"}) {
    auto r = parse_status(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.error().code, ErrorCode::NotAReport);
  }
}

TEST(DsnJson, EveryKeyPresentAndValuesRendered) {
  auto r = parse_status(kPostfix);
  ASSERT_TRUE(r.ok());
  const nlohmann::json j = to_json(*r);
  EXPECT_EQ(j["reporting_mta"], "mail.example.org");
  EXPECT_EQ(j["arrival_date"], 1725350400);
  EXPECT_EQ(j["fields"][0], nlohmann::json::array({"Reporting-MTA", "dns; mail.example.org"}));
  ASSERT_EQ(j["recipients"].size(), 2u);
  EXPECT_EQ(j["recipients"][0]["status"], "5.1.1");
  EXPECT_TRUE(j["recipients"][0]["will_retry_until"].is_null());
  EXPECT_EQ(j["recipients"][1]["will_retry_until"], 1725609600);

  DsnReport empty;
  empty.recipients.emplace_back();
  const nlohmann::json e = to_json(empty);
  for (const char* k :
       {"original_envelope_id", "reporting_mta", "dsn_gateway", "received_from_mta", "arrival_date",
        "fields", "recipients", "original_headers", "subject", "from", "message_id", "errors"}) {
    EXPECT_TRUE(e.contains(k)) << k;
  }
  EXPECT_TRUE(e["arrival_date"].is_null());
  for (const char* k :
       {"original_recipient", "final_recipient", "action", "status", "remote_mta",
        "diagnostic_code", "last_attempt_date", "final_log_id", "will_retry_until", "fields"}) {
    EXPECT_TRUE(e["recipients"][0].contains(k)) << k;
  }
}

TEST(DsnJson, GoldenPostfixTwoRecipients) {
  const auto dir = test::source_dir() / "tests/data/dsn";
  const auto parts = test::split_eml(test::read_file(dir / "postfix-two-recipients.eml"));
  DsnParts p;
  p.outer_headers = parts.outer_headers;
  p.delivery_status = parts.delivery_status;
  p.original = parts.original;
  auto r = parse_dsn(p);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  expect_golden(to_json(*r), dir / "postfix-two-recipients.expected.json");
}

// ------------------------------------------------------------------ corpus

// What the manifest notes say about a DSN: "DSN: Reporting-MTA=<v>; N recipient block(s);
// actions={...}; status=<a,b>". The notes were written with Python's email package, which
// counts blocks differently from this parser when the format is bent, so only the
// Reporting-MTA and the statuses are compared.
struct DsnNote {
  std::string reporting_mta;  // value after the type, "" for "-"
  std::set<std::string> statuses;
};

std::optional<DsnNote> dsn_note(const std::string& notes) {
  static const std::string kStart = "DSN: Reporting-MTA=";
  static const std::string kBlocks = " recipient block(s); ";
  static const std::string kStatus = "; status=";
  const auto at = notes.find(kStart);
  if (at == std::string::npos) return std::nullopt;
  const auto end = notes.find(" | ", at);
  const std::string seg =
      notes.substr(at + kStart.size(), end == std::string::npos ? end : end - at - kStart.size());
  // The Reporting-MTA value itself holds "; ": it ends before "; <N> recipient block(s)".
  const auto blocks = seg.find(kBlocks);
  const auto status_at = seg.rfind(kStatus);
  if (blocks == std::string::npos || status_at == std::string::npos) return std::nullopt;
  const auto count_at = seg.rfind("; ", blocks);
  DsnNote n;
  const std::string mta = seg.substr(0, count_at);
  if (mta != "-") {
    const auto semi = mta.find(';');
    n.reporting_mta = mta.substr(semi == std::string::npos ? 0 : semi + 1);
    n.reporting_mta.erase(0, n.reporting_mta.find_first_not_of(' '));
  }
  std::string list = seg.substr(status_at + kStatus.size());
  list = list.substr(0, list.find(" ("));  // "4.4.7 (delivery time expired)"
  std::size_t start = 0;
  while (start < list.size()) {
    auto comma = list.find(',', start);
    std::string s = list.substr(start, comma == std::string::npos ? comma : comma - start);
    s.erase(s.find_last_not_of(' ') + 1);
    if (!s.empty()) n.statuses.insert(s);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return n;
}

TEST(DsnCorpus, RecipientsAndStatusesMatchTheNotes) {
  MAILREPORT_REQUIRE_CORPUS();
  const auto corpus = test::corpus_dir();
  const auto rows = test::manifest_rows(corpus, "dsn-eml");
  ASSERT_EQ(rows.size(), 585u);
  // These bounces carry a second DSN inside their message/rfc822 part; the notes describe
  // the inner one, the parser (rightly) the outer one.
  const std::set<std::string> nested = {"set-of-emails/maildir/bsd/lhost-sendmail-38.eml",
                                        "set-of-emails/maildir/bsd/lhost-sendmail-41.eml",
                                        "set-of-emails/maildir/bsd/rhost-yahooinc-03.eml"};
  std::size_t with_part = 0;
  std::size_t parsed = 0;
  std::size_t with_status = 0;
  std::size_t noted = 0;
  for (const auto& row : rows) {
    SCOPED_TRACE(row.file);
    const auto parts = test::split_eml(test::read_file(corpus / row.file));
    const auto note = dsn_note(row.notes);
    if (parts.delivery_status.empty()) {
      // Broken MIME boundaries or a DSN nested in message/rfc822: the test helper's simple
      // walk does not find the part (the production extractor is tested elsewhere).
      continue;
    }
    ++with_part;
    DsnParts p;
    p.outer_headers = parts.outer_headers;
    p.delivery_status = parts.delivery_status;
    p.original = parts.original;
    auto r = parse_dsn(p);
    if (!r.ok()) {
      EXPECT_EQ(r.error().code, ErrorCode::NotAReport);
      EXPECT_TRUE(note && note->statuses.empty() && note->reporting_mta.empty())
          << r.error().describe();
      continue;
    }
    ++parsed;
    bool any_status = false;
    for (const auto& rc : r->recipients) any_status = any_status || !rc.status.empty();
    if (any_status) ++with_status;
    EXPECT_EQ(nlohmann::json::parse(to_json(*r).dump()), to_json(*r));
    if (!note || nested.count(row.file) != 0) continue;
    ++noted;
    EXPECT_EQ(r->reporting_mta, note->reporting_mta);
    if (note->statuses.empty()) continue;
    ASSERT_TRUE(any_status) << "notes say status=" << *note->statuses.begin();
    for (const auto& rc : r->recipients) {
      if (rc.status.empty()) continue;
      EXPECT_EQ(note->statuses.count(rc.status), 1u) << "status " << rc.status;
    }
  }
  std::cout << "[ dsn corpus ] " << rows.size() << " files, " << with_part
            << " with a message/delivery-status part found by the test helper, " << parsed
            << " parsed, " << with_status << " with >=1 recipient and a status, " << noted
            << " compared with their notes\n";
  RecordProperty("dsn_with_status", static_cast<int>(with_status));
  // 553 of 585 at the time of writing; the rest have no status at all (11) or a MIME layout
  // the helper does not walk (21).
  EXPECT_GE(with_status, 550u);
}

}  // namespace
}  // namespace mailreport::report

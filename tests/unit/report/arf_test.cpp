// Tests for the ARF feedback report parser (RFC 5965, RFC 6591, RFC 9991) and its JSON
// rendering: hand-written reports for each field and variant, then the forensic-eml and
// arf-abuse-eml files of the shared corpus (split into parts by a test helper).
#include <glib.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>
#include <string>

#include "eml_parts_helper.hpp"
#include "mailreport/mime/date.hpp"
#include "mailreport/report/arf.hpp"
#include "mailreport/report/json.hpp"
#include "testsupport.hpp"

namespace mailreport::report {
namespace {

using test::expect_golden;
using test::has_error;

ArfParts feedback_only(std::string_view fields) {
  ArfParts p;
  p.feedback_report = fields;
  return p;
}

// RFC 5965 Appendix B.2 (with a repeated Original-Rcpt-To and Reported-URI added).
constexpr const char* kAbuse =
    "Feedback-Type: abuse\r\n"
    "User-Agent: SomeGenerator/1.0\r\n"
    "Version: 1\r\n"
    "Original-Mail-From: <somespammer@example.net>\r\n"
    "Original-Rcpt-To: <user@example.com>\r\n"
    "Original-Rcpt-To: <other@example.com>\r\n"
    "Arrival-Date: Thu, 8 Mar 2005 14:00:00 EDT\r\n"
    "Reporting-MTA: dns; mail.example.com\r\n"
    "Source-IP: 192.0.2.1\r\n"
    "Authentication-Results: mail.example.com;\r\n"
    "               spf=fail smtp.mail=somespammer@example.com\r\n"
    "Reported-Domain: example.net\r\n"
    "Reported-Uri: http://example.net/earn_money.html\r\n"
    "Reported-URI: mailto:user@example.com\r\n"
    "Removal-Recipient: user@example.com\r\n"
    "Incidents: 3\r\n";

TEST(Arf, ParsesRfc5965Fields) {
  ArfParts parts = feedback_only(kAbuse);
  parts.outer_headers = {{"From", "<abusedesk@example.com>"},
                         {"Subject", "FW: Earn money"},
                         {"Message-ID", "<20050308@example.com>"}};
  parts.human_readable =
      "This is an email abuse report for an email message received from IP\n"
      "192.0.2.1 on Thu, 8 Mar 2005 14:00:00 EDT.\n";
  auto r = parse_arf(parts);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->feedback_type, "abuse");
  EXPECT_EQ(r->user_agent, "SomeGenerator/1.0");
  EXPECT_EQ(r->version, "1");
  EXPECT_EQ(r->original_mail_from, "<somespammer@example.net>");
  EXPECT_EQ(r->original_rcpt_to,
            (std::vector<std::string>{"<user@example.com>", "<other@example.com>"}));
  EXPECT_EQ(r->arrival_date_raw, "Thu, 8 Mar 2005 14:00:00 EDT");
  ASSERT_TRUE(r->arrival_date);
  EXPECT_EQ(*r->arrival_date, 1110304800);  // 18:00 UTC
  EXPECT_EQ(r->reporting_mta, "mail.example.com");
  EXPECT_EQ(r->source_ip, "192.0.2.1");
  EXPECT_EQ(r->authentication_results.rfind("mail.example.com;", 0), 0u);
  EXPECT_NE(r->authentication_results.find("spf=fail"), std::string::npos);
  EXPECT_EQ(r->reported_domain, std::vector<std::string>{"example.net"});
  EXPECT_EQ(r->reported_uri, (std::vector<std::string>{"http://example.net/earn_money.html",
                                                       "mailto:user@example.com"}));
  ASSERT_TRUE(r->incidents);
  EXPECT_EQ(*r->incidents, 3u);
  // Every field in order, repeats kept, names as sent.
  ASSERT_EQ(r->fields.size(), 15u);
  EXPECT_EQ(r->fields[4].name, "Original-Rcpt-To");
  EXPECT_EQ(r->fields[5].value, "<other@example.com>");
  EXPECT_EQ(r->fields[11].name, "Reported-Uri");
  EXPECT_EQ(r->fields[13].name, "Removal-Recipient");
  EXPECT_EQ(r->fields[13].value, "user@example.com");
  EXPECT_EQ(r->subject, "FW: Earn money");
  EXPECT_EQ(r->from, "<abusedesk@example.com>");
  EXPECT_EQ(r->message_id, "<20050308@example.com>");
  EXPECT_NE(r->human_readable.find("192.0.2.1"), std::string::npos);
  EXPECT_TRUE(r->errors.empty()) << r->errors.front();
}

TEST(Arf, ParsesRfc6591DkimFailure) {
  auto r = parse_arf(
      feedback_only("Feedback-Type: auth-failure\n"
                    "User-Agent: SomeDKIMFilter/1.0\n"
                    "Version: 1\n"
                    "Original-Mail-From: <randomuser@example.net>\n"
                    "Original-Rcpt-To: <user@example.com>\n"
                    "Received-Date: Thu, 8 Mar 2005 14:00:00 -0500\n"
                    "Source-IP: 192.0.2.1\n"
                    "Authentication-Results: mail.example.com; dkim=fail header.d=example.net\n"
                    "Reported-Domain: example.net\n"
                    "DKIM-Domain: example.net\n"
                    "DKIM-Identity: @example.net\n"
                    "DKIM-Selector: news\n"
                    "Auth-Failure: BodyHash (body changed)\n"
                    "DKIM-Canonicalized-Header: VGhpcyBpcyBh\n"
                    "  IHRlc3Q=\n"
                    "DKIM-Canonicalized-Body: Ym9keQ==\n"
                    "Delivery-Result: Spam\n"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->feedback_type, "auth-failure");
  EXPECT_EQ(r->auth_failure, "bodyhash");  // lower-cased, comment dropped
  EXPECT_EQ(r->delivery_result, "spam");
  EXPECT_EQ(r->dkim_domain, "example.net");
  EXPECT_EQ(r->dkim_identity, "@example.net");
  EXPECT_EQ(r->dkim_selector, "news");
  EXPECT_EQ(r->dkim_canonicalized_header, "VGhpcyBpcyBhIHRlc3Q=");
  EXPECT_EQ(r->dkim_canonicalized_body, "Ym9keQ==");
  // RFC 5965 §3.2: historic Received-Date is accepted as Arrival-Date.
  EXPECT_EQ(r->arrival_date_raw, "Thu, 8 Mar 2005 14:00:00 -0500");
  EXPECT_EQ(r->arrival_date, std::optional<std::int64_t>(1110308400));
  EXPECT_TRUE(r->errors.empty()) << r->errors.front();
}

TEST(Arf, ParsesDmarcFailureWithSpfDnsAndAlignment) {
  auto r = parse_arf(
      feedback_only("Feedback-Type: Auth-Failure\n"
                    "User-Agent: OpenDMARC-Filter/1.3.2\n"
                    "Version: 1\n"
                    "Auth-Failure: dmarc\n"
                    "Identity-Alignment: DKIM, spf\n"
                    "SPF-DNS: txt : example.net : \"v=spf1 -all\"\n"
                    "SPF-DNS: txt : _spf.example.net : \"v=spf1 ip4:192.0.2.0/24 -all\"\n"
                    "Source-IP: 148.163.85.135 (sainay.interpublication.org)\n"
                    "Arrival-Date: 8 Oct 2011 20:15:58 +0000 (GMT)\n"
                    "Authentication-Results: a.example; dmarc=fail header.from=example.net\n"
                    "Authentication-Results: a.example; spf=fail smtp.mailfrom=example.net\n"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->feedback_type, "auth-failure");
  EXPECT_EQ(r->identity_alignment, "dkim, spf");
  EXPECT_EQ(r->spf_dns,
            "txt : example.net : \"v=spf1 -all\"\n"
            "txt : _spf.example.net : \"v=spf1 ip4:192.0.2.0/24 -all\"");
  EXPECT_EQ(r->source_ip, "148.163.85.135");
  EXPECT_EQ(r->arrival_date, std::optional<std::int64_t>(1318104958));
  EXPECT_EQ(r->authentication_results,
            "a.example; dmarc=fail header.from=example.net\n"
            "a.example; spf=fail smtp.mailfrom=example.net");
}

TEST(Arf, SourceIpForms) {
  struct Case {
    const char* raw;
    const char* want;
  };
  for (auto c :
       {Case{"192.0.2.1", "192.0.2.1"}, Case{"[192.0.2.1]", "192.0.2.1"},
        Case{"192.0.2.1 (mx.example.com)", "192.0.2.1"},
        Case{"(comment) 2001:db8::1", "2001:db8::1"}, Case{"[IPv6:2001:db8::1]", "2001:db8::1"}}) {
    auto r = parse_arf(feedback_only(std::string("Feedback-Type: abuse\nUser-Agent: x/1\n"
                                                 "Version: 1\nSource-IP: ") +
                                     c.raw + "\n"));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->source_ip, c.want) << c.raw;
    EXPECT_TRUE(r->errors.empty()) << c.raw;
  }
  auto bad = parse_arf(feedback_only("Feedback-Type: abuse\nSource-IP: unknown\n"));
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->source_ip, "unknown");
  EXPECT_TRUE(has_error(bad->errors, "Source-IP: not an IP address"));
}

TEST(Arf, NotesMissingAndRepeatedFields) {
  auto r =
      parse_arf(feedback_only("Feedback-Type: auth-failure\n"
                              "Feedback-Type: abuse\n"
                              "Arrival-Date: someday\n"
                              "Received-Date: Thu, 8 Mar 2005 14:00:00 -0500\n"
                              "Incidents: many\n"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->feedback_type, "auth-failure");
  EXPECT_EQ(r->arrival_date_raw, "someday");
  EXPECT_FALSE(r->arrival_date);
  EXPECT_FALSE(r->incidents);
  EXPECT_TRUE(has_error(r->errors, "Feedback-Type: repeated"));
  EXPECT_TRUE(has_error(r->errors, "User-Agent: missing"));
  EXPECT_TRUE(has_error(r->errors, "Version: missing"));
  EXPECT_TRUE(has_error(r->errors, "Auth-Failure: missing"));
  EXPECT_TRUE(has_error(r->errors, "Arrival-Date: not a date"));
  EXPECT_TRUE(has_error(r->errors, "Received-Date: a second arrival date"));
  EXPECT_TRUE(has_error(r->errors, "Incidents: not a number"));
}

TEST(Arf, AnyLineEnding) {
  for (std::string nl : {"\n", "\r\n", "\r"}) {
    std::string text = "Feedback-Type: abuse" + nl + "User-Agent: x/1" + nl + "Version: 1" + nl +
                       "Reported-Domain: example.net" + nl;
    auto r = parse_arf(feedback_only(text));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->feedback_type, "abuse");
    EXPECT_EQ(r->reported_domain, std::vector<std::string>{"example.net"});
    EXPECT_TRUE(r->errors.empty());
  }
}

TEST(Arf, OriginalMessageHeadersFromEachPartType) {
  const std::string original =
      "Received: from mailserver.example.net (mailserver.example.net [192.0.2.1])\n"
      "  by example.com with ESMTP id M63d4137594e46; Thu, 08 Mar 2005 14:00:00 -0400\n"
      "From: <somespammer@example.net>\n"
      "To: <Undisclosed Recipients>\n"
      "Subject: Earn money\n"
      "Message-ID: <8787KJKJ3K4J3K4J3K4J3.mail@example.net>\n"
      "\n"
      "Spam Spam Spam\n";
  for (const char* type :
       {"message/rfc822", "text/rfc822-headers", "text/rfc822-header", "message/rfc822-headers"}) {
    ArfParts p = feedback_only(kAbuse);
    p.original = original;
    p.original_type = type;
    auto r = parse_arf(p);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->original_message_type, type);
    ASSERT_EQ(r->original_headers.size(), 5u) << type;
    EXPECT_EQ(r->original_headers[0].name, "Received");
    EXPECT_NE(r->original_headers[0].value.find("by example.com"), std::string::npos);
    EXPECT_EQ(r->original_headers[4].value, "<8787KJKJ3K4J3K4J3K4J3.mail@example.net>");
  }
}

TEST(Arf, HumanReadableIsBounded) {
  ArfParts p = feedback_only(kAbuse);
  // 70,000 bytes of two-byte characters: the cut must not split one.
  std::string big;
  for (int i = 0; i < 35000; ++i) big += "\xc3\xa9";
  p.human_readable = big;
  auto r = parse_arf(p);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->human_readable.size(), 64u * 1024);
  EXPECT_EQ(static_cast<unsigned char>(r->human_readable.back()), 0xa9);
}

TEST(Arf, InvalidUtf8BecomesReplacementCharacters) {
  // Latin-1 bytes and a cut sequence, in a feedback field and in the human-readable text.
  const std::string fields = std::string(kAbuse) + "Reported-Domain: caf\xe9.example\r\n";
  const std::string text = std::string("Bonjour, le message re\xe7u \xc3 de ") + "192.0.2.1\n";
  ArfParts p = feedback_only(fields);  // ArfParts holds views
  p.human_readable = text;
  auto r = parse_arf(p);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  auto valid = [](const std::string& s) {
    return g_utf8_validate(s.data(), static_cast<gssize>(s.size()), nullptr) != 0;
  };
  EXPECT_TRUE(valid(r->human_readable)) << r->human_readable;
  EXPECT_NE(r->human_readable.find("re\xef\xbf\xbdu"), std::string::npos) << r->human_readable;
  EXPECT_NE(r->human_readable.find("192.0.2.1"), std::string::npos);
  ASSERT_EQ(r->reported_domain.size(), 2u);
  EXPECT_TRUE(valid(r->reported_domain[1])) << r->reported_domain[1];
  // GMime reads raw 8-bit header bytes with its fallback charsets (Latin-1 here).
  EXPECT_EQ(r->reported_domain[1], "caf\xc3\xa9.example");
  // And the JSON rendering needs no replacement of its own.
  EXPECT_NO_THROW((void)to_json(*r).dump());
}

// The Exim/cPanel "DMARC Forensic Report": no message/feedback-report part at all.
constexpr const char* kEximText =
    "A message claiming to be from you has failed the published DMARC policy for your domain.\n"
    "\n"
    "  Sender Domain: example.com\n"
    "  Sender IP Address: 203.0.113.68\n"
    "  Received date: Mon, 07 Apr 2025 23:16:09 +0200\n"
    "  SPF Alignment: no\n"
    "  DKIM Alignment: no\n"
    "  DMARC Results: None, Accept\n"
    "\n"
    "------ This is a copy of the headers that were received before the error was detected.\n"
    "\n"
    "Received: from [198.51.100.9] (helo=smtpclient.apple)\n"
    "\tby node04.mailgate.example.net with esmtp (Exim 4.92)\n"
    "From: <user@example.com>\n"
    "Subject: Payment from your account.\n"
    "Message-Id: <134117F8@example.com>\n";

TEST(Arf, SynthesisesEximPlainTextReport) {
  ArfParts p;
  p.outer_headers = {{"Subject", "DMARC Forensic Report for example.com from IP 203.0.113.68"}};
  p.human_readable = kEximText;
  auto r = parse_arf(p);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->feedback_type, "auth-failure");
  EXPECT_EQ(r->auth_failure, "dmarc");
  EXPECT_EQ(r->source_ip, "203.0.113.68");
  EXPECT_EQ(r->reported_domain, std::vector<std::string>{"example.com"});
  EXPECT_EQ(r->arrival_date, std::optional<std::int64_t>(1744060569));
  ASSERT_EQ(r->original_headers.size(), 4u);
  EXPECT_EQ(r->original_headers[1].value, "<user@example.com>");
  EXPECT_EQ(r->original_message_type, "text/rfc822-headers");
  EXPECT_TRUE(has_error(r->errors, "no message/feedback-report part"));
}

TEST(Arf, SynthesisTakesTheIpFromTheSubjectWhenTheTextHasNone) {
  ArfParts p;
  p.outer_headers = {{"Subject", "DMARC Forensic Report for example.com from IP 192.0.2.77"}};
  p.human_readable = "A message claiming to be from you has failed DMARC.\n";
  auto r = parse_arf(p);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->source_ip, "192.0.2.77");
}

TEST(Arf, NothingReportLikeIsNotAReport) {
  ArfParts empty;
  auto a = parse_arf(empty);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().code, ErrorCode::NotAReport);

  ArfParts chat;
  chat.human_readable = "Hi, lunch tomorrow at 12?\n";
  chat.feedback_report = "Hello: world\nFoo: bar\n";
  auto b = parse_arf(chat);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().code, ErrorCode::NotAReport);

  ArfParts text_only;
  text_only.feedback_report = "this part has no fields at all";
  EXPECT_FALSE(parse_arf(text_only).ok());
}

TEST(ArfJson, EveryKeyPresentAndValuesRendered) {
  ArfParts p = feedback_only(kAbuse);
  p.original = "From: a@b\nSubject: s\n\nbody";
  p.original_type = "message/rfc822";
  auto r = parse_arf(p);
  ASSERT_TRUE(r.ok());
  const nlohmann::json j = to_json(*r);
  EXPECT_EQ(j["feedback_type"], "abuse");
  EXPECT_EQ(j["arrival_date"], 1110304800);
  EXPECT_EQ(j["source_ip"], "192.0.2.1");
  EXPECT_EQ(j["incidents"], 3);
  EXPECT_EQ(j["original_rcpt_to"].size(), 2u);
  EXPECT_EQ(j["fields"][0], nlohmann::json::array({"Feedback-Type", "abuse"}));
  EXPECT_EQ(j["original_headers"][1], nlohmann::json::array({"Subject", "s"}));
  EXPECT_FALSE(j.contains("human_readable"));

  const nlohmann::json e = to_json(ArfReport{});
  for (const char* k : {"feedback_type",
                        "user_agent",
                        "version",
                        "original_mail_from",
                        "original_rcpt_to",
                        "arrival_date",
                        "arrival_date_raw",
                        "source_ip",
                        "reporting_mta",
                        "reported_domain",
                        "reported_uri",
                        "auth_failure",
                        "delivery_result",
                        "authentication_results",
                        "dkim_domain",
                        "dkim_identity",
                        "dkim_selector",
                        "dkim_canonicalized_header",
                        "dkim_canonicalized_body",
                        "spf_dns",
                        "identity_alignment",
                        "incidents",
                        "fields",
                        "original_message_type",
                        "original_headers",
                        "subject",
                        "from",
                        "message_id",
                        "errors"}) {
    EXPECT_TRUE(e.contains(k)) << k;
  }
  EXPECT_TRUE(e["arrival_date"].is_null());
  EXPECT_TRUE(e["incidents"].is_null());
  EXPECT_TRUE(e["fields"].is_array());
}

TEST(ArfJson, GoldenDmarcFailure) {
  const auto dir = test::source_dir() / "tests/data/arf";
  const auto parts = test::split_eml(test::read_file(dir / "dmarc-failure.eml"));
  ArfParts p;
  p.outer_headers = parts.outer_headers;
  p.human_readable = parts.human_readable;
  p.feedback_report = parts.feedback_report;
  p.original = parts.original;
  p.original_type = parts.original_type;
  auto r = parse_arf(p);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  expect_golden(to_json(*r), dir / "dmarc-failure.expected.json");
}

// ------------------------------------------------------------------ RFC 5322 dates

TEST(MimeDate, ParsesRealWorldForms) {
  EXPECT_EQ(mime::parse_date("Thu, 8 Mar 2005 14:00:00 EDT"), 1110304800);
  EXPECT_EQ(mime::parse_date("8 Oct 2011 20:15:58 +0000 (GMT)"), 1318104958);
  EXPECT_EQ(mime::parse_date("Tue,  5 Oct 2021 17:37:02 +1300 (NZDT)"), 1633408622);
  EXPECT_EQ(mime::parse_date("Mon, 01 Oct 2018 11:20:27 +0200"), 1538385627);
  EXPECT_FALSE(mime::parse_date(""));
  EXPECT_FALSE(mime::parse_date("   "));
  EXPECT_FALSE(mime::parse_date("garbage"));
}

// ------------------------------------------------------------------ corpus

ArfParts to_arf_parts(const test::EmlParts& e) {
  ArfParts p;
  p.outer_headers = e.outer_headers;
  p.human_readable = e.human_readable;
  p.feedback_report = e.feedback_report;
  p.original = e.original;
  p.original_type = e.original_type;
  return p;
}

// Checks the parsed report against the "ARF: k=v; ..." segment of the manifest notes.
void check_against_notes(const ArfReport& r, const std::string& notes) {
  const auto pairs = test::note_pairs(notes, "ARF: ");
  ASSERT_FALSE(pairs.empty()) << notes;
  auto matches = [](const std::string& got, std::string want) {
    // Long values are cut with "..." in the notes.
    if (want.size() > 3 && want.compare(want.size() - 3, 3, "...") == 0) {
      want.resize(want.size() - 3);
      return got.rfind(want, 0) == 0;
    }
    return got == want;
  };
  for (const auto& [key, want] : pairs) {
    if (key == "feedback-type") {
      EXPECT_EQ(r.feedback_type, want);
    } else if (key == "source-ip") {
      // The notes keep the "(hostname)" comment that the parser drops.
      EXPECT_EQ(r.source_ip, want.substr(0, want.find(" (")));
    } else if (key == "reported-domain") {
      ASSERT_FALSE(r.reported_domain.empty());
      EXPECT_EQ(r.reported_domain[0], want);
    } else if (key == "original-mail-from") {
      EXPECT_TRUE(matches(r.original_mail_from, want)) << r.original_mail_from << " vs " << want;
    } else if (key == "user-agent") {
      EXPECT_EQ(r.user_agent, want);
    } else if (key == "version") {
      EXPECT_EQ(r.version, want);
    } else if (key == "auth-failure") {
      EXPECT_EQ(r.auth_failure, want);
    } else if (key == "delivery-result") {
      EXPECT_EQ(r.delivery_result, want);
    } else if (key == "identity-alignment") {
      EXPECT_EQ(r.identity_alignment, want);
    } else if (key == "arrival-date") {
      EXPECT_EQ(r.arrival_date_raw, want);
      EXPECT_TRUE(r.arrival_date.has_value()) << want;
    }
  }
}

void run_arf_corpus(const std::string& kind, std::size_t min_rows) {
  const auto corpus = test::corpus_dir();
  const auto rows = test::manifest_rows(corpus, kind);
  ASSERT_GE(rows.size(), min_rows);
  for (const auto& row : rows) {
    SCOPED_TRACE(row.file);
    const auto parts = test::split_eml(test::read_file(corpus / row.file));
    auto r = parse_arf(to_arf_parts(parts));
    ASSERT_TRUE(r.ok()) << r.error().describe();
    if (row.notes.find("ARF: ") != std::string::npos) {
      check_against_notes(*r, row.notes);
      // arf-25's message/rfc822 part says only "REDACTED".
      if (row.file.find("arf-25.eml") == std::string::npos) {
        EXPECT_FALSE(r->original_headers.empty()) << "no original headers";
      }
    }
    EXPECT_FALSE(r->from.empty());
    // The rendering survives a trip through JSON text.
    const nlohmann::json j = to_json(*r);
    EXPECT_EQ(nlohmann::json::parse(j.dump()), j);
  }
}

TEST(ArfCorpus, ForensicReportsMatchTheirNotes) {
  MAILREPORT_REQUIRE_CORPUS();
  run_arf_corpus("forensic-eml", 11);
}

TEST(ArfCorpus, AbuseReportsMatchTheirNotes) {
  MAILREPORT_REQUIRE_CORPUS();
  run_arf_corpus("arf-abuse-eml", 17);
}

TEST(ArfCorpus, EximPlainTextReportIsSynthesised) {
  MAILREPORT_REQUIRE_CORPUS();
  const auto parts = test::split_eml(test::read_file(
      test::corpus_dir() / "parsedmarc/samples/failure/exim_plain_text_only_no_arf_part.eml"));
  ASSERT_TRUE(parts.feedback_report.empty());
  auto r = parse_arf(to_arf_parts(parts));
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->feedback_type, "auth-failure");
  EXPECT_EQ(r->source_ip, "203.0.113.68");  // parsedmarc issue #332
  EXPECT_EQ(r->reported_domain, std::vector<std::string>{"example.com"});
  EXPECT_EQ(r->subject, "DMARC Forensic Report for example.com from IP 203.0.113.68");
  EXPECT_TRUE(has_error(r->errors, "synthesised"));
  ASSERT_NE(mime::find_field(r->original_headers, "Message-Id"), nullptr);
  EXPECT_EQ(mime::find_field(r->original_headers, "Message-Id")->value,
            "<134117F8-2145-AECE-9CCA-25FC98731341@example.com>");
}

TEST(ArfCorpus, OriginalPartTypes) {
  MAILREPORT_REQUIRE_CORPUS();
  const auto corpus = test::corpus_dir();
  struct Case {
    const char* file;
    const char* type;
    const char* subject;  // of the original message
  };
  for (auto c :
       {Case{"set-of-emails/maildir/bsd/arf-12.eml", "text/rfc822-header", nullptr},
        Case{"Email-ARF/t/messages/example1.msg", "message/rfc822-headers", nullptr},
        Case{"mail-auth/resources/arf/004.eml", "text/rfc822-headers", "Wir kaufen dein Auto!"}}) {
    SCOPED_TRACE(c.file);
    auto r = parse_arf(to_arf_parts(test::split_eml(test::read_file(corpus / c.file))));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->original_message_type, c.type);
    EXPECT_FALSE(r->original_headers.empty());
    if (c.subject) {
      ASSERT_NE(mime::find_field(r->original_headers, "Subject"), nullptr);
      EXPECT_EQ(mime::find_field(r->original_headers, "Subject")->value, c.subject);
    }
  }
}

}  // namespace
}  // namespace mailreport::report

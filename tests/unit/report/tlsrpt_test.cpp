// Tests for the RFC 8460 TLS report JSON parser, its JSON rendering and the RFC 3339 date
// helper: hand-written variants, then every tlsrpt-json file of the shared corpus.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "eml_parts_helper.hpp"
#include "mailreport/report/json.hpp"
#include "mailreport/report/tlsrpt_json.hpp"
#include "testsupport.hpp"
// White-box: the date helper is private to the report module.
#include "../../../common/src/report/iso8601.hpp"

namespace mailreport::report {
namespace {

using test::expect_golden;
using test::has_error;

// The value of the " | "-separated notes item that starts with `key`, or "".
std::string note_item(const std::string& notes, const std::string& key) {
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = notes.find(" | ", start);
    const std::string item = notes.substr(start, end == std::string::npos ? end : end - start);
    if (item.rfind(key, 0) == 0) return item.substr(key.size());
    if (end == std::string::npos) return {};
    start = end + 3;
  }
}

// N from a notes item "N<suffix>" (e.g. "3 failure-details"), if there is one.
std::optional<std::size_t> count_item(const std::string& notes, const std::string& suffix) {
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = notes.find(" | ", start);
    const std::string item = notes.substr(start, end == std::string::npos ? end : end - start);
    const std::size_t digits = item.find_first_not_of("0123456789");
    if (digits > 0 && digits != std::string::npos && item.substr(digits) == suffix) {
      return std::stoul(item.substr(0, digits));
    }
    if (end == std::string::npos) return std::nullopt;
    start = end + 3;
  }
}

// The RFC 8460 §4.4 example (with mx-host as an array, as in most copies).
constexpr const char* kRfcExample = R"({
  "organization-name": "Company-X",
  "date-range": {"start-datetime": "2016-04-01T00:00:00Z", "end-datetime": "2016-04-01T23:59:59Z"},
  "contact-info": "sts-reporting@company-x.example",
  "report-id": "5065427c-23d3-47ca-b6e0-946ea0e8c4be",
  "policies": [{
    "policy": {
      "policy-type": "sts",
      "policy-string": ["version: STSv1", "mode: testing", "mx: *.mail.company-y.example", "max_age: 86400"],
      "policy-domain": "company-y.example",
      "mx-host": ["*.mail.company-y.example"]
    },
    "summary": {"total-successful-session-count": 5326, "total-failure-session-count": 303},
    "failure-details": [{
      "result-type": "certificate-expired",
      "sending-mta-ip": "2001:db8:abcd:0012::1",
      "receiving-mx-hostname": "mx1.mail.company-y.example",
      "failed-session-count": 100
    }, {
      "result-type": "starttls-not-supported",
      "sending-mta-ip": "2001:db8:abcd:0013::1",
      "receiving-mx-hostname": "mx2.mail.company-y.example",
      "receiving-ip": "203.0.113.56",
      "failed-session-count": 200,
      "additional-information": "https://reports.company-x.example/report_info?id=5065427c-23d3#StarttlsNotSupported"
    }, {
      "result-type": "validation-failure",
      "sending-mta-ip": "198.51.100.62",
      "receiving-ip": "203.0.113.58",
      "receiving-mx-hostname": "mx-backup.mail.company-y.example",
      "receiving-mx-helo": "mx-backup.example",
      "failed-session-count": 3,
      "failure-reason-code": "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED"
    }]
  }]
})";

// A minimal report with one policy whose members the test fills in.
std::string with_policy(const std::string& policy, const std::string& summary =
                                                       R"({"total-successful-session-count": 1,
                                                           "total-failure-session-count": 0})") {
  return R"({"organization-name": "Org", "contact-info": "a@org.example", "report-id": "r1",
             "date-range": {"start-datetime": "2024-01-01T00:00:00Z",
                            "end-datetime": "2024-01-01T23:59:59Z"},
             "policies": [{"policy": )" +
         policy + R"(, "summary": )" + summary + "}]}";
}

TEST(TlsrptJson, ParsesTheRfc8460Example) {
  auto r = parse_tlsrpt_json(kRfcExample);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->organization_name, "Company-X");
  EXPECT_EQ(r->date_range.begin, 1459468800);  // 2016-04-01T00:00:00Z
  EXPECT_EQ(r->date_range.end, 1459555199);
  EXPECT_EQ(r->contact_info, "sts-reporting@company-x.example");
  EXPECT_EQ(r->report_id, "5065427c-23d3-47ca-b6e0-946ea0e8c4be");
  ASSERT_EQ(r->policies.size(), 1u);
  const auto& p = r->policies[0];
  EXPECT_EQ(p.policy_type, "sts");
  EXPECT_EQ(p.policy_string,
            (std::vector<std::string>{"version: STSv1", "mode: testing",
                                      "mx: *.mail.company-y.example", "max_age: 86400"}));
  EXPECT_EQ(p.policy_domain, "company-y.example");
  EXPECT_EQ(p.mx_host, std::vector<std::string>{"*.mail.company-y.example"});
  EXPECT_EQ(p.total_successful_session_count, 5326u);
  EXPECT_EQ(p.total_failure_session_count, 303u);
  ASSERT_EQ(p.failure_details.size(), 3u);
  EXPECT_EQ(p.failure_details[0].result_type, "certificate-expired");
  EXPECT_EQ(p.failure_details[0].sending_mta_ip, "2001:db8:abcd:0012::1");
  EXPECT_EQ(p.failure_details[0].failed_session_count, 100u);
  EXPECT_EQ(p.failure_details[1].receiving_ip, "203.0.113.56");
  EXPECT_EQ(p.failure_details[1].additional_information,
            "https://reports.company-x.example/report_info?id=5065427c-23d3#StarttlsNotSupported");
  EXPECT_EQ(p.failure_details[2].receiving_mx_helo, "mx-backup.example");
  EXPECT_EQ(p.failure_details[2].failure_reason_code, "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED");
  EXPECT_TRUE(r->errors.empty()) << r->errors.front();
}

TEST(TlsrptJson, DatesWithoutZoneAreUtcAndNoted) {
  auto r = parse_tlsrpt_json(R"({"organization-name": "Microsoft Corporation",
      "date-range": {"start-datetime": "2023-01-10T00:00:00", "end-datetime": "2023-01-10T23:59:59"},
      "contact-info": "tlsrpt-noreply@microsoft.com", "report-id": "133198585438131172",
      "policies": []})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->date_range.begin, 1673308800);
  EXPECT_EQ(r->date_range.end, 1673395199);
  EXPECT_TRUE(has_error(r->errors, "no time zone"));
}

TEST(TlsrptJson, DatesWithFractionsAndOffsets) {
  auto r = parse_tlsrpt_json(R"({"organization-name": "O",
      "date-range": {"start-datetime": "2016-04-01T02:00:00.123456+02:00",
                     "end-datetime": "2016-04-01T19:59:59.9-0400"},
      "contact-info": "a@b", "report-id": "x", "policies": []})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->date_range.begin, 1459468800);
  EXPECT_EQ(r->date_range.end, 1459468800 + 86399);
  EXPECT_TRUE(r->errors.empty());
}

TEST(TlsrptJson, UnparseableDateIsNotedNotFatal) {
  auto r = parse_tlsrpt_json(R"({"organization-name": "O",
      "date-range": {"start-datetime": "yesterday", "end-datetime": "2016-02-30T00:00:00Z"},
      "policies": []})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->date_range.begin, 0);
  EXPECT_TRUE(has_error(r->errors, "date-range.start-datetime: not a date-time"));
  EXPECT_TRUE(has_error(r->errors, "date-range.end-datetime: not a date-time"));
}

TEST(TlsrptJson, MxHostAsStringOrArrayWithMxPrefix) {
  auto a = parse_tlsrpt_json(with_policy(
      R"({"policy-type": "sts", "policy-domain": "d.example", "mx-host": "*.mail.d.example"})"));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->policies[0].mx_host, std::vector<std::string>{"*.mail.d.example"});
  EXPECT_TRUE(a->errors.empty());

  auto b = parse_tlsrpt_json(with_policy(
      R"({"policy-type": "sts", "policy-domain": "server.com",
          "mx-host": ["mx: mx.server.com", "MX:mx2.server.com"]})"));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->policies[0].mx_host, (std::vector<std::string>{"mx.server.com", "mx2.server.com"}));
  EXPECT_TRUE(has_error(b->errors, "\"mx: \" prefix stripped"));

  auto c = parse_tlsrpt_json(with_policy(
      R"({"policy-type": "no-policy-found", "policy-domain": "d.example", "mx-host": ""})"));
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->policies[0].mx_host.empty());
}

TEST(TlsrptJson, NullContactInfo) {
  auto r = parse_tlsrpt_json(R"({"organization-name": "server.com", "contact-info": null,
      "report-id": "123_456", "date-range": {"start-datetime": "2026-01-11T00:00:00Z",
      "end-datetime": "2026-01-12T00:00:00Z"}, "policies": []})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->contact_info, "");
  EXPECT_TRUE(has_error(r->errors, "contact-info: null"));
}

TEST(TlsrptJson, TlsaPolicyStringPackedAsJsonIsUnpacked) {
  auto r = parse_tlsrpt_json(with_policy(R"({"policy-type": "tlsa", "policy-domain": "random.net",
      "policy-string": ["[\"3 1 1 6007EEE5\",\"3 1 1 837C773D\"]"]})"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->policies[0].policy_string,
            (std::vector<std::string>{"3 1 1 6007EEE5", "3 1 1 837C773D"}));
  EXPECT_TRUE(has_error(r->errors, "JSON-encoded array"));
}

TEST(TlsrptJson, BracketedTextThatIsNotJsonStaysAsSent) {
  auto r = parse_tlsrpt_json(with_policy(R"({"policy-type": "sts", "policy-domain": "d",
      "policy-string": ["[not json]", "version: STSv1"]})"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->policies[0].policy_string,
            (std::vector<std::string>{"[not json]", "version: STSv1"}));
}

TEST(TlsrptJson, MissingDomainAndCountsAreErrorsNotFailure) {
  auto r = parse_tlsrpt_json(R"({"organization-name": "Google Inc.",
      "date-range": {"start-datetime": "2019-04-14T00:00:00Z", "end-datetime": "2019-04-14T23:59:59Z"},
      "contact-info": "smtp-tls-reporting@google.com", "report-id": "r",
      "policies": [{"policy": {"policy-type": "no-policy-found"},
                    "summary": {"total-successful-session-count": 1}},
                   {"policy": {"policy-type": "invalid-policy-type"},
                    "summary": {"total-successful-session-count": 1}},
                   {"policy": {"policy-type": "sts", "policy-domain": "x"},
                    "failure-details": [{"result-type": "validation-failure"}]}]})");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->policies.size(), 3u);
  EXPECT_EQ(r->policies[0].policy_domain, "");
  EXPECT_EQ(r->policies[0].total_successful_session_count, 1u);
  EXPECT_EQ(r->policies[0].total_failure_session_count, 0u);
  EXPECT_EQ(r->policies[1].policy_type, "invalid-policy-type");  // kept as sent
  EXPECT_TRUE(has_error(r->errors, "policies[0].policy.policy-domain: missing"));
  EXPECT_TRUE(has_error(r->errors, "policies[0].summary.total-failure-session-count: missing"));
  EXPECT_TRUE(has_error(r->errors, "unknown value \"invalid-policy-type\""));
  EXPECT_TRUE(has_error(r->errors, "policies[2].summary: missing"));
  EXPECT_TRUE(has_error(r->errors, "policies[2].failure-details[0].failed-session-count: missing"));
}

TEST(TlsrptJson, NumbersAsStrings) {
  auto r = parse_tlsrpt_json(with_policy(
      R"({"policy-type": "sts", "policy-domain": "d"})",
      R"({"total-successful-session-count": " 42 ", "total-failure-session-count": "x"})"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->policies[0].total_successful_session_count, 42u);
  EXPECT_EQ(r->policies[0].total_failure_session_count, 0u);
  EXPECT_TRUE(has_error(r->errors, "number sent as a string"));
  EXPECT_TRUE(has_error(r->errors, "not a number: \"x\""));

  auto f = parse_tlsrpt_json(
      with_policy(R"({"policy-type": "sts", "policy-domain": "d"})",
                  R"({"total-successful-session-count": 7.0, "total-failure-session-count": -3})"));
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->policies[0].total_successful_session_count, 7u);
  EXPECT_EQ(f->policies[0].total_failure_session_count, 0u);
  EXPECT_TRUE(has_error(f->errors, "negative"));
}

TEST(TlsrptJson, WrongTypesAreSalvaged) {
  auto r = parse_tlsrpt_json(R"({"organization-name": 12, "report-id": ["a"],
      "policies": {"policy": {"policy-type": "sts", "policy-domain": "d",
                              "policy-string": "version: STSv1", "mx-host": 5},
                   "summary": {"total-successful-session-count": 1,
                               "total-failure-session-count": 0},
                   "failure-details": "none"}})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->organization_name, "12");
  ASSERT_EQ(r->policies.size(), 1u);
  EXPECT_EQ(r->policies[0].policy_string, std::vector<std::string>{"version: STSv1"});
  EXPECT_TRUE(has_error(r->errors, "policies: an object instead of an array"));
  EXPECT_TRUE(has_error(r->errors, "mx-host: expected an array"));
  EXPECT_TRUE(has_error(r->errors, "failure-details: expected an array"));
}

TEST(TlsrptJson, NotATlsReport) {
  for (const char* text : {"", "not json", "[1,2,3]", "42", "{}", R"({"feedback": {}})",
                           "{\"organization-name\": \"x\"", "\xff\xfe{}"}) {
    auto r = parse_tlsrpt_json(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.error().code, ErrorCode::Invalid) << text;
    EXPECT_NE(r.error().message.find("not a TLS report"), std::string::npos) << r.error().message;
  }
}

TEST(TlsrptJson, ByteOrderMarkIsTolerated) {
  auto r = parse_tlsrpt_json("\xEF\xBB\xBF{\"organization-name\": \"O\", \"policies\": []}");
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->organization_name, "O");
}

TEST(TlsrptJson, DeepNestingFailsCleanly) {
  std::string deep = "{\"organization-name\": \"O\", \"policies\": ";
  deep += std::string(100000, '[');
  deep += std::string(100000, ']');
  deep += "}";
  auto r = parse_tlsrpt_json(deep);
  // Either refused or salvaged; what matters is no crash and no exception.
  if (r.ok()) {
    EXPECT_FALSE(r->errors.empty());
  }
}

TEST(TlsJson, RendersRfc8460MemberNamesWithStableShape) {
  auto r = parse_tlsrpt_json(kRfcExample);
  ASSERT_TRUE(r.ok());
  const nlohmann::json j = to_json(*r);
  EXPECT_EQ(j["organization-name"], "Company-X");
  EXPECT_EQ(j["date-range"]["start-datetime"], "2016-04-01T00:00:00Z");
  EXPECT_EQ(j["date-range"]["end-datetime"], "2016-04-01T23:59:59Z");
  EXPECT_EQ(j["contact-info"], "sts-reporting@company-x.example");
  EXPECT_EQ(j["policies"][0]["policy"]["mx-host"][0], "*.mail.company-y.example");
  EXPECT_EQ(j["policies"][0]["summary"]["total-failure-session-count"], 303);
  const auto& d0 = j["policies"][0]["failure-details"][0];
  // Absent members are present as "" so that every report has the same shape.
  EXPECT_EQ(d0["receiving-ip"], "");
  EXPECT_EQ(d0["failure-reason-code"], "");
  EXPECT_EQ(d0["failed-session-count"], 100);
  EXPECT_TRUE(j["errors"].is_array());

  // Round trip: the rendering is itself a TLS report that parses to the same values.
  auto again = parse_tlsrpt_json(j.dump());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->date_range.begin, r->date_range.begin);
  EXPECT_EQ(again->date_range.end, r->date_range.end);
  EXPECT_EQ(again->policies[0].failure_details.size(), 3u);
  EXPECT_EQ(again->policies[0].policy_string, r->policies[0].policy_string);
  EXPECT_EQ(to_json(*again).dump(), j.dump());
}

TEST(TlsJson, GoldenQuirks) {
  const auto dir = test::source_dir() / "tests/data/tlsrpt";
  auto r = parse_tlsrpt_json(test::read_file(dir / "quirks.json"));
  ASSERT_TRUE(r.ok()) << r.error().describe();
  expect_golden(to_json(*r), dir / "quirks.expected.json");
}

TEST(TlsJson, EmptyReportHasEveryKey) {
  TlsReport empty;
  empty.policies.emplace_back();
  empty.policies[0].failure_details.emplace_back();
  const nlohmann::json j = to_json(empty);
  for (const char* k :
       {"organization-name", "date-range", "contact-info", "report-id", "policies", "errors"}) {
    EXPECT_TRUE(j.contains(k)) << k;
  }
  EXPECT_EQ(j["date-range"]["start-datetime"], "1970-01-01T00:00:00Z");
  const auto& p = j["policies"][0];
  for (const char* k : {"policy-type", "policy-string", "policy-domain", "mx-host"}) {
    EXPECT_TRUE(p["policy"].contains(k)) << k;
  }
  EXPECT_EQ(p["failure-details"][0].size(), 8u);
}

// ------------------------------------------------------------------ RFC 3339 helper

TEST(Iso8601, ParsesVariants) {
  using iso8601::parse;
  EXPECT_EQ(parse("1970-01-01T00:00:00Z")->epoch, 0);
  EXPECT_EQ(parse("2016-04-01T00:00:00Z")->epoch, 1459468800);
  EXPECT_EQ(parse("2016-04-01t00:00:00z")->epoch, 1459468800);
  EXPECT_EQ(parse("2016-04-01 00:00:00Z")->epoch, 1459468800);
  EXPECT_EQ(parse(" 2016-04-01T05:30:00+05:30 ")->epoch, 1459468800);
  EXPECT_EQ(parse("2016-03-31T20:00:00-0400")->epoch, 1459468800);
  EXPECT_EQ(parse("2016-04-01T01:00:00+01")->epoch, 1459468800);
  EXPECT_EQ(parse("2016-04-01T00:00:00.999Z")->epoch, 1459468800);
  EXPECT_EQ(parse("2016-03-31T24:00:00Z")->epoch, 1459468800);
  EXPECT_EQ(parse("2016-12-31T23:59:60Z")->epoch, 1483228799);  // leap second clamped
  EXPECT_EQ(parse("2024-02-29T12:00Z")->epoch, 1709208000);
  EXPECT_EQ(parse("1969-12-31T23:59:59Z")->epoch, -1);
  auto nz = parse("2023-01-10T00:00:00");
  ASSERT_TRUE(nz);
  EXPECT_FALSE(nz->had_zone);
  EXPECT_EQ(nz->epoch, 1673308800);
  auto bare = parse("2023-01-10");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->epoch, 1673308800);
}

TEST(Iso8601, RejectsNonsense) {
  using iso8601::parse;
  for (const char* s : {"", "2016", "2016-13-01T00:00:00Z", "2023-02-29T00:00:00Z",
                        "2016-04-01T25:00:00Z", "2016-04-01T00:60:00Z", "2016-04-01T00:00:00Q",
                        "2016-04-01T00:00:00+2", "2016-04-01T00:00:00.Z", "16-04-01T00:00:00Z",
                        "2016-04-01T00:00:00Z trailing", "1459468800"}) {
    EXPECT_FALSE(parse(s)) << s;
  }
}

TEST(Iso8601, FormatsUtc) {
  EXPECT_EQ(iso8601::format_utc(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(iso8601::format_utc(1459555199), "2016-04-01T23:59:59Z");
  EXPECT_EQ(iso8601::format_utc(-1), "1969-12-31T23:59:59Z");
  EXPECT_EQ(iso8601::format_utc(951782400), "2000-02-29T00:00:00Z");
  for (std::int64_t t = -86400LL * 800; t < 86400LL * 365 * 600; t += 86400LL * 7 + 3601) {
    EXPECT_EQ(iso8601::parse(iso8601::format_utc(t))->epoch, t);
  }
}

// ------------------------------------------------------------------ corpus

TEST(TlsrptCorpus, EveryJsonFileParsesWithItsOrgAndDates) {
  MAILREPORT_REQUIRE_CORPUS();
  const auto corpus = test::corpus_dir();
  const auto rows = test::manifest_rows(corpus, "tlsrpt-json");
  ASSERT_GE(rows.size(), 14u);
  for (const auto& row : rows) {
    SCOPED_TRACE(row.file);
    auto r = parse_tlsrpt_json(test::read_file(corpus / row.file));
    ASSERT_TRUE(r.ok()) << r.error().describe();
    // Notes carry "org=<name> | dates=<start>..<end>".
    const std::string org = note_item(row.notes, "org=");
    const std::string dates = note_item(row.notes, "dates=");
    ASSERT_FALSE(org.empty());
    ASSERT_FALSE(dates.empty());
    EXPECT_EQ(r->organization_name, org);
    const auto sep = dates.find("..");
    ASSERT_NE(sep, std::string::npos);
    const auto start = iso8601::parse(dates.substr(0, sep));
    const auto end = iso8601::parse(dates.substr(sep + 2));
    ASSERT_TRUE(start && end);
    EXPECT_EQ(r->date_range.begin, start->epoch);
    EXPECT_EQ(r->date_range.end, end->epoch);
    EXPECT_FALSE(r->policies.empty());
    // policy-types=a,b lists the types in order.
    if (const std::string types = note_item(row.notes, "policy-types="); !types.empty()) {
      std::string got;
      for (const auto& p : r->policies) {
        if (got.find(p.policy_type) == std::string::npos)
          got += (got.empty() ? "" : ",") + p.policy_type;
      }
      EXPECT_EQ(got, types);
    }
    // "N failure-details" counts them.
    if (const auto n = count_item(row.notes, " failure-details")) {
      std::size_t got = 0;
      for (const auto& p : r->policies) got += p.failure_details.size();
      EXPECT_EQ(got, *n);
    }
    // The rendering parses back to the same report.
    // The rendering parses back to the same report (salvage notes aside: the rendering is
    // clean RFC 8460).
    auto again = parse_tlsrpt_json(to_json(*r).dump());
    ASSERT_TRUE(again.ok());
    auto a = to_json(*again);
    auto b = to_json(*r);
    a.erase("errors");
    b.erase("errors");
    EXPECT_EQ(a, b);
  }
}

TEST(TlsrptCorpus, QuirksFromTheNotes) {
  MAILREPORT_REQUIRE_CORPUS();
  const auto corpus = test::corpus_dir();
  auto ms = parse_tlsrpt_json(
      test::read_file(corpus / "dmarc-report-viewer/testdata/smtp-tls-reports/microsoft.json"));
  ASSERT_TRUE(ms.ok());
  ASSERT_EQ(ms->policies.size(), 2u);
  EXPECT_EQ(ms->policies[1].policy_type, "tlsa");
  ASSERT_EQ(ms->policies[1].policy_string.size(), 2u);
  EXPECT_EQ(ms->policies[1].policy_string[0].substr(0, 8), "3 1 1 60");

  auto nc = parse_tlsrpt_json(
      test::read_file(corpus / "dmarc-report-viewer/testdata/smtp-tls-reports/no-contact.json"));
  ASSERT_TRUE(nc.ok());
  EXPECT_EQ(nc->contact_info, "");
  EXPECT_EQ(nc->policies[0].mx_host, std::vector<std::string>{"mx.server.com"});

  auto rfc =
      parse_tlsrpt_json(test::read_file(corpus / "parsedmarc/samples/smtp_tls/rfc8460.json"));
  ASSERT_TRUE(rfc.ok());
  EXPECT_EQ(rfc->policies[0].mx_host, std::vector<std::string>{"*.mail.company-y.example"});
  EXPECT_EQ(rfc->policies[0].failure_details.size(), 3u);

  auto rpt03 = parse_tlsrpt_json(test::read_file(corpus / "mail-auth/resources/tlsrpt/rpt03.json"));
  ASSERT_TRUE(rpt03.ok());
  EXPECT_EQ(rpt03->policies[1].policy_type, "invalid-policy-type");
  EXPECT_TRUE(has_error(rpt03->errors, "policy-domain: missing"));
}

}  // namespace
}  // namespace mailreport::report

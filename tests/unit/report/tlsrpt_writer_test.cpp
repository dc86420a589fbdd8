// The TLS report writer: RFC 8460 §4.4 field names and types, and a round trip through our
// own parser.
#include "mailreport/report/tlsrpt_writer.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "mailreport/report/tlsrpt_json.hpp"

namespace mailreport::report {
namespace {

TlsReport sample() {
  TlsReport r;
  r.organization_name = "mx.example";
  r.date_range = {1763596800, 1763683199};
  r.contact_info = "tlsrpt@mx.example";
  r.report_id = "2026-11-20T00:00:00Z_example.net";
  TlsPolicy sts;
  sts.policy_type = "sts";
  sts.policy_string = {"version: STSv1", "mode: enforce", "mx: *.example.net", "max_age: 86400"};
  sts.policy_domain = "example.net";
  sts.mx_host = {"*.example.net"};
  sts.total_successful_session_count = 5326;
  sts.total_failure_session_count = 303;
  TlsFailureDetail d;
  d.result_type = "certificate-expired";
  d.sending_mta_ip = "2001:db8:abcd:0012::1";
  d.receiving_mx_hostname = "mx2.example.net";
  d.receiving_ip = "203.0.113.56";
  d.failed_session_count = 100;
  TlsFailureDetail v = d;
  v.result_type = "validation-failure";
  v.failure_reason_code = "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED";
  v.receiving_mx_helo = "mx2.example.net";
  v.failed_session_count = 203;
  v.additional_information = "https://mx.example/tlsrpt/bad\xff";
  sts.failure_details = {d, v};
  TlsPolicy none;
  none.policy_type = "no-policy-found";
  none.policy_domain = "example.org";
  none.total_successful_session_count = 12;
  r.policies = {sts, none};
  return r;
}

TEST(TlsRptWriter, WritesRfc8460FieldsWithTheirTypes) {
  auto doc = nlohmann::json::parse(write_tlsrpt_json(sample()));
  EXPECT_EQ(doc["organization-name"], "mx.example");
  EXPECT_EQ(doc["date-range"]["start-datetime"], "2025-11-20T00:00:00Z");
  EXPECT_EQ(doc["date-range"]["end-datetime"], "2025-11-20T23:59:59Z");
  EXPECT_EQ(doc["contact-info"], "tlsrpt@mx.example");
  ASSERT_TRUE(doc["policies"].is_array());
  ASSERT_EQ(doc["policies"].size(), 2u);
  const auto& p0 = doc["policies"][0];
  EXPECT_EQ(p0["policy"]["policy-type"], "sts");
  EXPECT_TRUE(p0["policy"]["policy-string"].is_array());
  EXPECT_TRUE(p0["policy"]["mx-host"].is_array());
  EXPECT_TRUE(p0["summary"]["total-successful-session-count"].is_number_integer());
  EXPECT_EQ(p0["summary"]["total-failure-session-count"], 303);
  ASSERT_EQ(p0["failure-details"].size(), 2u);
  EXPECT_FALSE(p0["failure-details"][0].contains("failure-reason-code"));
  EXPECT_FALSE(p0["failure-details"][0].contains("receiving-mx-helo"));
  EXPECT_EQ(p0["failure-details"][1]["failure-reason-code"],
            "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED");
  const auto& p1 = doc["policies"][1];
  EXPECT_EQ(p1["policy"]["policy-type"], "no-policy-found");
  EXPECT_TRUE(p1["policy"]["policy-string"].empty());
  EXPECT_FALSE(p1.contains("failure-details"));
}

TEST(TlsRptWriter, RoundTripsThroughOurParser) {
  const TlsReport in = sample();
  auto got = parse_tlsrpt_json(write_tlsrpt_json(in, 2));
  ASSERT_TRUE(got) << got.error().describe();
  EXPECT_TRUE(got->errors.empty()) << got->errors.front();
  EXPECT_EQ(got->organization_name, in.organization_name);
  EXPECT_EQ(got->date_range.begin, in.date_range.begin);
  EXPECT_EQ(got->date_range.end, in.date_range.end);
  EXPECT_EQ(got->contact_info, in.contact_info);
  EXPECT_EQ(got->report_id, in.report_id);
  ASSERT_EQ(got->policies.size(), 2u);
  const auto& p = got->policies[0];
  EXPECT_EQ(p.policy_string, in.policies[0].policy_string);
  EXPECT_EQ(p.mx_host, in.policies[0].mx_host);
  EXPECT_EQ(p.total_successful_session_count, 5326u);
  ASSERT_EQ(p.failure_details.size(), 2u);
  EXPECT_EQ(p.failure_details[1].result_type, "validation-failure");
  EXPECT_EQ(p.failure_details[1].receiving_mx_helo, "mx2.example.net");
  EXPECT_EQ(p.failure_details[1].failed_session_count, 203u);
  // Invalid UTF-8 became U+FFFD instead of breaking the document.
  EXPECT_EQ(p.failure_details[1].additional_information,
            "https://mx.example/tlsrpt/bad\xEF\xBF\xBD");
  EXPECT_EQ(got->policies[1].policy_domain, "example.org");
}

}  // namespace
}  // namespace mailreport::report

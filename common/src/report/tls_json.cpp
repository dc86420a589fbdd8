// JSON rendering of a parsed SMTP TLS report with the RFC 8460 §4.4 member names, so that
// the output reads like the report that was received. Dates are rendered as RFC 3339 UTC
// ("2016-04-01T00:00:00Z") whatever form the reporter used. Every member is always present
// (empty string, 0 or []) so that consumers see a stable shape; "errors" lists what the
// parser salvaged.
#include "mailreport/report/json.hpp"
#include "report/iso8601.hpp"

namespace mailreport::report {

nlohmann::json to_json(const TlsReport& report) {
  using nlohmann::json;
  json policies = json::array();
  for (const auto& p : report.policies) {
    json details = json::array();
    for (const auto& d : p.failure_details) {
      details.push_back({
          {"result-type", d.result_type},
          {"sending-mta-ip", d.sending_mta_ip},
          {"receiving-mx-hostname", d.receiving_mx_hostname},
          {"receiving-mx-helo", d.receiving_mx_helo},
          {"receiving-ip", d.receiving_ip},
          {"failed-session-count", d.failed_session_count},
          {"additional-information", d.additional_information},
          {"failure-reason-code", d.failure_reason_code},
      });
    }
    policies.push_back({
        {"policy",
         {
             {"policy-type", p.policy_type},
             {"policy-string", p.policy_string},
             {"policy-domain", p.policy_domain},
             {"mx-host", p.mx_host},
         }},
        {"summary",
         {
             {"total-successful-session-count", p.total_successful_session_count},
             {"total-failure-session-count", p.total_failure_session_count},
         }},
        {"failure-details", std::move(details)},
    });
  }
  return {
      {"organization-name", report.organization_name},
      {"date-range",
       {
           {"start-datetime", iso8601::format_utc(report.date_range.begin)},
           {"end-datetime", iso8601::format_utc(report.date_range.end)},
       }},
      {"contact-info", report.contact_info},
      {"report-id", report.report_id},
      {"policies", std::move(policies)},
      {"errors", report.errors},
  };
}

}  // namespace mailreport::report

// SMTP TLS report writer (RFC 8460 §4.4) with nlohmann-json; see tlsrpt_writer.hpp.
// Strings are made valid UTF-8 first (nlohmann-json refuses to dump invalid UTF-8, and RFC 8460
// §4.4 asks for I-JSON).
#include "mailreport/report/tlsrpt_writer.hpp"

#include <nlohmann/json.hpp>

#include "report/field_syntax.hpp"
#include "report/iso8601.hpp"

namespace mailreport::report {

namespace {

using ojson = nlohmann::ordered_json;

std::string text(const std::string& s) {
  return fieldtext::bounded_utf8(s, std::string::npos);
}

ojson strings(const std::vector<std::string>& v) {
  ojson a = ojson::array();
  for (const auto& s : v) a.push_back(text(s));
  return a;
}

ojson detail(const TlsFailureDetail& d) {
  ojson o;
  o["result-type"] = text(d.result_type);
  if (!d.sending_mta_ip.empty()) o["sending-mta-ip"] = text(d.sending_mta_ip);
  if (!d.receiving_mx_hostname.empty()) o["receiving-mx-hostname"] = text(d.receiving_mx_hostname);
  if (!d.receiving_mx_helo.empty()) o["receiving-mx-helo"] = text(d.receiving_mx_helo);
  if (!d.receiving_ip.empty()) o["receiving-ip"] = text(d.receiving_ip);
  o["failed-session-count"] = d.failed_session_count;
  if (!d.additional_information.empty()) {
    o["additional-information"] = text(d.additional_information);
  }
  if (!d.failure_reason_code.empty()) o["failure-reason-code"] = text(d.failure_reason_code);
  return o;
}

}  // namespace

std::string write_tlsrpt_json(const TlsReport& r, int indent) {
  ojson doc;
  doc["organization-name"] = text(r.organization_name);
  doc["date-range"] = {{"start-datetime", iso8601::format_utc(r.date_range.begin)},
                       {"end-datetime", iso8601::format_utc(r.date_range.end)}};
  doc["contact-info"] = text(r.contact_info);
  doc["report-id"] = text(r.report_id);
  ojson policies = ojson::array();
  for (const auto& p : r.policies) {
    ojson entry;
    ojson policy;
    policy["policy-type"] = text(p.policy_type);
    policy["policy-string"] = strings(p.policy_string);
    policy["policy-domain"] = text(p.policy_domain);
    policy["mx-host"] = strings(p.mx_host);
    entry["policy"] = std::move(policy);
    entry["summary"] = {{"total-successful-session-count", p.total_successful_session_count},
                        {"total-failure-session-count", p.total_failure_session_count}};
    if (!p.failure_details.empty()) {
      ojson details = ojson::array();
      for (const auto& d : p.failure_details) details.push_back(detail(d));
      entry["failure-details"] = std::move(details);
    }
    policies.push_back(std::move(entry));
  }
  doc["policies"] = std::move(policies);
  return doc.dump(indent);
}

}  // namespace mailreport::report

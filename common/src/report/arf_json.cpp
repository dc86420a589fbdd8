// JSON rendering of a parsed ARF feedback report (RFC 5965 / RFC 6591 / RFC 9991): field
// names lower-cased with underscores, header blocks as [[name, value], ...] in order. Every
// key is always present ("" / null / []) so that consumers see a stable shape. The
// human-readable part is left out: it is free text of up to 64 KiB, and the parsed fields
// say what it says.
#include "mailreport/report/json.hpp"

namespace mailreport::report {

namespace {
nlohmann::json header_pairs(const std::vector<HeaderField>& fields) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& f : fields) out.push_back({f.name, f.value});
  return out;
}
}  // namespace

nlohmann::json to_json(const ArfReport& r) {
  using nlohmann::json;
  return {
      {"feedback_type", r.feedback_type},
      {"user_agent", r.user_agent},
      {"version", r.version},
      {"original_mail_from", r.original_mail_from},
      {"original_rcpt_to", r.original_rcpt_to},
      {"arrival_date", r.arrival_date ? json(*r.arrival_date) : json(nullptr)},
      {"arrival_date_raw", r.arrival_date_raw},
      {"source_ip", r.source_ip},
      {"reporting_mta", r.reporting_mta},
      {"reported_domain", r.reported_domain},
      {"reported_uri", r.reported_uri},
      {"auth_failure", r.auth_failure},
      {"delivery_result", r.delivery_result},
      {"authentication_results", r.authentication_results},
      {"dkim_domain", r.dkim_domain},
      {"dkim_identity", r.dkim_identity},
      {"dkim_selector", r.dkim_selector},
      {"dkim_canonicalized_header", r.dkim_canonicalized_header},
      {"dkim_canonicalized_body", r.dkim_canonicalized_body},
      {"spf_dns", r.spf_dns},
      {"identity_alignment", r.identity_alignment},
      {"incidents", r.incidents ? json(*r.incidents) : json(nullptr)},
      {"fields", header_pairs(r.fields)},
      {"original_message_type", r.original_message_type},
      {"original_headers", header_pairs(r.original_headers)},
      {"subject", r.subject},
      {"from", r.from},
      {"message_id", r.message_id},
      {"errors", r.errors},
  };
}

}  // namespace mailreport::report

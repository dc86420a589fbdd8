// JSON rendering of a parsed delivery status notification (RFC 3464): field names
// lower-cased with underscores, dates as epoch seconds or null, header blocks as
// [[name, value], ...] in order. Every key is always present ("" / null / []) so that
// consumers see a stable shape.
#include "mailreport/report/json.hpp"

namespace mailreport::report {

namespace {
using nlohmann::json;

json header_pairs(const std::vector<HeaderField>& fields) {
  json out = json::array();
  for (const auto& f : fields) out.push_back({f.name, f.value});
  return out;
}

json epoch_or_null(const std::optional<std::int64_t>& t) {
  return t ? json(*t) : json(nullptr);
}
}  // namespace

nlohmann::json to_json(const DsnReport& r) {
  json recipients = json::array();
  for (const auto& rc : r.recipients) {
    recipients.push_back({
        {"original_recipient", rc.original_recipient},
        {"final_recipient", rc.final_recipient},
        {"action", rc.action},
        {"status", rc.status},
        {"remote_mta", rc.remote_mta},
        {"diagnostic_code", rc.diagnostic_code},
        {"last_attempt_date", epoch_or_null(rc.last_attempt_date)},
        {"final_log_id", rc.final_log_id},
        {"will_retry_until", epoch_or_null(rc.will_retry_until)},
        {"fields", header_pairs(rc.fields)},
    });
  }
  return {
      {"original_envelope_id", r.original_envelope_id},
      {"reporting_mta", r.reporting_mta},
      {"dsn_gateway", r.dsn_gateway},
      {"received_from_mta", r.received_from_mta},
      {"arrival_date", epoch_or_null(r.arrival_date)},
      {"fields", header_pairs(r.fields)},
      {"recipients", std::move(recipients)},
      {"original_headers", header_pairs(r.original_headers)},
      {"subject", r.subject},
      {"from", r.from},
      {"message_id", r.message_id},
      {"errors", r.errors},
  };
}

}  // namespace mailreport::report

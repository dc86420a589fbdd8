// store/aggregate_payload: an aggregate report's outbox payload as JSON (nlohmann-json), see
// mailreport/store/aggregate_payload.hpp: {"report": 12, "uri": "mailto:...", "max_size": 0}.
// Reading ignores unknown members and gives missing ones their defaults, so that payloads
// written by an older or newer build still load; only text that is not a JSON object fails.
#include "mailreport/store/aggregate_payload.hpp"

#include <nlohmann/json.hpp>

namespace mailreport::store {

std::string to_json(const AggregatePayload& payload) {
  nlohmann::json j = {
      {"report", payload.report}, {"uri", payload.uri}, {"max_size", payload.max_size}};
  // A URI from DNS may hold bytes that are not UTF-8; they are replaced rather than thrown
  // about (such a URI cannot be delivered to anyway).
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<AggregatePayload> aggregate_payload_from_json(std::string_view json) {
  auto j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return make_error(ErrorCode::Invalid, "aggregate report payload is not a JSON object");
  }
  AggregatePayload p;
  if (auto it = j.find("report"); it != j.end() && it->is_number_integer()) {
    p.report = it->get<std::int64_t>();
  }
  if (auto it = j.find("uri"); it != j.end() && it->is_string()) {
    p.uri = it->get<std::string>();
  }
  if (auto it = j.find("max_size"); it != j.end() && it->is_number_unsigned()) {
    p.max_size = it->get<std::uint64_t>();
  }
  return p;
}

}  // namespace mailreport::store

// The payload of an aggregate report's outbox entry (kinds store::kDmarcAggregateKind and
// kTlsAggregateKind): which stored report to send, and the destination's own size limit. JSON
// with nlohmann-json: {"report": 12, "uri": "mailto:...", "max_size": 0}.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "mailreport/util/result.hpp"

namespace mailreport::store {

struct AggregatePayload {
  std::int64_t report = 0;     // AggregateReport::id (0 until the store commits the batch)
  std::string uri;             // the rua URI as published ("mailto:a@b!10m", "https://...")
  std::uint64_t max_size = 0;  // the URI's !size limit in bytes; 0 = none
};

std::string to_json(const AggregatePayload& payload);
Result<AggregatePayload> aggregate_payload_from_json(std::string_view json);

}  // namespace mailreport::store

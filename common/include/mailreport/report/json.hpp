// JSON rendering of the report model, as printed by `mailreport parse`, `show --json` and
// `export --format json`. Keys are named as in the wire format: XML element names for DMARC
// aggregate reports, RFC 8460 member names for TLS reports, lower-cased underscore field
// names for ARF and DSN.
#pragma once

#include <nlohmann/json.hpp>

#include "mailreport/report/model.hpp"

namespace mailreport::report {

nlohmann::json to_json(const DmarcHeader& header);  // report_metadata, policy_published, ...
nlohmann::json to_json(const DmarcRecord& record);
nlohmann::json to_json(const DmarcAggregate& report);
nlohmann::json to_json(const TlsReport& report);
nlohmann::json to_json(const ArfReport& report);
nlohmann::json to_json(const DsnReport& report);
// Adds "type" to the above.
nlohmann::json to_json(const Report& report);

}  // namespace mailreport::report

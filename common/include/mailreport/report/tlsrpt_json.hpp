// SMTP TLS reporting (RFC 8460 §4) JSON parser, tolerant of real-world variants: dates
// without a zone, mx-host as a string or an array, null contact-info, TLSA policy strings
// packed as JSON text, missing counts. JSON parsing is nlohmann-json's.
#pragma once

#include <string_view>

#include "mailreport/report/model.hpp"
#include "mailreport/util/result.hpp"

namespace mailreport::report {

Result<TlsReport> parse_tlsrpt_json(std::string_view json);

}  // namespace mailreport::report

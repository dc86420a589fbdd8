// SMTP TLS report writer (RFC 8460 §4, §4.4): a TlsReport as the JSON document a report
// carries, with nlohmann-json (I-JSON, RFC 7493: UTF-8, integers for counts). Field order as in
// the RFC's example; RFC 3339 UTC date-times; optional failure-detail fields written only when
// set; policy-string and mx-host always arrays (RFC 8460 §4.4). What we send parses back with
// parse_tlsrpt_json (tlsrpt_json.hpp) to the same report.
#pragma once

#include <string>

#include "mailreport/report/model.hpp"

namespace mailreport::report {

// `indent` < 0: compact (what is sent); >= 0: pretty-printed with that many spaces.
std::string write_tlsrpt_json(const TlsReport& report, int indent = -1);

}  // namespace mailreport::report

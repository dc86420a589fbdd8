// milter/dsn: the pieces of the session's handling of DSNs the MTA generates (report.dsn):
// recognising one, and the From field it gets. Private to the milter (session.cpp).
#pragma once

#include <string>
#include <string_view>

#include "mailreport/config/config.hpp"

namespace mailreport::milter::dsn {

// RFC 3464 §2 / RFC 6522 §3: Content-Type multipart/report with report-type=delivery-status
// (type, subtype, parameter name and value case-insensitive; the value may be quoted).
bool is_delivery_status(std::string_view content_type);

// The From value for a DSN: report.dsn.from-name and from-address as an RFC 5322 §3.4
// name-addr, the display name quoted or RFC 2047-encoded as needed (GMime). An empty
// from-address keeps the address of `original_from`, an empty from-name keeps its display
// name. "" when nothing is configured or no address can be had.
std::string from_value(const config::DsnSettings& settings, std::string_view original_from);

}  // namespace mailreport::milter::dsn

// Private helpers of the config module: syntax checks of the values that are not plain
// numbers (domain names, user names, listener addresses, recipient patterns).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "mailreport/util/result.hpp"

namespace mailreport::config::detail {

// RFC 1035 §2.3.1 LDH labels (1-63 octets, no leading/trailing hyphen), at most 253 octets,
// no trailing dot. Octets >= 0x80 are let through so that a UTF-8 IDN is not refused here.
bool is_domain_name(std::string_view name);

// A user or group name as useradd(8) accepts it, or a numeric id.
bool is_user_name(std::string_view name);

struct Endpoint {
  std::string host;  // without brackets
  unsigned port = 0;
  bool loopback = false;  // 127.0.0.0/8, ::1 or "localhost"
};

// "127.0.0.1:2424", "[::1]:2424", "localhost:2424", "mx.example.com:2424".
Result<Endpoint> parse_endpoint(std::string_view text);

// Why a report.analysis.addresses pattern can never match, or nullopt when it is fine.
std::optional<std::string> check_address_pattern(std::string_view pattern);

}  // namespace mailreport::config::detail

// Private helpers of the config module: syntax checks of the values that are not plain
// numbers (domain names, user names, listener addresses, recipient patterns, mail addresses,
// header field names, DKIM canonicalization).
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

// A milter socket in libmilter's syntax (smfi_setconn(3)).
struct MilterSocket {
  enum class Family { Unix, Inet, Inet6 };
  Family family = Family::Unix;
  std::string path;       // Unix
  std::string host;       // Inet/Inet6: as written, without brackets; "" = every address
  unsigned port = 0;      // Inet/Inet6
  bool loopback = false;  // Unix, or an inet host on 127.0.0.0/8, ::1 or "localhost"
};

// "unix:/run/x.sock", "local:/run/x.sock", "/run/x.sock", "inet:8891@127.0.0.1",
// "inet:8891@[127.0.0.1]", "inet:8891@localhost", "inet:8891" (every address),
// "inet6:8891@[::1]", "inet6:8891@::1".
Result<MilterSocket> parse_milter_socket(std::string_view text);

// RFC 2045 §5.1 token (1*<CHAR except SPACE, CTLs and tspecials>): an RFC 8601 authserv-id
// written without quotes.
bool is_token(std::string_view text);

// A DNS owner name as DNS allows it (RFC 2181 §11: any octet; here printable ASCII without
// spaces), labels of 1-63 octets, at most 253 octets, an optional trailing dot.
bool is_dns_name(std::string_view name);

// Why a dns.nameservers entry ("192.0.2.53", "2001:db8::53", "127.0.0.1@5353") is not valid,
// or nullopt.
std::optional<std::string> check_nameserver(std::string_view text);

// Why a dns.local-data line cannot be an unbound local-data record, or nullopt. Only the shape
// is checked (NAME [TTL] [CLASS] TYPE RDATA); unbound itself checks the rest at start-up.
std::optional<std::string> check_local_data(std::string_view text);

// Why a report.analysis.addresses pattern can never match, or nullopt when it is fine.
std::optional<std::string> check_address_pattern(std::string_view pattern);

// Why `address` cannot be a plain mail address (local-part@domain, RFC 5321 §4.1.2 without
// quoted local-parts or address literals), or nullopt.
std::optional<std::string> check_mailbox(std::string_view address);

// RFC 5322 §3.6.8 field-name: 1*ftext (printable US-ASCII except ':').
bool is_field_name(std::string_view name);

// RFC 6376 §3.5 c=: "header/body" or "header" alone (the body then "simple"), each "simple" or
// "relaxed" (case-insensitive). Returns the canonical "header/body" form in lower case.
Result<std::string> parse_canonicalization(std::string_view text);

}  // namespace mailreport::config::detail

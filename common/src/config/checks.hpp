// Private helpers of the config module: syntax checks of the values that are not plain
// numbers (domain names, user names, listener addresses, recipient patterns, mail addresses,
// header field names, DKIM canonicalization, webhook URLs, event names, HTTP header fields and
// bearer tokens).
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
  bool loopback = false;    // 127.0.0.0/8, ::1 or "localhost"
  bool is_address = false;  // the host is an IP address literal (not a name)
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

// Why `url` is not an http:// or https:// URL with a host (an IP literal, [IPv6] or a domain
// name) and an optional port 1-65535, or nullopt. Only the scheme and the authority are checked
// (RFC 3986 §3.1, §3.2); the path and query are libcurl's. The URL in messages has its password
// masked.
std::optional<std::string> check_http_url(std::string_view url);

// A webhook event pattern: "*", "<name>.*" or a name; names are 1*[a-z0-9.-] without an empty
// dot-separated part ("dmarc.failures", "arf.auth-failure").
std::optional<std::string> check_event_pattern(std::string_view pattern);

// RFC 9110 §5.1 field-name: a token (§5.6.2: 1*tchar).
bool is_http_token(std::string_view text);

// RFC 9110 §5.5 field-value without CTLs other than HTAB (so no CR or LF: no header injection).
bool is_http_field_value(std::string_view text);

// RFC 6750 §2.1 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
bool is_bearer_token(std::string_view text);

}  // namespace mailreport::config::detail

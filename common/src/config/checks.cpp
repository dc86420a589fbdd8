// Syntax checks of configuration values: domain names, user names, listener addresses and
// recipient patterns.
#include "config/checks.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <strings.h>

#include <cctype>

namespace mailreport::config::detail {

namespace {

bool is_ldh(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' ||
         static_cast<unsigned char>(c) >= 0x80;
}

}  // namespace

bool is_domain_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  std::size_t start = 0;
  for (;;) {
    const auto dot = name.find('.', start);
    const std::string_view label =
        name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63) return false;
    if (label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!is_ldh(c)) return false;
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

bool is_user_name(std::string_view name) {
  if (name.empty() || name.size() > 32) return false;
  if (name.front() == '-') return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' ||
                    c == '-' || (c == '$' && i + 1 == name.size());
    if (!ok) return false;
  }
  return true;
}

Result<Endpoint> parse_endpoint(std::string_view text) {
  const auto bad = [&](std::string_view why) {
    return make_error(ErrorCode::Invalid, "'" + std::string(text) + "': " + std::string(why));
  };
  Endpoint ep;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return bad("missing ']' after the IPv6 address");
    ep.host = std::string(text.substr(1, close - 1));
    if (close + 1 >= text.size() || text[close + 1] != ':') {
      return bad("expected ':PORT' after ']'");
    }
    port = text.substr(close + 2);
    in6_addr a6{};
    if (inet_pton(AF_INET6, ep.host.c_str(), &a6) != 1) return bad("not an IPv6 address");
    // RFC 4291 §2.5.3: ::1 is the loopback address; ::ffff:127.x.y.z is IPv4 loopback mapped.
    ep.loopback = IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("expected HOST:PORT, e.g. 127.0.0.1:2424");
    ep.host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
    if (ep.host.find(':') != std::string::npos) {
      return bad("write an IPv6 address in brackets, e.g. [::1]:2424");
    }
    in_addr a4{};
    if (inet_pton(AF_INET, ep.host.c_str(), &a4) == 1) {
      // RFC 1122 §3.2.1.3: 127.0.0.0/8 is the loopback network.
      ep.loopback = (ntohl(a4.s_addr) >> 24) == 127;
    } else if (is_domain_name(ep.host)) {
      ep.loopback = strcasecmp(ep.host.c_str(), "localhost") == 0;
    } else {
      return bad("'" + ep.host + "' is not an address or a host name");
    }
  }
  if (port.empty() || port.size() > 5) return bad("the port must be a number from 0 to 65535 (0: any free port)");
  unsigned p = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return bad("the port must be a number from 0 to 65535 (0: any free port)");
    p = p * 10 + static_cast<unsigned>(c - '0');
  }
  if (p > 65535) return bad("the port must be a number from 0 to 65535 (0: any free port)");
  ep.port = p;
  return ep;
}

std::optional<std::string> check_address_pattern(std::string_view pattern) {
  if (pattern.empty()) return "empty pattern";
  const auto star = pattern.find('*');
  if (star != std::string_view::npos) {
    if (pattern.find('*', star + 1) != std::string_view::npos) {
      return "'" + std::string(pattern) + "': only one '*' is allowed, at the start or the end";
    }
    if (star != 0 && star + 1 != pattern.size()) {
      return "'" + std::string(pattern) + "': '*' is only allowed at the start or the end";
    }
  }
  // Tags are removed from addresses before matching, so a tag in a pattern never matches.
  const auto at = pattern.rfind('@');
  const auto plus = pattern.find('+');
  if (plus != std::string_view::npos && (at == std::string_view::npos || plus < at)) {
    return "'" + std::string(pattern) +
           "': never matches, because the +tag of an address is removed before matching";
  }
  return std::nullopt;
}

}  // namespace mailreport::config::detail

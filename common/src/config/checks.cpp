// Syntax checks of configuration values: domain names, user names, listener addresses,
// recipient patterns, mail addresses, header field names, DKIM canonicalization, webhook URLs
// (scheme and authority only, RFC 3986 §3.2; not a URL parser), webhook event patterns, HTTP
// header fields (RFC 9110 §5) and bearer tokens (RFC 6750 §2.1).
#include "config/checks.hpp"

#include "mailreport/config/config.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <strings.h>

#include <cctype>
#include <cstring>
#include <string>

namespace mailreport::config::detail {

namespace {

// "'" + text, for messages. Built by appending: g++ 12 at -O3 reports a false -Wrestrict for
// `"'" + std::string(text)` (GCC bug 105329), which broke Release builds with -Werror.
std::string open_quote(std::string_view text) {
  std::string s;
  s.reserve(text.size() + 1);
  s += '\'';
  s.append(text);
  return s;
}

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
    return make_error(ErrorCode::Invalid, open_quote(text) + "': " + std::string(why));
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
    ep.is_address = true;
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
      ep.is_address = true;
    } else if (is_domain_name(ep.host)) {
      ep.loopback = strcasecmp(ep.host.c_str(), "localhost") == 0;
    } else {
      return bad("'" + ep.host + "' is not an address or a host name");
    }
  }
  if (port.empty() || port.size() > 5)
    return bad("the port must be a number from 0 to 65535 (0: any free port)");
  unsigned p = 0;
  for (char c : port) {
    if (c < '0' || c > '9')
      return bad("the port must be a number from 0 to 65535 (0: any free port)");
    p = p * 10 + static_cast<unsigned>(c - '0');
  }
  if (p > 65535) return bad("the port must be a number from 0 to 65535 (0: any free port)");
  ep.port = p;
  return ep;
}

namespace {

bool is_loopback_host(const std::string& host, bool* is_address) {
  in_addr a4{};
  in6_addr a6{};
  *is_address = true;
  // RFC 1122 §3.2.1.3 and RFC 4291 §2.5.3.
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  if (inet_pton(AF_INET6, host.c_str(), &a6) == 1) {
    return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
  }
  *is_address = false;
  return strcasecmp(host.c_str(), "localhost") == 0;
}

}  // namespace

Result<MilterSocket> parse_milter_socket(std::string_view text) {
  const auto bad = [&](std::string_view why) {
    return make_error(ErrorCode::Invalid, open_quote(text) + "': " + std::string(why));
  };
  MilterSocket s;
  const auto colon = text.find(':');
  const std::string_view scheme =
      colon == std::string_view::npos ? std::string_view() : text.substr(0, colon);
  const std::string_view rest = colon == std::string_view::npos ? text : text.substr(colon + 1);
  const auto is = [&](const char* name) {
    return strncasecmp(scheme.data(), name, scheme.size()) == 0 &&
           scheme.size() == std::strlen(name);
  };
  if (colon == std::string_view::npos || is("unix") || is("local")) {
    s.family = MilterSocket::Family::Unix;
    s.path = std::string(rest);
    s.loopback = true;
    if (s.path.empty() || s.path.front() != '/') {
      return bad("a unix socket needs an absolute path, e.g. unix:/run/mailreport/milter.sock");
    }
    // sockaddr_un.sun_path is 108 bytes on Linux, with the terminating NUL.
    if (s.path.size() >= 108) return bad("the socket path is longer than 107 bytes");
    return s;
  }
  if (!is("inet") && !is("inet6")) {
    return bad("unknown socket type '" + std::string(scheme) +
               "'; use unix:/PATH, inet:PORT@HOST or inet6:PORT@[ADDRESS]");
  }
  s.family = is("inet") ? MilterSocket::Family::Inet : MilterSocket::Family::Inet6;
  const auto at = rest.find('@');
  const std::string_view port = rest.substr(0, at);
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string_view::npos) {
    return bad("expected PORT@HOST with a port number from 1 to 65535, e.g. inet:8891@127.0.0.1");
  }
  s.port = static_cast<unsigned>(std::stoul(std::string(port)));
  if (s.port == 0 || s.port > 65535) return bad("the port must be a number from 1 to 65535");
  if (at == std::string_view::npos) return s;  // every address: not loopback
  std::string_view host = rest.substr(at + 1);
  const bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
  if (bracketed) host = host.substr(1, host.size() - 2);
  s.host = std::string(host);
  if (s.host.empty()) return bad("empty host after '@'");
  bool is_address = false;
  s.loopback = is_loopback_host(s.host, &is_address);
  if (bracketed && !is_address) return bad("'[" + s.host + "]' is not an IP address");
  if (is_address) {
    in6_addr a6{};
    const bool v6 = inet_pton(AF_INET6, s.host.c_str(), &a6) == 1;
    if (v6 && s.family == MilterSocket::Family::Inet) {
      return bad("an IPv6 address needs inet6:, e.g. inet6:8891@[::1]");
    }
    if (!v6 && s.family == MilterSocket::Family::Inet6) {
      return bad("an IPv4 address needs inet:, e.g. inet:8891@127.0.0.1");
    }
  } else if (!is_domain_name(s.host)) {
    return bad("'" + s.host + "' is not an address or a host name");
  }
  return s;
}

bool is_token(std::string_view text) {
  if (text.empty()) return false;
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7f) return false;
    if (std::string_view("()<>@,;:\\\"/[]?=").find(ch) != std::string_view::npos) return false;
  }
  return true;
}

bool is_dns_name(std::string_view name) {
  if (name.size() > 1 && name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() > 253) return false;
  std::size_t label = 0;
  for (char ch : name) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7f) return false;
    if (ch == '.') {
      if (label == 0) return false;
      label = 0;
    } else if (++label > 63) {
      return false;
    }
  }
  return label > 0;
}

std::optional<std::string> check_nameserver(std::string_view text) {
  const std::string s(text);
  const auto at = s.find('@');
  const std::string host = s.substr(0, at);
  in_addr a4{};
  in6_addr a6{};
  if (inet_pton(AF_INET, host.c_str(), &a4) != 1 && inet_pton(AF_INET6, host.c_str(), &a6) != 1) {
    return "'" + s +
           "': not an IP address (a nameserver is ADDRESS or ADDRESS@PORT, e.g. 192.0.2.53 or "
           "127.0.0.1@5353)";
  }
  if (at != std::string::npos) {
    const std::string port = s.substr(at + 1);
    if (port.empty() || port.size() > 5 ||
        port.find_first_not_of("0123456789") != std::string::npos || std::stoul(port) == 0 ||
        std::stoul(port) > 65535) {
      return "'" + s + "': the port after '@' must be a number from 1 to 65535";
    }
  }
  return std::nullopt;
}

std::optional<std::string> check_local_data(std::string_view text) {
  std::size_t fields = 0;
  std::string_view first;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    if (i >= text.size()) break;
    const std::size_t start = i;
    while (i < text.size() && text[i] != ' ' && text[i] != '\t') ++i;
    if (fields++ == 0) first = text.substr(start, i - start);
    if (fields >= 3) break;
  }
  if (fields < 3) {
    return open_quote(text) +
           "': expected NAME [TTL] [CLASS] TYPE DATA (unbound's local-data syntax), e.g. "
           "\"_dmarc.example.com. 300 IN TXT \\\"v=DMARC1; p=none\\\"\"";
  }
  if (!is_dns_name(first)) return open_quote(first) + "' is not a DNS name";
  return std::nullopt;
}

std::optional<std::string> check_address_pattern(std::string_view pattern) {
  if (pattern.empty()) return "empty pattern";
  const auto star = pattern.find('*');
  if (star != std::string_view::npos) {
    if (pattern.find('*', star + 1) != std::string_view::npos) {
      return open_quote(pattern) + "': only one '*' is allowed, at the start or the end";
    }
    if (star != 0 && star + 1 != pattern.size()) {
      return open_quote(pattern) + "': '*' is only allowed at the start or the end";
    }
  }
  // Tags are removed from addresses before matching, so a tag in a pattern never matches.
  const auto at = pattern.rfind('@');
  const auto plus = pattern.find('+');
  if (plus != std::string_view::npos && (at == std::string_view::npos || plus < at)) {
    return open_quote(pattern) +
           "': never matches, because the +tag of an address is removed before matching";
  }
  return std::nullopt;
}

std::optional<std::string> check_mailbox(std::string_view address) {
  const auto at = address.rfind('@');
  if (at == std::string_view::npos || at == 0) {
    return open_quote(address) + "' is not a mail address (local-part@domain)";
  }
  // RFC 5321 §4.1.2 Dot-string: atext and dots. Quoted local-parts are not supported here.
  for (char c : address.substr(0, at)) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= ' ' || u == 0x7f || std::strchr("\"(),:;<>@[\\]", c) != nullptr) {
      return open_quote(address) + "': the local-part may not contain '" + std::string(1, c) + "'";
    }
  }
  if (!is_domain_name(address.substr(at + 1))) {
    return open_quote(address) + "': '" + std::string(address.substr(at + 1)) +
           "' is not a domain name";
  }
  return std::nullopt;
}

bool is_field_name(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 33 || u > 126 || c == ':') return false;
  }
  return true;
}

Result<std::string> parse_canonicalization(std::string_view text) {
  const auto slash = text.find('/');
  std::string header(text.substr(0, slash));
  std::string body(slash == std::string_view::npos ? "simple" : text.substr(slash + 1));
  for (std::string* s : {&header, &body}) {
    for (char& c : *s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (*s != "simple" && *s != "relaxed") {
      return make_error(ErrorCode::Invalid,
                        open_quote(text) +
                            "': must be header/body, each \"simple\" or \"relaxed\" "
                            "(e.g. \"relaxed/relaxed\")");
    }
  }
  return header + "/" + body;
}

namespace {

bool is_port(std::string_view port) {
  if (port.empty() || port.size() > 5) return false;
  unsigned p = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
    p = p * 10 + static_cast<unsigned>(c - '0');
  }
  return p >= 1 && p <= 65535;
}

bool ascii_istarts_with(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() &&
         strncasecmp(text.data(), prefix.data(), prefix.size()) == 0;
}

}  // namespace

std::optional<std::string> check_http_url(std::string_view url) {
  const std::string shown = "'" + mask_url_password(url) + "'";
  for (char c : url) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return shown + ": must not contain spaces or control characters";
  }
  // RFC 3986 §3.1: the scheme is case-insensitive.
  std::size_t start = 0;
  if (ascii_istarts_with(url, "https://")) {
    start = 8;
  } else if (ascii_istarts_with(url, "http://")) {
    start = 7;
  } else {
    return shown + ": must be an http:// or https:// URL, e.g. \"https://hooks.example.com/mail\"";
  }
  // RFC 3986 §3.2: the authority ends at the first '/', '?' or '#'; userinfo ends at its '@'.
  std::size_t end = url.find_first_of("/?#", start);
  if (end == std::string_view::npos) end = url.size();
  std::string_view hostport = url.substr(start, end - start);
  if (const auto at = hostport.rfind('@'); at != std::string_view::npos) {
    hostport.remove_prefix(at + 1);
  }
  if (hostport.empty()) return shown + ": has no host";
  std::string host;
  std::string_view port;
  bool has_port = false;
  if (hostport.front() == '[') {
    const auto close = hostport.find(']');
    if (close == std::string_view::npos) return shown + ": missing ']' after the IPv6 address";
    host = std::string(hostport.substr(1, close - 1));
    in6_addr a6{};
    if (inet_pton(AF_INET6, host.c_str(), &a6) != 1) {
      return shown + ": '[" + host + "]' is not an IPv6 address";
    }
    const std::string_view rest = hostport.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return shown + ": expected ':PORT' after ']'";
      port = rest.substr(1);
      has_port = true;
    }
  } else {
    const auto colon = hostport.find(':');
    host = std::string(hostport.substr(0, colon));
    if (colon != std::string_view::npos) {
      port = hostport.substr(colon + 1);
      has_port = true;
    }
    in_addr a4{};
    if (host.empty()) return shown + ": has no host";
    if (inet_pton(AF_INET, host.c_str(), &a4) != 1 && !is_domain_name(host)) {
      return shown + ": '" + host + "' is not a host name or an IP address";
    }
  }
  if (has_port && !is_port(port)) return shown + ": the port must be a number from 1 to 65535";
  return std::nullopt;
}

std::optional<std::string> check_event_pattern(std::string_view pattern) {
  if (pattern == "*") return std::nullopt;
  std::string_view name = pattern;
  if (name.ends_with(".*")) name.remove_suffix(2);
  bool ok = !name.empty() && name.front() != '.' && name.back() != '.' &&
            name.find("..") == std::string_view::npos;
  for (char c : name) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-');
  }
  if (ok) return std::nullopt;
  return open_quote(pattern) +
         "' is not an event name or pattern: \"*\", \"dmarc.*\" or a name such as "
         "\"dmarc.failures\" (lower-case letters, digits, '.' and '-')";
}

bool is_http_token(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    // RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
    // "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA.
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
    if (!ok || c == '\0') return false;
  }
  return true;
}

bool is_http_field_value(std::string_view text) {
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return false;
  }
  return true;
}

bool is_bearer_token(std::string_view text) {
  std::size_t i = 0;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
    if (!ok) break;
  }
  if (i == 0) return false;
  for (; i < text.size(); ++i) {
    if (text[i] != '=') return false;
  }
  return true;
}

}  // namespace mailreport::config::detail

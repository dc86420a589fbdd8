// IP networks in CIDR notation (RFC 4632 §3.1 for IPv4, RFC 4291 §2.3 for IPv6) for
// milter.trusted-networks, and the lookup of a client address in them.
// Not done: host names (a trusted network is always written as addresses).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <string>

#include "mailreport/config/config.hpp"

namespace mailreport::config {

namespace {

struct Address {
  int family = 0;
  std::array<std::uint8_t, 16> bytes{};
};

std::optional<Address> parse_address(std::string_view text) {
  const std::string s(text);
  Address a;
  in_addr v4{};
  in6_addr v6{};
  if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
    a.family = AF_INET;
    std::memcpy(a.bytes.data(), &v4, 4);
    return a;
  }
  if (inet_pton(AF_INET6, s.c_str(), &v6) == 1) {
    // RFC 4291 §2.5.5.2: an IPv4-mapped address is the IPv4 host it carries.
    if (IN6_IS_ADDR_V4MAPPED(&v6)) {
      a.family = AF_INET;
      std::memcpy(a.bytes.data(), &v6.s6_addr[12], 4);
      return a;
    }
    a.family = AF_INET6;
    std::memcpy(a.bytes.data(), &v6, 16);
    return a;
  }
  return std::nullopt;
}

bool prefix_matches(const std::array<std::uint8_t, 16>& a, const std::array<std::uint8_t, 16>& b,
                    unsigned prefix) {
  const unsigned whole = prefix / 8;
  if (std::memcmp(a.data(), b.data(), whole) != 0) return false;
  const unsigned rest = prefix % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

}  // namespace

Result<NetworkList> NetworkList::parse(const std::vector<std::string>& cidrs) {
  NetworkList list;
  for (const std::string& text : cidrs) {
    const auto bad = [&](std::string_view why) {
      return make_error(ErrorCode::Invalid, "'" + text + "': " + std::string(why));
    };
    const auto slash = text.find('/');
    const std::string_view addr_text = std::string_view(text).substr(0, slash);
    if (addr_text.find(':') != std::string_view::npos && addr_text.starts_with("::ffff:") &&
        addr_text.find('.') != std::string_view::npos) {
      return bad("write an IPv4 network as IPv4 (a.b.c.d/N)");
    }
    auto addr = parse_address(addr_text);
    if (!addr) return bad("not an IP address or network (e.g. 192.0.2.0/24, 2001:db8::/32)");
    const unsigned max = addr->family == AF_INET ? 32 : 128;
    unsigned prefix = max;
    if (slash != std::string::npos) {
      const std::string_view p = std::string_view(text).substr(slash + 1);
      if (p.empty() || p.size() > 3) return bad("the prefix length must be a number");
      prefix = 0;
      for (char c : p) {
        if (c < '0' || c > '9') return bad("the prefix length must be a number");
        prefix = prefix * 10 + static_cast<unsigned>(c - '0');
      }
      if (prefix > max) {
        return bad("the prefix length must be at most " + std::to_string(max));
      }
    }
    Net net{addr->family, {}, prefix};
    // The host bits must be zero: "192.0.2.1/24" is most likely a typo for a host or a net.
    const unsigned bytes = max / 8;
    for (unsigned bit = prefix; bit < max; ++bit) {
      if (addr->bytes[bit / 8] & (0x80u >> (bit % 8))) {
        return bad("has host bits set beyond the /" + std::to_string(prefix) +
                   " prefix (did you mean the network address?)");
      }
    }
    std::memcpy(net.bytes.data(), addr->bytes.data(), bytes);
    list.nets_.push_back(net);
    list.texts_.push_back(text);
  }
  return list;
}

NetworkList NetworkList::loopback() {
  static const NetworkList built = [] {
    auto r = parse({"127.0.0.0/8", "::1/128"});
    return std::move(r).value();
  }();
  return built;
}

bool NetworkList::contains(std::string_view ip) const {
  auto addr = parse_address(ip);
  if (!addr) return false;
  for (const Net& n : nets_) {
    if (n.family == addr->family && prefix_matches(n.bytes, addr->bytes, n.prefix)) return true;
  }
  return false;
}

}  // namespace mailreport::config

// dns: typed views of Answer::rdata (RFC 1035 §3.3 for names, MX, TXT and PTR; RFC 3596 for
// AAAA; RFC 7505 for the null MX). Names are decoded with libresolv's dn_expand (the RDATA we get
// from libunbound has its names uncompressed, so the RDATA itself serves as the "message"),
// addresses with inet_ntop. Records that do not decode are skipped.
#include <arpa/inet.h>
#include <resolv.h>

#include <algorithm>
#include <cctype>

#include "mailreport/dns/resolver.hpp"

namespace mailreport::dns {
namespace {

using Rdata = std::vector<std::uint8_t>;

// Decodes the domain name at `offset` in `rd`; returns false when it is not a valid name.
// `used` receives the octets it took. The result is lower case, without the trailing dot, and ""
// for the root.
bool decode_name(const Rdata& rd, std::size_t offset, std::string& out, std::size_t& used) {
  char buf[NS_MAXDNAME];
  if (offset >= rd.size()) return false;
  int n = ::dn_expand(rd.data(), rd.data() + rd.size(), rd.data() + offset, buf, sizeof buf);
  if (n < 0) return false;
  used = static_cast<std::size_t>(n);
  out.assign(buf);
  if (out == ".") out.clear();  // dn_expand spells the root "."; some versions give ""
  if (!out.empty() && out.back() == '.') out.pop_back();
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return true;
}

}  // namespace

std::vector<std::string> txt_records(const Answer& answer) {
  std::vector<std::string> out;
  if (answer.status != Status::Ok) return out;
  for (const auto& rd : answer.rdata) {
    // RFC 1035 §3.3.14: one or more <character-string>s, each a length octet and that many
    // octets; joined with nothing between them (RFC 7208 §3.3, RFC 6376 §3.6.2.2).
    std::string text;
    std::size_t i = 0;
    bool ok = !rd.empty();
    while (i < rd.size()) {
      std::size_t len = rd[i++];
      if (len > rd.size() - i) {
        ok = false;
        break;
      }
      text.append(reinterpret_cast<const char*>(rd.data() + i), len);
      i += len;
    }
    if (ok) out.push_back(std::move(text));
  }
  return out;
}

std::vector<std::string> addresses(const Answer& answer) {
  std::vector<std::string> out;
  if (answer.status != Status::Ok) return out;
  for (const auto& rd : answer.rdata) {
    char buf[INET6_ADDRSTRLEN];
    int family = rd.size() == 4 ? AF_INET : rd.size() == 16 ? AF_INET6 : 0;
    if (family == 0) continue;
    if (::inet_ntop(family, rd.data(), buf, sizeof buf)) out.emplace_back(buf);
  }
  return out;
}

std::vector<std::string> names(const Answer& answer) {
  std::vector<std::string> out;
  if (answer.status != Status::Ok) return out;
  for (const auto& rd : answer.rdata) {
    std::string name;
    std::size_t used = 0;
    if (decode_name(rd, 0, name, used) && used == rd.size()) out.push_back(std::move(name));
  }
  return out;
}

std::vector<Mx> mx_records(const Answer& answer) {
  std::vector<Mx> out;
  if (answer.status != Status::Ok) return out;
  for (const auto& rd : answer.rdata) {
    // RFC 1035 §3.3.9: PREFERENCE (16 bits) then EXCHANGE; RFC 7505: "0 ." is a null MX.
    if (rd.size() < 3) continue;
    Mx mx;
    mx.preference = static_cast<std::uint16_t>((rd[0] << 8) | rd[1]);
    std::size_t used = 0;
    if (decode_name(rd, 2, mx.exchange, used) && used == rd.size() - 2) out.push_back(mx);
  }
  return out;
}

}  // namespace mailreport::dns

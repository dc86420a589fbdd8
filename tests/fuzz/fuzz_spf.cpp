// Fuzzes SPF evaluation of untrusted DNS data and identities: the input is split at NULs into
// an SPF record (published as TXT at fz.example and at inc.fz.example, so include:, redirect=
// and exp= have somewhere to go), the HELO name, the MAIL FROM address and the client IP.
// libspf2 compiles and runs the record (macros, mechanisms, limits) through our DNS layer.
// Each input gets its own libunbound resolver with local data only: nothing leaves the host.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "mailreport/auth/spf.hpp"
#include "mailreport/dns/resolver.hpp"

namespace {

// The record as an unbound local-data TXT line: character-strings of at most 255 octets,
// every byte that is not plain printable ASCII written as \DDD (RFC 1035 §5.1).
std::string txt_line(const std::string& owner, std::string_view value) {
  std::string line = owner + " 300 IN TXT";
  std::size_t i = 0;
  do {
    std::string_view part = value.substr(i, 255);
    line += " \"";
    for (char c : part) {
      auto u = static_cast<unsigned char>(c);
      if (u >= 0x20 && u < 0x7f && c != '"' && c != '\\') {
        line += c;
      } else {
        char buf[5];
        std::snprintf(buf, sizeof buf, "\\%03u", static_cast<unsigned>(u));
        line += buf;
      }
    }
    line += '"';
    i += 255;
  } while (i < value.size());
  return line;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static mailreport::NullLogger log;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> parts;
  for (std::size_t pos = 0; parts.size() < 4;) {
    std::size_t nul = in.find('\0', pos);
    parts.push_back(in.substr(pos, nul == std::string_view::npos ? nul : nul - pos));
    if (nul == std::string_view::npos) break;
    pos = nul + 1;
  }
  parts.resize(4);
  if (parts[0].size() > 4096) return 0;

  mailreport::dns::ResolverOptions o;
  o.local_only = true;
  o.timeout = std::chrono::milliseconds(200);
  o.local_data = {
      txt_line("fz.example.", parts[0]),
      txt_line("inc.fz.example.", parts[0]),
      "fz.example. 300 IN A 192.0.2.1",
      "fz.example. 300 IN AAAA 2001:db8::1",
      "fz.example. 300 IN MX 10 mx.fz.example.",
      "mx.fz.example. 300 IN A 192.0.2.2",
      "1.2.0.192.in-addr.arpa. 300 IN PTR fz.example.",
  };
  auto r = mailreport::dns::make_unbound_resolver(o, log);
  if (!r) return 0;  // unbound refused the line: nothing to evaluate
  auto spf = mailreport::auth::SpfVerifier::create(*r, "mx.receiver.example", log);
  if (!spf) return 0;
  std::string helo = parts[1].empty() ? "fz.example" : std::string(parts[1]);
  std::string from = parts[2].empty() ? "user@fz.example" : std::string(parts[2]);
  std::string ip = parts[3].empty() ? "192.0.2.1" : std::string(parts[3]);
  (void)(*spf)->check(ip, helo, from);
  return 0;
}

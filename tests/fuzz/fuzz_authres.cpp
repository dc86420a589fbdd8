// Fuzzes the Authentication-Results reader (RFC 8601) and checks the writer against it: what
// we write from any verdicts the reader produced must read back with the same results.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "mailreport/auth/authres.hpp"

using namespace mailreport::auth;

namespace {
// The writer turns control characters into spaces (they must not reach a header), so values
// holding them cannot come back unchanged.
bool clean(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return false;
  }
  return true;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)authserv_id_of(in);
  auto parsed = parse_authentication_results(in);
  if (!parsed) return 0;
  TrustedVerdicts t = verdicts_from(*parsed);

  Evaluation e;
  e.spf = t.spf;
  e.dkim = t.dkim;
  e.dmarc.result = t.dmarc.value_or(DmarcResult::None);
  e.dmarc.header_from = t.dmarc_header_from;
  auto again = parse_authentication_results(format_authentication_results("mx.example.org", e));
  if (!again) __builtin_trap();
  TrustedVerdicts back = verdicts_from(*again);
  if (back.spf.size() != t.spf.size()) __builtin_trap();
  for (std::size_t i = 0; i < t.spf.size(); ++i) {
    if (back.spf[i].result != t.spf[i].result || back.spf[i].scope != t.spf[i].scope) {
      __builtin_trap();
    }
  }
  if (!t.dkim.empty()) {
    if (back.dkim.size() != t.dkim.size()) __builtin_trap();
    for (std::size_t i = 0; i < t.dkim.size(); ++i) {
      if (back.dkim[i].result != t.dkim[i].result) __builtin_trap();
      if (clean(t.dkim[i].domain) && back.dkim[i].domain != t.dkim[i].domain) __builtin_trap();
      if (clean(t.dkim[i].header_b) && back.dkim[i].header_b != t.dkim[i].header_b) {
        __builtin_trap();
      }
    }
  }
  if (back.dmarc != e.dmarc.result) __builtin_trap();
  return 0;
}

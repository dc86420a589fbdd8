// Fuzzes the DMARC policy record parser (RFC 9989 §4.7, RFC 7489 §6.3): the input is the TXT
// record text as DNS would hand it, attacker-controlled. A record that parses must hold values
// inside their ranges, and its own text must parse again to the same policy.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "mailreport/auth/dmarc.hpp"

using namespace mailreport::auth;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto r = parse_dmarc_record(in);
  if (!r) return 0;
  if (r->pct < 0 || r->pct > 100) std::abort();
  if (r->psd != 'y' && r->psd != 'n' && r->psd != 'u') std::abort();
  auto again = parse_dmarc_record(r->text);
  if (!again || again->p != r->p || again->sp != r->sp || again->np != r->np ||
      again->rua != r->rua || again->ruf != r->ruf || again->pct != r->pct) {
    std::abort();
  }
  return 0;
}

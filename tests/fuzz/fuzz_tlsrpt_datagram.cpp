// Fuzzes the libtlsrpt datagram parser (the TLS-RPT collector's input) with arbitrary bytes.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "mailreport/report/tlsrpt_datagram.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  (void)mailreport::report::parse_tlsrpt_datagram(
      std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}

// Fuzzes the streaming DMARC aggregate XML parser with arbitrary bytes.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "mailreport/report/dmarc_xml.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  mailreport::MemorySource src(std::string_view(reinterpret_cast<const char*>(data), size));
  mailreport::report::CollectingSink sink;
  (void)mailreport::report::parse_dmarc_xml(src, sink);
  return 0;
}

// Fuzzes the TLS-RPT JSON parser with arbitrary bytes.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "mailreport/report/json.hpp"
#include "mailreport/report/tlsrpt_json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto r = mailreport::report::parse_tlsrpt_json(
      std::string_view(reinterpret_cast<const char*>(data), size));
  if (r)
    (void)mailreport::report::to_json(*r).dump(
        -1, ' ', false, nlohmann::json::error_handler_t::replace);  // as the CLI renders
  return 0;
}

// Fuzzes the whole extraction path (sniffing, MIME, gzip, zip, every parser) with arbitrary
// bytes as a received message, with small limits so that bombs are cut short.
#include <cstddef>
#include <cstdint>
#include <string>

#include "mailreport/report/extract.hpp"
#include "mailreport/report/json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto input =
      mailreport::Input::from_memory(std::string(reinterpret_cast<const char*>(data), size));
  mailreport::report::CollectingSink sink;
  mailreport::report::ExtractLimits limits;
  limits.max_decompressed_bytes = 8u << 20;
  (void)mailreport::report::extract_reports(input, sink, limits);
  for (const auto& r : sink.reports())
    (void)mailreport::report::to_json(r).dump(
        -1, ' ', false, nlohmann::json::error_handler_t::replace);  // as the CLI renders
  return 0;
}

// Fuzzes the configuration loader (TOML, expressions, value checks).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "mailreport/config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  (void)mailreport::config::load_string(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}

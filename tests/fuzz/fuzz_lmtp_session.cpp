// Fuzzes the LMTP command reader and protocol engine with arbitrary client bytes.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "mailreport/lmtp/session.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  mailreport::lmtp::fuzz_session(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}

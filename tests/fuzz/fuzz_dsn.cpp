// Fuzzes the DSN (RFC 3464) parser: the input is split at the first NUL into the
// message/delivery-status body and the returned message part.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "mailreport/report/dsn.hpp"
#include "mailreport/report/json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  mailreport::report::DsnParts parts;
  auto nul = in.find('\0');
  parts.delivery_status = in.substr(0, nul);
  if (nul != std::string_view::npos) parts.original = in.substr(nul + 1);
  auto r = mailreport::report::parse_dsn(parts);
  if (r)
    (void)mailreport::report::to_json(*r).dump(
        -1, ' ', false, nlohmann::json::error_handler_t::replace);  // as the CLI renders
  return 0;
}

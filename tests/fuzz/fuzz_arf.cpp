// Fuzzes the ARF field parser: the input is split at the first NUL into the
// message/feedback-report body and the original message part.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "mailreport/report/arf.hpp"
#include "mailreport/report/json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  mailreport::report::ArfParts parts;
  auto nul = in.find('\0');
  parts.feedback_report = in.substr(0, nul);
  if (nul != std::string_view::npos) {
    parts.original = in.substr(nul + 1);
    parts.original_type = "text/rfc822-headers";
  }
  auto r = mailreport::report::parse_arf(parts);
  if (r)
    (void)mailreport::report::to_json(*r).dump(
        -1, ' ', false, nlohmann::json::error_handler_t::replace);  // as the CLI renders
  return 0;
}

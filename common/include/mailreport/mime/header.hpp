// Header-field blocks (RFC 5322 §2.2 syntax) as they appear in message headers, in
// message/feedback-report bodies (RFC 5965 §3.1) and in message/delivery-status groups
// (RFC 3464 §2.1). Parsing is GMime's; this module only adapts it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mailreport::mime {

struct HeaderField {
  std::string name;   // as sent (case preserved)
  std::string value;  // unfolded; RFC 2047 encoded-words decoded
};

// Parses a block of header fields (no body). Folded lines are unfolded, repeated fields are
// kept in order, a trailing body after the first blank line is ignored. Never fails: lines
// that are not fields are skipped.
std::vector<HeaderField> parse_header_fields(std::string_view block);

// Case-insensitive lookup helpers.
const HeaderField* find_field(const std::vector<HeaderField>& fields, std::string_view name);
std::vector<std::string> all_values(const std::vector<HeaderField>& fields, std::string_view name);

// Calls g_mime_init() once per process (thread-safe). Every mime entry point calls it.
void ensure_initialized();

}  // namespace mailreport::mime

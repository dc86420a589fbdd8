// Small text helpers shared by the ARF (RFC 5965) and DSN (RFC 3464) parsers: field blocks
// with any line ending, RFC 5322 comments, "type; value" fields, IP addresses in free text.
// Header syntax itself is GMime's (mime::parse_header_fields); these only prepare its input
// and tidy its output.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mailreport/mime/header.hpp"

namespace mailreport::report::fieldtext {

std::string_view trim(std::string_view s) noexcept;
std::string lower(std::string_view s);
bool iequals(std::string_view a, std::string_view b) noexcept;
// Case-insensitive substring search.
bool icontains(std::string_view haystack, std::string_view needle) noexcept;

// CRLF and bare CR become LF (the corpus has all three conventions).
std::string normalize_newlines(std::string_view text);

// Splits text at blank (empty or whitespace-only) lines. Input must use LF line endings.
// Empty groups are dropped.
std::vector<std::string_view> split_blocks(std::string_view text);

// Parses a header-field block with GMime after normalising line endings and dropping leading
// lines that are not header fields (GMime gives up on a block that starts with one).
std::vector<mime::HeaderField> parse_fields(std::string_view block);

// Removes RFC 5322 §3.2.2 comments ("(...)", nested, with quoted-pairs; quoted strings left
// alone) and trims.
std::string strip_comments(std::string_view s);

// RFC 3464 §2.1.2 / RFC 5965 §3.2: "type ; value" (mta-name-type, address-type,
// diagnostic-type). `type` is lower-cased and empty when the text has no leading
// "token ;" (then `value` is the whole trimmed text).
struct Typed {
  std::string type;
  std::string value;
};
Typed split_typed(std::string_view s);

// The first IPv4 or IPv6 address in free text (validated with inet_pton), or nullopt.
std::optional<std::string> find_ip(std::string_view text);

// At most max_bytes of s, cut back to a UTF-8 character boundary.
std::string bounded_utf8(std::string_view s, std::size_t max_bytes);

}  // namespace mailreport::report::fieldtext

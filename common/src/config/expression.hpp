// The expression grammar of configuration values (a small subset of Stalwart's):
//
//   expression = term *( "+" term )          ; whitespace allowed around terms and "+"
//   term       = literal / "config_get" "(" literal ")"
//   literal    = "'" *( char / "\'" / "\\" ) "'"
//
// e.g.  'noreply-dmarc@' + config_get('report.domain')
// A TOML string that contains no single quote and no "config_get" is not an expression: it is
// taken as written. This is not TOML (toml++ has parsed the file before we get here); it is the
// language inside one TOML string.
//
// Not done: Stalwart's other functions, operators, variables and if/then/else arrays.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "mailreport/util/result.hpp"

namespace mailreport::config::detail {

struct Term {
  enum class Kind { Literal, ConfigGet };
  Kind kind = Kind::Literal;
  std::string text;  // the literal's text, or the key that config_get names
};

// True when `text` is to be read as an expression rather than taken as written.
bool looks_like_expression(std::string_view text);

// Parses an expression into its terms; the error names the 1-based column.
Result<std::vector<Term>> parse_expression(std::string_view text);

}  // namespace mailreport::config::detail

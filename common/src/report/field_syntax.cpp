// Text helpers for the ARF and DSN parsers; see field_syntax.hpp.
#include "report/field_syntax.hpp"

#include <arpa/inet.h>

#include <glib.h>

#include <algorithm>
#include <cctype>
#include <memory>

namespace mailreport::report::fieldtext {

namespace {
bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}
char lc(char c) {
  return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}
}  // namespace

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), lc);
  return out;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lc(x) == lc(y); });
}

bool icontains(std::string_view haystack, std::string_view needle) noexcept {
  return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(),
                     [](char x, char y) { return lc(x) == lc(y); }) != haystack.end() ||
         needle.empty();
}

std::string normalize_newlines(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

std::vector<std::string_view> split_blocks(std::string_view text) {
  std::vector<std::string_view> blocks;
  std::size_t start = 0;  // start of the current block
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    const std::string_view line = text.substr(pos, eol - pos);
    if (trim(line).empty()) {
      if (pos > start) blocks.push_back(text.substr(start, pos - start));
      start = eol + 1;
    }
    pos = eol + 1;
  }
  if (start < text.size()) blocks.push_back(text.substr(start));
  return blocks;
}

namespace {
// RFC 5322 §3.6.8: field-name = 1*ftext (printable US-ASCII except ":"), then ":"; §4.5.3
// (obs-optional) also allows white space before the colon ("Status : 5.0.0", Mimecast).
bool looks_like_field(std::string_view line) {
  const std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) return false;
  std::string_view name = line.substr(0, colon);
  while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
  if (name.empty()) return false;
  for (char ch : name) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 32 || c >= 127) return false;
  }
  return true;
}
}  // namespace

std::vector<mime::HeaderField> parse_fields(std::string_view block) {
  const std::string text = normalize_newlines(block);
  std::string_view rest = text;
  // Leading lines that are neither fields nor blank (prose, an mbox "From " line) would make
  // GMime see no header at all; blank lines would end the header before it starts.
  while (!rest.empty()) {
    const std::size_t eol = rest.find('\n');
    const std::string_view line = rest.substr(0, eol);
    if (looks_like_field(line)) break;
    rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 1);
  }
  // Inside the header, a line that is neither a field nor a continuation is taken as a
  // continuation of the field above: multi-line SMTP replies in Diagnostic-Code are often
  // pasted without the leading white space (e.g. "550-..." lines from MessageLabs).
  std::string fixed;
  fixed.reserve(rest.size() + 16);
  while (!rest.empty()) {
    const std::size_t eol = rest.find('\n');
    const std::string_view line = rest.substr(0, eol);
    if (trim(line).empty()) break;  // end of the header block; a body is ignored
    if (!looks_like_field(line) && line.front() != ' ' && line.front() != '\t') {
      fixed.push_back(' ');
    }
    fixed.append(line);
    fixed.push_back('\n');
    rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 1);
  }
  return mime::parse_header_fields(fixed);
}

std::string strip_comments(std::string_view s) {
  std::string out;
  int depth = 0;
  bool quoted = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '\\' && (depth > 0 || quoted) && i + 1 < s.size()) {
      if (depth == 0) {
        out.push_back(c);
        out.push_back(s[i + 1]);
      }
      ++i;
      continue;
    }
    if (depth == 0 && c == '"') {
      quoted = !quoted;
      out.push_back(c);
    } else if (!quoted && c == '(') {
      ++depth;
    } else if (!quoted && c == ')' && depth > 0) {
      --depth;
    } else if (depth == 0) {
      out.push_back(c);
    }
  }
  return std::string(trim(out));
}

Typed split_typed(std::string_view s) {
  s = trim(s);
  Typed out;
  const std::size_t semi = s.find(';');
  if (semi != std::string_view::npos) {
    const std::string_view type = trim(s.substr(0, semi));
    const bool token = !type.empty() && std::all_of(type.begin(), type.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
    });
    if (token) {
      out.type = lower(type);
      out.value = std::string(trim(s.substr(semi + 1)));
      return out;
    }
  }
  out.value = std::string(s);
  return out;
}

std::optional<std::string> find_ip(std::string_view text) {
  auto ip_char = [](char c) {
    return std::isxdigit(static_cast<unsigned char>(c)) || c == '.' || c == ':';
  };
  std::size_t i = 0;
  while (i < text.size()) {
    if (!ip_char(text[i])) {
      ++i;
      continue;
    }
    // "IP:192.0.2.1": a lone ':' is punctuation, "::1" is an address.
    if (text[i] == ':' && (i + 1 >= text.size() || text[i + 1] != ':')) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < text.size() && ip_char(text[j])) ++j;
    // A token glued to letters ("abc1.2.3.4", "host1.example") is part of a name.
    const bool glued =
        (i > 0 && std::isalpha(static_cast<unsigned char>(text[i - 1]))) ||
        (j < text.size() && (std::isalnum(static_cast<unsigned char>(text[j])) || text[j] == '-'));
    std::string token(text.substr(i, j - i));
    while (!token.empty() && (token.back() == '.' || token.back() == ':')) token.pop_back();
    if (!glued && !token.empty()) {
      unsigned char buf[16];
      if (inet_pton(AF_INET, token.c_str(), buf) == 1) return token;
      if (token.find(':') != std::string::npos && inet_pton(AF_INET6, token.c_str(), buf) == 1) {
        return token;
      }
    }
    i = j;
  }
  return std::nullopt;
}

std::string bounded_utf8(std::string_view s, std::size_t max_bytes) {
  if (!g_utf8_validate(s.data(), static_cast<gssize>(s.size()), nullptr)) {
    // Invalid sequences become U+FFFD (the text may be in any charset, or cut short).
    std::unique_ptr<gchar, decltype(&g_free)> fixed(
        g_utf8_make_valid(s.data(), static_cast<gssize>(s.size())), &g_free);
    return bounded_utf8(fixed.get(), max_bytes);
  }
  if (s.size() <= max_bytes) return std::string(s);
  std::size_t n = max_bytes;
  // Back off continuation bytes (10xxxxxx) so that no character is cut in half.
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return std::string(s.substr(0, n));
}

}  // namespace mailreport::report::fieldtext

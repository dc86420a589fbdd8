// The DMARC policy record: RFC 9989 §4.7 (tags) and §4.8 (formal definition), plus the
// RFC 7489 §6.3 tags that RFC 9989 removed but that records still carry (pct, ri; rf is
// ignored as unknown). Lenient where the RFC says so: unknown tags MUST be ignored and syntax
// errors MUST be discarded in favour of defaults (RFC 9989 §4.8); strict where it does not:
// the v=DMARC1 tag must come first with its case-sensitive value (RFC 9989 §4.7), and an
// invalid p/sp/np makes the record unusable unless rua= holds a valid URI (RFC 9989 §4.10.1).
#include <glib.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dmarc_internal.hpp"
#include "mailreport/auth/dmarc.hpp"

namespace mailreport::auth {
namespace dmarc_detail {
namespace {

bool is_wsp(char c) {
  return c == ' ' || c == '\t';
}
bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string_view trim(std::string_view s) {
  // RFC 9989 §4.8: dmarc-sep and equals allow *WSP; CR/LF never belong in a value either.
  auto blank = [](char c) { return is_wsp(c) || c == '\r' || c == '\n'; };
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  return s;
}

std::string lowered(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower(c);
  return out;
}

// RFC 3986 §3.1 scheme ":" and then URI characters (unreserved, reserved, pct-encoded).
bool is_uri(std::string_view s) {
  auto colon = s.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == s.size()) return false;
  if (!is_alpha(s[0])) return false;
  for (std::size_t i = 1; i < colon; ++i) {
    char c = s[i];
    if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.') return false;
  }
  static constexpr std::string_view kAllowed = "-._~:/?#[]@!$&'()*+,;=";
  for (std::size_t i = colon + 1; i < s.size(); ++i) {
    char c = s[i];
    if (is_alpha(c) || is_digit(c) || kAllowed.find(c) != std::string_view::npos) continue;
    if (c == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      i += 2;
      continue;
    }
    return false;
  }
  return true;
}

template <class T>
bool parse_uint(std::string_view s, T max, T& out) {
  if (s.empty() || s.size() > 10) return false;
  std::uint64_t v = 0;
  for (char c : s) {
    if (!is_digit(c)) return false;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (v > static_cast<std::uint64_t>(max)) return false;
  out = static_cast<T>(v);
  return true;
}

// The obsolete "!" 1*DIGIT [k/m/g/t] size after a URI (RFC 7489 §6.4; commas and '!' inside
// the URI itself are %-encoded, so the last '!' starts it). Returns the URI without it and the
// size in bytes (0 when there is none); nullopt when a '!' is followed by something else.
// Sizes beyond 2^50 bytes are capped there: no limit in practice, and no overflow.
struct SizedUri {
  std::string_view uri;
  std::uint64_t max_size = 0;
};
SizedUri split_size(std::string_view entry) {
  const auto bang = entry.rfind('!');
  if (bang == std::string_view::npos) return {entry, 0};
  std::string_view size = entry.substr(bang + 1);
  unsigned shift = 0;
  if (!size.empty()) {
    switch (lower(size.back())) {
      case 'k': shift = 10; break;
      case 'm': shift = 20; break;
      case 'g': shift = 30; break;
      case 't': shift = 40; break;
      default: break;
    }
    if (shift != 0) size.remove_suffix(1);
  }
  std::uint64_t n = 0;
  if (!parse_uint(size, UINT64_MAX, n)) return {entry, 0};  // not a size
  const std::uint64_t cap = std::uint64_t{1} << 50;
  return {entry.substr(0, bang), n > (cap >> shift) ? cap : n << shift};
}

// RFC 9989 §4.8 dmarc-uri / obs-dmarc-uri: a URI, optionally followed by the obsolete size.
bool is_dmarc_uri(std::string_view entry) {
  return is_uri(split_size(entry).uri);
}

// RFC 9989 §4.8 dmarc-urilist: URIs separated by *WSP "," *WSP. Entries that are not URIs are
// syntax errors and are dropped; the others are kept as published (with any !size).
std::vector<std::string> parse_urilist(std::string_view value) {
  std::vector<std::string> out;
  while (true) {
    auto comma = value.find(',');
    std::string_view entry = trim(value.substr(0, comma));
    if (is_dmarc_uri(entry)) out.emplace_back(entry);
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return out;
}

// RFC 9989 §4.8 dmarc-fo (and RFC 7489 §6.3): a colon list of 0, 1, d, s, each at most once;
// RFC 9989 makes 0 and 1 mutually exclusive.
bool is_fo(std::string_view value) {
  bool seen[4] = {false, false, false, false};
  while (true) {
    auto colon = value.find(':');
    std::string_view t = trim(value.substr(0, colon));
    if (t.size() != 1) return false;
    auto idx = std::string_view("01ds").find(lower(t[0]));
    if (idx == std::string_view::npos || seen[idx]) return false;
    seen[idx] = true;
    if (colon == std::string_view::npos) break;
    value.remove_prefix(colon + 1);
  }
  return !(seen[0] && seen[1]);
}

}  // namespace

// A local-part we are willing to put in front of "@domain": printable ASCII without blanks,
// '@', '<', '>' or ','.
bool is_plain_local_part(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u > 32 && u < 127 && c != '@' && c != '<' && c != '>' && c != ',';
  });
}

bool starts_with_dmarc1(std::string_view txt) {
  // RFC 9989 §4.8: dmarc-version = "v" equals %s"DMARC1"; equals = *WSP "=" *WSP; then a
  // dmarc-sep or the end. Leading blanks are tolerated (TXT strings sometimes carry them).
  std::string_view s = trim(txt);
  if (s.empty() || lower(s[0]) != 'v') return false;
  s.remove_prefix(1);
  while (!s.empty() && is_wsp(s.front())) s.remove_prefix(1);
  if (s.empty() || s.front() != '=') return false;
  s.remove_prefix(1);
  while (!s.empty() && is_wsp(s.front())) s.remove_prefix(1);
  if (s.substr(0, 6) != "DMARC1") return false;  // RFC 9989 §4.7: case-sensitive
  s.remove_prefix(6);
  while (!s.empty() && is_wsp(s.front())) s.remove_prefix(1);
  return s.empty() || s.front() == ';';
}

std::optional<ParsedRecord> parse_record(std::string_view txt) {
  if (!starts_with_dmarc1(txt)) return std::nullopt;
  ParsedRecord out;
  DmarcRecord& r = out.record;
  r.text = std::string(txt);
  std::vector<std::string> seen;

  std::string_view rest = trim(txt);
  rest.remove_prefix(std::min(rest.size(), rest.find(';')));  // past the v tag
  while (!rest.empty()) {
    rest.remove_prefix(1);  // the ';'
    auto semi = rest.find(';');
    std::string_view piece = trim(rest.substr(0, semi));
    rest.remove_prefix(semi == std::string_view::npos ? rest.size() : semi);
    if (piece.empty()) continue;  // RFC 9989 §4.8 allows a trailing dmarc-sep
    auto eq = piece.find('=');
    if (eq == std::string_view::npos) continue;  // not a tag: a syntax error, ignored
    std::string_view raw_name = trim(piece.substr(0, eq));
    std::string_view value = trim(piece.substr(eq + 1));
    bool alpha = !raw_name.empty();
    for (char c : raw_name) alpha = alpha && is_alpha(c);
    if (!alpha) continue;  // RFC 9989 §4.8: dmarc-tag = 1*ALPHA equals 1*dmarc-value
    std::string name = lowered(raw_name);
    bool repeated = false;
    for (const auto& s : seen) repeated = repeated || s == name;
    if (repeated) continue;  // the first of a repeated tag wins
    seen.push_back(name);
    std::string v = lowered(value);

    if (name == "p" || name == "sp" || name == "np") {
      // RFC 9989 §4.8 dmarc-request; a bad value is handled below (§4.10.1), not defaulted.
      auto pol = policy_from(v);
      if (!pol) {
        out.bad_policy = true;
      } else if (name == "p") {
        r.p = *pol;
      } else if (name == "sp") {
        r.sp = *pol;
      } else {
        r.np = *pol;
      }
    } else if (name == "adkim" || name == "aspf") {
      if (v == "r" || v == "s") {
        (name == "adkim" ? r.adkim : r.aspf) = v == "s" ? Alignment::Strict : Alignment::Relaxed;
      }
    } else if (name == "pct") {
      int pct = 100;
      if (parse_uint(v, 100, pct)) r.pct = pct;  // RFC 7489 §6.3: 0..100, default 100
    } else if (name == "t") {
      if (v == "y" || v == "n") r.testing = v == "y";  // RFC 9989 §4.7, default n
    } else if (name == "psd") {
      if (v == "y" || v == "n" || v == "u") r.psd = v[0];  // RFC 9989 §4.7, default u
    } else if (name == "fo") {
      if (is_fo(value)) r.fo = std::string(value);  // default "0"
    } else if (name == "rua") {
      r.rua = parse_urilist(value);
    } else if (name == "ruf") {
      r.ruf = parse_urilist(value);
    } else if (name == "ri") {
      std::uint32_t ri = 0;
      if (parse_uint(v, UINT32_MAX, ri)) r.ri = ri;  // RFC 7489 §6.3: uint32, default 86400
    }
    // Anything else, v= repeated included: RFC 9989 §4.7, unknown tags MUST be ignored.
  }

  out.has_valid_rua = !r.rua.empty();
  if (out.bad_policy && out.has_valid_rua) {
    // RFC 9989 §4.10.1: "act as if a record containing p=none was retrieved".
    r.p = Policy::None;
    r.sp.reset();
    r.np.reset();
  }
  // RFC 9989 §4.7: an absent p is p=none (r.p's default).
  return out;
}

}  // namespace dmarc_detail

Result<DmarcRecord> parse_dmarc_record(std::string_view txt) {
  auto parsed = dmarc_detail::parse_record(txt);
  if (!parsed) {
    // RFC 9989 §4.7: v MUST be the first tag with the value DMARC1, else ignore the record.
    return make_error(ErrorCode::NotAReport, "not a DMARC1 record (v=DMARC1 must come first)");
  }
  if (!parsed->usable()) {
    // RFC 9989 §4.10.1: an invalid p/sp/np and no valid rua: no DMARC processing.
    return make_error(ErrorCode::Invalid,
                      "p=, sp= or np= is not none/quarantine/reject and rua= has no valid URI");
  }
  return std::move(parsed->record);
}

std::optional<ReportMailto> parse_report_mailto(std::string_view uri) {
  const auto sized = dmarc_detail::split_size(dmarc_detail::trim(uri));
  std::string_view u = sized.uri;
  // RFC 7489 §6.2: only mailto is required; other schemes (https, ...) are not mail.
  if (u.size() < 7 || dmarc_detail::lowered(u.substr(0, 7)) != "mailto:") return std::nullopt;
  u.remove_prefix(7);
  u = u.substr(0, u.find('?'));  // RFC 6068 hfields
  std::unique_ptr<char, decltype(&g_free)> decoded(
      g_uri_unescape_segment(u.data(), u.data() + u.size(), nullptr), &g_free);
  if (!decoded) return std::nullopt;  // an escaped NUL
  const std::string_view address(decoded.get());
  const auto at = address.rfind('@');
  if (address.find(',') != std::string_view::npos || at == std::string_view::npos) {
    return std::nullopt;
  }
  ReportMailto out;
  out.host = dmarc_detail::normalize_domain(address.substr(at + 1));
  const std::string_view local = address.substr(0, at);
  if (!dmarc_detail::is_domain_name(out.host) || out.host.find('.') == std::string::npos ||
      !(dmarc_detail::is_plain_local_part(local) || (local.size() <= 64 && local.front() == '"'))) {
    return std::nullopt;
  }
  out.address = std::string(local) + "@" + out.host;
  out.max_size = sized.max_size;
  return out;
}

}  // namespace mailreport::auth

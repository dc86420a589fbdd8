// auth/authres: the Authentication-Results header field (RFC 8601), read and written.
//
// Reading is tolerant, as real headers demand: CFWS and nested comments anywhere, quoted
// strings, folding, "none" (no result), unknown methods and properties kept, and the quirks of
// the big writers (Gmail, Microsoft 365 without an authserv-id and with stray "domain;"
// entries, rspamd, OpenDKIM, OpenDMARC, Yahoo's "pass(" without a space). A resinfo that cannot
// be read is skipped, not fatal. Method, result, ptype and property names are returned in lower
// case (they are case-insensitive, RFC 8601 §2.2); values keep their case.
//
// verdicts_from() turns the results of a trusted authserv-id into our verdict types
// (milter.trust-authserv-ids); format_authentication_results() writes the header value we add.
//
// Not done: ARC-Authentication-Results (RFC 8617), whose "i=" prefix this does not strip; the
// "auth", "iprev" and other methods are kept as parsed but not translated.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mailreport/auth/verdict.hpp"
#include "mailreport/util/result.hpp"

namespace mailreport::auth {

struct AuthResProperty {
  std::string ptype;     // "smtp", "header", "body", "policy" (lower case); "" for Microsoft's
                         // bare "action=none"-style words
  std::string property;  // "mailfrom", "d", "from", ... (lower case)
  std::string value;     // unquoted
};

struct AuthResMethod {
  std::string method;   // "spf", "dkim", "dmarc", "arc", "x-whatever" (lower case)
  std::string version;  // method version ("1" in "dkim/1"), usually ""
  std::string result;   // "pass", "fail", ... (lower case)
  std::string reason;   // reason= value, unquoted
  std::vector<AuthResProperty> props;

  // The value of the first property ptype.property (both lower case), or nullopt.
  std::optional<std::string> prop(std::string_view ptype, std::string_view property) const;
};

struct AuthResults {
  std::string authserv_id;             // "" when the writer left it out (Microsoft 365)
  std::string version;                 // authres-version, "" when absent (version 1)
  std::vector<AuthResMethod> methods;  // empty for "; none"
};

// Parses a header value (what follows "Authentication-Results:", folded or unfolded).
// Fails (Invalid) only when nothing usable is there: an empty value, or neither an
// authserv-id followed by results nor a method=result at all.
Result<AuthResults> parse_authentication_results(std::string_view value);

// The authserv-id alone, cheaply (to delete fields that claim ours, RFC 8601 §5). "" when the
// value has none (it starts with method=result, as Microsoft writes it) or is empty.
std::string authserv_id_of(std::string_view value);

// The verdicts a trusted upstream reports. SPF: spf results with smtp.mailfrom (scope
// MailFrom) or smtp.helo (scope Helo), mfrom first; domain is the part after '@' of the
// value. DKIM: one per dkim result, with header.d/.s/.i/.b/.a and reason. DMARC: the first
// dmarc result and its header.from. Result words the RFCs do not define read as PermError
// ("none" when the word is missing); "hardfail" (RFC 5451 era) reads as fail.
struct TrustedVerdicts {
  std::vector<SpfVerdict> spf;
  std::vector<DkimVerdict> dkim;
  std::optional<DmarcResult> dmarc;
  std::string dmarc_header_from;
};
TrustedVerdicts verdicts_from(const AuthResults& results);

// The header VALUE we add (RFC 8601 §2.2), without the field name, e.g.
//   "mx.example.org;\n\tspf=pass smtp.mailfrom=example.com;\n\tdkim=pass header.d=example.com
//    header.s=sel header.i=@example.com header.b=\"abcd/+12\";\n\tdmarc=pass (p=reject
//    dis=none) header.from=example.com policy.dmarc=reject"
// One method per line, folded with "\n\t" (LF, as libmilter wants header values; the MTA
// writes CRLF) and further between items so that lines stay within 78 characters where an
// item allows it. dkim=none when there is no signature; dmarc=none when no policy was found.
std::string format_authentication_results(std::string_view authserv_id, const Evaluation& e);

}  // namespace mailreport::auth

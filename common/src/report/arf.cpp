// ARF feedback report parser: RFC 5965 §3 fields (abuse, fraud, virus, other, not-spam,
// opt-out), RFC 6591 §3 authentication-failure fields and the DMARC additions of RFC 9991
// (Auth-Failure: dmarc, Identity-Alignment). The field block is parsed by GMime
// (mime::parse_header_fields); this file interprets the fields.
//
// Reporters' assertions are kept as sent (RFC 5965 §3: receivers MUST NOT assume they are
// accurate); only enumerated values are lower-cased, Source-IP comments are dropped, dates
// are also given as epoch seconds. Deviations (missing required fields, repeats, unparseable
// dates) go to ArfReport::errors, they do not make the report fail.
//
// Reports without a message/feedback-report part but with text saying that a message failed
// DMARC/DKIM/SPF (Exim and cPanel "forensic reports") are synthesised from the text as
// feedback_type "auth-failure", with a note in `errors`.
//
// Not done: RFC 6590 redaction is not detected; DKIM-Canonicalized-* are kept base64-encoded;
// Authentication-Results are kept as text (one per line when repeated), not parsed.
#include "mailreport/report/arf.hpp"

#include <charconv>
#include <initializer_list>

#include "mailreport/mime/date.hpp"
#include "report/field_syntax.hpp"

namespace mailreport::report {

namespace {

using namespace fieldtext;

constexpr std::size_t kMaxHumanReadable = 64 * 1024;

// Every field name RFC 5965 §7.2 / RFC 6591 §6 / RFC 6692 registered, plus the historic
// Received-Date (RFC 5965 §3.2). A feedback part without any of them is not ARF.
bool is_arf_field(std::string_view name) {
  static constexpr std::string_view kNames[] = {"feedback-type",
                                                "user-agent",
                                                "version",
                                                "original-envelope-id",
                                                "original-mail-from",
                                                "arrival-date",
                                                "received-date",
                                                "reporting-mta",
                                                "source-ip",
                                                "incidents",
                                                "original-rcpt-to",
                                                "reported-domain",
                                                "reported-uri",
                                                "authentication-results",
                                                "removal-recipient",
                                                "auth-failure",
                                                "delivery-result",
                                                "dkim-domain",
                                                "dkim-identity",
                                                "dkim-selector",
                                                "dkim-canonicalized-header",
                                                "dkim-canonicalized-body",
                                                "dkim-adsp-dns",
                                                "dkim-selector-dns",
                                                "spf-dns",
                                                "identity-alignment",
                                                "source-port"};
  for (auto n : kNames) {
    if (iequals(name, n)) return true;
  }
  return false;
}

void append_line(std::string& to, std::string_view value) {
  if (!to.empty()) to.push_back('\n');
  to.append(value);
}

// Source-IP (RFC 5965 §3.5: IPv4-address-literal / IPv6-address-literal [CFWS]). Reporters
// add "(hostname)" comments and sometimes brackets.
std::string clean_ip(std::string_view raw, std::vector<std::string>& errors) {
  std::string v = strip_comments(raw);
  if (v.size() >= 2 && v.front() == '[' && v.back() == ']') v = v.substr(1, v.size() - 2);
  if (v.size() > 5 && iequals(std::string_view(v).substr(0, 5), "ipv6:")) v = v.substr(5);
  if (auto ip = find_ip(v); ip && *ip == v) return v;
  if (auto ip = find_ip(v)) {
    errors.push_back("Source-IP: \"" + std::string(raw) + "\" taken as " + *ip);
    return *ip;
  }
  errors.push_back("Source-IP: not an IP address: \"" + std::string(raw) + "\"");
  return v;
}

void set_once(std::string& slot, std::string value, std::string_view name,
              std::vector<std::string>& errors) {
  if (!slot.empty()) {
    errors.push_back(std::string(name) + ": repeated, first value kept");
    return;
  }
  slot = std::move(value);
}

void set_arrival_date(ArfReport& r, std::string_view name, std::string_view value) {
  if (!r.arrival_date_raw.empty()) {
    // RFC 5965 §3.2: Arrival-Date and Received-Date both present ⇒ malformed; keep the first.
    r.errors.push_back(std::string(name) + ": a second arrival date, first value kept");
    return;
  }
  r.arrival_date_raw = std::string(value);
  r.arrival_date = mime::parse_date(value);
  if (!r.arrival_date) {
    r.errors.push_back(std::string(name) + ": not a date: \"" + r.arrival_date_raw + "\"");
  }
}

void read_field(ArfReport& r, const mime::HeaderField& f) {
  const std::string name = lower(f.name);
  const std::string_view v = trim(f.value);
  auto& e = r.errors;
  // RFC 5965 §3.1: exactly once.
  if (name == "feedback-type") {
    set_once(r.feedback_type, lower(strip_comments(v)), f.name, e);
  } else if (name == "user-agent") {
    set_once(r.user_agent, std::string(v), f.name, e);
  } else if (name == "version") {
    set_once(r.version, strip_comments(v), f.name, e);
  } else if (name == "original-envelope-id") {
    // RFC 5965 §3.2 (at most once). No model slot of its own; it stays in `fields`.
  } else if (name == "original-mail-from") {
    set_once(r.original_mail_from, std::string(v), f.name, e);
  } else if (name == "arrival-date" || name == "received-date") {
    set_arrival_date(r, f.name, v);
  } else if (name == "reporting-mta") {
    // mta-name-type ";" mta-name: the name is what matters to a reader.
    set_once(r.reporting_mta, split_typed(v).value, f.name, e);
  } else if (name == "source-ip") {
    set_once(r.source_ip, clean_ip(v, e), f.name, e);
  } else if (name == "incidents") {
    const std::string n = strip_comments(v);
    std::uint64_t count = 0;
    auto [end, ec] = std::from_chars(n.data(), n.data() + n.size(), count);
    if (ec == std::errc() && end == n.data() + n.size() && !n.empty()) {
      r.incidents = count;
    } else {
      e.push_back("Incidents: not a number: \"" + std::string(v) + "\"");
    }
  } else if (name == "original-rcpt-to") {  // RFC 5965 §3.3: repeatable, down to A-R
    r.original_rcpt_to.emplace_back(v);
  } else if (name == "reported-domain") {
    r.reported_domain.push_back(strip_comments(v));
  } else if (name == "reported-uri") {
    r.reported_uri.emplace_back(v);
  } else if (name == "authentication-results") {
    append_line(r.authentication_results, v);
  } else if (name == "auth-failure") {  // RFC 6591 §3.2 and RFC 9991 from here on
    set_once(r.auth_failure, lower(strip_comments(v)), f.name, e);
  } else if (name == "delivery-result") {
    set_once(r.delivery_result, lower(strip_comments(v)), f.name, e);
  } else if (name == "dkim-domain") {
    set_once(r.dkim_domain, strip_comments(v), f.name, e);
  } else if (name == "dkim-identity") {
    set_once(r.dkim_identity, strip_comments(v), f.name, e);
  } else if (name == "dkim-selector") {
    set_once(r.dkim_selector, strip_comments(v), f.name, e);
  } else if (name == "dkim-canonicalized-header" || name == "dkim-canonicalized-body") {
    // base64; folding whitespace is not part of the value.
    std::string b64;
    for (char c : v) {
      if (c != ' ' && c != '\t' && c != '\r' && c != '\n') b64.push_back(c);
    }
    set_once(name == "dkim-canonicalized-header" ? r.dkim_canonicalized_header
                                                 : r.dkim_canonicalized_body,
             std::move(b64), f.name, e);
  } else if (name == "spf-dns") {
    append_line(r.spf_dns, v);  // RFC 6591 §3.2: once per SPF record used
  } else if (name == "identity-alignment") {
    set_once(r.identity_alignment, lower(strip_comments(v)), f.name, e);
  }
}

// Notes what RFC 5965 §3.1 and RFC 6591 §3.1 require and the report lacks.
void check_required(ArfReport& r) {
  if (r.feedback_type.empty()) r.errors.emplace_back("Feedback-Type: missing");
  if (r.user_agent.empty()) r.errors.emplace_back("User-Agent: missing");
  if (r.version.empty()) r.errors.emplace_back("Version: missing");
  if (r.feedback_type == "auth-failure" && r.auth_failure.empty()) {
    r.errors.emplace_back("Auth-Failure: missing (RFC 6591 §3.1 requires it)");
  }
  if (!r.auth_failure.empty() && r.feedback_type != "auth-failure") {
    r.errors.emplace_back("Auth-Failure present but Feedback-Type is \"" + r.feedback_type + "\"");
  }
}

void read_outer(const std::vector<HeaderField>& outer, ArfReport& r) {
  if (auto* f = mime::find_field(outer, "Subject")) r.subject = f->value;
  if (auto* f = mime::find_field(outer, "From")) r.from = f->value;
  if (auto* f = mime::find_field(outer, "Message-ID")) r.message_id = f->value;
}

// ------------------------------------------------------------ reports without an ARF part

// "  Sender IP Address: 203.0.113.68" → value of the first line whose label contains one of
// `labels` (case-insensitive).
std::optional<std::string_view> labelled(std::string_view text,
                                         std::initializer_list<std::string_view> labels) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    const std::string_view line = trim(text.substr(pos, eol - pos));
    pos = eol + 1;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon > 40) continue;
    const std::string_view label = trim(line.substr(0, colon));
    for (auto want : labels) {
      if (iequals(label, want)) return trim(line.substr(colon + 1));
    }
  }
  return std::nullopt;
}

// The Exim/cPanel failure report: plain text naming the failed domain and IP, then the
// received headers after a "copy of the headers" line.
bool synthesise_from_text(const ArfParts& parts, ArfReport& r) {
  const std::string text = normalize_newlines(parts.human_readable);
  const bool mentions_auth =
      icontains(text, "dmarc") || icontains(text, "dkim") || icontains(text, "spf");
  const bool says_failed = icontains(text, "fail") || icontains(r.subject, "failure") ||
                           icontains(r.subject, "forensic");
  if (!mentions_auth || !says_failed) return false;

  r.feedback_type = "auth-failure";
  if (icontains(text, "dmarc")) r.auth_failure = "dmarc";
  r.errors.emplace_back(
      "no message/feedback-report part: report synthesised from the human-readable text");

  // Only the prose before the copied headers describes the failure.
  std::string_view prose = text;
  std::string_view copied;
  for (std::size_t pos = 0; pos < text.size();) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    const std::string_view line = std::string_view(text).substr(pos, eol - pos);
    if (icontains(line, "copy of the") && icontains(line, "header")) {
      prose = std::string_view(text).substr(0, pos);
      copied = eol < text.size() ? std::string_view(text).substr(eol + 1) : std::string_view();
      break;
    }
    pos = eol + 1;
  }

  if (auto v = labelled(prose, {"Source-IP", "Source IP", "Source IP Address", "Sender IP",
                                "Sender IP Address", "IP Address", "IP"})) {
    if (auto ip = find_ip(*v)) r.source_ip = *ip;
  }
  if (r.source_ip.empty() && icontains(r.subject, "ip")) {
    // "DMARC Forensic Report for example.com from IP 203.0.113.68"
    if (auto ip = find_ip(r.subject)) r.source_ip = *ip;
  }
  if (r.source_ip.empty()) r.errors.emplace_back("no source IP found in the text");
  if (auto v = labelled(prose, {"Reported-Domain", "Sender Domain", "Domain"}); v && !v->empty()) {
    r.reported_domain.emplace_back(*v);
  }
  if (auto v = labelled(prose, {"Arrival-Date", "Received date", "Date received", "Date"})) {
    r.arrival_date_raw = std::string(*v);
    r.arrival_date = mime::parse_date(*v);
  }
  if (r.original_headers.empty() && !trim(copied).empty()) {
    r.original_headers = parse_fields(copied);
    if (!r.original_headers.empty()) r.original_message_type = "text/rfc822-headers";
  }
  return true;
}

}  // namespace

Result<ArfReport> parse_arf(const ArfParts& parts) {
  ArfReport r;
  read_outer(parts.outer_headers, r);
  r.human_readable = bounded_utf8(parts.human_readable, kMaxHumanReadable);
  if (!trim(parts.original).empty()) {
    // RFC 5965 §2(g): message/rfc822 or text/rfc822-headers; also seen: message/rfc822-headers
    // and the misspelled text/rfc822-header. Either way only the header block is kept.
    r.original_message_type = parts.original_type;
    r.original_headers = parse_fields(parts.original);
    if (r.original_headers.empty()) {
      r.errors.push_back("original message part (" + parts.original_type +
                         ") has no header fields");
    }
  }

  std::vector<HeaderField> fields;
  if (!trim(parts.feedback_report).empty()) fields = parse_fields(parts.feedback_report);
  bool any_arf = false;
  for (const auto& f : fields) any_arf = any_arf || is_arf_field(f.name);
  if (any_arf) {
    for (const auto& f : fields) read_field(r, f);
    r.fields = std::move(fields);
    check_required(r);
    return r;
  }
  if (!trim(parts.feedback_report).empty()) {
    r.errors.emplace_back("message/feedback-report part holds no ARF fields");
  }
  if (synthesise_from_text(parts, r)) return r;
  return make_error(ErrorCode::NotAReport, "no feedback report fields and no failure text");
}

}  // namespace mailreport::report

// outbound/failure_report: the authentication failure report of one queued FailurePayload,
// built with GMime as an RFC 5965 §2 multipart/report; report-type=feedback-report message:
//   1. text/plain, a human-readable summary (RFC 5965 §2 (b));
//   2. message/feedback-report (RFC 5965 §3, RFC 6591 §3, RFC 9991 for dmarc), its fields
//      written as a header block by GMime's header formatter (folded at 78 columns);
//   3. the reported message: text/rfc822-headers (its header block) or message/rfc822 (as
//      received, byte for byte), cut at report.failure.max-original (RFC 6591 §3.1 requires
//      part 3; RFC 9991 §7.3 prefers headers only).
// RFC 6590 redaction (report.failure.redact): the local-part of every address in
// Original-Mail-From, Original-Rcpt-To, the smtp.mailfrom of Authentication-Results, the
// human-readable part and the address fields of the reported header (From, To, Cc, Sender,
// Reply-To, Return-Path, Delivered-To, Received ...) becomes the first 16 hex digits of
// HMAC-SHA256(redact-key, lower-cased local-part) — the same address always gives the same
// string. DKIM-Canonicalized-Header/Body are then left out (RFC 6591 §3.2: MUST NOT be sent
// when redacted).
//
// A DMARC ruf "!size" limit (request.max_size), with room for the DKIM signatures still to
// come: a report over it is rebuilt with headers only, and refused (LimitExceeded) when that is
// still too large (RFC 7489 §7.2.1).
//
// Not done: Incidents (one report per message), Source-Port (the milter does not record it),
// redaction of the body of a message/rfc822 original, Original-Envelope-Id (RFC 3461 ENVID).
#include "mailreport/outbound/failure_report.hpp"

#include <gmime/gmime.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <strings.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <string_view>

#include "mailreport/auth/authres.hpp"
#include "mailreport/mime/header.hpp"
#include "outbound/message_parts.hpp"

namespace mailreport::outbound {

namespace {

using detail::DateTimePtr;
using detail::GPtr;
using detail::GString;
using detail::hex;
using detail::part_with_text;
using detail::rfc5322_date;
using detail::to_crlf;
using detail::wrap;

// RFC 5965 §3.1 User-Agent: product "/" version (RFC 7231 §5.5.3).
constexpr std::string_view kUserAgent = "mailreport/0.1.0";

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Bare LF and CRLF in, LF out (GMime writes LF; the finished message gets CRLF at the end).
std::string to_lf(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') continue;
    out += text[i];
  }
  return out;
}

// Folded lines joined: a header value as one line.
std::string unfold(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c != '\r' && c != '\n') out += c;
  }
  return out;
}

// ---------------------------------------------------------------- RFC 6590 redaction

class Redactor {
 public:
  Redactor(bool on, std::string_view key) : on_(on), key_(key) {}
  bool on() const noexcept { return on_; }

  // The keyed hash that stands for a local-part.
  std::string hash(std::string_view local_part) const {
    const std::string l = lower(local_part);
    std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
    unsigned int n = 0;
    HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
         reinterpret_cast<const unsigned char*>(l.data()), l.size(), mac.data(), &n);
    return hex(mac.data(), n).substr(0, 16);
  }

  // Every addr-spec in `text` (local-part "@" domain, RFC 5322 §3.4.1) gets its local-part
  // hashed; dot-atom and quoted-string local-parts are both recognised.
  std::string addresses(std::string_view text) const {
    if (!on_) return std::string(text);
    std::string out;
    std::size_t copied = 0;
    for (std::size_t at = text.find('@'); at != std::string_view::npos;
         at = text.find('@', at + 1)) {
      if (at < copied) continue;
      std::size_t start = at;
      if (at >= copied + 2 && text[at - 1] == '"') {
        const auto open = text.rfind('"', at - 2);
        if (open == std::string_view::npos || open < copied) continue;
        start = open;
      } else {
        while (start > copied && is_atext(text[start - 1])) --start;
      }
      if (start == at) continue;  // "@domain" alone (a DKIM i= without local-part)
      out.append(text.substr(copied, start - copied));
      out += hash(text.substr(start, at - start));
      copied = at;
    }
    out.append(text.substr(copied));
    return out;
  }

 private:
  // RFC 5322 §3.2.3 atext, and '.' of a dot-atom.
  static bool is_atext(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           (c != '\0' && std::strchr("!#$%&'*+-/=?^_`{|}~.", c) != nullptr) ||
           static_cast<unsigned char>(c) >= 0x80;  // RFC 6532 UTF-8 local-parts
  }

  bool on_;
  std::string_view key_;
};

// The fields of a reported header whose addresses are redacted (RFC 5322 §3.6.2, §3.6.3,
// §3.6.6, §3.6.7 and the usual trace and delivery fields).
bool carries_addresses(std::string_view name) {
  static constexpr std::array<std::string_view, 17> kNames = {"from",
                                                              "sender",
                                                              "reply-to",
                                                              "to",
                                                              "cc",
                                                              "bcc",
                                                              "return-path",
                                                              "delivered-to",
                                                              "x-original-to",
                                                              "envelope-to",
                                                              "received",
                                                              "resent-from",
                                                              "resent-sender",
                                                              "resent-to",
                                                              "resent-cc",
                                                              "resent-bcc",
                                                              "disposition-notification-to"};
  const std::string l = lower(name);
  return std::find(kNames.begin(), kNames.end(), l) != kNames.end();
}

// ---------------------------------------------------------------- the reported message

// The header block of `original` (LF line ends), without the blank line that ends it.
std::string_view header_block(std::string_view original_lf) {
  if (original_lf.starts_with("\n")) return {};
  const auto end = original_lf.find("\n\n");
  return end == std::string_view::npos ? original_lf : original_lf.substr(0, end + 1);
}

// At most `max` bytes of `text`, cut after the last complete line that fits.
std::string_view cut_at_line(std::string_view text, std::size_t max, bool* cut) {
  if (text.size() <= max) return text;
  *cut = true;
  const auto nl = text.substr(0, max).rfind('\n');
  return nl == std::string_view::npos ? std::string_view() : text.substr(0, nl + 1);
}

// The reported header block with the local-parts of its address fields hashed. GMime parses
// the block and writes back every field as it was (its raw value), changed fields included.
std::string redact_header_block(std::string_view block, const Redactor& redact) {
  std::string text(block);
  text += "\n";
  GPtr<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(text.data(), text.size()));
  GPtr<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
  g_mime_parser_set_format(parser.get(), GMIME_FORMAT_MESSAGE);
  GPtr<GMimeObject> part(g_mime_parser_construct_part(parser.get(), nullptr));
  if (!part) return redact.addresses(block);  // not a header block at all: hash every address
  GMimeHeaderList* headers = g_mime_object_get_header_list(part.get());
  const int count = g_mime_header_list_get_count(headers);
  for (int i = 0; i < count; ++i) {
    GMimeHeader* h = g_mime_header_list_get_header_at(headers, i);
    const char* name = g_mime_header_get_name(h);
    const char* raw = g_mime_header_get_raw_value(h);
    if (name == nullptr || raw == nullptr || !carries_addresses(name)) continue;
    const std::string redacted = redact.addresses(raw);
    g_mime_header_set_raw_value(h, redacted.c_str());
  }
  GString out(g_mime_header_list_to_string(headers, nullptr));
  return out ? std::string(out.get()) : std::string();
}

bool is_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

bool has_long_line(std::string_view s) {
  std::size_t start = 0;
  for (;;) {
    const auto nl = s.find('\n', start);
    const auto len = (nl == std::string_view::npos ? s.size() : nl) - start;
    if (len > 998) return true;  // RFC 5322 §2.1.1
    if (nl == std::string_view::npos) return false;
    start = nl + 1;
  }
}

// ---------------------------------------------------------------- report content

const config::FailureReportSettings& settings_of(const config::Config& c, auth::FailureKind k) {
  switch (k) {
    case auth::FailureKind::Dkim: return c.report.dkim;
    case auth::FailureKind::Spf: return c.report.spf;
    case auth::FailureKind::Dmarc: break;
  }
  return c.report.dmarc;
}

const auth::SpfVerdict* mfrom_verdict(const auth::Evaluation& ev) {
  for (const auto& s : ev.spf) {
    if (s.scope == auth::SpfScope::MailFrom) return &s;
  }
  return nullptr;
}

const auth::DkimVerdict* reported_signature(const store::FailurePayload& p) {
  const int i = p.request.dkim_index;
  if (i < 0 || static_cast<std::size_t>(i) >= p.evaluation.dkim.size()) return nullptr;
  return &p.evaluation.dkim[static_cast<std::size_t>(i)];
}

// RFC 8601 §2.2 value: a token as it is, anything else as a quoted-string.
std::string authres_value(std::string_view v) {
  const bool token = !v.empty() && std::all_of(v.begin(), v.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u > ' ' && u < 0x7f && std::strchr("()<>,;:\\\"/[]?=", c) == nullptr;
  });
  // RFC 8601 §2.2 pvalue also allows [local-part] "@" domain and "/" in a value as written.
  const bool address = !v.empty() && v.find_first_of(" \t\";()\\") == std::string_view::npos;
  if (token || address) return std::string(v);
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// Authentication-Results for the method the report is about (RFC 6591 §3.1: the report
// carries the result of the failed mechanism), under the authserv-id the milter used.
std::string authentication_results(const store::FailurePayload& p, const config::Config& config,
                                   const Redactor& redact) {
  const auth::Evaluation& ev = p.evaluation;
  std::string id = auth::authserv_id_of(ev.authentication_results);
  if (id.empty()) id = config.milter.authserv_id;
  std::string r = id + "; ";
  switch (p.request.kind) {
    case auth::FailureKind::Dmarc: {
      r += "dmarc=" + std::string(auth::to_string(ev.dmarc.result));
      if (ev.dmarc.record) {
        r += " (p=" + std::string(auth::to_string(ev.dmarc.record->p)) +
             " dis=" + auth::to_string(ev.dmarc.disposition) + ")";
      }
      if (!ev.dmarc.header_from.empty()) r += " header.from=" + authres_value(ev.dmarc.header_from);
      break;
    }
    case auth::FailureKind::Dkim: {
      const auth::DkimVerdict* d = reported_signature(p);
      if (d == nullptr) {
        r += "dkim=fail";
        break;
      }
      r += "dkim=" + std::string(auth::to_string(d->result));
      if (!d->reason.empty()) r += " reason=" + authres_value(d->reason);
      r += " header.d=" + authres_value(d->domain);
      if (!d->selector.empty()) r += " header.s=" + authres_value(d->selector);
      if (!d->identity.empty()) r += " header.i=" + authres_value(d->identity);
      if (!d->header_b.empty()) r += " header.b=" + authres_value(d->header_b);
      break;
    }
    case auth::FailureKind::Spf: {
      const auth::SpfVerdict* s = mfrom_verdict(ev);
      r += "spf=" + std::string(s ? auth::to_string(s->result) : "fail");
      if (s != nullptr) {
        const std::string who = s->identity.empty() ? s->domain : s->identity;
        r += " smtp.mailfrom=" + authres_value(redact.addresses(who));
      }
      break;
    }
  }
  return r;
}

// RFC 9991 Identity-Alignment: the mechanisms that did not authenticate an aligned identity.
std::string identity_alignment(const store::FailurePayload& p) {
  if (!p.request.identity_alignment.empty()) return p.request.identity_alignment;
  std::string out;
  if (!p.evaluation.dmarc.dkim_aligned) out = "dkim";
  if (!p.evaluation.dmarc.spf_aligned) out += out.empty() ? "spf" : ", spf";
  return out.empty() ? "none" : out;
}

std::string quoted_string(std::string_view v) {
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// Base64 in 64-character words, so that the header formatter can fold it (the words' spaces
// are not part of the value: RFC 6591 §3.2 base64 ignores FWS).
std::string folded_base64(std::string_view data) {
  std::string b64(4 * ((data.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()),
                                reinterpret_cast<const unsigned char*>(data.data()),
                                static_cast<int>(data.size()));
  b64.resize(static_cast<std::size_t>(n));
  std::string out;
  for (std::size_t i = 0; i < b64.size(); i += 64) {
    if (!out.empty()) out += ' ';
    out += b64.substr(i, 64);
  }
  return out;
}

std::string angle(std::string_view address) {
  return "<" + std::string(address) + ">";
}

// The message/feedback-report fields, in the order of RFC 5965 §3 and RFC 6591 §3.
std::vector<std::pair<std::string, std::string>> feedback_fields(const store::FailurePayload& p,
                                                                 const config::Config& config,
                                                                 const Redactor& redact) {
  const auth::Evaluation& ev = p.evaluation;
  const auth::FailureReportRequest& rq = p.request;
  std::vector<std::pair<std::string, std::string>> f;
  // RFC 5965 §3.1: exactly once.
  f.emplace_back("Feedback-Type", "auth-failure");  // RFC 6591 §3.1
  f.emplace_back("User-Agent", std::string(kUserAgent));
  f.emplace_back("Version", "1");
  // RFC 5965 §3.2, at most once; RFC 6591 §3.1 RECOMMENDS Original-Mail-From and Source-IP.
  f.emplace_back("Original-Mail-From", angle(redact.addresses(ev.mail_from)));
  if (ev.time > 0) f.emplace_back("Arrival-Date", rfc5322_date(ev.time));
  if (!ev.source_ip.empty()) f.emplace_back("Source-IP", ev.source_ip);
  f.emplace_back("Reporting-MTA", "dns; " + config.report.submitter);
  // RFC 5965 §3.3: Original-Rcpt-To SHOULD be repeated per recipient.
  for (const auto& rcpt : ev.rcpt_to)
    f.emplace_back("Original-Rcpt-To", angle(redact.addresses(rcpt)));
  // RFC 6591 §3.1: Reported-Domain MUST be present when known; Authentication-Results MUST.
  if (!rq.reported_domain.empty()) f.emplace_back("Reported-Domain", rq.reported_domain);
  f.emplace_back("Authentication-Results", authentication_results(p, config, redact));
  // RFC 6591 §3.2.
  f.emplace_back("Auth-Failure",
                 rq.auth_failure.empty() ? std::string(auth::to_string(rq.kind)) : rq.auth_failure);
  if (!rq.delivery_result.empty()) f.emplace_back("Delivery-Result", rq.delivery_result);
  // RFC 6591 §3.2 DKIM-Domain, -Identity, -Selector: required for a DKIM failure (RFC 9991:
  // for the DKIM failure of an aligned identifier in a DMARC report).
  if (const auth::DkimVerdict* d = reported_signature(p)) {
    f.emplace_back("DKIM-Domain", d->domain);
    f.emplace_back("DKIM-Identity", d->identity.empty() ? "@" + d->domain : d->identity);
    f.emplace_back("DKIM-Selector", d->selector);
    // RFC 6591 §3.2: MUST NOT be included when the report is redacted, else SHOULD.
    if (!redact.on()) {
      if (!d->canonicalized_header.empty()) {
        f.emplace_back("DKIM-Canonicalized-Header", folded_base64(d->canonicalized_header));
      }
      if (!d->canonicalized_body.empty()) {
        f.emplace_back("DKIM-Canonicalized-Body", folded_base64(d->canonicalized_body));
      }
    }
  }
  // RFC 6591 §3.2 SPF-DNS: ( "txt" / "spf" ) ":" domain ":" quoted-string, per record used.
  if (!rq.spf_record.empty()) {
    const auth::SpfVerdict* s = mfrom_verdict(ev);
    std::string domain = s != nullptr && !s->domain.empty() ? s->domain : rq.reported_domain;
    if (rq.kind == auth::FailureKind::Spf) domain = rq.reported_domain;
    f.emplace_back("SPF-DNS", "txt : " + domain + " : " + quoted_string(rq.spf_record));
  }
  // RFC 9991: Identity-Alignment is REQUIRED in DMARC failure reports.
  if (rq.kind == auth::FailureKind::Dmarc)
    f.emplace_back("Identity-Alignment", identity_alignment(p));
  return f;
}

std::string what_failed(const store::FailurePayload& p) {
  const auth::Evaluation& ev = p.evaluation;
  switch (p.request.kind) {
    case auth::FailureKind::Dkim: {
      const auth::DkimVerdict* d = reported_signature(p);
      std::string s = "whose DKIM signature (d=" + (d ? d->domain : p.request.reported_domain);
      if (d && !d->selector.empty()) s += ", s=" + d->selector;
      s += ") did not verify";
      if (d && !d->reason.empty()) s += ": " + d->reason;
      return s;
    }
    case auth::FailureKind::Spf: {
      const auth::SpfVerdict* s = mfrom_verdict(ev);
      return "that failed the SPF check of " + p.request.reported_domain +
             (s ? " (result: " + std::string(auth::to_string(s->result)) + ")" : std::string());
    }
    case auth::FailureKind::Dmarc: break;
  }
  return "that failed DMARC evaluation for " + p.request.reported_domain;
}

// Part 1 (RFC 5965 §2 (b)): what happened, in words.
std::string human_readable(const store::FailurePayload& p, const config::Config& config,
                           const Redactor& redact, bool whole_message, bool cut) {
  const auth::Evaluation& ev = p.evaluation;
  std::string t = wrap("This is an authentication failure report (RFC 6591) about a message " +
                       what_failed(p) + ".") +
                  "\n";
  const auto line = [&t](std::string_view label, const std::string& value) {
    if (value.empty()) return;
    t += std::string(label);
    t.append(label.size() < 20 ? 20 - label.size() : 1, ' ');
    t += value + "\n";
  };
  line("Reported domain:", p.request.reported_domain);
  line("Source IP:", ev.source_ip);
  if (ev.time > 0) line("Arrival date:", rfc5322_date(ev.time));
  line("Envelope sender:", angle(redact.addresses(ev.mail_from)));
  line("Header From domain:", ev.header_from);
  line("Message-ID:", ev.message_id);
  for (const auto& s : ev.spf) {
    line(s.scope == auth::SpfScope::Helo ? "SPF (HELO):" : "SPF:",
         std::string(auth::to_string(s.result)) + " (" + s.domain + ")");
  }
  for (const auto& d : ev.dkim) {
    line("DKIM:", std::string(auth::to_string(d.result)) + " (d=" + d.domain + " s=" + d.selector +
                      (d.reason.empty() ? "" : ": " + d.reason) + ")");
  }
  if (ev.dmarc.result != auth::DmarcResult::None || ev.dmarc.record) {
    std::string dm = auth::to_string(ev.dmarc.result);
    if (ev.dmarc.record) {
      dm += " (policy " + std::string(auth::to_string(ev.dmarc.applied_policy)) + " of " +
            ev.dmarc.policy_domain + ")";
    }
    line("DMARC:", dm);
  }
  line("Delivery result:", p.request.delivery_result);
  std::string note =
      whole_message ? "The message is attached" : "The header of the message is attached";
  note += cut ? ", cut short." : ".";
  if (redact.on()) note += " Local-parts of addresses are replaced by a keyed hash (RFC 6590).";
  t += "\n" + wrap(note) + "\n" +
       wrap("This report was generated by mailreport at " + config.report.submitter +
            " because the domain owner asked for it in DNS.");
  return t;
}

// ---------------------------------------------------------------- GMime assembly

std::string feedback_block(const std::vector<std::pair<std::string, std::string>>& fields) {
  GPtr<GMimeHeaderList> list(g_mime_header_list_new(nullptr));
  for (const auto& [name, value] : fields) {
    g_mime_header_list_append(list.get(), name.c_str(), unfold(value).c_str(), "utf-8");
  }
  GString text(g_mime_header_list_to_string(list.get(), nullptr));
  return text ? std::string(text.get()) : std::string();
}

struct Original {
  std::string content;  // LF line ends
  bool whole = false;   // message/rfc822, else text/rfc822-headers
  bool cut = false;
};

Original original_part(const store::FailurePayload& p, const config::FailureFormatConfig& fmt,
                       const Redactor& redact, bool whole_wanted) {
  Original o;
  const std::string lf = to_lf(p.evaluation.original);
  o.cut = p.evaluation.original_truncated;
  const std::string_view head = header_block(lf);
  // message/rfc822 only when the body is there (the milter keeps it for include = "message").
  o.whole = whole_wanted && lf.size() > head.size();
  if (o.whole) {
    std::string_view all = lf;
    if (all.size() > fmt.max_original) {
      all = all.substr(0, fmt.max_original);
      o.cut = true;
    }
    std::string_view body = all.size() > head.size() ? all.substr(head.size()) : std::string_view();
    o.content = (redact.on() ? redact_header_block(head, redact) : std::string(head));
    o.content.append(body);
    return o;
  }
  bool cut = false;
  const std::string_view kept = cut_at_line(head, static_cast<std::size_t>(fmt.max_original), &cut);
  o.cut = o.cut || cut;
  o.content = redact.on() ? redact_header_block(kept, redact) : std::string(kept);
  return o;
}

Result<std::string> assemble(const store::FailurePayload& p, const config::Config& config,
                             const config::FailureReportSettings& kind, std::int64_t now,
                             const std::string& message_id, bool whole_wanted) {
  const Redactor redact(config.report.failure.redact, config.report.failure.redact_key);
  const Original original = original_part(p, config.report.failure, redact, whole_wanted);

  GPtr<GMimeMessage> message(g_mime_message_new(FALSE));
  GMimeObject* top = GMIME_OBJECT(message.get());
  g_mime_message_add_mailbox(message.get(), GMIME_ADDRESS_TYPE_FROM,
                             kind.from_name.empty() ? nullptr : kind.from_name.c_str(),
                             kind.from_address.c_str());
  g_mime_message_add_mailbox(message.get(), GMIME_ADDRESS_TYPE_TO, nullptr,
                             p.request.recipient.c_str());
  const std::string subject = kind.subject + " for " + p.request.reported_domain;
  g_mime_message_set_subject(message.get(), subject.c_str(), "utf-8");
  DateTimePtr date(g_date_time_new_from_unix_utc(now));
  g_mime_message_set_date(message.get(), date.get());
  g_mime_message_set_message_id(message.get(), message_id.c_str());
  g_mime_object_set_header(top, "MIME-Version", "1.0", nullptr);
  // RFC 3834 §5: machine-generated; no auto-replies, no loops.
  g_mime_object_set_header(top, "Auto-Submitted", "auto-generated", nullptr);

  // RFC 5965 §2: multipart/report; report-type=feedback-report (RFC 6522).
  GPtr<GMimeMultipart> report(g_mime_multipart_new_with_subtype("report"));
  g_mime_object_set_content_type_parameter(GMIME_OBJECT(report.get()), "report-type",
                                           "feedback-report");

  const std::string text = human_readable(p, config, redact, original.whole, original.cut);
  GPtr<GMimeTextPart> first(g_mime_text_part_new_with_subtype("plain"));
  g_mime_text_part_set_text(first.get(), text.c_str());
  g_mime_part_set_content_encoding(GMIME_PART(first.get()),
                                   g_mime_part_get_best_content_encoding(
                                       GMIME_PART(first.get()), GMIME_ENCODING_CONSTRAINT_7BIT));
  g_mime_multipart_add(report.get(), GMIME_OBJECT(first.get()));

  const std::string fields = feedback_block(feedback_fields(p, config, redact));
  auto second =
      part_with_text("message", "feedback-report", fields,
                     is_ascii(fields) ? GMIME_CONTENT_ENCODING_7BIT : GMIME_CONTENT_ENCODING_8BIT);
  g_mime_multipart_add(report.get(), GMIME_OBJECT(second.get()));

  // RFC 2046 §5.2.1: message/rfc822 is 7bit, 8bit or binary, never encoded; the original goes
  // in as it was received. text/rfc822-headers may be encoded when it must be.
  GMimeContentEncoding encoding =
      is_ascii(original.content) ? GMIME_CONTENT_ENCODING_7BIT : GMIME_CONTENT_ENCODING_8BIT;
  if (has_long_line(original.content)) {
    encoding =
        original.whole ? GMIME_CONTENT_ENCODING_BINARY : GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE;
  }
  auto third = original.whole
                   ? part_with_text("message", "rfc822", original.content, encoding)
                   : part_with_text("text", "rfc822-headers", original.content, encoding);
  g_mime_multipart_add(report.get(), GMIME_OBJECT(third.get()));

  g_mime_message_set_mime_part(message.get(), GMIME_OBJECT(report.get()));
  GString out(g_mime_object_to_string(top, nullptr));
  if (!out) return make_error(ErrorCode::Invalid, "GMime could not write the report");
  return to_crlf(out.get());
}

}  // namespace

Result<BuiltFailureReport> build_failure_report(const store::FailurePayload& payload,
                                                const config::Config& config, std::int64_t now,
                                                std::string message_id) {
  mime::ensure_initialized();
  const config::FailureReportSettings& kind = settings_of(config, payload.request.kind);
  if (payload.request.recipient.empty()) {
    return make_error(ErrorCode::Invalid, "the failure report has no recipient");
  }
  if (kind.from_address.empty()) {
    return make_error(
        ErrorCode::Invalid,
        std::string("report.") + auth::to_string(payload.request.kind) + ".from-address is empty");
  }
  if (config.report.failure.redact && config.report.failure.redact_key.empty()) {
    return make_error(ErrorCode::Invalid, "report.failure.redact needs a redact-key");
  }
  BuiltFailureReport built;
  built.from_address = kind.from_address;
  built.recipient = payload.request.recipient;
  built.message_id =
      message_id.empty() ? detail::random_message_id(config.report.domain) : std::move(message_id);

  const bool whole = config.report.failure.include == config::FailureOriginal::Message;
  auto message = assemble(payload, config, kind, now, built.message_id, whole);
  if (!message.ok()) return std::move(message).error();
  // The DKIM-Signature fields the signer prepends count too: room is kept for each (an RSA
  // 4096 signature with a long h= stays under 1KB).
  std::uint64_t limit = payload.request.max_size;
  const std::uint64_t signatures = 1024 * static_cast<std::uint64_t>(kind.sign.size());
  if (limit != 0) limit = limit > signatures ? limit - signatures : 1;
  if (limit != 0 && message->size() > limit && whole) {
    // RFC 7489 §7.2.1 (ruf "!size"): try the smaller form before giving up on the URI.
    message = assemble(payload, config, kind, now, built.message_id, false);
    if (!message.ok()) return std::move(message).error();
  }
  if (limit != 0 && message->size() > limit) {
    return make_error(ErrorCode::LimitExceeded, "the report is " + std::to_string(message->size()) +
                                                    " bytes; " + payload.request.recipient +
                                                    " takes at most " +
                                                    std::to_string(payload.request.max_size) +
                                                    " (ruf !size), signatures included");
  }
  built.message = std::move(message).value();
  return built;
}

}  // namespace mailreport::outbound

// Delivery status notification parser (RFC 3464). The message/delivery-status body is a block
// of per-message fields (§2.2) followed by blank-line-separated per-recipient blocks (§2.3);
// the text is split into blocks here (CRLF, LF and bare-CR line endings all occur) and each
// block is parsed by GMime (mime::parse_header_fields).
//
// Real DSNs bend the format, so blocks are classified by the fields they hold rather than
// by position: a first block that already holds recipient fields (no blank line after the
// per-message fields) is split at its first recipient field, and a recipient block that
// repeats Final-Recipient/Action/Status without a blank line starts a new recipient. Each
// such salvage, and every missing required field, is noted in DsnReport::errors.
//
// "type; value" fields (Reporting-MTA: dns; mx.example.com, Final-Recipient: rfc822; a@b,
// Diagnostic-Code: smtp; 550 ...) keep the value after the type (Diagnostic-Code with its
// folding white space collapsed). Action is lower-cased, Status is kept as sent without
// comments, dates are also given as epoch seconds.
// Not done: the xtext decoding of Original-Recipient (§2.3.1) and of Original-Envelope-Id
// (RFC 3461 §4) is not applied; non-RFC 3464 bounces (plain text) are not parsed.
#include "mailreport/report/dsn.hpp"

#include <cctype>

#include "mailreport/mime/date.hpp"
#include "report/field_syntax.hpp"

namespace mailreport::report {

namespace {

using namespace fieldtext;

// RFC 3464 §2.2.
bool is_message_field(std::string_view n) {
  return n == "original-envelope-id" || n == "reporting-mta" || n == "dsn-gateway" ||
         n == "received-from-mta" || n == "arrival-date";
}

// RFC 3464 §2.3.
bool is_recipient_field(std::string_view n) {
  return n == "original-recipient" || n == "final-recipient" || n == "action" || n == "status" ||
         n == "remote-mta" || n == "diagnostic-code" || n == "last-attempt-date" ||
         n == "final-log-id" || n == "will-retry-until";
}

// RFC 3464 §2.3.4: status-code = DIGIT "." 1*3DIGIT "." 1*3DIGIT
bool valid_status(std::string_view s) {
  int part = 0;
  int digits = 0;
  for (char c : s) {
    if (std::isdigit(static_cast<unsigned char>(c))) {
      ++digits;
      if ((part == 0 && digits > 1) || digits > 3) return false;
    } else if (c == '.' && digits > 0 && part < 2) {
      ++part;
      digits = 0;
    } else {
      return false;
    }
  }
  return part == 2 && digits > 0 && (s.front() == '2' || s.front() == '4' || s.front() == '5');
}

std::string collapse_space(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    const bool space = c == ' ' || c == '\t' || c == '\r' || c == '\n';
    if (!space) {
      out.push_back(c);
    } else if (!out.empty() && out.back() != ' ') {
      out.push_back(' ');
    }
  }
  if (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

class DsnBuilder {
 public:
  explicit DsnBuilder(DsnReport& r) : r_(r) {}

  std::optional<std::int64_t> date(std::string_view name, std::string_view v) {
    auto t = mime::parse_date(v);
    if (!t) note(std::string(name) + ": not a date: \"" + std::string(v) + "\"");
    return t;
  }

  void note(std::string what) { r_.errors.push_back(std::move(what)); }

  void message_field(const HeaderField& f, const std::string& n) {
    const std::string_view v = trim(f.value);
    r_.fields.push_back(f);
    if (n == "original-envelope-id") {
      r_.original_envelope_id = std::string(v);  // case-sensitive (§2.2.1)
    } else if (n == "reporting-mta") {
      r_.reporting_mta = split_typed(v).value;
    } else if (n == "dsn-gateway") {
      r_.dsn_gateway = split_typed(v).value;
    } else if (n == "received-from-mta") {
      r_.received_from_mta = split_typed(v).value;
    } else if (n == "arrival-date") {
      r_.arrival_date = date(f.name, v);
    }
  }

  // Whether field `n` would overwrite one that `rcpt` already has: then a new recipient
  // group began without the blank line §2.1 asks for.
  static bool starts_new(const DsnRecipient& rcpt, std::string_view n) {
    return (n == "final-recipient" && !rcpt.final_recipient.empty()) ||
           (n == "original-recipient" && !rcpt.original_recipient.empty()) ||
           (n == "action" && !rcpt.action.empty()) || (n == "status" && !rcpt.status.empty());
  }

  void recipient_field(DsnRecipient& rc, const HeaderField& f, const std::string& n) {
    const std::string_view v = trim(f.value);
    rc.fields.push_back(f);
    if (n == "original-recipient") {
      rc.original_recipient = split_typed(v).value;
    } else if (n == "final-recipient") {
      rc.final_recipient = split_typed(v).value;
    } else if (n == "action") {
      // §2.3.3: failed / delayed / delivered / relayed / expanded, any case.
      rc.action = lower(strip_comments(v));
    } else if (n == "status") {
      rc.status = strip_comments(v);
    } else if (n == "remote-mta") {
      rc.remote_mta = split_typed(v).value;
    } else if (n == "diagnostic-code") {
      // Multi-line SMTP replies arrive folded; the folding white space is not part of the
      // text (the field in `fields` keeps it).
      rc.diagnostic_code = collapse_space(split_typed(v).value);
    } else if (n == "last-attempt-date") {
      rc.last_attempt_date = date(f.name, v);
    } else if (n == "final-log-id") {
      rc.final_log_id = std::string(v);
    } else if (n == "will-retry-until") {
      rc.will_retry_until = date(f.name, v);
    }
  }

  void block(const std::vector<HeaderField>& fields, std::size_t index) {
    bool has_recipient = false;
    for (const auto& f : fields) has_recipient = has_recipient || is_recipient_field(lower(f.name));
    if (!has_recipient) {
      if (!seen_message_block_) {
        for (const auto& f : fields) message_field(f, lower(f.name));
      } else {
        note("block " + std::to_string(index + 1) +
             " has no per-recipient fields; kept with the per-message fields");
        for (const auto& f : fields) {
          const std::string n = lower(f.name);
          if (is_message_field(n) && message_slot_empty(n)) {
            message_field(f, n);
          } else {
            r_.fields.push_back(f);
          }
        }
      }
      seen_message_block_ = true;
      return;
    }
    // A recipient block. The per-message block may be glued to it (no blank line between),
    // and a recipient's fields may be spread over two blocks (boxbe.com puts Action in the
    // per-message block and Final-Recipient in the next): a previous recipient without a
    // Final-Recipient is continued rather than left incomplete.
    DsnRecipient* current = nullptr;
    if (!r_.recipients.empty() && r_.recipients.back().final_recipient.empty()) {
      current = &r_.recipients.back();
      note("recipient fields spread over two blocks; merged");
    }
    bool had_message_fields = false;
    bool split = false;
    for (const auto& f : fields) {
      const std::string n = lower(f.name);
      if (is_message_field(n) && message_slot_empty(n)) {
        message_field(f, n);
        had_message_fields = true;
        continue;
      }
      if (current == nullptr) {
        if (!is_recipient_field(n) && !seen_message_block_) {
          r_.fields.push_back(f);  // an extension field of the glued per-message block
          continue;
        }
        current = &r_.recipients.emplace_back();
      } else if (is_recipient_field(n) && starts_new(*current, n)) {
        current = &r_.recipients.emplace_back();
        split = true;
      }
      recipient_field(*current, f, n);
    }
    if (had_message_fields && !seen_message_block_) {
      note("per-message and per-recipient fields in one block (no blank line between them)");
    }
    if (split) note("recipient groups not separated by a blank line");
    seen_message_block_ = true;
  }

  void finish() {
    // §2.2.2: Reporting-MTA is required; §2.3.2-2.3.4: Final-Recipient, Action, Status.
    if (r_.reporting_mta.empty()) note("Reporting-MTA: missing");
    if (r_.recipients.empty()) note("no per-recipient block");
    std::size_t i = 0;
    for (const auto& rc : r_.recipients) {
      const std::string who = "recipient " + std::to_string(++i) + ": ";
      if (rc.final_recipient.empty()) note(who + "Final-Recipient missing");
      if (rc.action.empty()) {
        note(who + "Action missing");
      } else if (rc.action != "failed" && rc.action != "delayed" && rc.action != "delivered" &&
                 rc.action != "relayed" && rc.action != "expanded") {
        note(who + "Action \"" + rc.action + "\" is not an RFC 3464 action");
      }
      if (rc.status.empty()) {
        note(who + "Status missing");
      } else if (!valid_status(rc.status)) {
        note(who + "Status \"" + rc.status + "\" is not an RFC 3464 status code");
      }
    }
  }

 private:
  bool message_slot_empty(std::string_view n) const {
    if (n == "original-envelope-id") return r_.original_envelope_id.empty();
    if (n == "reporting-mta") return r_.reporting_mta.empty();
    if (n == "dsn-gateway") return r_.dsn_gateway.empty();
    if (n == "received-from-mta") return r_.received_from_mta.empty();
    if (n == "arrival-date") return !r_.arrival_date.has_value();
    return false;
  }

  DsnReport& r_;
  bool seen_message_block_ = false;
};

}  // namespace

Result<DsnReport> parse_dsn(const DsnParts& parts) {
  DsnReport r;
  if (auto* f = mime::find_field(parts.outer_headers, "Subject")) r.subject = f->value;
  if (auto* f = mime::find_field(parts.outer_headers, "From")) r.from = f->value;
  if (auto* f = mime::find_field(parts.outer_headers, "Message-ID")) r.message_id = f->value;
  if (!trim(parts.original).empty()) r.original_headers = parse_fields(parts.original);

  DsnBuilder b(r);
  const std::string text = normalize_newlines(parts.delivery_status);
  const auto blocks = split_blocks(text);
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    // A MIME boundary line means the part ran on past its end (a broken boundary in the
    // enclosing multipart): what follows is another part, not delivery status.
    if (trim(blocks[i]).substr(0, 2) == "--") {
      b.note("block " + std::to_string(i + 1) + " starts with a MIME boundary; the rest ignored");
      break;
    }
    auto fields = parse_fields(blocks[i]);
    if (fields.empty()) {
      b.note("block " + std::to_string(i + 1) + " holds no header fields; skipped");
      continue;
    }
    b.block(fields, i);
  }
  if (r.recipients.empty() && r.reporting_mta.empty()) {
    return make_error(ErrorCode::NotAReport,
                      "no Reporting-MTA and no per-recipient block in message/delivery-status");
  }
  b.finish();
  return r;
}

}  // namespace mailreport::report

// Finding reports in whatever arrives (see report/extract.hpp).
//
// An input is sniffed (sniff.hpp), not trusted by its labels: a stream is gzip, zip, XML
// (DMARC aggregate, RFC 7489 App. C / RFC 9990), JSON (TLS-RPT, RFC 8460 §4) or a message.
// Containers are opened and their content sniffed again, up to max_nesting levels.
//
// In a message (MIME parsing is GMime's, mime/message.hpp) the walk has two passes:
//  1. containers: a multipart with a message/feedback-report part is an ARF report
//     (RFC 5965 §2; also when the part is mislabelled text/plain or base64 but its content
//     starts with "Feedback-Type:"); one with a message/delivery-status part is a DSN
//     (RFC 3464 §2, RFC 6533 message/global-delivery-status); a multipart/report with only
//     text (Exim/cPanel failure reports) is handed to the ARF parser with no feedback part,
//     which decides. The third part of a multipart/report (the reported or returned message)
//     is never searched for reports: a bounce of our own report is a DSN, not a report.
//  2. leaves: a part whose type or file name suggests a report (RFC 9990 §3.5.2
//     application/gzip + .xml.gz, RFC 8460 §5.3 application/tlsrpt+gzip/json, and what the
//     world sends: octet-stream, zip, .xml, .json) is decoded, sniffed and dispatched; any
//     other part is dispatched only when its decoded content starts with gzip or zip magic,
//     or is text whose XML has a <feedback> element.
//
// Outcome: the number of reports delivered, and notes. With no report, the error is the
// first LimitExceeded if a cap was hit, else the first Invalid report part, else NotAReport
// listing what was looked at. A sink or I/O failure aborts at once.
//
// Memory: XML and archives are streamed; TLS JSON, feedback-report and delivery-status parts
// are read whole up to 16 MiB; a reported/returned message is kept up to 1 MiB (headers
// first); a message found inside a container is parsed from memory (capped).
//
// Not done: message/partial reassembly, S/MIME or PGP protected reports, MDNs
// (report-type=disposition-notification), reports inside tar/7z/rar.
#include "mailreport/report/extract.hpp"

#include <algorithm>
#include <optional>
#include <string_view>

#include "mailreport/mime/message.hpp"
#include "mailreport/report/arf.hpp"
#include "mailreport/report/dmarc_xml.hpp"
#include "mailreport/report/dsn.hpp"
#include "mailreport/report/tlsrpt_json.hpp"
#include "report/capped.hpp"
#include "report/gzip.hpp"
#include "report/sniff.hpp"
#include "report/zip.hpp"

namespace mailreport::report {

namespace {

using detail::CappedSource;
using detail::Format;
using detail::PeekSource;

constexpr std::size_t kPeek = 4096;
constexpr std::size_t kSmallPartMax = 16u << 20;     // TLS JSON, feedback-report, delivery-status
constexpr std::size_t kOriginalMax = 1u << 20;       // reported / returned message (headers first)
constexpr std::size_t kHumanMax = 256u << 10;        // human-readable part of a report
constexpr std::size_t kInnerMessageMax = 64u << 20;  // a message found inside a container
constexpr std::size_t kNpos = static_cast<std::size_t>(-1);

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string with_label(const std::string& label, const std::string& message) {
  return label.empty() ? message : label + ": " + message;
}

// Counts delivered reports and remembers whether the downstream sink failed, so that a sink
// error (e.g. the store) is told apart from a parser error and aborts the extraction.
class CountingSink final : public ReportSink {
 public:
  explicit CountingSink(ReportSink& inner) : inner_(inner) {}

  Status dmarc_begin(const DmarcHeader& header) override {
    in_dmarc_ = true;
    return watch(inner_.dmarc_begin(header));
  }
  Status dmarc_record(DmarcRecord&& record) override {
    return watch(inner_.dmarc_record(std::move(record)));
  }
  Status dmarc_end(const DmarcHeader& header, const std::vector<std::string>& errors) override {
    in_dmarc_ = false;
    return count(inner_.dmarc_end(header, errors));
  }
  Status tls(TlsReport&& report) override { return count(inner_.tls(std::move(report))); }
  Status arf(ArfReport&& report) override { return count(inner_.arf(std::move(report))); }
  Status dsn(DsnReport&& report) override { return count(inner_.dsn(std::move(report))); }

  std::size_t delivered() const noexcept { return delivered_; }
  const std::optional<Error>& failure() const noexcept { return failure_; }
  // True when a DMARC report was begun and not ended (its parser failed midway).
  bool take_unfinished() noexcept { return std::exchange(in_dmarc_, false); }

 private:
  Status watch(Status s) {
    if (!s && !failure_) failure_ = s.error();
    return s;
  }
  Status count(Status s) {
    if (s) ++delivered_;
    return watch(std::move(s));
  }

  ReportSink& inner_;
  std::size_t delivered_ = 0;
  bool in_dmarc_ = false;
  std::optional<Error> failure_;
};

// A non-owning ByteSource handle, for APIs that take ownership.
class RefSource final : public ByteSource {
 public:
  explicit RefSource(ByteSource& s) : s_(s) {}
  Result<std::size_t> read(std::span<char> buf) override { return s_.read(buf); }

 private:
  ByteSource& s_;
};

bool is_report_type(const std::string& t) {
  static constexpr std::string_view kTypes[] = {
      "application/gzip",
      "application/x-gzip",
      "application/x-gunzip",
      "application/gzip-compressed",
      "application/x-gzip-compressed",
      "application/zip",
      "application/x-zip-compressed",
      "application/x-zip",
      "application/octet-stream",
      "text/xml",
      "application/xml",
      "application/json",
      "application/tlsrpt+json",
      "application/tlsrpt+gzip",
      "application/tlsrpt",
  };
  return std::find(std::begin(kTypes), std::end(kTypes), t) != std::end(kTypes);
}

bool is_report_name(const std::string& filename) {
  std::string n = lower(filename);
  for (std::string_view ext : {".xml", ".gz", ".zip", ".json", ".gzip"}) {
    if (ends_with(n, ext)) return true;
  }
  return false;
}

// RFC 5965 §2 (c), RFC 3464 §2 (c), RFC 6533 §6: the reported / returned message. The
// singular and "message/rfc822-headers" spellings are real-world variants.
bool is_original_type(const std::string& t) {
  return t == "message/rfc822" || t == "message/global" || t == "text/rfc822-headers" ||
         t == "text/rfc822-header" || t == "message/rfc822-headers" ||
         t == "message/global-headers";
}

// RFC 3464 §2.1 message/delivery-status, RFC 6533 §6.2 message/global-delivery-status, and
// the x- spellings seen in the wild.
bool is_delivery_status_type(const std::string& t) {
  return t.rfind("message/", 0) == 0 && ends_with(t, "delivery-status");
}

bool line_starts_with_field(std::string_view line, std::string_view field) {
  return detail::starts_with_field(line.substr(0, field.size() + 8), field) && !line.empty() &&
         line.front() != ' ' && line.front() != '\t';
}

// A bounce whose MIME structure is broken (boundaries that do not match, a boundary line
// indented) still carries its RFC 3464 §2.2/§2.3 field groups as text. Returns them: the
// group that starts at the first "Reporting-MTA:" (or "Final-Recipient:") line, and each
// following blank-line-separated group that has per-recipient fields; "" when none.
std::string salvage_delivery_status(std::string_view text) {
  std::size_t start = std::string_view::npos;
  for (std::string_view field : {"Reporting-MTA", "Final-Recipient"}) {
    for (std::size_t pos = 0; pos < text.size();) {
      std::size_t eol = text.find('\n', pos);
      std::string_view line =
          text.substr(pos, eol == std::string_view::npos ? text.npos : eol - pos);
      if (line_starts_with_field(line, field)) {
        start = pos;
        break;
      }
      if (eol == std::string_view::npos) break;
      pos = eol + 1;
    }
    if (start != std::string_view::npos) break;
  }
  if (start == std::string_view::npos) return {};
  std::string out;
  std::string group;
  bool first = true;
  auto flush_group = [&]() -> bool {
    if (group.empty()) return true;
    bool recipient = false;
    std::size_t pos = 0;
    while (pos < group.size()) {
      std::size_t eol = group.find('\n', pos);
      std::string_view line = std::string_view(group).substr(pos, eol - pos);
      for (std::string_view f : {"Final-Recipient", "Original-Recipient", "Action", "Status"}) {
        recipient = recipient || line_starts_with_field(line, f);
      }
      pos = eol + 1;
    }
    if (!first && !recipient) return false;
    out += group + "\n";
    group.clear();
    first = false;
    return true;
  };
  for (std::size_t pos = start; pos < text.size();) {
    std::size_t eol = text.find('\n', pos);
    std::string_view line = text.substr(pos, eol == std::string_view::npos ? text.npos : eol - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.substr(0, 2) == "--") break;  // a MIME boundary
    if (line.find_first_not_of(" \t") == std::string_view::npos) {
      if (!flush_group()) break;
    } else {
      group.append(line).append("\n");
    }
    if (eol == std::string_view::npos) break;
    pos = eol + 1;
  }
  flush_group();
  return out;
}

// A part that may carry report fields as text despite its label.
bool is_textish(const std::string& t) {
  return t.rfind("text/", 0) == 0 || t == "application/octet-stream" ||
         t == "message/feedback-report" || is_delivery_status_type(t);
}

class Extractor {
 public:
  Extractor(ReportSink& sink, const ExtractLimits& limits)
      : sink_(sink),
        limits_(limits),
        caps_{limits.max_decompressed_bytes, limits.max_compression_ratio,
              limits.ratio_grace_bytes} {}

  Result<ExtractOutcome> run(const Input& input);

 private:
  Status dispatch(ByteSource& src, const std::string& label, int depth);
  Status dispatch_peeked(PeekSource& src, Format fmt, const std::string& label, int depth);
  Status handle_message(const mime::Message& m, const std::string& label, int depth);
  Status try_container(const mime::Message& m, std::size_t i, std::size_t limit,
                       std::vector<bool>& consumed);
  Status try_leaf(const mime::Message& m, std::size_t i, int depth);
  Status deliver_arf(const mime::Message& m, std::size_t container, std::size_t feedback,
                     std::size_t human, std::size_t original, bool* not_a_report);
  Status deliver_dsn(const mime::Message& m, std::size_t container, std::size_t status,
                     std::size_t original);
  Status deliver_dsn_text(const mime::Message& m, std::size_t container, std::string status_text,
                          std::size_t original);

  // Classifies the outcome of handling one part. Returns an error only when extraction must
  // stop (the sink failed, the input cannot be read); other failures are recorded.
  Status record(Status s, const std::string& label);
  void record_limit(const Error& e, const std::string& label);
  std::size_t max_small() const {
    return static_cast<std::size_t>(
        std::min<std::uint64_t>(kSmallPartMax, limits_.max_decompressed_bytes));
  }

  CountingSink sink_;
  ExtractLimits limits_;
  detail::DecompressionCaps caps_;
  ExtractOutcome out_;
  std::optional<Error> limit_error_;
  std::optional<Error> invalid_error_;
  std::vector<std::string> looked_at_;  // for the NotAReport reason
};

Status Extractor::record(Status s, const std::string& label) {
  if (sink_.take_unfinished() && !s) {
    out_.notes.push_back(with_label(label, "DMARC report abandoned midway"));
  }
  if (s) return s;
  if (sink_.failure()) return *sink_.failure();
  Error e = s.error();
  switch (e.code) {
    case ErrorCode::Io:
    case ErrorCode::Store:
    case ErrorCode::Temporary: return make_error(e.code, with_label(label, e.message));
    case ErrorCode::LimitExceeded: record_limit(e, label); return {};
    case ErrorCode::NotAReport:
      looked_at_.push_back(with_label(label, e.message));
      out_.notes.push_back(with_label(label, e.message));
      return {};
    default:
      if (!invalid_error_) invalid_error_ = make_error(e.code, with_label(label, e.message));
      out_.notes.push_back(with_label(label, e.message));
      return {};
  }
}

void Extractor::record_limit(const Error& e, const std::string& label) {
  if (!limit_error_) limit_error_ = e;  // the cap's own message ("gzip: ...") is clear enough
  std::string note = with_label(label, e.message);
  if (std::find(out_.notes.begin(), out_.notes.end(), note) == out_.notes.end()) {
    out_.notes.push_back(note);
  }
}

Result<ExtractOutcome> Extractor::run(const Input& input) {
  auto head = input.head(kPeek);
  if (!head) return std::move(head).error();
  Format fmt = detail::sniff(*head);
  if (fmt == Format::Empty)
    return make_error(ErrorCode::NotAReport, "no report found: empty input");
  Status s;
  if (fmt == Format::Message) {
    auto m = mime::Message::parse(input, limits_.max_decompressed_bytes);
    s = m ? handle_message(*m, "", 0) : record(std::move(m).error(), "");
  } else {
    auto src = input.open();
    if (!src) return std::move(src).error();
    PeekSource peek(**src);
    s = peek.fill(kPeek);
    s = s ? dispatch_peeked(peek, fmt, "", 0) : record(std::move(s), "");
  }
  if (!s) return std::move(s).error();
  out_.reports = sink_.delivered();
  if (out_.reports > 0) return std::move(out_);
  if (limit_error_) return *limit_error_;
  if (invalid_error_) return *invalid_error_;
  std::string reason = "no report found";
  for (std::size_t i = 0; i < looked_at_.size() && i < 12; ++i) {
    reason += (i == 0 ? ": " : "; ") + looked_at_[i];
  }
  if (looked_at_.size() > 12) reason += "; ...";
  return make_error(ErrorCode::NotAReport, reason);
}

Status Extractor::dispatch(ByteSource& src, const std::string& label, int depth) {
  PeekSource peek(src);
  if (auto s = peek.fill(kPeek); !s) return record(std::move(s), label);
  return dispatch_peeked(peek, detail::sniff(peek.head()), label, depth);
}

Status Extractor::dispatch_peeked(PeekSource& src, Format fmt, const std::string& label,
                                  int depth) {
  bool container =
      fmt == Format::Gzip || fmt == Format::Zip || fmt == Format::Message || fmt == Format::Base64;
  if (container && depth >= limits_.max_nesting) {
    record_limit(make_error(ErrorCode::LimitExceeded,
                            "containers nested deeper than " + std::to_string(limits_.max_nesting)),
                 label);
    return {};
  }
  switch (fmt) {
    case Format::Empty: looked_at_.push_back(with_label(label, "empty")); return {};
    case Format::Unknown: looked_at_.push_back(with_label(label, detail::describe(fmt))); return {};
    case Format::Gzip: {
      detail::GzipSource gz(src, &out_.notes);
      CappedSource capped(
          gz, [&gz] { return gz.consumed(); }, caps_, "gzip");
      std::string inner = label.empty() ? "gzip" : label + " (gzip)";
      if (auto s = dispatch(capped, inner, depth + 1); !s) return s;
      if (capped.tripped()) record_limit(*capped.tripped(), label);
      return {};
    }
    case Format::Zip: {
      auto walk = detail::for_each_zip_entry(
          src, caps_, limits_.max_parts,
          [&](const detail::ZipEntry& e, ByteSource& content) -> Status {
            std::string name = e.name.empty()
                                   ? "zip entry #" + std::to_string(e.number) + " (no name)"
                                   : "zip entry '" + e.name + "'";
            return dispatch(content, label.empty() ? name : label + " " + name, depth + 1);
          },
          &out_.notes);
      if (!walk) return record(std::move(walk).error(), label);
      if (walk->entries == 0) looked_at_.push_back(with_label(label, "zip without entries"));
      return {};
    }
    case Format::Base64: {
      auto decoded = mime::base64_decoding_source(std::make_unique<RefSource>(src));
      return dispatch(*decoded, label.empty() ? "base64" : label + " (base64)", depth + 1);
    }
    case Format::Xml:
      // RFC 7489 App. C / RFC 9990: the parser streams records to the sink.
      return record(parse_dmarc_xml(src, sink_), label);
    case Format::Json: {
      auto text = read_all(src, max_small());
      if (!text) return record(std::move(text).error(), label);
      auto report = parse_tlsrpt_json(*text);
      if (!report) return record(std::move(report).error(), label);
      return record(sink_.tls(std::move(*report)), label);
    }
    case Format::Message: {
      auto text = read_all(src, static_cast<std::size_t>(std::min<std::uint64_t>(
                                    kInnerMessageMax, limits_.max_decompressed_bytes)));
      if (!text) return record(std::move(text).error(), label);
      auto m = mime::Message::parse(Input::from_memory(std::move(*text), label));
      if (!m) return record(std::move(m).error(), label);
      return handle_message(*m, label, depth + 1);
    }
  }
  return {};
}

Status Extractor::handle_message(const mime::Message& m, const std::string& label, int depth) {
  const auto& parts = m.parts();
  for (const auto& n : m.notes()) out_.notes.push_back(with_label(label, n));
  if (parts.empty()) {
    looked_at_.push_back(with_label(label, "message without a body"));
    return {};
  }
  std::size_t limit = parts.size();
  if (m.truncated()) {
    record_limit(
        make_error(ErrorCode::LimitExceeded, "MIME: parts nested too deep or too many to examine"),
        label);
  }
  if (limit > limits_.max_parts) {
    limit = limits_.max_parts;
    record_limit(make_error(ErrorCode::LimitExceeded,
                            "MIME: more than " + std::to_string(limits_.max_parts) + " parts"),
                 label);
  }
  // What was looked at, for the NotAReport reason: "multipart/mixed with text/plain, ...".
  std::string summary = parts[0].content_type;
  if (!parts[0].is_leaf()) {
    std::string leaves;
    std::size_t shown = 0;
    for (std::size_t i = 1; i < limit; ++i) {
      if (!parts[i].is_leaf()) continue;
      if (shown++ == 8) {
        leaves += ", ...";
        break;
      }
      leaves += (leaves.empty() ? "" : ", ") + parts[i].content_type;
    }
    summary += leaves.empty() ? " without parts" : " with " + leaves;
  }
  looked_at_.push_back(with_label(label, summary));

  std::vector<bool> consumed(limit, false);
  for (std::size_t i = 0; i < limit; ++i) {
    if (consumed[i] || parts[i].kind != mime::NodeKind::Multipart) continue;
    if (auto s = try_container(m, i, limit, consumed); !s) return s;
  }
  for (std::size_t i = 0; i < limit; ++i) {
    if (consumed[i] || !parts[i].is_leaf()) continue;
    if (auto s = try_leaf(m, i, depth); !s) return s;
  }
  return {};
}

namespace {
// Marks node i and everything below it (the nodes after it with a greater depth).
void consume_subtree(const std::vector<mime::Part>& parts, std::size_t i,
                     std::vector<bool>& consumed) {
  consumed[i] = true;
  for (std::size_t k = i + 1; k < consumed.size() && parts[k].depth > parts[i].depth; ++k) {
    consumed[k] = true;
  }
}

// The first text/plain leaf at or below node i.
std::size_t first_text_plain(const std::vector<mime::Part>& parts, std::size_t i,
                             std::size_t limit) {
  for (std::size_t k = i; k < limit && (k == i || parts[k].depth > parts[i].depth); ++k) {
    if (parts[k].is_leaf() && parts[k].content_type == "text/plain") return k;
  }
  return kNpos;
}
}  // namespace

Status Extractor::try_container(const mime::Message& m, std::size_t i, std::size_t limit,
                                std::vector<bool>& consumed) {
  const auto& parts = m.parts();
  const mime::Part& c = parts[i];
  bool is_report = c.content_type == "multipart/report";
  std::string report_type;
  if (const std::string* rt = c.parameter("report-type"); rt && is_report) report_type = lower(*rt);

  std::size_t feedback = kNpos, feedback_text = kNpos, status = kNpos, status_text = kNpos;
  std::size_t original = kNpos, human = kNpos;
  for (std::size_t k : c.children) {
    if (k >= limit) continue;
    const mime::Part& p = parts[k];
    if (p.kind == mime::NodeKind::Multipart) {
      if (human == kNpos) human = first_text_plain(parts, k, limit);
      continue;
    }
    if (p.kind == mime::NodeKind::Message || is_original_type(p.content_type)) {
      if (original == kNpos) original = k;
      continue;
    }
    if (p.content_type == "message/feedback-report") {
      if (feedback == kNpos) feedback = k;
      continue;
    }
    if (is_delivery_status_type(p.content_type)) {
      if (status == kNpos) status = k;
      continue;
    }
    if (is_textish(p.content_type)) {
      // Mislabelled report parts: base64 text/plain "ATT00001" feedback reports (NetEase via
      // Outlook), text/plain delivery-status groups.
      auto head = m.text(k, 512);
      if (!head) {
        if (auto s = record(std::move(head).error(), p.content_type); !s) return s;
        continue;
      }
      if (detail::starts_with_field(*head, "Feedback-Type")) {
        if (feedback_text == kNpos) feedback_text = k;
        continue;
      }
      if (report_type == "delivery-status" &&
          (detail::starts_with_field(*head, "Reporting-MTA") ||
           detail::starts_with_field(*head, "Original-Envelope-Id") ||
           detail::starts_with_field(*head, "Final-Recipient") ||
           detail::starts_with_field(*head, "Received-From-MTA") ||
           detail::starts_with_field(*head, "Arrival-Date"))) {
        if (status_text == kNpos) status_text = k;
        continue;
      }
    }
    if (p.content_type == "text/plain" && human == kNpos) human = k;
  }
  if (feedback == kNpos) feedback = feedback_text;
  if (status == kNpos) status = status_text;

  // The reported / returned message is evidence, never a place to look for reports.
  if (is_report && original != kNpos) consume_subtree(parts, original, consumed);

  if (feedback != kNpos) {
    consume_subtree(parts, i, consumed);
    return deliver_arf(m, i, feedback, human, original, nullptr);
  }
  if (status != kNpos) {
    consume_subtree(parts, i, consumed);
    return deliver_dsn(m, i, status, original);
  }
  if (report_type == "delivery-status") {
    // A DSN whose MIME structure is broken: look for its field groups in the text.
    auto text = m.text(i, kOriginalMax);
    if (!text) return record(std::move(text).error(), c.content_type);
    std::string fields = salvage_delivery_status(*text);
    if (!fields.empty()) {
      consume_subtree(parts, i, consumed);
      out_.notes.push_back("delivery-status fields found in the text of a broken multipart/report");
      return deliver_dsn_text(m, i, std::move(fields), original);
    }
  }
  if (is_report && human != kNpos && report_type != "delivery-status" && report_type != "tlsrpt" &&
      report_type != "disposition-notification") {
    // Exim/cPanel "DMARC Forensic Report": multipart/report with text only. The ARF parser
    // synthesises a report from the text or says it is none.
    bool not_a_report = false;
    if (auto s = deliver_arf(m, i, kNpos, human, original, &not_a_report); !s) return s;
    if (!not_a_report) consume_subtree(parts, i, consumed);
  }
  return {};
}

Status Extractor::deliver_arf(const mime::Message& m, std::size_t container, std::size_t feedback,
                              std::size_t human, std::size_t original, bool* not_a_report) {
  const auto& parts = m.parts();
  std::string label = parts[container].content_type;
  std::string feedback_text, human_text, original_text;
  if (feedback != kNpos) {
    auto src = m.open(feedback);
    if (!src) return record(std::move(src).error(), label);
    auto text = read_all(**src, max_small());
    if (!text) return record(std::move(text).error(), label + " feedback report");
    feedback_text = std::move(*text);
  }
  if (human != kNpos) {
    auto text = m.text(human, kHumanMax);
    if (!text) return record(std::move(text).error(), label + " text part");
    human_text = std::move(*text);
  }
  ArfParts arf;
  if (original != kNpos) {
    auto text = m.text(original, kOriginalMax);
    if (!text) return record(std::move(text).error(), label + " original message");
    original_text = std::move(*text);
    arf.original_type = parts[original].content_type;
  }
  arf.outer_headers = m.enclosing_headers(container);
  arf.feedback_report = feedback_text;
  arf.human_readable = human_text;
  arf.original = original_text;
  auto report = parse_arf(arf);
  if (!report) {
    if (not_a_report && report.error().code == ErrorCode::NotAReport) *not_a_report = true;
    return record(std::move(report).error(), label);
  }
  return record(sink_.arf(std::move(*report)), label);
}

Status Extractor::deliver_dsn(const mime::Message& m, std::size_t container, std::size_t status,
                              std::size_t original) {
  std::string label = m.parts()[container].content_type;
  auto src = m.open(status);
  if (!src) return record(std::move(src).error(), label);
  auto status_text = read_all(**src, max_small());
  if (!status_text) return record(std::move(status_text).error(), label + " delivery status");
  return deliver_dsn_text(m, container, std::move(*status_text), original);
}

Status Extractor::deliver_dsn_text(const mime::Message& m, std::size_t container,
                                   std::string status_text, std::size_t original) {
  std::string label = m.parts()[container].content_type;
  std::string original_text;
  if (original != kNpos) {
    auto text = m.text(original, kOriginalMax);
    if (!text) return record(std::move(text).error(), label + " returned message");
    original_text = std::move(*text);
  }
  DsnParts dsn;
  dsn.outer_headers = m.enclosing_headers(container);
  dsn.delivery_status = status_text;
  dsn.original = original_text;
  auto report = parse_dsn(dsn);
  if (!report) return record(std::move(report).error(), label);
  return record(sink_.dsn(std::move(*report)), label);
}

Status Extractor::try_leaf(const mime::Message& m, std::size_t i, int depth) {
  const mime::Part& p = m.parts()[i];
  std::string label = p.content_type;
  if (!p.filename.empty()) label += " '" + p.filename + "'";
  bool labelled = is_report_type(p.content_type) || is_report_name(p.filename);
  auto src = m.open(i);
  if (!src) return record(std::move(src).error(), label);
  PeekSource peek(**src);
  if (auto s = peek.fill(kPeek); !s) return record(std::move(s), label);
  Format fmt = detail::sniff(peek.head());
  bool go = labelled || fmt == Format::Gzip || fmt == Format::Zip;
  if (!go && fmt == Format::Xml && p.content_type.rfind("text/", 0) == 0) {
    // A text body that is a DMARC aggregate report pasted inline.
    go = peek.head().find("<feedback") != std::string_view::npos;
  }
  if (!go) return {};
  return dispatch_peeked(peek, fmt, label, depth);
}

}  // namespace

Result<ExtractOutcome> extract_reports(const Input& input, ReportSink& sink,
                                       const ExtractLimits& limits) {
  mime::ensure_initialized();
  Extractor extractor(sink, limits);
  return extractor.run(input);
}

}  // namespace mailreport::report

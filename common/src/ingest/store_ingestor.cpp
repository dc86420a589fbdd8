// The ingest path (see mailreport/ingest/store_ingestor.hpp): raw message, extracted reports
// and parse outcome in one store transaction. The design's promise — a 250 from the LMTP
// receiver means the message is durably kept, parsed or not (RFC 2033 §4.2) — rests here:
// only a store failure is an error; anything the parsers cannot read is kept raw, with why.
#include "mailreport/ingest/store_ingestor.hpp"

#include <strings.h>

#include <chrono>
#include <exception>

#include "mailreport/util/metrics.hpp"

namespace mailreport::ingest {

namespace {

constexpr std::size_t kMaxErrorText = 4096;

std::int64_t now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void append_note(std::string& text, const std::string& note) {
  if (text.size() >= kMaxErrorText) return;
  if (!text.empty()) text += "; ";
  text += note;
  if (text.size() > kMaxErrorText) text.resize(kMaxErrorText);
}

// Runs the extractor; a parser that throws (it should not) is a parse failure of this
// message, not a reason to lose it.
Result<report::ExtractOutcome> run_extractor(const Input& message, report::ReportSink& sink,
                                             const report::ExtractLimits& limits) {
  try {
    return report::extract_reports(message, sink, limits);
  } catch (const std::exception& e) {
    return make_error(ErrorCode::Invalid, std::string("parser failure: ") + e.what());
  }
}

// The Message-ID of the message a DSN returns (RFC 3464 §2: the third part, here its header
// fields), without angle brackets; "" when it has none.
std::string returned_message_id(const report::DsnReport& dsn) {
  for (const auto& field : dsn.original_headers) {
    if (strcasecmp(field.name.c_str(), "Message-ID") != 0) continue;
    std::string_view v = field.value;
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() &&
           (v.back() == ' ' || v.back() == '\t' || v.back() == '\r' || v.back() == '\n')) {
      v.remove_suffix(1);
    }
    if (v.size() >= 2 && v.front() == '<' && v.back() == '>') v = v.substr(1, v.size() - 2);
    return std::string(v);
  }
  return {};
}

// Passes everything to the store's writer and notes, for each DSN the writer stored as new
// (not a duplicate), the returned Message-ID and why delivery failed, when a recipient failed.
// Counts the reports the writer stored as new, by type.
class BounceNotingSink final : public report::ReportSink {
 public:
  BounceNotingSink(store::ReportWriter& inner,
                   std::vector<std::pair<std::string, std::string>>& bounces)
      : inner_(inner), bounces_(bounces) {}

  Status dmarc_begin(const report::DmarcHeader& h) override { return inner_.dmarc_begin(h); }
  Status dmarc_record(report::DmarcRecord&& r) override {
    return inner_.dmarc_record(std::move(r));
  }
  Status dmarc_end(const report::DmarcHeader& h, const std::vector<std::string>& e) override {
    const std::size_t before = inner_.stored();
    Status st = inner_.dmarc_end(h, e);
    note_stored(report::ReportType::DmarcAggregate, before);
    return st;
  }
  Status tls(report::TlsReport&& r) override {
    const std::size_t before = inner_.stored();
    Status st = inner_.tls(std::move(r));
    note_stored(report::ReportType::TlsAggregate, before);
    return st;
  }
  Status arf(report::ArfReport&& r) override {
    const std::size_t before = inner_.stored();
    Status st = inner_.arf(std::move(r));
    note_stored(report::ReportType::Arf, before);
    return st;
  }
  Status dsn(report::DsnReport&& r) override {
    std::string id = returned_message_id(r);
    std::string reason;
    for (const auto& rcpt : r.recipients) {
      if (rcpt.action != "failed") continue;  // RFC 3464 §2.3.3: delayed etc. are not bounces
      reason = rcpt.status;
      if (!rcpt.diagnostic_code.empty()) reason += " " + rcpt.diagnostic_code;
      if (reason.empty()) reason = "failed";
      break;
    }
    const std::size_t before = inner_.stored();
    Status st = inner_.dsn(std::move(r));
    note_stored(report::ReportType::Dsn, before);
    if (st && inner_.stored() > before && !id.empty() && !reason.empty()) {
      bounces_.emplace_back(std::move(id), std::move(reason));
    }
    return st;
  }

  const std::array<std::size_t, 4>& stored_by_type() const noexcept { return by_type_; }

 private:
  void note_stored(report::ReportType type, std::size_t before) {
    const std::size_t now = inner_.stored();
    if (now > before) by_type_[static_cast<std::size_t>(type)] += now - before;
  }

  std::array<std::size_t, 4> by_type_{};
  store::ReportWriter& inner_;
  std::vector<std::pair<std::string, std::string>>& bounces_;
};

// Counts a committed message in this process's metrics (docs/metrics.md). Only ingest()
// counts: a reparse does not receive anything.
void count_received(const Outcome& outcome) {
  Metrics& m = Metrics::process();
  for (auto type : {report::ReportType::DmarcAggregate, report::ReportType::TlsAggregate,
                    report::ReportType::Arf, report::ReportType::Dsn}) {
    const std::size_t n = outcome.stored_by_type[static_cast<std::size_t>(type)];
    if (n == 0) continue;
    m.counter("mailreport_reports_received_total", "type", report::to_string(type))
        .fetch_add(n, std::memory_order_relaxed);
  }
  if (outcome.parse_error) {
    m.counter("mailreport_parse_failures_total").fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace

StoreIngestor::StoreIngestor(store::Store& store, Logger& log, IngestOptions options)
    : store_(store), log_(log), options_(std::move(options)) {}

Result<Outcome> StoreIngestor::extract_into(
    store::WriteTransaction& tx, std::int64_t message_id, std::int64_t received_at,
    const Input& message, const std::string& log_ctx,
    std::vector<std::pair<std::string, std::string>>* bounces) {
  auto writer = tx.report_writer(message_id, received_at);
  std::vector<std::pair<std::string, std::string>> ignored;
  BounceNotingSink sink(*writer, bounces != nullptr ? *bounces : ignored);
  auto extracted = run_extractor(message, sink, options_.limits);
  // A store failure inside the sink fails the whole message: nothing may be committed.
  if (auto st = writer->finish(); !st) return std::move(st).error();
  if (writer->store_error()) return *writer->store_error();
  if (!extracted && extracted.error().code == ErrorCode::Store) return extracted.error();

  Outcome out;
  out.message_id = message_id;
  out.reports_stored = writer->stored();
  out.duplicates = writer->duplicates();
  out.stored_by_type = sink.stored_by_type();

  std::string notes;
  if (extracted) {
    for (const auto& n : extracted->notes) append_note(notes, n);
  } else {
    append_note(notes, extracted.error().describe());
  }
  for (const auto& n : writer->notes()) append_note(notes, n);

  store::ParseStatus status = store::ParseStatus::Unparsed;
  if (out.reports_stored > 0) {
    status = store::ParseStatus::Parsed;
  } else if (out.duplicates > 0) {
    status = store::ParseStatus::Duplicate;
  } else {
    if (notes.empty()) notes = "no report found";
    out.parse_error = notes;
  }
  writer.reset();
  if (auto st = tx.set_parse_outcome(message_id, status, notes); !st) return std::move(st).error();

  if (out.parse_error) {
    log_.warning(log_ctx, "kept raw, not parsed: " + *out.parse_error);
  } else {
    log_.info(log_ctx, std::to_string(out.reports_stored) + " report(s) stored, " +
                           std::to_string(out.duplicates) + " duplicate(s)");
  }
  return out;
}

Result<Outcome> StoreIngestor::ingest(const Envelope& envelope, const Input& message) {
  auto src = message.open();
  if (!src) return std::move(src).error();
  store::RawMeta meta;
  meta.received_at = envelope.received_at != 0 ? envelope.received_at : now();
  meta.source = envelope.source;
  meta.mail_from = envelope.mail_from;
  meta.rcpt_to = envelope.rcpt_to;
  meta.client = envelope.client.empty() ? message.name() : envelope.client;

  auto tx = store_.begin_write();
  if (!tx) return std::move(tx).error();
  auto raw = (*tx)->add_raw_message(meta, **src);
  if (!raw) return std::move(raw).error();
  std::string ctx = "msg " + std::to_string(raw->id);
  std::vector<std::pair<std::string, std::string>> bounces;
  auto outcome = extract_into(**tx, raw->id, meta.received_at, message, ctx, &bounces);
  if (!outcome) {
    log_.error(ctx, "not stored: " + outcome.error().describe());
    return outcome;
  }
  if (auto st = (*tx)->commit(); !st) {
    log_.error(ctx, "not stored: " + st.error().describe());
    return std::move(st).error();
  }
  tx->reset();  // the write lock is needed again below
  count_received(*outcome);
  count_bounces(bounces, meta.received_at, ctx);
  return outcome;
}

// After the DSN is committed: a bounce that is not counted (a store error here) is logged;
// the DSN itself is kept either way.
void StoreIngestor::count_bounces(const std::vector<std::pair<std::string, std::string>>& bounces,
                                  std::int64_t now, const std::string& log_ctx) {
  for (const auto& [message_id, reason] : bounces) {
    auto outcome = store_.record_report_bounce(message_id, reason, now, options_.suppress_after);
    if (!outcome) {
      if (outcome.error().code != ErrorCode::NotFound) {
        log_.warning(log_ctx, "bounce of report <" + message_id +
                                  "> not counted: " + outcome.error().describe());
      }
      continue;  // not one of our reports
    }
    std::string line = "bounce of our report <" + message_id + "> to " + outcome->recipient + " (" +
                       reason + "): " + std::to_string(outcome->failures) + " failure(s)";
    if (outcome->suppressed) {
      log_.warning(log_ctx, line + "; destination suppressed (mailreport suppress remove " +
                                outcome->recipient + " to send again)");
    } else {
      log_.info(log_ctx, line);
    }
  }
}

Result<Outcome> StoreIngestor::reparse(std::int64_t message_id) {
  auto info = store_.get_raw_message(message_id);
  if (!info) return std::move(info).error();
  auto input = store::load_raw_input(store_, *info, options_.temp_dir);
  if (!input) return std::move(input).error();
  std::string ctx = "msg " + std::to_string(message_id) + " reparse";
  auto tx = store_.begin_write();
  if (!tx) return std::move(tx).error();
  // The reports derived from this message are replaced, in the same transaction.
  auto removed = (*tx)->delete_reports_of(message_id);
  if (!removed) return std::move(removed).error();
  // Bounces are counted when a DSN first arrives, not again when it is re-parsed.
  auto outcome = extract_into(**tx, message_id, info->meta.received_at, *input, ctx, nullptr);
  if (!outcome) return outcome;
  if (auto st = (*tx)->commit(); !st) return std::move(st).error();
  return outcome;
}

Result<ReparseCounts> StoreIngestor::reparse_all(std::optional<store::ParseStatus> only) {
  ReparseCounts counts;
  store::RawFilter filter;
  filter.status = only;
  filter.limit = 100;
  for (;;) {
    auto page = store_.list_raw_messages(filter);
    if (!page) return std::move(page).error();
    if (page->empty()) return counts;
    for (const auto& info : *page) {
      filter.after_id = info.id;
      auto outcome = reparse(info.id);
      if (!outcome) {
        if (outcome.error().code == ErrorCode::NotFound) continue;  // purged meanwhile
        return std::move(outcome).error();
      }
      ++counts.messages;
      counts.reports_stored += outcome->reports_stored;
      if (outcome->reports_stored > 0) {
        ++counts.parsed;
      } else if (outcome->duplicates > 0) {
        ++counts.duplicate;
      } else {
        ++counts.unparsed;
      }
    }
  }
}

}  // namespace mailreport::ingest

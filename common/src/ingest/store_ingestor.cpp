// The ingest path (see mailreport/ingest/store_ingestor.hpp): raw message, extracted reports
// and parse outcome in one store transaction. The design's promise — a 250 from the LMTP
// receiver means the message is durably kept, parsed or not (RFC 2033 §4.2) — rests here:
// only a store failure is an error; anything the parsers cannot read is kept raw, with why.
#include "mailreport/ingest/store_ingestor.hpp"

#include <chrono>
#include <exception>

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

}  // namespace

StoreIngestor::StoreIngestor(store::Store& store, Logger& log, IngestOptions options)
    : store_(store), log_(log), options_(std::move(options)) {}

Result<Outcome> StoreIngestor::extract_into(store::WriteTransaction& tx, std::int64_t message_id,
                                            std::int64_t received_at, const Input& message,
                                            const std::string& log_ctx) {
  auto writer = tx.report_writer(message_id, received_at);
  auto extracted = run_extractor(message, *writer, options_.limits);
  // A store failure inside the sink fails the whole message: nothing may be committed.
  if (auto st = writer->finish(); !st) return std::move(st).error();
  if (writer->store_error()) return *writer->store_error();
  if (!extracted && extracted.error().code == ErrorCode::Store) return extracted.error();

  Outcome out;
  out.message_id = message_id;
  out.reports_stored = writer->stored();
  out.duplicates = writer->duplicates();

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
  auto outcome = extract_into(**tx, raw->id, meta.received_at, message, ctx);
  if (!outcome) {
    log_.error(ctx, "not stored: " + outcome.error().describe());
    return outcome;
  }
  if (auto st = (*tx)->commit(); !st) {
    log_.error(ctx, "not stored: " + st.error().describe());
    return std::move(st).error();
  }
  return outcome;
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
  auto outcome = extract_into(**tx, message_id, info->meta.received_at, *input, ctx);
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

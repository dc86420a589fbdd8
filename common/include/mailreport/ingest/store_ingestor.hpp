// StoreIngestor: the Ingestor that keeps messages in a store::Store. One store transaction per
// message: the raw message (compressed, streamed from Input::open()), the reports that
// report::extract_reports finds in it (streamed into the store's ReportWriter), and the parse
// outcome are committed together, or not at all.
//
// - A message that holds no report, or a broken one, is still committed: raw, with the reason
//   (design: "nothing accepted is ever lost").
// - A store failure returns ErrorCode::Store and nothing of the message is kept; the LMTP
//   receiver answers 451 4.3.0 (RFC 2033 §4.2 per-recipient reply) and the sender retries.
// - Bounces of our own reports (issue 5): a stored DSN whose returned message carries the
//   Message-ID of a report we sent (Store::find_outbox_by_message_id), with a recipient whose
//   action is "failed", counts a failure against that report's destination
//   (Store::record_report_bounce); at IngestOptions::suppress_after failures the destination
//   is suppressed. Delays and successes are not counted; a DSN stored before (a duplicate)
//   is not counted twice.
// - reparse() runs extraction again on a stored raw message (after a parser fix), replacing
//   the reports derived from it in the same transaction.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "mailreport/ingest/ingest.hpp"
#include "mailreport/report/extract.hpp"
#include "mailreport/store/store.hpp"
#include "mailreport/util/log.hpp"

namespace mailreport::ingest {

struct IngestOptions {
  report::ExtractLimits limits;
  // Where reparse() spills raw messages too large to hold in memory ("" = the system's
  // temporary directory).
  std::filesystem::path temp_dir;
  // report.suppress-after: bounces of our reports before their destination is suppressed
  // (0 = count, never suppress).
  unsigned suppress_after = 5;
};

struct ReparseCounts {
  std::size_t messages = 0;
  std::size_t parsed = 0;     // at least one new report stored
  std::size_t duplicate = 0;  // only reports stored from other messages
  std::size_t unparsed = 0;
  std::size_t reports_stored = 0;
};

class StoreIngestor final : public Ingestor {
 public:
  // `store` and `log` must outlive the ingestor.
  StoreIngestor(store::Store& store, Logger& log, IngestOptions options = {});

  Result<Outcome> ingest(const Envelope& envelope, const Input& message) override;

  // Re-runs extraction on stored raw message `message_id` (its previous reports are replaced).
  Result<Outcome> reparse(std::int64_t message_id);
  // Re-parses every stored message whose status matches (nullopt = all). Stops at the first
  // store failure; per-message outcomes are counted and logged.
  Result<ReparseCounts> reparse_all(std::optional<store::ParseStatus> only);

 private:
  // `bounces` (may be null) receives the failed DSNs' returned Message-IDs and reasons.
  Result<Outcome> extract_into(store::WriteTransaction& tx, std::int64_t message_id,
                               std::int64_t received_at, const Input& message,
                               const std::string& log_ctx,
                               std::vector<std::pair<std::string, std::string>>* bounces);
  void count_bounces(const std::vector<std::pair<std::string, std::string>>& bounces,
                     std::int64_t now, const std::string& log_ctx);

  store::Store& store_;
  Logger& log_;
  IngestOptions options_;
};

}  // namespace mailreport::ingest

// Ingest: the one path by which a received message becomes stored reports, used by the LMTP
// receiver and by `mailreport import`. In one store transaction it keeps the raw message
// (compressed) with its parse outcome and the parsed reports; duplicates of reports already
// stored (same org, report id, policy domain) are counted, not stored twice.
//
// When ingest() returns a value the message is durably committed — the LMTP receiver answers
// 250 only then. A parse failure is not an ingest failure: the raw message is stored with the
// reason. Only a store failure is an error (the receiver answers 451 4.3.0).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mailreport/util/bytes.hpp"
#include "mailreport/util/result.hpp"

namespace mailreport::ingest {

struct Envelope {
  std::string source;     // "lmtp", "import", "reparse", "demo"
  std::string mail_from;  // reverse-path ("" for the null sender)
  std::vector<std::string> rcpt_to;
  std::string client;            // peer description / file name, for logs
  std::int64_t received_at = 0;  // UTC epoch seconds; 0 = now
};

struct Outcome {
  std::int64_t message_id = 0;  // id of the stored raw message
  std::size_t reports_stored = 0;
  std::size_t duplicates = 0;
  std::optional<std::string> parse_error;  // why nothing could be parsed, if so
  // reports_stored by type, indexed by report::ReportType (for the received-reports metric).
  std::array<std::size_t, 4> stored_by_type{};
};

class Ingestor {
 public:
  virtual ~Ingestor() = default;
  // Thread-safe.
  virtual Result<Outcome> ingest(const Envelope& envelope, const Input& message) = 0;
};

}  // namespace mailreport::ingest

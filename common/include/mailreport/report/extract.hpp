// Finding reports in whatever arrives: bare XML/JSON, gzip (trailing bytes, double gzip),
// zip (several entries, empty names), any MIME layout (multipart/report, multipart/mixed,
// single-part application/gzip or octet-stream, base64, quoted-printable), a leading mbox
// "From " line. MIME is GMime's, gzip zlib's, zip libarchive's. Decompression is capped by
// size and ratio; zip entries never touch the file system.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mailreport/report/sink.hpp"
#include "mailreport/util/bytes.hpp"

namespace mailreport::report {

struct ExtractLimits {
  std::uint64_t max_decompressed_bytes = 256ull << 20;  // per decompressed stream
  double max_compression_ratio = 200.0;                 // output / input, per stream
  std::uint64_t ratio_grace_bytes = 1ull << 20;  // ratio is enforced once output exceeds this
  int max_nesting = 8;                           // containers inside containers
  std::size_t max_parts = 256;                   // MIME parts / zip entries examined
};

struct ExtractOutcome {
  std::size_t reports = 0;           // reports delivered to the sink
  std::vector<std::string> notes;    // parts skipped and why (for logs and `parse` errors)
};

// Finds every report in `input` and delivers it to `sink`. Fails with NotAReport when the
// input holds none, LimitExceeded when a cap was hit, Invalid when a report part is broken
// beyond salvage, or the sink's error.
Result<ExtractOutcome> extract_reports(const Input& input, ReportSink& sink,
                                       const ExtractLimits& limits = {});

}  // namespace mailreport::report

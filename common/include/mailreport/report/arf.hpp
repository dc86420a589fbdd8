// ARF feedback reports: RFC 5965 (abuse, fraud, virus, other, not-spam, opt-out) and the
// authentication-failure reports of RFC 6591 / RFC 9991 (dmarc, dkim, spf, ...).
// The MIME walk that finds the parts is the extractor's job; this parser reads their text.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "mailreport/report/model.hpp"
#include "mailreport/util/result.hpp"

namespace mailreport::report {

struct ArfParts {
  std::vector<HeaderField> outer_headers;  // the report message's own header fields
  std::string_view human_readable;         // first text/plain part (may be empty)
  std::string_view feedback_report;        // decoded message/feedback-report body (may be empty
                                           // for non-conforming reporters, see parse_arf)
  std::string_view original;               // the third part's decoded content (may be empty)
  std::string original_type;               // its content type, lower-case
};

// Parses the parts of a feedback report. When feedback_report is empty (e.g. Exim/cPanel
// "failure reports" that only have text) the report is synthesised from what the text says,
// with an entry in `errors`; fails with NotAReport when nothing report-like is found.
Result<ArfReport> parse_arf(const ArfParts& parts);

}  // namespace mailreport::report

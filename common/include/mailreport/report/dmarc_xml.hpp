// DMARC aggregate report parser: RFC 7489 Appendix C and RFC 9990 XML, with or without the
// namespace, streamed with libxml2's xmlTextReader so that memory stays flat for any size.
//
// Real-world reports are often not valid; the parser salvages what it can and lists what it
// could not read in `errors` (stray <xs:schema> tags, invalid UTF-8, windows-1252, unescaped
// '<', upper-case enum values, whitespace in numbers, missing/misspelled elements, empty
// records). No DTD is loaded, no entity is expanded, nothing is fetched from the network.
#pragma once

#include "mailreport/report/sink.hpp"
#include "mailreport/util/bytes.hpp"

namespace mailreport::report {

// Parses one DMARC aggregate report from `src` and streams it to `sink` (dmarc_begin,
// dmarc_record..., dmarc_end). Fails with Invalid when the input is not a DMARC aggregate
// report at all (no <feedback> root), and with the sink's error if the sink fails.
Status parse_dmarc_xml(ByteSource& src, ReportSink& sink);

}  // namespace mailreport::report

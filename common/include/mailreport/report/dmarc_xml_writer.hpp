// DMARC aggregate report writer (libxml2 xmlTextWriter), streamed: the header, then one record
// at a time, so that a report of any size is written in bounded memory. Two formats:
//
// - RFC 9990 (default for the reports we send): namespace urn:ietf:params:xml:ns:dmarc-2.0,
//   <version>1.0</version>, report_metadata with generator, policy_published with np,
//   discovery_method and testing (no pct), at most one <error>, the SPF result of the MAIL FROM
//   identity only (RFC 9990 §3.1.3: scope mfrom, at most one), disposition "pass" allowed.
// - RFC 7489 Appendix C: no namespace (as every reporter writes it), policy_published with
//   sp (p when not published), pct (100) and fo ("0"), which that schema requires, no
//   generator/np/discovery_method/testing, envelope_from always present, at least one SPF
//   result (a "none" for the envelope domain when none was evaluated), disposition "pass"
//   written as "none" and the policy_test_mode override as "other" (neither exists there).
//
// The writer writes what it is given: merging identical rows and the limit of 100 DKIM
// results per row (RFC 9990 §3.1.3) belong to whoever builds the records.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "mailreport/report/model.hpp"
#include "mailreport/util/result.hpp"

namespace mailreport::report {

enum class DmarcXmlFormat { Rfc9990, Rfc7489 };
const char* to_string(DmarcXmlFormat f) noexcept;  // "rfc9990", "rfc7489"
std::optional<DmarcXmlFormat> dmarc_xml_format_from(std::string_view s) noexcept;

class DmarcXmlWriter {
 public:
  // Receives the XML in pieces, in order; an error stops the writer with that error.
  using Output = std::function<Status(std::string_view)>;

  DmarcXmlWriter(DmarcXmlFormat format, Output out);
  ~DmarcXmlWriter();
  DmarcXmlWriter(const DmarcXmlWriter&) = delete;
  DmarcXmlWriter& operator=(const DmarcXmlWriter&) = delete;

  // The XML declaration, <feedback>, version, report_metadata and policy_published.
  Status begin(const DmarcHeader& header);
  Status record(const DmarcRecord& record);
  // </feedback>, and everything flushed to the output.
  Status finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The whole report in memory (tests, small reports).
Result<std::string> write_dmarc_xml(const DmarcAggregate& report, DmarcXmlFormat format);

}  // namespace mailreport::report

// ReportSink: where the extractor delivers the reports it finds in an input. DMARC aggregate
// reports are streamed (header, then records one at a time, then end) so that an ingest of any
// size stays in bounded memory; the other report types are small and delivered whole.
#pragma once

#include <string>
#include <vector>

#include "mailreport/report/model.hpp"
#include "mailreport/util/result.hpp"

namespace mailreport::report {

class ReportSink {
 public:
  virtual ~ReportSink() = default;

  // A DMARC aggregate report begins. `header` holds what was seen before the first record
  // (normally everything; the final values come with dmarc_end). A sink returning an error
  // aborts the extraction with that error.
  virtual Status dmarc_begin(const DmarcHeader& header) = 0;
  virtual Status dmarc_record(DmarcRecord&& record) = 0;
  // The report is complete: `header` is final, `errors` lists what was salvaged.
  virtual Status dmarc_end(const DmarcHeader& header, const std::vector<std::string>& errors) = 0;

  virtual Status tls(TlsReport&& report) = 0;
  virtual Status arf(ArfReport&& report) = 0;
  virtual Status dsn(DsnReport&& report) = 0;
};

// Collects everything in memory (for `mailreport parse`, tests and small inputs).
class CollectingSink final : public ReportSink {
 public:
  Status dmarc_begin(const DmarcHeader& header) override;
  Status dmarc_record(DmarcRecord&& record) override;
  Status dmarc_end(const DmarcHeader& header, const std::vector<std::string>& errors) override;
  Status tls(TlsReport&& report) override;
  Status arf(ArfReport&& report) override;
  Status dsn(DsnReport&& report) override;

  std::vector<Report>& reports() noexcept { return reports_; }

 private:
  std::vector<Report> reports_;
  bool in_dmarc_ = false;
};

}  // namespace mailreport::report

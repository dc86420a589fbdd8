#include "mailreport/report/model.hpp"

#include "mailreport/report/sink.hpp"

namespace mailreport::report {

const char* to_string(ReportType t) noexcept {
  switch (t) {
    case ReportType::DmarcAggregate: return "dmarc-aggregate";
    case ReportType::TlsAggregate: return "tls-aggregate";
    case ReportType::Arf: return "arf";
    case ReportType::Dsn: return "dsn";
  }
  return "unknown";
}

ReportType type_of(const Report& r) noexcept {
  switch (r.index()) {
    case 0: return ReportType::DmarcAggregate;
    case 1: return ReportType::TlsAggregate;
    case 2: return ReportType::Arf;
    default: return ReportType::Dsn;
  }
}

Status CollectingSink::dmarc_begin(const DmarcHeader& header) {
  DmarcAggregate agg;
  agg.header = header;
  reports_.emplace_back(std::move(agg));
  in_dmarc_ = true;
  return {};
}

Status CollectingSink::dmarc_record(DmarcRecord&& record) {
  if (!in_dmarc_) return make_error(ErrorCode::Invalid, "dmarc_record outside a report");
  std::get<DmarcAggregate>(reports_.back()).records.push_back(std::move(record));
  return {};
}

Status CollectingSink::dmarc_end(const DmarcHeader& header, const std::vector<std::string>& errors) {
  if (!in_dmarc_) return make_error(ErrorCode::Invalid, "dmarc_end outside a report");
  auto& agg = std::get<DmarcAggregate>(reports_.back());
  agg.header = header;
  agg.errors = errors;
  in_dmarc_ = false;
  return {};
}

Status CollectingSink::tls(TlsReport&& report) {
  reports_.emplace_back(std::move(report));
  return {};
}

Status CollectingSink::arf(ArfReport&& report) {
  reports_.emplace_back(std::move(report));
  return {};
}

Status CollectingSink::dsn(DsnReport&& report) {
  reports_.emplace_back(std::move(report));
  return {};
}

}  // namespace mailreport::report

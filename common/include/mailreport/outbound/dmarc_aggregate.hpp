// outbound/dmarc_aggregate: turns the store's aggregated evaluation rows (hourly, see
// store::EvaluationRow) into the records of one DMARC aggregate report (RFC 9990 §3.1, RFC 7489
// App. C) for one policy domain and published policy over the report's interval:
// - rows that are identical but for their hour are merged, their counts summed (RFC 9990
//   §3.1.1: one record per distinct set of results), in a stable order (by first seen);
// - each record carries at most 100 DKIM results (RFC 9990 §3.1.3: SHOULD), chosen in the order
//   the RFC gives: passes aligned in strict mode, then passes aligned in relaxed mode, then
//   other passes, then the rest; ties keep signature order.
// make_dmarc_source: the AggregateSource (aggregate_builder.hpp) that builds the XML reports.
// Scheduling is the builder's, the message the outbox runner's (aggregate_message.hpp).
#pragma once

#include <memory>

#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mailreport/config/config.hpp"
#include "mailreport/outbound/aggregate_builder.hpp"
#include "mailreport/report/model.hpp"
#include "mailreport/store/store.hpp"

namespace mailreport::outbound {

inline constexpr std::size_t kMaxDkimResultsPerRecord = 100;

// The organizational domain of a name (auth::DmarcEvaluator::organizational_domain in the
// daemon; tests pass their own), for relaxed alignment.
using OrgDomainFn = std::function<std::string(std::string_view)>;

// `rows` all belong to one policy domain and published policy (the caller groups them).
std::vector<report::DmarcRecord> merge_evaluation_rows(std::span<const store::EvaluationRow> rows,
                                                       const OrgDomainFn& org_domain);

// Orders a record's DKIM results as RFC 9990 §3.1.3 prioritises them and keeps the first
// `limit`; `header_from` is the record's Author Domain.
void prioritise_dkim_results(std::vector<report::DmarcDkimAuth>& results,
                             std::string_view header_from, const OrgDomainFn& org_domain,
                             std::size_t limit = kMaxDkimResultsPerRecord);

// DMARC aggregate reports (RFC 9990 / RFC 7489 App. C as report.dmarc.aggregate.format):
// one report per policy domain and published policy; report_metadata from
// report.dmarc.aggregate.{org-name, from-address (email), contact-info}, generator
// "mailreport/<version>"; records merged and prioritised as above; XML streamed through
// report::DmarcXmlWriter into gzip. Deliveries: the rua= mailto URIs as last published, in
// order (auth::parse_report_mailto; others skipped and logged), payload max_size from !size.
// Destinations are verified when sent (outbox runner), not here.
std::unique_ptr<AggregateSource> make_dmarc_source(std::shared_ptr<const config::Config> config,
                                                   OrgDomainFn org_domain, Logger& log);

}  // namespace mailreport::outbound

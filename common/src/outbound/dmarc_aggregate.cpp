// Merging hourly evaluation rows into aggregate report records, the RFC 9990 §3.1.3 limit of
// 100 DKIM results per record, and the DMARC AggregateSource (see dmarc_aggregate.hpp): one
// report per policy domain and published policy (RFC 9990 §3.1: one policy configuration per
// report), streamed as XML (report::DmarcXmlWriter) into gzip (RFC 9990 §3.5.2 / RFC 7489
// §7.2.1.1), holding one policy domain's rows at a time.
//
// Report period: date_range begin is the interval's begin, or the hour of the earliest row in
// the report when rows were recorded late for an earlier interval (they are reported by the
// next report instead of being lost); date_range end is the interval's last second (end - 1),
// as the big reporters write it, so consecutive reports do not overlap (RFC 9990 §3.1.1.4).
// The filename carries the same begin and end.
//
// Not done here: destination verification and size limits (the outbox runner, when sending).
#include "mailreport/outbound/dmarc_aggregate.hpp"

#include <algorithm>
#include <cctype>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <utility>

#include "mailreport/auth/dmarc.hpp"
#include "mailreport/report/dmarc_xml_writer.hpp"
#include "mailreport/store/aggregate_payload.hpp"
#include "report/gzip.hpp"

#ifndef MAILREPORT_VERSION
#error "MAILREPORT_VERSION (the project's version) must be defined by CMake"
#endif

namespace mailreport::outbound {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Everything of a record but its count, as one string: the merge key.
std::string identity(const report::DmarcRecord& r) {
  std::string k;
  auto add = [&k](std::string_view s) {
    k.append(s);
    k.push_back('\x1f');
  };
  add(r.row.source_ip);
  const auto& pe = r.row.policy_evaluated;
  add(pe.disposition);
  add(pe.dkim);
  add(pe.spf);
  for (const auto& reason : pe.reason) {
    add(reason.type);
    add(reason.comment);
  }
  k.push_back('\x1e');
  add(r.identifiers.envelope_to);
  add(r.identifiers.envelope_from);
  add(r.identifiers.header_from);
  for (const auto& d : r.auth_results.dkim) {
    add(d.domain);
    add(d.selector);
    add(d.result);
    add(d.human_result);
  }
  k.push_back('\x1e');
  for (const auto& s : r.auth_results.spf) {
    add(s.domain);
    add(s.scope);
    add(s.result);
    add(s.human_result);
  }
  return k;
}

}  // namespace

void prioritise_dkim_results(std::vector<report::DmarcDkimAuth>& results,
                             std::string_view header_from, const OrgDomainFn& org_domain,
                             std::size_t limit) {
  const std::string from = lower(header_from);
  std::string from_org;  // computed once, only if a relaxed comparison is needed
  bool from_org_known = false;
  auto rank = [&](const report::DmarcDkimAuth& d) {
    if (lower(d.result) != "pass") return 3;
    const std::string domain = lower(d.domain);
    if (domain == from) return 0;  // strict alignment (RFC 9989 §4.4.1)
    if (!from_org_known) {
      from_org = org_domain ? org_domain(from) : std::string();
      from_org_known = true;
    }
    if (!from_org.empty() && org_domain && org_domain(domain) == from_org) return 1;  // relaxed
    return 2;
  };
  std::vector<std::pair<int, std::size_t>> order;
  order.reserve(results.size());
  for (std::size_t i = 0; i < results.size(); ++i) order.emplace_back(rank(results[i]), i);
  std::stable_sort(order.begin(), order.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<report::DmarcDkimAuth> kept;
  kept.reserve(std::min(limit, results.size()));
  for (std::size_t i = 0; i < order.size() && kept.size() < limit; ++i) {
    kept.push_back(std::move(results[order[i].second]));
  }
  results = std::move(kept);
}

namespace {

// merge_evaluation_rows, with the rows' records copied (Row = const EvaluationRow) or moved
// out (Row = EvaluationRow: the builder's own copies, read once).
template <class Row>
std::vector<report::DmarcRecord> merge_rows(std::span<Row> rows, const OrgDomainFn& org_domain) {
  // Stable output: records in the order of their first message.
  std::vector<Row*> sorted;
  sorted.reserve(rows.size());
  for (auto& r : rows) sorted.push_back(&r);
  std::stable_sort(sorted.begin(), sorted.end(), [](const auto* a, const auto* b) {
    return a->first_seen != b->first_seen ? a->first_seen < b->first_seen : a->id < b->id;
  });
  std::vector<report::DmarcRecord> out;
  std::map<std::string, std::size_t> index;
  for (auto* row : sorted) {
    report::DmarcRecord rec = std::move(row->record);  // a copy when Row is const
    prioritise_dkim_results(rec.auth_results.dkim, rec.identifiers.header_from, org_domain);
    std::string key = identity(rec);
    auto [it, inserted] = index.try_emplace(std::move(key), out.size());
    if (inserted) {
      out.push_back(std::move(rec));
    } else {
      out[it->second].row.count += rec.row.count;
    }
  }
  return out;
}

}  // namespace

std::vector<report::DmarcRecord> merge_evaluation_rows(std::span<const store::EvaluationRow> rows,
                                                       const OrgDomainFn& org_domain) {
  return merge_rows(rows, org_domain);
}

namespace {

// Everything of the published policy a report is about (RFC 9990 §3.1: one policy
// configuration per report), as one string.
std::string policy_key(const store::EvaluationRow& r) {
  const auto& p = r.policy;
  std::string k;
  for (const std::string* f :
       {&p.p, &p.sp, &p.np, &p.adkim, &p.aspf, &p.fo, &p.testing, &p.discovery_method}) {
    k.append(*f);
    k.push_back('\x1f');
  }
  k.append(std::to_string(p.pct.value_or(100)));
  k.push_back(r.psd);
  return k;
}

// The newest row: its rua= is the record as last published.
const store::EvaluationRow& latest(std::span<const store::EvaluationRow> rows) {
  return *std::max_element(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    return std::tie(a.interval_begin, a.last_seen, a.id) <
           std::tie(b.interval_begin, b.last_seen, b.id);
  });
}

class DmarcSource final : public AggregateSource {
 public:
  DmarcSource(std::shared_ptr<const config::Config> config, OrgDomainFn org_domain, Logger& log)
      : config_(std::move(config)), org_domain_(std::move(org_domain)), log_(log) {}

  std::string_view kind() const noexcept override { return store::kDmarcAggregateKind; }
  const config::AggregateReportSettings& settings() const noexcept override {
    return config_->report.dmarc_aggregate;
  }

  Result<std::optional<std::int64_t>> earliest_unreported(store::Store& store,
                                                          std::string_view domain) override {
    std::optional<std::int64_t> earliest;
    auto st = store.for_each_unreported_evaluation(std::numeric_limits<std::int64_t>::max(), domain,
                                                   [&](const store::EvaluationRow& r) {
                                                     if (!earliest || r.interval_begin < *earliest)
                                                       earliest = r.interval_begin;
                                                     return true;
                                                   });
    if (!st) return std::move(st).error();
    return earliest;
  }

  Status build(store::Store& store, const BuildInterval& interval,
               const BuiltReportSink& sink) override {
    // Rows come ordered by policy domain: one domain's rows are held, then turned into reports.
    std::vector<store::EvaluationRow> rows;
    Status failed;
    auto st = store.for_each_unreported_evaluation(
        interval.end, interval.domain, [&](const store::EvaluationRow& r) {
          if (!rows.empty() && r.policy.domain != rows.front().policy.domain) {
            failed = domain_reports(rows, interval, sink);
            rows.clear();
            if (!failed) return false;
          }
          rows.push_back(r);
          return true;
        });
    if (!failed) return failed;
    if (!st) return st;
    if (!rows.empty()) return domain_reports(rows, interval, sink);
    return {};
  }

 private:
  // The reports of one policy domain: one per published policy, in order of appearance.
  Status domain_reports(std::vector<store::EvaluationRow>& rows, const BuildInterval& interval,
                        const BuiltReportSink& sink) {
    const std::string domain = rows.front().policy.domain;
    const std::vector<store::OutboxEntry> deliveries = destinations(latest(rows), domain);
    // Group the rows by published policy (usually one), keeping their order inside a group.
    std::vector<std::string> keys;
    std::vector<std::size_t> group_of;
    group_of.reserve(rows.size());
    for (const auto& r : rows) {
      std::string key = policy_key(r);
      auto it = std::find(keys.begin(), keys.end(), key);
      group_of.push_back(static_cast<std::size_t>(it - keys.begin()));
      if (it == keys.end()) keys.push_back(std::move(key));
    }
    if (keys.size() > 1) {
      std::vector<std::size_t> order(rows.size());
      for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
      std::stable_sort(order.begin(), order.end(),
                       [&](std::size_t a, std::size_t b) { return group_of[a] < group_of[b]; });
      std::vector<store::EvaluationRow> sorted;
      sorted.reserve(rows.size());
      for (std::size_t i : order) sorted.push_back(std::move(rows[i]));
      rows = std::move(sorted);
      std::sort(group_of.begin(), group_of.end());
    }
    std::span<store::EvaluationRow> all(rows);
    for (std::size_t begin = 0; begin < rows.size();) {
      std::size_t end = begin;
      while (end < rows.size() && group_of[end] == group_of[begin]) ++end;
      auto built = report(all.subspan(begin, end - begin), interval, deliveries);
      if (!built) return std::move(built).error();
      if (auto st = sink(std::move(*built)); !st) return st;
      begin = end;
    }
    return {};
  }

  // RFC 7489 §6.2 / RFC 9990 §3.5: the rua= mailto URIs in order; others are skipped (SHOULD
  // ignore malformed ones) and logged. The same address twice gets one report.
  std::vector<store::OutboxEntry> destinations(const store::EvaluationRow& row,
                                               const std::string& domain) {
    std::vector<store::OutboxEntry> out;
    for (const auto& uri : row.rua) {
      auto mailto = auth::parse_report_mailto(uri);
      if (!mailto) {
        log_.warning(domain, "rua URI skipped, not a usable mailto: URI: " + uri);
        continue;
      }
      const bool seen = std::any_of(out.begin(), out.end(), [&](const store::OutboxEntry& e) {
        return std::equal(
            e.recipient.begin(), e.recipient.end(), mailto->address.begin(), mailto->address.end(),
            [](unsigned char a, unsigned char b) { return std::tolower(a) == std::tolower(b); });
      });
      if (seen) continue;
      store::OutboxEntry e;
      e.recipient = mailto->address;
      e.reported_domain = domain;
      e.payload = store::to_json(store::AggregatePayload{0, uri, mailto->max_size});
      out.push_back(std::move(e));
    }
    return out;
  }

  // Moves the rows' records out (the rows are the builder's copies, used once).
  Result<BuiltReport> report(std::span<store::EvaluationRow> rows, const BuildInterval& interval,
                             const std::vector<store::OutboxEntry>& deliveries) {
    const config::AggregateReportSettings& s = settings();
    const store::EvaluationRow& first = rows.front();
    std::int64_t date_begin = interval.begin;
    for (const auto& r : rows) date_begin = std::min(date_begin, r.interval_begin);
    const std::int64_t last_second = interval.end - 1;

    BuiltReport built;
    store::AggregateReport& rep = built.report;
    rep.report_id = new_report_id(date_begin);
    rep.policy_domain = first.policy.domain;
    rep.date_begin = date_begin;
    rep.date_end = interval.end;
    rep.filename = aggregate_filename(config_->report.submitter, rep.policy_domain, date_begin,
                                      last_second, rep.report_id, "xml.gz");

    report::DmarcHeader header;
    auto& md = header.report_metadata;
    md.org_name = s.org_name;
    md.email = s.from_address;
    md.extra_contact_info = s.contact_info;
    md.report_id = rep.report_id;
    md.date_range = {date_begin, last_second};
    md.generator = "mailreport/" MAILREPORT_VERSION;
    header.policy_published = first.policy;

    built.reported.reserve(rows.size());
    for (const auto& r : rows) {
      store::ReportedCount c;
      c.table = store::ReportedCount::Table::Evaluation;
      c.id = r.id;
      c.count = r.reported + r.record.row.count;  // the new total: what was + what we read
      c.was = r.reported;
      built.reported.push_back(c);
    }
    const std::vector<report::DmarcRecord> records = merge_rows(rows, org_domain_);
    const auto format = s.format == config::DmarcAggregateFormat::Rfc7489
                            ? report::DmarcXmlFormat::Rfc7489
                            : report::DmarcXmlFormat::Rfc9990;
    Status st = write(format, header, records);
    auto content = gzip_.finish();  // also resets the stream after a failed write
    if (!st) return std::move(st).error();
    if (!content) return std::move(content).error();
    rep.content = std::move(*content);
    rep.records = records.size();
    for (const auto& r : records) rep.messages += r.row.count;

    built.deliveries = deliveries;
    return built;
  }

  Status write(report::DmarcXmlFormat format, const report::DmarcHeader& header,
               const std::vector<report::DmarcRecord>& records) {
    report::DmarcXmlWriter writer(format,
                                  [this](std::string_view piece) { return gzip_.write(piece); });
    if (auto st = writer.begin(header); !st) return st;
    for (const auto& r : records) {
      if (auto st = writer.record(r); !st) return st;
    }
    return writer.finish();
  }

  std::shared_ptr<const config::Config> config_;
  OrgDomainFn org_domain_;
  Logger& log_;
  report::detail::GzipWriter gzip_;
};

}  // namespace

std::unique_ptr<AggregateSource> make_dmarc_source(std::shared_ptr<const config::Config> config,
                                                   OrgDomainFn org_domain, Logger& log) {
  return std::make_unique<DmarcSource>(std::move(config), std::move(org_domain), log);
}

}  // namespace mailreport::outbound

// Merging hourly evaluation rows into aggregate report records, and the RFC 9990 §3.1.3 limit
// of 100 DKIM results per record (see dmarc_aggregate.hpp).
#include "mailreport/outbound/dmarc_aggregate.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <string>

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

std::vector<report::DmarcRecord> merge_evaluation_rows(std::span<const store::EvaluationRow> rows,
                                                       const OrgDomainFn& org_domain) {
  // Stable output: records in the order of their first message.
  std::vector<const store::EvaluationRow*> sorted;
  sorted.reserve(rows.size());
  for (const auto& r : rows) sorted.push_back(&r);
  std::stable_sort(sorted.begin(), sorted.end(), [](const auto* a, const auto* b) {
    return a->first_seen != b->first_seen ? a->first_seen < b->first_seen : a->id < b->id;
  });
  std::vector<report::DmarcRecord> out;
  std::map<std::string, std::size_t> index;
  for (const auto* row : sorted) {
    report::DmarcRecord rec = row->record;
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

}  // namespace mailreport::outbound

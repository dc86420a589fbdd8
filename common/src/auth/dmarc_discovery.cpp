// The RFC 9989 §4.10 DNS Tree Walk and the §4.10.2 choice of the Organizational Domain, on a
// per-call memo of DNS answers; plus the domain-name helpers DMARC needs.
// Not done: caching across calls (the resolver's cache does that).
#include <string>
#include <string_view>

#include "dmarc_internal.hpp"

namespace mailreport::auth::dmarc_detail {

std::string normalize_domain(std::string_view domain) {
  while (!domain.empty() && (domain.front() == ' ' || domain.front() == '\t')) {
    domain.remove_prefix(1);
  }
  while (!domain.empty() && (domain.back() == ' ' || domain.back() == '\t')) {
    domain.remove_suffix(1);
  }
  if (!domain.empty() && domain.back() == '.') domain.remove_suffix(1);  // absolute form
  std::string out(domain);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');  // RFC 4343
  }
  return out;
}

bool is_domain_name(std::string_view d) {
  // RFC 1035 §2.3.4 sizes; letters, digits, '-' (RFC 5890 A-labels included) and '_'
  // (found in real names). "_dmarc." (7 octets) must still fit in 253.
  if (d.empty() || d.size() > 253 - 7) return false;
  std::size_t label = 0;
  for (char c : d) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    if (!ok || ++label > 63) return false;
  }
  return label > 0;
}

std::size_t label_count(std::string_view d) {
  if (d.empty()) return 0;
  std::size_t n = 1;
  for (char c : d) n += c == '.' ? 1 : 0;
  return n;
}

std::string_view rightmost_labels(std::string_view d, std::size_t n) {
  std::size_t have = label_count(d);
  while (have > n) {
    d.remove_prefix(d.find('.') + 1);
    --have;
  }
  return d;
}

bool is_at_or_below(std::string_view sub, std::string_view parent) {
  if (sub.size() == parent.size()) return sub == parent;
  return sub.size() > parent.size() && sub.substr(sub.size() - parent.size()) == parent &&
         sub[sub.size() - parent.size() - 1] == '.';
}

const TxtAnswer& DnsMemo::txt(const std::string& name) {
  auto it = txt_.find(name);
  if (it != txt_.end()) return it->second;
  dns::Answer a = resolver_.query(name, dns::RType::TXT);
  TxtAnswer t;
  t.status = a.status;
  if (a.status == dns::Status::Ok) t.records = dns::txt_records(a);
  if (a.status == dns::Status::TempError) {
    t.why = "TXT " + name + ": " + (a.why.empty() ? "temporary DNS failure" : a.why);
  }
  return txt_.emplace(name, std::move(t)).first->second;
}

dns::Status DnsMemo::status(const std::string& name, dns::RType type) {
  auto key = std::make_pair(name, static_cast<int>(type));
  auto it = other_.find(key);
  if (it != other_.end()) return it->second;
  dns::Status s = resolver_.query(name, type).status;
  other_.emplace(key, s);
  return s;
}

std::vector<std::string> dmarc1_records(const TxtAnswer& answer) {
  std::vector<std::string> out;
  for (const auto& r : answer.records) {
    if (starts_with_dmarc1(r)) out.push_back(r);
  }
  return out;
}

Walk tree_walk(DnsMemo& memo, const std::string& start) {
  Walk w;
  std::string target = start;
  while (!target.empty()) {
    // RFC 9989 §4.10 steps 1 and 5: query _dmarc.<target>.
    const TxtAnswer& answer = memo.txt("_dmarc." + target);
    ++w.queries;
    if (answer.status == dns::Status::TempError) {
      // RFC 9989 §5.3.6: a query that does not complete leaves DMARC undecided.
      w.temperror = true;
      w.why = answer.why;
      return w;
    }
    // Steps 2 and 6: drop records that are not v=DMARC1; a multiple set is discarded whole.
    auto records = dmarc1_records(answer);
    if (records.size() > 1) {
      if (!w.why.empty()) w.why += "; ";
      w.why += std::to_string(records.size()) + " DMARC records at _dmarc." + target + " discarded";
    } else if (records.size() == 1) {
      auto parsed = parse_record(records.front());
      if (parsed) {
        char psd = parsed->record.psd;
        w.found.push_back(FoundRecord{target, std::move(*parsed)});
        // "If a single record remains and it contains psd=n or psd=y, stop."
        if (psd == 'y' || psd == 'n') return w;
      }
    }
    // Steps 3, 4 and 7: x >= 8 labels jumps to the 7 rightmost; otherwise drop the leftmost
    // label; stop after the TLD. This bounds the walk to 8 queries.
    std::size_t x = label_count(target);
    if (x <= 1) break;
    target = std::string(x >= 8 ? rightmost_labels(target, 7) : rightmost_labels(target, x - 1));
  }
  return w;
}

std::string select_org_domain(const Walk& walk, std::string_view start) {
  // RFC 9989 §4.10.2: over the domains with records, longest first. An unusable record (bad
  // policy, no rua) is still a DMARC record and still carries its psd tag.
  for (const auto& f : walk.found) {
    // 1. psd=n: this domain is the Organizational Domain.
    if (f.parsed.record.psd == 'n') return f.domain;
    // 2. psd=y on a record other than the start's: the domain one label below it.
    if (f.parsed.record.psd == 'y' && f.domain != start) {
      return std::string(rightmost_labels(start, label_count(f.domain) + 1));
    }
  }
  // 3. Otherwise the record at the name with the fewest labels.
  if (!walk.found.empty()) return walk.found.back().domain;
  // "If this process does not determine the Organizational Domain, then the initial target
  // domain is the Organizational Domain."
  return std::string(start);
}

}  // namespace mailreport::auth::dmarc_detail

// Private pieces of auth/dmarc shared by dmarc_record.cpp, dmarc_discovery.cpp, dmarc_psl.cpp
// and dmarc.cpp: domain-name helpers, the lenient record parser, the per-call DNS memo, the
// RFC 9989 §4.10 tree walk and the public suffix list.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mailreport/auth/verdict.hpp"
#include "mailreport/dns/resolver.hpp"

namespace mailreport::auth::dmarc_detail {

// ---- domain names (RFC 4343: compared case-insensitively) ----

// Lower-case ASCII, one trailing dot removed, surrounding blanks removed.
std::string normalize_domain(std::string_view domain);
// A name we can put under _dmarc.: 1..63-octet labels of letters, digits, '-' and '_', at
// most 253 octets in all. A-labels ("xn--...") are names like any other.
bool is_domain_name(std::string_view normalized);
std::size_t label_count(std::string_view normalized);
// The `n` rightmost labels of `domain` (all of it when it has fewer).
std::string_view rightmost_labels(std::string_view domain, std::size_t n);
// True when `sub` is `parent` or below it.
bool is_at_or_below(std::string_view sub, std::string_view parent);

// A local-part we are willing to put in front of "@domain" (rua/ruf addresses, RFC 6651/6652
// ra=): printable ASCII without blanks, '@', '<', '>' or ','; at most 64 octets.
bool is_plain_local_part(std::string_view s);

// ---- records ----

// The v=DMARC1 test of RFC 9989 §4.7 / §4.10 step 2: the first tag is v with the
// case-sensitive value DMARC1.
bool starts_with_dmarc1(std::string_view txt);

struct ParsedRecord {
  DmarcRecord record;       // with defaults for what did not parse
  bool bad_policy = false;  // p=, sp= or np= present with a value that is not a policy
  bool has_valid_rua = false;
  // RFC 9989 §4.10.1: a bad policy without a valid rua= leaves the record unusable.
  bool usable() const noexcept { return !bad_policy || has_valid_rua; }
};
// nullopt when the record is not a DMARC1 record. Never fails otherwise; a bad policy with a
// valid rua= is already turned into p=none here.
std::optional<ParsedRecord> parse_record(std::string_view txt);

// ---- DNS ----

struct TxtAnswer {
  dns::Status status = dns::Status::TempError;
  std::vector<std::string> records;
  std::string why;
};

// The answers of one evaluation, so that the walks for the Author Domain and for each
// identifier ask each name once. Not thread-safe: one per call.
class DnsMemo {
 public:
  explicit DnsMemo(dns::Resolver& resolver) : resolver_(resolver) {}
  const TxtAnswer& txt(const std::string& name);
  dns::Status status(const std::string& name, dns::RType type);

 private:
  dns::Resolver& resolver_;
  std::map<std::string, TxtAnswer> txt_;
  std::map<std::pair<std::string, int>, dns::Status> other_;
};

struct FoundRecord {
  std::string domain;  // where it was found (without _dmarc.)
  ParsedRecord parsed;
};

struct Walk {
  std::vector<FoundRecord> found;  // longest name first
  bool temperror = false;          // a query failed; the walk stopped there
  std::string why;                 // the failed query, or notes (discarded record sets)
  std::size_t queries = 0;
};

// RFC 9989 §4.10: at most 8 TXT queries from `start` up to the TLD, stopping at a single
// record with psd=y or psd=n.
Walk tree_walk(DnsMemo& memo, const std::string& start);

// RFC 9989 §4.10.2 over a complete walk (no temperror).
std::string select_org_domain(const Walk& walk, std::string_view start);

// RFC 7489 §6.6.3 step 2 / RFC 9989 §4.10 step 2: the DMARC1 records of one answer.
std::vector<std::string> dmarc1_records(const TxtAnswer& answer);

// ---- public suffix list (libpsl) ----

class PublicSuffixList {
 public:
  // Throws std::runtime_error when libpsl has no list at all.
  PublicSuffixList();
  ~PublicSuffixList();
  PublicSuffixList(const PublicSuffixList&) = delete;
  PublicSuffixList& operator=(const PublicSuffixList&) = delete;
  // RFC 7489 §3.2: the public suffix plus one label; the name itself when it is a public
  // suffix (or libpsl cannot tell).
  std::string organizational_domain(const std::string& normalized) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mailreport::auth::dmarc_detail

// auth/dmarc: DMARC in our own code, on the SPF and DKIM verdicts of auth/spf and auth/dkim.
//
// Implements
// - the policy record (RFC 9989 §4.7, §4.8; RFC 7489 §6.3 for pct and ri, still honoured);
// - policy discovery by the DNS Tree Walk (RFC 9989 §4.10, §4.10.1) with psd=, np= and PSD
//   records, or, as an option, the RFC 7489 §6.6.3 two-step lookup with the Organizational
//   Domain taken from the public suffix list (RFC 7489 §3.2, libpsl);
// - the Organizational Domain for relaxed alignment (RFC 9989 §4.10.2, or the PSL);
// - identifier alignment (RFC 9989 §3.2.10, §4.4; RFC 7489 §3.1): DKIM d= of any passing
//   signature, SPF of the MAIL FROM identity only (RFC 7489 §3.1.2);
// - the result (RFC 9989 §5.3.5, §5.3.6; DNS errors are never a fail) and the disposition an
//   enforcing receiver would apply: p/sp/np, t=y (RFC 9989 §4.7) and pct sampling
//   (RFC 7489 §6.6.4), with the aggregate-report override reasons.
//
// Author Domain extraction (RFC 9989 §5.3.1, §11.5; RFC 5322 §3.6): the domains of every
// mailbox of every From field are collected (GMime parses the addresses, U-labels become
// A-labels). Exactly one distinct domain is evaluated. No From field, no mailbox with a
// domain, or more than one distinct domain (several From fields or several mailboxes) gives
// PermError with header_from "": RFC 9989 §5.3.1 says DMARC is then not possible, and
// RFC 9989 §9.2 names permerror for a message that cannot be evaluated; `none` would claim
// that the domain published no policy. The RFC 7489 §6.6.1 option of evaluating every domain
// and applying the strictest policy is not implemented (RFC 9989 §11.5 warns about it).
//
// Not done: failure-report decisions (fo=) and report sending (report/ and outbound/ read
// DmarcRecord::fo/rua/ruf), local policy overrides (forwarded, mailing_list, ...: the milter
// adds those), ARC.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mailreport/auth/verdict.hpp"
#include "mailreport/dns/resolver.hpp"
#include "mailreport/util/result.hpp"

namespace mailreport::auth {

// RFC 9989 §4.7, §4.8 (+ RFC 7489 §6.3 pct, ri): parses one TXT record (its strings already
// joined). Errors: the record does not start with the v=DMARC1 tag → NotAReport (RFC 9989
// §4.7: the record MUST be ignored); a p=, sp= or np= value that is not a policy and no
// syntactically valid rua= URI → Invalid (RFC 9989 §4.10.1: no DMARC processing). With a
// valid rua= such a record is taken as p=none (sp and np dropped). Unknown tags and other
// values that do not parse are ignored in favour of defaults (RFC 9989 §4.8); the first of a
// repeated tag wins. `text` keeps the record as published.
Result<DmarcRecord> parse_dmarc_record(std::string_view txt);

// One rua=/ruf= URI as a mail destination (RFC 7489 §6.2, §6.4; RFC 9989 §4.8): a mailto URI,
// "?hfields" dropped (RFC 6068; not ours to honour), %-decoded, with the obsolete
// "!" 1*DIGIT [k/m/g/t] size limit (powers of two). nullopt for other schemes and for
// addresses we would not put on an envelope (several addresses, no domain name, blanks).
struct ReportMailto {
  std::string address;         // local@host
  std::string host;            // the address's domain, lower case
  std::uint64_t max_size = 0;  // 0: no limit
};
std::optional<ReportMailto> parse_report_mailto(std::string_view uri);

struct DmarcOptions {
  Discovery discovery = Discovery::TreeWalk;  // or Psl (RFC 7489 §3.2 via libpsl)
  // 0..99 for pct sampling (RFC 7489 §6.6.4); default: a thread-safe PRNG.
  std::function<int()> random_percent;
};

// Thread-safe and shared by all milter connections: evaluate() and discover() keep their DNS
// answers in a memo local to the call; the resolver (one cache) is shared.
class DmarcEvaluator {
 public:
  // Loads the public suffix list when options.discovery is Psl (libpsl: the newer of its
  // built-in list and Debian's /usr/share/publicsuffix). Throws std::runtime_error when no
  // list can be loaded (start-up error).
  DmarcEvaluator(std::shared_ptr<dns::Resolver> resolver, DmarcOptions options = {});
  ~DmarcEvaluator();
  DmarcEvaluator(DmarcEvaluator&&) noexcept;
  DmarcEvaluator& operator=(DmarcEvaluator&&) noexcept;
  DmarcEvaluator(const DmarcEvaluator&) = delete;
  DmarcEvaluator& operator=(const DmarcEvaluator&) = delete;

  // from_headers: the raw values of every From: header of the message (zero, one or more).
  // See the file comment for the Author Domain rules. Result None (no policy record),
  // Pass/Fail, TempError (a DNS query that DMARC needed failed, RFC 9989 §5.3.6), PermError
  // (no single Author Domain, a record with an invalid policy). disposition is what an
  // enforcing receiver would do, set only for Fail.
  DmarcVerdict evaluate(const std::vector<std::string>& from_headers,
                        std::span<const SpfVerdict> spf, std::span<const DkimVerdict> dkim) const;

  // Policy discovery alone (used also by report sending): the record that applies to
  // `author_domain`, where it was found, and the Organizational Domain.
  struct Discovered {
    // None (no record), TempError (DNS), PermError (the record that applies has an invalid
    // policy and no valid rua=, or the name is not a domain), or Pass meaning 'found'.
    DmarcResult status = DmarcResult::None;
    std::optional<DmarcRecord> record;  // set when status is Pass
    std::string policy_domain;          // where the record that applies was found
    std::string org_domain;             // "" when a DNS error left it unknown
    Discovery how = Discovery::TreeWalk;
    // RFC 9989 §3.2.13, App. A.4: false only when the Author Domain was checked and is
    // NXDOMAIN. It is checked only when it matters: the record is not the Author Domain's
    // and its np= differs from the policy that applies to existing subdomains.
    bool author_domain_exists = true;
    Policy policy = Policy::None;  // p, sp or np as RFC 9989 §4.10.1 chooses (status Pass)
    std::string why;               // what happened, for logs and A-R comments
  };
  Discovered discover(std::string_view author_domain) const;

  // RFC 9989 §4.10.2 (tree walk) or RFC 7489 §3.2 (PSL): the Organizational Domain of a name,
  // lower case without a trailing dot. "" when a DNS error left it unknown (tree walk only) or
  // the name is not a domain name.
  std::string organizational_domain(std::string_view domain) const;

  Discovery discovery() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The Author Domain of a From field value in its everyday forms, without GMime: a bare
// addr-spec ("user@example.com") or a display name of plain words and simple quoted strings
// followed by an angle-addr ("Name <user@example.com>", "\"Last, First\" <u@example.com>"),
// printable ASCII only, a dot-atom local-part and an LDH domain of 2+ labels (no A-labels).
// Returns the domain lower-cased, exactly what mime::address_domains would give for the value
// (tests/unit/auth/dmarc_from_test.cpp checks that differentially); nullopt for every other
// value, which DmarcEvaluator then hands to mime::address_domains. Additive: used by
// DmarcEvaluator::evaluate, public for that test.
std::optional<std::string> simple_from_domain(std::string_view from_value);

}  // namespace mailreport::auth

// DmarcEvaluator: Author Domain extraction, policy discovery (RFC 9989 §4.10.1 or
// RFC 7489 §6.6.3), identifier alignment (RFC 9989 §4.4, §4.10.2), the result (RFC 9989
// §5.3.5, §5.3.6) and the disposition with t= (RFC 9989 §4.7) and pct= (RFC 7489 §6.6.4).
// See mailreport/auth/dmarc.hpp for the choices made where the RFCs leave room.
#include <algorithm>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>

#include "dmarc_internal.hpp"
#include "mailreport/auth/dmarc.hpp"
#include "mailreport/mime/address.hpp"

namespace mailreport::auth {

using dmarc_detail::dmarc1_records;
using dmarc_detail::DnsMemo;
using dmarc_detail::FoundRecord;
using dmarc_detail::is_domain_name;
using dmarc_detail::normalize_domain;
using dmarc_detail::parse_record;
using dmarc_detail::PublicSuffixList;
using dmarc_detail::rightmost_labels;
using dmarc_detail::select_org_domain;
using dmarc_detail::tree_walk;
using dmarc_detail::TxtAnswer;
using dmarc_detail::Walk;

namespace {

int default_random_percent() {
  // One generator per thread: no lock on the SMTP path.
  thread_local std::mt19937 gen{std::random_device{}()};
  return std::uniform_int_distribution<int>(0, 99)(gen);
}

Disposition to_disposition(Policy p) {
  switch (p) {
    case Policy::Reject: return Disposition::Reject;
    case Policy::Quarantine: return Disposition::Quarantine;
    case Policy::None: break;
  }
  return Disposition::None;
}

// RFC 9989 §4.7 (t=y) and RFC 7489 §6.3 (pct): "the next lower policy".
Disposition one_lower(Disposition d) {
  return d == Disposition::Reject ? Disposition::Quarantine : Disposition::None;
}

bool same_tld(std::string_view a, std::string_view b) {
  return rightmost_labels(a, 1) == rightmost_labels(b, 1);
}

enum class Aligned { No, Yes, Unknown };

}  // namespace

struct DmarcEvaluator::Impl {
  std::shared_ptr<dns::Resolver> resolver;
  DmarcOptions options;
  std::unique_ptr<PublicSuffixList> psl;  // only for Discovery::Psl

  int random_percent() const {
    int r = options.random_percent ? options.random_percent() : default_random_percent();
    return std::clamp(r, 0, 99);
  }

  // RFC 9989 §3.2.13 and App. A.4 (RFC 8020): a name exists unless a query for it answers
  // NXDOMAIN. A, AAAA and MX are asked in turn until one gives a definite answer, so that
  // one type's SERVFAIL does not decide. nullopt: all three failed.
  static std::optional<bool> domain_exists(DnsMemo& memo, const std::string& domain) {
    for (dns::RType t : {dns::RType::A, dns::RType::AAAA, dns::RType::MX}) {
      switch (memo.status(domain, t)) {
        case dns::Status::NxDomain: return false;
        case dns::Status::Ok:
        case dns::Status::NoData: return true;
        case dns::Status::TempError: break;
      }
    }
    return std::nullopt;
  }

  // The Organizational Domain of a normalized name; nullopt when DNS failed.
  std::optional<std::string> org_domain(DnsMemo& memo, const std::string& domain) const {
    if (psl) return psl->organizational_domain(domain);
    Walk w = tree_walk(memo, domain);
    if (w.temperror) return std::nullopt;
    return select_org_domain(w, domain);
  }

  Discovered discover(DnsMemo& memo, const std::string& author) const {
    Discovered d;
    d.how = options.discovery;
    if (!is_domain_name(author)) {
      d.status = DmarcResult::PermError;
      d.why = "'" + author + "' is not a domain name";
      return d;
    }
    const FoundRecord* chosen = nullptr;
    FoundRecord psl_found;  // storage for the PSL path
    Walk walk;
    if (options.discovery == Discovery::TreeWalk) {
      walk = tree_walk(memo, author);
      d.why = walk.why;
      if (!walk.temperror) d.org_domain = select_org_domain(walk, author);
      if (!walk.found.empty() && walk.found.front().domain == author) {
        // RFC 9989 §4.10.1: a valid record at the Author Domain is the one to apply, whatever
        // the rest of the walk found (a later DNS failure only leaves org_domain unknown).
        chosen = &walk.found.front();
      } else if (walk.temperror) {
        d.status = DmarcResult::TempError;
        return d;
      } else {
        // RFC 9989 §4.10.1: then the record of the Author Domain's Organizational Domain
        // (§4.10.2), then that of its Public Suffix Domain (a psd=y record, which the walk
        // stopped at). A PSD record never applies when the Organizational Domain has one.
        for (const auto& f : walk.found) {
          if (f.domain == d.org_domain) chosen = &f;
        }
        for (const auto& f : walk.found) {
          if (!chosen && f.parsed.record.psd == 'y') chosen = &f;
        }
        if (!chosen) {
          // "If the set produced by the DNS Tree Walk contains no DMARC Policy Record ...
          // Mail Receivers MUST NOT apply the DMARC mechanism."
          d.status = DmarcResult::None;
          if (!d.why.empty()) d.why += "; ";
          d.why += "no DMARC record for " + author + ", its Organizational Domain " + d.org_domain +
                   " or a public suffix domain";
          return d;
        }
      }
    } else {
      // RFC 7489 §6.6.3: _dmarc.<Author Domain>, then _dmarc.<Organizational Domain> (§3.2,
      // public suffix list); zero or several DMARC1 records at a name mean none there.
      d.org_domain = psl->organizational_domain(author);
      std::vector<std::string> names{author};
      if (d.org_domain != author) names.push_back(d.org_domain);
      for (const std::string& name : names) {
        const TxtAnswer& t = memo.txt("_dmarc." + name);
        if (t.status == dns::Status::TempError) {
          d.status = DmarcResult::TempError;
          d.why = t.why;
          return d;
        }
        auto records = dmarc1_records(t);
        if (records.size() == 1) {
          if (auto parsed = parse_record(records.front())) {
            psl_found = FoundRecord{name, std::move(*parsed)};
            chosen = &psl_found;
            break;
          }
        }
        if (!d.why.empty()) d.why += "; ";
        d.why += records.empty() ? "no DMARC record at _dmarc." + name
                                 : std::to_string(records.size()) + " DMARC records at _dmarc." +
                                       name + " discarded";
      }
      if (!chosen) {
        d.status = DmarcResult::None;
        if (!d.why.empty()) d.why += "; ";
        d.why += "no DMARC record for " + author + " or " + d.org_domain;
        return d;
      }
    }

    d.policy_domain = chosen->domain;
    if (!chosen->parsed.usable()) {
      // RFC 9989 §4.10.1: invalid p/sp/np and no valid rua: no DMARC processing; RFC 9989
      // §9.2 calls an improperly formatted record a permerror.
      d.status = DmarcResult::PermError;
      if (!d.why.empty()) d.why += "; ";
      d.why +=
          "record at _dmarc." + chosen->domain + " has an invalid p=, sp= or np= and no valid rua=";
      return d;
    }
    const DmarcRecord& rec = chosen->parsed.record;
    if (chosen->domain == author) {
      d.policy = rec.p;  // RFC 9989 §4.10.1: the Author Domain's own record: p
    } else {
      // RFC 9989 §4.10.1: the Organizational Domain's or PSD's record for a subdomain: sp if
      // the Author Domain exists, np if not, each falling back to p (np to sp first, §4.7).
      Policy existing = rec.sp.value_or(rec.p);
      d.policy = existing;
      if (rec.np && *rec.np != existing) {
        auto exists = domain_exists(memo, author);
        if (!exists) {
          d.status = DmarcResult::TempError;
          if (!d.why.empty()) d.why += "; ";
          d.why += "could not tell whether " + author + " exists (A/AAAA/MX failed)";
          return d;
        }
        d.author_domain_exists = *exists;
        if (!*exists) d.policy = *rec.np;
      }
    }
    d.record = rec;
    d.status = DmarcResult::Pass;
    return d;
  }
};

// ---- simple_from_domain: the everyday From forms without GMime (see dmarc.hpp) ----
namespace {

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// RFC 5322 §3.2.3 atext, less '=' and '?' (so that no word can start an RFC 2047 encoded-word)
// and '.' (obs-phrase): what is left is parsed the same by every reader.
bool is_phrase_char(char c) {
  if (is_alnum(c)) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '/':
    case '^':
    case '_':
    case '`':
    case '{':
    case '|':
    case '}':
    case '~': return true;
    default: return false;
  }
}

// RFC 5322 §3.2.3 atext (local-part of a dot-atom).
bool is_atext(char c) {
  return is_phrase_char(c) || c == '=' || c == '?';
}

// Words (atoms of is_phrase_char) and quoted strings without quoted-pairs, separated by spaces.
bool is_simple_phrase(std::string_view p) {
  std::size_t i = 0;
  while (i < p.size()) {
    if (p[i] == ' ') {
      ++i;
    } else if (p[i] == '"') {
      const std::size_t close = p.find('"', i + 1);
      if (close == std::string_view::npos) return false;
      for (std::size_t k = i + 1; k < close; ++k) {
        if (p[k] == '\\') return false;  // quoted-pair: left to GMime
      }
      i = close + 1;
      if (i < p.size() && p[i] != ' ') return false;
    } else {
      const std::size_t start = i;
      while (i < p.size() && is_phrase_char(p[i])) ++i;
      if (i == start) return false;
      if (i < p.size() && p[i] != ' ') return false;
    }
  }
  return true;
}

// local@domain: a dot-atom local-part and 2+ LDH labels (1..63 octets, no leading, trailing or
// doubled '-', so no A-label and nothing an IDNA library could reject or rewrite).
std::optional<std::string> simple_addr_spec_domain(std::string_view a) {
  const std::size_t at = a.find('@');
  if (at == std::string_view::npos || at == 0 || a.find('@', at + 1) != std::string_view::npos) {
    return std::nullopt;
  }
  const std::string_view local = a.substr(0, at);
  const std::string_view domain = a.substr(at + 1);
  if (local.front() == '.' || local.back() == '.' || local.find("..") != std::string_view::npos) {
    return std::nullopt;
  }
  for (char c : local) {
    if (c != '.' && !is_atext(c)) return std::nullopt;
  }
  if (domain.empty() || domain.size() > 253) return std::nullopt;
  std::size_t labels = 0;
  std::size_t start = 0;
  while (start <= domain.size()) {
    std::size_t dot = domain.find('.', start);
    if (dot == std::string_view::npos) dot = domain.size();
    const std::string_view label = domain.substr(start, dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-' ||
        label.find("--") != std::string_view::npos) {
      return std::nullopt;
    }
    for (char c : label) {
      if (!is_alnum(c) && c != '-') return std::nullopt;
    }
    ++labels;
    start = dot + 1;
  }
  if (labels < 2) return std::nullopt;
  std::string out(domain);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace

std::optional<std::string> simple_from_domain(std::string_view v) {
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  if (v.empty()) return std::nullopt;
  for (char c : v) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) return std::nullopt;  // controls, folding, 8-bit: GMime's
  }
  if (v.back() != '>') {
    return simple_addr_spec_domain(v);
  }
  const std::size_t lt = v.find('<');
  if (lt == std::string_view::npos || v.find('<', lt + 1) != std::string_view::npos ||
      v.find('>') != v.size() - 1) {
    return std::nullopt;
  }
  std::string_view phrase = v.substr(0, lt);
  if (!is_simple_phrase(phrase)) return std::nullopt;
  return simple_addr_spec_domain(v.substr(lt + 1, v.size() - lt - 2));
}

DmarcEvaluator::DmarcEvaluator(std::shared_ptr<dns::Resolver> resolver, DmarcOptions options)
    : impl_(std::make_unique<Impl>()) {
  if (!resolver) throw std::invalid_argument("DmarcEvaluator needs a resolver");
  impl_->resolver = std::move(resolver);
  impl_->options = std::move(options);
  if (impl_->options.discovery == Discovery::Psl) {
    impl_->psl = std::make_unique<PublicSuffixList>();
  }
}

DmarcEvaluator::~DmarcEvaluator() = default;
DmarcEvaluator::DmarcEvaluator(DmarcEvaluator&&) noexcept = default;
DmarcEvaluator& DmarcEvaluator::operator=(DmarcEvaluator&&) noexcept = default;

Discovery DmarcEvaluator::discovery() const noexcept {
  return impl_->options.discovery;
}

DmarcEvaluator::Discovered DmarcEvaluator::discover(std::string_view author_domain) const {
  DnsMemo memo(*impl_->resolver);
  return impl_->discover(memo, normalize_domain(author_domain));
}

std::string DmarcEvaluator::organizational_domain(std::string_view domain) const {
  std::string d = normalize_domain(domain);
  if (!is_domain_name(d)) return {};
  DnsMemo memo(*impl_->resolver);
  return impl_->org_domain(memo, d).value_or("");
}

DmarcVerdict DmarcEvaluator::evaluate(const std::vector<std::string>& from_headers,
                                      std::span<const SpfVerdict> spf,
                                      std::span<const DkimVerdict> dkim) const {
  DmarcVerdict v;
  v.discovery = impl_->options.discovery;

  // RFC 9989 §5.3.1: exactly one Author Domain, else DMARC is not possible. §4.4: alignment
  // "cannot occur with a message that is not valid per RFC 5322, particularly one with a
  // malformed, absent, or repeated RFC5322.From header field". We answer permerror.
  if (from_headers.empty()) {
    v.result = DmarcResult::PermError;
    v.reason = "no From header field";
    return v;
  }
  if (from_headers.size() > 1) {
    v.result = DmarcResult::PermError;
    v.reason = std::to_string(from_headers.size()) + " From header fields (RFC 5322 §3.6)";
    return v;
  }
  std::vector<std::string> domains;
  if (auto simple = simple_from_domain(from_headers.front())) {
    // The everyday forms, parsed as GMime would (dmarc.hpp); GMime for everything else.
    domains.push_back(normalize_domain(*simple));
  } else {
    for (const auto& d : mime::address_domains(from_headers.front())) {
      std::string n = normalize_domain(d);
      if (std::find(domains.begin(), domains.end(), n) == domains.end()) domains.push_back(n);
    }
  }
  if (domains.empty()) {
    v.result = DmarcResult::PermError;
    v.reason = "no domain in the From header field";
    return v;
  }
  if (domains.size() > 1) {
    // RFC 9989 §11.5: several Author Domains; the "MAY go forward" option is not taken.
    v.result = DmarcResult::PermError;
    v.reason = "From holds " + std::to_string(domains.size()) + " domains:";
    for (const auto& d : domains) v.reason += " " + d;
    return v;
  }
  const std::string author = domains.front();
  v.header_from = author;

  DnsMemo memo(*impl_->resolver);
  Discovered d = impl_->discover(memo, author);
  v.policy_domain = d.policy_domain;
  v.org_domain = d.org_domain;
  v.applied_policy = d.policy;
  if (d.status != DmarcResult::Pass) {
    v.result = d.status;  // None, TempError or PermError
    v.reason = d.why;
    return v;
  }
  const DmarcRecord& rec = *d.record;
  v.record = rec;

  // Organizational Domains met on the way, so each identifier walks once.
  std::map<std::string, std::optional<std::string>> orgs;
  if (!d.org_domain.empty()) orgs.emplace(author, d.org_domain);
  auto org_of = [&](const std::string& name) -> const std::optional<std::string>& {
    auto it = orgs.find(name);
    if (it == orgs.end()) it = orgs.emplace(name, impl_->org_domain(memo, name)).first;
    return it->second;
  };
  // RFC 9989 §3.2.10, §4.4: strict = identical, relaxed = same Organizational Domain,
  // compared case-insensitively (RFC 4343).
  auto align = [&](std::string_view raw, Alignment mode) -> Aligned {
    std::string id = normalize_domain(raw);
    if (!is_domain_name(id)) return Aligned::No;
    if (id == author) return Aligned::Yes;
    if (mode == Alignment::Strict) return Aligned::No;
    // An Organizational Domain is its name or an ancestor of it (§4.10.2, RFC 7489 §3.2), so
    // names under different TLDs never share one: no walk needed.
    if (!same_tld(id, author)) return Aligned::No;
    const auto& a = org_of(author);
    const auto& b = org_of(id);
    if (!a || !b) return Aligned::Unknown;
    return *a == *b ? Aligned::Yes : Aligned::No;
  };

  std::string unknown;  // DNS failures that could have turned into an aligned pass
  std::string passed;
  // RFC 9989 §4.4.1: any passing DKIM signature whose d= aligns.
  for (const auto& sig : dkim) {
    if (sig.result != DkimResult::Pass && sig.result != DkimResult::TempError) continue;
    Aligned a = align(sig.domain, rec.adkim);
    if (sig.result == DkimResult::Pass && a == Aligned::Yes) {
      v.dkim_aligned = true;
      passed += (passed.empty() ? "" : ", ") + std::string("dkim d=") + sig.domain;
    } else if (a != Aligned::No && unknown.empty()) {
      unknown = sig.result == DkimResult::TempError
                    ? "DKIM d=" + sig.domain + " temperror"
                    : "Organizational Domain of " + sig.domain + " unknown (DNS)";
    }
  }
  // RFC 7489 §3.1.2, RFC 9989 §4.4.2: only the MAIL FROM identity counts (for a null path
  // that is postmaster@HELO, RFC 7208 §2.4, which the SPF verdict's domain already says).
  auto mfrom = std::find_if(spf.begin(), spf.end(),
                            [](const SpfVerdict& s) { return s.scope == SpfScope::MailFrom; });
  if (mfrom != spf.end() &&
      (mfrom->result == SpfResult::Pass || mfrom->result == SpfResult::TempError)) {
    Aligned a = align(mfrom->domain, rec.aspf);
    if (mfrom->result == SpfResult::Pass && a == Aligned::Yes) {
      v.spf_aligned = true;
      passed += (passed.empty() ? "" : ", ") + std::string("spf ") + mfrom->domain;
    } else if (a != Aligned::No && unknown.empty()) {
      unknown = mfrom->result == SpfResult::TempError
                    ? "SPF " + mfrom->domain + " temperror"
                    : "Organizational Domain of " + mfrom->domain + " unknown (DNS)";
    }
  }

  if (v.dkim_aligned || v.spf_aligned) {
    v.result = DmarcResult::Pass;  // RFC 9989 §5.3.5
    v.reason = "aligned: " + passed;
    return v;
  }
  if (!unknown.empty()) {
    // RFC 9989 §5.3.6: a query that did not complete means neither pass nor fail.
    v.result = DmarcResult::TempError;
    v.reason = unknown;
    return v;
  }
  v.result = DmarcResult::Fail;
  v.reason = "no aligned SPF or DKIM pass for " + author;

  // What an enforcing receiver applies (RFC 9989 §5.3.6, §5.4).
  v.disposition = to_disposition(d.policy);
  if (v.disposition != Disposition::None) {
    if (rec.testing) {
      // RFC 9989 §4.7 t=y: one level below (reject → quarantine, quarantine → none). It takes
      // the place of pct (RFC 9989 App. A.6), so pct is not also applied.
      v.disposition = one_lower(v.disposition);
      v.overrides.emplace_back(OverrideReason::PolicyTestMode, "t=y");
    } else if (rec.pct < 100 && impl_->random_percent() >= rec.pct) {
      // RFC 7489 §6.6.4: a message outside the pct sample gets the next lower policy.
      v.disposition = one_lower(v.disposition);
      v.overrides.emplace_back(OverrideReason::SampledOut, "pct=" + std::to_string(rec.pct));
    }
  }
  return v;
}

}  // namespace mailreport::auth

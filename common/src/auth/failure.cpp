// auth/failure: which failure reports a message calls for (see failure.hpp for the rules and
// the RFCs). The decisions, at the points where the RFCs leave room:
//
// - DMARC fo= (RFC 7489 §6.3, RFC 9989 §4.7), only for a DMARC pass or fail (a DNS error is
//   neither, RFC 9989 §5.3.6): "0" when neither DKIM nor SPF gave an aligned pass; "1" when
//   one of them did not; "d" when a signature failed evaluation (fail, permerror, policy; a
//   temperror is a DNS error, not a failure); "s" when SPF of MAIL FROM failed (fail,
//   softfail, permerror). One report per ruf address, whatever fo= options matched, with
//   Auth-Failure "dmarc"; Identity-Alignment names the mechanisms that failed to authenticate
//   an aligned identity ("none" when none did), as the RFC 9991 drafts define it (RFC 7489
//   §7.3.1 and Stalwart list the ones that did instead). Its DKIM fields describe the first
//   failed signature whose d= aligns with the From domain (adkim=s: equal; r: at or below the
//   Organizational Domain), or with fo=d the first failed one; SPF-DNS is filled when SPF did
//   not pass.
// - ruf URIs (RFC 7489 §6.4): mailto only, "?hfields" dropped, %-decoded, the obsolete
//   "!size[kmgt]" suffix (powers of two) kept as max_size. External destination verification
//   (RFC 7489 §7.1, RFC 9990 §4, RFC 9991) by auth/report_destination.hpp: when the
//   destination host's Organizational Domain (milter.dmarc-discovery, via DmarcEvaluator) is
//   not the policy domain's, a TXT record starting v=DMARC1 must exist at
//   <policy-domain>._report._dmarc.<host>. A ruf= in that record replaces the URI when every
//   one of its URIs names the same host; if one names another host, neither is used
//   (RFC 7489 §7.1 step 4).
// - DKIM (RFC 6651 §3.3): signatures with r=y whose result is fail, permerror, policy or
//   temperror; the record at _report._domainkey.<d> must be the only TXT record there and
//   carry ra= (RFC 6376 §3.2 tag list; ra= qp-decoded). rr= classes from our verdict:
//   d = key lookup failed, no key, several key records (DNS); s = signature or key record
//   syntax; x = signature expired; v = signature or body hash did not verify; p = refused by
//   local policy (key too small, rsa-sha1, RFC 8301); o = anything else (revoked key, a
//   timestamp in the future, t=s identity, not evaluated). u (unknown tags) never matches:
//   the verifier does not say which tags it did not know. Auth-Failure is the verdict's
//   ("bodyhash", "revoked", "signature"), else "signature" (RFC 6591 §3.2.2 has no value for
//   the other classes; "signature" is the generic one).
// - SPF (RFC 6652 §3): the MAIL FROM identity's domain (postmaster@HELO for <>): its own
//   v=spf1 record, fetched again through the Resolver (cached: libspf2 just asked), so a
//   record reached by include: or redirect= is never used. Modifiers ra=, rp=, rr= (names
//   case-insensitive); rr classes all, e (temperror, permerror), f (fail), s (softfail),
//   n (neutral, none).
// - rp= (both): a report is due when random_percent() < rp (0 never, 100 always).
// - Delivery-Result from the DMARC disposition: none → delivered, quarantine → spam,
//   reject → reject (as Stalwart does).
// - Duplicates: one request per (kind, recipient) and message.
//
// Not done: the RFC 6651 rs= SMTP reply text; DKIM-Canonicalized-* (auth/dkim leaves them
// empty, see dkim.cpp); reports for trusted upstream DKIM verdicts (they carry no r=).
#include "mailreport/auth/failure.hpp"

#include <algorithm>
#include <cctype>
#include <random>
#include <string_view>
#include <utility>

#include "dmarc_internal.hpp"
#include "mailreport/auth/report_destination.hpp"

namespace mailreport::auth {
namespace {

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string lowered(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower(c);
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return lower(x) == lower(y); });
}

bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::string_view trim(std::string_view s) {
  auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  return s;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = lower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// RFC 6376 §2.11 qp-section: "=41" → "A" (the ra= local-part of RFC 6651 §3.2).
std::string qp_decode(std::string_view s) {
  constexpr char escape = '=';
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == escape && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 &&
        hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// RFC 6376 §3.2 tag-list (also RFC 6651 §3.2's _report._domainkey record): name=value pairs
// separated by ';', names case-sensitive by the RFC but compared case-insensitively here (the
// tags we read are lower case). The first of a repeated tag wins.
std::vector<std::pair<std::string, std::string>> tag_list(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!text.empty()) {
    const auto semi = text.find(';');
    std::string_view piece = trim(text.substr(0, semi));
    text.remove_prefix(semi == std::string_view::npos ? text.size() : semi + 1);
    const auto eq = piece.find('=');
    if (eq == std::string_view::npos) continue;
    std::string name = lowered(trim(piece.substr(0, eq)));
    std::string value;
    for (char c : trim(piece.substr(eq + 1))) {
      if (c != ' ' && c != '\t' && c != '\r' && c != '\n') value += c;  // FWS inside values
    }
    const bool repeated =
        std::any_of(out.begin(), out.end(), [&](const auto& p) { return p.first == name; });
    if (!name.empty() && !repeated) out.emplace_back(std::move(name), std::move(value));
  }
  return out;
}

const std::string* find_tag(const std::vector<std::pair<std::string, std::string>>& tags,
                            std::string_view name) {
  for (const auto& [n, v] : tags) {
    if (n == name) return &v;
  }
  return nullptr;
}

// rp= (RFC 6651 §3.2, RFC 6652 §3): 1*3DIGIT percentage; above 100 counts as 100.
std::optional<int> parse_percent(std::string_view s) {
  if (s.empty() || s.size() > 3) return std::nullopt;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return std::min(v, 100);
}

// rr= (RFC 6651 §3.2, RFC 6652 §3): does the colon list ask for `cls`? Unknown tokens are
// ignored; "all" asks for everything.
bool rr_wants(std::string_view list, std::string_view cls) {
  while (true) {
    const auto colon = list.find(':');
    std::string_view token = trim(list.substr(0, colon));
    if (iequals(token, "all") || iequals(token, cls)) return true;
    if (colon == std::string_view::npos) return false;
    list.remove_prefix(colon + 1);
  }
}

bool dkim_failed(DkimResult r) {
  // RFC 7489 §6.3 fo=d: "failed evaluation". TempError is a DNS error, neither pass nor fail.
  return r == DkimResult::Fail || r == DkimResult::PermError || r == DkimResult::Policy;
}

bool spf_failed(SpfResult r) {
  return r == SpfResult::Fail || r == SpfResult::SoftFail || r == SpfResult::PermError;
}

const SpfVerdict* mail_from_spf(const Evaluation& ev) {
  for (const auto& s : ev.spf) {
    if (s.scope == SpfScope::MailFrom) return &s;
  }
  return nullptr;
}

// RFC 6651 §3.2 rr= class of a failed signature (see the file comment). The words are those of
// auth/dkim's verdicts (dkim.cpp).
const char* dkim_report_class(const DkimVerdict& v) {
  const std::string_view reason = v.reason;
  switch (v.result) {
    case DkimResult::Fail:
      return v.auth_failure == "revoked" || istarts_with(reason, "key revoked") ? "o" : "v";
    case DkimResult::Policy: return "p";
    case DkimResult::TempError: return istarts_with(reason, "key lookup failed") ? "d" : "o";
    case DkimResult::PermError:
      if (istarts_with(reason, "rsa-sha1")) return "p";
      if (istarts_with(reason, "no key") || istarts_with(reason, "several key records")) {
        return "d";
      }
      if (istarts_with(reason, "key syntax") || istarts_with(reason, "signature syntax")) {
        return "s";
      }
      if (istarts_with(reason, "signature expired")) return "x";
      return "o";
    default: return "o";
  }
}

// RFC 6652 §3 rr= class of an SPF result; nullptr for a pass.
const char* spf_report_class(SpfResult r) {
  switch (r) {
    case SpfResult::TempError:
    case SpfResult::PermError: return "e";
    case SpfResult::Fail: return "f";
    case SpfResult::SoftFail: return "s";
    case SpfResult::Neutral:
    case SpfResult::None: return "n";
    case SpfResult::Pass: break;
  }
  return nullptr;
}

const char* delivery_result(Disposition d) {
  switch (d) {
    case Disposition::Reject: return "reject";
    case Disposition::Quarantine: return "spam";
    case Disposition::None: break;
  }
  return "delivered";
}

// RFC 9991 §3 (draft-ietf-dmarc-failure-reporting-25): the mechanisms that failed to
// authenticate an aligned identity.
std::string identity_alignment(const DmarcVerdict& v) {
  if (!v.dkim_aligned && !v.spf_aligned) return "dkim, spf";
  if (!v.dkim_aligned) return "dkim";
  if (!v.spf_aligned) return "spf";
  return "none";
}

// fo= (RFC 7489 §6.3, RFC 9989 §4.7); the record parser keeps only valid values.
struct FailureOptions {
  bool all_fail = false;  // 0
  bool any_fail = false;  // 1
  bool dkim = false;      // d
  bool spf = false;       // s
};

FailureOptions parse_fo(std::string_view fo) {
  FailureOptions o;
  bool any = false;
  while (true) {
    const auto colon = fo.find(':');
    std::string_view t = trim(fo.substr(0, colon));
    if (t.size() == 1) {
      switch (lower(t[0])) {
        case '0': o.all_fail = any = true; break;
        case '1': o.any_fail = any = true; break;
        case 'd': o.dkim = any = true; break;
        case 's': o.spf = any = true; break;
        default: break;
      }
    }
    if (colon == std::string_view::npos) break;
    fo.remove_prefix(colon + 1);
  }
  if (!any) o.all_fail = true;  // RFC 7489 §6.3: default 0
  return o;
}

std::mt19937_64& thread_engine() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  return engine;
}

}  // namespace

FailurePlanner::FailurePlanner(std::shared_ptr<dns::Resolver> resolver,
                               std::shared_ptr<const config::Config> config,
                               std::function<double()> random_percent,
                               std::shared_ptr<const DmarcEvaluator> dmarc)
    : resolver_(std::move(resolver)),
      config_(std::move(config)),
      random_percent_(std::move(random_percent)),
      dmarc_(std::move(dmarc)) {
  if (!random_percent_) {
    random_percent_ = [] {
      return std::uniform_real_distribution<double>(0.0, 100.0)(thread_engine());
    };
  }
  if (!dmarc_) {
    DmarcOptions o;
    o.discovery = config_->milter.dmarc_discovery == config::DmarcDiscovery::Psl
                      ? Discovery::Psl
                      : Discovery::TreeWalk;
    dmarc_ = std::make_shared<const DmarcEvaluator>(resolver_, std::move(o));
  }
}

bool FailurePlanner::may_report(const Evaluation& ev) noexcept {
  const DmarcVerdict& d = ev.dmarc;
  if (d.record && !d.record->ruf.empty() && d.record->psd != 'y' &&
      (d.result == DmarcResult::Pass || d.result == DmarcResult::Fail) &&
      (!d.dkim_aligned || !d.spf_aligned ||
       std::any_of(ev.dkim.begin(), ev.dkim.end(),
                   [](const DkimVerdict& v) { return dkim_failed(v.result); }))) {
    return true;
  }
  for (const auto& v : ev.dkim) {
    if (v.report_requested && v.result != DkimResult::Pass && v.result != DkimResult::None &&
        v.result != DkimResult::Neutral) {
      return true;
    }
  }
  const SpfVerdict* spf = mail_from_spf(ev);
  return spf != nullptr && spf->result != SpfResult::Pass && spf->result != SpfResult::None &&
         !spf->domain.empty();
}

namespace {

// What the planner needs while it works on one message.
class Planning {
 public:
  Planning(dns::Resolver& resolver, const config::Config& config, const DmarcEvaluator& dmarc,
           const std::function<double()>& random_percent, const Evaluation& ev)
      : resolver_(resolver), config_(config), dmarc_(dmarc), random_(random_percent), ev_(ev) {}

  std::vector<FailureReportRequest> run() {
    dmarc_reports();
    dkim_reports();
    spf_reports();
    return std::move(out_);
  }

 private:
  // The v=spf1 record of `domain` as published (RFC 7208 §4.5: exactly one); nullopt when there
  // is none or several, or DNS failed.
  std::optional<std::string> spf_record(const std::string& domain) {
    const dns::Answer a = resolver_.query(domain, dns::RType::TXT);
    if (a.status != dns::Status::Ok) return std::nullopt;
    std::optional<std::string> found;
    for (auto& txt : dns::txt_records(a)) {
      const bool spf1 = istarts_with(txt, "v=spf1") && (txt.size() == 6 || txt[6] == ' ');
      if (!spf1) continue;
      if (found) return std::nullopt;  // RFC 7208 §4.5: several records → permerror
      found = std::move(txt);
    }
    return found;
  }

  bool sampled(int rp) const { return rp >= 100 || (rp > 0 && random_() < rp); }

  void add(FailureKind kind, FailureReportRequest r) {
    const config::FailureReportSettings& s = kind == FailureKind::Dmarc  ? config_.report.dmarc
                                             : kind == FailureKind::Dkim ? config_.report.dkim
                                                                         : config_.report.spf;
    if (!s.send) return;  // report.<kind>.send = false
    for (const auto& o : out_) {
      if (o.kind == kind && iequals(o.recipient, r.recipient)) return;
    }
    r.kind = kind;
    r.limit_count = s.send->count;
    r.limit_period = static_cast<std::int64_t>(s.send->period.count());
    r.delivery_result = delivery_result(ev_.dmarc.disposition);
    out_.push_back(std::move(r));
  }

  // ---- DMARC (RFC 7489 §7.3, RFC 9991) ----

  bool fo_matches(const FailureOptions& fo) const {
    const DmarcVerdict& d = ev_.dmarc;
    if (fo.all_fail && !d.dkim_aligned && !d.spf_aligned) return true;
    if (fo.any_fail && (!d.dkim_aligned || !d.spf_aligned)) return true;
    if (fo.dkim && std::any_of(ev_.dkim.begin(), ev_.dkim.end(),
                               [](const DkimVerdict& v) { return dkim_failed(v.result); })) {
      return true;
    }
    const SpfVerdict* spf = mail_from_spf(ev_);
    return fo.spf && spf != nullptr && spf_failed(spf->result);
  }

  // The signature a DMARC report describes (see the file comment), -1 for none.
  int dmarc_dkim_index(const FailureOptions& fo) const {
    const DmarcVerdict& d = ev_.dmarc;
    const bool strict = d.record && d.record->adkim == Alignment::Strict;
    int first_failed = -1;
    for (std::size_t i = 0; i < ev_.dkim.size(); ++i) {
      const DkimVerdict& v = ev_.dkim[i];
      if (v.result == DkimResult::Pass || v.result == DkimResult::None || v.domain.empty()) {
        continue;
      }
      const std::string domain = dmarc_detail::normalize_domain(v.domain);
      const bool aligned =
          strict ? domain == dmarc_detail::normalize_domain(d.header_from)
                 : !d.org_domain.empty() && dmarc_detail::is_at_or_below(domain, d.org_domain);
      if (aligned) return static_cast<int>(i);
      if (first_failed < 0) first_failed = static_cast<int>(i);
    }
    return fo.dkim ? first_failed : -1;
  }

  void dmarc_reports() {
    const DmarcVerdict& d = ev_.dmarc;
    if (!d.record || d.record->ruf.empty()) return;
    if (d.result != DmarcResult::Pass && d.result != DmarcResult::Fail) return;
    // RFC 9991: ruf in a PSD record (psd=y) MUST NOT be used without a specific agreement.
    if (d.record->psd == 'y') return;
    const FailureOptions fo = parse_fo(d.record->fo);
    if (!fo_matches(fo)) return;

    const std::string policy_domain =
        dmarc_detail::normalize_domain(d.policy_domain.empty() ? d.header_from : d.policy_domain);
    std::string policy_org = d.org_domain;
    if (policy_org.empty() || !dmarc_detail::is_at_or_below(policy_domain, policy_org)) {
      policy_org = dmarc_.organizational_domain(policy_domain);
    }

    FailureReportRequest base;
    base.reported_domain = policy_domain;
    base.auth_failure = "dmarc";
    base.identity_alignment = identity_alignment(d);
    base.dkim_index = dmarc_dkim_index(fo);
    const SpfVerdict* spf = mail_from_spf(ev_);
    if (spf != nullptr && spf->result != SpfResult::Pass && !spf->domain.empty()) {
      // RFC 9991: SPF-DNS for an SPF failure; a lookup that fails only leaves it out.
      base.spf_record = spf_record(dmarc_detail::normalize_domain(spf->domain)).value_or("");
    }

    for (const std::string& uri : d.record->ruf) {
      auto dest = parse_report_mailto(uri);
      if (!dest) continue;
      // RFC 7489 §7.1 / RFC 9991 (auth/report_destination.hpp): a DNS error means no report.
      DestinationVerdict v = verify_report_destination(resolver_, dmarc_, policy_domain, policy_org,
                                                       *dest, ReportUriTag::Ruf);
      if (v.status != DestinationStatus::Authorized) continue;
      for (auto& t : v.targets) {
        FailureReportRequest r = base;
        r.recipient = std::move(t.address);
        r.max_size = t.max_size;
        add(FailureKind::Dmarc, std::move(r));
      }
    }
  }

  // ---- DKIM (RFC 6651 §3.3) ----

  void dkim_reports() {
    for (std::size_t i = 0; i < ev_.dkim.size(); ++i) {
      const DkimVerdict& v = ev_.dkim[i];
      // RFC 6651 §3.3 step 1: no valid r= tag, stop.
      if (!v.report_requested) continue;
      if (v.result == DkimResult::Pass || v.result == DkimResult::None ||
          v.result == DkimResult::Neutral) {
        continue;
      }
      const std::string domain = dmarc_detail::normalize_domain(v.domain);
      if (!dmarc_detail::is_domain_name(domain)) continue;
      // Step 2: the TXT record at _report._domainkey.<d>; anything but one answer, stop.
      const dns::Answer a = resolver_.query("_report._domainkey." + domain, dns::RType::TXT);
      if (a.status != dns::Status::Ok) continue;
      const auto records = dns::txt_records(a);
      if (records.size() != 1) continue;
      const auto tags = tag_list(records.front());
      // Step 3: no ra=, no report (rp and rr are then ignored too).
      const std::string* ra = find_tag(tags, "ra");
      if (ra == nullptr) continue;
      const std::string local = qp_decode(*ra);
      if (!dmarc_detail::is_plain_local_part(local)) continue;
      const std::string* rr = find_tag(tags, "rr");
      if (rr != nullptr && !rr_wants(*rr, dkim_report_class(v))) continue;
      const std::string* rp = find_tag(tags, "rp");
      std::optional<int> pct = rp != nullptr ? parse_percent(*rp) : std::optional<int>(100);
      if (!pct || !sampled(*pct)) continue;

      FailureReportRequest r;
      r.recipient = local + "@" + domain;
      r.reported_domain = domain;
      r.auth_failure = v.auth_failure.empty() ? "signature" : v.auth_failure;
      r.dkim_index = static_cast<int>(i);
      add(FailureKind::Dkim, std::move(r));
    }
  }

  // ---- SPF (RFC 6652 §3) ----

  void spf_reports() {
    const SpfVerdict* spf = mail_from_spf(ev_);
    if (spf == nullptr) return;
    const char* cls = spf_report_class(spf->result);
    if (cls == nullptr) return;
    const std::string domain = dmarc_detail::normalize_domain(spf->domain);
    if (!dmarc_detail::is_domain_name(domain)) return;
    auto record = spf_record(domain);
    if (!record) return;

    // RFC 7208 §4.6.1: terms separated by spaces; modifier = name "=" macro-string.
    std::string ra;
    std::string rr = "all";
    int rp = 100;
    bool seen_ra = false, seen_rp = false, seen_rr = false;
    std::string_view rest = *record;
    while (!rest.empty()) {
      const auto sp = rest.find(' ');
      const std::string_view term = rest.substr(0, sp);
      rest.remove_prefix(sp == std::string_view::npos ? rest.size() : sp + 1);
      const auto eq = term.find('=');
      if (eq == std::string_view::npos) continue;
      const std::string name = lowered(term.substr(0, eq));
      const std::string_view value = term.substr(eq + 1);
      if (name == "ra" && !seen_ra) {
        ra = std::string(value);
        seen_ra = true;
      } else if (name == "rp" && !seen_rp) {
        auto p = parse_percent(value);
        if (!p) return;  // a record we cannot read: no report
        rp = *p;
        seen_rp = true;
      } else if (name == "rr" && !seen_rr) {
        rr = std::string(value);
        seen_rr = true;
      }
    }
    if (!seen_ra || !dmarc_detail::is_plain_local_part(ra) || ra.find('%') != std::string::npos)
      return;
    if (!rr_wants(rr, cls) || !sampled(rp)) return;

    FailureReportRequest r;
    r.recipient = ra + "@" + domain;
    r.reported_domain = domain;
    r.auth_failure = "spf";
    r.spf_record = std::move(*record);
    add(FailureKind::Spf, std::move(r));
  }

  dns::Resolver& resolver_;
  const config::Config& config_;
  const DmarcEvaluator& dmarc_;
  const std::function<double()>& random_;
  const Evaluation& ev_;
  std::vector<FailureReportRequest> out_;
};

}  // namespace

std::vector<FailureReportRequest> FailurePlanner::plan(const Evaluation& ev,
                                                       const MessageTraits& traits) const {
  // design.md, "Safety rules": never about a report, never about our own report traffic.
  if (traits.is_report || traits.own_traffic) return {};
  if (!may_report(ev)) return {};
  return Planning(*resolver_, *config_, *dmarc_, random_percent_, ev).run();
}

}  // namespace mailreport::auth

// The SMTP TLS report source (see mailreport/outbound/tls_aggregate.hpp): RFC 8460 §4 reports
// from the collector's daily counts, one per recipient domain and TLSRPT record, and the
// record's parser (RFC 8460 §3).
//
// - Rows come from Store::for_each_unreported_tls ordered by domain, then record, then day: a
//   report is finished when the (domain, record) pair changes, so at most one pair's rows are
//   held. Rows of the same policy on several days (counts recorded late for an earlier day)
//   are merged into one policy entry, and identical failure details into one.
// - date-range: the interval (RFC 8460 §4.1: a full UTC day, 00:00:00 to 23:59:59), starting
//   earlier when late rows of an earlier day are in it; end-datetime is the last second.
// - A policy without policy-domain (libtlsrpt leaves it out for no-policy-found) gets the
//   recipient domain: RFC 8460 §4.4 requires the field.
// - Deliveries: the rua= URIs in order, each once. mailto: goes to its %-decoded address,
//   https: to the URL. report.tls.aggregate.max-size applies to mail only (RFC 8460 §5.3 has no
//   size limit of its own). A record that does not parse, or whose URIs are all unusable,
//   gives a report without destinations: the builder does not keep it but marks its counts
//   reported, so that they do not pile up day after day.
//
// Not done: A-label conversion of IDN domains (RFC 8460 §4.4; Postfix hands us A-labels).
#include "mailreport/outbound/tls_aggregate.hpp"

#include <algorithm>
#include <cctype>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "mailreport/auth/dmarc.hpp"
#include "mailreport/report/model.hpp"
#include "mailreport/report/tlsrpt_writer.hpp"
#include "mailreport/store/aggregate_payload.hpp"
#include "report/gzip.hpp"

namespace mailreport::outbound {

namespace {

constexpr std::string_view kLogContext = "tls-aggregate";

Error invalid(std::string why) {
  return make_error(ErrorCode::Invalid, std::move(why));
}

bool is_wsp(char c) {
  return c == ' ' || c == '\t';
}

// The store keeps recipient domains in lower case.
std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim_wsp(std::string_view s) {
  while (!s.empty() && is_wsp(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_wsp(s.back())) s.remove_suffix(1);
  return s;
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

// RFC 8460 §3: tlsrpt-ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
bool is_ext_name(std::string_view n) {
  if (n.empty() || n.size() > 32) return false;
  if (!std::isalnum(static_cast<unsigned char>(n[0]))) return false;
  return std::all_of(n.begin() + 1, n.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

// One rua URI: mailto: (a single address we can put on an envelope) or https: (a host).
// Returns the destination (address or URL), or nullopt when we cannot use it.
std::optional<std::string> destination_of(std::string_view uri) {
  // RFC 8460 §3: "," "!" ";" inside a URI MUST be %-encoded; a raw "!" is a DMARC-style size
  // suffix, which TLSRPT does not have.
  if (uri.empty() || uri.find_first_of("!; \t") != std::string_view::npos) return std::nullopt;
  if (starts_with_ci(uri, "mailto:")) {
    auto m = auth::parse_report_mailto(uri);
    if (!m || m->max_size != 0) return std::nullopt;
    return m->address;
  }
  if (starts_with_ci(uri, "https://")) {
    std::string_view rest = uri.substr(8);
    const auto host_end = rest.find_first_of("/?#");
    std::string_view authority = rest.substr(0, host_end);
    if (authority.empty() || authority.find('@') != std::string_view::npos) return std::nullopt;
    return std::string(uri);
  }
  return std::nullopt;  // RFC 8460 §3 defines mailto: and https: only
}

// ---------------------------------------------------------------- the source

std::int64_t utc_day_start(std::int64_t t) {
  std::int64_t d = t / 86400;
  if (t % 86400 < 0) --d;
  return d * 86400;
}

std::string policy_key(const report::TlsPolicy& p) {
  std::string k = p.policy_type;
  k.push_back('\x1e');
  k += p.policy_domain;
  for (const auto* list : {&p.policy_string, &p.mx_host}) {
    k.push_back('\x1e');
    for (const auto& s : *list) {
      k += s;
      k.push_back('\x1f');
    }
  }
  return k;
}

std::string detail_key(const report::TlsFailureDetail& d) {
  std::string k;
  for (const auto* s :
       {&d.result_type, &d.sending_mta_ip, &d.receiving_mx_hostname, &d.receiving_mx_helo,
        &d.receiving_ip, &d.additional_information, &d.failure_reason_code}) {
    k += *s;
    k.push_back('\x1f');
  }
  return k;
}

}  // namespace

std::string tls_report_submitter(const config::Config& config) {
  const auto& s = config.report.tls_aggregate;
  const std::string& contact = s.contact_info.empty() ? s.from_address : s.contact_info;
  if (auto at = contact.rfind('@'); at != std::string::npos && at + 1 < contact.size() &&
                                    contact.find("://") == std::string::npos) {
    return lower(contact.substr(at + 1));
  }
  return config.report.submitter;
}

namespace {

class TlsSource final : public AggregateSource {
 public:
  TlsSource(std::shared_ptr<const config::Config> config, Logger& log)
      : config_(std::move(config)), log_(log), submitter_(tls_report_submitter(*config_)) {}

  std::string_view kind() const noexcept override { return store::kTlsAggregateKind; }
  const config::AggregateReportSettings& settings() const noexcept override {
    return config_->report.tls_aggregate;
  }

  Status build(store::Store& store, const BuildInterval& interval,
               const BuiltReportSink& sink) override {
    Group group;
    std::optional<Error> failed;
    auto walked = store.for_each_unreported_tls(
        interval.end, lower(interval.domain), [&](const store::TlsPolicyCount& row) {
          if (!group.empty() && (row.domain != group.domain || row.record != group.record)) {
            if (auto st = finish(group, interval, sink); !st) {
              failed = std::move(st).error();
              return false;
            }
            group = Group{};
          }
          group.add(row);
          return true;
        });
    if (failed) return *failed;
    if (!walked) return walked;
    if (!group.empty()) return finish(group, interval, sink);
    return {};
  }

  Result<std::optional<std::int64_t>> earliest_unreported(store::Store& store,
                                                          std::string_view domain) override {
    std::optional<std::int64_t> earliest;
    auto walked =
        store.for_each_unreported_tls(std::numeric_limits<std::int64_t>::max(), lower(domain),
                                      [&](const store::TlsPolicyCount& row) {
                                        if (!earliest || row.day < *earliest) earliest = row.day;
                                        return true;
                                      });
    if (!walked) return std::move(walked).error();
    return earliest;
  }

 private:
  // The rows of one (recipient domain, TLSRPT record), merged by policy.
  struct Group {
    std::string domain;
    std::string record;
    std::int64_t first_day = std::numeric_limits<std::int64_t>::max();
    std::vector<report::TlsPolicy> policies;
    std::map<std::string, std::size_t> policy_index;
    std::vector<std::map<std::string, std::size_t>> detail_index;  // per policy
    std::vector<store::ReportedCount> reported;

    bool empty() const noexcept { return reported.empty(); }

    void add(const store::TlsPolicyCount& row) {
      if (reported.empty()) {
        domain = row.domain;
        record = row.record;
      }
      first_day = std::min(first_day, utc_day_start(row.day));
      report::TlsPolicy p = row.policy;
      if (p.policy_domain.empty()) p.policy_domain = row.domain;  // RFC 8460 §4.4: required
      auto [it, fresh] = policy_index.emplace(policy_key(p), policies.size());
      if (fresh) {
        report::TlsPolicy entry = p;
        entry.total_successful_session_count = 0;
        entry.total_failure_session_count = 0;
        entry.failure_details.clear();
        policies.push_back(std::move(entry));
        detail_index.emplace_back();
      }
      auto& target = policies[it->second];
      auto& details = detail_index[it->second];
      target.total_successful_session_count += row.policy.total_successful_session_count;
      target.total_failure_session_count += row.policy.total_failure_session_count;

      // The new reported values are what was reported plus what we read (store.hpp).
      store::ReportedCount rc;
      rc.table = store::ReportedCount::Table::TlsPolicy;
      rc.id = row.id;
      rc.was = row.reported_successful;
      rc.was2 = row.reported_failed;
      rc.count = row.reported_successful + row.policy.total_successful_session_count;
      rc.count2 = row.reported_failed + row.policy.total_failure_session_count;
      reported.push_back(rc);

      for (const auto& f : row.failures) {
        auto [dit, dfresh] = details.emplace(detail_key(f.detail), target.failure_details.size());
        if (dfresh) {
          target.failure_details.push_back(f.detail);
        } else {
          target.failure_details[dit->second].failed_session_count += f.detail.failed_session_count;
        }
        store::ReportedCount fc;
        fc.table = store::ReportedCount::Table::TlsFailure;
        fc.id = f.id;
        fc.was = f.reported;
        fc.count = f.reported + f.detail.failed_session_count;
        reported.push_back(fc);
      }
    }
  };

  Status finish(Group& g, const BuildInterval& interval, const BuiltReportSink& sink) {
    const auto& s = settings();
    BuiltReport out;
    auto& r = out.report;
    r.kind = std::string(store::kTlsAggregateKind);
    r.policy_domain = g.domain;
    r.date_begin = std::min(interval.begin, g.first_day);
    r.date_end = interval.end;
    for (const auto& p : g.policies) {
      r.messages += p.total_successful_session_count + p.total_failure_session_count;
    }
    r.records = g.policies.size();
    out.reported = std::move(g.reported);

    auto record = parse_tlsrpt_record(g.record);
    if (!record) {
      // RFC 8460 §3: without a valid record there is no one to report to.
      log_.warning(kLogContext, g.domain + ": TLSRPT record \"" + g.record + "\" is not usable (" +
                                    record.error().message +
                                    "); its counts are dropped unreported");
      return sink(std::move(out));
    }

    report::TlsReport doc;
    doc.organization_name = s.org_name;
    // RFC 8460 §4.4: contact-info is required; from-address when none is configured.
    doc.contact_info = s.contact_info.empty() ? s.from_address : s.contact_info;
    r.report_id = new_report_id(r.date_begin);
    doc.report_id = r.report_id;
    doc.date_range = {r.date_begin, r.date_end - 1};
    doc.policies = std::move(g.policies);
    const std::string json = report::write_tlsrpt_json(doc);

    report::detail::GzipWriter gz;
    if (auto st = gz.write(json); !st) return st;
    auto content = gz.finish();
    if (!content) return std::move(content).error();
    r.content = std::move(*content);
    r.filename =
        aggregate_filename(submitter_, g.domain, r.date_begin, r.date_end, r.report_id, "json.gz");

    std::set<std::string> seen;
    for (const auto& uri : record->rua) {
      auto dest = destination_of(uri);
      if (!dest || !seen.insert(*dest).second) continue;
      const bool mail = starts_with_ci(uri, "mailto:");
      if (mail && s.max_size != 0 && r.content.size() > s.max_size) {
        log_.warning(kLogContext, g.domain + ": report " + r.report_id + " (" +
                                      std::to_string(r.content.size()) +
                                      " bytes) is larger than report.tls.aggregate.max-size; not "
                                      "mailed to " +
                                      *dest);
        continue;
      }
      store::OutboxEntry e;
      e.recipient = *dest;
      e.reported_domain = g.domain;
      e.payload = store::to_json(store::AggregatePayload{0, uri, 0});
      out.deliveries.push_back(std::move(e));
    }
    return sink(std::move(out));
  }

  std::shared_ptr<const config::Config> config_;
  Logger& log_;
  std::string submitter_;
};

}  // namespace

Result<TlsrptRecord> parse_tlsrpt_record(std::string_view txt) {
  // RFC 8460 §3: tlsrpt-version = %s"v=TLSRPTv1", first, case-sensitive; then at least one
  // field-delim tlsrpt-field (field-delim = *WSP ";" *WSP).
  constexpr std::string_view kVersion = "v=TLSRPTv1";
  if (txt.substr(0, kVersion.size()) != kVersion) {
    return invalid("does not begin with v=TLSRPTv1");
  }
  std::string_view rest = txt.substr(kVersion.size());
  if (!trim_wsp(rest).empty() && trim_wsp(rest).front() != ';') {
    return invalid("v=TLSRPTv1 is not followed by \";\"");
  }
  TlsrptRecord out;
  bool have_rua = false;
  while (!rest.empty()) {
    const auto semi = rest.find(';');
    std::string_view field = trim_wsp(rest.substr(0, semi));
    rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
    if (field.empty()) continue;  // the first delimiter, a trailing one, or ";;"
    const auto eq = field.find('=');
    if (eq == std::string_view::npos) return invalid("field without \"=\": " + std::string(field));
    const std::string_view name = field.substr(0, eq);
    const std::string_view value = field.substr(eq + 1);
    if (name == "rua") {  // %s"rua=": case-sensitive
      // tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)
      have_rua = true;
      std::string_view list = value;
      while (true) {
        const auto comma = list.find(',');
        std::string_view uri = trim_wsp(list.substr(0, comma));
        if (uri.empty()) return invalid("rua: empty URI");
        out.rua.emplace_back(uri);
        if (comma == std::string_view::npos) break;
        list = list.substr(comma + 1);
      }
    } else if (!is_ext_name(name)) {
      return invalid("bad field name: " + std::string(name));
    }
    // RFC 8460 §3: other fields are extensions, ignored ("SHALL be ignored").
  }
  if (!have_rua) return invalid("no rua=");
  // At least one URI we can deliver to.
  if (std::none_of(out.rua.begin(), out.rua.end(),
                   [](const std::string& u) { return destination_of(u).has_value(); })) {
    return invalid("no usable rua= URI (mailto: or https:)");
  }
  return out;
}

std::unique_ptr<AggregateSource> make_tls_source(std::shared_ptr<const config::Config> config,
                                                 Logger& log) {
  return std::make_unique<TlsSource>(std::move(config), log);
}

}  // namespace mailreport::outbound

// De-duplication keys of stored reports (see report_keys.hpp).
#include "store/report_keys.hpp"

#include <algorithm>
#include <cctype>
#include <initializer_list>

#include "mailreport/store/sha256.hpp"

namespace mailreport::store {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

void hash_fields(Sha256& h, const std::vector<report::HeaderField>& fields) {
  for (const auto& f : fields) {
    h.update(lower(f.name));
    h.update(":");
    h.update(trim(f.value));
    h.update("\n");
  }
  h.update("\n");
}

std::string from_header_domain(const std::vector<report::HeaderField>& headers) {
  const auto* from = mime::find_field(headers, "From");
  return from != nullptr ? domain_of_address(from->value) : std::string();
}

// "sha256:" + the digest of the parts, each ended by a NUL (no part can run into the next).
std::string derived_id(std::initializer_list<std::string_view> parts) {
  Sha256 h;
  for (auto p : parts) {
    h.update(p);
    h.update(std::string_view("\0", 1));
  }
  return "sha256:" + h.hex();
}

}  // namespace

std::string normalize_domain(std::string_view domain) {
  domain = trim(domain);
  while (!domain.empty() && domain.back() == '.') domain.remove_suffix(1);
  return lower(domain);
}

std::string domain_of_address(std::string_view address) {
  // The address is inside the last <...> when there is one (RFC 5322 §3.4 name-addr).
  auto open = address.rfind('<');
  if (open != std::string_view::npos) {
    auto close = address.find('>', open);
    address = address.substr(open + 1, close == std::string_view::npos ? close : close - open - 1);
  }
  auto at = address.rfind('@');
  if (at == std::string_view::npos) return {};
  std::string_view domain = address.substr(at + 1);
  auto end = domain.find_first_of(" \t\r\n>;,)\"");
  if (end != std::string_view::npos) domain = domain.substr(0, end);
  return normalize_domain(domain);
}

std::string strip_type(std::string_view typed_value) {
  auto semi = typed_value.find(';');
  if (semi != std::string_view::npos) typed_value = typed_value.substr(semi + 1);
  return std::string(trim(typed_value));
}

ReportKey key_of(const report::DmarcHeader& header) {
  const auto& md = header.report_metadata;
  ReportKey key{std::string(trim(md.org_name)), std::string(trim(md.report_id)),
                normalize_domain(header.policy_published.domain), md.date_range.begin,
                md.date_range.end};
  // RFC 7489 App. C makes report_id mandatory, yet some reporters leave it empty. Keyed on ""
  // every such report of one org about one domain would be taken for a duplicate of the
  // first, so the id is derived from what identifies the report: who sent it, for which
  // period and domain. A re-sent copy still has the same key.
  if (key.report_id.empty()) {
    key.report_id =
        derived_id({"dmarc", key.org_name, lower(trim(md.email)), std::to_string(key.date_begin),
                    std::to_string(key.date_end), key.policy_domain});
  }
  return key;
}

ReportKey key_of(const report::TlsReport& report) {
  // RFC 8460 §4.4: one report may hold several policies; they normally share the domain, and
  // the first names the report.
  std::string domain =
      report.policies.empty() ? std::string() : normalize_domain(report.policies[0].policy_domain);
  ReportKey key{std::string(trim(report.organization_name)), std::string(trim(report.report_id)),
                std::move(domain), report.date_range.begin, report.date_range.end};
  // RFC 8460 §4.4 requires report-id; without it, derive one as for DMARC (see above).
  if (key.report_id.empty()) {
    key.report_id = derived_id({"tls", key.org_name, lower(trim(report.contact_info)),
                                std::to_string(key.date_begin), std::to_string(key.date_end),
                                key.policy_domain});
  }
  return key;
}

std::string missing_report_id_note(std::string_view derived) {
  return "the report has no report id; stored as " + std::string(derived) +
         " (derived from its organisation, contact, period and domain)";
}

ReportKey key_of(const report::ArfReport& report, std::int64_t received_at) {
  ReportKey key;
  key.org_name = domain_of_address(report.from);
  if (key.org_name.empty()) key.org_name = strip_type(report.reporting_mta);
  if (key.org_name.empty()) key.org_name = std::string(trim(report.user_agent));
  key.report_id = std::string(trim(report.message_id));
  if (key.report_id.empty()) {
    Sha256 h;
    hash_fields(h, report.fields);
    hash_fields(h, report.original_headers);
    h.update(report.human_readable);
    key.report_id = "sha256:" + h.hex();
  }
  // RFC 5965 §3.2 Reported-Domain; else what the reported message claims to be from.
  if (!report.reported_domain.empty())
    key.policy_domain = normalize_domain(report.reported_domain[0]);
  if (key.policy_domain.empty()) key.policy_domain = normalize_domain(report.dkim_domain);
  if (key.policy_domain.empty()) key.policy_domain = from_header_domain(report.original_headers);
  if (key.policy_domain.empty()) key.policy_domain = domain_of_address(report.original_mail_from);
  key.date_begin = key.date_end = report.arrival_date.value_or(received_at);
  return key;
}

ReportKey key_of(const report::DsnReport& report, std::int64_t received_at) {
  ReportKey key;
  key.org_name = strip_type(report.reporting_mta);
  if (key.org_name.empty()) key.org_name = domain_of_address(report.from);
  key.report_id = std::string(trim(report.message_id));
  if (key.report_id.empty()) {
    Sha256 h;
    h.update(report.original_envelope_id);
    hash_fields(h, report.fields);
    for (const auto& r : report.recipients) hash_fields(h, r.fields);
    hash_fields(h, report.original_headers);
    key.report_id = "sha256:" + h.hex();
  }
  // The sender domain of the returned message: ours, the one the bounce is about.
  key.policy_domain = from_header_domain(report.original_headers);
  std::int64_t when = received_at;
  if (report.arrival_date) {
    when = *report.arrival_date;
  } else if (!report.recipients.empty() && report.recipients[0].last_attempt_date) {
    when = *report.recipients[0].last_attempt_date;
  }
  key.date_begin = key.date_end = when;
  return key;
}

}  // namespace mailreport::store

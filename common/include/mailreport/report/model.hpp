// The data model of every report type mailreport receives: DMARC aggregate (RFC 7489
// Appendix C and RFC 9990), SMTP TLS reports (RFC 8460), ARF feedback reports (RFC 5965,
// RFC 6591, RFC 9991) and delivery status notifications (RFC 3464).
//
// Field names follow the wire format (XML element names, RFC 8460 member names, header field
// names) so that a reader can map model ↔ standard without a table. Values are kept as the
// report sent them, normalised only where a standard defines the vocabulary (enum values are
// lower-cased, numbers trimmed); anything odd is noted in `errors` rather than rejected.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "mailreport/mime/header.hpp"

namespace mailreport::report {

enum class ReportType { DmarcAggregate, TlsAggregate, Arf, Dsn };
const char* to_string(ReportType t) noexcept;  // "dmarc-aggregate", "tls-aggregate", "arf", "dsn"

// ---------------------------------------------------------------- DMARC aggregate

struct DateRange {
  std::int64_t begin = 0;  // UTC epoch seconds
  std::int64_t end = 0;
};

struct DmarcReportMetadata {
  std::string org_name;
  std::string email;
  std::string extra_contact_info;
  std::string report_id;
  DateRange date_range;
  std::vector<std::string> error;  // <error> elements (reporter's own errors)
  std::string generator;           // RFC 9990
};

struct DmarcPolicyPublished {
  std::string domain;
  std::string discovery_method;  // RFC 9990: psl | treewalk
  std::string adkim;             // r | s
  std::string aspf;
  std::string p;   // none | quarantine | reject
  std::string sp;
  std::string np;  // RFC 9990
  std::optional<int> pct;  // RFC 7489 only
  std::string fo;
  std::string testing;  // RFC 9990: n | y
};

struct DmarcReason {
  std::string type;  // forwarded, sampled_out, trusted_forwarder, mailing_list, local_policy,
                     // policy_test_mode, other
  std::string comment;
};

struct DmarcPolicyEvaluated {
  std::string disposition;  // none | pass | quarantine | reject
  std::string dkim;         // pass | fail (aligned result)
  std::string spf;
  std::vector<DmarcReason> reason;
};

struct DmarcRow {
  std::string source_ip;
  std::uint64_t count = 0;
  DmarcPolicyEvaluated policy_evaluated;
};

struct DmarcIdentifiers {
  std::string envelope_to;
  std::string envelope_from;
  std::string header_from;
};

struct DmarcDkimAuth {
  std::string domain;
  std::string selector;
  std::string result;  // RFC 8601 §2.7.1
  std::string human_result;
};

struct DmarcSpfAuth {
  std::string domain;
  std::string scope;  // helo | mfrom
  std::string result;  // RFC 8601 §2.7.2
  std::string human_result;
};

struct DmarcAuthResults {
  std::vector<DmarcDkimAuth> dkim;
  std::vector<DmarcSpfAuth> spf;
};

struct DmarcRecord {
  DmarcRow row;
  DmarcIdentifiers identifiers;
  DmarcAuthResults auth_results;
};

// Everything in a DMARC aggregate report except its records. Records are streamed one by one
// (see DmarcSink) so that a report of any size is parsed in bounded memory.
struct DmarcHeader {
  std::string version;       // "1.0", "2.0", or empty when absent
  std::string xml_namespace;  // the default namespace of <feedback>, empty when none
  DmarcReportMetadata report_metadata;
  DmarcPolicyPublished policy_published;
  // False when the input ended before </feedback> (a truncated message or archive): the
  // records delivered are what could be salvaged, and a complete copy of the same report
  // that arrives later replaces this one in the store.
  bool complete = true;
};

struct DmarcAggregate {
  DmarcHeader header;
  std::vector<DmarcRecord> records;
  std::vector<std::string> errors;  // what was salvaged or ignored, with line numbers
};

// ---------------------------------------------------------------- TLS-RPT (RFC 8460)

struct TlsFailureDetail {
  std::string result_type;  // RFC 8460 §4.3 names; kept as sent
  std::string sending_mta_ip;
  std::string receiving_mx_hostname;
  std::string receiving_mx_helo;
  std::string receiving_ip;
  std::uint64_t failed_session_count = 0;
  std::string additional_information;
  std::string failure_reason_code;
};

struct TlsPolicy {
  std::string policy_type;  // tlsa | sts | no-policy-found (or what the reporter sent)
  std::vector<std::string> policy_string;
  std::string policy_domain;
  std::vector<std::string> mx_host;
  std::uint64_t total_successful_session_count = 0;
  std::uint64_t total_failure_session_count = 0;
  std::vector<TlsFailureDetail> failure_details;
};

struct TlsReport {
  std::string organization_name;
  DateRange date_range;  // start-datetime / end-datetime as epoch seconds
  std::string contact_info;
  std::string report_id;
  std::vector<TlsPolicy> policies;
  std::vector<std::string> errors;
};

// ---------------------------------------------------------------- ARF (RFC 5965 / 6591 / 9991)

using mime::HeaderField;

struct ArfReport {
  std::string feedback_type;  // abuse, fraud, virus, not-spam, auth-failure, other, opt-out...
  std::string user_agent;
  std::string version;
  std::string original_mail_from;
  std::vector<std::string> original_rcpt_to;
  std::optional<std::int64_t> arrival_date;  // epoch seconds, when parseable
  std::string arrival_date_raw;
  std::string source_ip;
  std::string reporting_mta;
  std::vector<std::string> reported_domain;
  std::vector<std::string> reported_uri;
  std::string auth_failure;   // dmarc, dkim, spf, adsp, bodyhash, revoked, signature
  std::string delivery_result;
  std::string authentication_results;
  std::string dkim_domain;
  std::string dkim_identity;
  std::string dkim_selector;
  std::string dkim_canonicalized_header;
  std::string dkim_canonicalized_body;
  std::string spf_dns;
  std::string identity_alignment;
  std::optional<std::uint64_t> incidents;
  std::vector<HeaderField> fields;  // every field of the feedback report, in order, repeats kept
  // The reported message: its header fields, and its body when the report carried it
  // (message/rfc822) — the body is kept only up to a bounded size.
  std::vector<HeaderField> original_headers;
  std::string original_message_type;  // message/rfc822, text/rfc822-headers, ... or empty
  std::string human_readable;          // the text/plain first part, bounded
  // The report message's own headers that identify it.
  std::string subject;
  std::string from;
  std::string message_id;
  std::vector<std::string> errors;
};

// ---------------------------------------------------------------- DSN (RFC 3464)

struct DsnRecipient {
  std::string original_recipient;
  std::string final_recipient;
  std::string action;  // failed | delayed | delivered | relayed | expanded (lower-cased)
  std::string status;  // e.g. 5.1.1
  std::string remote_mta;
  std::string diagnostic_code;
  std::optional<std::int64_t> last_attempt_date;
  std::string final_log_id;
  std::optional<std::int64_t> will_retry_until;
  std::vector<HeaderField> fields;  // all fields of the group, in order
};

struct DsnReport {
  std::string original_envelope_id;
  std::string reporting_mta;
  std::string dsn_gateway;
  std::string received_from_mta;
  std::optional<std::int64_t> arrival_date;
  std::vector<HeaderField> fields;  // all per-message fields, in order
  std::vector<DsnRecipient> recipients;
  // The returned message (third part), headers only, to match bounces to what we sent.
  std::vector<HeaderField> original_headers;
  std::string subject;
  std::string from;
  std::string message_id;
  std::vector<std::string> errors;
};

// ---------------------------------------------------------------- any report

using Report = std::variant<DmarcAggregate, TlsReport, ArfReport, DsnReport>;

ReportType type_of(const Report& r) noexcept;

}  // namespace mailreport::report

// The datagrams an MTA sends through libtlsrpt (Postfix >= 3.10: smtp_tlsrpt_enable,
// smtp_tlsrpt_socket_name) after each TLS attempt towards a domain that publishes a TLSRPT
// record (RFC 8460 §3): one JSON object per datagram on a unix datagram socket,
//
//   {"dpv":"1", "d":<recipient domain>, "pr":<its TLSRPT record>,
//    "policies":[{"policy-type":1|2|9, "policy-domain":..., "policy-string":[...],
//                 "mx-host":[...], "failure-details":[{"c":<code>, "s":<sending MTA IP>,
//                 "n":<receiving MX name>, "h":<its HELO>, "r":<receiving IP>,
//                 "a":<additional information>, "f":<failure reason code>}, ...],
//                 "t":<number of failure details>, "f":0 (success) | 1 (failure)}, ...]}
//
// as libtlsrpt 0.5 writes it (policy types 1 tlsa, 2 sts, 9 no-policy-found; failure codes
// 201–205, 301–306 map to RFC 8460 §4.3 result types). "dpv" (datagram protocol version) is
// "1" since libtlsrpt 0.5.0; a datagram without it is taken as version 1, any other version is
// refused. Parsing is nlohmann-json's; this file checks the shape and maps the codes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mailreport/util/result.hpp"

namespace mailreport::report {

struct TlsrptFailure {
  std::string result_type;  // RFC 8460 §4.3 name ("certificate-expired", ...)
  std::string sending_mta_ip;
  std::string receiving_mx_hostname;
  std::string receiving_mx_helo;
  std::string receiving_ip;
  std::string additional_information;
  std::string failure_reason_code;
};

struct TlsrptPolicyResult {
  std::string policy_type;  // "tlsa", "sts", "no-policy-found" (RFC 8460 §4.4)
  std::string policy_domain;
  std::vector<std::string> policy_string;
  std::vector<std::string> mx_host;
  std::vector<TlsrptFailure> failures;
  bool success = false;  // "f": 0
};

struct TlsrptDatagram {
  std::string domain;  // "d", lower-cased
  std::string record;  // "pr": the TLSRPT record the MTA found
  std::vector<TlsrptPolicyResult> policies;
};

// Invalid (with the reason) for anything that is not such a datagram: not JSON, wrong types,
// missing fields, an unknown policy type, failure code or protocol version.
Result<TlsrptDatagram> parse_tlsrpt_datagram(std::string_view datagram);

// RFC 8460 §4.3 result type for a libtlsrpt failure code; "" for an unknown code.
std::string_view tlsrpt_result_type(int code) noexcept;

}  // namespace mailreport::report

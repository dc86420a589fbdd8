// store/failure_payload: the outbox payload of a failure report (kinds "dmarc-failure",
// "dkim-failure", "spf-failure"): the evaluation of the reported message (without its other
// failure requests) and the one request, as JSON (nlohmann-json), so that mailreport serve can
// build the report long after the milter saw the message, across upgrades (unknown fields are
// ignored, missing ones take their defaults).
#pragma once

#include <string>
#include <string_view>

#include "mailreport/auth/verdict.hpp"
#include "mailreport/util/result.hpp"

namespace mailreport::store {

struct FailurePayload {
  auth::Evaluation evaluation;  // failure_reports left empty
  auth::FailureReportRequest request;
};

// "dmarc-failure", "dkim-failure", "spf-failure".
std::string outbox_kind(auth::FailureKind kind);

std::string failure_payload_to_json(const auth::Evaluation& ev,
                                    const auth::FailureReportRequest& request);
// Invalid when the text is not JSON or lacks the request.
Result<FailurePayload> failure_payload_from_json(std::string_view json);

}  // namespace mailreport::store

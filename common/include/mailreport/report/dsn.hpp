// Delivery status notifications (RFC 3464): the message/delivery-status body is one block of
// per-message fields followed by blank-line-separated per-recipient blocks.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "mailreport/report/model.hpp"
#include "mailreport/util/result.hpp"

namespace mailreport::report {

struct DsnParts {
  std::vector<HeaderField> outer_headers;
  std::string_view delivery_status;  // decoded message/delivery-status body
  std::string_view original;         // third part (message/rfc822 or text/rfc822-headers)
};

Result<DsnReport> parse_dsn(const DsnParts& parts);

}  // namespace mailreport::report

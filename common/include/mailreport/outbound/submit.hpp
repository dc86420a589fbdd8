// outbound/submit: hands a finished report message to the MTA: through sendmail(1)
// (`/usr/sbin/sendmail -i -f FROM -- RCPT`, the message on stdin; exit status per sysexits.h:
// EX_TEMPFAIL (75) and signals are temporary, other non-zero codes permanent) or an SMTP relay
// (libcurl, smtp:// or smtps://; 4xx temporary, 5xx permanent). report.submit in config.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "mailreport/config/config.hpp"
#include "mailreport/util/result.hpp"

namespace mailreport::outbound {

enum class SubmitStatus { Sent, TempFail, PermFail };
struct SubmitOutcome {
  SubmitStatus status = SubmitStatus::Sent;
  std::string detail;  // the MTA's words (exit code and stderr, or the SMTP reply)
};

class Submitter {
 public:
  virtual ~Submitter() = default;
  // `message` with CRLF line ends (sendmail gets LF line ends).
  virtual SubmitOutcome submit(std::string_view envelope_from, std::string_view recipient,
                               std::string_view message) = 0;
};

std::unique_ptr<Submitter> make_submitter(const config::SubmitConfig& config);

}  // namespace mailreport::outbound

// Warnings: rules evaluated over the data as it arrives (mailreport serve scans what was stored
// since its watermarks every alerts.interval), each warning written as one structured line to
// syslog (mail facility) and the log, and queued in the store for every webhook whose events
// match (webhooks.hpp delivers them).
//
// Events (names as webhook.<id>.events matches them; "*" and "prefix.*" wildcards):
//   dmarc.failures          an incoming DMARC aggregate report for one of our domains with
//                           failed messages over alerts.dmarc-failure-count/-rate
//   dmarc.quarantine-reject messages quarantined or rejected by the reporter
//   dmarc.new-source        a source IP never seen before for that domain, failing DMARC
//   tls.failures            an incoming TLS report (RFC 8460) with failed sessions
//   arf.abuse, arf.fraud, arf.virus, arf.other, arf.not-spam, arf.auth-failure
//                           an incoming ARF report (RFC 5965 feedback types)
//   report.parse-failure    a message that reached a report mailbox and could not be parsed
// Each event: {"id": "<unique>", "createdAt": "<RFC 3339 UTC>", "type": "<name>",
//              "data": {... the fields of the warning ...}} (Stalwart's webhook event shape).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mailreport/config/config.hpp"
#include "mailreport/store/store.hpp"
#include "mailreport/util/log.hpp"
#include "mailreport/util/result.hpp"

namespace mailreport::alerts {

// Whether `event` matches one of `patterns` ("*", "dmarc.*", "dmarc.failures").
bool event_matches(const std::vector<std::string>& patterns, std::string_view event);

// Where warning lines go besides the Logger: syslog(3) with LOG_MAIL (SyslogWarningLog) or a
// test's list.
class WarningLog {
 public:
  virtual ~WarningLog() = default;
  // One line: "warning event=dmarc.failures domain=example.com key=value ..." (values with
  // spaces or quotes are quoted).
  virtual void write(std::string_view line) = 0;
};
std::unique_ptr<WarningLog> make_syslog_warning_log();  // openlog("mailreport", LOG_PID, LOG_MAIL)

struct ScanStats {
  std::size_t reports = 0;   // reports and raw messages examined
  std::size_t warnings = 0;  // warnings raised
  std::size_t queued = 0;    // webhook events queued
};

// The scanner: reads reports and unparsed raw messages stored since its watermarks, applies
// the rules, and commits the webhook events with the new watermarks in one transaction
// (Store::commit_alerts, compare-and-set: two nodes never both warn). The first scan of a
// store starts at what is there now (no warnings about the past).
class AlertScanner {
 public:
  AlertScanner(std::shared_ptr<const config::Config> config, store::Store& store, Logger& log,
               WarningLog& warnings);
  void set_config(std::shared_ptr<const config::Config> config);
  // One scan at time `now` (at most `limit` reports per call). Conflict when another scanner
  // committed first (not an error: the next scan continues from its watermarks).
  Result<ScanStats> run_once(std::int64_t now, std::size_t limit = 1000);

 private:
  std::shared_ptr<const config::Config> config_;
  store::Store& store_;
  Logger& log_;
  WarningLog& warnings_;
};

}  // namespace mailreport::alerts

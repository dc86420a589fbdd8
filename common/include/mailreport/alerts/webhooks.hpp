// Webhook delivery (Stalwart's shape): for each webhook.<id>, the pending events in the store
// are POSTed as {"events": [...]} with Content-Type application/json, the configured headers,
// HTTP basic auth (auth.username / auth.secret) and, with signature-key, X-Signature: the
// base64 HMAC-SHA256 of the body. A 2xx deletes them; anything else (or a timeout) retries them
// with exponential backoff (1s, 2s, 4s ... at most 10 minutes); events older than discard-after
// are dropped with a log line. At most one POST per webhook per throttle.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "mailreport/alerts/alerts.hpp"
#include "mailreport/config/config.hpp"
#include "mailreport/store/store.hpp"
#include "mailreport/util/log.hpp"
#include "mailreport/util/result.hpp"

namespace mailreport::alerts {

// base64(HMAC-SHA256(key, body)): the X-Signature header.
std::string webhook_signature(std::string_view key, std::string_view body);

struct DeliveryStats {
  std::size_t posts = 0;      // requests made
  std::size_t delivered = 0;  // events delivered
  std::size_t retried = 0;    // events to try again
  std::size_t discarded = 0;  // events dropped (discard-after)
};

class WebhookDispatcher {
 public:
  WebhookDispatcher(std::shared_ptr<const config::Config> config, store::Store& store,
                    Logger& log);
  ~WebhookDispatcher();
  void set_config(std::shared_ptr<const config::Config> config);
  // One pass at `now_ms` (milliseconds since the epoch): every webhook whose throttle allows it
  // POSTs its due events (at most 100 per request).
  Result<DeliveryStats> run_once(std::int64_t now_ms);
  // How long until the next pass is useful (a retry or a throttle ending), at most `cap`.
  std::chrono::milliseconds next_wait(std::chrono::milliseconds cap) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// The alert scanner and the dispatcher in one thread of mailreport serve: scans every
// alerts.interval, delivers as soon as events are queued (and retries), until `stop`.
class AlertService {
 public:
  AlertService(std::shared_ptr<const config::Config> config, store::Store& store, Logger& log,
               std::unique_ptr<WarningLog> warnings);
  ~AlertService();
  void set_config(std::shared_ptr<const config::Config> config);
  void run(const std::atomic<bool>& stop);
  void wake();  // scan now (tests, SIGHUP)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mailreport::alerts

// alerts: webhook delivery in Stalwart's shape (see mailreport/alerts/webhooks.hpp) and the
// AlertService thread of mailreport serve.
// - POST {"events": [...]} (the stored event objects, oldest first, at most 100), Content-Type
//   application/json, the configured headers, HTTP basic auth (RFC 7617) when auth.username is
//   set, X-Signature = base64(HMAC-SHA256(signature-key, body)) (RFC 2104, RFC 4648 §4) when a
//   key is set. http and https only, redirects not followed.
// - 2xx: delivered (deleted). Anything else, a timeout or a connection failure: retried after
//   1s, 2s, 4s ... (by the events' attempts) at most 10 minutes; events older than
//   discard-after are dropped with a log line, and so are the events of webhooks no longer
//   configured.
// - Claims are leased (timeout + 60s): a process that dies mid-POST leaves them to the next
//   pass after the lease; the receiver may then see them twice (at-least-once across crashes).
//
// Not done: a per-webhook connection cache (one easy handle per POST), proxies beyond
// libcurl's environment variables.
#include "mailreport/alerts/webhooks.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <set>
#include <thread>

#include "outbound/curl_handle.hpp"

namespace mailreport::alerts {

std::string webhook_signature(std::string_view key, std::string_view body) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac,
           &mac_len) == nullptr) {
    return {};
  }
  std::string out(4 * ((mac_len + 2) / 3) + 1, '\0');
  int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), mac, static_cast<int>(mac_len));
  out.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
  return out;
}

namespace {

constexpr std::size_t kBatch = 100;
constexpr std::int64_t kMaxBackoff = 600;  // seconds

std::int64_t backoff_seconds(unsigned attempts) {
  // 1s, 2s, 4s, ... after the first, second, third failure; at most 10 minutes.
  if (attempts >= 10) return kMaxBackoff;
  return std::min<std::int64_t>(kMaxBackoff, std::int64_t{1} << attempts);
}

struct PostResult {
  bool ok = false;
  std::string error;  // why not
};

PostResult post(const config::WebhookConfig& hook, const std::string& body) {
  outbound::curl::EasyPtr curl = outbound::curl::new_easy();
  if (!curl) return {false, "curl_easy_init failed"};
  CURL* c = curl.get();
  char errbuf[CURL_ERROR_SIZE] = {};
  std::string reply;
  std::vector<std::string> lines = {"Content-Type: application/json", "Expect:"};
  for (const auto& [name, value] : hook.headers) lines.push_back(name + ": " + value);
  if (!hook.signature_key.empty()) {
    lines.push_back("X-Signature: " + webhook_signature(hook.signature_key, body));
  }
  outbound::curl::SlistPtr headers;
  for (const std::string& l : lines) {
    curl_slist* next = curl_slist_append(headers.get(), l.c_str());
    if (next == nullptr) return {false, "out of memory"};
    if (!headers) headers.reset(next);
  }
  outbound::curl::set_post_options(c, hook.url, "http,https", body, headers.get(), "mailreport",
                                   errbuf, &reply);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(hook.timeout.count() * 1000));
  if (hook.allow_invalid_certs) {
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (!hook.auth_username.empty()) {
    curl_easy_setopt(c, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
    curl_easy_setopt(c, CURLOPT_USERNAME, hook.auth_username.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, hook.auth_secret.c_str());
  }
  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    return {false, outbound::curl::one_line(errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc))};
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status >= 200 && status < 300) return {true, {}};
  std::string why = "HTTP " + std::to_string(status);
  if (!reply.empty()) why += ": " + outbound::curl::one_line(reply);
  return {false, why};
}

std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

struct WebhookDispatcher::State {
  std::shared_ptr<const config::Config> config;
  store::Store& store;
  Logger& log;
  std::map<std::string, std::int64_t> last_post_ms;  // by webhook id (now_ms of run_once)
  // When the next pass is useful (steady clock, ms): a throttle ending with events left, or a
  // retry this process scheduled.
  std::atomic<std::int64_t> next_due_steady{std::numeric_limits<std::int64_t>::max()};
  State(std::shared_ptr<const config::Config> c, store::Store& s, Logger& l)
      : config(std::move(c)), store(s), log(l) {}
};

WebhookDispatcher::WebhookDispatcher(std::shared_ptr<const config::Config> config,
                                     store::Store& store, Logger& log)
    : state_(std::make_unique<State>(std::move(config), store, log)) {}

WebhookDispatcher::~WebhookDispatcher() = default;

void WebhookDispatcher::set_config(std::shared_ptr<const config::Config> config) {
  std::atomic_store(&state_->config, std::move(config));
}

Result<DeliveryStats> WebhookDispatcher::run_once(std::int64_t now_ms) {
  const std::shared_ptr<const config::Config> cfg = std::atomic_load(&state_->config);
  State& s = *state_;
  DeliveryStats stats;
  const std::int64_t now = now_ms / 1000;
  const std::int64_t steady_now = steady_ms();
  std::int64_t next_due = std::numeric_limits<std::int64_t>::max();
  auto due_in = [&](std::int64_t ms) { next_due = std::min(next_due, steady_now + ms); };

  // Events of webhooks no longer configured have nowhere to go.
  auto depths = s.store.webhook_queue_depths();
  if (!depths) return std::move(depths).error();
  for (const auto& [id, n] : *depths) {
    if (cfg->webhooks.contains(id)) continue;
    auto dropped = s.store.discard_webhook_events(id, std::numeric_limits<std::int64_t>::max());
    if (!dropped) return std::move(dropped).error();
    if (*dropped > 0) {
      s.log.warning("webhook", "discarded " + std::to_string(*dropped) + " events of webhook " +
                                   id + ": it is no longer configured");
      stats.discarded += *dropped;
    }
  }

  for (const auto& [id, hook] : cfg->webhooks) {
    // discard-after: undelivered events older than this are dropped.
    const std::int64_t cutoff = now - static_cast<std::int64_t>(hook.discard_after.count());
    auto dropped = s.store.discard_webhook_events(id, cutoff);
    if (!dropped) return std::move(dropped).error();
    if (*dropped > 0) {
      s.log.warning("webhook", "discarded " + std::to_string(*dropped) + " events of webhook " +
                                   id + " older than discard-after (" +
                                   std::to_string(hook.discard_after.count()) + "s)");
      stats.discarded += *dropped;
    }
    // At most one POST per throttle.
    const std::int64_t throttle = hook.throttle.count();
    if (auto it = s.last_post_ms.find(id); it != s.last_post_ms.end()) {
      const std::int64_t wait = it->second + throttle - now_ms;
      if (wait > 0) {
        due_in(wait);
        continue;
      }
    }
    const std::int64_t lease = static_cast<std::int64_t>(hook.timeout.count()) + 60;
    auto events = s.store.claim_webhook_events(id, now, kBatch, lease);
    if (!events) return std::move(events).error();
    if (events->empty()) continue;

    std::string body = "{\"events\":[";
    std::vector<std::int64_t> ids;
    unsigned attempts = 0;
    for (std::size_t i = 0; i < events->size(); ++i) {
      if (i > 0) body += ',';
      body += (*events)[i].body;
      ids.push_back((*events)[i].id);
      attempts = std::max(attempts, (*events)[i].attempts);
    }
    body += "]}";
    s.last_post_ms[id] = now_ms;
    ++stats.posts;
    PostResult r = post(hook, body);
    if (r.ok) {
      if (auto st = s.store.webhook_delivered(ids); !st) return std::move(st).error();
      stats.delivered += ids.size();
      s.log.debug("webhook", "delivered " + std::to_string(ids.size()) + " events to " + id);
      // A full batch: more may be waiting, after the throttle.
      if (events->size() == kBatch) due_in(std::max<std::int64_t>(throttle, 1));
    } else {
      const std::int64_t delay = backoff_seconds(attempts);
      if (auto st = s.store.webhook_retry(ids, now + delay, r.error); !st) {
        return std::move(st).error();
      }
      stats.retried += ids.size();
      s.log.warning("webhook", "POST of " + std::to_string(ids.size()) + " events to webhook " +
                                   id + " failed (" + r.error + "); retrying in " +
                                   std::to_string(delay) + "s");
      due_in(delay * 1000);
    }
  }
  s.next_due_steady.store(next_due);
  return stats;
}

std::chrono::milliseconds WebhookDispatcher::next_wait(std::chrono::milliseconds cap) const {
  const std::int64_t due = state_->next_due_steady.load();
  if (due == std::numeric_limits<std::int64_t>::max()) return cap;
  const std::int64_t wait = due - steady_ms();
  if (wait <= 0) return std::chrono::milliseconds(0);
  return std::min(cap, std::chrono::milliseconds(wait));
}

// ---------------------------------------------------------------- AlertService

struct AlertService::Impl {
  std::shared_ptr<const config::Config> config;
  store::Store& store;
  Logger& log;
  std::unique_ptr<WarningLog> warnings;
  AlertScanner scanner;
  WebhookDispatcher dispatcher;
  std::mutex mu;
  std::condition_variable cv;
  bool woken = false;

  Impl(std::shared_ptr<const config::Config> c, store::Store& s, Logger& l,
       std::unique_ptr<WarningLog> w)
      : config(c),
        store(s),
        log(l),
        warnings(std::move(w)),
        scanner(c, s, l, *warnings),
        dispatcher(c, s, l) {}
};

namespace {
std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

AlertService::AlertService(std::shared_ptr<const config::Config> config, store::Store& store,
                           Logger& log, std::unique_ptr<WarningLog> warnings)
    : impl_(std::make_unique<Impl>(std::move(config), store, log,
                                   warnings ? std::move(warnings) : make_syslog_warning_log())) {}

AlertService::~AlertService() = default;

void AlertService::set_config(std::shared_ptr<const config::Config> config) {
  {
    std::lock_guard lock(impl_->mu);
    impl_->config = config;
  }
  impl_->scanner.set_config(config);
  impl_->dispatcher.set_config(std::move(config));
  wake();
}

void AlertService::wake() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->woken = true;
  }
  impl_->cv.notify_all();
}

void AlertService::run(const std::atomic<bool>& stop) {
  using std::chrono::milliseconds;
  using Clock = std::chrono::steady_clock;
  Impl& m = *impl_;
  // `stop` is not a condition the service is notified of: wait in slices of this.
  constexpr milliseconds kSlice{200};
  auto next_scan = Clock::now();
  std::string last_error;
  auto report = [&](std::string_view what, const Error& e) {
    std::string why = std::string(what) + ": " + e.describe();
    if (why != last_error) m.log.warning("alerts", why);  // once, not every interval
    last_error = std::move(why);
  };
  while (!stop.load()) {
    std::shared_ptr<const config::Config> cfg;
    bool woken = false;
    {
      std::lock_guard lock(m.mu);
      cfg = m.config;
      woken = std::exchange(m.woken, false);
    }
    const auto interval =
        milliseconds(std::max<std::int64_t>(cfg->alerts.interval.count(), 1) * 1000);
    auto now = Clock::now();
    if (woken || now >= next_scan) {
      next_scan = now + interval;
      if (cfg->alerts.enable) {
        auto scanned = m.scanner.run_once(wall_ms() / 1000);
        // Conflict: another node's scanner committed first; the next scan continues after it.
        if (!scanned && scanned.error().code != ErrorCode::Conflict) {
          report("scan failed", scanned.error());
        } else {
          last_error.clear();
        }
      }
    }
    // Delivery: after every scan (its events go out at once), when a throttle ends or a retry
    // is due, and at least every interval (events queued by another node or before a restart).
    auto delivered = m.dispatcher.run_once(wall_ms());
    if (!delivered) report("webhook delivery failed", delivered.error());
    now = Clock::now();
    const auto deadline = std::min(next_scan, now + m.dispatcher.next_wait(interval));
    std::unique_lock lock(m.mu);
    while (!stop.load() && !m.woken) {
      now = Clock::now();
      if (now >= deadline) break;
      m.cv.wait_for(lock, std::min<Clock::duration>(kSlice, deadline - now));
    }
  }
}

}  // namespace mailreport::alerts

// The dashboard's HTTP handler: routes, bearer-token check, the JSON API over the store, the
// page's static files, the SVG charts and /metrics.
//
// Routes (every one but "/", "/assets/*" and "/healthz" needs "Authorization: Bearer <token>"
// when a token is configured; the token is compared in constant time):
//   GET /                      the dashboard page (assets built into the binary)
//   GET /assets/<file>         its script, style sheet and icons
//   GET /healthz               "ok" (for load balancers; no data)
//   GET /metrics               Prometheus text format 0.0.4 (web/metrics_text.hpp)
//   GET /api/v1/...            the JSON API (docs/api.md)
//   GET /api/v1/charts/<name>.svg   server-rendered charts (web/charts.hpp)
// Everything is read-only: other methods get 405.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "mailreport/config/config.hpp"
#include "mailreport/store/store.hpp"
#include "mailreport/web/http_server.hpp"

namespace mailreport::web {

struct DashboardContext {
  store::Store* store = nullptr;
  // The running configuration (reload swaps it); called per request.
  std::function<std::shared_ptr<const config::Config>()> config;
  // The token requests must carry; "" = none required (dashboard.allow-no-token). Called per
  // request, so a reload takes effect at once.
  std::function<std::string()> token;
  // The clock (tests set it).
  std::function<std::int64_t()> now;
};

Handler make_dashboard_handler(DashboardContext context);

// The token from dashboard.token / dashboard.token-file (config::read_dashboard_token_file:
// closed to other users, its group may read it). Invalid / Io with a message naming the key.
Result<std::string> load_dashboard_token(const config::DashboardConfig& config);

}  // namespace mailreport::web

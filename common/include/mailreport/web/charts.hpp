// Server-rendered SVG charts for the dashboard (no chart library in the browser): stacked
// daily bars (DMARC pass/fail, TLS success/failure), horizontal bars (top failing sources, TLS
// failure result types). Output is self-contained SVG 1.1 with <title> tooltips, sized by
// viewBox so the page scales it; every text is XML-escaped.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mailreport/store/store.hpp"
#include "mailreport/web/http_server.hpp"

namespace mailreport::web {

struct Series {
  std::string name;   // legend text
  std::string color;  // CSS color, e.g. "#2e7d32"
  std::vector<std::uint64_t> values;  // one per label
};

struct ChartSpec {
  std::string title;
  std::vector<std::string> labels;  // x axis (days) or bar names
  std::vector<Series> series;       // stacked
  int width = 640;
  int height = 240;
};

std::string render_stacked_bars(const ChartSpec& spec);     // vertical, one bar per label
std::string render_horizontal_bars(const ChartSpec& spec);  // one row per label

// GET /api/v1/charts/<name>.svg (dmarc-daily, tls-daily, top-sources, tls-failures) with the
// API's filters (domain, from, to, source_ip): nullopt when `request` is not a chart route.
std::optional<Response> handle_chart(const Request& request, store::Store& store,
                                     std::int64_t now);

}  // namespace mailreport::web

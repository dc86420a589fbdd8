// Server-rendered SVG charts for the dashboard (web/charts.hpp): stacked vertical bars per day
// (DMARC pass/fail, TLS sessions successful/failed) and horizontal bars per name (top failing
// source IPs, TLS failures by RFC 8460 §4.3 result type), and the /api/v1/charts/<name>.svg
// routes that fill them from the store.
//
// The output is SVG 1.1, sized by viewBox (the page scales it to its box), with a visible
// title, a legend, a value axis with a few round ticks, and a <title> tooltip on every bar.
// Colours and fonts are presentation attributes (fill=, font-size=), never style attributes:
// the dashboard's Content-Security-Policy (style-src 'self') forbids inline styles. Text and
// axis lines use currentColor, so an inlined chart takes the page's text colour. Every text is
// XML-escaped. A chart with nothing to show says "No data".
//
// Not done: line charts, logarithmic axes, rotated labels (long axis labels are thinned out,
// names are shortened with the full text in the tooltip).
#include "mailreport/web/charts.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <string_view>

#include "web/request_args.hpp"

namespace mailreport::web {

namespace {

constexpr std::int64_t kDay = 86400;
constexpr std::int64_t kMaxFilledDays = 400;  // longer periods show data days only
constexpr const char* kFont = "sans-serif";

// Colours shared with the page's legend (app.css uses the same ones).
constexpr const char* kPass = "#2e7d32";
constexpr const char* kFail = "#c62828";
constexpr const char* kWarn = "#ef6c00";

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // XML 1.0 allows no C0 controls but tab, LF and CR.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r') {
          out += ' ';
        } else {
          out += c;
        }
    }
  }
  return out;
}

// Coordinates with at most two decimals, without trailing zeros.
std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  std::string s = buf;
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  if (s == "-0") s = "0";
  return s;
}

// Tick labels: 950, 12k, 1.5M.
std::string compact(std::uint64_t v) {
  char buf[32];
  if (v >= 10'000'000) {
    std::snprintf(buf, sizeof buf, "%lluM", static_cast<unsigned long long>(v / 1'000'000));
  } else if (v >= 1'000'000) {
    std::snprintf(buf, sizeof buf, "%.1fM", static_cast<double>(v) / 1e6);
  } else if (v >= 10'000) {
    std::snprintf(buf, sizeof buf, "%lluk", static_cast<unsigned long long>(v / 1000));
  } else {
    std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(v));
  }
  return buf;
}

// A round tick step (1, 2 or 5 times a power of ten) giving about `ticks` steps up to `max`.
std::uint64_t nice_step(std::uint64_t max, int ticks) {
  if (max == 0) return 1;
  double raw = static_cast<double>(max) / ticks;
  double power = std::pow(10.0, std::floor(std::log10(raw)));
  double step = power;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * power;
    if (step >= raw) break;
  }
  return std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::llround(step)));
}

std::string shorten(const std::string& text, std::size_t max) {
  if (text.size() <= max) return text;
  return text.substr(0, max - 1) + "\xE2\x80\xA6";  // U+2026 HORIZONTAL ELLIPSIS
}

std::uint64_t value_at(const Series& s, std::size_t i) {
  return i < s.values.size() ? s.values[i] : 0;
}

std::uint64_t stack_total(const ChartSpec& spec, std::size_t i) {
  std::uint64_t total = 0;
  for (const Series& s : spec.series) total += value_at(s, i);
  return total;
}

bool has_data(const ChartSpec& spec) {
  for (std::size_t i = 0; i < spec.labels.size(); ++i) {
    if (stack_total(spec, i) > 0) return true;
  }
  return false;
}

std::string open_svg(const ChartSpec& spec, int width, int height) {
  std::string out;
  out += "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" viewBox=\"0 0 ";
  out += std::to_string(width) + " " + std::to_string(height) + "\" width=\"" +
         std::to_string(width) + "\" height=\"" + std::to_string(height) +
         "\" class=\"chart\" role=\"img\" aria-label=\"" + escape(spec.title) +
         "\" font-family=\"" + kFont + "\" font-size=\"11\">\n";
  out += "<title>" + escape(spec.title) + "</title>\n";
  out += "<text x=\"8\" y=\"16\" font-size=\"13\" font-weight=\"bold\" fill=\"currentColor\">" +
         escape(spec.title) + "</text>\n";
  return out;
}

std::string no_data(const ChartSpec& spec) {
  std::string out = open_svg(spec, spec.width, spec.height);
  out += "<text class=\"no-data\" x=\"" + num(spec.width / 2.0) + "\" y=\"" +
         num(spec.height / 2.0) +
         "\" text-anchor=\"middle\" fill=\"currentColor\" fill-opacity=\"0.6\" font-size=\"14\">"
         "No data</text>\n</svg>\n";
  return out;
}

// The legend, right-aligned on the title's line.
std::string legend(const ChartSpec& spec, int width) {
  std::string out = "<g class=\"legend\">\n";
  double x = width - 8;
  // Laid out from the right: each entry is a swatch and its name (about 6.5 units a char).
  for (auto it = spec.series.rbegin(); it != spec.series.rend(); ++it) {
    double text_width = 6.5 * static_cast<double>(it->name.size());
    x -= text_width;
    out += "<text x=\"" + num(x) + "\" y=\"16\" fill=\"currentColor\">" + escape(it->name) +
           "</text>\n";
    x -= 14;
    out += "<rect x=\"" + num(x) + "\" y=\"7\" width=\"10\" height=\"10\" fill=\"" +
           escape(it->color) + "\"/>\n";
    x -= 12;
  }
  out += "</g>\n";
  return out;
}

// The tooltip of one bar segment: "label — name: value".
std::string tooltip(const std::string& label, const Series& s, std::uint64_t v,
                    std::uint64_t total) {
  std::string t = label + " \xE2\x80\x94 " + s.name + ": " + std::to_string(v);
  if (total > 0 && total != v) t += " of " + std::to_string(total);
  return "<title>" + escape(t) + "</title>";
}

}  // namespace

std::string render_stacked_bars(const ChartSpec& spec) {
  if (!has_data(spec)) return no_data(spec);
  const int width = spec.width;
  const int height = spec.height;
  const double left = 44, right = 8, top = 28, bottom = 22;
  const double plot_w = width - left - right;
  const double plot_h = height - top - bottom;
  const std::size_t n = spec.labels.size();

  std::uint64_t max = 0;
  for (std::size_t i = 0; i < n; ++i) max = std::max(max, stack_total(spec, i));
  const std::uint64_t step = nice_step(max, 4);
  const std::uint64_t scale = ((max + step - 1) / step) * step;  // the axis' top value
  auto y_of = [&](std::uint64_t v) {
    return top + plot_h - plot_h * static_cast<double>(v) / static_cast<double>(scale);
  };

  std::string out = open_svg(spec, width, height);
  out += legend(spec, width);

  // Value axis: grid lines and labels at each tick.
  out += "<g class=\"axis y\">\n";
  for (std::uint64_t v = 0; v <= scale; v += step) {
    double y = y_of(v);
    out += "<line x1=\"" + num(left) + "\" y1=\"" + num(y) + "\" x2=\"" + num(left + plot_w) +
           "\" y2=\"" + num(y) + "\" stroke=\"currentColor\" stroke-opacity=\"" +
           (v == 0 ? "0.6" : "0.15") + "\"/>\n";
    out += "<text x=\"" + num(left - 4) + "\" y=\"" + num(y + 4) +
           "\" text-anchor=\"end\" fill=\"currentColor\">" + compact(v) + "</text>\n";
  }
  out += "</g>\n";

  // Bars: one band per label, segments stacked bottom-up in series order.
  const double band = plot_w / static_cast<double>(n);
  const double bar_w = std::max(1.0, band * 0.72);
  out += "<g class=\"bars\">\n";
  for (std::size_t i = 0; i < n; ++i) {
    const double x = left + band * static_cast<double>(i) + (band - bar_w) / 2;
    const std::uint64_t total = stack_total(spec, i);
    std::uint64_t below = 0;
    for (const Series& s : spec.series) {
      const std::uint64_t v = value_at(s, i);
      if (v == 0) continue;
      const double y1 = y_of(below + v);
      const double y0 = y_of(below);
      out += "<rect class=\"bar\" x=\"" + num(x) + "\" y=\"" + num(y1) + "\" width=\"" +
             num(bar_w) + "\" height=\"" + num(y0 - y1) + "\" fill=\"" + escape(s.color) + "\">" +
             tooltip(spec.labels[i], s, v, total) + "</rect>\n";
      below += v;
    }
  }
  out += "</g>\n";

  // Label axis: at most about one label per 70 units, so that dates do not overlap.
  const std::size_t max_labels = std::max<std::size_t>(1, static_cast<std::size_t>(plot_w / 70));
  const std::size_t every = (n + max_labels - 1) / max_labels;
  out += "<g class=\"axis x\">\n";
  for (std::size_t i = 0; i < n; i += every) {
    const double x = left + band * (static_cast<double>(i) + 0.5);
    out += "<text x=\"" + num(x) + "\" y=\"" + num(top + plot_h + 15) +
           "\" text-anchor=\"middle\" fill=\"currentColor\">" + escape(spec.labels[i]) +
           "</text>\n";
  }
  out += "</g>\n</svg>\n";
  return out;
}

std::string render_horizontal_bars(const ChartSpec& spec) {
  if (!has_data(spec)) return no_data(spec);
  const int width = spec.width;
  const int height = spec.height;
  const double left = 150, right = 16, top = 28, bottom = 22;
  const double plot_w = width - left - right;
  const double plot_h = height - top - bottom;
  const std::size_t n = spec.labels.size();

  std::uint64_t max = 0;
  for (std::size_t i = 0; i < n; ++i) max = std::max(max, stack_total(spec, i));
  const std::uint64_t step = nice_step(max, 4);
  const std::uint64_t scale = ((max + step - 1) / step) * step;
  auto x_of = [&](std::uint64_t v) {
    return left + plot_w * static_cast<double>(v) / static_cast<double>(scale);
  };

  std::string out = open_svg(spec, width, height);
  out += legend(spec, width);

  out += "<g class=\"axis x\">\n";
  for (std::uint64_t v = 0; v <= scale; v += step) {
    double x = x_of(v);
    out += "<line x1=\"" + num(x) + "\" y1=\"" + num(top) + "\" x2=\"" + num(x) + "\" y2=\"" +
           num(top + plot_h) + "\" stroke=\"currentColor\" stroke-opacity=\"" +
           (v == 0 ? "0.6" : "0.15") + "\"/>\n";
    out += "<text x=\"" + num(x) + "\" y=\"" + num(top + plot_h + 15) +
           "\" text-anchor=\"middle\" fill=\"currentColor\">" + compact(v) + "</text>\n";
  }
  out += "</g>\n";

  const double row = plot_h / static_cast<double>(n);
  const double bar_h = std::max(1.0, std::min(20.0, row * 0.7));
  out += "<g class=\"bars\">\n";
  for (std::size_t i = 0; i < n; ++i) {
    const double y = top + row * static_cast<double>(i) + (row - bar_h) / 2;
    const std::uint64_t total = stack_total(spec, i);
    // The name, shortened to fit the margin; the whole of it in the tooltip.
    out += "<text class=\"label\" x=\"" + num(left - 6) + "\" y=\"" + num(y + bar_h / 2 + 4) +
           "\" text-anchor=\"end\" fill=\"currentColor\"><title>" + escape(spec.labels[i]) +
           "</title>" + escape(shorten(spec.labels[i], 22)) + "</text>\n";
    std::uint64_t before = 0;
    for (const Series& s : spec.series) {
      const std::uint64_t v = value_at(s, i);
      if (v == 0) continue;
      const double x0 = x_of(before);
      const double x1 = x_of(before + v);
      out += "<rect class=\"bar\" x=\"" + num(x0) + "\" y=\"" + num(y) + "\" width=\"" +
             num(x1 - x0) + "\" height=\"" + num(bar_h) + "\" fill=\"" + escape(s.color) + "\">" +
             tooltip(spec.labels[i], s, v, total) + "</rect>\n";
      before += v;
    }
    out += "<text x=\"" + num(x_of(total) + 4) + "\" y=\"" + num(y + bar_h / 2 + 4) +
           "\" fill=\"currentColor\" fill-opacity=\"0.8\">" + std::to_string(total) + "</text>\n";
  }
  out += "</g>\n</svg>\n";
  return out;
}

namespace {

std::string day_label(std::int64_t day) {
  using namespace std::chrono;
  const year_month_day ymd{sys_days{days{day / kDay}}};
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
  return buf;
}

Response svg_response(std::string body) {
  Response r;
  r.status = 200;
  r.content_type = "image/svg+xml";
  r.body = std::move(body);
  return r;
}

Response store_error(const Error& e) {
  return Response::error(500, e.describe());
}

// The days of the period, each with its point (zero when the store has none), so that the
// time axis has no gaps; periods longer than kMaxFilledDays show the days with data only.
template <class Point>
std::vector<std::pair<std::int64_t, Point>> fill_days(const std::vector<Point>& points,
                                                      const store::SeriesQuery& q,
                                                      std::int64_t now) {
  std::map<std::int64_t, Point> by_day;
  for (const Point& p : points) by_day[p.day - ((p.day % kDay) + kDay) % kDay] = p;
  const std::int64_t first = q.from - ((q.from % kDay) + kDay) % kDay;
  const std::int64_t end = q.to > 0 ? q.to : now + 1;  // exclusive
  if (end > first && (end - first) / kDay <= kMaxFilledDays) {
    for (std::int64_t d = first; d < end; d += kDay) by_day.try_emplace(d, Point{});
  }
  std::vector<std::pair<std::int64_t, Point>> out(by_day.begin(), by_day.end());
  return out;
}

}  // namespace

std::optional<Response> handle_chart(const Request& request, store::Store& store,
                                     std::int64_t now) {
  static constexpr std::string_view kPrefix = "/api/v1/charts/";
  std::string_view path = request.path;
  if (path.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  if (request.method != "GET" && request.method != "HEAD") {
    Response r = Response::error(405, "method not allowed");
    r.headers.emplace_back("Allow", "GET, HEAD");
    return r;
  }
  const std::string_view name = path.substr(kPrefix.size());

  store::SeriesQuery q;
  if (auto bad = series_args(request, now, true, q)) return Response::error(400, bad->message);

  if (name == "dmarc-daily.svg") {
    auto points = store.dmarc_daily(q);
    if (!points) return store_error(points.error());
    ChartSpec spec;
    spec.title = "DMARC messages per day";
    if (!q.domain.empty()) spec.title += " for " + q.domain;
    if (!q.source_ip.empty()) spec.title += " from " + q.source_ip;
    spec.series = {{"pass", kPass, {}}, {"fail", kFail, {}}};
    for (const auto& [day, p] : fill_days(*points, q, now)) {
      spec.labels.push_back(day_label(day));
      spec.series[0].values.push_back(p.pass);
      spec.series[1].values.push_back(p.fail);
    }
    return svg_response(render_stacked_bars(spec));
  }
  if (name == "tls-daily.svg") {
    auto points = store.tls_daily(q);
    if (!points) return store_error(points.error());
    ChartSpec spec;
    spec.title = "TLS sessions per day";
    if (!q.domain.empty()) spec.title += " for " + q.domain;
    spec.series = {{"successful", kPass, {}}, {"failed", kFail, {}}};
    for (const auto& [day, p] : fill_days(*points, q, now)) {
      spec.labels.push_back(day_label(day));
      spec.series[0].values.push_back(p.successful);
      spec.series[1].values.push_back(p.failed);
    }
    return svg_response(render_stacked_bars(spec));
  }
  if (name == "top-sources.svg") {
    std::size_t limit = 10;
    if (std::string l = request.arg("limit"); !l.empty()) {
      auto v = parse_count(l);
      if (!v || *v == 0) return Response::error(400, "limit: expected a positive number");
      limit = static_cast<std::size_t>(std::min<std::int64_t>(*v, 50));
    }
    auto sources = store.top_failing_sources(q, limit);
    if (!sources) return store_error(sources.error());
    ChartSpec spec;
    spec.title = "Top failing sources (DMARC messages)";
    spec.series = {{"fail", kFail, {}}, {"pass", kPass, {}}};
    for (const store::SourceStat& s : *sources) {
      if (s.fail == 0) continue;  // ordered by fail: the rest passed, they are not failing
      spec.labels.push_back(s.source_ip);
      spec.series[0].values.push_back(s.fail);
      spec.series[1].values.push_back(s.pass);
    }
    spec.height = std::max(spec.height, 50 + 26 * static_cast<int>(spec.labels.size()));
    return svg_response(render_horizontal_bars(spec));
  }
  if (name == "tls-failures.svg") {
    auto failures = store.tls_failures_by_type(q);
    if (!failures) return store_error(failures.error());
    ChartSpec spec;
    spec.title = "TLS failed sessions by result type";
    spec.series = {{"failed sessions", kWarn, {}}};
    for (const store::TlsFailureStat& f : *failures) {
      spec.labels.push_back(f.result_type.empty() ? "(none)" : f.result_type);
      spec.series[0].values.push_back(f.sessions);
    }
    spec.height = std::max(spec.height, 50 + 26 * static_cast<int>(spec.labels.size()));
    return svg_response(render_horizontal_bars(spec));
  }
  return Response::error(404, "no such chart");
}

}  // namespace mailreport::web

// The dashboard's server-rendered SVG charts (web/charts.hpp): every chart parses as XML (with
// libxml2, as a browser would), bar sizes are proportional to the values, text is escaped,
// nothing to show says "No data", and the /api/v1/charts/*.svg routes answer from a store
// filled with the bundled sample reports.
#include "mailreport/web/charts.hpp"

#include <gtest/gtest.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "mailreport/ingest/store_ingestor.hpp"
#include "mailreport/store/sqlite_store.hpp"
#include "mailreport/util/bytes.hpp"
#include "mailreport/util/log.hpp"
#include "testsupport.hpp"

namespace mailreport::web {
namespace {

struct DocDeleter {
  void operator()(xmlDoc* d) const { xmlFreeDoc(d); }
};
using Doc = std::unique_ptr<xmlDoc, DocDeleter>;

// Parses strictly: no recovery, no network, no entities; nullptr when not well-formed.
Doc parse_svg(const std::string& svg) {
  return Doc(xmlReadMemory(svg.data(), static_cast<int>(svg.size()), "chart.svg", nullptr,
                           XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING));
}

std::string prop(xmlNode* node, const char* name) {
  xmlChar* v = xmlGetProp(node, reinterpret_cast<const xmlChar*>(name));
  if (v == nullptr) return "";
  std::string s(reinterpret_cast<const char*>(v));
  xmlFree(v);
  return s;
}

std::string text_of(xmlNode* node) {
  xmlChar* v = xmlNodeGetContent(node);
  std::string s = v ? reinterpret_cast<const char*>(v) : "";
  xmlFree(v);
  return s;
}

void collect(xmlNode* node, const std::string& name, std::vector<xmlNode*>& out) {
  for (xmlNode* n = node; n != nullptr; n = n->next) {
    if (n->type == XML_ELEMENT_NODE && name == reinterpret_cast<const char*>(n->name)) {
      out.push_back(n);
    }
    collect(n->children, name, out);
  }
}

std::vector<xmlNode*> elements(const Doc& doc, const std::string& name) {
  std::vector<xmlNode*> out;
  collect(xmlDocGetRootElement(doc.get()), name, out);
  return out;
}

std::vector<xmlNode*> bars(const Doc& doc) {
  std::vector<xmlNode*> out;
  for (xmlNode* r : elements(doc, "rect")) {
    if (prop(r, "class") == "bar") out.push_back(r);
  }
  return out;
}

ChartSpec two_series() {
  ChartSpec spec;
  spec.title = "DMARC messages per day";
  spec.labels = {"2026-01-01", "2026-01-02", "2026-01-03"};
  spec.series = {{"pass", "#2e7d32", {10, 40, 0}}, {"fail", "#c62828", {5, 0, 20}}};
  return spec;
}

TEST(Charts, StackedBarsAreWellFormedSvgWithViewBoxAndTooltips) {
  const std::string svg = render_stacked_bars(two_series());
  Doc doc = parse_svg(svg);
  ASSERT_TRUE(doc) << svg;
  xmlNode* root = xmlDocGetRootElement(doc.get());
  EXPECT_STREQ(reinterpret_cast<const char*>(root->name), "svg");
  ASSERT_NE(root->ns, nullptr);
  EXPECT_STREQ(reinterpret_cast<const char*>(root->ns->href), "http://www.w3.org/2000/svg");
  EXPECT_EQ(prop(root, "viewBox"), "0 0 640 240");
  // Four non-zero values, four segments, each with a tooltip naming its day and series.
  auto b = bars(doc);
  ASSERT_EQ(b.size(), 4u);
  EXPECT_EQ(text_of(b[0]), "2026-01-01 \xE2\x80\x94 pass: 10 of 15");
  EXPECT_EQ(prop(b[0], "fill"), "#2e7d32");
  EXPECT_EQ(prop(b[1], "fill"), "#c62828");
  // The CSP forbids inline styles: presentation attributes only.
  EXPECT_EQ(svg.find("style"), std::string::npos);
  // A legend entry per series and the day labels.
  std::string all_text;
  for (xmlNode* t : elements(doc, "text")) all_text += text_of(t) + "|";
  EXPECT_NE(all_text.find("|pass|"), std::string::npos) << all_text;
  EXPECT_NE(all_text.find("|fail|"), std::string::npos) << all_text;
  EXPECT_NE(all_text.find("2026-01-03"), std::string::npos) << all_text;
}

TEST(Charts, StackedBarHeightsAreProportionalToValues) {
  const std::string svg = render_stacked_bars(two_series());
  Doc doc = parse_svg(svg);
  ASSERT_TRUE(doc);
  auto b = bars(doc);
  ASSERT_EQ(b.size(), 4u);
  // Segments in order: day 1 pass 10, day 1 fail 5, day 2 pass 40, day 3 fail 20.
  const double h10 = std::stod(prop(b[0], "height"));
  const double h5 = std::stod(prop(b[1], "height"));
  const double h40 = std::stod(prop(b[2], "height"));
  const double h20 = std::stod(prop(b[3], "height"));
  EXPECT_GT(h5, 0);
  EXPECT_NEAR(h10 / h5, 2.0, 0.01);
  EXPECT_NEAR(h40 / h10, 4.0, 0.01);
  EXPECT_NEAR(h20 / h5, 4.0, 0.01);
  // Stacked: day 1's fail segment sits right on top of its pass segment.
  EXPECT_NEAR(std::stod(prop(b[1], "y")) + h5, std::stod(prop(b[0], "y")), 0.01);
  // Same baseline for every bar's bottom segment.
  EXPECT_NEAR(std::stod(prop(b[0], "y")) + h10, std::stod(prop(b[2], "y")) + h40, 0.01);
}

TEST(Charts, HorizontalBarWidthsAreProportionalToValues) {
  ChartSpec spec;
  spec.title = "Top failing sources";
  spec.labels = {"192.0.2.1", "2001:db8::1", "198.51.100.7"};
  spec.series = {{"fail", "#c62828", {30, 15, 3}}};
  Doc doc = parse_svg(render_horizontal_bars(spec));
  ASSERT_TRUE(doc);
  auto b = bars(doc);
  ASSERT_EQ(b.size(), 3u);
  const double w30 = std::stod(prop(b[0], "width"));
  EXPECT_NEAR(w30 / std::stod(prop(b[1], "width")), 2.0, 0.01);
  EXPECT_NEAR(w30 / std::stod(prop(b[2], "width")), 10.0, 0.01);
  // Rows top-down in the given order, all starting at the axis.
  EXPECT_LT(std::stod(prop(b[0], "y")), std::stod(prop(b[1], "y")));
  EXPECT_EQ(prop(b[0], "x"), prop(b[2], "x"));
}

TEST(Charts, TextIsEscaped) {
  ChartSpec spec;
  spec.title = "Sources for <b>&\"x'</b>";
  spec.labels = {"<script>alert(1)</script>", "a&b"};
  spec.series = {{"fail & <pass>", "red\"/><script", {1, 2}}};
  for (const std::string& svg : {render_stacked_bars(spec), render_horizontal_bars(spec)}) {
    Doc doc = parse_svg(svg);
    ASSERT_TRUE(doc) << svg;
    EXPECT_EQ(svg.find("<script"), std::string::npos);
    EXPECT_EQ(svg.find("<b>"), std::string::npos);
    EXPECT_TRUE(elements(doc, "script").empty());
    // The text comes back whole after parsing.
    xmlNode* root = xmlDocGetRootElement(doc.get());
    EXPECT_EQ(prop(root, "aria-label"), spec.title);
    std::string all_text;
    for (xmlNode* t : elements(doc, "title")) all_text += text_of(t) + "|";
    EXPECT_NE(all_text.find("<script>alert(1)</script>"), std::string::npos) << all_text;
    EXPECT_NE(all_text.find("a&b"), std::string::npos) << all_text;
    EXPECT_EQ(prop(bars(doc).at(0), "fill"), "red\"/><script");
  }
}

TEST(Charts, NoDataSaysSo) {
  ChartSpec empty;
  empty.title = "TLS sessions per day";
  ChartSpec zeros = empty;
  zeros.labels = {"2026-01-01"};
  zeros.series = {{"failed", "#c62828", {0}}};
  for (const ChartSpec& spec : {empty, zeros}) {
    for (const std::string& svg : {render_stacked_bars(spec), render_horizontal_bars(spec)}) {
      Doc doc = parse_svg(svg);
      ASSERT_TRUE(doc) << svg;
      EXPECT_TRUE(bars(doc).empty());
      std::string all_text;
      for (xmlNode* t : elements(doc, "text")) all_text += text_of(t) + "|";
      EXPECT_NE(all_text.find("No data"), std::string::npos) << all_text;
    }
  }
}

TEST(Charts, ManyDaysThinOutTheDayLabels) {
  ChartSpec spec;
  spec.title = "many";
  spec.series = {{"pass", "#2e7d32", {}}};
  for (int i = 0; i < 90; ++i) {
    spec.labels.push_back("day-" + std::to_string(i));
    spec.series[0].values.push_back(static_cast<std::uint64_t>(i + 1));
  }
  Doc doc = parse_svg(render_stacked_bars(spec));
  ASSERT_TRUE(doc);
  EXPECT_EQ(bars(doc).size(), 90u);
  std::size_t day_labels = 0;
  for (xmlNode* t : elements(doc, "text")) {
    if (text_of(t).rfind("day-", 0) == 0) ++day_labels;
  }
  EXPECT_GT(day_labels, 3u);
  EXPECT_LE(day_labels, 10u);
}

// ----- the routes

class ChartRoutes : public ::testing::Test {
 protected:
  void SetUp() override {
    store::SqliteOptions options;
    options.path = dir_ / "charts.db";
    options.synchronous_full = false;
    auto s = store::open_sqlite_store(options);
    ASSERT_TRUE(s) << s.error().describe();
    store_ = std::move(*s);
  }

  void import_samples() {
    NullLogger log;
    ingest::StoreIngestor ingestor(*store_, log);
    ingest::Envelope env;
    env.source = "import";
    for (const auto& entry :
         std::filesystem::directory_iterator(test::source_dir() / "samples" / "reports")) {
      auto input = Input::from_file(entry.path());
      ASSERT_TRUE(input) << entry.path();
      auto out = ingestor.ingest(env, *input);
      ASSERT_TRUE(out) << out.error().describe();
    }
  }

  static Request get(std::string path, std::map<std::string, std::string> query = {}) {
    Request r;
    r.method = "GET";
    r.path = std::move(path);
    r.query = std::move(query);
    return r;
  }

  // The dashboard queries are another module's work; until they exist the data tests skip.
  bool dashboard_queries_available() {
    auto r = store_->dmarc_daily(store::SeriesQuery{});
    return r || r.error().code != ErrorCode::Unsupported;
  }

  test::TempDir dir_;
  std::unique_ptr<store::Store> store_;
  // 2026-01-20: the samples' reports (2026-01-01..03) are within the default 30 days.
  const std::int64_t now_ = 1768867200;
};

TEST_F(ChartRoutes, OtherPathsAreNotCharts) {
  EXPECT_FALSE(handle_chart(get("/api/v1/summary"), *store_, now_));
  EXPECT_FALSE(handle_chart(get("/"), *store_, now_));
  auto r = handle_chart(get("/api/v1/charts/nope.svg"), *store_, now_);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
}

TEST_F(ChartRoutes, BadDatesAre400) {
  for (const char* bad : {"2026-13-01", "yesterday", "-5", "2026-02-30"}) {
    auto r = handle_chart(get("/api/v1/charts/dmarc-daily.svg", {{"from", bad}}), *store_, now_);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << bad;
    EXPECT_NE(r->body.find("from"), std::string::npos) << r->body;
  }
}

TEST_F(ChartRoutes, ChartsOfTheSampleReports) {
  if (!dashboard_queries_available()) GTEST_SKIP() << "Store dashboard queries not there yet";
  import_samples();
  for (const char* name : {"dmarc-daily", "tls-daily", "top-sources", "tls-failures"}) {
    auto r = handle_chart(get(std::string("/api/v1/charts/") + name + ".svg"), *store_, now_);
    ASSERT_TRUE(r) << name;
    ASSERT_EQ(r->status, 200) << name << ": " << r->body;
    EXPECT_EQ(r->content_type, "image/svg+xml");
    Doc doc = parse_svg(r->body);
    ASSERT_TRUE(doc) << r->body;
    EXPECT_FALSE(bars(doc).empty()) << name << ": " << r->body;
  }
  // The daily chart has one band per day of the period: 30 days back from now, YYYY-MM-DD.
  auto daily = handle_chart(
      get("/api/v1/charts/dmarc-daily.svg", {{"from", "2026-01-01"}, {"to", "2026-01-08"}}),
      *store_, now_);
  ASSERT_TRUE(daily);
  Doc doc = parse_svg(daily->body);
  ASSERT_TRUE(doc);
  std::string tips;
  for (xmlNode* b : bars(doc)) tips += text_of(b) + "|";
  EXPECT_NE(tips.find("2026-01-02"), std::string::npos) << tips;
  // Epoch seconds work too; a period with nothing says "No data".
  auto none = handle_chart(
      get("/api/v1/charts/tls-daily.svg", {{"from", "1000000000"}, {"to", "1000086400"}}), *store_,
      now_);
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 200);
  EXPECT_NE(none->body.find("No data"), std::string::npos);
}

}  // namespace
}  // namespace mailreport::web

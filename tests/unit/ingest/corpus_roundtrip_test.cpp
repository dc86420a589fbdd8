// Every file of the shared real-world corpus through the ingest service: none may fail to
// store, every stored report must read back equal (as JSON) to what the extractor produced
// from the same message, and a second pass over the corpus must add no report.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "../store/store_fixtures.hpp"
#include "mailreport/ingest/store_ingestor.hpp"
#include "mailreport/report/json.hpp"
#include "testsupport.hpp"

namespace mailreport::ingest {
namespace {

std::vector<std::string> manifest_files() {
  std::vector<std::string> files;
  for (const auto& row : test::corpus_manifest()) files.push_back(row.file);
  return files;
}

TEST(IngestCorpus, EveryFileIsStoredAndReadsBackAsParsed) {
  MAILREPORT_REQUIRE_CORPUS();
  test::TempDir dir;
  store::SqliteOptions options;
  options.synchronous_full = false;
  auto store = test::open_store(dir / "corpus.db", options);
  ASSERT_TRUE(store);
  NullLogger log;
  StoreIngestor ingestor(*store, log);
  Envelope env;
  env.source = "import";

  std::map<std::int64_t, std::vector<nlohmann::json>> parsed;  // message id → extractor output
  std::size_t stored = 0;
  auto files = manifest_files();
  ASSERT_GT(files.size(), 100u);
  for (const auto& f : files) {
    auto input = Input::from_file(test::corpus_dir() / f);
    ASSERT_TRUE(input) << f;
    report::CollectingSink collected;
    (void)report::extract_reports(*input, collected);
    auto out = ingestor.ingest(env, *input);
    ASSERT_TRUE(out) << f << ": " << out.error().describe();
    stored += out->reports_stored;
    for (const auto& r : collected.reports()) parsed[out->message_id].push_back(report::to_json(r));
  }
  EXPECT_GT(stored, 100u);

  auto list = store->list_reports({});
  ASSERT_TRUE(list);
  EXPECT_EQ(list->size(), stored);
  for (const auto& s : *list) {
    auto got = store->get_report(s.id);
    ASSERT_TRUE(got) << got.error().describe();
    auto json = report::to_json(got->report);
    const auto& candidates = parsed[s.message_id];
    bool found = false;
    for (const auto& c : candidates) found = found || c == json;
    EXPECT_TRUE(found) << "report " << s.id << " of message " << s.message_id
                       << " reads back differently:\n"
                       << json.dump(1).substr(0, 3000);
  }

  std::size_t second = 0;
  for (const auto& f : files) {
    auto input = Input::from_file(test::corpus_dir() / f);
    ASSERT_TRUE(input);
    auto out = ingestor.ingest(env, *input);
    ASSERT_TRUE(out) << f << ": " << out.error().describe();
    second += out->reports_stored;
  }
  EXPECT_EQ(second, 0u) << "re-importing the corpus stored reports again";
}

}  // namespace
}  // namespace mailreport::ingest

#include "testsupport.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

namespace mailreport::test {

std::filesystem::path source_dir() { return MAILREPORT_SOURCE_DIR; }
std::filesystem::path binary_dir() { return MAILREPORT_BINARY_DIR; }

std::filesystem::path corpus_dir() {
  if (const char* env = std::getenv("MAILREPORT_CORPUS"); env && *env) return env;
  return source_dir().parent_path() / "shared" / "corpus";
}

std::filesystem::path schemas_dir() { return corpus_dir().parent_path() / "schemas"; }

bool corpus_available() {
  std::error_code ec;
  return std::filesystem::exists(corpus_dir() / "MANIFEST.tsv", ec);
}

bool running_in_ci() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}

std::string corpus_missing_message() {
  return "the shared corpus is not at " + corpus_dir().string() +
         " (it sits beside the checkout as ../shared in CI; set MAILREPORT_CORPUS to use "
         "another copy). Skipping; under CI=true this is a failure.";
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + p.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<ManifestRow> corpus_manifest() {
  std::vector<ManifestRow> rows;
  std::ifstream in(corpus_dir() / "MANIFEST.tsv");
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::vector<std::string> cols;
    std::size_t start = 0;
    for (;;) {
      std::size_t tab = line.find('\t', start);
      cols.push_back(line.substr(start, tab - start));
      if (tab == std::string::npos) break;
      start = tab + 1;
    }
    if (cols.size() < 4) continue;
    std::string notes = cols.size() >= 6 ? cols[5] : std::string();
    if (notes.size() >= 2 && notes.front() == '"' && notes.back() == '"') {
      notes = notes.substr(1, notes.size() - 2);
      for (auto at = notes.find("\"\""); at != std::string::npos; at = notes.find("\"\"", at + 1)) {
        notes.erase(at, 1);
      }
    }
    rows.push_back({cols[0], cols[1], cols[2], cols[3], std::move(notes)});
  }
  return rows;
}

std::vector<ManifestRow> corpus_manifest(const std::string& kind) {
  std::vector<ManifestRow> rows;
  for (auto& r : corpus_manifest()) {
    if (r.kind == kind) rows.push_back(std::move(r));
  }
  return rows;
}

bool blessing() {
  const char* b = std::getenv("MAILREPORT_BLESS");
  return b && std::string(b) == "1";
}

void expect_golden(const nlohmann::json& got, const std::filesystem::path& expected) {
  if (blessing()) {
    std::ofstream(expected) << got.dump(2) << "\n";
    return;
  }
  ASSERT_TRUE(std::filesystem::exists(expected)) << expected;
  EXPECT_EQ(got, nlohmann::json::parse(read_file(expected))) << got.dump(2);
}

bool has_error(const std::vector<std::string>& errors, std::string_view needle) {
  for (const auto& e : errors) {
    if (e.find(needle) != std::string::npos) return true;
  }
  return false;
}

TempDir::TempDir() {
  std::random_device rd;
  auto base = std::filesystem::temp_directory_path();
  for (;;) {
    auto candidate = base / ("mailreport-test-" + std::to_string(rd()));
    std::error_code ec;
    if (std::filesystem::create_directory(candidate, ec)) {
      path_ = candidate;
      return;
    }
  }
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace mailreport::test

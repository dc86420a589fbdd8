// Helpers shared by the tests: where the shared corpus is, temporary directories.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace mailreport::test {

// ../shared/corpus beside the checkout (or $MAILREPORT_CORPUS). When it is missing, tests
// that need it call MAILREPORT_REQUIRE_CORPUS(), which skips with a clear message — or fails
// when CI=true, because CI always has it.
std::filesystem::path corpus_dir();
std::filesystem::path schemas_dir();
bool corpus_available();
bool running_in_ci();
std::string corpus_missing_message();

std::filesystem::path source_dir();  // the repository checkout
std::filesystem::path binary_dir();  // the CMake build directory

std::string read_file(const std::filesystem::path& p);

// One row of the corpus MANIFEST.tsv (see its README): `file` is relative to corpus_dir();
// `notes` are unquoted (notes holding a '"' are written CSV-style in the file).
struct ManifestRow {
  std::string source_repo;
  std::string path_in_repo;
  std::string file;
  std::string kind;
  std::string notes;
};
// Every row of the manifest, in file order; empty when the corpus is missing.
std::vector<ManifestRow> corpus_manifest();
// The rows of one kind ("dmarc-agg-xml", "dsn-eml", "other", ...).
std::vector<ManifestRow> corpus_manifest(const std::string& kind);

// Whether MAILREPORT_BLESS=1 is set: golden tests then (re)write their expectations instead
// of comparing, to be reviewed in the diff.
bool blessing();

// Golden comparison of `got` with the JSON file `expected` (rewritten when blessing()).
void expect_golden(const nlohmann::json& got, const std::filesystem::path& expected);

// Whether any entry of a report's `errors` contains `needle`.
bool has_error(const std::vector<std::string>& errors, std::string_view needle);

// A fresh directory under $TMPDIR, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const noexcept { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

}  // namespace mailreport::test

#define MAILREPORT_REQUIRE_CORPUS()                                          \
  do {                                                                       \
    if (!::mailreport::test::corpus_available()) {                           \
      if (::mailreport::test::running_in_ci()) {                             \
        FAIL() << ::mailreport::test::corpus_missing_message();              \
      } else {                                                               \
        GTEST_SKIP() << ::mailreport::test::corpus_missing_message();        \
      }                                                                      \
    }                                                                        \
  } while (0)

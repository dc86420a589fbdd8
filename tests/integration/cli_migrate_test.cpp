// `mailreport migrate`, run as a real process: a SQLite store filled by `mailreport import`
// moved into a fresh PostgreSQL database (progress on stderr, the summary on stdout, the URL's
// password masked everywhere), the PostgreSQL store then listing what SQLite listed, a second
// run refused, the configured store as the default target, and the argument errors.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "pg_server.hpp"
#include "process_util.hpp"
#include "testsupport.hpp"

namespace mailreport {
namespace {

namespace fs = std::filesystem;
using test::RunResult;

constexpr int kExitUsage = 64;

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

void write(const fs::path& p, const std::string& content) {
  std::ofstream(p, std::ios::binary) << content;
}

RunResult mailreport(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {test::cli_binary().string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return test::run_command(argv);
}

// "postgresql://postgres@host:port/db" with a password in it (the test server trusts anyone).
std::string with_password(std::string url) {
  const auto at = url.find('@');
  if (at != std::string::npos) url.insert(at, ":s3cret");
  return url;
}

class CliMigrate : public ::testing::Test {
 protected:
  void SetUp() override {
    sqlite_conf_ = dir_ / "sqlite.toml";
    write(sqlite_conf_, "[store]\npath = \"" + (dir_ / "store.db").string() + "\"\n");
    auto imported = mailreport({"-c", sqlite_conf_.string(), "import",
                                (test::source_dir() / "samples" / "reports").string()});
    ASSERT_EQ(imported.exit_code, 0) << imported.err;
  }

  fs::path pg_conf(const std::string& url) {
    const auto p = dir_ / "pg.toml";
    write(p, "[store]\ntype = \"postgresql\"\nurl = \"" + url + "\"\n");
    return p;
  }

  test::TempDir dir_;
  fs::path sqlite_conf_;
};

TEST_F(CliMigrate, MovesTheStoreAndThePostgresStoreListsTheSame) {
  std::string url;
  MAILREPORT_REQUIRE_PG(url);
  const std::string secret_url = with_password(url);
  auto r = mailreport(
      {"migrate", "--from", "sqlite:" + (dir_ / "store.db").string(), "--to", secret_url});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(contains(r.out + r.err, "s3cret")) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "migrated ")) << r.out;
  EXPECT_TRUE(contains(r.out, " in 24 tables ")) << r.out;
  EXPECT_TRUE(contains(r.out, ":***@")) << r.out;
  EXPECT_EQ(test::lines_of(r.out).size(), 1u) << r.out;
  for (const char* table : {"raw_messages", "reports", "evaluations", "outbox", "suppressions"}) {
    EXPECT_TRUE(contains(r.err, table)) << r.err;
  }
  EXPECT_EQ(test::pg_count_rows(url, "raw_messages"), 8);

  const auto pg = pg_conf(url);
  for (const char* type : {"dmarc", "tls", "arf", "dsn"}) {
    auto a = mailreport({"-c", sqlite_conf_.string(), "list", type});
    auto b = mailreport({"-c", pg.string(), "list", type});
    ASSERT_EQ(a.exit_code, 0) << a.err;
    ASSERT_EQ(b.exit_code, 0) << b.err;
    EXPECT_EQ(a.out, b.out) << type;
  }
  auto show_a = mailreport({"-c", sqlite_conf_.string(), "show", "1", "--json"});
  auto show_b = mailreport({"-c", pg.string(), "show", "1", "--json"});
  EXPECT_EQ(show_a.out, show_b.out);

  // Again into the same database: refused, nothing added.
  auto again = mailreport(
      {"migrate", "--from", "sqlite:" + (dir_ / "store.db").string(), "--to", secret_url});
  EXPECT_EQ(again.exit_code, kExitUsage);
  EXPECT_TRUE(contains(again.err, "already holds data")) << again.err;
  EXPECT_FALSE(contains(again.out + again.err, "s3cret"));
  EXPECT_EQ(test::pg_count_rows(url, "raw_messages"), 8);
}

TEST_F(CliMigrate, WithoutToTheConfiguredPostgresStoreIsTheTarget) {
  std::string url;
  MAILREPORT_REQUIRE_PG(url);
  const auto pg = pg_conf(with_password(url));
  auto r = mailreport(
      {"-c", pg.string(), "migrate", "--from", "sqlite:" + (dir_ / "store.db").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(contains(r.out + r.err, "s3cret"));
  EXPECT_EQ(test::pg_count_rows(url, "reports"), 7);
}

TEST_F(CliMigrate, ArgumentErrors) {
  const std::string from = "sqlite:" + (dir_ / "store.db").string();
  auto no_from = mailreport({"migrate", "--to", "postgresql://db/x"});
  EXPECT_EQ(no_from.exit_code, kExitUsage);
  auto bad_from =
      mailreport({"migrate", "--from", "postgresql://db/x", "--to", "postgresql://db/y"});
  EXPECT_EQ(bad_from.exit_code, kExitUsage);
  EXPECT_TRUE(contains(bad_from.err, "--from must be sqlite:PATH")) << bad_from.err;
  auto bad_to = mailreport({"migrate", "--from", from, "--to", "mysql://u:pw@db/x"});
  EXPECT_EQ(bad_to.exit_code, kExitUsage);
  EXPECT_TRUE(contains(bad_to.err, "--to must be postgresql:URL")) << bad_to.err;
  // No --to, and the configured store is SQLite.
  auto no_to = mailreport({"-c", sqlite_conf_.string(), "migrate", "--from", from});
  EXPECT_EQ(no_to.exit_code, kExitUsage);
  EXPECT_TRUE(contains(no_to.err, "store.type is \"sqlite\"")) << no_to.err;
  // A source that does not exist is not created.
  auto missing = mailreport({"migrate", "--from", "sqlite:" + (dir_ / "none.db").string(), "--to",
                             "postgresql://u:pw@127.0.0.1:1/x"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_TRUE(contains(missing.err, "no SQLite store")) << missing.err;
  EXPECT_FALSE(fs::exists(dir_ / "none.db"));
}

}  // namespace
}  // namespace mailreport

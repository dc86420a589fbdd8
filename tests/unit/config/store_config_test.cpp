// [store]: type, path, url, url-file (with its permission checks), pool-size, acquire-timeout,
// the problems of each, and the password mask used wherever a URL is shown.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "mailreport/config/config.hpp"
#include "testsupport.hpp"

namespace mailreport::config {
namespace {

std::string dump(const std::vector<Problem>& problems) {
  std::string out;
  for (const auto& p : problems) out += p.describe() + "\n";
  return out;
}

std::shared_ptr<const Config> load_ok(const std::string& text) {
  LoadResult r = load_string(text);
  EXPECT_TRUE(r.problems.empty()) << dump(r.problems);
  return r.config;
}

// The one problem of `text`, which must have exactly one.
Problem one_problem(const std::string& text) {
  LoadResult r = load_string(text);
  EXPECT_FALSE(r.config);
  EXPECT_EQ(r.problems.size(), 1u) << dump(r.problems);
  return r.problems.empty() ? Problem{} : r.problems.front();
}

bool mentions(const Problem& p, std::string_view needle) {
  return p.message.find(needle) != std::string::npos;
}

std::filesystem::path write_file(const test::TempDir& dir, const std::string& name,
                                 const std::string& text, mode_t mode) {
  const auto path = dir / name;
  std::ofstream(path) << text;
  ::chmod(path.c_str(), mode);
  return path;
}

TEST(StoreConfig, Defaults) {
  auto c = load_ok("");
  EXPECT_EQ(c->store.type, "sqlite");
  EXPECT_EQ(c->store.url, "");
  EXPECT_EQ(c->store.url_file, "");
  EXPECT_EQ(c->store.pool_size, 8u);
  EXPECT_EQ(c->store.acquire_timeout, std::chrono::seconds(10));
  const StoreConfig header;
  EXPECT_EQ(header.pool_size, c->store.pool_size);
  EXPECT_EQ(header.acquire_timeout, c->store.acquire_timeout);
}

TEST(StoreConfig, PostgresqlWithUrl) {
  auto c = load_ok(
      "[store]\ntype = \"postgresql\"\nurl = \"postgresql://mailreport@db.example/mail\"\n"
      "pool-size = 16\nacquire-timeout = \"30s\"\n");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->store.type, "postgresql");
  EXPECT_EQ(c->store.url, "postgresql://mailreport@db.example/mail");
  EXPECT_EQ(c->store.pool_size, 16u);
  EXPECT_EQ(c->store.acquire_timeout, std::chrono::seconds(30));
}

TEST(StoreConfig, UrlIsTakenAsWrittenNotAsAnExpression) {
  // libpq quotes keyword values with '; an expression would refuse or change it.
  auto c = load_ok(
      "[store]\ntype = \"postgresql\"\n"
      "url = \"host=/run/postgresql dbname=mail password='a b\\\\' c'\"\n");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->store.url, "host=/run/postgresql dbname=mail password='a b\\' c'");
}

TEST(StoreConfig, UnknownType) {
  auto p = one_problem("[store]\ntype = \"mysql\"\n");
  EXPECT_EQ(p.key, "store.type");
  EXPECT_TRUE(mentions(p, "\"sqlite\" or \"postgresql\"")) << p.message;
}

TEST(StoreConfig, PostgresqlWithoutUrl) {
  auto p = one_problem("[store]\ntype = \"postgresql\"\n");
  EXPECT_EQ(p.key, "store.type");
  EXPECT_TRUE(mentions(p, "needs store.url or store.url-file")) << p.message;
}

TEST(StoreConfig, UrlWithSqliteIsAnError) {
  auto p = one_problem("[store]\nurl = \"postgresql://u:secret@db/mail\"\n");
  EXPECT_EQ(p.key, "store.url");
  EXPECT_EQ(p.line, 2);
  EXPECT_TRUE(mentions(p, "store.type is \"sqlite\"")) << p.message;
  EXPECT_FALSE(mentions(p, "secret"));
}

TEST(StoreConfig, UrlFileWithSqliteIsAnError) {
  test::TempDir dir;
  const auto f = write_file(dir, "url", "postgresql://db/mail\n", 0600);
  auto p = one_problem("[store]\nurl-file = \"" + f.string() + "\"\n");
  EXPECT_EQ(p.key, "store.url-file");
  EXPECT_TRUE(mentions(p, "store.type is \"sqlite\"")) << p.message;
}

TEST(StoreConfig, BadUrlIsNamedWithItsPasswordMasked) {
  auto p = one_problem("[store]\ntype = \"postgresql\"\nurl = \"mysql://u:secret@db/mail\"\n");
  EXPECT_EQ(p.key, "store.url");
  EXPECT_TRUE(mentions(p, "not a PostgreSQL connection string")) << p.message;
  EXPECT_FALSE(mentions(p, "secret")) << p.message;
  // "" is the default (no URL).
  auto empty = one_problem("[store]\ntype = \"postgresql\"\nurl = \"\"\n");
  EXPECT_EQ(empty.key, "store.type");
  EXPECT_TRUE(mentions(empty, "needs store.url")) << empty.message;
  EXPECT_TRUE(load_ok("[store]\nurl = \"\"\nurl-file = \"\"\n"));
}

TEST(StoreConfig, UrlFileIsRead) {
  test::TempDir dir;
  const auto f = write_file(dir, "url", "  postgresql://mailreport:pw@db/mail \n", 0640);
  auto c = load_ok("[store]\ntype = \"postgresql\"\nurl-file = \"" + f.string() + "\"\n");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->store.url, "postgresql://mailreport:pw@db/mail");
  EXPECT_EQ(c->store.url_file, f);
}

TEST(StoreConfig, UrlFileReadableByOthersIsRefused) {
  test::TempDir dir;
  const auto f = write_file(dir, "url", "postgresql://mailreport:pw@db/mail\n", 0644);
  auto p = one_problem("[store]\ntype = \"postgresql\"\nurl-file = \"" + f.string() + "\"\n");
  EXPECT_EQ(p.key, "store.url-file");
  EXPECT_TRUE(mentions(p, "mode 0644")) << p.message;
  EXPECT_FALSE(mentions(p, "pw@")) << p.message;
  const auto g = write_file(dir, "url2", "postgresql://db/mail\n", 0660);
  auto q = one_problem("[store]\ntype = \"postgresql\"\nurl-file = \"" + g.string() + "\"\n");
  EXPECT_TRUE(mentions(q, "mode 0660")) << q.message;
}

TEST(StoreConfig, UrlFileProblems) {
  test::TempDir dir;
  const std::string head = "[store]\ntype = \"postgresql\"\nurl-file = \"";
  auto missing = one_problem(head + (dir / "nothing").string() + "\"\n");
  EXPECT_EQ(missing.key, "store.url-file");
  EXPECT_TRUE(mentions(missing, "No such file")) << missing.message;
  auto relative = one_problem(head + "store-url\"\n");
  EXPECT_TRUE(mentions(relative, "absolute path")) << relative.message;
  auto empty = one_problem(head + write_file(dir, "e", "\n\n", 0600).string() + "\"\n");
  EXPECT_TRUE(mentions(empty, "empty")) << empty.message;
  auto two = one_problem(head + write_file(dir, "t", "host=a\nhost=b\n", 0600).string() + "\"\n");
  EXPECT_TRUE(mentions(two, "one line")) << two.message;
  auto bad = one_problem(head + write_file(dir, "b", "just a word\n", 0600).string() + "\"\n");
  EXPECT_TRUE(mentions(bad, "not a PostgreSQL connection string")) << bad.message;
  auto dir_itself = one_problem(head + dir.path().string() + "\"\n");
  EXPECT_TRUE(mentions(dir_itself, "not a regular file")) << dir_itself.message;
}

TEST(StoreConfig, UrlAndUrlFileTogether) {
  test::TempDir dir;
  const auto f = write_file(dir, "url", "postgresql://db/mail\n", 0600);
  auto p =
      one_problem("[store]\ntype = \"postgresql\"\nurl = \"postgresql://db/x\"\nurl-file = \"" +
                  f.string() + "\"\n");
  EXPECT_EQ(p.key, "store.url-file");
  EXPECT_TRUE(mentions(p, "in one place")) << p.message;
}

TEST(StoreConfig, PoolSizeRange) {
  const std::string head = "[store]\ntype = \"postgresql\"\nurl = \"postgresql:///m\"\n";
  EXPECT_EQ(load_ok(head + "pool-size = 1\n")->store.pool_size, 1u);
  EXPECT_EQ(load_ok(head + "pool-size = 256\n")->store.pool_size, 256u);
  for (const char* bad : {"0", "257", "-1"}) {
    auto p = one_problem(head + "pool-size = " + bad + "\n");
    EXPECT_EQ(p.key, "store.pool-size");
    EXPECT_TRUE(mentions(p, "between 1 and 256")) << p.message;
  }
  auto p = one_problem(head + "pool-size = \"8\"\n");
  EXPECT_TRUE(mentions(p, "must be an integer")) << p.message;
}

TEST(StoreConfig, AcquireTimeout) {
  const std::string head = "[store]\ntype = \"postgresql\"\nurl = \"postgresql:///m\"\n";
  EXPECT_EQ(load_ok(head + "acquire-timeout = 3\n")->store.acquire_timeout,
            std::chrono::seconds(3));
  EXPECT_EQ(load_ok(head + "acquire-timeout = \"2m\"\n")->store.acquire_timeout,
            std::chrono::minutes(2));
  auto zero = one_problem(head + "acquire-timeout = 0\n");
  EXPECT_EQ(zero.key, "store.acquire-timeout");
  EXPECT_TRUE(mentions(zero, "longer than 0s")) << zero.message;
  auto long_one = one_problem(head + "acquire-timeout = \"2h\"\n");
  EXPECT_TRUE(mentions(long_one, "at most 1h")) << long_one.message;
  auto junk = one_problem(head + "acquire-timeout = \"soon\"\n");
  EXPECT_EQ(junk.key, "store.acquire-timeout");
}

TEST(MaskUrlPassword, Uri) {
  EXPECT_EQ(mask_url_password("postgresql://mailreport:s3cret@db.example:5433/mail"),
            "postgresql://mailreport:***@db.example:5433/mail");
  EXPECT_EQ(mask_url_password("postgres://u:p@h"), "postgres://u:***@h");
  EXPECT_EQ(mask_url_password("postgresql://u@h/db"), "postgresql://u@h/db");
  EXPECT_EQ(mask_url_password("postgresql:///db?host=/run/postgresql"),
            "postgresql:///db?host=/run/postgresql");
  EXPECT_EQ(mask_url_password("postgresql://u:p@h1,h2:5433/db?sslmode=require&password=x&a=b"),
            "postgresql://u:***@h1,h2:5433/db?sslmode=require&password=***&a=b");
  EXPECT_EQ(mask_url_password("postgresql://h/db?PASSWORD=x"), "postgresql://h/db?PASSWORD=***");
  // A password holding '@' (not percent-encoded): everything up to the last '@' is hidden.
  EXPECT_EQ(mask_url_password("postgresql://u:p@ss@h/db"), "postgresql://u:***@h/db");
}

TEST(MaskUrlPassword, KeywordValue) {
  EXPECT_EQ(mask_url_password("host=db user=u password=secret dbname=mail"),
            "host=db user=u password=*** dbname=mail");
  EXPECT_EQ(mask_url_password("password = 'se cret\\' x' host=db"), "password = *** host=db");
  EXPECT_EQ(mask_url_password("host=db dbname=mail"), "host=db dbname=mail");
  EXPECT_EQ(mask_url_password("  host=db   password=x"), "  host=db   password=***");
}

}  // namespace
}  // namespace mailreport::config

// The tests' PostgreSQL harness itself (tests/support/pg_server.hpp): each fresh database is a
// new, empty one of its own.
#include "pg_server.hpp"

#include <gtest/gtest.h>

#include <string>

#include "testsupport.hpp"

namespace mailreport::test {
namespace {

TEST(PgServer, FreshDatabasesAreDistinctAndEmpty) {
  std::string a;
  MAILREPORT_REQUIRE_PG(a);
  std::string b;
  MAILREPORT_REQUIRE_PG(b);
  EXPECT_NE(a, b);

  // Empty: no table of ours in either.
  EXPECT_EQ(pg_count_rows(a, "pg_tables", "schemaname = 'public'"), 0);
  EXPECT_EQ(pg_count_rows(b, "pg_tables", "schemaname = 'public'"), 0);

  // Distinct: a table made in one is not in the other.
  ASSERT_EQ(pg_exec(a, "CREATE TABLE t (x integer); INSERT INTO t VALUES (1), (2)"), std::nullopt);
  EXPECT_EQ(pg_count_rows(a, "t"), 2);
  EXPECT_EQ(pg_count_rows(b, "pg_tables", "schemaname = 'public'"), 0);
  EXPECT_NE(pg_exec(b, "SELECT * FROM t"), std::nullopt);
}

TEST(PgServer, ErrorsComeBackAsValues) {
  std::string url;
  MAILREPORT_REQUIRE_PG(url);
  auto error = pg_exec(url, "SELECT * FROM no_such_table");
  ASSERT_TRUE(error.has_value());
  EXPECT_NE(error->find("no_such_table"), std::string::npos) << *error;
}

}  // namespace
}  // namespace mailreport::test

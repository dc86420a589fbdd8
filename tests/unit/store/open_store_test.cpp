// open_configured_store: the [store] of the configuration opened as SQLite (read-only without a
// file: NotFound, nothing created; read-write: the directory made) or PostgreSQL (the pool
// options passed on; read-only does not migrate), and errors that name the store with its
// password masked.
#include <gtest/gtest.h>

#include "mailreport/store/open_store.hpp"
#include "pg_server.hpp"
#include "testsupport.hpp"

namespace mailreport::store {
namespace {

TEST(OpenConfiguredStore, SqliteReadOnlyWithoutAFileIsNotFound) {
  test::TempDir dir;
  config::StoreConfig cfg;
  cfg.path = dir / "sub" / "m.db";
  auto r = open_configured_store(cfg, StoreAccess::ReadOnly);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::NotFound);
  EXPECT_FALSE(std::filesystem::exists(dir / "sub"));
}

TEST(OpenConfiguredStore, SqliteReadWriteCreatesTheStoreThenReadOnlyOpensIt) {
  test::TempDir dir;
  config::StoreConfig cfg;
  cfg.path = dir / "sub" / "m.db";
  {
    auto rw = open_configured_store(cfg, StoreAccess::ReadWrite);
    ASSERT_TRUE(rw) << rw.error().describe();
    EXPECT_TRUE((*rw)->add_suppression("a@example.com", "test", 1));
  }
  EXPECT_TRUE(std::filesystem::exists(cfg.path));
  auto ro = open_configured_store(cfg, StoreAccess::ReadOnly);
  ASSERT_TRUE(ro) << ro.error().describe();
  auto list = (*ro)->list_suppressions();
  ASSERT_TRUE(list);
  EXPECT_EQ(list->size(), 1u);
  EXPECT_FALSE((*ro)->add_suppression("b@example.com", "test", 1));  // read-only
  EXPECT_EQ(describe_store(cfg), "sqlite " + cfg.path.string());
}

TEST(OpenConfiguredStore, UnknownTypeIsUnsupported) {
  config::StoreConfig cfg;
  cfg.type = "mysql";
  auto r = open_configured_store(cfg, StoreAccess::ReadWrite);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::Unsupported);
}

TEST(OpenConfiguredStore, PostgresUnreachableIsNamedWithoutItsPassword) {
  config::StoreConfig cfg;
  cfg.type = "postgresql";
  cfg.url = "postgresql://mailreport:s3cret@127.0.0.1:1/mail?connect_timeout=2";
  auto r = open_configured_store(cfg, StoreAccess::ReadWrite);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message.find("s3cret"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("postgresql postgresql://mailreport:***@127.0.0.1:1/mail"),
            std::string::npos)
      << r.error().message;
  EXPECT_EQ(describe_store(cfg),
            "postgresql postgresql://mailreport:***@127.0.0.1:1/mail?connect_timeout=2");
}

TEST(OpenConfiguredStore, PostgresReadWriteMigratesAndReadOnlyReads) {
  std::string url;
  MAILREPORT_REQUIRE_PG(url);
  config::StoreConfig cfg;
  cfg.type = "postgresql";
  cfg.url = url;
  cfg.pool_size = 2;
  cfg.acquire_timeout = std::chrono::seconds(5);
  // Read-only on an empty database: no migrations, so there is no store to read, and the
  // error says so (as SQLite's does for a missing file).
  auto early = open_configured_store(cfg, StoreAccess::ReadOnly);
  ASSERT_FALSE(early);
  EXPECT_EQ(early.error().code, ErrorCode::NotFound);
  EXPECT_NE(early.error().message.find("no mailreport store in this database"), std::string::npos)
      << early.error().message;
  EXPECT_EQ(test::pg_count_rows(url, "information_schema.tables",
                                "table_schema = current_schema() AND table_name = 'suppressions'"),
            0);
  {
    auto rw = open_configured_store(cfg, StoreAccess::ReadWrite);
    ASSERT_TRUE(rw) << rw.error().describe();
    EXPECT_TRUE((*rw)->add_suppression("a@example.com", "test", 1));
  }
  auto ro = open_configured_store(cfg, StoreAccess::ReadOnly);
  ASSERT_TRUE(ro) << ro.error().describe();
  auto list = (*ro)->list_suppressions();
  ASSERT_TRUE(list) << list.error().describe();
  EXPECT_EQ(list->size(), 1u);
}

}  // namespace
}  // namespace mailreport::store

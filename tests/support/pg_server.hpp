// The tests' PostgreSQL server (issue 8): fresh, empty databases for the store tests.
//
// The server is the one named by $MAILREPORT_TEST_PG_URL (a maintenance database URL, set by
// ctest for the tests that require the `pg` fixture, which starts it with pg-server.sh); when
// that is not set (a test binary run by hand), a private throwaway server is started once per
// process on a free loopback port (initdb -A trust into a temporary directory, fsync off, as
// user postgres when running as root) and stopped and removed at exit — or, should the
// process crash, by a watchdog once it has gone.
//
// Tests that need PostgreSQL call MAILREPORT_REQUIRE_PG(url): it skips with a clear message
// when no server can be had (the binaries are not installed), and fails instead under CI=true,
// where a real server is required. The databases made on the fixture's server are dropped
// when the process exits; the private server goes whole.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace mailreport::test {

// A libpq URL of a new, empty database (mr_t<pid>_<n>) on the tests' server; nullopt, with
// the reason in *why_not, when there is none.
std::optional<std::string> fresh_pg_database(std::string* why_not = nullptr);

// What MAILREPORT_REQUIRE_PG says: the reason, and whether it skips or fails.
std::string pg_missing_message(const std::string& why_not);

// count(*) of `table` (with an optional WHERE condition) in the database at `url`, on a
// connection of its own; -1 (and a test failure) on error.
std::int64_t pg_count_rows(const std::string& url, const std::string& table,
                           const std::string& where = "");

// Runs `sql` (one or more statements) on a connection of its own; the server's error, if any.
std::optional<std::string> pg_exec(const std::string& url, const std::string& sql);

bool running_in_ci();  // testsupport.hpp

}  // namespace mailreport::test

// Sets the std::string `url` to a fresh database, or skips the test (fails under CI=true).
#define MAILREPORT_REQUIRE_PG(url)                                                        \
  do {                                                                                    \
    std::string mailreport_pg_why_;                                                       \
    auto mailreport_pg_url_ = ::mailreport::test::fresh_pg_database(&mailreport_pg_why_); \
    if (!mailreport_pg_url_) {                                                            \
      if (::mailreport::test::running_in_ci()) {                                          \
        FAIL() << ::mailreport::test::pg_missing_message(mailreport_pg_why_);             \
      } else {                                                                            \
        GTEST_SKIP() << ::mailreport::test::pg_missing_message(mailreport_pg_why_);       \
      }                                                                                   \
    }                                                                                     \
    (url) = std::move(*mailreport_pg_url_);                                               \
  } while (0)

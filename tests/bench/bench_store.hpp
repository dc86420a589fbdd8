// The store a benchmark writes to or reads from: a SQLite file, or a PostgreSQL database when
// --pg-url is given (a pool of 2 connections: one writer thread, or a walk and its commits, as
// the milter and serve use them). Prints the error and returns null when it cannot be opened.
#pragma once

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "mailreport/store/pg_store.hpp"
#include "mailreport/store/sqlite_store.hpp"

namespace mailreport::bench {

inline std::unique_ptr<store::Store> open_bench_store(const std::filesystem::path& sqlite_path,
                                                      const std::string& pg_url,
                                                      bool synchronous_full) {
  Result<std::unique_ptr<store::Store>> opened = make_error(ErrorCode::Invalid, "no store");
  if (!pg_url.empty()) {
    store::PgOptions options;
    options.url = pg_url;
    options.pool_size = 2;
    opened = store::open_postgres_store(options);
  } else {
    store::SqliteOptions options;
    options.path = sqlite_path;
    options.synchronous_full = synchronous_full;
    opened = store::open_sqlite_store(options);
  }
  if (!opened) {
    std::fprintf(stderr, "%s\n", opened.error().describe().c_str());
    return nullptr;
  }
  return std::move(*opened);
}

}  // namespace mailreport::bench

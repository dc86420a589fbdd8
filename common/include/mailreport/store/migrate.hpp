// `mailreport migrate --from sqlite:PATH --to postgresql:URL`: moves an existing store into
// PostgreSQL, table by table, ids kept (so report ids, outbox ids and message links stay what
// they were), in one PostgreSQL transaction: a failure leaves the target as it was.
//
// The source is opened (and so migrated) to this build's newest SQLite schema first; the
// target is migrated to the newest PostgreSQL schema and must hold no data (Invalid
// otherwise: a second run must not merge two stores). Afterwards the target's id sequences
// continue after the copied ids.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "mailreport/util/result.hpp"

namespace mailreport::store {

struct MigrateOptions {
  std::filesystem::path sqlite_path;
  std::string postgres_url;
  // Called after each table with its name and the rows copied (progress for the CLI).
  std::function<void(std::string_view table, std::uint64_t rows)> progress;
};

struct MigrateResult {
  std::vector<std::pair<std::string, std::uint64_t>> tables;  // copy order, rows copied
  std::uint64_t rows = 0;
};

Result<MigrateResult> migrate_sqlite_to_postgres(const MigrateOptions& options);

}  // namespace mailreport::store

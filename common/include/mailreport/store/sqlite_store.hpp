// SqliteStore: the Store in one SQLite file (WAL mode), the embedded default for one MX.
//
// - Durability: synchronous=FULL by default, so that a message the LMTP receiver acknowledged
//   survives a power loss (RFC 2033 §4.2: a 250 means the message is ours).
// - Writers from several threads share one connection behind a mutex; BEGIN IMMEDIATE plus a
//   busy timeout serialises them against other processes (the CLI importing while the
//   receiver runs). Readers use a second connection, so they never wait for a long ingest.
// - The schema is versioned (schema_version table); pending migrations are applied in one
//   transaction when the store is opened.
// - Raw messages are deflate-compressed (raw RFC 1951, via zlib) in chunks of at most
//   `chunk_size` compressed bytes, so a large message never sits in memory whole.
//
// Not done: VACUUM after purges (the file keeps its size; pages are reused).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>

#include "mailreport/store/store.hpp"

namespace mailreport::store {

struct SqliteOptions {
  // ":memory:" gives a private in-memory store (tests) with one connection for reads and
  // writes: a thread holding a WriteTransaction must not read from it meanwhile.
  std::filesystem::path path;
  bool synchronous_full = true;  // false: synchronous=NORMAL (a crash keeps the file sound
                                 // but may lose the last commits)
  std::chrono::milliseconds busy_timeout{10000};
  int compression_level = 1;         // zlib deflate level (1..9); 1–3 keep ingest fast
  std::size_t chunk_size = 1 << 20;  // compressed bytes per stored chunk
  bool read_only = false;            // open an existing store for reading only (no migrations)
  // Largest size of the database file in bytes (PRAGMA max_page_count); 0 = no limit. A
  // write that would grow the file beyond it fails like a full disk: ErrorCode::Store, and the
  // message's transaction is rolled back.
  std::uint64_t max_size = 0;
};

// Opens (creating if needed, unless read_only) and migrates the store. Fails with Store when
// the file cannot be opened or migrated. The parent directory must exist.
Result<std::unique_ptr<Store>> open_sqlite_store(const SqliteOptions& options);

// The schema version this build writes (the highest migration).
int sqlite_schema_version() noexcept;

}  // namespace mailreport::store

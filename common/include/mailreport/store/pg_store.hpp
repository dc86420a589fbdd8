// The Store in PostgreSQL (store.type = "postgresql"), for sites with several MX hosts: every
// node's milter, LMTP receiver and `mailreport serve` share one database (issue 8).
//
// - The same store logic as SQLite's (store/sql_*.cpp), over libpq; the schema is SQLite's
//   equivalent (same tables and columns), versioned by its own migrations, applied when the
//   store is opened (under an advisory lock: nodes starting together migrate once).
// - A pool of at most `pool_size` connections, opened as needed: writers and readers of one
//   process run in parallel (SQLite has one writer); a caller waits for a free connection up
//   to `acquire_timeout`, then fails with ErrorCode::Store.
// - Cluster safety: outbox entries are claimed with SELECT ... FOR UPDATE SKIP LOCKED (one
//   claimant per entry, no waiting); an aggregate build is run by one node at a time (a
//   session advisory lock, Store::try_lock_job), and its commit is compare-and-set (a racing
//   builder gets Conflict); failure report rate limits and suppressions are rows, shared.
// - Transactions that fail with a serialization failure or a deadlock are run again (a few
//   times, with a short random pause) where the store holds everything the transaction writes
//   (evaluation batches, TLS batches, outbox transitions, aggregate batches); a streamed
//   WriteTransaction (a received message) fails instead, and its sender retries (LMTP 451).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "mailreport/store/store.hpp"

namespace mailreport::store {

struct PgOptions {
  // A libpq connection URL or keyword/value string: "postgresql://mailreport@db.example/mail"
  // ("postgresql:///mailreport?host=/run/postgresql" for the local socket). A password is best
  // kept out of it (~/.pgpass or PGPASSFILE; store.url-file).
  std::string url;
  // Most connections open at once; 1 is taken as 2 (an aggregate walk holds one connection
  // while its batches commit on another).
  std::size_t pool_size = 8;
  std::chrono::milliseconds acquire_timeout{10000};
  int compression_level = 1;         // zlib deflate level of raw messages (1..9)
  std::size_t chunk_size = 1 << 20;  // compressed bytes per stored chunk
  bool read_only = false;            // no migrations; the schema must be current
};

// Connects, migrates (unless read_only) and returns the store. Fails with Store when the
// server cannot be reached or the schema cannot be migrated, Unsupported when the database's
// schema is newer than this build.
Result<std::unique_ptr<Store>> open_postgres_store(const PgOptions& options);

// The schema version this build writes in PostgreSQL.
int postgres_schema_version() noexcept;

}  // namespace mailreport::store

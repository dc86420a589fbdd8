// Opening the configured store ([store] of the configuration): SQLite (store.path) or
// PostgreSQL (store.url, store.pool-size, store.acquire-timeout), the one way every program
// (mailreport-milter, mailreport-lmtp, the mailreport command) opens it.
#pragma once

#include <memory>
#include <string>

#include "mailreport/config/config.hpp"
#include "mailreport/store/store.hpp"

namespace mailreport::store {

enum class StoreAccess {
  ReadWrite,  // SQLite: creates the file (and its parent directory) when missing; migrates
  ReadOnly,   // SQLite: read_only, NotFound when there is no store yet; PostgreSQL: no
              // migrations (the schema must be current)
};

// Opens and (ReadWrite) migrates the store that `cfg` names. Errors name the store as
// describe_store does (the password masked).
Result<std::unique_ptr<Store>> open_configured_store(const config::StoreConfig& cfg,
                                                     StoreAccess access);

// "sqlite /var/lib/mailreport/mailreport.db" or "postgresql postgresql://u:***@db/mail", for
// log lines and messages.
std::string describe_store(const config::StoreConfig& cfg);

}  // namespace mailreport::store

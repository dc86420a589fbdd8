// open_configured_store: store.type chooses open_sqlite_store or open_postgres_store, with the
// options of [store] (open_store.hpp).
#include "mailreport/store/open_store.hpp"

#include <filesystem>
#include <system_error>

#include "mailreport/store/pg_store.hpp"
#include "mailreport/store/sqlite_store.hpp"

namespace mailreport::store {

namespace {

Result<std::unique_ptr<Store>> open_sqlite(const config::StoreConfig& cfg, StoreAccess access) {
  namespace fs = std::filesystem;
  const fs::path& path = cfg.path;
  std::error_code ec;
  if (access == StoreAccess::ReadOnly) {
    if (!fs::exists(path, ec)) {
      return make_error(ErrorCode::NotFound,
                        "no store at " + path.string() + " (nothing received or imported yet)");
    }
  } else if (path.has_parent_path() && !fs::exists(path.parent_path(), ec)) {
    fs::create_directories(path.parent_path(), ec);
    if (ec) return make_error(ErrorCode::Io, path.parent_path().string() + ": " + ec.message());
  }
  SqliteOptions options;
  options.path = path;
  options.read_only = access == StoreAccess::ReadOnly;
  return open_sqlite_store(options);
}

Result<std::unique_ptr<Store>> open_postgres(const config::StoreConfig& cfg, StoreAccess access) {
  if (cfg.url.empty()) {
    return make_error(ErrorCode::Invalid, "store.type is \"postgresql\" but store.url is empty");
  }
  PgOptions options;
  options.url = cfg.url;
  options.pool_size = cfg.pool_size;
  options.acquire_timeout = cfg.acquire_timeout;
  options.read_only = access == StoreAccess::ReadOnly;
  return open_postgres_store(options);
}

}  // namespace

Result<std::unique_ptr<Store>> open_configured_store(const config::StoreConfig& cfg,
                                                     StoreAccess access) {
  if (cfg.type != "sqlite" && cfg.type != "postgresql") {
    return make_error(ErrorCode::Unsupported, "store.type \"" + cfg.type + "\" is not supported");
  }
  auto opened = cfg.type == "sqlite" ? open_sqlite(cfg, access) : open_postgres(cfg, access);
  if (!opened) {
    Error e = std::move(opened).error();
    // SQLite's NotFound already names the file; the others get the store they were about.
    if (e.code != ErrorCode::NotFound || cfg.type != "sqlite") {
      e.message = describe_store(cfg) + ": " + e.message;
    }
    return e;
  }
  return opened;
}

std::string describe_store(const config::StoreConfig& cfg) {
  if (cfg.type == "postgresql") return "postgresql " + config::mask_url_password(cfg.url);
  return cfg.type + " " + cfg.path.string();
}

}  // namespace mailreport::store

// The PostgreSQL store's connection string in the configuration (store.url, store.url-file):
// its syntax checked by libpq's own parser (PQconninfoParse) when the configuration loads, and
// the reading of the URL file with its permission checks (shared with the other one-line secret
// files: dashboard.token-file).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "mailreport/util/result.hpp"

namespace mailreport::config::detail {

// Why `url` is not a libpq connection string ("postgresql://..." / "postgres://..." URI, or
// "keyword=value ..." pairs), in libpq's words, or nullopt when libpq accepts it.
std::optional<std::string> check_store_url(std::string_view url);

// The URL held by `path`: its text with surrounding white space removed, one line. Refused
// (Invalid) unless it is a regular file that other users cannot read or write (it holds a
// password) and that is not writable by its group.
Result<std::string> read_url_file(const std::filesystem::path& path);

// The same reading and checks for any one-line secret: `what` names it in messages ("URL",
// "token") and `holds` says what it protects ("the store's password").
Result<std::string> read_secret_file(const std::filesystem::path& path, std::string_view what,
                                     std::string_view holds);

}  // namespace mailreport::config::detail

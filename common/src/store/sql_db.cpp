// The statement caches of store::sql::Connection (see sql_db.hpp); the backends are
// sqlite_db.cpp and pg_db.cpp.
#include "store/sql_db.hpp"

namespace mailreport::store::sql {

namespace {

template <class Cache, class Prepare>
Result<Query> cached(Cache& cache, std::string_view sql, Prepare&& prepare) {
  auto it = cache.find(sql);
  if (it == cache.end()) {
    std::string key(sql);
    auto stmt = prepare(key);
    if (!stmt) return std::move(stmt).error();
    it = cache.emplace(std::move(key), std::move(*stmt)).first;
  }
  return Query(*it->second);
}

}  // namespace

Result<Query> Connection::query(std::string_view sql) {
  return cached(cache_, sql, [this](const std::string& s) { return prepare(s); });
}

Result<Query> Connection::query_cursor(std::string_view sql) {
  return cached(cursor_cache_, sql, [this](const std::string& s) { return prepare_cursor(s); });
}

}  // namespace mailreport::store::sql

// RAII owners of libpq's handles, private to the store (pg_db.cpp, migrate.cpp): the two
// places that talk to libpq directly.
#pragma once

#include <libpq-fe.h>

#include <memory>

namespace mailreport::store::sql {

struct PgConnCloser {
  void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
struct PgResultClearer {
  void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using PgConnPtr = std::unique_ptr<PGconn, PgConnCloser>;
using PgResultPtr = std::unique_ptr<PGresult, PgResultClearer>;

}  // namespace mailreport::store::sql

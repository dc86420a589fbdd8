// Private to the store: the pieces of the aggregate-report walks that live beside the tables
// they read (sql_evaluations.cpp, sql_tls.cpp, sql_outbox.cpp), for sql_aggregate.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

#include "mailreport/store/store.hpp"
#include "store/sql_db.hpp"

namespace mailreport::store::sql {

// Steps through the evaluation rows with unreported messages whose hour begins before `end`
// (of `domain` only when not empty), in the order of Store::for_each_unreported_evaluation,
// each with record.row.count = its unreported part; `emit` returning false stops. Reads
// through `db` as it is (the caller provides the snapshot and the lock).
Status read_unreported_evaluations(Connection& db, std::int64_t end, std::string_view domain,
                                   const std::function<bool(EvaluationRow&&)>& emit);

// Queues one outbox entry (state queued, no attempts) and returns its id (sqlite_outbox.cpp).
Result<std::int64_t> insert_outbox(Connection& db, std::string_view kind,
                                   std::string_view recipient, std::string_view reported_domain,
                                   std::int64_t created_at, std::int64_t next_attempt_at,
                                   std::string_view payload);

// The outbox entry sent with this Message-ID (with or without angle brackets), the newest when
// several were; NotFound (sqlite_outbox.cpp).
Result<OutboxEntry> find_outbox_by_message_id(Connection& db, std::string_view message_id);

// The TLS counts of days before `end` with unreported sessions, in the order of
// Store::for_each_unreported_tls, counts being the unreported parts (sqlite_tls.cpp).
Status read_unreported_tls(Connection& db, std::int64_t end, std::string_view domain,
                           const std::function<bool(TlsPolicyCount&&)>& emit);

}  // namespace mailreport::store::sql

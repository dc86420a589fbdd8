// outbound/outbox_runner: mailreport serve's outbox pass. Claims due entries from the store,
// builds each report from its payload (failure_report.hpp), signs it with report.<kind>.sign
// (signer.hpp), submits it (submit.hpp) and records the outcome: sent (with its Message-ID),
// retried with backoff on a temporary failure (1 min doubling to 1 h, until
// report.submit.max-age after it was queued), failed for good on a permanent failure or a
// payload that cannot be built. Nothing is lost: a crash between claim and outcome leaves the
// entry queued, and the claim's lease expires.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>

#include "mailreport/config/config.hpp"
#include "mailreport/outbound/signer.hpp"
#include "mailreport/outbound/submit.hpp"
#include "mailreport/store/store.hpp"
#include "mailreport/util/log.hpp"

namespace mailreport::outbound {

struct OutboxPassStats {
  std::uint64_t sent = 0;
  std::uint64_t retried = 0;
  std::uint64_t failed = 0;
};

class OutboxRunner {
 public:
  // All references must outlive the runner.
  OutboxRunner(std::shared_ptr<const config::Config> config, store::Store& store,
               const Signers& signers, Submitter& submitter, Logger& log);
  // One pass: everything due at `now`, in claims of up to `batch` entries.
  OutboxPassStats run_once(std::int64_t now, std::size_t batch = 100);
  // When set, run_once stops after the entry it is working on once `*stop` is true (SIGTERM in
  // mailreport serve); entries claimed but not started wait for their lease to run out.
  void set_stop_flag(const std::atomic<bool>* stop) noexcept { stop_ = stop; }

 private:
  std::shared_ptr<const config::Config> config_;
  store::Store& store_;
  const Signers& signers_;
  Submitter& submitter_;
  Logger& log_;
  const std::atomic<bool>* stop_ = nullptr;
};

}  // namespace mailreport::outbound

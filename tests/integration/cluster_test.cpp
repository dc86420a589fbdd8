// Several nodes sharing one PostgreSQL database (issue 8): each report is built and sent once per
// cluster, also when a node is killed mid-run. Everything runs as real processes on one machine:
//
// Cluster.ThreeNodesSendEachReportOnceThoughOneIsKilled
//   1. A fresh database; three recorder processes (this binary, re-run as a child: see
//      ClusterChild below) record, at once, DMARC evaluations with rua= for 240 policy domains
//      in two past hours (each process its own source IP and one shared one, so that all three
//      add to the same aggregated rows; in different domain orders).
//   2. Three nodes: three `mailreport serve` processes (the built CLI), each with its own
//      configuration file and its own fake sendmail and output directory, all on store.type =
//      "postgresql" and the same store.url; hourly reports, no spread, the outbox every second.
//      Meanwhile three more recorder processes queue 60 DMARC failure reports (ruf=, no rua=).
//   3. Node 0's fake sendmail accepts two messages, then blocks on the third before accepting
//      it (its copy stays tmp.*, not msg.*). The test then SIGKILLs node 0's whole process
//      group: it dies holding claimed outbox entries (a claim takes up to 10) whose lease runs
//      10 × (report.submit.timeout + 10 s) = 700 s here.
//   4. The other two nodes send everything else; the test checks that node 0's claims stay
//      untouched while leased (queued, no attempt recorded, stable for 3 s with both nodes
//      idle). There is no configuration key for the lease (it is OutboxRunner's
//      batch × (timeout + 10 s), at least 110 s), so instead of waiting it out the test ends
//      it the way the clock would: it moves exactly those entries' next_attempt_at to now
//      (nothing else in the database changes, and no live node holds a claim then). The two
//      nodes take them over.
//   5. Nothing queued: SIGTERM to both (exit 0). Then: every expected DMARC aggregate report
//      (one per policy domain and hour: 480) is in the store once (list_aggregate_reports),
//      with the 6 messages recorded for it, and was delivered exactly once across the three
//      output directories (matched by its report id, parsed back from the gzip attachment);
//      every failure report was delivered exactly once (matched by its unique recipient and by
//      the Message-ID the store recorded); no outbox entry is queued or failed; node 0's
//      claimed entries were delivered by node 1 or 2.
//
// Which duplicates are impossible by construction:
//   - building a report twice: builders of a kind take a cluster-wide advisory lock, and each
//     batch commits compare-and-set on the kind's watermark and on the "reported" counts it
//     read (a racing builder gets Conflict and commits nothing); a builder killed before its
//     commit leaves everything unreported, after it nothing is rebuilt.
//   - two nodes sending one entry at once: claims are SELECT ... FOR UPDATE SKIP LOCKED with a
//     lease; an entry is claimable again only after the lease, and its outcome is recorded
//     only while it is queued (a late second outcome gets NotFound).
//   - resending what was recorded as sent: a sent entry is never claimed again.
// The one window that is not closed, and cannot be without the MTA's help: a node killed
// after its MTA accepted a message but before it recorded "sent" leaves the entry queued; once
// the lease ends another node sends it again. That can only ever cause a resend of that one
// message (never a missing report), at most one per entry a dead node had in flight (a node
// sends one message at a time). The test keeps it apart from the guarantees above: node 0
// blocks *before* its fake MTA accepts the in-flight message, so the exactly-once assertions
// hold (and the in-flight message is the only unaccepted copy, tmp.*, anywhere). It measures
// the window in a variant:
// Cluster.AKilledNodesMessageTheMtaAcceptedIsTheOnlyOneSentTwice: the same run, but node 0's
//   fake MTA accepts the third message before it blocks. Everything is as above except that
//   this one report went out twice (node 0's copy, whose Message-ID the store never recorded,
//   and the other node's, whose it did) — and nothing else did.
//
// Cluster.ThreeProcessesClaimingAtOnceNeverShareAnEntry: three processes claim one outbox at
// the same moment, in small batches, until it is empty: every entry is claimed by exactly one.
// Cluster.AJobLockEndsWithItsHoldersDeath: a process holding an aggregate build's job lock is
// SIGKILLed (a node dying mid-build): the lock is free again at once, not after a timeout.
//
// PostgreSQL comes from tests/support/pg_server.hpp (the ctest fixture `pg`, or a private
// server); without one the tests skip (fail under CI=true). About 15 s per cluster run.
// Not covered here: a node killed while it builds (holding the build lock with its batches
// half committed); the lock's release is Cluster.AJobLockEndsWithItsHoldersDeath, the
// compare-and-set commits are the store tests'.
#include <fcntl.h>
#include <signal.h>
#include <strings.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "child_process.hpp"
#include "mailreport/report/extract.hpp"
#include "mailreport/report/sink.hpp"
#include "mailreport/store/aggregate_payload.hpp"
#include "mailreport/store/pg_store.hpp"
#include "pg_server.hpp"
#include "process_util.hpp"
#include "sample_evaluation.hpp"
#include "testsupport.hpp"

namespace mailreport {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int kDomains = 240;
constexpr int kRecorders = 3;
constexpr int kFailuresPerRecorder = 20;
constexpr int kNodes = 3;
constexpr int kVictim = 0;
constexpr int kVictimAccepts = 2;  // node 0 blocks on the message after these
constexpr std::int64_t kHour = 3600;

// The child processes' instructions (ClusterChild.DISABLED_Run reads them).
constexpr const char* kJobEnv = "MAILREPORT_CLUSTER_JOB";
constexpr const char* kUrlEnv = "MAILREPORT_CLUSTER_URL";
constexpr const char* kDirEnv = "MAILREPORT_CLUSTER_DIR";
constexpr const char* kIndexEnv = "MAILREPORT_CLUSTER_INDEX";
constexpr const char* kTimeEnv = "MAILREPORT_CLUSTER_TIME";

std::int64_t now_seconds() {
  return std::chrono::duration_cast<seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string domain_name(int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "d%03d.example.com", i);
  return buf;
}

std::string failure_recipient(int recorder, int n) {
  return "ruf@f" + std::to_string(recorder) + "-" + std::to_string(n) + ".example.net";
}

Result<std::unique_ptr<store::Store>> open_pg(const std::string& url) {
  store::PgOptions o;
  o.url = url;
  o.pool_size = 4;
  return store::open_postgres_store(o);
}

// ---------------------------------------------------------------- processes

// A process in a process group of its own (so that it and whatever it started — a node's
// sendmail — go together), its output appended to a log; null (and a test failure) when it
// cannot be started.
using Proc = test::ChildProcess;
std::unique_ptr<Proc> spawn(const std::vector<std::string>& args,
                            const std::vector<std::string>& extra_env, const fs::path& log) {
  auto started = Proc::start(args, log, test::ChildOptions{extra_env, true});
  if (!started) {
    ADD_FAILURE() << started.error().message;
    return nullptr;
  }
  return std::make_unique<Proc>(std::move(*started));
}

// This test binary, run again as a child that does one job (ClusterChild.DISABLED_Run).
std::unique_ptr<Proc> start_child(const std::string& job, int index, const std::string& url,
                                  const fs::path& dir, std::int64_t time = 0) {
  return spawn({fs::read_symlink("/proc/self/exe").string(),
                "--gtest_filter=ClusterChild.DISABLED_Run", "--gtest_also_run_disabled_tests"},
               {std::string(kJobEnv) + "=" + job, std::string(kUrlEnv) + "=" + url,
                std::string(kDirEnv) + "=" + dir.string(),
                std::string(kIndexEnv) + "=" + std::to_string(index),
                std::string(kTimeEnv) + "=" + std::to_string(time)},
               dir / (job + "." + std::to_string(index) + ".log"));
}

// Waits until `pred` holds, polling every 100 ms, up to `limit`.
template <class Pred>
bool wait_until(Pred pred, milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(milliseconds(100));
  }
}

// Lets the children in `dir` go at once: waits until each has written ready.<i> (its store
// open), then creates `go`, which they wait for.
void start_together(const fs::path& dir, int n, std::vector<std::unique_ptr<Proc>>& children) {
  const bool ready = wait_until(
      [&] {
        for (int i = 0; i < n; ++i) {
          if (!fs::exists(dir / ("ready." + std::to_string(i)))) return false;
        }
        return true;
      },
      seconds(60));
  std::ofstream(dir / "go") << "go\n";
  if (!ready) {
    for (auto& c : children) ADD_FAILURE() << test::read_file(c->log());
  }
  ASSERT_TRUE(ready) << "children not ready";
}

void expect_exit_zero(std::vector<std::unique_ptr<Proc>>& children, milliseconds limit) {
  for (auto& c : children) {
    ASSERT_TRUE(c);
    const int code = c->wait(limit);
    EXPECT_EQ(code, 0) << c->log() << ":\n" << test::read_file(c->log());
  }
}

// ---------------------------------------------------------------- the child processes

// In a child: signals readiness and waits for the go.
void child_barrier(const fs::path& dir, int index) {
  std::ofstream(dir / ("ready." + std::to_string(index))) << "ready\n";
  for (int i = 0; i < 6000 && !fs::exists(dir / "go"); ++i) {
    std::this_thread::sleep_for(milliseconds(5));
  }
}

// record-aggregate: for both hours and every domain (an order of its own), one message from
// its own source IP and one from the IP all recorders share; batches of 60.
void record_aggregate(store::Store& s, int index, std::int64_t first_hour) {
  std::vector<int> order(kDomains);
  for (int i = 0; i < kDomains; ++i) order[i] = (i + index * kDomains / kRecorders) % kDomains;
  if (index % 2 == 1) std::reverse(order.begin(), order.end());
  std::vector<auth::Evaluation> batch;
  auto flush = [&] {
    auto r = s.record_evaluations_counted(batch);
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_EQ(r->rows, batch.size());
    batch.clear();
  };
  for (std::int64_t hour : {first_hour, first_hour + kHour}) {
    for (int d : order) {
      const std::string domain = domain_name(d);
      batch.push_back(test::sample_evaluation(hour + 60 * index + 1,
                                              "192.0.2." + std::to_string(index + 1), domain));
      batch.push_back(test::sample_evaluation(hour + 600 + index, "198.51.100.1", domain));
      if (batch.size() >= 60) {
        flush();
        if (::testing::Test::HasFatalFailure()) return;
      }
    }
  }
  if (!batch.empty()) flush();
}

// record-failures: one failure report at a time, as a milter's writer would while the nodes run.
void record_failures(store::Store& s, int index) {
  for (int n = 0; n < kFailuresPerRecorder; ++n) {
    const std::string rcpt = failure_recipient(index, n);
    std::vector<auth::Evaluation> one{test::failing_evaluation(
        now_seconds(), rcpt, rcpt.substr(rcpt.find('@') + 1), "203.0.113.9", "<m-" + rcpt + ">")};
    auto r = s.record_evaluations_counted(one);
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_EQ(r->reports_queued, 1u);
    EXPECT_EQ(r->rows, 0u);
    std::this_thread::sleep_for(milliseconds(50));
  }
}

// claim: claims in batches of 7 (all at the same `now`, lease 600 s) until nothing is left;
// writes the ids it got to claimed.<index>.
void claim_all(store::Store& s, int index, std::int64_t now, const fs::path& dir) {
  std::ofstream out(dir / ("claimed." + std::to_string(index)));
  for (;;) {
    auto c = s.claim_outbox(now, 7, 600);
    ASSERT_TRUE(c) << c.error().describe();
    if (c->empty()) break;
    for (const auto& e : *c) out << e.id << "\n";
    out.flush();
  }
}

// The child's job, from its environment; only ever run by the tests below.
TEST(ClusterChild, DISABLED_Run) {
  const char* job = std::getenv(kJobEnv);
  const char* url = std::getenv(kUrlEnv);
  const char* dir = std::getenv(kDirEnv);
  ASSERT_TRUE(job && url && dir) << "run by the Cluster tests only";
  const int index = std::atoi(std::getenv(kIndexEnv));
  const std::int64_t time = std::atoll(std::getenv(kTimeEnv));
  auto s = open_pg(url);
  ASSERT_TRUE(s) << s.error().describe();
  const std::string j = job;
  if (j == "hold-lock") {
    auto lock = (*s)->try_lock_job("aggregate-dmarc");
    ASSERT_TRUE(lock) << lock.error().describe();
    ASSERT_TRUE(*lock) << "the lock is taken";
    std::ofstream(fs::path(dir) / ("ready." + std::to_string(index))) << "locked\n";
    std::this_thread::sleep_for(seconds(600));  // until killed
    return;
  }
  child_barrier(dir, index);
  if (j == "record-aggregate") {
    record_aggregate(**s, index, time);
  } else if (j == "record-failures") {
    record_failures(**s, index);
  } else if (j == "claim") {
    claim_all(**s, index, time, dir);
  } else {
    FAIL() << "unknown job " << j;
  }
}

// ---------------------------------------------------------------- what the nodes delivered

// One message a fake sendmail took: its argv line and the message.
struct Delivery {
  int node = -1;
  fs::path file;
  std::string recipient;   // the last argv word
  std::string message_id;  // the Message-ID header field's value
  std::string report_id;   // DMARC aggregate: the report's id, parsed back
  std::string policy_domain;
  std::int64_t date_begin = 0;
  std::uint64_t messages = 0;
};

std::string header_value(const std::string& text, std::string_view name) {
  const auto end = text.find("\n\n");
  const std::string head = text.substr(0, end);
  std::size_t pos = 0;
  while (pos < head.size()) {
    std::size_t nl = head.find('\n', pos);
    if (nl == std::string::npos) nl = head.size();
    const std::string line = head.substr(pos, nl - pos);
    if (line.size() > name.size() && line[name.size()] == ':' &&
        strncasecmp(line.data(), name.data(), name.size()) == 0) {
      std::string v = line.substr(name.size() + 1);
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.erase(0, 1);
      while (!v.empty() && (v.back() == '\r' || v.back() == ' ')) v.pop_back();
      return v;
    }
    pos = nl + 1;
  }
  return {};
}

// A fake sendmail's file: "ARGV: <args>\n" then the message.
Delivery parse_delivery(int node, const fs::path& file) {
  Delivery d;
  d.node = node;
  d.file = file;
  const std::string text = test::read_file(file);
  const auto nl = text.find('\n');
  const std::string argv = text.substr(0, nl);
  const std::string message = nl == std::string::npos ? "" : text.substr(nl + 1);
  d.recipient = argv.substr(argv.rfind(' ') + 1);
  d.message_id = header_value(message, "Message-ID");
  if (message.find("Feedback-Type: auth-failure") != std::string::npos) return d;
  report::CollectingSink sink;
  auto got = report::extract_reports(Input::from_memory(message, file.string()), sink);
  EXPECT_TRUE(got) << file << ": " << (got ? "" : got.error().message);
  for (auto& r : sink.reports()) {
    auto* agg = std::get_if<report::DmarcAggregate>(&r);
    if (agg == nullptr) {
      ADD_FAILURE() << file << ": neither a failure nor a DMARC aggregate report";
      continue;
    }
    d.report_id = agg->header.report_metadata.report_id;
    d.policy_domain = agg->header.policy_published.domain;
    d.date_begin = agg->header.report_metadata.date_range.begin;
    for (const auto& rec : agg->records) d.messages += rec.row.count;
  }
  return d;
}

std::vector<fs::path> files_starting(const fs::path& dir, std::string_view prefix) {
  std::vector<fs::path> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().rfind(prefix, 0) == 0) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// ---------------------------------------------------------------- the tests

class Cluster : public ::testing::Test {
 protected:
  void SetUp() override { MAILREPORT_REQUIRE_PG(url_); }

  std::unique_ptr<store::Store> open() {
    auto s = open_pg(url_);
    EXPECT_TRUE(s) << s.error().describe();
    return s ? std::move(*s) : nullptr;
  }

  std::vector<store::OutboxEntry> outbox(store::Store& s, bool with_payload = false) {
    store::OutboxFilter f;
    f.with_payload = with_payload;
    auto l = s.list_outbox(f);
    EXPECT_TRUE(l) << l.error().describe();
    return l ? std::move(*l) : std::vector<store::OutboxEntry>{};
  }

  fs::path node_dir(int node) const { return dir_ / ("node" + std::to_string(node)); }

  // A node's fake sendmail: writes "ARGV: ..." and the message to tmp.XXXXXX, then accepts it
  // by renaming it to msg.XXXXXX (exit 0). With `block_after`, once that many messages are
  // accepted it writes the next one's file name to `blocked` and sleeps until killed: before
  // accepting that message, or, with `accept_then_block`, after (the MTA has it, the node has
  // not heard so).
  void write_node(int node, std::optional<int> block_after, bool accept_then_block = false) {
    const fs::path d = node_dir(node);
    fs::create_directories(d);
    std::ostringstream sh;
    sh << "#!/bin/sh\nd='" << d.string() << "'\n"
       << "f=$(mktemp \"$d/tmp.XXXXXX\") || exit 75\n"
       << "{ printf 'ARGV:'; printf ' %s' \"$@\"; echo; cat; } > \"$f\" || exit 75\n";
    if (block_after) {
      sh << "n=$(ls \"$d\" | grep -c '^msg\\.')\n"
         << "if [ ! -e \"$d/blocked\" ] && [ \"$n\" -ge " << *block_after << " ]; then\n";
      if (accept_then_block) {
        sh << "  m=\"$d/msg.${f##*.}\"\n  mv \"$f\" \"$m\"\n  echo \"$m\" > \"$d/blocked\"\n";
      } else {
        sh << "  echo \"$f\" > \"$d/blocked\"\n";
      }
      sh << "  exec sleep 3600\nfi\n";
    }
    sh << "mv \"$f\" \"$d/msg.${f##*.}\"\nexit 0\n";
    std::ofstream(d / "sendmail") << sh.str();
    fs::permissions(d / "sendmail", fs::perms::owner_all);

    std::ostringstream dns;
    for (int i = 0; i < kDomains; ++i) {
      const std::string name = domain_name(i);
      dns << (i ? ",\n  " : "  ") << "'_dmarc." << name << ". 300 IN TXT \"v=DMARC1; p=reject; "
          << "rua=mailto:dmarc@" << name << "\"'";
    }
    std::ofstream(d / "mailreport.toml")
        << "[report]\ndomain = \"ours.example\"\nsubmitter = \"mx.ours.example\"\n"
        << "submit.sendmail-path = \"" << (d / "sendmail").string()
        << "\"\n"
        // The lease of a claim is 10 × (timeout + 10 s).
        << "submit.timeout = \"60s\"\n"
        << "dmarc.aggregate.send = \"hourly\"\ndmarc.aggregate.spread = 0\n"
        << "tls.aggregate.send = false\n"
        << "[store]\ntype = \"postgresql\"\nurl = \"" << url_ << "\"\npool-size = 4\n"
        << "[serve]\noutbox-interval = \"1s\"\n"
        << "[tlsrpt]\nlisten = \"\"\n"
        // Names without local data are NXDOMAIN; every policy domain publishes its record, and
        // reports to its own domain need no external verification.
        << "[dns]\nlocal-only = true\nlocal-nxdomain = [\"com\", \"net\"]\nlocal-data = [\n"
        << dns.str() << "\n]\n";
  }

  std::unique_ptr<Proc> start_node(int node) {
    return spawn(
        {test::cli_binary().string(), "-c", (node_dir(node) / "mailreport.toml").string(), "serve"},
        {}, node_dir(node) / "serve.log");
  }

  std::string logs() const {
    std::string all;
    for (int n = 0; n < kNodes; ++n) {
      std::string log = test::read_file(node_dir(n) / "serve.log");
      if (log.size() > 4000) log = "..." + log.substr(log.size() - 4000);
      all += "---- node " + std::to_string(n) + ":\n" + log;
    }
    return all;
  }

  // The cluster run described at the top; `accepted` is the variant where node 0's MTA has
  // accepted the message in flight when node 0 dies.
  void run_cluster(bool accepted);

  std::string url_;
  test::TempDir dir_;
};

TEST_F(Cluster, ThreeNodesSendEachReportOnceThoughOneIsKilled) {
  run_cluster(false);
}

TEST_F(Cluster, AKilledNodesMessageTheMtaAcceptedIsTheOnlyOneSentTwice) {
  run_cluster(true);
}

void Cluster::run_cluster(bool accepted) {
  auto s = open();  // migrates the schema once, before the others
  ASSERT_TRUE(s);
  const std::int64_t now = now_seconds();
  const std::int64_t first_hour = now - now % kHour - 3 * kHour;

  // 1. Three processes record the aggregate data at once.
  {
    const fs::path d = dir_ / "record-aggregate";
    fs::create_directories(d);
    std::vector<std::unique_ptr<Proc>> recorders;
    for (int i = 0; i < kRecorders; ++i) {
      recorders.push_back(start_child("record-aggregate", i, url_, d, first_hour));
      ASSERT_TRUE(recorders.back());
    }
    start_together(d, kRecorders, recorders);
    expect_exit_zero(recorders, seconds(180));
  }
  {
    auto rows = s->list_evaluations({});
    ASSERT_TRUE(rows) << rows.error().describe();
    std::uint64_t messages = 0;
    for (const auto& r : *rows) messages += r.record.row.count;
    // Per domain and hour: each recorder's own IP, and the shared one (3 messages).
    EXPECT_EQ(rows->size(), static_cast<std::size_t>(kDomains * 2 * (kRecorders + 1)));
    EXPECT_EQ(messages, static_cast<std::uint64_t>(kDomains * 2 * kRecorders * 2));
  }
  if (HasFailure()) return;

  // 2. Three nodes; node 0 blocks on its third message. Failure reports arrive meanwhile.
  std::vector<std::unique_ptr<Proc>> nodes;
  for (int n = 0; n < kNodes; ++n) {
    write_node(n, n == kVictim ? std::optional<int>(kVictimAccepts) : std::nullopt, accepted);
  }
  for (int n = 0; n < kNodes; ++n) {
    nodes.push_back(start_node(n));
    ASSERT_TRUE(nodes.back());
    if (n == kVictim) {
      // Node 0 first (up to its loop), so that it has its share of the work however slowly
      // processes start (under the sanitizers).
      ASSERT_TRUE(wait_until(
          [&] {
            return test::read_file(nodes[n]->log()).find("sending the outbox every") !=
                       std::string::npos ||
                   !nodes[n]->running();
          },
          seconds(60)))
          << logs();
      ASSERT_TRUE(nodes[n]->running()) << logs();
    }
  }
  const fs::path fd = dir_ / "record-failures";
  fs::create_directories(fd);
  std::vector<std::unique_ptr<Proc>> failure_recorders;
  for (int i = 0; i < kRecorders; ++i) {
    failure_recorders.push_back(start_child("record-failures", i, url_, fd));
    ASSERT_TRUE(failure_recorders.back());
  }
  start_together(fd, kRecorders, failure_recorders);

  // 3. Node 0 is blocked in its sendmail, holding claims: SIGKILL to its process group.
  const fs::path blocked = node_dir(kVictim) / "blocked";
  ASSERT_TRUE(
      wait_until([&] { return fs::exists(blocked) && fs::file_size(blocked) > 0; }, seconds(120)))
      << logs();
  nodes[kVictim]->signal(SIGKILL);
  EXPECT_EQ(nodes[kVictim]->wait(seconds(10)), 128 + SIGKILL);
  std::string in_flight_file = test::read_file(blocked);
  while (!in_flight_file.empty() && in_flight_file.back() == '\n') in_flight_file.pop_back();
  const Delivery in_flight = parse_delivery(kVictim, in_flight_file);
  expect_exit_zero(failure_recorders, seconds(60));

  // 4. The others send everything but node 0's claims, which stay untouched while leased.
  const std::size_t expected_entries = kDomains * 2 + kRecorders * kFailuresPerRecorder;
  std::vector<store::OutboxEntry> leased;
  auto settled = [&](std::vector<store::OutboxEntry>& out) {
    out.clear();
    auto entries = outbox(*s, true);
    if (entries.size() < expected_entries) return false;
    const std::int64_t t = now_seconds();
    for (const auto& e : entries) {
      if (e.state == store::OutboxState::Sent) continue;
      // Claimed by node 0: queued, never attempted, due only after the lease.
      if (e.state != store::OutboxState::Queued || e.attempts != 0 || e.next_attempt_at <= t + 30) {
        return false;
      }
      out.push_back(e);
    }
    return true;
  };
  std::vector<std::int64_t> leased_ids;
  const bool idle = wait_until(
      [&] {
        std::vector<store::OutboxEntry> first, second;
        if (!settled(first)) return false;
        std::this_thread::sleep_for(seconds(3));
        if (!settled(second)) return false;
        auto ids = [](const std::vector<store::OutboxEntry>& v) {
          std::vector<std::int64_t> out;
          for (const auto& e : v) out.push_back(e.id);
          return out;
        };
        if (ids(first) != ids(second)) return false;
        leased = second;
        leased_ids = ids(second);
        return true;
      },
      seconds(240));
  ASSERT_TRUE(idle) << "the other nodes did not finish what they could send\n" << logs();
  ASSERT_GE(leased.size(), 1u);   // at least the in-flight one
  ASSERT_LE(leased.size(), 10u);  // one claim's batch (serve's kBatch)
  for (const auto& e : leased) EXPECT_TRUE(e.last_error.empty()) << e.last_error;
  // End the lease as the clock would: those entries, and nothing else, become due now.
  {
    std::string ids;
    for (auto id : leased_ids) ids += (ids.empty() ? "" : ",") + std::to_string(id);
    auto err =
        test::pg_exec(url_, "UPDATE outbox SET next_attempt_at = " + std::to_string(now_seconds()) +
                                " WHERE state = 'queued' "
                                "AND attempts = 0 AND id IN (" +
                                ids + ")");
    ASSERT_FALSE(err) << *err;
  }
  ASSERT_TRUE(wait_until(
      [&] {
        for (const auto& e : outbox(*s)) {
          if (e.state == store::OutboxState::Queued) return false;
        }
        return true;
      },
      seconds(120)))
      << "node 0's claims were not taken over\n"
      << logs();

  // 5. Stop the others.
  for (int n = 0; n < kNodes; ++n) {
    if (n == kVictim) continue;
    nodes[n]->signal(SIGTERM);
    EXPECT_EQ(nodes[n]->wait(seconds(30)), 0) << logs();
  }

  // ---- the store: every expected report once, every entry sent.
  auto reports = s->list_aggregate_reports({});
  ASSERT_TRUE(reports) << reports.error().describe();
  std::map<std::pair<std::string, std::int64_t>, int> built;
  std::map<std::int64_t, store::AggregateReport> report_by_id;
  std::map<std::string, std::int64_t> report_by_report_id;
  for (const auto& r : *reports) {
    EXPECT_EQ(r.kind, store::kDmarcAggregateKind);
    ++built[{r.policy_domain, r.date_begin}];
    EXPECT_EQ(r.messages, static_cast<std::uint64_t>(kRecorders * 2)) << r.policy_domain;
    report_by_id[r.id] = r;
    EXPECT_TRUE(report_by_report_id.emplace(r.report_id, r.id).second) << r.report_id;
  }
  EXPECT_EQ(reports->size(), static_cast<std::size_t>(kDomains * 2));
  for (int i = 0; i < kDomains; ++i) {
    for (std::int64_t h : {first_hour, first_hour + kHour}) {
      EXPECT_EQ((built[{domain_name(i), h}]), 1) << domain_name(i) << " " << h;
    }
  }
  const auto entries = outbox(*s);
  EXPECT_EQ(entries.size(), expected_entries);
  std::map<std::string, const store::OutboxEntry*> failure_by_recipient;
  for (const auto& e : entries) {
    EXPECT_EQ(e.state, store::OutboxState::Sent)
        << e.id << " " << e.kind << " " << e.recipient << ": " << e.last_error;
    if (e.kind == "dmarc-failure") failure_by_recipient[e.recipient] = &e;
  }
  EXPECT_EQ(failure_by_recipient.size(),
            static_cast<std::size_t>(kRecorders * kFailuresPerRecorder));

  // ---- the deliveries: each report exactly once across the nodes (but the one node 0's MTA
  // accepted before node 0 died, in the variant that lets it).
  const std::string in_flight_key =
      in_flight.report_id.empty() ? in_flight.recipient : in_flight.report_id;
  auto times_expected = [&](const std::string& key) -> std::size_t {
    return accepted && key == in_flight_key ? 2 : 1;
  };
  std::map<std::string, std::vector<Delivery>> aggregate_deliveries;  // by report id
  std::map<std::string, std::vector<Delivery>> failure_deliveries;    // by recipient
  std::size_t by_node[kNodes] = {0, 0, 0};
  for (int n = 0; n < kNodes; ++n) {
    for (const auto& f : files_starting(node_dir(n), "msg.")) {
      Delivery d = parse_delivery(n, f);
      ++by_node[n];
      if (!d.report_id.empty()) {
        EXPECT_EQ(d.messages, static_cast<std::uint64_t>(kRecorders * 2)) << f;
        EXPECT_EQ(d.recipient, "dmarc@" + d.policy_domain) << f;
        aggregate_deliveries[d.report_id].push_back(std::move(d));
      } else {
        failure_deliveries[d.recipient].push_back(std::move(d));
      }
    }
  }
  std::cout << "delivered by node: " << by_node[0] << ", " << by_node[1] << ", " << by_node[2]
            << "; node 0 died holding " << leased.size() << " claimed entries, sending "
            << (in_flight.report_id.empty() ? "a failure report to " + in_flight.recipient
                                            : "aggregate report " + in_flight.report_id)
            << "\n";
  EXPECT_EQ(by_node[kVictim], static_cast<std::size_t>(kVictimAccepts + (accepted ? 1 : 0)));
  EXPECT_GT(by_node[1], 0u);
  EXPECT_GT(by_node[2], 0u);
  EXPECT_EQ(aggregate_deliveries.size(), reports->size());
  for (const auto& [report_id, list] : aggregate_deliveries) {
    EXPECT_TRUE(report_by_report_id.count(report_id)) << "not a stored report: " << report_id;
    EXPECT_EQ(list.size(), times_expected(report_id))
        << "report " << report_id << " delivered " << list.size() << " times";
  }
  EXPECT_EQ(failure_deliveries.size(), failure_by_recipient.size());
  for (const auto& [recipient, list] : failure_deliveries) {
    EXPECT_EQ(list.size(), times_expected(recipient))
        << "failure report to " << recipient << " delivered " << list.size() << " times";
    EXPECT_EQ(failure_by_recipient.count(recipient), 1u) << recipient;
  }

  // ---- node 0's claims were done by the others, once; the in-flight one among them.
  // An entry's delivery: its report's (aggregate) or its recipient's (failure).
  // The delivery of the copy sent by another node, when there is exactly one.
  auto delivery_of = [&](const store::OutboxEntry& e) -> const Delivery* {
    const std::vector<Delivery>* list = nullptr;
    if (e.kind == store::kDmarcAggregateKind) {
      auto p = store::aggregate_payload_from_json(e.payload);
      if (!p) return nullptr;
      auto r = report_by_id.find(p->report);
      if (r == report_by_id.end()) return nullptr;
      auto it = aggregate_deliveries.find(r->second.report_id);
      if (it != aggregate_deliveries.end()) list = &it->second;
    } else {
      auto it = failure_deliveries.find(e.recipient);
      if (it != failure_deliveries.end()) list = &it->second;
    }
    if (list == nullptr) return nullptr;
    const Delivery* found = nullptr;
    for (const auto& d : *list) {
      if (d.node == kVictim) continue;
      if (found != nullptr) return nullptr;
      found = &d;
    }
    return found;
  };
  bool in_flight_was_claimed = false;
  for (const auto& e : leased) {
    const Delivery* d = delivery_of(e);
    ASSERT_NE(d, nullptr) << "node 0's entry " << e.id << " not delivered once by another node";
    if (in_flight.report_id.empty() ? d->recipient == in_flight.recipient
                                    : d->report_id == in_flight.report_id) {
      in_flight_was_claimed = true;
    }
  }
  EXPECT_TRUE(in_flight_was_claimed) << "the message node 0 was sending is not among its claims";
  // Every sent entry's Message-ID is that of exactly one delivered copy (the Message-ID the
  // store recorded is that of the copy delivered).
  std::map<std::string, int> delivered_ids;
  for (const auto& [id, list] : aggregate_deliveries) {
    for (const auto& d : list) ++delivered_ids[d.message_id];
  }
  for (const auto& [rcpt, list] : failure_deliveries) {
    for (const auto& d : list) ++delivered_ids[d.message_id];
  }
  for (const auto& e : entries) {
    const std::string id = !e.message_id.empty() && e.message_id.front() == '<'
                               ? e.message_id
                               : "<" + e.message_id + ">";
    EXPECT_EQ(delivered_ids[id], 1) << "entry " << e.id << " (" << e.message_id << ")";
    // Node 0's in-flight copy was never recorded as sent.
    EXPECT_NE(id, in_flight.message_id) << "entry " << e.id;
  }

  // ---- the window that only a resend can come from, measured. Not accepted: the one message
  // node 0 had in flight is the only copy any fake MTA had not accepted, and another node
  // delivered it once. Accepted: that message, and nothing else, went out twice (above).
  std::vector<fs::path> unaccepted;
  for (int n = 0; n < kNodes; ++n) {
    for (auto& f : files_starting(node_dir(n), "tmp.")) unaccepted.push_back(f);
  }
  if (accepted) {
    EXPECT_TRUE(unaccepted.empty());
    EXPECT_EQ(fs::path(in_flight_file).filename().string().rfind("msg.", 0), 0u);
  } else {
    ASSERT_EQ(unaccepted.size(), 1u);
    EXPECT_EQ(unaccepted[0], fs::path(in_flight_file));
  }
}

TEST_F(Cluster, ThreeProcessesClaimingAtOnceNeverShareAnEntry) {
  auto s = open();
  ASSERT_TRUE(s);
  constexpr int kEntries = 300;
  const std::int64_t now = now_seconds();
  std::set<std::int64_t> queued;
  for (int i = 0; i < kEntries; ++i) {
    store::OutboxEntry e;
    e.kind = "dmarc-failure";
    e.recipient = "r" + std::to_string(i) + "@example.net";
    e.reported_domain = "example.net";
    e.created_at = now - 10;
    e.payload = "{}";
    auto id = s->enqueue_outbox(e);
    ASSERT_TRUE(id) << id.error().describe();
    queued.insert(*id);
  }
  const fs::path d = dir_ / "claim";
  fs::create_directories(d);
  std::vector<std::unique_ptr<Proc>> claimers;
  for (int i = 0; i < 3; ++i) {
    claimers.push_back(start_child("claim", i, url_, d, now));
    ASSERT_TRUE(claimers.back());
  }
  start_together(d, 3, claimers);
  expect_exit_zero(claimers, seconds(120));

  std::map<std::int64_t, int> claimed;
  std::size_t per_process[3] = {0, 0, 0};
  for (int i = 0; i < 3; ++i) {
    for (const auto& line : test::lines_of(test::read_file(d / ("claimed." + std::to_string(i))))) {
      if (line.empty()) continue;
      ++claimed[std::stoll(line)];
      ++per_process[i];
    }
  }
  EXPECT_EQ(claimed.size(), queued.size());
  for (const auto& [id, times] : claimed) {
    EXPECT_EQ(times, 1) << "entry " << id << " claimed " << times << " times";
    EXPECT_TRUE(queued.count(id)) << id;
  }
  // Each took part (the barrier lets them start together); not a guarantee, so only logged.
  std::cout << "claims per process: " << per_process[0] << ", " << per_process[1] << ", "
            << per_process[2] << "\n";
  // Nothing is left to claim, and everything is leased for 600 s.
  auto left = s->claim_outbox(now, 10, 600);
  ASSERT_TRUE(left);
  EXPECT_TRUE(left->empty());
  EXPECT_EQ(test::pg_count_rows(url_, "outbox", "next_attempt_at = " + std::to_string(now + 600)),
            kEntries);
}

TEST_F(Cluster, AJobLockEndsWithItsHoldersDeath) {
  auto s = open();
  ASSERT_TRUE(s);
  const fs::path d = dir_ / "lock";
  fs::create_directories(d);
  auto holder = start_child("hold-lock", 0, url_, d);
  ASSERT_TRUE(holder);
  ASSERT_TRUE(
      wait_until([&] { return fs::exists(d / "ready.0") || !holder->running(); }, seconds(60)));
  ASSERT_TRUE(fs::exists(d / "ready.0")) << test::read_file(holder->log());
  {
    auto mine = s->try_lock_job("aggregate-dmarc");
    ASSERT_TRUE(mine) << mine.error().describe();
    EXPECT_FALSE(*mine) << "taken while another process holds it";
    auto other = s->try_lock_job("aggregate-tls");  // another job is not blocked by it
    ASSERT_TRUE(other) << other.error().describe();
    EXPECT_TRUE(*other);
  }
  // The holder dies mid-job: the server ends its session, and the lock with it.
  holder->signal(SIGKILL);
  EXPECT_EQ(holder->wait(seconds(10)), 128 + SIGKILL);
  const auto killed = std::chrono::steady_clock::now();
  std::unique_ptr<store::JobLock> lock;
  ASSERT_TRUE(wait_until(
      [&] {
        auto mine = s->try_lock_job("aggregate-dmarc");
        EXPECT_TRUE(mine) << mine.error().describe();
        if (mine && *mine) lock = std::move(*mine);
        return lock != nullptr;
      },
      seconds(10)));
  EXPECT_LT(std::chrono::steady_clock::now() - killed, seconds(5));
}

}  // namespace
}  // namespace mailreport

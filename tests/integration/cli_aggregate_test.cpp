// The aggregate-report commands of `mailreport`, run as real processes against a store the
// test fills as the milter's writer does (record_evaluations) and a fake sendmail the test
// writes (keeps each message): suppress list/add/remove; send-reports --dry-run writing .eml
// files that parse back (report/extract.hpp) with the recorded counts, and recording nothing;
// send-reports --now sending each report once (a second run sends nothing), shown by
// outbox --reports; serve --once building and sending what is due. The clock of send-reports is
// fixed with its hidden --at option, so nothing depends on the time of day. And the long-running
// serve: its TLS result collector counts a libtlsrpt datagram sent to tlsrpt.listen, SIGTERM
// commits it and exits 0, and the TLS report built from it parses back.
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "child_process.hpp"

#include "mailreport/report/extract.hpp"
#include "mailreport/report/sink.hpp"
#include "mailreport/store/sqlite_store.hpp"
#include "process_util.hpp"
#include "sample_evaluation.hpp"
#include "testsupport.hpp"

namespace mailreport {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::int64_t kDay = 86400;
constexpr std::int64_t kT0 = 1767441600;  // 2026-01-03 12:00:00 UTC: the clock of send-reports
constexpr std::int64_t kRecorded = kT0 - 2 * kDay - 3600;  // 2026-01-01 11:00 UTC

bool contains(const std::string& s, std::string_view what) {
  return s.find(what) != std::string::npos;
}

class CliAggregate : public ::testing::Test {
 protected:
  void SetUp() override {
    auto path = dir_ / "sendmail";
    // A fake sendmail: keeps each message in msg.<pid> and its argv in argv.<pid>.
    std::ofstream(path) << "#!/bin/sh\n"
                        << "printf '%s ' \"$@\" > '" << (dir_ / "argv.").string() << "'$$\n"
                        << "cat > '" << (dir_ / "msg.").string() << "'$$\nexit 0\n";
    fs::permissions(path, fs::perms::owner_all);
    write_config("");
  }

  // `extra` goes in [report]; `tail` after the rest (the [tlsrpt] table is last).
  void write_config(const std::string& extra, const std::string& tlsrpt = "listen = \"\"\n") {
    std::ofstream(dir_ / "mailreport.toml")
        << "[report]\ndomain = \"ours.example\"\nsubmitter = \"mx.ours.example\"\n"
        << "submit.sendmail-path = \"" << (dir_ / "sendmail").string() << "\"\n"
        << extra << "\n[store]\npath = \"" << (dir_ / "mailreport.db").string()
        << "\"\n"
        // Names without local data are NXDOMAIN (not refused): the DMARC tree walk finds the
        // organizational domains, so our rua= destinations need no external verification.
        << "[dns]\nlocal-only = true\nlocal-nxdomain = [\"com\", \"org\", \"net\"]\n"
        << "local-data = ['_dmarc.example.com. 300 IN TXT \"v=DMARC1; p=reject; "
           "rua=mailto:dmarc@example.com\"', '_dmarc.example.org. 300 IN TXT \"v=DMARC1; "
           "p=none; rua=mailto:dmarc@example.org\"']\n"
        << "[tlsrpt]\n"
        << tlsrpt;
  }

  std::unique_ptr<store::Store> open() {
    store::SqliteOptions o;
    o.path = dir_ / "mailreport.db";
    auto s = store::open_sqlite_store(o);
    EXPECT_TRUE(s) << s.error().describe();
    return s ? std::move(*s) : nullptr;
  }

  // example.com: 3 messages from 192.0.2.1 and 1 from 192.0.2.2; example.org: 2 messages.
  void record(std::int64_t at) {
    auto s = open();
    ASSERT_TRUE(s);
    std::vector<auth::Evaluation> batch;
    for (int i = 0; i < 3; ++i) batch.push_back(test::sample_evaluation(at + i));
    batch.push_back(test::sample_evaluation(at + 10, "192.0.2.2"));
    for (int i = 0; i < 2; ++i) {
      batch.push_back(
          test::sample_evaluation(at + 20 + i, "198.51.100.7", "example.org", auth::Policy::None));
    }
    auto r = s->record_evaluations_counted(batch);
    ASSERT_TRUE(r) << r.error().describe();
    ASSERT_EQ(r->rows, 6u);
  }

  test::RunResult mr(std::vector<std::string> args) {
    std::vector<std::string> argv{test::cli_binary().string(), "-c",
                                  (dir_ / "mailreport.toml").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = test::run_command(argv);
    EXPECT_FALSE(r.timed_out);
    return r;
  }

  // The files in `d` whose names end with `suffix`, sorted.
  static std::vector<fs::path> files(const fs::path& d, std::string_view suffix) {
    std::vector<fs::path> out;
    if (!fs::exists(d)) return out;
    for (const auto& e : fs::directory_iterator(d)) {
      if (e.path().string().ends_with(suffix)) out.push_back(e.path());
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  std::vector<fs::path> sent_messages() const {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(dir_.path())) {
      if (e.path().filename().string().rfind("msg.", 0) == 0) out.push_back(e.path());
    }
    return out;
  }

  // The DMARC aggregate reports in a message, by policy domain: messages per source IP.
  static std::map<std::string, std::map<std::string, std::uint64_t>> parse_back(
      const fs::path& eml, std::string* report_id = nullptr, std::string* subject = nullptr) {
    std::map<std::string, std::map<std::string, std::uint64_t>> out;
    const std::string text = test::read_file(eml);
    report::CollectingSink sink;
    auto got = report::extract_reports(Input::from_memory(text, eml.string()), sink);
    EXPECT_TRUE(got) << eml << ": " << (got ? "" : got.error().message);
    for (auto& r : sink.reports()) {
      auto* agg = std::get_if<report::DmarcAggregate>(&r);
      if (agg == nullptr) {
        ADD_FAILURE() << eml << ": not a DMARC aggregate report";
        continue;
      }
      auto& rows = out[agg->header.policy_published.domain];
      for (const auto& rec : agg->records) rows[rec.row.source_ip] += rec.row.count;
      if (report_id) *report_id = agg->header.report_metadata.report_id;
    }
    if (subject) {
      // The field unfolded (RFC 5322 §2.2.3).
      auto at = text.find("\nSubject: ");
      if (at != std::string::npos) {
        for (at += 10; at < text.size(); ++at) {
          if (text[at] == '\r' || text[at] == '\n') {
            if (at + 1 < text.size() && (text[at + 1] == ' ' || text[at + 1] == '\t')) continue;
            if (text[at] == '\r' && at + 2 < text.size() && text[at + 1] == '\n' &&
                (text[at + 2] == ' ' || text[at + 2] == '\t')) {
              continue;
            }
            break;
          }
          *subject += text[at];
        }
      }
    }
    return out;
  }

  test::TempDir dir_;
};

// ---------------------------------------------------------------- suppress

TEST_F(CliAggregate, SuppressAddListRemove) {
  { ASSERT_TRUE(open()); }
  auto r = mr({"suppress", "list"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "no suppressed destinations\n");

  r = mr({"suppress", "add", "mailto:Reports@Example.COM", "--reason", "asked us to stop"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = mr({"suppress", "add", "https://tlsrpt.example.net/v1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  {
    auto s = open();
    auto yes = s->is_suppressed("reports@example.com");
    ASSERT_TRUE(yes);
    EXPECT_TRUE(*yes);
  }

  r = mr({"suppress", "list", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_array()) << r.out;
  ASSERT_EQ(j.size(), 2u) << r.out;
  auto mail = std::find_if(j.begin(), j.end(),
                           [](const json& e) { return e["address"] == "reports@example.com"; });
  ASSERT_NE(mail, j.end()) << r.out;
  EXPECT_EQ((*mail)["suppressed"], true);
  EXPECT_EQ((*mail)["manual"], true);
  EXPECT_EQ((*mail)["reason"], "asked us to stop");

  r = mr({"suppress", "list"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto lines = test::lines_of(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  EXPECT_EQ(lines[0].rfind("ADDRESS", 0), 0u) << lines[0];
  EXPECT_TRUE(contains(r.out, "reports@example.com")) << r.out;
  EXPECT_TRUE(contains(r.out, "suppressed (by hand)")) << r.out;
  EXPECT_TRUE(contains(r.out, "asked us to stop")) << r.out;

  r = mr({"suppress", "remove", "reports@example.com"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  {
    auto s = open();
    auto yes = s->is_suppressed("reports@example.com");
    ASSERT_TRUE(yes);
    EXPECT_FALSE(*yes);
  }
  r = mr({"suppress", "remove", "reports@example.com"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.err, "is not in the list")) << r.err;
  r = mr({"suppress", "add", "no-at-sign"});
  EXPECT_EQ(r.exit_code, 64);
  EXPECT_TRUE(contains(r.err, "is not an address")) << r.err;
  r = mr({"suppress"});
  EXPECT_NE(r.exit_code, 0);
}

// ---------------------------------------------------------------- check-config

TEST_F(CliAggregate, CheckConfigShowsTheAggregateSettings) {
  write_config(
      "suppress-after = 0\ndmarc.aggregate.send = \"weekly\"\n"
      "dmarc.aggregate.format = \"rfc7489\"\ntls.aggregate.send = false\n",
      "listen = \"/run/x/tlsrpt.sock\"\nsocket-group = \"postfix\"\n");
  auto r = test::run_command(
      {test::cli_binary().string(), "check-config", "-c", (dir_ / "mailreport.toml").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* want : {
           "  dmarc aggregate reports:\n    send:             weekly (UTC), spread over 1h\n",
           "    from:             \"DMARC Report\" <noreply-dmarc@ours.example>\n",
           "    organisation:     ours.example\n",
           "    format:           rfc7489\n",
           "  tls aggregate reports:\n    send:             never\n",
           "    contact:          noreply-tls@ours.example\n",
           "  suppress after:     never (suppress-after = 0)\n",
           "  tlsrpt collector:   unix-dgram:/run/x/tlsrpt.sock (mode 0660, group postfix), commit "
           "every 5s or 1000 results\n",
       }) {
    EXPECT_TRUE(contains(r.out, want)) << want << "\nin:\n" << r.out;
  }
  // A bad value stops every command, with its line.
  write_config("tls.aggregate.send = \"hourly\"\n");
  r = mr({"send-reports", "--dry-run"});
  EXPECT_EQ(r.exit_code, 78);
  EXPECT_TRUE(contains(r.err,
                       ":5: report.tls.aggregate.send: 'hourly': must be \"daily\" or "
                       "\"never\""))
      << r.err;
}

// ---------------------------------------------------------------- send-reports --dry-run

TEST_F(CliAggregate, DryRunWritesMessagesThatParseBackAndRecordsNothing) {
  record(kRecorded);
  const fs::path out = dir_ / "out" / "eml";  // made by the command
  auto r = mr({"send-reports", "--dry-run", "--out", out.string(), "--at", std::to_string(kT0)});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "dmarc: 2 reports, 2 deliveries, 6 messages\n")) << r.out;
  EXPECT_TRUE(contains(r.out, "tls: 0 reports")) << r.out;
  EXPECT_TRUE(contains(r.out, "dry run: nothing recorded, nothing sent")) << r.out;

  auto emls = files(out, ".eml");
  ASSERT_EQ(emls.size(), 2u) << r.out;
  std::map<std::string, std::map<std::string, std::uint64_t>> all;
  for (const auto& eml : emls) {
    std::string id, subject;
    for (auto& [domain, rows] : parse_back(eml, &id, &subject)) all[domain] = rows;
    EXPECT_FALSE(id.empty());
    // The report id names the file, and is in the Subject (RFC 7489 §7.2.1.1).
    EXPECT_EQ(eml.filename().string().rfind(id + "-", 0), 0u) << eml << " " << id;
    EXPECT_TRUE(contains(subject, "Submitter: mx.ours.example Report-ID: <" + id + ">")) << subject;
    const std::string text = test::read_file(eml);
    EXPECT_TRUE(contains(text, "From: \"DMARC Report\" <noreply-dmarc@ours.example>") ||
                contains(text, "From: DMARC Report <noreply-dmarc@ours.example>"))
        << text.substr(0, 600);
  }
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all["example.com"]["192.0.2.1"], 3u);
  EXPECT_EQ(all["example.com"]["192.0.2.2"], 1u);
  EXPECT_EQ(all["example.org"]["198.51.100.7"], 2u);

  // Nothing recorded: no report, no outbox entry, nothing sent; the same again.
  {
    auto s = open();
    auto reports = s->list_aggregate_reports({});
    ASSERT_TRUE(reports);
    EXPECT_TRUE(reports->empty());
    auto entries = s->list_outbox({});
    ASSERT_TRUE(entries);
    EXPECT_TRUE(entries->empty());
  }
  EXPECT_TRUE(sent_messages().empty());
  r = mr({"send-reports", "--dry-run", "--at", std::to_string(kT0)});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "dmarc: 2 reports, 2 deliveries, 6 messages\n")) << r.out;

  // --domain: that policy domain only.
  const fs::path one = dir_ / "one";
  r = mr({"send-reports", "--dry-run", "--out", one.string(), "--domain", "example.org", "--at",
          std::to_string(kT0)});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "dmarc: 1 report, 1 delivery, 2 messages\n")) << r.out;
  auto only = files(one, ".eml");
  ASSERT_EQ(only.size(), 1u);
  auto back = parse_back(only[0]);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back.begin()->first, "example.org");
}

TEST_F(CliAggregate, SendReportsRefusesBadArguments) {
  auto r = mr({"send-reports", "--kind", "arf"});
  EXPECT_EQ(r.exit_code, 64);
  EXPECT_TRUE(contains(r.err, "--kind must be dmarc, tls or all")) << r.err;
  r = mr({"send-reports", "--out", (dir_ / "x").string()});
  EXPECT_EQ(r.exit_code, 64);
  EXPECT_TRUE(contains(r.err, "--out goes with --dry-run")) << r.err;
}

// ---------------------------------------------------------------- send-reports

TEST_F(CliAggregate, SendReportsSendsEachReportOnce) {
  record(kRecorded);
  auto r = mr({"send-reports", "--now", "--at", std::to_string(kT0)});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "dmarc: 2 reports, 2 deliveries, 6 messages\n")) << r.out;
  EXPECT_TRUE(contains(r.out, "outbox: 2 sent, 0 to retry, 0 failed\n")) << r.out;
  auto sent = sent_messages();
  ASSERT_EQ(sent.size(), 2u);
  std::map<std::string, std::map<std::string, std::uint64_t>> all;
  for (const auto& m : sent) {
    for (auto& [domain, rows] : parse_back(m)) all[domain] = rows;
  }
  EXPECT_EQ(all["example.com"]["192.0.2.1"], 3u);
  EXPECT_EQ(all["example.com"]["192.0.2.2"], 1u);
  EXPECT_EQ(all["example.org"]["198.51.100.7"], 2u);

  // Again: nothing is due, nothing is sent twice.
  r = mr({"send-reports", "--now", "--at", std::to_string(kT0 + 60)});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "dmarc: 0 reports, 0 deliveries, 0 messages\n")) << r.out;
  EXPECT_TRUE(contains(r.out, "outbox: 0 sent")) << r.out;
  EXPECT_EQ(sent_messages().size(), 2u);

  // outbox --reports shows them, with their deliveries sent.
  r = mr({"outbox", "--reports", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_array()) << r.out;
  ASSERT_EQ(j.size(), 2u) << r.out;
  std::uint64_t messages = 0;
  for (const auto& rep : j) {
    EXPECT_EQ(rep["kind"], "dmarc-aggregate");
    EXPECT_EQ(rep["deliveries"]["sent"], 1) << rep.dump();
    EXPECT_EQ(rep["deliveries"]["queued"], 0) << rep.dump();
    messages += rep["messages"].get<std::uint64_t>();
  }
  EXPECT_EQ(messages, 6u);
  r = mr({"outbox", "--reports", "--domain", "example.org"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto lines = test::lines_of(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  for (const char* col : {"KIND", "DOMAIN", "PERIOD", "RECORDS", "MESSAGES", "DELIVERIES"}) {
    EXPECT_TRUE(contains(lines[0], col)) << col;
  }
  EXPECT_TRUE(contains(lines[1], "example.org")) << lines[1];
  EXPECT_TRUE(contains(lines[1], "1 sent")) << lines[1];
  // The entries are in the outbox too, as the kind they are.
  r = mr({"outbox", "--kind", "dmarc-aggregate", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out).size(), 2u);
}

TEST_F(CliAggregate, NeverSendsNothing) {
  write_config("dmarc.aggregate.send = \"never\"\ntls.aggregate.send = false\n");
  record(kRecorded);
  auto r = mr({"send-reports", "--now", "--at", std::to_string(kT0)});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "dmarc: not sent (report.dmarc.aggregate.send = never)")) << r.out;
  EXPECT_TRUE(contains(r.out, "tls: not sent")) << r.out;
  EXPECT_TRUE(sent_messages().empty());
}

// ---------------------------------------------------------------- serve --once

TEST_F(CliAggregate, ServeOnceBuildsWhatIsDueAndSendsIt) {
  // No spread: the deliveries are due as soon as they are built.
  write_config("dmarc.aggregate.spread = 0\n");
  const std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  record(now - 2 * kDay);  // a day that has ended, whatever the time now
  auto r = mr({"serve", "--once"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto s = open();
  auto reports = s->list_aggregate_reports({});
  ASSERT_TRUE(reports);
  ASSERT_EQ(reports->size(), 2u);
  EXPECT_EQ(sent_messages().size(), 2u) << r.err;
  // A second pass has nothing to build or send.
  r = mr({"serve", "--once"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(sent_messages().size(), 2u);
}

// ---------------------------------------------------------------- serve: the TLS collector

// A successful DANE delivery, as Postfix's libtlsrpt reports it.
const std::string kTlsSuccess =
    R"({"dpv": "1","d": "example.net","pr": "v=TLSRPTv1; rua=mailto:tlsrpt@example.net",)"
    R"("policies":[{"policy-type":1,"policy-domain": "example.net",)"
    R"("policy-string":["3 1 1 0123456789ABCDEF"],"mx-host":["mx1.example.net"],"t":0,"f":0}]})";

TEST_F(CliAggregate, ServeCollectsTlsResultsUntilSigterm) {
  const fs::path sock = dir_ / "tlsrpt.sock";
  write_config("", "listen = \"" + sock.string() +
                       "\"\nflush-interval = \"1h\"\n[serve]\noutbox-interval = \"1s\"\n");
  auto child = test::ChildProcess::start(
      {test::cli_binary().string(), "-c", (dir_ / "mailreport.toml").string(), "serve"},
      dir_ / "serve.log");
  ASSERT_TRUE(child) << child.error().describe();
  for (int i = 0; i < 100 && !fs::exists(sock); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(fs::exists(sock)) << test::read_file(dir_ / "serve.log");

  // Three datagrams, as Postfix's smtp sends them (one per TLS session).
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", sock.c_str());
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(::sendto(fd, kTlsSuccess.data(), kTlsSuccess.size(), 0,
                       reinterpret_cast<sockaddr*>(&a), sizeof a),
              static_cast<ssize_t>(kTlsSuccess.size()));
  }
  ::close(fd);

  // SIGTERM: the collector reads what is left in the socket and commits what it holds (nothing
  // was committed before: flush-interval is an hour), the socket goes, exit 0.
  EXPECT_EQ(child->stop(), 0) << test::read_file(dir_ / "serve.log");
  EXPECT_FALSE(fs::exists(sock));
  std::uint64_t sessions = 0;
  std::int64_t day = 0;
  {
    auto s = open();
    auto counts = s->list_tls_counts(0, "example.net");
    ASSERT_TRUE(counts) << counts.error().describe();
    for (const auto& c : *counts) {
      sessions += c.policy.total_successful_session_count;
      day = c.day;
    }
  }
  EXPECT_EQ(sessions, 3u) << test::read_file(dir_ / "serve.log");

  // The TLS report of that day, once the day is over: the three sessions, parsed back.
  const fs::path out = dir_ / "tls";
  auto r = mr({"send-reports", "--kind", "tls", "--dry-run", "--out", out.string(), "--at",
               std::to_string(day + kDay + 3600)});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "tls: 1 report, 1 delivery, 3 sessions\n")) << r.out;
  EXPECT_FALSE(contains(r.out, "dmarc:")) << r.out;
  auto emls = files(out, ".eml");
  ASSERT_EQ(emls.size(), 1u);
  const std::string text = test::read_file(emls[0]);
  EXPECT_TRUE(contains(text, "TLS-Report-Domain: example.net")) << text.substr(0, 800);
  report::CollectingSink sink;
  ASSERT_TRUE(report::extract_reports(Input::from_memory(text), sink));
  ASSERT_EQ(sink.reports().size(), 1u);
  auto* tls = std::get_if<report::TlsReport>(&sink.reports()[0]);
  ASSERT_NE(tls, nullptr);
  ASSERT_EQ(tls->policies.size(), 1u);
  EXPECT_EQ(tls->policies[0].total_successful_session_count, 3u);
}

}  // namespace
}  // namespace mailreport

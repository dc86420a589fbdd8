// The tests' PostgreSQL server (see pg_server.hpp). Starting and stopping a cluster is
// pg-server.sh's job, shared with the ctest fixture; this file finds or starts the server,
// creates the databases and talks to them with libpq.
#include "pg_server.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <system_error>
#include <vector>

#include "testsupport.hpp"

namespace mailreport::test {

namespace {

namespace fs = std::filesystem;

using Conn = std::unique_ptr<PGconn, decltype(&PQfinish)>;
using PgResult = std::unique_ptr<PGresult, decltype(&PQclear)>;

constexpr const char* kMissingBinaries =
    "PostgreSQL server binaries not found: apt-get install postgresql";

fs::path script() {
  return source_dir() / "tests" / "support" / "pg-server.sh";
}

// The version directories under /usr/lib/postgresql compare as numbers ("9.6" < "15").
std::vector<int> version_key(const std::string& name) {
  std::vector<int> key;
  std::size_t i = 0;
  while (i < name.size()) {
    std::size_t j = name.find('.', i);
    key.push_back(std::atoi(name.substr(i, j - i).c_str()));
    if (j == std::string::npos) break;
    i = j + 1;
  }
  return key;
}

// Where initdb and pg_ctl are (pg-server.sh looks the same way), or empty.
fs::path server_bindir() {
  std::error_code ec;
  if (const char* env = std::getenv("MAILREPORT_PG_BINDIR"); env && *env) {
    return fs::exists(fs::path(env) / "initdb", ec) ? fs::path(env) : fs::path();
  }
  fs::path best;
  std::vector<int> best_key;
  for (const auto& e : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    fs::path bin = e.path() / "bin";
    if (!fs::exists(bin / "initdb", ec) || !fs::exists(bin / "pg_ctl", ec)) continue;
    auto key = version_key(e.path().filename().string());
    if (best.empty() || key > best_key) {
      best = bin;
      best_key = std::move(key);
    }
  }
  return best;
}

// Runs pg-server.sh with `args` (shell-safe words); its exit status and standard output.
int run_script(const std::string& args, std::string* out) {
  std::string cmd = "'" + script().string() + "' " + args;
  std::unique_ptr<FILE, decltype(&pclose)> p(popen(cmd.c_str(), "r"), &pclose);
  if (!p) return -1;
  char buf[512];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p.get())) > 0) {
    if (out) out->append(buf, n);
  }
  int status = pclose(p.release());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// A loopback port nobody listens on now (the server binds it a moment later; a lost race
// is retried with another port).
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

// This process's own server: started by the first caller, stopped and removed when the
// process exits (not in a forked child that exits: only the process that started it).
class PrivateServer {
 public:
  PrivateServer() {
    if (server_bindir().empty()) {
      why_not_ = kMissingBinaries;
      return;
    }
    const char* tmp = std::getenv("TMPDIR");
    // Short: the unix socket's path (DIR/.s.PGSQL.PORT) must fit in sockaddr_un.
    std::string tmpl =
        std::string(tmp && *tmp && std::strlen(tmp) < 60 ? tmp : "/tmp") + "/mr-pg-XXXXXX";
    for (int attempt = 0; attempt < 3 && url_.empty(); ++attempt) {
      std::vector<char> name(tmpl.begin(), tmpl.end());
      name.push_back('\0');
      if (!::mkdtemp(name.data())) {
        why_not_ = "cannot create a temporary directory for PostgreSQL";
        return;
      }
      fs::path dir = name.data();
      std::string out;
      int port = free_port();
      int rc = run_script(
          "start '" + dir.string() + "' " + std::to_string(port) + " " + std::to_string(::getpid()),
          &out);
      while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
      if (rc == 0 && out.rfind("postgresql://", 0) == 0) {
        dir_ = dir;
        url_ = out;
      } else {
        run_script("stop '" + dir.string() + "'", nullptr);
        why_not_ = "the tests' private PostgreSQL server did not start (" + script().string() +
                   " start exited with " + std::to_string(rc) + "; its messages are above)";
      }
    }
    if (!url_.empty()) why_not_.clear();
  }
  ~PrivateServer() {
    if (!dir_.empty() && ::getpid() == owner_) run_script("stop '" + dir_.string() + "'", nullptr);
  }
  PrivateServer(const PrivateServer&) = delete;
  PrivateServer& operator=(const PrivateServer&) = delete;

  const std::string& url() const noexcept { return url_; }
  const std::string& why_not() const noexcept { return why_not_; }

 private:
  pid_t owner_ = ::getpid();
  fs::path dir_;
  std::string url_;
  std::string why_not_;
};

// `url` with its database replaced by `db` (URL or keyword/value form).
std::string with_database(const std::string& url, const std::string& db) {
  std::size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url + " dbname=" + db;
  std::size_t path = url.find_first_of("/?", scheme + 3);
  if (path == std::string::npos) return url + "/" + db;
  std::size_t query = url.find('?', path);
  return url.substr(0, path) + "/" + db + (query == std::string::npos ? "" : url.substr(query));
}

Conn connect(const std::string& url, std::string* error) {
  Conn c(PQconnectdb(url.c_str()), &PQfinish);
  if (!c || PQstatus(c.get()) != CONNECTION_OK) {
    if (error) *error = c ? PQerrorMessage(c.get()) : "out of memory";
    while (error && !error->empty() && error->back() == '\n') error->pop_back();
    return Conn(nullptr, &PQfinish);
  }
  return c;
}

// The databases this process made on the fixture's server, dropped when the process exits
// (each is a copy of template1, some megabytes: a whole run's would pile up until the
// fixture's teardown). Not in a forked child that exits, nor on the private server, which
// goes whole.
class CreatedDatabases {
 public:
  void add(const std::string& server, const std::string& db) {
    std::lock_guard lock(mu_);
    server_ = server;
    names_.push_back(db);
  }
  ~CreatedDatabases() {
    if (names_.empty() || ::getpid() != owner_) return;
    Conn conn = connect(server_, nullptr);
    if (!conn) return;
    for (const auto& db : names_) {
      // FORCE: a store a test leaked still holds connections (PostgreSQL 13+).
      PgResult r(PQexec(conn.get(), ("DROP DATABASE IF EXISTS " + db + " WITH (FORCE)").c_str()),
                 &PQclear);
    }
  }

 private:
  pid_t owner_ = ::getpid();
  std::mutex mu_;
  std::string server_;
  std::vector<std::string> names_;
};

}  // namespace

std::optional<std::string> fresh_pg_database(std::string* why_not) {
  std::string server;
  std::string from;
  const char* env = std::getenv("MAILREPORT_TEST_PG_URL");
  const bool from_env = env && *env;
  if (from_env) {
    server = env;
    from = "MAILREPORT_TEST_PG_URL";
  } else {
    static PrivateServer private_server;  // started once, on first use
    if (private_server.url().empty()) {
      if (why_not) *why_not = private_server.why_not();
      return std::nullopt;
    }
    server = private_server.url();
    from = "the private test server";
  }
  std::string error;
  Conn conn = connect(server, &error);
  if (!conn) {
    if (why_not) {
      *why_not = server_bindir().empty()
                     ? std::string(kMissingBinaries)
                     : "cannot connect to " + server + " (" + from + "): " + error;
    }
    return std::nullopt;
  }
  static std::atomic<int> next{0};
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::string db = "mr_t" + std::to_string(::getpid()) + "_" + std::to_string(next++);
    PgResult r(PQexec(conn.get(), ("CREATE DATABASE " + db).c_str()), &PQclear);
    if (r && PQresultStatus(r.get()) == PGRES_COMMAND_OK) {
      if (from_env) {
        static CreatedDatabases created;
        created.add(server, db);
      }
      return with_database(server, db);
    }
    const char* state = r ? PQresultErrorField(r.get(), PG_DIAG_SQLSTATE) : nullptr;
    // 42P04 duplicate_database: left by an earlier process with the same pid; take the next.
    if (state && std::string(state) == "42P04") continue;
    if (why_not) *why_not = "CREATE DATABASE " + db + " failed: " + PQerrorMessage(conn.get());
    return std::nullopt;
  }
  if (why_not) *why_not = "no free database name";
  return std::nullopt;
}

std::string pg_missing_message(const std::string& why_not) {
  return why_not + (running_in_ci() ? " (CI=true: tests that need PostgreSQL must run)"
                                    : ". Skipping; under CI=true this is a failure.");
}

std::int64_t pg_count_rows(const std::string& url, const std::string& table,
                           const std::string& where) {
  std::string error;
  Conn conn = connect(url, &error);
  if (!conn) {
    ADD_FAILURE() << "cannot connect to " << url << ": " << error;
    return -1;
  }
  std::string sql = "SELECT count(*) FROM " + table + (where.empty() ? "" : " WHERE " + where);
  PgResult r(PQexec(conn.get(), sql.c_str()), &PQclear);
  if (!r || PQresultStatus(r.get()) != PGRES_TUPLES_OK || PQntuples(r.get()) != 1) {
    ADD_FAILURE() << sql << ": " << PQerrorMessage(conn.get());
    return -1;
  }
  return std::strtoll(PQgetvalue(r.get(), 0, 0), nullptr, 10);
}

std::optional<std::string> pg_exec(const std::string& url, const std::string& sql) {
  std::string error;
  Conn conn = connect(url, &error);
  if (!conn) return "cannot connect to " + url + ": " + error;
  PgResult r(PQexec(conn.get(), sql.c_str()), &PQclear);
  if (!r) return std::string("out of memory");
  auto st = PQresultStatus(r.get());
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return std::nullopt;
  return std::string(PQerrorMessage(conn.get()));
}

}  // namespace mailreport::test

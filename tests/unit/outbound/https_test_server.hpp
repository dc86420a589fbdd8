// A loopback HTTPS server for the https delivery tests: Python's http.server wrapped in ssl
// (/usr/bin/python3), with a self-signed certificate for 127.0.0.1 made at run time by the
// openssl tool. Each POST is written to req<N>.head (path, then the header fields) and
// req<N>.body; it answers with the next status of the list given at start (then 200).
#pragma once

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "child_process.hpp"
#include "testsupport.hpp"

namespace mailreport::outbound::https_test {

inline constexpr const char* kServer = R"PY(
import http.server, os, ssl, sys
certdir, outdir = sys.argv[1], sys.argv[2]
statuses = [int(s) for s in sys.argv[3].split(',') if s]
class Handler(http.server.BaseHTTPRequestHandler):
    count = 0
    def do_POST(self):
        n = Handler.count
        Handler.count += 1
        body = self.rfile.read(int(self.headers.get('Content-Length', '0')))
        with open(os.path.join(outdir, 'req%d.head' % n), 'w') as f:
            f.write(self.path + '\n' + str(self.headers))
        with open(os.path.join(outdir, 'req%d.body' % n), 'wb') as f:
            f.write(body)
        code = statuses[n] if n < len(statuses) else 200
        reply = b'answer %d' % code
        self.send_response(code)
        self.send_header('Content-Length', str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(('127.0.0.1', 0), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(os.path.join(certdir, 'cert.pem'), os.path.join(certdir, 'key.pem'))
server.socket = ctx.wrap_socket(server.socket, server_side=True)
with open(os.path.join(outdir, 'port.tmp'), 'w') as f:
    f.write(str(server.server_address[1]))
os.rename(os.path.join(outdir, 'port.tmp'), os.path.join(outdir, 'port'))
server.serve_forever()
)PY";

struct Request {
  std::string head;  // path, then the header fields
  std::string body;
};

class Server {
 public:
  // Empty `why_not` when it runs; else the reason (the test skips or fails with it).
  explicit Server(const std::vector<int>& statuses) {
    if (!std::filesystem::exists("/usr/bin/python3")) {
      why_not = "no /usr/bin/python3";
      return;
    }
    const std::string cmd =
        "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1"
        " -addext subjectAltName=IP:127.0.0.1 -keyout '" +
        (dir_ / "key.pem").string() + "' -out '" + (dir_ / "cert.pem").string() +
        "' >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) {
      why_not = "openssl req failed";
      return;
    }
    std::ofstream(dir_ / "server.py") << kServer;
    std::string list;
    for (int s : statuses) list += (list.empty() ? "" : ",") + std::to_string(s);
    auto child = test::ChildProcess::start({"/usr/bin/python3", (dir_ / "server.py").string(),
                                            dir_.path().string(), dir_.path().string(), list},
                                           dir_ / "server.log");
    if (!child) {
      why_not = child.error().describe();
      return;
    }
    child_.emplace(std::move(*child));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!std::filesystem::exists(dir_ / "port")) {
      if (std::chrono::steady_clock::now() > deadline || !child_->running()) {
        why_not = "the server did not start: " + test::read_file(dir_ / "server.log");
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    port = test::read_file(dir_ / "port");
  }
  ~Server() {
    if (child_) child_->stop(std::chrono::seconds(2));
  }

  std::string url(const std::string& path = "/v1/tlsrpt") const {
    return "https://127.0.0.1:" + port + path;
  }
  std::filesystem::path ca_file() const { return dir_ / "cert.pem"; }
  std::optional<Request> request(int n) const {
    const auto head = dir_ / ("req" + std::to_string(n) + ".head");
    if (!std::filesystem::exists(head)) return std::nullopt;
    return Request{test::read_file(head),
                   test::read_file(dir_ / ("req" + std::to_string(n) + ".body"))};
  }

  std::string why_not;
  std::string port;

 private:
  test::TempDir dir_;
  std::optional<test::ChildProcess> child_;
};

}  // namespace mailreport::outbound::https_test

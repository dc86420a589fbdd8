// noop-milter: the smallest libmilter filter that still receives every message whole — the
// floor of the milter benchmark (bench_milter.cpp) and the peer of the milter client's tests
// (tests/support/milter_client.hpp).
//
// By default it accepts everything and, like mailreport-milter, skips DATA and negotiates no
// reply before the end of the message (SMFIP_NR_*): the cheapest a filter that sees the whole
// message can be. Options make it the
// scripted filter the client tests need: reply at every step (--replies), add, insert or change
// headers, quarantine, refuse a recipient, answer the end of message with a given reply, and
// report what it received in X-Seen-* headers (--echo).
//
//   noop-milter -p unix:/path/sock | -p inet:PORT@127.0.0.1 [options]
//
// libmilter stops it on SIGTERM/SIGINT. Not done: body replacement, SMFIC_UNKNOWN.
#include <libmilter/mfapi.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {

struct Options {
  std::string socket;
  bool replies = false;
  bool echo = false;
  std::vector<std::string> add_headers;     // "Name: value"
  std::vector<std::string> insert_headers;  // inserted at index 0
  std::vector<std::string> change_headers;  // first field of that name; "Name:" deletes it
  std::string quarantine;
  std::string reject_rcpt;           // "<addr>" refused with 550
  std::string eom_reply = "accept";  // accept|continue|reject|tempfail|discard|"5xy x.y.z text"
};

Options g_options;  // set once in main, before smfi_main; read-only afterwards

// What one connection saw (--echo), and which replies it negotiated away.
struct Seen {
  unsigned long no_reply = 0;
  std::string connect;
  std::string helo;
  std::string mail_from;
  std::string rcpts;
  std::string macros;  // "j=... daemon=... auth=..." at MAIL
  int headers = 0;
  std::string subject;
  std::size_t body_bytes = 0;
  bool body_crlf = true;
  char last = '\0';
};

Seen* seen(SMFICTX* ctx) {
  return static_cast<Seen*>(smfi_getpriv(ctx));
}

// SMFIS_NOREPLY where the MTA was told not to wait for a reply (libmilter logs otherwise).
sfsistat ok(SMFICTX* ctx, unsigned long nr_flag) {
  Seen* s = seen(ctx);
  return s != nullptr && (s->no_reply & nr_flag) ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

std::string sym(SMFICTX* ctx, const char* name) {
  const char* v = smfi_getsymval(ctx, const_cast<char*>(name));
  return v != nullptr ? v : "";
}

std::pair<std::string, std::string> split_field(const std::string& f) {
  auto colon = f.find(':');
  std::string name = f.substr(0, colon);
  std::string value = colon == std::string::npos ? "" : f.substr(colon + 1);
  if (!value.empty() && value.front() == ' ') value.erase(0, 1);
  return {name, value};
}

sfsistat on_negotiate(SMFICTX* ctx, unsigned long actions, unsigned long steps, unsigned long,
                      unsigned long, unsigned long* want_actions, unsigned long* want_steps,
                      unsigned long*, unsigned long*) {
  auto s = std::make_unique<Seen>();
  *want_actions = actions & (SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE);
  unsigned long nr = 0;
  if (!g_options.replies) {
    // As mailreport-milter: no DATA step, no reply before end of message.
    nr = SMFIP_NODATA | SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_NR_HDR |
         SMFIP_NR_EOH | SMFIP_NR_BODY;
    if (g_options.reject_rcpt.empty()) nr |= SMFIP_NR_RCPT;
    nr &= steps;
  }
  s->no_reply = nr;
  *want_steps = nr | (steps & SMFIP_NOUNKNOWN);
  smfi_setpriv(ctx, s.release());  // freed in on_close
  return SMFIS_CONTINUE;
}

sfsistat on_connect(SMFICTX* ctx, char* host, _SOCK_ADDR*) {
  if (Seen* s = seen(ctx)) s->connect = host != nullptr ? host : "";
  return ok(ctx, SMFIP_NR_CONN);
}

sfsistat on_helo(SMFICTX* ctx, char* helo) {
  if (Seen* s = seen(ctx)) s->helo = helo != nullptr ? helo : "";
  return ok(ctx, SMFIP_NR_HELO);
}

sfsistat on_mail(SMFICTX* ctx, char** argv) {
  if (Seen* s = seen(ctx)) {
    s->mail_from = argv != nullptr && argv[0] != nullptr ? argv[0] : "";
    s->rcpts.clear();
    s->headers = 0;
    s->subject.clear();
    s->body_bytes = 0;
    s->body_crlf = true;
    s->last = '\0';
    if (g_options.echo) {
      s->macros = "j=" + sym(ctx, "j") + " daemon=" + sym(ctx, "{daemon_name}") +
                  " auth=" + sym(ctx, "{auth_authen}");
    }
  }
  return ok(ctx, SMFIP_NR_MAIL);
}

sfsistat on_rcpt(SMFICTX* ctx, char** argv) {
  std::string rcpt = argv != nullptr && argv[0] != nullptr ? argv[0] : "";
  if (!g_options.reject_rcpt.empty() && rcpt == g_options.reject_rcpt) {
    smfi_setreply(ctx, const_cast<char*>("550"), const_cast<char*>("5.1.1"),
                  const_cast<char*>("no such user here"));
    return SMFIS_REJECT;
  }
  if (Seen* s = seen(ctx)) s->rcpts += (s->rcpts.empty() ? "" : ",") + rcpt;
  return ok(ctx, SMFIP_NR_RCPT);
}

sfsistat on_data(SMFICTX* ctx) {
  return ok(ctx, SMFIP_NR_DATA);
}

sfsistat on_header(SMFICTX* ctx, char* name, char* value) {
  if (Seen* s = seen(ctx)) {
    ++s->headers;
    if (name != nullptr && ::strcasecmp(name, "Subject") == 0 && value != nullptr) {
      s->subject = value;
    }
  }
  return ok(ctx, SMFIP_NR_HDR);
}

sfsistat on_eoh(SMFICTX* ctx) {
  return ok(ctx, SMFIP_NR_EOH);
}

sfsistat on_body(SMFICTX* ctx, unsigned char* data, size_t len) {
  if (Seen* s = seen(ctx)) {
    for (size_t i = 0; i < len; ++i) {
      if (data[i] == '\n' && s->last != '\r') s->body_crlf = false;
      s->last = static_cast<char>(data[i]);
    }
    s->body_bytes += len;
  }
  return ok(ctx, SMFIP_NR_BODY);
}

void add(SMFICTX* ctx, const std::string& name, const std::string& value) {
  smfi_addheader(ctx, const_cast<char*>(name.c_str()), const_cast<char*>(value.c_str()));
}

sfsistat on_eom(SMFICTX* ctx) {
  if (g_options.echo) {
    if (Seen* s = seen(ctx)) {
      add(ctx, "X-Seen-Connect", s->connect);
      add(ctx, "X-Seen-Helo", s->helo);
      add(ctx, "X-Seen-From", s->mail_from);
      add(ctx, "X-Seen-Rcpt", s->rcpts);
      add(ctx, "X-Seen-Macros", s->macros + " i=" + sym(ctx, "i"));
      add(ctx, "X-Seen-Headers", std::to_string(s->headers));
      add(ctx, "X-Seen-Subject", s->subject);
      add(ctx, "X-Seen-Body", std::to_string(s->body_bytes) + (s->body_crlf ? " crlf" : " lf"));
    }
  }
  for (const auto& f : g_options.add_headers) {
    auto [n, v] = split_field(f);
    add(ctx, n, v);
  }
  for (const auto& f : g_options.insert_headers) {
    auto [n, v] = split_field(f);
    smfi_insheader(ctx, 0, n.data(), v.data());
  }
  for (const auto& f : g_options.change_headers) {
    auto [n, v] = split_field(f);
    smfi_chgheader(ctx, n.data(), 1, v.empty() ? nullptr : v.data());
  }
  if (!g_options.quarantine.empty()) {
    smfi_quarantine(ctx, const_cast<char*>(g_options.quarantine.c_str()));
  }
  const std::string& r = g_options.eom_reply;
  if (r == "accept") return SMFIS_ACCEPT;
  if (r == "continue") return SMFIS_CONTINUE;
  if (r == "reject") return SMFIS_REJECT;
  if (r == "tempfail") return SMFIS_TEMPFAIL;
  if (r == "discard") return SMFIS_DISCARD;
  // "550 5.7.1 text"
  std::string code = r.substr(0, 3);
  auto sp = r.find(' ', 4);
  std::string xcode = r.size() > 4 ? r.substr(4, sp == std::string::npos ? sp : sp - 4) : "";
  std::string text = sp == std::string::npos ? "" : r.substr(sp + 1);
  smfi_setreply(ctx, code.data(), xcode.empty() ? nullptr : xcode.data(),
                text.empty() ? nullptr : text.data());
  return code[0] == '4' ? SMFIS_TEMPFAIL : SMFIS_REJECT;
}

sfsistat on_abort(SMFICTX*) {
  return SMFIS_CONTINUE;
}

sfsistat on_close(SMFICTX* ctx) {
  std::unique_ptr<Seen> owned(seen(ctx));
  smfi_setpriv(ctx, nullptr);
  return SMFIS_CONTINUE;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"noop-milter: a libmilter filter that accepts everything (benchmark floor)"};
  app.add_option("-p,--socket", g_options.socket, "unix:/path or inet:PORT@HOST")->required();
  app.add_flag("--replies", g_options.replies, "reply at every step (no SMFIP_NR_*)");
  app.add_flag("--echo", g_options.echo, "add X-Seen-* headers saying what was received");
  app.add_option("--add-header", g_options.add_headers, "'Name: value' added at end of message");
  app.add_option("--insert-header", g_options.insert_headers, "'Name: value' inserted on top");
  app.add_option("--change-header", g_options.change_headers,
                 "'Name: value' replaces the first such field ('Name:' deletes it)");
  app.add_option("--quarantine", g_options.quarantine, "quarantine every message with REASON");
  app.add_option("--reject-rcpt", g_options.reject_rcpt, "refuse this recipient (\"<a@b>\")");
  app.add_option("--eom-reply", g_options.eom_reply,
                 "accept, continue, reject, tempfail, discard or '5xy x.y.z text'");
  CLI11_PARSE(app, argc, argv);

  smfiDesc desc{};
  desc.xxfi_name = const_cast<char*>("noop-milter");
  desc.xxfi_version = SMFI_VERSION;
  desc.xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE;
  desc.xxfi_connect = on_connect;
  desc.xxfi_helo = on_helo;
  desc.xxfi_envfrom = on_mail;
  desc.xxfi_envrcpt = on_rcpt;
  desc.xxfi_header = on_header;
  desc.xxfi_eoh = on_eoh;
  desc.xxfi_body = on_body;
  desc.xxfi_eom = on_eom;
  desc.xxfi_abort = on_abort;
  desc.xxfi_close = on_close;
  desc.xxfi_data = on_data;
  desc.xxfi_negotiate = on_negotiate;
  if (smfi_setconn(g_options.socket.data()) == MI_FAILURE || smfi_register(desc) == MI_FAILURE ||
      smfi_opensocket(true) == MI_FAILURE) {
    std::fprintf(stderr, "noop-milter: cannot listen on %s\n", g_options.socket.c_str());
    return 1;
  }
  std::fprintf(stderr, "noop-milter: listening on %s\n", g_options.socket.c_str());
  return smfi_main() == MI_SUCCESS ? 0 : 1;
}

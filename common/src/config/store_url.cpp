// The store URL in the configuration: the password mask for messages (mask_url_password),
// the syntax check of store.url and the reading of store.url-file (store_url.hpp).
//
// libpq's two forms (PostgreSQL manual §34.1.1): the URI
//   postgresql://[user[:password]@][host][:port][,...][/dbname][?param=value&...]
// and the keyword/value string  host=db.example user=mailreport password='se cret'.
// The check is libpq's parser (PQconninfoParse). The mask works on the text as written, not
// on libpq's parse: it must also hide the password of a string libpq refuses (that string is
// shown in the error), and keep the rest as the administrator wrote it.
// Not done: percent-decoding (a percent-encoded "password" key is not recognised).
#include "config/store_url.hpp"

#include <fcntl.h>
#include <libpq-fe.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "mailreport/config/config.hpp"

namespace mailreport::config {

namespace {

constexpr std::string_view kMask = "***";

bool ascii_iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// URI: the password of the user information and any password= query parameter.
std::string mask_uri(std::string_view url) {
  const std::size_t start = url.find("://") + 3;
  std::size_t end = url.find_first_of("/?#", start);
  if (end == std::string_view::npos) end = url.size();
  std::string out;
  const std::string_view authority = url.substr(start, end - start);
  const std::size_t at = authority.rfind('@');
  const std::size_t colon =
      at == std::string_view::npos ? std::string_view::npos : authority.find(':');
  if (colon != std::string_view::npos && colon < at) {
    out.append(url.substr(0, start + colon + 1)).append(kMask);
    out.append(url.substr(start + at, end - start - at));
  } else {
    out.append(url.substr(0, end));
  }
  std::string_view rest = url.substr(end);
  const std::size_t q = rest.find('?');
  if (q == std::string_view::npos) return out.append(rest);
  out.append(rest.substr(0, q + 1));
  rest.remove_prefix(q + 1);
  // param=value pairs separated by '&'.
  for (bool first = true; !rest.empty() || first; first = false) {
    std::size_t amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    if (!first) out += '&';
    const std::size_t eq = pair.find('=');
    if (eq != std::string_view::npos && ascii_iequal(pair.substr(0, eq), "password")) {
      out.append(pair.substr(0, eq + 1)).append(kMask);
    } else {
      out.append(pair);
    }
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
    if (rest.empty()) out += '&';
  }
  return out;
}

// keyword = value pairs; a value is 'quoted' (\' and \\ escapes) or runs to white space.
std::string mask_keywords(std::string_view s) {
  std::string out;
  std::size_t i = 0;
  auto space = [&](std::size_t k) {
    return k < s.size() && std::isspace(static_cast<unsigned char>(s[k]));
  };
  while (i < s.size()) {
    const std::size_t key_start = i;
    while (i < s.size() && s[i] != '=' && !space(i)) ++i;
    const std::string_view key = s.substr(key_start, i - key_start);
    std::size_t j = i;
    while (space(j)) ++j;
    if (j >= s.size() || s[j] != '=') {  // not a pair: copy up to here and go on
      out.append(s.substr(key_start, j - key_start));
      i = j;
      continue;
    }
    ++j;
    while (space(j)) ++j;
    const std::size_t value_start = j;
    if (j < s.size() && s[j] == '\'') {
      for (++j; j < s.size() && s[j] != '\''; ++j) {
        if (s[j] == '\\' && j + 1 < s.size()) ++j;
      }
      if (j < s.size()) ++j;
    } else {
      while (j < s.size() && !space(j)) ++j;
    }
    out.append(s.substr(key_start, value_start - key_start));
    if (ascii_iequal(key, "password")) {
      out.append(kMask);
    } else {
      out.append(s.substr(value_start, j - value_start));
    }
    while (space(j)) out += s[j++];
    i = j;
  }
  return out;
}

}  // namespace

std::string mask_url_password(std::string_view url) {
  // Any scheme://user:password@ (a mistyped scheme is shown in an error too).
  return url.find("://") != std::string_view::npos ? mask_uri(url) : mask_keywords(url);
}

namespace detail {

std::optional<std::string> check_store_url(std::string_view url) {
  if (url.empty()) return "must not be empty";
  for (char c : url) {
    if (c == '\n' || c == '\r' || c == '\0') return "must be one line";
  }
  char* err = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(std::string(url).c_str(), &err);
  if (parsed != nullptr) {
    PQconninfoFree(parsed);
    return std::nullopt;
  }
  std::string why = err != nullptr ? err : "out of memory";
  PQfreemem(err);
  while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
  // libpq's message may quote the string back: hide its password there too. (Appended, not
  // "'" + ...: GCC 12 at -O3 warns -Wrestrict on a literal plus a temporary string.)
  std::string out = "'";
  out += mask_url_password(url);
  out += "' is not a PostgreSQL connection string (libpq: ";
  out += mask_url_password(why);
  out +=
      "): write a URL (\"postgresql://mailreport@db.example/mailreport\") or keyword=value "
      "pairs (\"host=db.example dbname=mailreport user=mailreport\")";
  return out;
}

Result<std::string> read_url_file(const std::filesystem::path& path) {
  return read_secret_file(path, "URL", "the store's password");
}

Result<std::string> read_secret_file(const std::filesystem::path& path, std::string_view what,
                                     std::string_view holds) {
  const std::string name = path.string();
  if (!path.is_absolute()) return make_error(ErrorCode::Invalid, "must be an absolute path");
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    return make_error(ErrorCode::Invalid, name + ": " + std::strerror(errno));
  }
  struct Fd {
    int fd;
    ~Fd() { ::close(fd); }
  } guard{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    return make_error(ErrorCode::Invalid, name + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return make_error(ErrorCode::Invalid, name + ": not a regular file");
  // It holds a password: like ~/.pgpass (which libpq ignores when others can read it), the
  // file must be closed to other users; its group may read it (root:mailreport 0640).
  if ((st.st_mode & (S_IRWXO | S_IWGRP)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return make_error(ErrorCode::Invalid,
                      name + ": mode " + mode + " lets other users read or change it; it holds " +
                          std::string(holds) +
                          ": chmod 0640 (owner root, group mailreport) or 0600");
  }
  std::string text;
  std::array<char, 4096> buf{};
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(ErrorCode::Invalid, name + ": " + std::strerror(errno));
    if (n == 0) break;
    text.append(buf.data(), static_cast<std::size_t>(n));
    if (text.size() > 64 * 1024)
      return make_error(ErrorCode::Invalid, name + ": too large for a " + std::string(what));
  }
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return make_error(ErrorCode::Invalid, name + ": empty");
  const auto last = text.find_last_not_of(" \t\r\n");
  text = text.substr(first, last - first + 1);
  if (text.find_first_of("\r\n") != std::string::npos) {
    return make_error(ErrorCode::Invalid,
                      name + ": must hold the " + std::string(what) + " on one line");
  }
  return text;
}

}  // namespace detail

}  // namespace mailreport::config

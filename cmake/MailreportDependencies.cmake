# Every third-party library comes from a Debian 12 package (see scripts/install-deps.sh).
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(OpenSSL 3 REQUIRED)
pkg_check_modules(LIBXML2 REQUIRED IMPORTED_TARGET libxml-2.0)
pkg_check_modules(GMIME REQUIRED IMPORTED_TARGET gmime-3.0)
pkg_check_modules(SQLITE3 REQUIRED IMPORTED_TARGET sqlite3)
pkg_check_modules(LIBPQ REQUIRED IMPORTED_TARGET libpq)
pkg_check_modules(ZLIB REQUIRED IMPORTED_TARGET zlib)
pkg_check_modules(LIBARCHIVE REQUIRED IMPORTED_TARGET libarchive)
pkg_check_modules(TOMLPLUSPLUS REQUIRED IMPORTED_TARGET tomlplusplus)
pkg_check_modules(LIBPSL REQUIRED IMPORTED_TARGET libpsl)
pkg_check_modules(OPENDKIM REQUIRED IMPORTED_TARGET opendkim)
pkg_check_modules(MILTER REQUIRED IMPORTED_TARGET milter)
# sd_notify() for the daemons' systemd readiness (Type=notify); a no-op without NOTIFY_SOCKET.
pkg_check_modules(LIBSYSTEMD REQUIRED IMPORTED_TARGET libsystemd)
pkg_check_modules(LIBCURL REQUIRED IMPORTED_TARGET libcurl)
# The dashboard's HTTP listener (mailreport serve) and the tests' webhook receivers.
pkg_check_modules(LIBMICROHTTPD REQUIRED IMPORTED_TARGET libmicrohttpd)
# libspf2 ships no pkg-config file (its library sits in /usr/lib); libunbound's names
# libevent-dev and nettle-dev as private requirements we do not link statically. Both are found
# directly.
function(mailreport_import_library target lib header)
  find_library(${target}_LIBRARY NAMES ${lib} REQUIRED)
  find_path(${target}_INCLUDE_DIR ${header} REQUIRED)
  add_library(${target} UNKNOWN IMPORTED)
  set_target_properties(${target} PROPERTIES IMPORTED_LOCATION ${${target}_LIBRARY}
    INTERFACE_INCLUDE_DIRECTORIES ${${target}_INCLUDE_DIR})
endfunction()
mailreport_import_library(spf2 spf2 spf2/spf.h)
mailreport_import_library(unbound unbound unbound.h)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(CLI11 REQUIRED)

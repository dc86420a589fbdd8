# Compiler flags shared by every mailreport target, applied through this interface target.
add_library(mailreport-flags INTERFACE)
target_compile_options(mailreport-flags INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align -Wunused
  -Woverloaded-virtual -Wformat=2 -Wimplicit-fallthrough)
if(MAILREPORT_WERROR)
  target_compile_options(mailreport-flags INTERFACE -Werror)
  # g++ 12 at -O3 (Release) reports a false -Wrestrict inside std::string for
  # "x" + std::string(...) (GCC bug 105329, fixed in 13): a warning, not an error.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    target_compile_options(mailreport-flags INTERFACE -Wno-error=restrict)
  endif()
endif()
if(MAILREPORT_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
if(MAILREPORT_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "MAILREPORT_FUZZ needs clang: configure with CC=clang CXX=clang++")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

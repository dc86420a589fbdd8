// Result<T>: the value-or-error type of every operation whose failure is expected
// (malformed input, a limit reached, a store or I/O failure). Exceptions are kept for start-up,
// configuration and broken invariants (see docs/style in shared/). C++20 has no std::expected,
// so this is the small subset we need.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace mailreport {

enum class ErrorCode {
  Invalid,        // malformed input that could not be salvaged
  NotAReport,     // well-formed input that holds no report we understand
  LimitExceeded,  // a configured limit (size, ratio, nesting, time) was reached
  Io,             // a file or socket operation failed
  Store,          // the store could not commit; the caller must not acknowledge
  Temporary,      // retry later (e.g. DNS temperror, busy store)
  Unsupported,    // a feature the input asks for that we do not implement
  NotFound,
  Conflict,  // another writer got there first (two builders on one interval)
};

const char* to_string(ErrorCode code) noexcept;

struct Error {
  ErrorCode code = ErrorCode::Invalid;
  std::string message;

  std::string describe() const { return std::string(to_string(code)) + ": " + message; }
};

inline Error make_error(ErrorCode code, std::string message) { return Error{code, std::move(message)}; }

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & { assert(ok()); return std::get<0>(v_); }
  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const& { assert(!ok()); return std::get<1>(v_); }
  Error&& error() && { assert(!ok()); return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : e_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const noexcept { return !e_.has_value(); }
  explicit operator bool() const noexcept { return ok(); }
  const Error& error() const& { assert(!ok()); return *e_; }
  Error&& error() && { assert(!ok()); return std::move(*e_); }

 private:
  std::optional<Error> e_;
};

using Status = Result<void>;

}  // namespace mailreport

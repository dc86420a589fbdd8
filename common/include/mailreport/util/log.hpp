// Logging: libraries take a Logger&, they do not own one. Every line carries a context id
// (connection/message id) where one exists.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace mailreport {

enum class LogLevel { Debug, Info, Warning, Error };

class Logger {
 public:
  virtual ~Logger() = default;
  virtual void log(LogLevel level, std::string_view context, std::string_view message) = 0;

  void debug(std::string_view ctx, std::string_view msg) { log(LogLevel::Debug, ctx, msg); }
  void info(std::string_view ctx, std::string_view msg) { log(LogLevel::Info, ctx, msg); }
  void warning(std::string_view ctx, std::string_view msg) { log(LogLevel::Warning, ctx, msg); }
  void error(std::string_view ctx, std::string_view msg) { log(LogLevel::Error, ctx, msg); }
};

// Writes "LEVEL [context] message" lines to stderr (journald adds the time); thread-safe.
class StderrLogger final : public Logger {
 public:
  explicit StderrLogger(LogLevel min_level = LogLevel::Info) : min_(min_level) {}
  void log(LogLevel level, std::string_view context, std::string_view message) override;

 private:
  LogLevel min_;
  std::mutex mu_;
};

class NullLogger final : public Logger {
 public:
  void log(LogLevel, std::string_view, std::string_view) override {}
};

}  // namespace mailreport

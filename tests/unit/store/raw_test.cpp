// Raw messages: compressed in chunks as they stream in, decompressed back byte for byte, with
// the SHA-256 of the original; large ones never held in memory whole. On SQLite and PostgreSQL.
#include <gtest/gtest.h>

#include <random>

#include "mailreport/store/sha256.hpp"
#include "store_fixtures.hpp"
#include "testsupport.hpp"

namespace mailreport::store {
namespace {

using report::ReportSink;
using test::count_rows;
using test::filter;
using test::open_store;
using test::options_for;
using test::raw_filter;
using test::TempDir;

// Generates `size` bytes of mixed text and noise without holding them.
class GeneratedSource final : public ByteSource {
 public:
  explicit GeneratedSource(std::uint64_t size, std::uint32_t seed = 7) : left_(size), rng_(seed) {}
  Result<std::size_t> read(std::span<char> buf) override {
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left_, buf.size()));
    for (std::size_t i = 0; i < n; ++i) {
      // Mostly repetitive report-like text with random bytes mixed in.
      std::uint32_t r = rng_();
      buf[i] =
          (r % 8 == 0) ? static_cast<char>(r >> 8) : "<record>192.0.2.1</record>\n"[pos_++ % 28];
    }
    left_ -= n;
    return n;
  }

 private:
  std::uint64_t left_;
  std::mt19937 rng_;
  std::size_t pos_ = 0;
};

class FailingSource final : public ByteSource {
 public:
  Result<std::size_t> read(std::span<char> buf) override {
    if (calls_++ < 3) {
      std::fill(buf.begin(), buf.end(), 'a');
      return buf.size();
    }
    return make_error(ErrorCode::Io, "spool file vanished");
  }

 private:
  int calls_ = 0;
};

std::string read_back(Store& store, std::int64_t id) {
  std::string out;
  auto st = store.read_raw(id, [&](std::span<const char> piece) -> Status {
    out.append(piece.data(), piece.size());
    return {};
  });
  EXPECT_TRUE(st) << st.error().describe();
  return out;
}

std::int64_t add_raw(Store& store, ByteSource& src, RawMessageInfo* info_out = nullptr) {
  auto tx = store.begin_write();
  EXPECT_TRUE(tx);
  auto info = (*tx)->add_raw_message({1700000000, "test", "", {}, "unit"}, src);
  EXPECT_TRUE(info) << info.error().describe();
  EXPECT_TRUE((*tx)->set_parse_outcome(info->id, ParseStatus::Unparsed, "not a report"));
  EXPECT_TRUE((*tx)->commit());
  if (info_out != nullptr) *info_out = *info;
  return info->id;
}

TEST(Sha256, MatchesTheFips180Vectors) {
  EXPECT_EQ(Sha256::hex_of("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256::hex_of(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

class RawMessages : public test::StoreTest {};

TEST_P(RawMessages, RoundTripByteForByte) {
  auto store = open_store();
  ASSERT_TRUE(store);
  std::string data = "From: a@example.org\r\nSubject: x\r\n\r\n";
  for (int i = 0; i < 5000; ++i) data += "line " + std::to_string(i) + std::string("\0\xff\r\n", 4);
  MemorySource src(data);
  RawMessageInfo info;
  auto id = add_raw(*store, src, &info);
  EXPECT_EQ(info.size, data.size());
  EXPECT_EQ(info.sha256, Sha256::hex_of(data));
  EXPECT_LT(info.compressed_size, data.size() / 2);
  EXPECT_EQ(read_back(*store, id), data);
  auto got = store->get_raw_message(id);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->sha256, info.sha256);
  EXPECT_EQ(got->size, data.size());
  EXPECT_EQ(got->compressed_size, info.compressed_size);
  EXPECT_EQ(got->parse_status, ParseStatus::Unparsed);
  EXPECT_EQ(got->parse_error, "not a report");
  EXPECT_EQ(got->meta.source, "test");

  auto input = load_raw_input(*store, *got, scratch_dir());
  ASSERT_TRUE(input) << input.error().describe();
  EXPECT_TRUE(input->in_memory());
  EXPECT_EQ(input->memory(), data);
}

TEST_P(RawMessages, EmptyMessageRoundTrips) {
  auto store = open_store();
  ASSERT_TRUE(store);
  MemorySource src("");
  auto id = add_raw(*store, src);
  EXPECT_EQ(read_back(*store, id), "");
}

TEST_P(RawMessages, LargeMessageIsChunkedAndStreamedBackThroughAFile) {
  auto store = open_store({.chunk_size = 64 << 10});
  ASSERT_TRUE(store);
  constexpr std::uint64_t kSize = 12ull << 20;
  GeneratedSource src(kSize);
  RawMessageInfo info;
  auto id = add_raw(*store, src, &info);
  EXPECT_EQ(info.size, kSize);
  Sha256 expected;
  {
    GeneratedSource again(kSize);
    std::string buf(1 << 16, '\0');
    for (;;) {
      auto n = again.read(buf);
      ASSERT_TRUE(n);
      if (*n == 0) break;
      expected.update({buf.data(), *n});
    }
  }
  EXPECT_EQ(info.sha256, expected.hex());
  auto chunks = count_rows("raw_chunks", "message_id = " + std::to_string(id));
  EXPECT_GT(chunks, 1);
  EXPECT_EQ(
      count_rows("raw_chunks", "message_id = " + std::to_string(id) + " AND length(data) > 65536"),
      0);

  auto input = load_raw_input(*store, info, scratch_dir(), /*memory_limit=*/1 << 20);
  ASSERT_TRUE(input) << input.error().describe();
  EXPECT_FALSE(input->in_memory());
  EXPECT_EQ(input->size(), kSize);
  auto reader = input->open();
  ASSERT_TRUE(reader);
  Sha256 got;
  std::string buf(1 << 16, '\0');
  for (;;) {
    auto n = (*reader)->read(buf);
    ASSERT_TRUE(n);
    if (*n == 0) break;
    got.update({buf.data(), *n});
  }
  EXPECT_EQ(got.hex(), info.sha256);
}

TEST_P(RawMessages, ASourceErrorMidStreamStoresNothing) {
  auto store = open_store();
  ASSERT_TRUE(store);
  {
    auto tx = store->begin_write();
    ASSERT_TRUE(tx);
    FailingSource src;
    auto info = (*tx)->add_raw_message({1, "test", "", {}, ""}, src);
    ASSERT_FALSE(info);
    EXPECT_EQ(info.error().code, ErrorCode::Io);
  }
  EXPECT_EQ(count_rows("raw_messages"), 0);
  EXPECT_EQ(count_rows("raw_chunks"), 0);
}

TEST_P(RawMessages, ReadingAnUnknownMessageIsNotFound) {
  auto store = open_store();
  ASSERT_TRUE(store);
  auto st = store->read_raw(5, [](std::span<const char>) -> Status { return {}; });
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::NotFound);
}

INSTANTIATE_TEST_SUITE_P(Backends, RawMessages, test::kBothBackends, test::BackendName());

}  // namespace
}  // namespace mailreport::store

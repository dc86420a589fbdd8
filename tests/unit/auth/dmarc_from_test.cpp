// auth::simple_from_domain, the GMime-free path for everyday From values: differentially
// against mime::address_domains (GMime), which DMARC used for every message before. Wherever
// the fast path answers, its domain must be exactly the one GMime's parse gives; everywhere
// else it must decline.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "mailreport/auth/dmarc.hpp"
#include "mailreport/mime/address.hpp"

namespace {

using mailreport::auth::simple_from_domain;

// What DmarcEvaluator::evaluate makes of GMime's answer: distinct domains, normalized.
std::vector<std::string> gmime_domains(const std::string& value) {
  std::vector<std::string> out;
  for (auto d : mailreport::mime::address_domains(value)) {
    while (!d.empty() && (d.back() == ' ' || d.back() == '\t')) d.pop_back();
    if (!d.empty() && d.back() == '.') d.pop_back();
    std::transform(d.begin(), d.end(), d.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (std::find(out.begin(), out.end(), d) == out.end()) out.push_back(d);
  }
  return out;
}

TEST(SimpleFromDomain, TakesTheEverydayForms) {
  EXPECT_EQ(simple_from_domain("Sender <sender@bench.example>"), "bench.example");
  EXPECT_EQ(simple_from_domain("user@Example.COM"), "example.com");
  EXPECT_EQ(simple_from_domain("<user@example.com>"), "example.com");
  EXPECT_EQ(simple_from_domain("\"Last, First\" <first.last@mail.example.org>"),
            "mail.example.org");
  EXPECT_EQ(simple_from_domain("Jane O'Brien <jane+news@sub.example.co.uk>"), "sub.example.co.uk");
  EXPECT_EQ(simple_from_domain("  Name   <a@b-c.example>  "), "b-c.example");
}

TEST(SimpleFromDomain, LeavesTheRestToGMime) {
  for (const char* v :
       {"", "a@b.c, d@e.f", "Group: a@b.example;", "a@b.example (comment)",
        "=?utf-8?q?J=C3=B6rg?= <j@example.com>", "a@xn--bcher-kva.example", "user@localhost",
        "\"a\\\"b\" <a@b.example>", "a@b.example.", "Name <a@b.example", "Name\t<a@b.example>",
        "a@[192.0.2.1]", "J\xc3\xb6rg <j@example.com>", "a..b@example.com",
        "John Q. Public <j@e.example>"}) {
    EXPECT_EQ(simple_from_domain(v), std::nullopt) << v;
  }
}

TEST(SimpleFromDomain, AgreesWithGMimeWhereverItAnswers) {
  const std::vector<std::string> names = {"",
                                          "Name",
                                          "First Last",
                                          "\"Last, First\"",
                                          "\"a@b.example\"",
                                          "O'Brien",
                                          "=?utf-8?q?x?=",
                                          "John Q. Public",
                                          "Foo(comment)",
                                          "  spaced  ",
                                          "a\"b\"",
                                          "\"\"",
                                          "\"<x@y.z>\"",
                                          "x@y.example",
                                          "!#$%&'*+-/^_`{|}~",
                                          "\"a\\\"b\"",
                                          "Name:",
                                          "a,b"};
  const std::vector<std::string> locals = {
      "user",  "first.last",          "a+b",        "o'brien", "x=y", "q?z",   "a..b", ".a", "a.",
      "u_s-e", "!#$%&'*+-/=?^_`{|}~", "\"quoted\"", "\"q d\"", "",    "us er", "a(b)", "é"};
  const std::vector<std::string> labels = {"example",
                                           "EXAMPLE",
                                           "Bench",
                                           "a",
                                           "x1",
                                           "mail-out",
                                           "xn--bcher-kva",
                                           "XN--abc",
                                           "-bad",
                                           "bad-",
                                           "a--b",
                                           "sub_d",
                                           "123",
                                           std::string(63, 'l'),
                                           std::string(64, 'm'),
                                           "",
                                           "b c",
                                           "[192",
                                           "0]"};
  const std::string specials = " <>@,;:\"\\().[]\t\r\n\x80\xc3-=?xyzAZ09'_";

  std::mt19937 rng(20261121);
  // The first `good` entries of each list are in the fast path's grammar: picked more often,
  // so that the comparison runs often.
  auto pick = [&](const std::vector<std::string>& v, std::size_t good = 0) -> const std::string& {
    if (good > 0 && std::uniform_int_distribution<int>(0, 99)(rng) < 75) {
      return v[std::uniform_int_distribution<std::size_t>(0, good - 1)(rng)];
    }
    return v[std::uniform_int_distribution<std::size_t>(0, v.size() - 1)(rng)];
  };
  auto chance = [&](int percent) {
    return std::uniform_int_distribution<int>(0, 99)(rng) < percent;
  };

  std::size_t answered = 0;
  const std::size_t rounds = 200000;
  for (std::size_t n = 0; n < rounds; ++n) {
    std::string domain = pick(labels, 6);
    const int extra = std::uniform_int_distribution<int>(chance(90) ? 1 : 0, 3)(rng);
    for (int i = 0; i < extra; ++i) domain += "." + pick(labels, 6);
    if (chance(5)) domain += ".";
    std::string addr = pick(locals, 6) + "@" + domain;
    if (chance(3)) addr = pick(locals);  // no domain at all
    std::string value;
    switch (std::uniform_int_distribution<int>(0, 3)(rng)) {
      case 0: value = addr; break;
      case 1: value = pick(names, 6) + " <" + addr + ">"; break;
      case 2: value = pick(names, 6) + "<" + addr + ">"; break;
      default: value = "<" + addr + ">"; break;
    }
    if (chance(10)) value += ", " + pick(names) + " <" + pick(locals) + "@" + pick(labels) + ">";
    // Mutations: a special character inserted, a character removed, a run doubled.
    const int mutations = chance(70) ? 0 : std::uniform_int_distribution<int>(1, 3)(rng);
    for (int i = 0; i < mutations && !value.empty(); ++i) {
      const std::size_t at = std::uniform_int_distribution<std::size_t>(0, value.size() - 1)(rng);
      switch (std::uniform_int_distribution<int>(0, 2)(rng)) {
        case 0:
          value.insert(
              at, 1,
              specials[std::uniform_int_distribution<std::size_t>(0, specials.size() - 1)(rng)]);
          break;
        case 1: value.erase(at, 1); break;
        default: value.insert(at, value.substr(at, 2)); break;
      }
    }

    const auto fast = simple_from_domain(value);
    if (!fast) continue;
    ++answered;
    const auto slow = gmime_domains(value);
    ASSERT_EQ(slow, std::vector<std::string>{*fast}) << "value: [" << value << "]";
  }
  // The generator must exercise the fast path, not only its refusals.
  EXPECT_GT(answered, rounds / 10);
}

}  // namespace

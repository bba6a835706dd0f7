// wandb::FileStream: the file_stream requests of the online mode, as wandb-core builds them, and
// offsets that move on only when the server accepted a request (a resend carries the same offsets
// and the same lines).
#include <catch2/catch.hpp>

#include "trackers/wandb/file_stream.hpp"

using accel::wandb::FileStream;
using nlohmann::json;

TEST_CASE("a request carries the waiting lines at the server's offsets and the whole summary") {
  FileStream stream;
  CHECK_FALSE(stream.has_pending());
  stream.add_line("wandb-history.jsonl", R"({"_step":0,"x":1})");
  stream.add_line("wandb-history.jsonl", R"({"_step":1,"x":2})");
  stream.add_line("output.log", "ERROR 2026-12-01T21:28:12.582369 warning");
  stream.set_summary(R"({"x":1})");
  stream.set_summary(R"({"x":2})");
  const auto request = stream.next(100);
  CHECK(request.body == json::parse(R"({"files": {
      "wandb-history.jsonl": {"offset": 0, "content": ["{\"_step\":0,\"x\":1}", "{\"_step\":1,\"x\":2}"]},
      "output.log": {"offset": 0, "content": ["ERROR 2026-12-01T21:28:12.582369 warning"]},
      "wandb-summary.json": {"offset": 0, "content": ["{\"x\":2}"]}}})"));
  CHECK_FALSE(request.body.contains("complete"));
  stream.accepted(request);
  CHECK_FALSE(stream.has_pending());
  CHECK(stream.offset("wandb-history.jsonl") == 2);
  CHECK(stream.offset("output.log") == 1);
}

TEST_CASE("a request the server did not accept is built again with the same offsets and lines") {
  FileStream stream;
  for (int i = 0; i < 5; ++i) stream.add_line("wandb-history.jsonl", std::to_string(i));
  const auto first = stream.next(3);
  CHECK(first.body["files"]["wandb-history.jsonl"] ==
        json({{"offset", 0}, {"content", {"0", "1", "2"}}}));
  // Not accepted (the server answered 503): lines added meanwhile wait behind the same ones.
  stream.add_line("wandb-history.jsonl", "5");
  const auto again = stream.next(3);
  CHECK(again.body == first.body);
  stream.accepted(again);
  const auto rest = stream.next(10);
  CHECK(rest.body["files"]["wandb-history.jsonl"] ==
        json({{"offset", 3}, {"content", {"3", "4", "5"}}}));
  CHECK_FALSE(rest.body["files"].contains("wandb-summary.json"));  // unchanged: not sent
}

TEST_CASE("marks say when everything added before them is on the server") {
  FileStream stream;
  stream.add_line("wandb-history.jsonl", "a");
  stream.set_summary("{}");
  const auto mark = stream.mark();
  stream.add_line("wandb-history.jsonl", "b");
  const auto later = stream.mark();
  CHECK_FALSE(stream.delivered(mark));
  stream.accepted(stream.next(1));
  CHECK(stream.delivered(mark));
  CHECK_FALSE(stream.delivered(later));
  stream.accepted(stream.next(1));
  CHECK(stream.delivered(later));
}

TEST_CASE("the final request names the uploaded files and carries complete and the exit code") {
  FileStream stream;
  stream.add_uploaded("config.yaml");
  stream.add_uploaded("media/images/img_0_abc.png");
  const auto last = stream.next(100, 1);
  CHECK(last.body == json::parse(R"({"files": {}, "uploaded": ["config.yaml",
      "media/images/img_0_abc.png"], "complete": true, "exitcode": 1})"));
  stream.accepted(last);
  CHECK_FALSE(stream.has_pending());
  CHECK_FALSE(stream.next(100).body.contains("uploaded"));
}

#pragma once
// accel::comet::MessageSink: where CometTracker puts an experiment's messages — the messages.json
// lines of comet_ml 3.58.8's offline archive ({"type", "payload"}, comet_messages.hpp) and the
// files that file_upload messages name. Two sinks take the same messages: OfflineArchive writes
// them into the zip that `comet upload` sends later; OnlineExperiment sends each one as the
// uploader would send it (shared/research/comet-formats.md §2.2), so an online run and the upload
// of the same run's archive give the server the same state.
// Thread-safety: none (CometTracker serialises its calls).
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace accel::comet {

class MessageSink {
 public:
  virtual ~MessageSink() = default;
  // One message; payload.file_path of a file_upload names a file add_file returned.
  virtual void add_message(std::string_view type, nlohmann::json payload) = 0;
  // Stores content for the next file_upload message and returns its name (payload.file_path).
  virtual std::string add_file(std::string_view content, std::string_view suffix) = 0;
};

}  // namespace accel::comet

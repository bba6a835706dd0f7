#include "trackers/wandb/file_stream.hpp"

#include <algorithm>

namespace accel::wandb {

void FileStream::start_at(const std::string& file, int64_t lines) {
  files_[file].offset = lines;
}

void FileStream::add_line(const std::string& file, std::string line) {
  pending_bytes_ += line.size();
  files_[file].waiting.push_back(std::move(line));
}

void FileStream::set_summary(std::string summary) {
  summary_ = std::move(summary);
  ++summary_version_;
}

void FileStream::add_uploaded(std::string name) {
  uploaded_.push_back(std::move(name));
}

bool FileStream::has_pending() const {
  return pending_lines() > 0 || summary_sent_ < summary_version_ || !uploaded_.empty();
}

std::size_t FileStream::pending_lines() const {
  std::size_t lines = 0;
  for (const auto& [name, file] : files_) lines += file.waiting.size();
  return lines;
}

int64_t FileStream::offset(const std::string& file) const {
  auto it = files_.find(file);
  return it == files_.end() ? 0 : it->second.offset;
}

FileStream::Mark FileStream::mark() const {
  Mark mark;
  for (const auto& [name, file] : files_) {
    mark.lines[name] = file.offset + static_cast<int64_t>(file.waiting.size());
  }
  mark.summary_version = summary_version_;
  return mark;
}

bool FileStream::delivered(const Mark& mark) const {
  if (summary_sent_ < mark.summary_version) return false;
  return std::all_of(mark.lines.begin(), mark.lines.end(),
                     [&](const auto& entry) { return offset(entry.first) >= entry.second; });
}

FileStream::Request FileStream::next(std::size_t max_lines,
                                     std::optional<int> final_exit_code) const {
  Request request;
  nlohmann::json files = nlohmann::json::object();
  for (const auto& [name, file] : files_) {
    if (file.waiting.empty()) continue;
    const std::size_t n = std::min(max_lines, file.waiting.size());
    nlohmann::json content = nlohmann::json::array();
    for (std::size_t i = 0; i < n; ++i) content.push_back(file.waiting[i]);
    files[name] = {{"offset", file.offset}, {"content", std::move(content)}};
    request.lines[name] = n;
  }
  if (summary_sent_ < summary_version_) {
    files[kSummaryFile] = {{"offset", 0}, {"content", nlohmann::json::array({summary_})}};
    request.summary = true;
    request.summary_version = summary_version_;
  }
  request.body = {{"files", std::move(files)}};
  if (!uploaded_.empty()) {
    request.body["uploaded"] = uploaded_;
    request.uploaded = uploaded_.size();
  }
  if (final_exit_code) {
    request.body["complete"] = true;
    request.body["exitcode"] = *final_exit_code;
  }
  return request;
}

void FileStream::accepted(const Request& request) {
  for (const auto& [name, n] : request.lines) {
    auto& file = files_[name];
    for (std::size_t i = 0; i < n; ++i) pending_bytes_ -= file.waiting[i].size();
    file.waiting.erase(file.waiting.begin(), file.waiting.begin() + static_cast<std::ptrdiff_t>(n));
    file.offset += static_cast<int64_t>(n);
  }
  if (request.summary) summary_sent_ = std::max(summary_sent_, request.summary_version);
  uploaded_.erase(uploaded_.begin(),
                  uploaded_.begin() + static_cast<std::ptrdiff_t>(request.uploaded));
}

}  // namespace accel::wandb

#include "hub_record.hpp"

namespace accel::detail {

JournalRecord HubRecord::to_journal_record() const {
  JournalRecord record;
  record.kind = kind;
  record.step = step;
  if (values) record.values = *values;
  if (config) record.config = *config;
  record.status = status;
  record.time = time;
  return record;
}

HubRecord HubRecord::from_journal_record(JournalRecord record) {
  HubRecord out;
  out.kind = record.kind;
  out.step = record.step;
  out.status = record.status;
  out.time = record.time;
  if (record.kind == RecordKind::log) {
    out.bytes = record.values.approximate_bytes();
    out.values = std::make_shared<const Values>(std::move(record.values));
  }
  if (record.kind == RecordKind::config) {
    out.config = std::make_shared<const nlohmann::json>(std::move(record.config));
  }
  return out;
}

void RecordQueue::grow() {
  std::vector<HubRecord> bigger(ring_.empty() ? 64 : ring_.size() * 2);
  for (std::size_t i = 0; i < size_; ++i) bigger[i] = std::move(ring_[(head_ + i) % ring_.size()]);
  ring_ = std::move(bigger);
  head_ = 0;
}

void RecordQueue::push_back(HubRecord record) {
  if (size_ == ring_.size()) grow();
  bytes_ += record.bytes;
  ring_[(head_ + size_) % ring_.size()] = std::move(record);
  ++size_;
}

void RecordQueue::push_front(HubRecord record) {
  if (size_ == ring_.size()) grow();
  bytes_ += record.bytes;
  head_ = (head_ + ring_.size() - 1) % ring_.size();
  ring_[head_] = std::move(record);
  ++size_;
}

HubRecord RecordQueue::pop_front() {
  HubRecord record = std::move(ring_[head_]);
  ring_[head_] = HubRecord{};
  head_ = (head_ + 1) % ring_.size();
  --size_;
  bytes_ -= record.bytes;
  return record;
}

void RecordQueue::drain_into(std::vector<HubRecord>& out) {
  while (size_ > 0) out.push_back(pop_front());
}

}  // namespace accel::detail

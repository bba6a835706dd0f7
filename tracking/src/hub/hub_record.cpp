#include "hub/hub_record.hpp"

namespace accel::detail {

namespace {
// malloc's cost of one allocation of n bytes (glibc: 16-byte header, 16-byte granularity).
constexpr std::size_t allocation(std::size_t n) {
  return n == 0 ? 0 : (n + 8 + 15) / 16 * 16;
}
constexpr std::size_t heap_string(const std::string& s) {
  return s.capacity() > 15 ? allocation(s.capacity() + 1) : 0;
}
}  // namespace

std::size_t HubRecord::memory_bytes(const Values& values) {
  // make_shared<Values>: control block + object; the entries' vector; each key's and string's heap.
  std::size_t n = 2 * sizeof(HubRecord) + allocation(sizeof(Values) + 16) +
                  allocation(values.capacity() * sizeof(Values::Entry));
  for (const auto& [key, value] : values) {
    n += heap_string(key);
    if (const auto* text = value.get_if<std::string>()) {
      n += heap_string(*text);
    } else if (!value.is_scalar()) {
      n += 2 * value.approximate_bytes();  // containers of containers: generous
    }
  }
  return n;
}

std::size_t HubRecord::memory_bytes(const nlohmann::json& config) {
  return 2 * sizeof(HubRecord) + 4 * config.dump().size() + 256;
}

JournalRecordView HubRecord::journal_view() const {
  JournalRecordView view;
  view.kind = kind;
  view.sequence = sequence;
  view.time = time;
  view.step = step;
  view.values = values.get();
  view.json = config.get();
  view.status = status;
  return view;
}

HubRecord HubRecord::from_journal_record(JournalRecord record) {
  HubRecord out;
  out.kind = record.kind;
  out.sequence = record.sequence;
  out.step = record.step;
  out.status = record.status;
  out.time = record.time;
  if (record.kind == RecordKind::log) {
    out.bytes = memory_bytes(record.values);
    out.values = std::make_shared<const Values>(std::move(record.values));
  }
  if (record.kind == RecordKind::config) {
    out.bytes = memory_bytes(record.config);
    out.config = std::make_shared<const nlohmann::json>(std::move(record.config));
  }
  return out;
}

void RecordQueue::push_back(HubRecord record) {
  bytes_ += record.bytes;
  records_.push_back(std::move(record));
}

void RecordQueue::push_front(HubRecord record) {
  bytes_ += record.bytes;
  records_.push_front(std::move(record));
}

HubRecord RecordQueue::pop_front() {
  HubRecord record = std::move(records_.front());
  records_.pop_front();
  bytes_ -= record.bytes;
  return record;
}

void RecordQueue::drain_into(std::vector<HubRecord>& out) {
  while (!records_.empty()) out.push_back(pop_front());
}

}  // namespace accel::detail

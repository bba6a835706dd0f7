// checkpoint::StateComponent and the walks over a table of them (see state_components.hpp).
#include "training/checkpoint/state_components.hpp"

#include <fmt/format.h>

#include "accel/checkpoint.hpp"

namespace accel::checkpoint {
namespace fs = std::filesystem;

std::string StateComponent::file_name(std::size_t index) const {
  return indexed ? fmt::format("{}_{}.pt", stem, index) : fmt::format("{}.pt", stem);
}

void write_components(std::span<const StateComponent> components, const fs::path& dir) {
  for (const StateComponent& component : components) {
    for (std::size_t i = 0; i < component.count; ++i) {
      write_archive(dir / component.file_name(i),
                    [&](torch::serialize::OutputArchive& archive) { component.save(i, archive); });
    }
  }
}

void read_components(std::span<const StateComponent> components, const fs::path& dir,
                     torch::Device device) {
  for (const StateComponent& component : components) {
    for (std::size_t i = 0; i < component.count; ++i) {
      const fs::path path = dir / component.file_name(i);
      if (component.optional_on_load && !fs::exists(path)) continue;
      read_archive(
          path, [&](torch::serialize::InputArchive& archive) { component.load(i, archive); },
          component.load_to_device ? std::optional<torch::Device>(device) : std::nullopt);
    }
  }
}

void record_counts(std::span<const StateComponent> components, nlohmann::json& metadata) {
  for (const StateComponent& component : components) {
    if (component.metadata_key != nullptr) metadata[component.metadata_key] = component.count;
  }
}

void check_counts(std::span<const StateComponent> components, const nlohmann::json& metadata,
                  const fs::path& source) {
  for (const StateComponent& component : components) {
    if (component.metadata_key == nullptr) continue;
    const auto saved = metadata.value(component.metadata_key, static_cast<std::size_t>(0));
    if (saved != component.count) {
      throw CheckpointError(
          fmt::format("checkpoint {} holds {} {} but this program prepared/registered {}: load it "
                      "with the same setup",
                      source.string(), saved, component.metadata_key, component.count));
    }
  }
}

}  // namespace accel::checkpoint

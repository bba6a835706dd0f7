#include "trackers/wandb/artifact_manifest.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <fstream>
#include <memory>
#include <random>

#include "accel/tracking/errors.hpp"
#include "common/record_file.hpp"
#include "wandb_internal.pb.h"

namespace accel::wandb {
namespace {

constexpr std::size_t kNameMaxLength = 128;  // the SDK's NAME_MAXLEN
constexpr const char* kManifestDigestPrefix = "wandb-artifact-manifest-v1\n";
constexpr const char* kStoragePolicy = "wandb-storage-policy-v1";

using DigestContext = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

DigestContext md5_context() {
  DigestContext context(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!context || EVP_DigestInit_ex(context.get(), EVP_md5(), nullptr) != 1) {
    throw TrackerError("wandb: OpenSSL could not start an MD5 digest");
  }
  return context;
}

std::string md5_final(EVP_MD_CTX* context) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  if (EVP_DigestFinal_ex(context, digest.data(), &size) != 1) {
    throw TrackerError("wandb: OpenSSL could not finish an MD5 digest");
  }
  return {reinterpret_cast<const char*>(digest.data()), size};
}

std::string base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                      reinterpret_cast<const unsigned char*>(bytes.data()),
                                      static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(written));
  return out;
}

std::string hex(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) out += fmt::format("{:02x}", c);
  return out;
}

bool name_character(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.';
}

void check_length(std::string_view what, const std::string& value) {
  if (value.empty() || value.size() > kNameMaxLength) {
    throw InvalidValue(fmt::format("wandb: artifact {} '{}' must have 1 to {} characters", what,
                                   value.substr(0, kNameMaxLength), kNameMaxLength));
  }
}

void check_characters(std::string_view what, const std::string& value, std::string_view banned) {
  if (value.find_first_of(banned) != std::string::npos) {
    throw InvalidValue(
        fmt::format("wandb: artifact {} '{}' must not contain any of \"{}\"", what, value, banned));
  }
}

}  // namespace

std::string md5_base64(std::string_view bytes) {
  auto context = md5_context();
  EVP_DigestUpdate(context.get(), bytes.data(), bytes.size());
  return base64(md5_final(context.get()));
}

std::string file_md5_base64(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw TrackerUnavailable(fmt::format("wandb: cannot read the artifact file '{}': {}",
                                         path.string(), detail::os_reason(errno)));
  }
  auto context = md5_context();
  std::vector<char> buffer(std::size_t{1} << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    EVP_DigestUpdate(context.get(), buffer.data(), static_cast<std::size_t>(in.gcount()));
  }
  if (in.bad()) {
    throw TrackerUnavailable(
        fmt::format("wandb: reading the artifact file '{}' failed", path.string()));
  }
  return base64(md5_final(context.get()));
}

std::string manifest_digest(const std::vector<ArtifactEntry>& entries) {
  std::vector<const ArtifactEntry*> sorted;
  for (const auto& entry : entries) sorted.push_back(&entry);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->path < b->path; });
  std::string text = kManifestDigestPrefix;
  for (const auto* entry : sorted) text += entry->path + ":" + entry->digest + "\n";
  auto context = md5_context();
  EVP_DigestUpdate(context.get(), text.data(), text.size());
  return hex(md5_final(context.get()));
}

std::string new_client_id() {
  static constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 random(std::random_device{}());
  std::uniform_int_distribution<std::size_t> pick(0, kAlphabet.size() - 1);
  std::string id(128, 'a');
  for (char& c : id) c = kAlphabet[pick(random)];
  return id;
}

std::string sanitize_artifact_name(std::string_view name) {
  std::string kept;
  for (char c : name) {
    if (name_character(c)) kept += c;
  }
  if (kept.size() == name.size()) return kept;
  const auto crc = static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(name.data()), static_cast<uInt>(name.size())));
  const std::string big_endian = {static_cast<char>(crc >> 24), static_cast<char>(crc >> 16),
                                  static_cast<char>(crc >> 8), static_cast<char>(crc)};
  std::string suffix = base64(big_endian);  // 8 characters, the last two "=="
  suffix.resize(6);
  std::replace(suffix.begin(), suffix.end(), '+', '-');
  std::replace(suffix.begin(), suffix.end(), '/', '_');
  return kept + "-" + suffix;
}

void validate_user_artifact(const std::string& name, const std::string& type,
                            const std::vector<std::string>& aliases) {
  check_length("name", name);
  check_characters("name", name, "/");
  check_length("type", type);
  check_characters("type", type, "/:");
  const bool reserved = type.starts_with("wandb-") || type == "job" ||
                        (type == "run_table" && name.starts_with("run-")) ||
                        (type == "code" && name.starts_with("source-"));
  if (reserved) {
    throw InvalidValue(fmt::format(
        "wandb: artifact type '{}' (for the name '{}') is reserved for W&B's own artifacts; "
        "choose another type (\"model\", \"dataset\", ...) or name",
        type, name));
  }
  for (const auto& alias : aliases) {
    check_length("alias", alias);
    check_characters("alias", alias, "/:");
  }
}

void seal(Artifact& artifact) {
  std::sort(artifact.entries.begin(), artifact.entries.end(),
            [](const auto& a, const auto& b) { return a.path < b.path; });
  for (std::size_t i = 1; i < artifact.entries.size(); ++i) {
    if (artifact.entries[i].path == artifact.entries[i - 1].path) {
      throw InvalidValue(fmt::format("wandb: artifact '{}' has the file '{}' twice", artifact.name,
                                     artifact.entries[i].path));
    }
  }
  artifact.digest = manifest_digest(artifact.entries);
}

std::string artifact_record(const Artifact& artifact, const std::string& run_id,
                            const std::string& project, const std::string& entity) {
  wandb_internal::ArtifactRecord record;
  record.set_run_id(run_id);
  record.set_project(project);
  if (!entity.empty()) record.set_entity(entity);
  record.set_type(artifact.type);
  record.set_name(artifact.name);
  record.set_digest(artifact.digest);
  if (!artifact.description.empty()) record.set_description(artifact.description);
  if (artifact.metadata.is_object()) record.set_metadata(artifact.metadata.dump());
  for (const auto& alias : artifact.aliases) record.add_aliases(alias);
  record.set_finalize(true);
  record.set_client_id(artifact.client_id);
  record.set_sequence_client_id(artifact.sequence_client_id);
  record.set_digest_algorithm("MANIFEST_MD5");
  auto* manifest = record.mutable_manifest();
  manifest->set_version(1);
  manifest->set_storage_policy(kStoragePolicy);
  auto* layout = manifest->add_storage_policy_config();
  layout->set_key("storageLayout");
  layout->set_value_json("\"V2\"");
  for (const auto& entry : artifact.entries) {
    auto* content = manifest->add_contents();
    content->set_path(entry.path);
    content->set_digest(entry.digest);
    content->set_size(entry.size);
    content->set_local_path(entry.local_path.string());
  }
  return record.SerializeAsString();
}

std::string manifest_json(const Artifact& artifact, const std::string& server_artifact_id) {
  nlohmann::ordered_json contents = nlohmann::ordered_json::object();
  for (const auto& entry : artifact.entries) {
    contents[entry.path] = {{"digest", entry.digest},
                            {"size", entry.size},
                            {"birthArtifactID", server_artifact_id},
                            {"skip_cache", false}};
  }
  const nlohmann::ordered_json manifest = {{"version", 1},
                                           {"storagePolicy", kStoragePolicy},
                                           {"storagePolicyConfig", {{"storageLayout", "V2"}}},
                                           {"contents", std::move(contents)}};
  return manifest.dump();
}

std::string client_artifact_path(const Artifact& artifact, std::string_view entry) {
  return fmt::format("wandb-client-artifact://{}/{}", artifact.client_id, entry);
}

std::string latest_client_artifact_path(const Artifact& artifact, std::string_view entry) {
  return fmt::format("wandb-client-artifact://{}:latest/{}", artifact.sequence_client_id, entry);
}

}  // namespace accel::wandb

#include "trackers/wandb/wandb_api.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "accel/tracking/errors.hpp"
#include "net/basic_authorization.hpp"
#include "net/http_client.hpp"
#include "net/request_retry.hpp"

namespace accel::detail {

namespace {

// The operations as wandb-core 0.31.0 sends them (the server validates them against its schema).
constexpr const char* kViewerQuery = R"(query Viewer {
	viewer {
		id
		entity
		username
		email
		flags
		teams {
			edges {
				node {
					name
				}
			}
		}
	}
})";

constexpr const char* kUpsertBucketMutation =
    R"(mutation UpsertBucket ($id: String, $name: String, $project: String, $entity: String, $groupName: String, $description: String, $displayName: String, $notes: String, $commit: String, $config: JSONString, $host: String, $debug: Boolean, $program: String, $repo: String, $jobType: String, $state: String, $sweep: String, $tags: [String!], $summaryMetrics: JSONString) {
	upsertBucket(input: {id:$id,name:$name,groupName:$groupName,modelName:$project,entityName:$entity,description:$description,displayName:$displayName,notes:$notes,config:$config,commit:$commit,host:$host,debug:$debug,jobProgram:$program,jobRepo:$repo,jobType:$jobType,state:$state,sweep:$sweep,tags:$tags,summaryMetrics:$summaryMetrics}) {
		bucket {
			id
			name
			displayName
			description
			config
			sweepName
			project {
				id
				name
				entity {
					id
					name
				}
			}
			historyLineCount
		}
		inserted
	}
})";

constexpr const char* kRunResumeStatusQuery =
    R"(query RunResumeStatus ($project: String, $entity: String, $name: String!) {
	model(name: $project, entityName: $entity) {
		id
		name
		entity {
			id
			name
		}
		bucket(name: $name, missingOk: true) {
			id
			name
			summaryMetrics
			displayName
			logLineCount
			historyLineCount
			eventsLineCount
			historyTail
			eventsTail
			config
			tags
			notes
			wandbConfig(keys: ["t"])
		}
	}
})";

constexpr const char* kCreateRunFilesMutation =
    R"(mutation CreateRunFiles ($entity: String!, $project: String!, $run: String!, $files: [String!]!) {
	createRunFiles(input: {entityName:$entity,projectName:$project,runName:$run,files:$files}) {
		runID
		uploadHeaders
		files {
			name
			uploadUrl
		}
	}
})";

template <typename T>
nlohmann::json or_null(const std::optional<T>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

// A JSONString field: a string holding JSON, or null/absent.
nlohmann::json parse_json_string(const nlohmann::json& field) {
  if (!field.is_string()) return nlohmann::json::object();
  auto parsed = nlohmann::json::parse(field.get<std::string>(), nullptr, false);
  return parsed.is_discarded() ? nlohmann::json::object() : parsed;
}

int64_t count_field(const nlohmann::json& bucket, const char* name) {
  auto it = bucket.find(name);
  return it != bucket.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

// historyTail: a JSON string of a list of JSON strings, the last rows. The last row, or null.
nlohmann::json last_row_of(const nlohmann::json& history_tail) {
  const auto rows = parse_json_string(history_tail);
  if (!rows.is_array() || rows.empty() || !rows.back().is_string()) return nullptr;
  auto row = nlohmann::json::parse(rows.back().get<std::string>(), nullptr, false);
  return row.is_object() ? row : nlohmann::json();
}

}  // namespace

bool wandb_transient_status(long status) {
  return status == 429 || (status >= 500 && status != 501);
}

WandbApi::WandbApi(WandbServer server, HttpOptions http, RetryPolicy retry)
    : server_(std::move(server)),
      retry_(retry),
      api_http_(std::make_unique<HttpClient>(http)),
      upload_http_(std::make_unique<HttpClient>(http)),
      random_(std::random_device{}()) {
  while (!server_.base_url.empty() && server_.base_url.back() == '/') server_.base_url.pop_back();
  api_http_->set_authorization(basic_authorization("api", server_.api_key));
}

WandbApi::~WandbApi() = default;

std::string WandbApi::send(HttpClient& http, const char* method, const std::string& url,
                           const std::string& body, const std::string& content_type,
                           const std::string& what, const std::vector<std::string>& headers) {
  return retried(http, what, [&] { return http.send(method, url, body, content_type, headers); });
}

std::string WandbApi::retried(HttpClient& http, const std::string& what,
                              const std::function<HttpResponse()>& attempt) {
  RetriedRequest request;
  request.attempt = [&] {
    ++requests_sent_;
    return attempt();
  };
  request.transient_status = [](long status) { return wandb_transient_status(status); };
  request.wait_before_retry = [this](int retry, std::optional<std::chrono::milliseconds> after) {
    return retry_.backoff(retry, after, random_);
  };
  request.max_attempts = retry_.max_attempts;

  RetryOutcome outcome;
  try {
    outcome = send_with_retries(request);
  } catch (const HttpTransportError& e) {
    throw TrackerError(
        fmt::format("cannot reach the W&B server {} for {}: {}", server_.base_url, what, e.what()));
  }
  if (!outcome.response) {
    throw TrackerUnavailable(fmt::format("W&B server {} did not accept {} after {} attempt{}: {}",
                                         server_.base_url, what, outcome.attempts,
                                         outcome.attempts == 1 ? "" : "s", outcome.last_problem));
  }
  const HttpResponse& response = *outcome.response;
  if (&http == upload_http_.get() && (response.status == 401 || response.status == 403)) {
    throw TrackerError(fmt::format(
        "the storage behind W&B server {} refused {} (HTTP {}): the pre-signed upload URL "
        "expired or its headers did not match; the run's .wandb file keeps it for `wandb sync`",
        server_.base_url, what, response.status));
  }
  if (response.status == 401 || response.status == 403) {
    throw TrackerError(fmt::format(
        "W&B server {} refused the API key for {} (HTTP {}): set WANDB_API_KEY (or a ~/.netrc "
        "entry for its host) to a valid key of that server, or use WANDB_MODE=offline",
        server_.base_url, what, response.status));
  }
  if (response.status < 200 || response.status >= 300) {
    throw TrackerError(fmt::format("W&B server {} rejected {} (HTTP {}): {}", server_.base_url,
                                   what, response.status, response.body.substr(0, 300)));
  }
  return response.body;
}

nlohmann::json WandbApi::graphql(const char* operation, const char* query,
                                 nlohmann::json variables) {
  const nlohmann::json body = {
      {"operationName", operation}, {"query", query}, {"variables", std::move(variables)}};
  const std::string what = fmt::format("GraphQL {}", operation);
  auto answer = nlohmann::json::parse(send(*api_http_, "POST", server_.base_url + "/graphql",
                                           body.dump(), "application/json", what),
                                      nullptr, false);
  if (answer.is_discarded() || !answer.is_object()) {
    throw TrackerError(fmt::format("W&B server {} answered {} with something that is not JSON",
                                   server_.base_url, what));
  }
  if (auto errors = answer.find("errors"); errors != answer.end() && !errors->empty()) {
    const auto& first = errors->front();
    throw TrackerError(fmt::format(
        "W&B server {} refused {}: {}", server_.base_url, what,
        first.is_object() && first.contains("message") ? first["message"].dump() : errors->dump()));
  }
  return answer.value("data", nlohmann::json::object());
}

std::string WandbApi::viewer_entity() {
  const auto data = graphql("Viewer", kViewerQuery, nlohmann::json::object());
  const auto viewer = data.value("viewer", nlohmann::json());
  if (!viewer.is_object() || !viewer.value("entity", nlohmann::json()).is_string()) {
    throw TrackerError(fmt::format(
        "W&B server {} knows no user for this API key (Viewer has no entity): check WANDB_API_KEY",
        server_.base_url));
  }
  return viewer["entity"].get<std::string>();
}

WandbRunPath WandbApi::upsert_run(const WandbRunUpsert& run) {
  nlohmann::json variables = {
      {"name", run.name},
      {"project", run.project},
      {"entity", or_null(run.entity)},
      {"displayName", or_null(run.display_name)},
      {"notes", or_null(run.notes)},
      {"groupName", or_null(run.group)},
      {"jobType", or_null(run.job_type)},
      {"tags", or_null(run.tags)},
      {"host", or_null(run.host)},
      {"program", or_null(run.program)},
      {"config", run.config ? nlohmann::json(run.config->dump()) : nlohmann::json(nullptr)}};
  const auto data = graphql("UpsertBucket", kUpsertBucketMutation, std::move(variables));
  const auto bucket = data.value("upsertBucket", nlohmann::json::object())
                          .value("bucket", nlohmann::json::object());
  const auto project = bucket.value("project", nlohmann::json::object());
  const auto entity = project.value("entity", nlohmann::json::object());
  if (!bucket.value("name", nlohmann::json()).is_string() ||
      !entity.value("name", nlohmann::json()).is_string()) {
    throw TrackerError(fmt::format(
        "W&B server {} answered UpsertBucket without the run's name and entity", server_.base_url));
  }
  return {entity["name"].get<std::string>(), project.value("name", run.project),
          bucket["name"].get<std::string>()};
}

std::optional<WandbResumeState> WandbApi::resume_status(const WandbRunPath& run) {
  const auto data = graphql(
      "RunResumeStatus", kRunResumeStatusQuery,
      {{"project", run.project},
       {"entity", run.entity.empty() ? nlohmann::json(nullptr) : nlohmann::json(run.entity)},
       {"name", run.name}});
  const auto bucket =
      data.value("model", nlohmann::json::object()).value("bucket", nlohmann::json());
  if (!bucket.is_object()) return std::nullopt;
  // A run exists for W&B only once a client wrote its "t" config key (as wandb-core checks).
  const auto wandb_config = bucket.value("wandbConfig", nlohmann::json());
  if (!wandb_config.is_string() ||
      wandb_config.get<std::string>().find("\"t\"") == std::string::npos) {
    return std::nullopt;
  }
  WandbResumeState state;
  state.history_line_count = count_field(bucket, "historyLineCount");
  state.events_line_count = count_field(bucket, "eventsLineCount");
  state.log_line_count = count_field(bucket, "logLineCount");
  state.last_row = last_row_of(bucket.value("historyTail", nlohmann::json()));
  if (state.last_row.contains("_step") && state.last_row["_step"].is_number_integer()) {
    state.last_step = state.last_row["_step"].get<int64_t>();
  }
  state.summary = parse_json_string(bucket.value("summaryMetrics", nlohmann::json()));
  state.config = parse_json_string(bucket.value("config", nlohmann::json()));
  return state;
}

std::map<std::string, std::string> WandbApi::create_run_files(
    const WandbRunPath& run, const std::vector<std::string>& files) {
  const auto data = graphql(
      "CreateRunFiles", kCreateRunFilesMutation,
      {{"entity", run.entity}, {"project", run.project}, {"run", run.name}, {"files", files}});
  std::map<std::string, std::string> urls;
  const auto created = data.value("createRunFiles", nlohmann::json::object())
                           .value("files", nlohmann::json::array());
  for (const auto& file : created) {
    if (file.value("name", nlohmann::json()).is_string() &&
        file.value("uploadUrl", nlohmann::json()).is_string()) {
      urls[file["name"].get<std::string>()] = file["uploadUrl"].get<std::string>();
    }
  }
  for (const auto& file : files) {
    if (!urls.contains(file)) {
      throw TrackerError(fmt::format("W&B server {} gave no upload URL for the run file '{}'",
                                     server_.base_url, file));
    }
  }
  return urls;
}

namespace {

// W&B's uploadHeaders ("Name:value") as the request's content type and its other headers.
std::pair<std::string, std::vector<std::string>> split_upload_headers(
    const std::vector<std::string>& headers) {
  std::string content_type;
  std::vector<std::string> extra;
  for (const auto& header : headers) {
    const auto colon = header.find(':');
    if (colon == std::string::npos) continue;
    std::string name = header.substr(0, colon);
    std::string value = header.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (lower == "content-type") {
      content_type = value;
    } else {
      extra.push_back(name + ": " + value);
    }
  }
  return {content_type, extra};
}

}  // namespace

void WandbApi::upload(const std::string& url, const std::string& bytes, const std::string& what,
                      const std::vector<std::string>& headers) {
  // Pre-signed URL semantics: no credentials, and no Content-Type unless the server names one
  // (the signature may cover the headers).
  const auto [content_type, extra] = split_upload_headers(headers);
  send(*upload_http_, "PUT", url, bytes, content_type, fmt::format("the upload of {}", what),
       extra);
}

void WandbApi::upload_file(const std::string& url, const std::filesystem::path& file,
                           const std::string& what, const std::vector<std::string>& headers) {
  const auto [content_type, extra] = split_upload_headers(headers);
  retried(*upload_http_, fmt::format("the upload of {}", what),
          [&] { return upload_http_->send_file("PUT", url, file, content_type, extra); });
}

nlohmann::json WandbApi::send_file_stream(const WandbRunPath& run, const nlohmann::json& request) {
  const std::string url =
      fmt::format("{}/files/{}/{}/{}/file_stream", server_.base_url, HttpClient::escape(run.entity),
                  HttpClient::escape(run.project), HttpClient::escape(run.name));
  auto answer = nlohmann::json::parse(
      send(*api_http_, "POST", url,
           request.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
           "application/json", "file_stream"),
      nullptr, false);
  return answer.is_discarded() ? nlohmann::json::object() : answer;
}

}  // namespace accel::detail

#pragma once
// Running the project's Python (.venv/bin/python, where the real readers live: TensorBoard, mlflow,
// PyYAML, Pillow, torch) from a test: the one way tests check what accel wrote with real tools.
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace accel::test {

// <source>/.venv/bin/python.
std::filesystem::path python_interpreter();

// A helper script of the test suite: <source>/tests/<relative>, e.g. "trackers/mlflow/read_run.py".
std::filesystem::path test_script(std::string_view relative);

// Runs `python -W ignore <script> args...` and returns what it printed on stdout (stderr is kept
// apart, so warnings never reach the result). Fails the test (REQUIRE) when Python does not exit
// with 0, with the command, stdout and stderr in the message.
std::string run_python_script(const std::filesystem::path& script,
                              const std::vector<std::string>& args = {});

// The same for a program given as text (written to a temporary file first).
std::string run_python_code(std::string_view code, const std::vector<std::string>& args = {});

}  // namespace accel::test

#include "python.hpp"

#include <catch2/catch.hpp>
#include <fstream>
#include <iterator>

#include "shell.hpp"
#include "temp_dir.hpp"

namespace accel::test {

std::filesystem::path python_interpreter() {
  return ACCEL_PYTHON;
}

std::filesystem::path test_script(std::string_view relative) {
  return std::filesystem::path(ACCEL_SOURCE_DIR) / "tests" / relative;
}

std::string run_python_script(const std::filesystem::path& script,
                              const std::vector<std::string>& args) {
  TempDir dir("accel-python");
  const auto stderr_path = dir / "stderr";
  std::string command =
      shell_quote(python_interpreter().string()) + " -W ignore " + shell_quote(script.string());
  for (const auto& arg : args) command += " " + shell_quote(arg);
  const ShellResult result = run_shell(command + " 2>" + shell_quote(stderr_path.string()));
  std::ifstream err(stderr_path, std::ios::binary);
  const std::string errors((std::istreambuf_iterator<char>(err)), std::istreambuf_iterator<char>());
  INFO("command: " << command << "\nstdout:\n"
                   << result.output.substr(0, 8000) << "\nstderr:\n"
                   << errors.substr(0, 8000));
  REQUIRE(result.exit_code() == 0);
  return result.output;
}

std::string run_python_code(std::string_view code, const std::vector<std::string>& args) {
  TempDir dir("accel-python");
  const auto script = dir / "script.py";
  std::ofstream(script) << code;
  return run_python_script(script, args);
}

}  // namespace accel::test

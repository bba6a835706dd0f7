// A program outside the accel tree that uses the installed accel::tracking package.
#include <accel/tracking/values.hpp>
#include <iostream>

int main() {
  accel::Values values{{"loss", 0.25}, {"step_count", 3}, {"note", "hello"}};
  if (values.size() != 3 || !values.find("loss")->is_scalar() ||
      values.find("loss")->as_double() != 0.25) {
    std::cerr << "consumer: unexpected values\n";
    return 1;
  }
  std::cout << "consumer: tracking ok" << std::endl;
  return 0;
}

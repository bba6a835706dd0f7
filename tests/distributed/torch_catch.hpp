#pragma once
// Catch2 next to LibTorch. c10/util/logging_is_not_google_glog.h defines CHECK as a fatal assertion
// (abort, no report); if it is included after Catch it silently replaces Catch's CHECK. Include this
// header first in every test that uses tensors: LibTorch first, its CHECK dropped, then Catch.
#include <torch/torch.h>
#undef CHECK
#include <catch2/catch.hpp>

#pragma once
// Moved to <accel/process_group_collectives.hpp>; this path keeps existing includes compiling.
#include "accel/process_group_collectives.hpp"

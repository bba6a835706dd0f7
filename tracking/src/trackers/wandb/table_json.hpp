#pragma once
// accel::wandb::sdk_table_json: the JSON of a Table in its run_table artifact, byte for byte as
// wandb 0.31.0's wandb.Table writes it there (Python's json.dumps with sort_keys, ", " and ": "
// separators, ASCII-only strings, Python's float repr), so that the same table logged by accel
// and by the SDK has the same entry digest and W&B stores it once:
//
//   {"_type": "table", "column_types": {"params": {"type_map": {<column>: {"params":
//    {"allowed_types": [{"wb_type": "none"}, {"wb_type": "number"}]}, "wb_type": "union"}, ...}},
//    "wb_type": "typedDict"}, "columns": [...], "data": [[...], ...], "log_mode": "IMMUTABLE",
//   "ncols": n, "nrows": m}
//
// column_types is W&B's type of each column: a union of "none" and the one type of its values
// ("number", "string", "boolean"; "unknown" for a column of nulls only), the union's members in
// name order. Columns of lists or objects, or of values of several types (which wandb.Table
// refuses), have types accel does not infer: column_types is then left out and W&B infers them
// when it reads the table (wandb.Table.from_json accepts that). In the data, NaN is written as
// null and ±infinity as Infinity / -Infinity, as the SDK writes them.
// Thread-safety: pure functions.
#include <string>

#include "accel/tracking/values.hpp"

namespace accel::wandb {

std::string sdk_table_json(const Table& table);

// A finite double as Python's repr() writes it: the shortest digits that read back as d, fixed
// notation for 1e-4 <= |d| < 1e16 (with ".0" for whole numbers), else d.ddde±XX.
std::string python_float_repr(double d);

}  // namespace accel::wandb

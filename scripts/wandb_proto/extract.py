"""Writes the wandb_internal.Record subset that accel's W&B tracker uses as .proto text.

The source is the pinned wandb wheel itself: it ships no .proto files, only compiled *_pb2 modules,
whose serialized FileDescriptorProtos hold every message, field number and type. This script loads
them, keeps Record with the record types accel writes (ROOT_RECORD_TYPES) and every message and enum
those reach, leaves out the fields that would pull in other files (LEFT_OUT_TYPES, e.g. the
telemetry protos), and prints the result as one proto3 file in package wandb_internal, so that the
field numbers and types are exactly the wheel's.

    .venv/bin/python scripts/wandb_proto/extract.py            # rewrites the committed file
    .venv/bin/python scripts/wandb_proto/extract.py --check    # exits 1 when it differs

Output: tracking/src/trackers/wandb/proto/wandb_internal.proto
"""

import argparse
import difflib
import pathlib
import sys

import google.protobuf
from google.protobuf import descriptor_pb2

import wandb
import wandb.proto.wandb_base_pb2 as wandb_base_pb2
import wandb.proto.wandb_internal_pb2 as wandb_internal_pb2

PACKAGE = "wandb_internal"
OUTPUT = (pathlib.Path(__file__).resolve().parents[2]
          / "tracking/src/trackers/wandb/proto/wandb_internal.proto")

# The members of Record's oneof record_type that accel writes (or may write soon: artifact for
# tables and log_model). Record's other fields (num, control, uuid, _info) are kept.
ROOT_RECORD_TYPES = [
    "history", "summary", "config", "files", "artifact", "metric", "output_raw", "run", "exit",
    "final", "header", "footer", "environment",
]
# Fields of these types are left out (they live in other .proto files of the wheel that accel
# does not need: the telemetry feature flags).
LEFT_OUT_TYPES = {".wandb_internal.TelemetryRecord"}

SCALAR_NAMES = {
    descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE: "double",
    descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT: "float",
    descriptor_pb2.FieldDescriptorProto.TYPE_INT64: "int64",
    descriptor_pb2.FieldDescriptorProto.TYPE_UINT64: "uint64",
    descriptor_pb2.FieldDescriptorProto.TYPE_INT32: "int32",
    descriptor_pb2.FieldDescriptorProto.TYPE_FIXED64: "fixed64",
    descriptor_pb2.FieldDescriptorProto.TYPE_FIXED32: "fixed32",
    descriptor_pb2.FieldDescriptorProto.TYPE_BOOL: "bool",
    descriptor_pb2.FieldDescriptorProto.TYPE_STRING: "string",
    descriptor_pb2.FieldDescriptorProto.TYPE_BYTES: "bytes",
    descriptor_pb2.FieldDescriptorProto.TYPE_UINT32: "uint32",
    descriptor_pb2.FieldDescriptorProto.TYPE_SFIXED32: "sfixed32",
    descriptor_pb2.FieldDescriptorProto.TYPE_SFIXED64: "sfixed64",
    descriptor_pb2.FieldDescriptorProto.TYPE_SINT32: "sint32",
    descriptor_pb2.FieldDescriptorProto.TYPE_SINT64: "sint64",
}
WELL_KNOWN_IMPORTS = {
    ".google.protobuf.Timestamp": "google/protobuf/timestamp.proto",
    ".google.protobuf.Empty": "google/protobuf/empty.proto",
    ".google.protobuf.NullValue": "google/protobuf/struct.proto",
    ".google.protobuf.Struct": "google/protobuf/struct.proto",
    ".google.protobuf.Value": "google/protobuf/struct.proto",
    ".google.protobuf.ListValue": "google/protobuf/struct.proto",
}


def file_proto(module):
    proto = descriptor_pb2.FileDescriptorProto()
    module.DESCRIPTOR.CopyToProto(proto)
    return proto


def index_types(files):
    """Full name (".wandb_internal.X.Y") -> DescriptorProto / EnumDescriptorProto."""
    types = {}

    def add_message(prefix, message):
        name = f"{prefix}.{message.name}"
        types[name] = message
        for nested in message.nested_type:
            add_message(name, nested)
        for enum in message.enum_type:
            types[f"{name}.{enum.name}"] = enum

    for proto in files:
        prefix = "." + proto.package
        for message in proto.message_type:
            add_message(prefix, message)
        for enum in proto.enum_type:
            types[f"{prefix}.{enum.name}"] = enum
    return types


def kept_fields(full_name, message):
    fields = []
    for field in message.field:
        if full_name == f".{PACKAGE}.Record" and field.HasField("oneof_index"):
            if field.name not in ROOT_RECORD_TYPES:
                continue
        if field.type_name in LEFT_OUT_TYPES:
            continue
        fields.append(field)
    return fields


def reachable(types, root):
    """Top-level type names reachable from root through kept fields, in discovery order."""
    seen, order, stack = set(), [], [root]
    while stack:
        name = stack.pop(0)
        top = top_level(name)
        if top in seen or not top.startswith(f".{PACKAGE}."):
            continue
        seen.add(top)
        order.append(top)
        for inner_name, inner in types.items():
            if inner_name != top and not inner_name.startswith(top + "."):
                continue
            if isinstance(inner, descriptor_pb2.DescriptorProto):
                for field in kept_fields(inner_name, inner):
                    if field.type_name:
                        stack.append(field.type_name)
    return order


def top_level(full_name):
    parts = full_name.split(".")  # ["", "wandb_internal", "X", ...]
    return ".".join(parts[:3])


def type_reference(type_name):
    prefix = f".{PACKAGE}."
    return type_name[len(prefix):] if type_name.startswith(prefix) else type_name[1:]


def field_type(field, types):
    if field.type_name:
        target = types.get(field.type_name)
        if isinstance(target, descriptor_pb2.DescriptorProto) and target.options.map_entry:
            key, value = target.field[0], target.field[1]
            return f"map<{field_type(key, types)}, {field_type(value, types)}>"
        return type_reference(field.type_name)
    return SCALAR_NAMES[field.type]


def is_map(field, types):
    target = types.get(field.type_name)
    return isinstance(target, descriptor_pb2.DescriptorProto) and target.options.map_entry


def print_enum(enum, indent, out):
    out.append(f"{indent}enum {enum.name} {{")
    for value in enum.value:
        out.append(f"{indent}  {value.name} = {value.number};")
    out.append(f"{indent}}}")


def print_field(field, types, indent, out):
    label = ""
    if field.label == descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED and not is_map(field, types):
        label = "repeated "
    elif field.proto3_optional:
        label = "optional "
    out.append(f"{indent}{label}{field_type(field, types)} {field.name} = {field.number};")


def print_message(full_name, message, types, indent, out):
    out.append(f"{indent}message {message.name} {{")
    inner = indent + "  "
    for enum in message.enum_type:
        print_enum(enum, inner, out)
    for nested in message.nested_type:
        if not nested.options.map_entry:
            print_message(f"{full_name}.{nested.name}", nested, types, inner, out)
    fields = kept_fields(full_name, message)
    printed_oneofs = set()
    for field in fields:
        if field.HasField("oneof_index") and not field.proto3_optional:
            index = field.oneof_index
            if index in printed_oneofs:
                continue
            printed_oneofs.add(index)
            out.append(f"{inner}oneof {message.oneof_decl[index].name} {{")
            for member in fields:
                if member.HasField("oneof_index") and member.oneof_index == index \
                        and not member.proto3_optional:
                    print_field(member, types, inner + "  ", out)
            out.append(f"{inner}}}")
        else:
            print_field(field, types, inner, out)
    for reserved in message.reserved_range:
        end = reserved.end - 1
        out.append(f"{inner}reserved {reserved.start}{'' if end == reserved.start else f' to {end}'};")
    for name in message.reserved_name:
        out.append(f'{inner}reserved "{name}";')
    out.append(f"{indent}}}")


def left_out_fields(types, kept):
    notes = []
    for name in kept:
        for inner_name, inner in types.items():
            if inner_name != name and not inner_name.startswith(name + "."):
                continue
            if not isinstance(inner, descriptor_pb2.DescriptorProto):
                continue
            for field in inner.field:
                if field.type_name in LEFT_OUT_TYPES:
                    notes.append(f"{type_reference(inner_name)}.{field.name} = {field.number} "
                                 f"({type_reference(field.type_name)})")
    return notes


def render():
    files = [file_proto(wandb_base_pb2), file_proto(wandb_internal_pb2)]
    types = index_types(files)
    kept = reachable(types, f".{PACKAGE}.Record")
    # Keep the wheel's order of definition, so that a new wheel gives a readable diff.
    definition_order = [name for name in types if name in kept]

    imports = set()
    for name in kept:
        for inner_name, inner in types.items():
            if (inner_name == name or inner_name.startswith(name + ".")) and \
                    isinstance(inner, descriptor_pb2.DescriptorProto):
                for field in kept_fields(inner_name, inner):
                    if field.type_name in WELL_KNOWN_IMPORTS:
                        imports.add(WELL_KNOWN_IMPORTS[field.type_name])

    out = [
        f"// GENERATED from the wandb {wandb.__version__} wheel (protobuf {google.protobuf.__version__}) by",
        "// scripts/wandb_proto/extract.py — do not edit by hand. Regenerate with",
        "//   .venv/bin/python scripts/wandb_proto/extract.py",
        "// The subset of wandb/proto/wandb_internal.proto (+ wandb_base.proto) that accel's W&B tracker",
        "// writes into .wandb transaction logs: Record with the record types",
        "//   " + ", ".join(ROOT_RECORD_TYPES),
        "// and every message and enum they reach. Field numbers and types are the wheel's.",
    ]
    notes = left_out_fields(types, kept)
    if notes:
        out.append("// Fields left out (their types live in other files of the wheel):")
        out.extend(f"//   {note}" for note in notes)
    out += ['syntax = "proto3";', "", f"package {PACKAGE};", ""]
    out += [f'import "{path}";' for path in sorted(imports)]
    out += ["", "option cc_enable_arenas = true;", ""]
    for name in definition_order:
        definition = types[name]
        if isinstance(definition, descriptor_pb2.EnumDescriptorProto):
            print_enum(definition, "", out)
        else:
            print_message(name, definition, types, "", out)
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with the committed file instead of writing it")
    args = parser.parse_args()
    text = render()
    if args.check:
        committed = OUTPUT.read_text() if OUTPUT.exists() else ""
        if committed != text:
            sys.stdout.writelines(difflib.unified_diff(
                committed.splitlines(True), text.splitlines(True), str(OUTPUT), "regenerated"))
            print(f"{OUTPUT} differs from what the installed wandb {wandb.__version__} wheel gives")
            return 1
        print(f"{OUTPUT} matches the wandb {wandb.__version__} wheel")
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Writes the seed corpus of tests/fuzz/safetensors_fuzz.c (tests/fuzz/corpus/safetensors/):
small valid files (every dtype, 0-d, empty, metadata, holes, odd offsets) and broken
ones (each a case of tests/spec/io_spec.lua). Python 3 standard library only; run by
hand when the cases change:  python3 tests/fuzz/make_corpus.py
"""
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "safetensors")
FIX = os.path.join(os.path.dirname(HERE), "fixtures", "safetensors")


def image(header, data=b""):
    h = header.encode("utf-8", "surrogateescape") if isinstance(header, str) else header
    return struct.pack("<Q", len(h)) + h + data


def entry(dtype, shape, b, e):
    return '{"dtype":"%s","shape":%s,"data_offsets":[%d,%d]}' % (dtype, shape, b, e)


CASES = {
    "valid_empty_header": image("{}"),
    "valid_padded": image("{}      "),
    "valid_f32": image('{"w":' + entry("F32", "[2]", 0, 8) + "}", struct.pack("<2f", 1.5, -2)),
    "valid_all": image('{"__metadata__":{"format":"pt"},"a":' + entry("I64", "[1]", 0, 8) + ',"b":'
                       + entry("F64", "[]", 8, 16) + ',"c":' + entry("I32", "[1,1]", 16, 20) + ',"d":'
                       + entry("U8", "[2]", 20, 22) + ',"e":' + entry("BOOL", "[1]", 22, 23) + ',"f":'
                       + entry("F16", "[1]", 23, 25) + ',"g":' + entry("BF16", "[1]", 25, 27) + ',"z":'
                       + entry("F32", "[0,5]", 27, 27) + "}", bytes(range(27))),
    "valid_holes": image('{"a":' + entry("F32", "[]", 3, 7) + "}", bytes(11)),
    "short": b"abc",
    "header_len_lies": struct.pack("<Q", 1000) + b"{}",
    "header_len_huge": struct.pack("<Q", 2**63) + b"{}",
    "not_object": image("[1,2]"),
    "bad_json": image('{"a":'),
    "trailing": image("{} x"),
    "bad_utf8": image(b'{"\xff":1}'),
    "entry_not_object": image('{"w":1}'),
    "missing_field": image('{"w":{"dtype":"F32","shape":[2]}}'),
    "unknown_dtype": image('{"w":' + entry("F33", "[2]", 0, 8) + "}", bytes(8)),
    "unsupported_dtype": image('{"w":' + entry("U16", "[4]", 0, 8) + "}", bytes(8)),
    "negative_shape": image('{"w":' + entry("F32", "[-2]", 0, 8) + "}", bytes(8)),
    "absurd_shape": image('{"w":' + entry("F32", "[4294967296,4294967296]", 0, 8) + "}", bytes(8)),
    "too_many_dims": image('{"w":' + entry("F32", "[1,1,1,1,1,1,1,1,2]", 0, 8) + "}", bytes(8)),
    "offsets_reversed": image('{"w":' + entry("F32", "[2]", 8, 0) + "}", bytes(8)),
    "offsets_past_end": image('{"w":' + entry("F32", "[4]", 0, 16) + "}", bytes(8)),
    "offsets_wrong_size": image('{"w":' + entry("F32", "[3]", 0, 8) + "}", bytes(8)),
    "overlap": image('{"a":' + entry("F32", "[2]", 0, 8) + ',"b":' + entry("F32", "[1]", 4, 8) + "}", bytes(8)),
    "duplicate_name": image('{"w":' + entry("F32", "[1]", 0, 4) + ',"w":' + entry("F32", "[1]", 4, 8) + "}", bytes(8)),
    "metadata_not_string": image('{"__metadata__":{"a":1}}'),
    "deep_nesting": image('{"a":' + "[" * 2000 + "}"),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, blob in CASES.items():
        with open(os.path.join(OUT, name), "wb") as fh:
            fh.write(blob)
    for name in ("dtypes", "same_as_mg", "unsupported_i8"):
        shutil.copy(os.path.join(FIX, name + ".safetensors"), os.path.join(OUT, "python_" + name))


if __name__ == "__main__":
    main()

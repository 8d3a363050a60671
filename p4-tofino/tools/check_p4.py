#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Checks of the P4 sources that need no compiler (build.sh --check).

The Tofino compiler (bf-p4c, in the Intel SDE) is not available everywhere
the project is built, so this catches what it can without it:

  - every quoted #include names a file in p4-tofino/include/, every <...>
    include is one of the architecture's (core.p4, tna.p4, t2na.p4);
  - each header, struct and const is declared once over all files, and
    headers only in include/redplane.p4 (the protocol's, checked against the
    C header elsewhere) and include/headers.p4 (everything else);
  - braces and parentheses balance in every file;
  - every `hdr.X` names a member of rp_headers_t and every `hdr.X.Y` a field
    of X's header type; every `md.X` a field of the metadata structs; every
    upper-case constant used is declared (or is the architecture's).

It is no substitute for bf-p4c: types, widths, the placement of tables and
registers in stages are the compiler's business.
"""
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
INCLUDE = os.path.join(ROOT, "include")
HEADER_FILES = {"redplane.p4", "headers.p4"}
ARCH_INCLUDES = {"core.p4", "tna.p4", "t2na.p4"}
# names that come from core.p4/tna.p4 or the preprocessor
ARCH_CONSTANTS = {"__TARGET_TOFINO__", "PORT_METADATA_SIZE"}


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def p4_files():
    out = []
    for dirpath, _, names in os.walk(ROOT):
        for n in sorted(names):
            if n.endswith(".p4"):
                out.append(os.path.join(dirpath, n))
    return sorted(out)


def rel(path):
    return os.path.relpath(path, ROOT)


def parse_blocks(text, keyword):
    """name -> list of (type, field) for `keyword name { type field; ... }`."""
    blocks = {}
    for m in re.finditer(r"\b%s\s+(\w+)\s*\{(.*?)\}" % keyword, text, re.S):
        fields = []
        for line in m.group(2).split(";"):
            f = re.match(r"\s*([\w<>\[\]\s]+?)\s+(\w+)\s*$", line)
            if f:
                fields.append((f.group(1).strip(), f.group(2)))
        blocks[m.group(1)] = fields
    return blocks


def main():
    errors = []
    files = p4_files()
    texts = {}
    for path in files:
        with open(path) as f:
            texts[path] = strip_comments(f.read())

    decls = {}      # name -> file
    headers = {}
    structs = {}
    consts = set()
    for path, text in texts.items():
        for inc in re.findall(r'#include\s+"([^"]+)"', text):
            target = os.path.normpath(os.path.join(os.path.dirname(path), inc))
            if os.path.dirname(target) != INCLUDE or not os.path.isfile(target):
                errors.append("%s: includes \"%s\", not a file of p4-tofino/include/" %
                              (rel(path), inc))
        for inc in re.findall(r"#include\s+<([^>]+)>", text):
            if inc not in ARCH_INCLUDES:
                errors.append("%s: includes <%s>, not the architecture's" % (rel(path), inc))
        for kind, name in re.findall(r"\b(header|struct|const\s+[\w<>]+)\s+(\w+)", text):
            kind = kind.split()[0]
            if kind == "header" and os.path.basename(path) not in HEADER_FILES:
                errors.append("%s: declares header %s: headers belong in include/headers.p4" %
                              (rel(path), name))
            where = decls.get(name)
            # the two #if branches of one const are one declaration
            if where and not (where == path and kind == "const"):
                errors.append("%s: %s %s already declared in %s" % (rel(path), kind, name,
                                                                    rel(where)))
            decls[name] = path
            if kind == "const":
                consts.add(name)
        headers.update(parse_blocks(text, "header"))
        structs.update(parse_blocks(text, "struct"))
        consts.update(re.findall(r"#define\s+(\w+)", text))
        for open_c, close_c in ("{}", "()", "[]"):
            if text.count(open_c) != text.count(close_c):
                errors.append("%s: unbalanced %s%s (%d vs %d)" % (rel(path), open_c, close_c,
                                                                  text.count(open_c),
                                                                  text.count(close_c)))

    hdr_members = {f: t for t, f in structs.get("rp_headers_t", [])}
    md_fields = {f for s in ("rp_ig_md_t", "rp_eg_md_t") for _, f in structs.get(s, [])}
    for path, text in texts.items():
        for m in re.finditer(r"\bhdr\.(\w+)(?:\.(\w+))?", text):
            member, field = m.group(1), m.group(2)
            if member not in hdr_members:
                errors.append("%s: hdr.%s is not a member of rp_headers_t" % (rel(path), member))
                continue
            htype = re.sub(r"\[.*\]", "", hdr_members[member]).strip()
            known = {f for _, f in headers.get(htype, [])}
            methods = {"isValid", "setValid", "setInvalid", "next", "last"}
            if field and field not in known and field not in methods:
                errors.append("%s: hdr.%s.%s: %s has no field %s" % (rel(path), member, field,
                                                                   htype, field))
        for m in re.finditer(r"\bmd\.(\w+)(?:\.(\w+))?", text):
            name, sub = m.group(1), m.group(2)
            if name not in md_fields:
                errors.append("%s: md.%s is not a metadata field" % (rel(path), name))
            elif sub and name == "bridge":
                if sub not in {f for _, f in headers.get("rp_bridge_h", [])} | {"isValid"}:
                    errors.append("%s: md.%s.%s: no such field" % (rel(path), name, sub))
        for name in set(re.findall(r"\b(RP_[A-Z0-9_]*[A-Za-z0-9_]*|[A-Z][A-Z0-9_]{3,})\b", text)):
            if name in consts or name in ARCH_CONSTANTS or name.startswith("_RP_"):
                continue
            # architecture enums and types (HashAlgorithm_t.CRC32, CounterType_t.PACKETS)
            if re.search(r"\w+_t\.%s\b" % name, text):
                continue
            errors.append("%s: %s is not declared" % (rel(path), name))

    for e in sorted(set(errors)):
        print("p4 check: " + e, file=sys.stderr)
    if errors:
        return 1
    print("p4 check: %d files, %d headers, %d structs, %d constants: ok" %
          (len(files), len(headers), len(structs), len(consts)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

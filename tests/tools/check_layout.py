#!/usr/bin/env python3
"""The layout rules of the project, checked over the source tree.

  - no .cpp in consensus/, daemon/, cli/ or crypto/ (and their subfolders) has
    more than 700 lines;
  - no function outside tests/ has more than 100 lines (signature to closing
    brace);
  - no file refers to the two brief documents that live outside the repository
    (the project's own docs are docs/protocol.md, docs/fault-model.md and
    docs/architecture.md).

Usage:
  check_layout.py ROOT            check the tree at ROOT; print the five longest
                                  functions; exit 1 on any violation
  check_layout.py --self-test     plant each kind of violation in a scratch tree
                                  and show that every one is caught (and that a
                                  function of exactly 100 lines is not)

Functions are found by a small C++ scanner: comments, string and character
literals (raw strings too) are blanked out, then braces are matched. A `{` at
namespace or class scope opens a function body when the text before it (back to
the previous `;`, `{` or `}`) looks like a signature: it has a parameter list and
no `=` outside brackets, and does not start with namespace/class/struct/union/
enum. Brace initialisers in a constructor's member-initialiser list belong to
the signature. Everything inside a function body (lambdas, local classes)
counts towards that function.
"""

import os
import re
import sys
import tempfile

FILE_LINES_MAX = 700
FUNCTION_LINES_MAX = 100
FILE_DIRS = ("consensus", "daemon", "cli", "crypto")
SOURCE_EXT = (".cpp", ".h", ".hpp", ".cc")
SKIP_DIRS = {".git", "tests"}
# Spelled in pieces so that this file does not refer to them itself.
FORBIDDEN_DOCS = ("DESIGN" + ".md", "FAULTS" + ".md")
TEXT_EXT = SOURCE_EXT + (".md", ".py", ".sh", ".txt", ".toml", ".cmake", ".service", ".in",
                         ".json", ".yml", ".yaml", "")


# ---- the scanner ---------------------------------------------------------------------

def blank_literals(text):
    """Comments, string and character literals replaced by spaces (newlines kept)."""
    out = []
    i, n = 0, len(text)

    def blank(s):
        return "".join("\n" if c == "\n" else " " for c in s)

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(blank(text[i:j]))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(blank(text[i:j]))
            i = j
        elif c == "R" and text.startswith('R"', i) and (i == 0 or not text[i - 1].isalnum()):
            m = re.match(r'R"([^(\s]*)\(', text[i:])
            if not m:
                out.append(c)
                i += 1
                continue
            end = text.find(")" + m.group(1) + '"', i)
            j = n if end < 0 else end + len(m.group(1)) + 2
            out.append(blank(text[i:j]))
            i = j
        elif c == '"' or (c == "'" and not (i > 0 and text[i - 1].isalnum())):
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(blank(text[i:j]))
            i = j
        elif c == "#" and (i == 0 or text[i - 1] == "\n"):  # a preprocessor line
            j = i
            while True:
                k = text.find("\n", j)
                if k < 0:
                    k = n
                    break
                if text[k - 1] != "\\":
                    break
                j = k + 1
            out.append(blank(text[i:k]))
            i = k
        else:
            out.append(c)
            i += 1
    return "".join(out)


def strip_template_prefix(header):
    """`template <...>` prefixes removed (balanced angle brackets)."""
    while True:
        m = re.match(r"\s*template\s*<", header)
        if not m:
            return header
        depth, i = 1, m.end()
        while i < len(header) and depth:
            depth += {"<": 1, ">": -1}.get(header[i], 0)
            i += 1
        header = header[i:]


def top_level(header):
    """The header with everything inside (), [] and <> of operators removed."""
    out, depth = [], 0
    for c in header:
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif depth == 0:
            out.append(c)
    return "".join(out)


ACCESS = re.compile(r"^\s*(public|private|protected)\s*:(?!:)")
KEYWORD_SCOPE = re.compile(r"^\s*(?:\[\[[^\]]*\]\]\s*)*(namespace|class|struct|union|enum|extern)\b")


def function_name(header):
    m = re.search(r"(~?[A-Za-z_][\w:]*::)?operator\s*(\(\)|[^\s(]+)\s*\(", header)
    if m:
        return (m.group(1) or "") + "operator" + m.group(2)
    depth = 0
    for i, c in enumerate(header):
        if c == "(" and depth == 0:
            m = re.search(r"(~?[A-Za-z_][\w]*(?:\s*::\s*~?[A-Za-z_]\w*)*)\s*$", header[:i])
            return re.sub(r"\s+", "", m.group(1)) if m else "?"
        if c == "<":
            depth += 1
        elif c == ">" and depth:
            depth -= 1
    return "?"


def classify(header):
    """'function', 'namespace', 'class' or 'other' for the text before a `{`."""
    header = ACCESS.sub("", header)
    h = strip_template_prefix(header)
    m = KEYWORD_SCOPE.match(h)
    if m:
        kind = m.group(1)
        if kind in ("namespace", "extern"):
            return "namespace"
        if kind == "enum":
            return "other"
        return "class"
    if "(" not in h:
        return "other"
    top = top_level(h)
    if re.search(r"(?<![=!<>+\-*/%&|^])=(?!=)", top) and "operator" not in h:
        return "other"
    return "function"


def brace_initialiser(header):
    """True when the `{` after `header` opens a brace initialiser in a constructor's
    member-initialiser list (`S(int x) : a_{x}`), not the body."""
    return re.search(r"(?<!:):(?!:)", top_level(header)) is not None and \
        re.search(r"[\w>]\s*$", header) is not None


def matching_brace(code, i):
    depth = 0
    for j in range(i, len(code)):
        depth += {"{": 1, "}": -1}.get(code[j], 0)
        if depth == 0:
            return j
    return len(code) - 1


def find_functions(text):
    """[(name, first_line, last_line)] of every function body outside other functions."""
    code = blank_literals(text)
    functions = []
    stack = []  # (scope kind, index into functions or None) of the open braces
    header_start = 0
    i, n = 0, len(code)
    while i < n:
        c = code[i]
        in_function = any(kind == "function" for kind, _ in stack)
        if c == "{" and in_function:
            stack.append(("block", None))
            i += 1
        elif c == "{":
            header = code[header_start:i]
            outer = stack[-1][0] if stack else "namespace"
            kind = classify(header) if outer in ("namespace", "class") else "other"
            if kind == "function" and brace_initialiser(header):
                i = matching_brace(code, i) + 1  # part of the signature
                continue
            index = None
            if kind == "function":
                stripped = ACCESS.sub("", header)
                first = header_start + (len(header) - len(stripped.lstrip()))
                index = len(functions)
                functions.append([function_name(stripped), code.count("\n", 0, first) + 1, None])
            stack.append((kind, index))
            i += 1
            header_start = i
        elif c == "}":
            kind, index = stack.pop() if stack else ("other", None)
            if index is not None:
                functions[index][2] = code.count("\n", 0, i) + 1
            i += 1
            if not any(k == "function" for k, _ in stack):
                header_start = i
        elif c == ";" and not in_function:
            i += 1
            header_start = i
        else:
            i += 1
    return [tuple(f) for f in functions if f[2] is not None]


# ---- the checks ----------------------------------------------------------------------

def walk(root, skip_tests):
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        top = rel.split(os.sep)[0]
        dirnames[:] = [d for d in dirnames
                       if d != ".git" and not d.startswith("build")
                       and not (rel == "." and skip_tests and d in SKIP_DIRS)]
        if skip_tests and top in SKIP_DIRS:
            continue
        for f in filenames:
            yield os.path.join(dirpath, f), os.path.relpath(os.path.join(dirpath, f), root)


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return ""


def check(root, out=print):
    """Returns (violations, functions sorted longest first)."""
    violations = []
    functions = []
    for path, rel in walk(root, skip_tests=True):
        if not rel.endswith(SOURCE_EXT):
            continue
        text = read(path)
        lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
        if rel.endswith(".cpp") and rel.split(os.sep)[0] in FILE_DIRS and lines > FILE_LINES_MAX:
            violations.append(f"{rel}: {lines} lines (more than {FILE_LINES_MAX})")
        for name, first, last in find_functions(text):
            length = last - first + 1
            functions.append((length, name, rel, first))
            if length > FUNCTION_LINES_MAX:
                violations.append(f"{rel}:{first}: function {name} has {length} lines "
                                  f"(more than {FUNCTION_LINES_MAX})")
    for path, rel in walk(root, skip_tests=False):
        if not rel.endswith(TEXT_EXT) and os.path.basename(rel) not in ("Makefile",):
            continue
        for k, line in enumerate(read(path).splitlines(), 1):
            for doc in FORBIDDEN_DOCS:
                if doc in line:
                    violations.append(f"{rel}:{k}: refers to {doc}, which is not in the "
                                      "repository")
    functions.sort(key=lambda f: (-f[0], f[2], f[3]))
    return violations, functions


def report(root):
    violations, functions = check(root)
    print(f"{len(functions)} functions outside tests/; the five longest:")
    for length, name, rel, first in functions[:5]:
        print(f"  {length:4d} lines  {name}  ({rel}:{first})")
    for v in violations:
        print("VIOLATION " + v)
    print("layout: " + ("ok" if not violations else f"{len(violations)} violation(s)"))
    return 1 if violations else 0


# ---- self-test -----------------------------------------------------------------------

def write(root, rel, text):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        fh.write(text)


def function_of(name, body_lines, signature="void {}(int a)"):
    """A function of exactly body_lines + 2 lines (signature line, body, brace)."""
    lines = [signature.format(name) + " {"]
    lines += [f"    a += {k};  // {{ not a brace" for k in range(body_lines)]
    lines.append("}")
    return "\n".join(lines) + "\n"


def self_test():
    failures = []

    def expect(cond, what):
        print(("ok   " if cond else "FAIL ") + what)
        if not cond:
            failures.append(what)

    with tempfile.TemporaryDirectory() as root:
        # A clean tree: a 100-line function, a class with members, tricky literals.
        clean = ("namespace tob {\n"
                 + function_of("exactly_hundred", 98)
                 + "struct S {\n  S(int x) : a_{x}, b_(x) {\n    a_ += 1;\n  }\n"
                   "  int f() const { return a_; }\n  int a_, b_;\n};\n"
                 + 'const char* s = "}}}{";\nconst char* r = R"x({{)x";\n'
                 + "int big = 300'000;\n"
                 + "}  // namespace tob\n")
        write(root, "daemon/ok.cpp", clean)
        violations, functions = check(root)
        expect(not violations, "a clean tree passes (a function of exactly 100 lines)")
        names = {f[1]: f[0] for f in functions}
        expect(names.get("exactly_hundred") == 100, f"the 100-line function is measured as "
               f"100 lines ({names.get('exactly_hundred')})")
        expect(names.get("S") == 3, f"a constructor with brace initialisers: 3 lines "
               f"({names.get('S')})")
        expect(names.get("f") == 1, f"an in-class one-liner: 1 line ({names.get('f')})")

        # Planted: a 101-line function in a namespace, and one in a class in a header.
        write(root, "consensus/long.cpp",
              "namespace tob::consensus {\n" + function_of("too_long", 99) + "}\n")
        write(root, "cli/client/long.h",
              "struct Impl {\n" + function_of("Impl::also_too_long", 120, "int {}() const")
              .replace("int Impl::also_too_long", "int also_too_long") + "};\n")
        violations, functions = check(root)
        expect(any("too_long has 101 lines" in v for v in violations),
               "a planted 101-line function is caught")
        expect(any("also_too_long has 122 lines" in v for v in violations),
               "a planted long member function in a header is caught")
        expect(functions[0][1] == "also_too_long", "the longest function is listed first")
        os.remove(os.path.join(root, "consensus/long.cpp"))
        os.remove(os.path.join(root, "cli/client/long.h"))

        # Planted: a long function under tests/ is allowed.
        write(root, "tests/sim/long.cpp", function_of("test_helper", 300))
        violations, _ = check(root)
        expect(not violations, "a long function under tests/ is not a violation")

        # Planted: a 701-line .cpp in crypto/; a 701-line .h is not a file violation.
        write(root, "crypto/big.cpp", "// filler\n" * 701)
        write(root, "crypto/big.h", "// filler\n" * 701)
        violations, _ = check(root)
        expect([v for v in violations if "big.cpp: 701 lines" in v] and
               not [v for v in violations if "big.h" in v],
               "a 701-line .cpp is caught, a 701-line header is not")
        os.remove(os.path.join(root, "crypto/big.cpp"))

        # Planted: references to the outside documents, in code and in docs.
        write(root, "daemon/ref.h", "// see " + FORBIDDEN_DOCS[0] + " section 2\n")
        write(root, "docs/x.md", "as in " + FORBIDDEN_DOCS[1] + " row 3\n")
        write(root, "tests/cluster/y.py", "# " + FORBIDDEN_DOCS[1] + "\n")
        violations, _ = check(root)
        expect(sum("which is not in the repository" in v for v in violations) == 3,
               "references in daemon/, docs/ and tests/ are all caught")
    print("self-test: " + ("ok" if not failures else f"{len(failures)} failure(s)"))
    return 1 if failures else 0


def main(argv):
    if len(argv) == 2 and argv[1] == "--self-test":
        return self_test()
    if len(argv) != 2:
        print(__doc__)
        return 2
    return report(argv[1])


if __name__ == "__main__":
    sys.exit(main(sys.argv))

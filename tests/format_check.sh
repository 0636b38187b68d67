#!/usr/bin/env bash
# Every tracked C++ file (git ls-files '*.cpp' '*.h') is as clang-format leaves it
# (.clang-format at the top of the tree). Run by CTest as `format_check` (label unit);
# `make format` rewrites the files. Exit 77 (CTest: skipped) without clang-format or
# outside a git checkout, with a line that says why.
#   tests/format_check.sh [SOURCE_DIR]
set -u
cd "${1:-.}" || exit 2
if ! command -v clang-format >/dev/null 2>&1; then
    echo "format_check SKIPPED: clang-format is not installed (apt-get install clang-format; make deps does)"
    exit 77
fi
if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    echo "format_check SKIPPED: $(pwd) is not a git checkout (the files checked are git ls-files)"
    exit 77
fi
bad=()
count=0
while IFS= read -r -d '' file; do
    count=$((count + 1))
    [ -f "$file" ] || continue  # deleted in the working tree
    clang-format --dry-run --Werror "$file" >/dev/null 2>&1 || bad+=("$file")
done < <(git ls-files -z '*.cpp' '*.h')
if [ ${#bad[@]} -ne 0 ]; then
    echo "format_check: ${#bad[@]} of $count files are not clang-formatted ($(clang-format --version)):"
    for file in "${bad[@]}"; do
        echo "  $file"
        clang-format --dry-run "$file" 2>&1 | grep -m 3 'warning:' | sed 's/^/    /'
    done
    echo "fix: clang-format -i <file> (or make format)"
    exit 1
fi
echo "format_check: $count files clang-formatted"

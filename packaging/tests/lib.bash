# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# What the install entry point's test and the packages' tests share: the file list of
# packaging/files against an installed tree, and crctl's bash completion from that tree.
# Sourced; the caller sets -euo pipefail and defines nothing these use.

packaging_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# expected_files [PREFIX]: packaging/files, with /usr replaced by PREFIX (default /usr), less
# the paths matching the extended regular expression $EXCLUDE when it is set (a package that
# leaves out what its distribution has no use for says what, and the caller why).
expected_files() {
    local prefix=${1:-/usr}
    grep -v -e '^#' -e '^$' "$packaging_dir/files" | { if [[ -n ${EXCLUDE:-} ]]; then grep -Ev "$EXCLUDE"; else cat; fi; } |
        sed "s|^usr/|${prefix#/}/|" | sort
}

# check_files NAME ROOT [PREFIX] [EXTRA...]: the files (and links) below ROOT are exactly
# packaging/files (under PREFIX) plus the EXTRA paths; prints the difference and fails if not.
check_files() {
    local name=$1 root=$2 prefix=${3:-/usr}
    shift 3 || shift $#
    local diff
    if ! diff=$(diff -u <({ expected_files "$prefix"; printf '%s\n' "$@"; } | grep -v '^$' | sort) \
        <(cd "$root" && find . \( -type f -o -type l \) -printf '%P\n' | sort)); then
        echo "$name: the installed files differ from packaging/files (- listed only, + installed only):" >&2
        echo "$diff" >&2
        return 1
    fi
    echo "$name: $(expected_files "$prefix" | wc -l) files as packaging/files lists them${1:+, and $*}"
}

# check_completion NAME FILE CRCTL: bash, with FILE (crctl's installed bash completion)
# sourced, completes `crctl no` to node and `crctl image ` to image's commands, as at a TAB.
check_completion() {
    local name=$1 file=$2
    local got
    got=$(bash -c '
        source "$1"
        fn=$(complete -p crctl | sed -n "s/.*-F \([^ ]*\).*/\1/p")
        [[ -n $fn ]] || { echo "no completion function for crctl" >&2; exit 1; }
        COMP_WORDS=(crctl no); COMP_CWORD=1; COMP_LINE="crctl no"; COMP_POINT=${#COMP_LINE}
        "$fn" crctl no crctl
        echo "node: ${COMPREPLY[*]}"
        COMP_WORDS=(crctl image ""); COMP_CWORD=2; COMP_LINE="crctl image "; COMP_POINT=${#COMP_LINE}
        "$fn" crctl "" image
        echo "image: ${COMPREPLY[*]}"
    ' _ "$file")
    if ! grep -qx 'node: node' <<<"$got" || ! grep -q '^image: .*\bpublish\b' <<<"$got"; then
        echo "$name: bash does not complete crctl from $file: got" >&2
        echo "$got" >&2
        return 1
    fi
    echo "$name: bash completes crctl from $file ($(grep '^image:' <<<"$got"))"
}

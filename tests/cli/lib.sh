# Shared by the client-command tests (sourced, with the scratch directory's
# prefix as $1): a scratch directory $dir removed at exit (RV_KEEP=1 keeps
# it) after every process in pids is killed, the pass/fail counters,
# expect (the exit code of a command bounded by $T; its stdout and stderr
# in $dir/out and $dir/err, both also appended to $dir/all_output) and
# port_free.
dir=$(mktemp -d "${TMPDIR:-/tmp}/$1-XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    wait 2>/dev/null
    [ "${RV_KEEP:-}" = 1 ] || rm -rf "$dir"
}
trap cleanup EXIT
passed=0
failed=0

pass() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }

expect() { # expect CODE DESCRIPTION -- command...
    local want=$1 what=$2
    shift 3
    $T "$@" >"$dir/out" 2>"$dir/err"
    local got=$?
    cat "$dir/out" "$dir/err" >>"$dir/all_output"
    if [ "$got" -eq "$want" ]; then pass; else
        fail "$what: exit $got, want $want"
        sed 's/^/    out: /' "$dir/out"
        sed 's/^/    err: /' "$dir/err"
    fi
}

port_free() { ! ss -Htan "( sport = :$1 )" 2>/dev/null | grep -q .; }

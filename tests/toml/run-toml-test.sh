#!/bin/sh
# TOML 1.0.0 conformance: runs every case of the toml-test suite through the
# decoder.  valid/*.toml must decode (exit 0) to JSON equal to valid/*.json;
# invalid/*.toml must be rejected with exit status 1 -- a crash, a signal, a
# sanitizer report or a hang counts as a failure, not as a rejection.
#
# usage: tests/toml/run-toml-test.sh [DECODER]
#   DECODER            default build/toml-test-decoder (e.g. build/asan/...)
#   AK_TOML_TEST_DIR   test data, default tests/toml/toml-test (a copy of
#                      the suite kept in the repository)
# Needs python3 (Debian package python3) to compare JSON documents.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
decoder=${1:-$root/build/toml-test-decoder}
data=${AK_TOML_TEST_DIR:-$here/toml-test}
list=$data/files-toml-1.0.0

case $decoder in /*) ;; *) decoder=$(pwd)/$decoder ;; esac
if [ ! -x "$decoder" ]; then
    echo "toml-test: decoder $decoder not found (build it with make)" >&2
    exit 2
fi
if [ ! -f "$list" ]; then
    echo "toml-test: no test list at $list" >&2
    exit 2
fi
command -v python3 >/dev/null || { echo "toml-test: python3 is required" >&2; exit 2; }

# Sanitizers must not exit with 1, or a report would pass for a rejection.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}exitcode=86:detect_leaks=1"
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}exitcode=86"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}exitcode=87:halt_on_error=1:print_stacktrace=1"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
failures=$work/failures
pairs=$work/pairs
: >"$failures"
: >"$pairs"

valid_total=0
invalid_total=0
invalid_ok=0
n=0

fail() {
    printf '%s: %s\n' "$1" "$2" >>"$failures"
}

while IFS= read -r case_path || [ -n "$case_path" ]; do
    case $case_path in
    *.toml) ;;
    *) continue ;;
    esac
    n=$((n + 1))
    out=$work/$n.json
    err=$work/$n.err
    timeout 20 "$decoder" <"$data/$case_path" >"$out" 2>"$err"
    rc=$?
    sanitizer=
    if grep -q -E 'Sanitizer|runtime error:' "$err"; then
        sanitizer=yes
    fi
    case $case_path in
    valid/*)
        valid_total=$((valid_total + 1))
        if [ $rc -ne 0 ]; then
            fail "$case_path" "exit status $rc: $(head -c 300 "$err")"
        elif [ -n "$sanitizer" ]; then
            fail "$case_path" "sanitizer report: $(head -c 300 "$err")"
        else
            printf '%s\t%s\t%s\n' "$data/${case_path%.toml}.json" "$out" "$case_path" >>"$pairs"
        fi
        ;;
    invalid/*)
        invalid_total=$((invalid_total + 1))
        if [ $rc -eq 0 ]; then
            fail "$case_path" "accepted invalid input"
        elif [ $rc -ne 1 ]; then
            fail "$case_path" "exit status $rc (crash, signal or timeout): $(head -c 300 "$err")"
        elif [ -n "$sanitizer" ]; then
            fail "$case_path" "sanitizer report: $(head -c 300 "$err")"
        elif [ ! -s "$err" ]; then
            fail "$case_path" "rejected without an error message"
        else
            invalid_ok=$((invalid_ok + 1))
        fi
        ;;
    esac
done <"$list"

# Compare decoded documents with the expected ones by meaning: numbers by
# value, date-times by the instant or fields they denote.
python3 - "$pairs" "$failures" <<'PY'
import json, math, re, sys

DT = re.compile(r'(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})?$')
DATE = re.compile(r'(\d{4})-(\d{2})-(\d{2})$')
TIME = re.compile(r'(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?$')
SCALARS = {'string', 'integer', 'float', 'bool', 'datetime', 'datetime-local',
           'date-local', 'time-local'}

def nanos(frac):
    return int(((frac or '') + '000000000')[:9])

def days_from_civil(y, m, d):
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468

def dt_key(kind, s):
    if kind == 'date-local':
        m = DATE.match(s)
        return m and tuple(map(int, m.groups()))
    if kind == 'time-local':
        m = TIME.match(s)
        return m and (int(m[1]), int(m[2]), int(m[3]), nanos(m[4]))
    m = DT.match(s)
    if not m:
        return None
    y, mo, d, h, mi, sec = (int(x) for x in m.groups()[:6])
    ns = nanos(m[7])
    if kind == 'datetime-local':
        return None if m[8] else (y, mo, d, h, mi, sec, ns)
    if not m[8]:
        return None
    off = 0
    if m[8] not in 'Zz':
        off = (int(m[8][1:3]) * 60 + int(m[8][4:6])) * (-1 if m[8][0] == '-' else 1)
    secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off * 60
    return secs * 10**9 + ns

def is_scalar(v):
    return (isinstance(v, dict) and set(v) == {'type', 'value'}
            and isinstance(v['type'], str) and isinstance(v['value'], str)
            and v['type'] in SCALARS)

def scalar_eq(e, a):
    if e['type'] != a['type']:
        return False
    t, x, y = e['type'], e['value'], a['value']
    try:
        if t == 'integer':
            return int(x) == int(y)
        if t == 'float':
            fx, fy = float(x), float(y)
            return (math.isnan(fx) and math.isnan(fy)) or fx == fy
    except ValueError:
        return False
    if t in ('string', 'bool'):
        return x == y
    kx, ky = dt_key(t, x), dt_key(t, y)
    return kx is not None and kx == ky

def diff(e, a, path):
    if is_scalar(e):
        if not is_scalar(a) or not scalar_eq(e, a):
            return '%s: expected %s, got %s' % (path or '/', json.dumps(e), json.dumps(a))
        return None
    if isinstance(e, dict):
        if not isinstance(a, dict) or is_scalar(a):
            return '%s: expected a table, got %s' % (path or '/', json.dumps(a)[:200])
        if set(e) != set(a):
            return '%s: keys differ: missing %s, extra %s' % (
                path or '/', sorted(set(e) - set(a)), sorted(set(a) - set(e)))
        for k in e:
            r = diff(e[k], a[k], path + '/' + json.dumps(k))
            if r:
                return r
        return None
    if isinstance(e, list):
        if not isinstance(a, list) or len(e) != len(a):
            return '%s: expected an array of %d, got %s' % (path or '/', len(e), json.dumps(a)[:200])
        for i, (x, y) in enumerate(zip(e, a)):
            r = diff(x, y, '%s[%d]' % (path, i))
            if r:
                return r
        return None
    return '%s: unexpected JSON %r in the expected file' % (path or '/', e)

pairs_file, failures_file = sys.argv[1], sys.argv[2]
with open(pairs_file) as f, open(failures_file, 'a') as out:
    for line in f:
        expected, actual, name = line.rstrip('\n').split('\t')
        try:
            with open(expected, encoding='utf-8') as fe:
                e = json.load(fe)
            with open(actual, encoding='utf-8') as fa:
                a = json.load(fa)
        except (OSError, ValueError) as ex:
            out.write('%s: %s\n' % (name, ex))
            continue
        r = diff(e, a, '')
        if r:
            out.write('%s: %s\n' % (name, r))
PY
[ $? -eq 0 ] || { echo "toml-test: comparator failed" >&2; exit 2; }

valid_failed=$(grep -c '^valid/' "$failures")
valid_ok=$((valid_total - valid_failed))
echo "toml-test: $valid_ok/$valid_total valid passed, $invalid_ok/$invalid_total invalid rejected"
if [ -s "$failures" ]; then
    echo "failures:"
    sed 's/^/  /' "$failures"
    exit 1
fi
exit 0

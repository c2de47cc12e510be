#!/usr/bin/env bash
# `bbt train` configuration errors (and make-tiny-model's BBT_GPT2_DIR): one line `bbt: error: ...`, exit 2,
# naming file/key/line/value.
set -u
fail=0
tmp=${BBT_SCRATCH:-$(mktemp -d)}; mkdir -p "$tmp"

expect() {  # expect CODE PATTERN -- command...
  local code=$1 pattern=$2; shift 3
  local out rc
  out=$("$@" 2>&1 >/dev/null); rc=$?
  if [[ $rc -ne $code ]]; then echo "FAIL (exit $rc, wanted $code): $* -> $out"; fail=1; return; fi
  if [[ $(printf '%s\n' "$out" | wc -l) -ne 1 ]]; then echo "FAIL (not one line): $* -> $out"; fail=1; return; fi
  if ! grep -qF -- "$pattern" <<<"$out"; then echo "FAIL (no '$pattern'): $* -> $out"; fail=1; return; fi
  echo "ok: $out"
}

printf '[model]\npath = m\n[cma]\npopsiz = 3\n' >"$tmp/unknown.ini"
printf '[model]\npath = m\n[cma]\npopsize = lots\n' >"$tmp/type.ini"
printf '[model]\npath = m\n[task]\nname = sst3\n' >"$tmp/task.ini"
printf '[model]\npath = m\n[cmaa]\npopsize = 3\n' >"$tmp/section.ini"
printf '[model]\npath = m\ngarbage line\n' >"$tmp/syntax.ini"

expect 2 "did you mean 'cma.popsize'" -- "$BBT" train --config "$tmp/unknown.ini"
expect 2 "$tmp/unknown.ini:4" -- "$BBT" train --config "$tmp/unknown.ini"
expect 2 "invalid value 'lots' for cma.popsize" -- "$BBT" train --config "$tmp/type.ini"
expect 2 "invalid value '0' for cma.sigma0" -- "$BBT" train --config "$tmp/type.ini" --cma.popsize 4 --cma.sigma0 0
expect 2 "did you mean 'sst2'" -- "$BBT" train --config "$tmp/task.ini"
expect 2 "unknown section '[cmaa]'" -- "$BBT" train --config "$tmp/section.ini"
expect 2 "$tmp/syntax.ini:3: syntax error" -- "$BBT" train --config "$tmp/syntax.ini"
expect 2 "cannot read '$tmp/missing.ini': No such file or directory" -- "$BBT" train --config "$tmp/missing.ini"
expect 2 "cannot read '$tmp': is a directory" -- "$BBT" train --config "$tmp"
expect 2 "cannot read '/dev/zero': is a device, not a file" -- "$BBT" train --config /dev/zero
expect 2 "unknown key 'cma.sigma'" -- "$BBT" train --config "$tmp/task.ini" --cma.sigma 2
expect 2 "unknown command 'trian'" -- "$BBT" trian
# make-tiny-model's default vocabulary: BBT_GPT2_DIR, when set, is the only place looked at.
expect 2 "'/nonexistent' (from BBT_GPT2_DIR" -- env BBT_GPT2_DIR=/nonexistent "$BBT" make-tiny-model --out "$tmp/tiny"

# --print-config round trip: printing the printed configuration gives the same text.
"$BBT" train --config "$tmp/task.ini" --task.name rte --cma.popsize 8 --print-config >"$tmp/p1.ini" || fail=1
"$BBT" train --config "$tmp/p1.ini" --print-config >"$tmp/p2.ini" || fail=1
cmp -s "$tmp/p1.ini" "$tmp/p2.ini" || { echo "FAIL: printed configuration does not read back equal"; fail=1; }
grep -qx "popsize = 8" "$tmp/p1.ini" || { echo "FAIL: override not in printed config"; fail=1; }

"$BBT" --help | grep -q "train" || { echo "FAIL: --help"; fail=1; }
"$BBT" --version | grep -q "^bbt " || { echo "FAIL: --version"; fail=1; }
"$BBT" train --help | grep -q "cma.popsize" || { echo "FAIL: train --help"; fail=1; }
exit $fail

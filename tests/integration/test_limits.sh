# Memory, CPU and pid limits, and what happens without cgroups.

echo "== limits"
if [ -n "${AK_EXPECT_NO_CGROUPS:-}" ]; then
  # An unprivileged user on a host without cgroup delegation: the limits
  # cannot be enforced, and agentkernel must say so.
  expect "limits not enforced: said loudly" 0 'resource limits NOT enforced for: memory, pids.*delegated cgroup' -- "$AK" run --profile moderate -- true
  t_begin "memory limit"; skip_lacks "no writable cgroup for $(id -un) on this host (root passes run the limit tests)"
else
  expect "restrictive: 256 MB limit stops 400 MB" 137 '' -- sbx --profile restrictive -- /probe memory 400
  expect "restrictive: 100 MB fits" 0 'allocated 100' -- sbx --profile restrictive -- /probe memory 100
  expect "moderate: 512 MB limit stops 700 MB" 137 '' -- sbx --profile moderate -- /probe memory 700
  expect "moderate: 300 MB fits" 0 'allocated 300' -- sbx --profile moderate -- /probe memory 300
  expect "--memory 64 stops 128 MB" 137 '' -- sbx --memory 64 -- /probe memory 128
  expect "permissive: no memory limit (700 MB fits)" 0 'allocated 700' -- sbx --profile permissive -- /probe memory 700
  expect "--pids 20 stops 50 processes" 1 'forked 1[0-9]$' -- sbx --pids 20 -- /probe fork 50
  expect "--pids 20 allows 10" 0 'forked 10$' -- sbx --pids 20 -- /probe fork 10
  expect "restrictive: 256 process limit" 1 'forked 2[0-9][0-9]$' -- sbx --profile restrictive -- /probe fork 400
  t_begin "restrictive: half a CPU"
  share=$(sbx --profile restrictive -- /probe cpu 2 2 2>/dev/null)
  if awk -v s="$share" 'BEGIN { exit !(s > 0 && s < 0.7) }'; then pass; else fail "used $share CPUs"; fi
  t_begin "--cpus 1.5 lets two threads use more than one CPU"
  share=$(sbx --cpus 1.5 -- /probe cpu 2 2 2>/dev/null)
  if awk -v s="$share" 'BEGIN { exit !(s > 0.75) }'; then pass; else fail "used $share CPUs (machine busy?)"; fi
  expect "no cgroups (forced): said loudly" 0 'resource limits NOT enforced' -- env AK_TEST_DISABLE=cgroup "$AK_TEST_BIN" run -- true
  expect "no cgroups (forced): memory not limited" 0 'allocated 400' -- env AK_TEST_DISABLE=cgroup "$AK_TEST_BIN" run -v "$PROBE:/probe:ro" --profile restrictive -- /probe memory 400
  t_begin "cgroups removed after the run"
  # agentkernel makes its groups under the cgroup it runs in, per hierarchy;
  # look there (groups under other sessions' cgroups are theirs to sweep).
  left=$(sed -n 's/^[0-9]*:\([^:]*\):\(.*\)$/\1|\2/p' /proc/self/cgroup | while IFS='|' read -r ctl path; do
      case $ctl in '') ctl=unified ;; name=*) ctl=${ctl#name=} ;; *,*) ctl=${ctl%%,*} ;; esac
      for base in "/sys/fs/cgroup/$ctl" /sys/fs/cgroup; do
        [ -d "$base$path" ] || continue
        find "$base$path" -maxdepth 1 -type d -name "agentkernel-*" 2>/dev/null
        break
      done
    done | sort -u | while read -r d; do
    pid=${d##*/agentkernel-}; pid=${pid%%-*}; kill -0 "$pid" 2>/dev/null || echo "$d"; done)
  [ -z "$left" ] && pass || fail "left: $left"
fi

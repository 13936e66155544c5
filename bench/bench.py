#!/usr/bin/env python3
"""Benchmarks for nats-rescue, side by side with what operators use today.

Run through bench/run.sh (it installs what is missing, builds, and cleans up on exit).

1. fan-out: the full read-only probe set of `diagnose` on N hosts, by
   nats-rescue (`diagnose --json`), Ansible ad-hoc (`-m shell`, same script) and parallel-ssh
   (same script); plus `nats-rescue status` (same gather, no runbook evaluation) and one
   OpenSSH connect+exec round as the floor.
2. time to recovery from quorum loss: `nats-rescue run insufficient-nodes --yes` vs starting
   the servers by hand over ssh and polling for a leader, with an independent observer.
3. journal throughput (fsync per record) and peak RSS of the largest diagnose.
"""

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
NET = os.environ.get("NRB_NET", "10.213.50")
DIR = os.environ.get("NRB_DIR", "/tmp/nrb-bench")
SERVERS = int(os.environ.get("NRB_SERVERS", "3"))
NR = os.environ.get("NRB_BIN", os.path.join(ROOT, "target/release/nats-rescue"))
VENV = os.environ.get("NRB_VENV", os.path.join(HERE, ".venv"))
NETLAB = os.path.join(HERE, "netlab.sh")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def addr(i):
    return f"{NET}.{10 + i}"


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def ssh_opts():
    # The same client settings for every OpenSSH-based tool: no user config, the bench
    # known_hosts (strict), the bench key, no connection sharing between runs.
    return [
        "-F", "/dev/null",
        "-i", f"{DIR}/id_ed25519",
        "-o", f"UserKnownHostsFile={DIR}/known_hosts",
        "-o", "StrictHostKeyChecking=yes",
        "-o", "BatchMode=yes",
        "-o", "ConnectTimeout=3",
    ]


# ---------------------------------------------------------------- the probe, same for all

def probe_body():
    """The probe script, verbatim from src/nats/probe/probe.sh: the exact checks nats-rescue
    runs (it embeds the file with include_str!)."""
    path = os.path.join(ROOT, "src/nats/probe/probe.sh")
    if not os.path.exists(path):
        sys.exit(f"bench: cannot find the probe script {path}")
    return open(path).read()


def generic_script(k):
    """One script for every node (pssh and Ansible send the same text to all hosts): the node
    finds itself from $SSH_CONNECTION, sets the variables nats-rescue renders per node, drops
    itself from the peer list, fetches the monitoring endpoints nats-rescue fetches (curl, in
    the background, concurrently with the probe as nats-rescue does) and runs PROBE_SCRIPT."""
    peers = "\n".join(f"n{i} {addr(i)} 6222 ip" for i in range(1, k + 1))
    pre = f"""me=$(echo "$SSH_CONNECTION" | cut -d' ' -f3)
ALL='{peers}'
SELF=$(printf '%s\\n' "$ALL" | awk -v me="$me" '$2 == me {{print $1}}')
ND={DIR}/nodes/$SELF
SVC_STATUS="$ND/ctl status"
CLUSTER_PORT=6222
MONITOR_PORT=8222
STORE_DIR=$ND/data
SYS_ACCOUNT=SYS
CONFIG_FILE=$ND/nats-server.conf
set -- $(printf '%s\\n' "$ALL" | awk -v me="$me" '$2 != me')
# monitoring: /varz first; the rest only when it answered (as nats-rescue's fetch_http)
mon() {{
  if curl -sS -m 5 -o /dev/null "http://$me:8222/varz" 2>/dev/null; then
    for p in /varz '/jsz?accounts=true&streams=true' /raftz /routez /healthz; do
      echo "HTTP $p $(curl -sS -m 5 "http://$me:8222$p" 2>&1 | wc -c)"
    done
  else
    echo "HTTP /varz failed"
  fi
}}
mon &
"""
    # PROBE_SCRIPT ends with `echo NRS_END`; wait for the monitoring fetches before it.
    body = probe_body().replace('echo "NRS_END"', 'wait\necho "NRS_END"')
    return pre + body


def probe_ok(text, k):
    return text.count("NRS_END") >= k


# ---------------------------------------------------------------- the contenders

def run_timed(argv, env=None, stdin=None, timeout=600):
    t0 = time.perf_counter()
    p = subprocess.run(argv, env=env, input=stdin, capture_output=True, timeout=timeout)
    return time.perf_counter() - t0, p


def nr_cmd(k, what, journal):
    return [NR, "-i", f"{DIR}/inv{k}.yaml", "--journal-dir", journal, "--json", "--no-color", what]


def run_nats_rescue(k, what="diagnose"):
    with tempfile.TemporaryDirectory(prefix="nrb-j-") as j:
        tf = os.path.join(j, "time.txt")
        el, p = run_timed(["/usr/bin/time", "-v", "-o", tf] + nr_cmd(k, what, j))
        rss = None
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(tf).read())
        if m:
            rss = int(m.group(1))
    ok = p.returncode in (0, 1)
    detail = ""
    reached = None
    if ok:
        try:
            v = json.loads(p.stdout)
            nodes = v["nodes"]
            bad = [n for n in nodes if n.get("ssh") != "ok"]
            reached = len(nodes) - len(bad)
            if len(nodes) != k:
                ok, detail = False, f"{len(nodes)} nodes in the output"
            elif bad:
                # timed: the tool answered; but say how many nodes it could not probe, and why
                detail = f"ssh not ok on {len(bad)}/{k}: {bad[0]['name']}: {bad[0]['ssh']}"
        except Exception as e:  # noqa: BLE001
            ok, detail = False, f"bad JSON: {e}"
    else:
        detail = f"exit {p.returncode}: {p.stderr.decode(errors='replace')[-300:]}"
    return el, ok, detail, rss, reached


def run_pssh(k, script):
    with tempfile.TemporaryDirectory(prefix="nrb-pssh-") as out:
        argv = [
            "parallel-ssh", "-h", f"{DIR}/hosts{k}", "-l", "root", "-p", str(k), "-t", "60",
            "-x", " ".join(shlex.quote(o) for o in ssh_opts() + ["-o", "ControlMaster=no"]),
            "-I", "-o", out, "sh -s",
        ]
        el, p = run_timed(argv, stdin=script.encode())
        texts = "".join(open(os.path.join(out, f)).read() for f in os.listdir(out))
    ok = p.returncode == 0 and probe_ok(texts, k)
    return el, ok, "" if ok else f"exit {p.returncode}, {texts.count('NRS_END')}/{k} complete: {p.stdout.decode()[-300:]}"


def ansible_env(k, cp_dir, pipelining):
    env = dict(os.environ)
    env.update({
        # an empty config file: no ansible.cfg from the cwd or home can change the run
        "ANSIBLE_CONFIG": os.path.join(cp_dir, "ansible.cfg"),
        "ANSIBLE_FORKS": str(k),
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_SSH_CONTROL_PATH_DIR": cp_dir,
        "ANSIBLE_PIPELINING": "True" if pipelining else "False",
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": os.path.join(cp_dir, "tmp"),
    })
    return env


def ansible_cleanup(cp_dir):
    # ControlPersist masters of this run: ask each to exit (they would idle 60 s otherwise).
    for f in os.listdir(cp_dir):
        sock = os.path.join(cp_dir, f)
        if os.path.exists(sock) and not os.path.isdir(sock):
            subprocess.run(["ssh", "-F", "/dev/null", "-o", f"ControlPath={sock}", "-O", "exit", "x"],
                           capture_output=True, timeout=10)


def run_ansible(k, script, pipelining):
    args = json.dumps({"cmd": "{% raw %}" + script + "{% endraw %}"})
    with tempfile.TemporaryDirectory(prefix="nrb-ans-") as cp:
        open(os.path.join(cp, "ansible.cfg"), "w").close()
        argv = [os.path.join(VENV, "bin/ansible"), "all", "-i", f"{DIR}/ansible{k}.ini",
                "-m", "ansible.builtin.shell", "-a", args, "-o"]
        try:
            el, p = run_timed(argv, env=ansible_env(k, cp, pipelining))
        finally:
            ansible_cleanup(cp)
    out = p.stdout.decode(errors="replace")
    ok = p.returncode == 0 and probe_ok(out, k)
    return el, ok, "" if ok else f"exit {p.returncode}, {out.count('NRS_END')}/{k}: {out[-300:]} {p.stderr.decode()[-300:]}"


def run_ssh_true():
    el, p = run_timed(["ssh"] + ssh_opts() + ["-o", "ControlMaster=no", f"root@{addr(1)}", "true"])
    return el, p.returncode == 0, ""


def run_ssh_true_all(k):
    """The floor: `ssh host true` to every host at once (one OpenSSH process per host)."""
    t0 = time.perf_counter()
    procs = [subprocess.Popen(["ssh"] + ssh_opts() + ["-o", "ControlMaster=no", f"root@{addr(i)}", "true"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for i in range(1, k + 1)]
    bad = 0
    for p in procs:
        p.wait(timeout=120)
        bad += p.returncode != 0
    el = time.perf_counter() - t0
    return el, bad == 0, "" if bad == 0 else f"{bad}/{k} failed"


def run_ssh_probe_one(script):
    el, p = run_timed(["ssh"] + ssh_opts() + ["-o", "ControlMaster=no", f"root@{addr(1)}", "sh -s"], stdin=script.encode())
    return el, p.returncode == 0 and probe_ok(p.stdout.decode(), 1), ""


def write_inputs(k):
    subprocess.run([NETLAB, "inventory", str(k), f"{DIR}/inv{k}.yaml"], check=True)
    with open(f"{DIR}/hosts{k}", "w") as f:
        for i in range(1, k + 1):
            f.write(addr(i) + "\n")
    common = " ".join(shlex.quote(o) for o in ssh_opts())
    with open(f"{DIR}/ansible{k}.ini", "w") as f:
        f.write("[all]\n")
        for i in range(1, k + 1):
            f.write(f"n{i} ansible_host={addr(i)}\n")
        f.write("[all:vars]\nansible_user=root\nansible_python_interpreter=/usr/bin/python3\n")
        f.write(f"ansible_ssh_common_args={shlex.quote(common)}\n")


def med(xs):
    return statistics.median(xs) if xs else None


def fanout(sizes, runs, tools, save=None, ansible_max=60):
    results = {}
    script_cache = {}
    for k in sizes:
        write_inputs(k)
        script_cache[k] = generic_script(k)
        results[k] = {}
    contenders = {
        "ssh_true": lambda k: run_ssh_true(),
        "floor": lambda k: run_ssh_true_all(k),
        "ssh_probe_n1": lambda k: run_ssh_probe_one(script_cache[k]),
        "nats_rescue": lambda k: run_nats_rescue(k, "diagnose"),
        "nats_rescue_status": lambda k: run_nats_rescue(k, "status"),
        "pssh": lambda k: run_pssh(k, script_cache[k]),
        "ansible": lambda k: run_ansible(k, script_cache[k], False),
        "ansible_pipelining": lambda k: run_ansible(k, script_cache[k], True),
    }
    for k in sizes:
        names = [t for t in tools if not (t == "ssh_true" and k != sizes[0])
                 and not (t.startswith("ansible") and k > ansible_max)
                 and not (t == "ansible" and k > 10)]  # the slower Ansible variant: small N only
        # one warm-up of each (page cache, sshd first accept), not counted; Ansible's is
        # skipped on big N (a minute per run, and its own first run warms nothing remote)
        for t in names:
            if (k >= 30 and t.startswith("ansible")) or k >= 100:
                continue  # no warm-up on 100+ hosts either: minutes per run on 2 cores
            r = contenders[t](k)
            if not r[1]:
                log(f"WARNING: warm-up {t} on {k} nodes failed: {r[2]}")
        series = {t: {"wall": [], "failed": 0, "rss": [], "load": [], "reached": [], "notes": []} for t in names}
        # interleave the tools run by run, so load changes hit all of them alike
        for r_i in range(runs):
            for t in names:
                la = loadavg()
                r = contenders[t](k)
                s = series[t]
                s["load"].append(la)
                if r[1]:
                    s["wall"].append(r[0])
                    if len(r) > 3 and r[3]:
                        s["rss"].append(r[3])
                    if len(r) > 4 and r[4] is not None:
                        s["reached"].append(r[4])
                    if r[2]:
                        s["notes"].append(r[2])
                        log(f"{t} on {k} nodes, run {r_i + 1}: {r[2]}")
                else:
                    s["failed"] += 1
                    log(f"{t} on {k} nodes, run {r_i + 1}: FAILED {r[2]}")
            log(f"{k} nodes, run {r_i + 1}/{runs}: " + ", ".join(
                f"{t} {series[t]['wall'][-1]:.2f}s" for t in names if series[t]["wall"]))
        for t, s in series.items():
            results[k][t] = {
                "median_s": med(s["wall"]),
                "min_s": min(s["wall"]) if s["wall"] else None,
                "max_s": max(s["wall"]) if s["wall"] else None,
                "runs": s["wall"],
                "failed": s["failed"],
                "peak_rss_kb": max(s["rss"]) if s["rss"] else None,
                "load_median": med(s["load"]),
                "reached_min": min(s["reached"]) if s["reached"] else None,
                "reached": s["reached"],
                "notes": s["notes"][:5],
            }
        if save:
            save(results)
    return results


# ---------------------------------------------------------------- recovery

def jsz_leader(i, timeout=0.5):
    try:
        with urllib.request.urlopen(f"http://{addr(i)}:8222/jsz", timeout=timeout) as r:
            v = json.loads(r.read())
        return (v.get("meta_cluster") or {}).get("leader") or None
    except Exception:  # noqa: BLE001
        return None


def any_leader():
    for i in range(1, SERVERS + 1):
        lead = jsz_leader(i)
        if lead:
            return lead
    return None


def varz_up(i):
    try:
        with urllib.request.urlopen(f"http://{addr(i)}:8222/varz", timeout=0.3) as r:
            return r.status == 200
    except Exception:  # noqa: BLE001
        return False


class Observer(threading.Thread):
    """Polls every 50 ms: when each killed server answers again, when a leader appears."""

    def __init__(self, t0, killed):
        super().__init__(daemon=True)
        self.t0, self.killed, self.stop = t0, killed, False
        self.up_at = {}
        self.leader_at = None

    def run(self):
        while not self.stop:
            now = time.perf_counter() - self.t0
            for i in self.killed:
                if i not in self.up_at and varz_up(i):
                    self.up_at[i] = now
            if self.leader_at is None and len(self.up_at) == len(self.killed) and any_leader():
                self.leader_at = time.perf_counter() - self.t0
            time.sleep(0.05)


def ctl(i, action):
    return subprocess.run([f"{DIR}/nodes/n{i}/ctl", action], capture_output=True, timeout=60)


def break_quorum(killed):
    for i in range(1, SERVERS + 1):
        ctl(i, "start")
    t = time.time()
    while not any_leader():
        if time.time() - t > 90:
            raise RuntimeError("no leader before the fault")
        time.sleep(0.2)
    for i in killed:
        ctl(i, "kill")
    t = time.time()
    # the survivor must have given up its leader, or a stale leader would end the wait early
    while jsz_leader(1) is not None:
        if time.time() - t > 120:
            raise RuntimeError("survivor still reports a leader after 120 s")
        time.sleep(0.2)
    time.sleep(1.0)


def ts_seconds(ts):
    # 2026-11-27T22:14:54.123Z
    from datetime import datetime, timezone
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def recover_tool(k):
    killed = list(range(2, SERVERS + 1))
    break_quorum(killed)
    with tempfile.TemporaryDirectory(prefix="nrb-rj-") as j:
        wall0 = time.time()
        t0 = time.perf_counter()
        obs = Observer(t0, killed)
        obs.start()
        p = subprocess.Popen([NR, "-i", f"{DIR}/inv{k}.yaml", "--journal-dir", j, "--no-color",
                              "run", "insufficient-nodes", "--yes"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = p.communicate(timeout=300)
        total = time.perf_counter() - t0
        obs.stop = True
        obs.join()
        recs = []
        for root, _, files in os.walk(j):
            for f in files:
                if f.endswith(".jsonl"):
                    recs += [json.loads(l) for l in open(os.path.join(root, f)) if l.strip()]
    rel = lambda r: ts_seconds(r["ts"]) - wall0  # noqa: E731
    intents = [rel(r) for r in recs if r.get("event") == "action_intent"]
    leader_done = [rel(r) for r in recs if r.get("event") == "step_finished" and r.get("step") == "leader"]
    gather_done = [rel(r) for r in recs if r.get("event") == "facts_gathered"]
    res = {
        "exit": p.returncode,
        "first_start_sent_s": min(intents) if intents else None,
        "first_gather_s": min(gather_done) if gather_done else None,
        "servers_up_s": max(obs.up_at.values()) if len(obs.up_at) == len(killed) else None,
        "leader_true_s": obs.leader_at,
        "leader_seen_s": leader_done[0] if leader_done else None,
        "total_s": total,
    }
    if p.returncode != 0:
        res["error"] = (out + err).decode(errors="replace")[-500:]
    return res


def recover_manual(k):
    """The operator's path: ssh to each stopped node and start it (in parallel), then poll
    /jsz until a leader shows (every 0.25 s, as fast as someone with `watch` and curl)."""
    killed = list(range(2, SERVERS + 1))
    break_quorum(killed)
    t0 = time.perf_counter()
    obs = Observer(t0, killed)
    obs.start()
    procs = [subprocess.Popen(["ssh"] + ssh_opts() + ["-o", "ControlMaster=no", f"root@{addr(i)}",
                                                       f"{DIR}/nodes/n{i}/ctl start"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in killed]
    sent = time.perf_counter() - t0
    for p in procs:
        p.wait(timeout=60)
    seen = None
    while time.perf_counter() - t0 < 120:
        if any_leader():
            seen = time.perf_counter() - t0
            break
        time.sleep(0.25)
    obs.stop = True
    obs.join()
    return {
        "first_start_sent_s": sent,
        "servers_up_s": max(obs.up_at.values()) if len(obs.up_at) == len(killed) else None,
        "leader_true_s": obs.leader_at,
        "leader_seen_s": seen,
        "total_s": seen,
    }


def recovery(runs):
    write_inputs(SERVERS)
    out = {"tool": [], "manual": []}
    for r in range(runs):
        for name, fn in (("tool", recover_tool), ("manual", recover_manual)):
            la = loadavg()
            res = fn(SERVERS)
            res["load"] = la
            out[name].append(res)
            log(f"recovery run {r + 1}/{runs} {name}: " + json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in res.items() if k != "error"}))
            if res.get("error"):
                log(f"  tool error: {res['error']}")
    summary = {}
    for name, rs in out.items():
        summary[name] = {}
        for key in ("first_start_sent_s", "servers_up_s", "leader_true_s", "leader_seen_s", "total_s"):
            vals = [x[key] for x in rs if x.get(key) is not None]
            summary[name][key] = med(vals)
        lat = [x["leader_seen_s"] - x["leader_true_s"] for x in rs if x.get("leader_seen_s") is not None and x.get("leader_true_s") is not None]
        summary[name]["detect_latency_s"] = med(lat)
        el = [x["leader_true_s"] - x["servers_up_s"] for x in rs if x.get("servers_up_s") is not None and x.get("leader_true_s") is not None]
        summary[name]["election_after_up_s"] = med(el)
    return {"runs": out, "median": summary}


# ---------------------------------------------------------------- journal

def journal(bin_path, records, runs):
    vals = []
    for _ in range(runs):
        p = subprocess.run([bin_path, str(records), "/tmp"], capture_output=True, timeout=600)
        if p.returncode != 0:
            log(f"journal bench failed: {p.stderr.decode()}")
            return None
        vals.append(json.loads(p.stdout))
    return {"records": records, "runs": [v["records_per_s"] for v in vals],
            "median_records_per_s": med([v["records_per_s"] for v in vals]),
            "bytes": vals[-1]["bytes"]}


def sh(cmd):
    try:
        p = subprocess.run(cmd, shell=True, capture_output=True, timeout=30)
        return (p.stdout + p.stderr).decode(errors="replace").strip()
    except Exception as e:  # noqa: BLE001
        return f"? ({e})"


def environment():
    ns = os.environ.get("NRB_NATS_SERVER") or (
        os.path.join(ROOT, ".tools/nats-server-2.15.1/nats-server")
        if os.path.exists(os.path.join(ROOT, ".tools/nats-server-2.15.1/nats-server")) else "/usr/sbin/nats-server")
    return {
        "cpu": sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"),
        "nproc": sh("nproc"),
        "mem": sh("free -g | awk '/Mem:/ {print $2 \" GiB\"}'"),
        "kernel": sh("uname -r"),
        "os": sh(". /etc/os-release; echo $PRETTY_NAME"),
        "nats_rescue": sh(f"{NR} --version") + " @ " + sh(f"git -C {ROOT} rev-parse --short HEAD")
                       + (" (dirty tree)" if sh(f"git -C {ROOT} status --porcelain -- src Cargo.toml Cargo.lock runbooks") else ""),
        "rustc": sh("rustc --version"),
        "ansible_core": sh(f"{VENV}/bin/ansible --version 2>/dev/null | sed -n 1p"),
        "ansible_python": sh(f"{VENV}/bin/python --version"),
        "pssh": sh("dpkg-query -W -f='${Version}' pssh"),
        "openssh": sh("ssh -V"),
        "nats_server": sh(f"{ns} --version"),
        "sshd_setenv_shlvl1": os.environ.get("NRB_SHLVL1", "1"),
        "ulimit_n": sh("ulimit -n"),
    }


def login_cost(variant):
    subprocess.run([NETLAB, "login-cost", "on" if variant == "cost" else "off"], check=True)


def measure_login(variant, n=9):
    """What one login costs now: `ssh n1 true` (median) and what bash sources for it."""
    walls = [run_ssh_true()[0] for _ in range(n)]
    env = subprocess.run(["ssh"] + ssh_opts() + [f"root@{addr(1)}", "echo SHLVL=$SHLVL BASH_ENV=${BASH_ENV-unset} PYENV_SHELL=${PYENV_SHELL-unset}"],
                         capture_output=True, timeout=30).stdout.decode().strip()
    return {"ssh_true_median_s": med(walls), "ssh_true_min_s": min(walls), "remote_env": env,
            "file": open(f"{DIR}/login-cost.sh").read() if os.path.exists(f"{DIR}/login-cost.sh") else None}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", default="3,10,30,60")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--recovery-runs", type=int, default=5)
    ap.add_argument("--tools", default="floor,ssh_true,ssh_probe_n1,nats_rescue,nats_rescue_status,pssh,ansible,ansible_pipelining")
    ap.add_argument("--zero-tools", default="floor,nats_rescue,nats_rescue_status,pssh",
                    help="contenders of the zero-login-cost row set ('' = skip it)")
    ap.add_argument("--ansible-max", type=int, default=60, help="largest N Ansible runs on")
    ap.add_argument("--skip", default="", help="comma list of: fanout,recovery,journal")
    ap.add_argument("--journal-bin", default="")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    sizes = [int(x) for x in a.nodes.split(",")]
    skip = set(filter(None, a.skip.split(",")))
    res = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "load_start": open("/proc/loadavg").read().strip(),
           "sizes": sizes, "runs": a.runs}
    res["env"] = environment()
    t = time.time()
    while not any_leader() and time.time() - t < 60:
        time.sleep(0.2)
    if "fanout" not in skip:
        # Every SSH command pays a fixed, known login cost (sshd SetEnv BASH_ENV: a file that
        # sleeps 0.1 s); the zero-cost row set is the same hosts with that file emptied.
        res["login_cost"] = {}
        for variant, tools in (("cost", a.tools), ("zero", a.zero_tools)):
            if not tools:
                continue
            login_cost(variant)
            res["login_cost"][variant] = measure_login(variant)
            log(f"login cost {variant}: {res['login_cost'][variant]}")

            def save(partial, variant=variant):
                res["fanout" if variant == "cost" else "fanout_zero"] = partial
                json.dump(res, open(a.out, "w"), indent=1)
            save(fanout(sizes, a.runs, tools.split(","), save, a.ansible_max))
        login_cost("cost")
    if "recovery" not in skip:
        res["recovery"] = recovery(a.recovery_runs)
        json.dump(res, open(a.out, "w"), indent=1)
    if "journal" not in skip and a.journal_bin:
        res["journal"] = journal(a.journal_bin, 2000, 5)
    res["load_end"] = open("/proc/loadavg").read().strip()
    res["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    json.dump(res, open(a.out, "w"), indent=1)
    log(f"results: {a.out}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""gpucheck.py — the measuring half of scripts/gpu-check.sh (docs/GPU-CHECK.md). Python 3 standard
library only (it runs on the lent GPU machine, which has no registry). Given a matrix of model
entries (a JSON file the shell script writes), it runs four measurements against the daemon and
llama-server and writes raw JSON plus a markdown summary:

  1. footprint: per entry, the daemon's estimate before load vs what it measured after load and
     after one request (and nvidia-smi's per-process number in GPU mode), error in %;
  2. a randomized mixed workload over all entries for N seconds under a budget about 3x smaller
     than their total demand (build/bin/gpucheck-load): requests, errors, OOMs, swaps, p50/p99;
  3. swap time (A loaded; a 1-token request to B that must evict A) vs a bare llama-server cold
     start of B (spawn to /health, then the same 1-token request);
  4. decode tok/s, 1 stream and 8 streams, switchyard vs llama-server, same model (build/bin/bench).

A benchmark, never a test: it reports, it asserts nothing. Every phase checks the deadline
(--deadline, unix seconds) and is skipped when too little time is left; results written so far
stay on disk.
"""
import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import shutil
import sys
import threading
import time
import urllib.error
import urllib.request

T0 = time.time()


def log(msg):
    print(f"gpucheck [{time.time() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def http(method, url, body=None, timeout=600):
    """(status, parsed JSON or text); status 0 when the connection failed."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            st = r.status
    except urllib.error.HTTPError as e:
        raw, st = e.read(), e.code
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        return 0, str(e)
    try:
        return st, json.loads(raw)
    except ValueError:
        return st, raw.decode(errors="replace")


def wait_health(url, proc, timeout=300):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            return False
        st, _ = http("GET", url + "/health", timeout=2)
        if st == 200:
            return True
        time.sleep(0.05)
    return False


def stop(proc):
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def nvidia_smi_per_pid():
    """{pid: MiB} from nvidia-smi, or {} where there is none."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    res = {}
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2 and parts[0].isdigit():
            try:
                res[int(parts[0])] = float(parts[1])
            except ValueError:
                pass
    return res


def gpu_used_mib():
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10).stdout.strip().splitlines()
        return float(out[0])
    except (OSError, subprocess.TimeoutExpired, IndexError, ValueError):
        return None


def gpu_total_mib():
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=30).stdout.strip().splitlines()
        name, total = [p.strip() for p in out[0].split(",")]
        return name, float(total)
    except (OSError, subprocess.TimeoutExpired, IndexError, ValueError):
        return None, 0.0


MiB = 1024 * 1024


class Daemon:
    def __init__(self, a, entries, name, budget=None):
        self.a = a
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cfg = os.path.join(a.out, f"{name}.yaml")
        lines = ["log_level: warn", "builtin_voice: false"]
        if budget is not None:
            if a.mode == "gpu":
                lines.append(f"memory: {{devices: {{CUDA0: {int(budget // MiB)}MiB}}}}")
            else:
                lines.append(f"memory: {{budget: {int(budget // MiB)}MiB}}")
        lines.append("models:")
        for e in entries:
            f = {"name": e["name"], "file": e["file"], "keep_alive": -1}
            if e["kind"] != "transcribe":
                f.update(context=e["context"], parallel=e["parallel"], batch=512)
            if e["kind"] == "embed":
                f["capabilities"] = ["embed"]
            if e["kind"] == "transcribe":
                f["engine"] = "whisper"
            if a.threads:
                f["threads"] = a.threads
            if a.mode == "cpu":
                f["gpu_layers"] = 0
            lines.append("  - " + json.dumps(f))
        with open(self.cfg, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        # one state folder for the whole run: probes run once per entry, measurements are learned
        env = dict(os.environ, SWITCHYARD_STATE_DIR=os.path.join(a.out, "state"))
        if a.lib_path:
            env["LD_LIBRARY_PATH"] = a.lib_path + ":" + env.get("LD_LIBRARY_PATH", "")
        self.logf = open(os.path.join(a.out, f"{name}.log"), "w")
        self.proc = subprocess.Popen([a.daemon, "--config", self.cfg, "--port", str(self.port), "--worker-dir", a.bin],
                                     stdout=self.logf, stderr=subprocess.STDOUT, env=env)
        if not wait_health(self.url, self.proc, 60):
            raise RuntimeError(f"switchyard did not start (see {name}.log)")

    def ps(self):
        st, j = http("GET", self.url + "/api/ps", timeout=30)
        return j if st == 200 and isinstance(j, dict) else {"models": []}

    def ps_model(self, name):
        for m in self.ps().get("models", []):
            if m.get("name") == name:
                return m
        return None

    def close(self):
        stop(self.proc)
        self.logf.close()


def one_request(a, url, e, tokens=1, model=None):
    """Send the entry's kind of request; (status, seconds, body)."""
    name = model or e["name"]
    t = time.time()
    if e["kind"] == "chat":
        st, j = http("POST", url + "/v1/chat/completions",
                     {"model": name, "messages": [{"role": "user", "content": "Say something about trains."}],
                      "max_tokens": tokens, "temperature": 0})
    elif e["kind"] == "embed":
        st, j = http("POST", url + "/v1/embeddings", {"model": name, "input": "a yard full of railway cars"})
    else:
        st, j = transcribe(url, name, a.audio)
    return st, time.time() - t, j


def transcribe(url, name, wav):
    boundary = "gpucheckboundary7d1f"
    with open(wav, "rb") as fh:
        audio = fh.read()
    # a set temperature turns whisper's fallback ladder off: random weights would climb it
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n{name}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"temperature\"\r\n\r\n0.2\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
            f"Content-Type: audio/wav\r\n\r\n").encode() + audio + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(url + "/v1/audio/transcriptions", data=body, method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (urllib.error.URLError, OSError, ValueError) as e:
        return 0, str(e)


def pool_split(m):
    """(gpu estimated, gpu measured, host estimated, host measured) bytes of a /api/ps model."""
    ge = gm = he = hm = 0
    for d in m.get("devices", []) or []:
        if d.get("device", "").lower() == "host" or d.get("device", "").upper() == "CPU":
            he += d.get("estimated", 0)
            hm += d.get("measured", 0)
        else:
            ge += d.get("estimated", 0)
            gm += d.get("measured", 0)
    return ge, gm, he, hm


def pct(est, meas):
    return None if not meas else round(100.0 * (est - meas) / meas, 1)


def left():
    return ARGS.deadline - time.time() if ARGS.deadline else 1e9


# ---- 1. footprint ----
def phase_footprint(a, entries):
    d = Daemon(a, entries, "footprint")
    rows = []
    try:
        # every entry's estimate is made at start (the probe), before anything loads
        st, j = http("GET", d.url + "/v1/models")
        est = {m["id"]: (m.get("memory") or {}).get("estimated", 0) for m in (j.get("data", []) if st == 200 else [])}
        # measure distinct files first, then the rest while time and --footprint-max allow
        seen, order = set(), []
        for e in entries:
            if e["file"] not in seen:
                order.append(e)
                seen.add(e["file"])
        order += [e for e in entries if e not in order]
        for e in order[:a.footprint_max]:
            if left() < a.reserve:
                log("footprint: out of time, skipping the rest")
                break
            t = time.time()
            st, j = http("POST", d.url + "/api/load", {"model": e["name"]})
            load_s = time.time() - t
            m = d.ps_model(e["name"]) or {}
            smi = nvidia_smi_per_pid() if a.mode == "gpu" else {}
            row = {"name": e["name"], "kind": e["kind"], "file": os.path.basename(e["file"]),
                   "file_bytes": os.path.getsize(e["file"]), "context": e.get("context"),
                   "parallel": e.get("parallel"), "load_status": st, "load_s": round(load_s, 2),
                   "estimated": m.get("size_estimated", 0), "measured_after_load": m.get("size_measured", 0),
                   "devices_after_load": m.get("devices", []), "pid": m.get("pid")}
            if st != 200:
                row["load_error"] = j
            if smi and m.get("pid") in smi:
                row["nvidia_smi_mib_after_load"] = smi[m["pid"]]
            rst, rs, _ = one_request(a, d.url, e, tokens=8)
            m2 = d.ps_model(e["name"]) or {}
            row.update(request_status=rst, request_s=round(rs, 2), measured_after_request=m2.get("size_measured", 0),
                       devices_after_request=m2.get("devices", []))
            if a.mode == "gpu":
                smi = nvidia_smi_per_pid()
                if m2.get("pid") in smi:
                    row["nvidia_smi_mib_after_request"] = smi[m2["pid"]]
            ge, gm, he, hm = pool_split(m2)
            row.update(gpu_estimated=ge, gpu_measured=gm, host_estimated=he, host_measured=hm)
            row["error_pct"] = pct(row["estimated"], row["measured_after_request"])
            if a.mode == "gpu" and "nvidia_smi_mib_after_request" in row:
                row["error_pct_vs_nvidia_smi"] = pct(ge, row["nvidia_smi_mib_after_request"] * MiB)
            row["estimated_before_load"] = est.get(e["name"], 0)
            rows.append(row)
            log(f"footprint {e['name']}: estimated {row['estimated'] / MiB:.0f} MiB, measured "
                f"{row['measured_after_request'] / MiB:.0f} MiB ({row['error_pct']}%), load {load_s:.1f}s")
            http("POST", d.url + "/api/unload", {"model": e["name"]})
    finally:
        d.close()
    return rows, est


# ---- 2. mixed workload ----
def phase_workload(a, entries, budget):
    d = Daemon(a, entries, "workload", budget)
    try:
        chat = ",".join(e["name"] for e in entries if e["kind"] == "chat")
        embed = ",".join(e["name"] for e in entries if e["kind"] == "embed")
        tr = ",".join(e["name"] for e in entries if e["kind"] == "transcribe")
        cmd = [a.load, "--url", d.url, "--seconds", str(a.seconds), "--clients", str(a.clients),
               "--tokens", str(a.tokens), "--stick", "3", "--seed", "7"]
        if chat:
            cmd += ["--chat", chat]
        if embed:
            cmd += ["--embed", embed]
        if tr and a.audio and not a.no_transcribe_load:
            cmd += ["--transcribe", tr, "--audio", a.audio]
        env = dict(os.environ)
        if a.lib_path:
            env["LD_LIBRARY_PATH"] = a.lib_path + ":" + env.get("LD_LIBRARY_PATH", "")
        log(f"workload: {a.seconds}s, {a.clients} clients, budget "
            f"{'the card' if budget is None else f'{budget / MiB:.0f} MiB'}")
        peak = {"gpu_used_mib": 0.0, "samples": 0}
        stop_ev = threading.Event()

        def sample():  # the card's total use, once a second: did anything ever overflow it?
            while not stop_ev.wait(1.0):
                u = gpu_used_mib()
                if u is not None:
                    peak["gpu_used_mib"] = max(peak["gpu_used_mib"], u)
                    peak["samples"] += 1

        th = threading.Thread(target=sample, daemon=True)
        if a.mode == "gpu":
            th.start()
        with open(os.path.join(a.out, "workload.stderr"), "w") as errf:
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=errf, text=True, env=env,
                               timeout=a.seconds + 900)
        stop_ev.set()
        try:
            res = json.loads(p.stdout)
        except ValueError:
            res = {"error": "gpucheck-load printed no JSON", "stdout": p.stdout[-2000:]}
        res["budget"] = budget
        if a.mode == "gpu":
            res["peak_gpu_used_mib"] = peak["gpu_used_mib"]
            res["gpu_samples"] = peak["samples"]
        return res, d
    except Exception:
        d.close()
        raise


# ---- 3. swap vs cold start ----
def phase_swap(a, entries, size):
    """A daemon of its own over two chat entries (different files) with a budget that holds either
    but not both, whatever the card: so a request to B must unload A first."""
    chats = sorted([e for e in entries if e["kind"] == "chat"], key=lambda e: -size.get(e["name"], 0))
    pair = None
    for i, x in enumerate(chats):
        for y in chats[i + 1:]:
            if x["file"] != y["file"] and size.get(y["name"], 0) > 0.15 * size.get(x["name"], 0):
                pair = (x, y)
                break
        if pair:
            break
    if not pair:
        return {"skipped": "no two chat entries of different files and comparable size"}
    A, B = pair
    budget = 1.1 * max(size.get(A["name"], 0), size.get(B["name"], 0))
    d = Daemon(a, [A, B], "swap", budget)
    try:
        return swap_runs(a, d, A, B, budget, size)
    finally:
        d.close()


def swap_runs(a, d, A, B, budget, est):
    res = {"A": A["name"], "B": B["name"], "budget": budget, "A_estimated": est.get(A["name"]),
           "B_estimated": est.get(B["name"]), "swaps": []}
    for i in range(a.swap_runs):
        if left() < 45:
            break
        src, dst = (A, B) if i % 2 == 0 else (B, A)
        lst, _ = http("POST", d.url + "/api/load", {"model": src["name"]})
        before = [m["name"] for m in d.ps().get("models", [])]
        st, s, _ = one_request(a, d.url, dst, tokens=1)
        loaded = [m["name"] for m in d.ps().get("models", [])]
        res["swaps"].append({"from": src["name"], "to": dst["name"], "load_from_status": lst, "resident_before": before,
                             "status": st, "seconds": round(s, 3), "resident_after": loaded,
                             "swapped": src["name"] in before and src["name"] not in loaded})
        log(f"swap {src['name']} -> {dst['name']}: {s:.2f}s (HTTP {st}), resident {loaded}")
    ok = [x["seconds"] for x in res["swaps"] if x["status"] == 200 and x["to"] == B["name"] and x["swapped"]]
    res["swap_to_B_median_s"] = round(statistics.median(ok), 3) if ok else None
    # a bare llama-server cold start of B: same file, context, slots, layers, threads
    cold = []
    for _ in range(a.cold_runs):
        if left() < 40:
            break
        port = free_port()
        cmd = [a.llama_server, "-m", B["file"], "-c", str(B["context"] * B["parallel"]), "-np", str(B["parallel"]),
               "-ngl", "99" if a.mode == "gpu" else "0", "--host", "127.0.0.1", "--port", str(port), "--no-webui",
               "-b", "512"]
        if a.threads:
            cmd += ["-t", str(a.threads), "-tb", str(a.threads)]
        with open(os.path.join(a.out, "llama-server-cold.log"), "a") as lf:
            t = time.time()
            p = subprocess.Popen(cmd, stdout=lf, stderr=subprocess.STDOUT)
            healthy = wait_health(f"http://127.0.0.1:{port}", p, 300)
            t_health = time.time() - t
            st, s, _ = one_request(a, f"http://127.0.0.1:{port}", B, tokens=1, model="x") if healthy else (0, 0, None)
            total = time.time() - t
            stop(p)
        cold.append({"healthy": healthy, "to_health_s": round(t_health, 3), "first_token_status": st,
                     "spawn_to_first_token_s": round(total, 3)})
        log(f"llama-server cold start of {B['name']}: health {t_health:.2f}s, first token {total:.2f}s")
    res["llama_server_cold"] = cold
    okc = [c["spawn_to_first_token_s"] for c in cold if c["first_token_status"] == 200]
    res["llama_server_cold_median_s"] = round(statistics.median(okc), 3) if okc else None
    return res


# ---- 4. decode speed ----
def run_bench(a, url, model, streams_out):
    cmd = [a.bench, "--url", url, "--model", model, "--tokens", str(a.decode_tokens), "--streams", "8",
           "--runs", str(a.decode_runs), "--latency-runs", "5"]
    env = dict(os.environ)
    if a.lib_path:
        env["LD_LIBRARY_PATH"] = a.lib_path + ":" + env.get("LD_LIBRARY_PATH", "")
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    with open(streams_out, "w") as fh:
        fh.write(p.stdout + "\n# stderr\n" + p.stderr)
    try:
        return json.loads(p.stdout)
    except ValueError:
        return {"error": p.stderr[-1000:]}


def phase_decode(a, entry):
    e = dict(entry, name="decode", context=a.decode_ctx, parallel=8)
    res = {"model": os.path.basename(e["file"]), "context_per_sequence": a.decode_ctx, "slots": 8}
    d = Daemon(a, [e], "decode")
    try:
        http("POST", d.url + "/api/load", {"model": "decode"})
        res["switchyard"] = run_bench(a, d.url, "decode", os.path.join(a.out, "decode-switchyard.json"))
    finally:
        d.close()
    if left() < 20:
        return res
    port = free_port()
    cmd = [a.llama_server, "-m", e["file"], "-c", str(a.decode_ctx * 8), "-np", "8",
           "-ngl", "99" if a.mode == "gpu" else "0", "--host", "127.0.0.1", "--port", str(port), "--no-webui",
           "-b", "512", "-ub", "512"]
    if a.threads:
        cmd += ["-t", str(a.threads), "-tb", str(a.threads)]
    with open(os.path.join(a.out, "llama-server-decode.log"), "w") as lf:
        p = subprocess.Popen(cmd, stdout=lf, stderr=subprocess.STDOUT)
        try:
            if wait_health(f"http://127.0.0.1:{port}", p, 300):
                res["llama_server"] = run_bench(a, f"http://127.0.0.1:{port}", "decode",
                                                os.path.join(a.out, "decode-llama-server.json"))
        finally:
            stop(p)
    return res


def fmt_mib(b):
    return f"{b / MiB:,.0f}" if b else "—"


def summary(a, card, entries, fp, wl, sw, dec, budget, demand):
    L = []
    where = card if a.mode == "gpu" else f"CPU only ({os.cpu_count()} cores), no GPU"
    L.append(f"# gpu-check ({a.mode} mode) — {where}\n")
    L.append(f"{len(entries)} matrix entries, total estimated demand {demand / MiB:,.0f} MiB, "
             f"budget {budget / MiB:,.0f} MiB (demand/budget = {demand / budget:.2f})\n")
    L.append("## 1. Footprint: estimated before load vs measured\n")
    if a.mode == "gpu":
        L.append("| entry | file MiB | ctx×slots | estimated MiB (GPU) | NVML via /api/ps MiB | nvidia-smi MiB | error vs nvidia-smi | total est | total measured | error |")
        L.append("|---|---|---|---|---|---|---|---|---|---|")
        for r in fp:
            L.append(f"| {r['name']} | {fmt_mib(r['file_bytes'])} | {r.get('context') or '—'}×{r.get('parallel') or '—'} | "
                     f"{fmt_mib(r['gpu_estimated'])} | {fmt_mib(r['gpu_measured'])} | "
                     f"{r.get('nvidia_smi_mib_after_request', '—')} | {r.get('error_pct_vs_nvidia_smi')}% | "
                     f"{fmt_mib(r['estimated'])} | {fmt_mib(r['measured_after_request'])} | {r['error_pct']}% |")
    else:
        L.append("| entry | kind | file MiB | ctx×slots | estimated MiB | measured after load | after 1 request | error | load s |")
        L.append("|---|---|---|---|---|---|---|---|---|")
        for r in fp:
            L.append(f"| {r['name']} | {r['kind']} | {fmt_mib(r['file_bytes'])} | {r.get('context') or '—'}×{r.get('parallel') or '—'} | "
                     f"{fmt_mib(r['estimated'])} | {fmt_mib(r['measured_after_load'])} | "
                     f"{fmt_mib(r['measured_after_request'])} | {r['error_pct']}% | {r['load_s']} |")
    L.append("\nerror = (estimated − measured) / measured; positive = over-estimate (safe side).\n")
    if wl:
        L.append("## 2. Mixed workload\n")
        L.append("| seconds | clients | requests | ok | errors | OOMs | loads | evictions | req/s | p50 s | p99 s | per kind |")
        L.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
        kinds = "; ".join(f"{k}: {v['ok']} ok / {v['errors']} err, p50 {v['p50_s']} s, p99 {v['p99_s']} s"
                          for k, v in wl.get("kinds", {}).items())
        L.append(f"| {wl.get('seconds')} | {wl.get('clients')} | {wl.get('requests')} | {wl.get('ok')} | {wl.get('errors')} | "
                 f"{wl.get('ooms')} | {wl.get('loads')} | {wl.get('evictions')} | {wl.get('requests_per_s')} | "
                 f"{wl.get('p50_s')} | {wl.get('p99_s')} | {kinds} |\n")
        if wl.get("peak_gpu_used_mib"):
            L.append(f"Peak memory used on the card during the workload (nvidia-smi, 1 s samples): "
                     f"{wl['peak_gpu_used_mib']:,.0f} MiB of {card}.\n")
    if sw and "A" in sw:
        L.append("## 3. Swap vs cold start\n")
        L.append(f"A = {sw['A']}, B = {sw['B']}, on a daemon of their own whose budget "
                 f"({sw['budget'] / MiB:,.0f} MiB) holds either, not both. Swap: A loaded, a 1-token chat request "
                 f"to B (unload A, load B, first token). Cold: spawn llama-server on B's file, /health, the same "
                 f"request.\n")
        L.append("| swap A→B median s | runs | llama-server cold start median s | runs |")
        L.append("|---|---|---|---|")
        L.append(f"| {sw.get('swap_to_B_median_s')} | {sum(1 for x in sw['swaps'] if x['swapped'] and x['to'] == sw['B'])} | {sw.get('llama_server_cold_median_s')} | "
                 f"{len(sw.get('llama_server_cold', []))} |\n")
    if dec and "switchyard" in dec:
        L.append("## 4. Decode speed\n")
        L.append(f"model {dec['model']}, context {dec['context_per_sequence']}/sequence, 8 slots\n")
        L.append("| metric | switchyard | llama-server |")
        L.append("|---|---|---|")
        s, l = dec.get("switchyard", {}), dec.get("llama_server", {})
        for k, n in [("single_stream_tok_s", "decode tok/s, 1 stream"), ("aggregate_tok_s", "decode tok/s, 8 streams"),
                     ("ttft_ms", "time to first token, ms")]:
            L.append(f"| {n} | {s.get(k, '—')} | {l.get(k, '—')} |")
    return "\n".join(L) + "\n"


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["cpu", "gpu"], required=True)
    ap.add_argument("--entries", required=True, help="JSON list of {name, kind, file, context, parallel}")
    ap.add_argument("--daemon", required=True)
    ap.add_argument("--bin", required=True, help="worker folder (switchyard-llama, llama-fit-params, ...)")
    ap.add_argument("--load", required=True)
    ap.add_argument("--bench", required=True)
    ap.add_argument("--llama-server", required=True)
    ap.add_argument("--audio")
    ap.add_argument("--out", required=True)
    ap.add_argument("--lib-path", default="", help="LD_LIBRARY_PATH prefix for the carried binaries")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=16)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--ratio", type=float, default=3.0, help="total demand / budget")
    ap.add_argument("--swap-runs", type=int, default=4)
    ap.add_argument("--cold-runs", type=int, default=2)
    ap.add_argument("--decode-model", help="entry name for phase 4 (default: the smallest chat entry)")
    ap.add_argument("--decode-ctx", type=int, default=1024)
    ap.add_argument("--decode-tokens", type=int, default=128)
    ap.add_argument("--decode-runs", type=int, default=2)
    ap.add_argument("--deadline", type=float, default=0, help="unix time by which to be done")
    ap.add_argument("--phases", default="1234")
    ap.add_argument("--mirror", help="also write results.json (after every phase) and summary.md here")
    ap.add_argument("--no-transcribe-load", action="store_true",
                    help="leave transcriptions out of the workload (random-weight whisper decodes a full "
                         "224-token window per request: ~60 s on 2 CPU cores, which would stall everything)")
    ap.add_argument("--footprint-max", type=int, default=100, help="entries to load in phase 1")
    ap.add_argument("--reserve", type=float, default=60, help="seconds kept for later phases")
    a = ARGS = ap.parse_args()
    a.bin = os.path.abspath(a.bin)
    os.makedirs(a.out, exist_ok=True)
    if a.mirror:
        os.makedirs(a.mirror, exist_ok=True)
    shutil.rmtree(os.path.join(a.out, "state"), ignore_errors=True)  # estimates start fresh
    entries = json.load(open(a.entries))
    card = None
    if a.mode == "gpu":
        name, total = gpu_total_mib()
        card = f"{name}, {total:,.0f} MiB" if name else "GPU (nvidia-smi gave no name)"
    results = {"mode": a.mode, "card": card, "cpus": os.cpu_count(), "entries": entries,
               "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}

    def save():
        for d in [a.out] + ([a.mirror] if a.mirror else []):
            with open(os.path.join(d, "results.json"), "w") as fh:
                json.dump(results, fh, indent=1)

    fp, est = phase_footprint(a, entries)
    results["footprint"] = fp
    results["estimates"] = est
    save()
    demand = sum(est.values()) or 1
    if a.mode == "gpu":
        _, total = gpu_total_mib()
        budget = max(total * MiB - 512 * MiB, 1)  # the daemon's default: card − gpu_reserve
    else:
        # the largest entry must fit alone, at what it was measured to need too (the daemon counts
        # the larger of estimate and measurement), else its requests are refused with 507
        sizes = [max(est.get(r["name"], 0), r.get("measured_after_request", 0)) for r in fp] + list(est.values())
        budget = max(demand / a.ratio, 1.1 * max(sizes or [1]))
    results.update(demand=demand, budget=budget)
    wl = sw = dec = None
    if "2" in a.phases and left() > a.seconds + 60:
        wl, d = phase_workload(a, entries, budget if a.mode == "cpu" else None)
        d.close()
        results["workload"] = wl
        save()
    if "3" in a.phases and left() > 60:
        size = dict(est)
        for r in fp:
            size[r["name"]] = max(size.get(r["name"], 0), r.get("measured_after_request", 0))
        sw = phase_swap(a, entries, size)
        results["swap"] = sw
        save()
    chats = [e for e in entries if e["kind"] == "chat"]
    if "4" in a.phases and left() > 45 and chats:
        pick = next((e for e in chats if e["name"] == a.decode_model), None) or \
            min(chats, key=lambda e: os.path.getsize(e["file"]))
        dec = phase_decode(a, pick)
        results["decode"] = dec
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    save()
    text = summary(a, card, entries, fp, wl, sw, dec, budget, demand)
    for d in [a.out] + ([a.mirror] if a.mirror else []):
        with open(os.path.join(d, "summary.md"), "w") as fh:
            fh.write(text)
    print(text)


if __name__ == "__main__":
    main()

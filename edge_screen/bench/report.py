"""The human view of a report: what QA reads first (the JSON has everything)."""

from __future__ import annotations

import json
from typing import Any

from .peers import PEERS
from .stats import Stat


def _fmt(label: str, st: Stat) -> str:
    return f"  {label:<34}{st['median']:>9.2f} {st['unit']:<8} (IQR {st['iqr']:.2f}, n={st['n']})"


def table(r: dict[str, Any]) -> str:
    """The human view of the report; the JSON has everything, this has what QA reads first."""
    d, c, e = r["device"], r["config"], r["end_to_end"]
    lines = [f"device   {d['device_model'] or d['cpu']} ({d['machine']}, {d['cpu_count']} CPUs), "
             f"{d['os']}, {d['python']}, load avg {d['load_average']}",
             f"config   {c['backend']} {c['threads']} threads, {c.get('workers', 1)} workers, "
             f"faces {c.get('faces')}, min_face {c.get('min_face')}, "
             f"bundle {c['bundle_version']}, "
             f"{c['inputs']['count']} x {c['inputs']['megapixels']} MP JPEG, {r['mode']}"]
    lines += [_fmt(k, v) for k, v in r["load"].items() if isinstance(v, dict)]
    lines += [_fmt(f"decode {k}", v) for k, v in r["stages"]["decode"].items()]
    for mid, m in r["stages"]["models"].items():
        lines += [_fmt(f"{mid} {m['variant']} {k}", m[k])
                  for k in ("preprocess_ms", "invoke_ms", "run_ms")]
    lines += [_fmt(f"screen() {k}", v) for k, v in e["pipeline_ms"].items()]
    lines += [_fmt("screen() wall latency_ms", e["latency_ms"]),
              _fmt("screen_many() throughput", e["throughput"]),
              f"  limit {e['limit_images_per_s']:.2f} images/s (invoke-only "
              f"{e['invoke_only_images_per_s']:.2f}, draft decode {e['decode_images_per_s']:.2f}); "
              f"pipeline at {e['ratio_to_limit']:.2f}x of it",
              f"  CPU bound {e['cpu_bound_images_per_s']:.2f} images/s ({e['cores']} cores over "
              f"{e['cpu_ms_per_image']:.1f} ms of one core's draft decode and 1-thread invokes "
              f"per image); pipeline at {e['ratio_to_cpu_bound']:.2f}x of it",
              "  invokes per image " + ", ".join(
                  f"{k} {v:g}" for k, v in e.get("invokes_per_image", {}).items())]
    if (v := e.get("video")) is not None:
        clip = v["clip"]
        lines.append(f"  video {clip['seconds']} s {clip['width']}x{clip['height']} "
                     f"{clip['codec']}: "
                     f"{v['screen_s']['median']:.2f} s per clip (IQR {v['screen_s']['iqr']:.2f}, "
                     f"n={v['screen_s']['n']}), {v['cpu_s']['median']:.2f} s CPU, "
                     f"{v['fraction_of_duration']:.3f} of its duration, "
                     f"{v['frames_screened']} frames, {v['faces']} faces; "
                     f"{v['ratio_to_bound']:.2f}x its bound (decode-only "
                     f"{v['bound_s']['decode_only']:.2f} s + invoke-only "
                     f"{v['bound_s']['invoke_only']:.2f} s)")
    for name, x in e.get("face_strategies", {}).items():
        lines.append(f"  faces {name}: {x['throughput']['median']:.2f} images/s "
                     f"(IQR {x['throughput']['iqr']:.2f}, n={x['throughput']['n']}), "
                     f"{x.get('ratio_to_tiles', float('nan')):.2f}x tiles, "
                     f"{x['gmacs_per_image']:.2f} GMACs and {x['faces_per_image']:g} faces "
                     "per image, invokes " + ", ".join(
                         f"{k} {v:g}" for k, v in x["invokes_per_image"].items()))
    if (h := e.get("hashing")) is not None:
        lines.append(f"  hashing off {h['hashing_off']['throughput']['median']:.2f} images/s, "
                     f"with a {h['entries']:,}-entry hash list "
                     f"{h['list_1m']['throughput']['median']:.2f} images/s: "
                     f"{h['ratio_to_hashing_off']:.3f}x")
    if (iso := e.get("isolation")) is not None:
        rate, ms = iso["throughput"], iso["latency_ms"]
        lines.append(f"  isolation process: {rate['process']['median']:.2f} images/s against "
                     f"{rate['none']['median']:.2f} in-process ({iso['throughput_ratio']:.2f}x), "
                     f"screen() {ms['process']['median']:.1f} ms against "
                     f"{ms['none']['median']:.1f} ms ({iso['latency_overhead_ms']:+.1f} ms); "
                     f"round trip {iso['round_trip_ms']['process']['median']:.2f} ms against "
                     f"{iso['round_trip_ms']['none']['median']:.2f} ms "
                     f"({iso['round_trip_overhead_ms']:+.2f} ms per item); "
                     f"{iso['workers']} workers started in {iso['worker_start_s']:.2f} s, "
                     "peak RSS / address space " + ", ".join(
                         f"{w['peak_rss_mb']} / {w['peak_vm_mb']} MB"
                         for w in iso["worker_memory"]))
    for name, p in e["peers"].items():
        lines.append(f"  peer {name}: " + (p.get("note") or f"{p['images_per_s']:.2f} images/s, "
                     f"ours {p['ours_ratio']:.1f}x {json.dumps(p.get('agreement', {}))}"))
    combined = e["peers"].get("+".join(PEERS), {}).get("ours_ratio")
    got = {"peers_ratio": combined, "ratio_to_limit": e["ratio_to_limit"],
           "peak_rss_mb": r["load"]["peak_rss_mb"]["median"],
           "import_and_load_s": r["load"]["import_and_load_s"]["median"],
           "ratio_to_cpu_bound": e.get("ratio_to_cpu_bound"),
           "faces_ratio_to_tiles": e.get("face_strategies", {}).get(
               c.get("faces"), {}).get("ratio_to_tiles") if c.get("faces") != "tiles" else None,
           "video_ratio_to_bound": (e.get("video") or {}).get("ratio_to_bound"),
           "hashlist_ratio_to_hashing_off": (e.get("hashing") or {}).get("ratio_to_hashing_off")}
    for p in e["peers"].values():  # agreement with the peer that gives each signal
        for k in ("sexual_max_abs", "graphic_max_abs", "age_max_abs"):
            if p.get("agreement", {}).get(k) is not None and k in r["targets"]:
                got[k] = p["agreement"][k]
    higher = ("peers_ratio", "ratio_to_limit", "ratio_to_cpu_bound", "faces_ratio_to_tiles",
              "hashlist_ratio_to_hashing_off")
    lines.append("targets  " + ", ".join(
        f"{k} {v:.2f} {'>=' if k in higher else '<='} {r['targets'][k]:g} "
        + ("ok" if (v >= r["targets"][k] if k in higher else v <= r["targets"][k]) else "MISSED")
        for k, v in got.items() if v is not None))
    return "\n".join(lines + [f"note: {n}" for n in r["notes"]])

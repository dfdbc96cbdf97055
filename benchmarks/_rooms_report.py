"""The rooms benchmark's table: per room size and topology, medians over rounds, p50 over timed joins."""

from __future__ import annotations

from statistics import median
from typing import Any


def p50(values: list[float]) -> float | None:
    return round(median(values), 1) if values else None


def summarise(result: dict[str, Any]) -> list[dict[str, Any]]:
    groups: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for r in result["rooms"]:
        groups.setdefault((r["members"], r["topology"]), []).append(r)
    rows = []
    for (n, topo), rooms in sorted(groups.items()):
        ok = [r for r in rooms if "window" in r]
        joins = [j for r in rooms for j in r.get("joins", [])]
        windows = [r["window"] for r in ok]
        sfu = topo == "sfu"
        layers = windows[-1]["layers"][0] if windows else []
        row: dict[str, Any] = {
            "members": n, "topology": topo, "rooms": len(rooms), "errors": [r["error"] for r in rooms if "error" in r],
            "joins": len(joins),
            "unsettled": sum(len(r.get("unsettled", [])) for r in rooms),
            "joins_missing": sum(1 for j in joins if j["newcomer_ms"] is None),
            "join_p50_ms": p50([j["newcomer_ms"] for j in joins if j["newcomer_ms"] is not None]),
            "join_max_ms": max((j["newcomer_ms"] for j in joins if j["newcomer_ms"] is not None), default=None),
            "room_join_p50_ms": p50([j["room_ms"] for j in joins if j["room_ms"] is not None]),
            "join_topologies": sorted({j["topology"] for j in joins}),
            "join_moves_to_sfu": any(j.get("moves_to_sfu") for j in joins),
            "uplink_kbps": p50([w["uplink_kbps_mean"] for w in windows]),
            "uplink_video_kbps": p50([sum(w["uplink_video_kbps"]) / n for w in windows]),
            "uplink_kbps_range": [min((min(w["uplink_kbps"]) for w in windows), default=None),
                                  max((max(w["uplink_kbps"]) for w in windows), default=None)],
            "renderer_cpu_pct_per_member": p50([w["renderer_cpu_pct_per_member"] for w in windows]),
            "chromium_cpu_pct_per_member": p50([w["chromium_cpu_pct_per_member"] for w in windows]),
            "janus_cpu_pct": p50([w["cpu_pct"]["janus"] for w in windows]) if sfu else None,
            "janus_cpu_pct_per_stream": p50([w["janus_cpu_pct_per_stream"] for w in windows]) if sfu else None,
            "janus_cpu_pct_per_mbps": p50([w.get("janus_cpu_pct_per_mbps") or 0.0 for w in windows]) if sfu else None,
            "downlink_kbps": p50([sum(w["downlink_kbps"]) / n for w in windows if "downlink_kbps" in w]),
            "server_cpu_pct": p50([w["cpu_pct"]["server"] for w in windows]),
            "received_fps_per_stream": p50([sum(w["received_fps_per_stream"]) / n for w in windows]),
            "received_widths": sorted({x for w in windows for x in w["received_widths"]}),
            "sent_layers": [f"{lay['rid'] or 'link'} {lay['width']}px {lay['kbps']:.0f} kbps" for lay in layers],
            "camera": windows[-1]["camera"] if windows else None,
            "quality_limited": sorted({q for w in windows for q in w["quality_limited"]}),
            "busy_cpus_max": max((w["load"]["busy_cpus"] for w in windows), default=None),
            "foreign_cpus_max": max((w["load"]["foreign_cpus"] for w in windows), default=None),
            "foreign": sorted({f for w in windows for f in w["foreign"]}),
        }  # fmt: skip
        rows.append(row)
    return rows


def cell(value: Any, fmt: str = "{}") -> str:
    return "-" if value is None else fmt.format(value)


def table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| members | topology | uplink kbps per member (video) | renderer CPU % per member | all Chromium CPU % "
        "per member | join → all frames p50 ms (max) | whole room p50 ms | joins | Janus CPU % (per stream) "
        "| received fps per stream, width px | busy CPUs (foreign) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        janus = "-" if r["janus_cpu_pct"] is None else f"{r['janus_cpu_pct']} ({r['janus_cpu_pct_per_stream']})"
        missing = f", {r['joins_missing']} without all frames" if r["joins_missing"] else ""
        errors = f", {len(r['errors'])} failed" if r["errors"] else ""
        errors += f", {r['unsettled']} not settled in time" if r.get("unsettled") else ""
        out.append(
            f"| {r['members']} | {r['topology']}{' (move)' if r['join_moves_to_sfu'] else ''} "
            f"| {cell(r['uplink_kbps'], '{:.0f}')} "
            f"({cell(r['uplink_video_kbps'], '{:.0f}')}) | {cell(r['renderer_cpu_pct_per_member'])} "
            f"| {cell(r['chromium_cpu_pct_per_member'])} | {cell(r['join_p50_ms'], '{:.0f}')} "
            f"({cell(r['join_max_ms'], '{:.0f}')}) | {cell(r['room_join_p50_ms'], '{:.0f}')} "
            f"| {r['joins']}{missing}{errors} | {janus} | {cell(r['received_fps_per_stream'])}, "
            f"{'/'.join(str(w) for w in r['received_widths']) or '-'} "
            f"| {cell(r['busy_cpus_max'])} ({cell(r['foreign_cpus_max'])}) |"
        )
    out += [
        "",
        "| members | topology | camera | what one member sends per video stream (last round) | limited by "
        "| downlink kbps per member | Janus CPU % per Mbps in+out | signaling server CPU % |",
        "|---:|---|---|---|---|---:|---:|---:|",
    ]
    for r in rows:
        cam = r["camera"] or {}
        camera = f"{cam.get('width')}x{cam.get('height')} @ {cam.get('fps')} fps" if cam else "-"
        out.append(
            f"| {r['members']} | {r['topology']} | {camera} | {'; '.join(r['sent_layers']) or '-'} "
            f"| {', '.join(r['quality_limited']) or 'none'} | {cell(r['downlink_kbps'], '{:.0f}')} "
            f"| {cell(r['janus_cpu_pct_per_mbps'])} | {cell(r['server_cpu_pct'])} |"
        )
    return "\n".join(out)

"""benchmarks/rooms.py runs end to end at a tiny size, so it cannot rot unnoticed.

A two-member mesh and a three-member room on a real Janus (the join that moves it to the
SFU), one round, one timed join each, one-second windows: every room must have its figures.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nbcall._testing.chromium import CHROMIUM
from nbcall.sfu import janus_binary

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ROOT / "nbcall" / "static" / "widget.js"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.janus,
    pytest.mark.slow,
    pytest.mark.skipif(janus_binary() is None, reason="janus is not installed (./dev setup installs it)"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}"),
    pytest.mark.skipif(not BUNDLE.exists(), reason="the widget bundle is not built (npm run build)"),
]


def test_the_rooms_benchmark_measures_a_mesh_and_an_sfu_room(tmp_path: Path) -> None:
    out = tmp_path / "rooms.json"
    cmd = [sys.executable, "-m", "benchmarks.rooms", "--rooms", "mesh:2,sfu:3", "--rounds", "1", "--joins", "1",
           "--warmup", "0.5", "--window", "1", "--settle", "0.3", "--no-warmup-rooms", "--json", str(out)]  # fmt: skip
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    rooms = {(r["topology"], r["members"]): r for r in result["rooms"]}
    assert sorted(rooms) == [("mesh", 2), ("sfu", 3)], rooms.keys()
    for (topology, n), r in rooms.items():
        assert "error" not in r, r
        (join,) = r["joins"]
        assert join["newcomer_ms"] is not None and 0 < join["newcomer_ms"] < 20_000, join
        assert join["room_ms"] is not None and join["room_ms"] >= join["newcomer_ms"], join
        w = r["window"]
        assert w["topology"] == [topology], w["topology"]
        assert len(w["uplink_kbps"]) == n and min(w["uplink_kbps"]) > 0, w["uplink_kbps"]
        assert w["cpu_pct"]["renderers"] > 0 and w["cpu_pct"]["chromium"] >= w["cpu_pct"]["renderers"], w["cpu_pct"]
        assert min(w["received_fps_per_stream"]) > 0, w["received_fps_per_stream"]
        assert w["camera"]["width"] == 320, w["camera"]
    sfu = rooms[("sfu", 3)]
    assert sfu["joins"][0]["moves_to_sfu"] and sfu["window"]["cpu_pct"]["janus"] > 0, sfu
    assert {lay["rid"] for lay in sfu["window"]["layers"][0]} == {"h", "m", "l"}, sfu["window"]["layers"]
    assert rooms[("mesh", 2)]["window"]["janus_cpu_pct_per_stream"] is None
    # The saved run's table again (what benchmarks/README.md shows).
    table = subprocess.run([sys.executable, "-m", "benchmarks.rooms", "--summarise", str(out)], cwd=ROOT,
                           capture_output=True, text=True, timeout=60, check=True).stdout  # fmt: skip
    assert "| 2 | mesh |" in table and "| 3 | sfu (move) |" in table, table

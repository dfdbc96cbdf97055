"""Credentials minted by nbcall.ice.turn_credentials against a real coturn server."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser

from nbcall.ice import turn_credentials

pytestmark = pytest.mark.asyncio(loop_scope="session")

# Two peer connections in one page, relay-only, with a canvas as the camera: the call goes
# through the TURN server or not at all.  Resolves with what a person would want to know.
RELAY_CALL = """
async ([iceServers, seconds]) => {
  const config = {iceServers, iceTransportPolicy: "relay"};
  const a = new RTCPeerConnection(config), b = new RTCPeerConnection(config);
  const errors = [];
  for (const pc of [a, b]) pc.onicecandidateerror = (e) => errors.push(e.errorCode);
  a.onicecandidate = (e) => e.candidate && b.addIceCandidate(e.candidate);
  b.onicecandidate = (e) => e.candidate && a.addIceCandidate(e.candidate);
  const canvas = Object.assign(document.createElement("canvas"), {width: 320, height: 240});
  const ctx = canvas.getContext("2d");
  const paint = setInterval(() => {
    ctx.fillStyle = `hsl(${Date.now() % 360},80%,50%)`;
    ctx.fillRect(0, 0, 320, 240);
  }, 40);
  canvas.captureStream(25).getTracks().forEach((t) => a.addTrack(t));
  await a.setLocalDescription(); await b.setRemoteDescription(a.localDescription);
  await b.setLocalDescription(); await a.setRemoteDescription(b.localDescription);
  const deadline = Date.now() + seconds * 1000;
  let frames = 0, pair = null;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    const stats = await b.getStats();
    stats.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") frames = s.framesDecoded || 0;
      if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") {
        const local = stats.get(s.localCandidateId), remote = stats.get(s.remoteCandidateId);
        pair = [local && local.candidateType, remote && remote.candidateType];
      }
    });
    if (frames > 10 && pair) break;
  }
  clearInterval(paint); a.close(); b.close();
  return {frames, pair, errors, state: b.iceConnectionState};
}
"""


async def relay_call(browser: Browser, page_url: str, ice: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    page = await browser.new_page()
    try:
        await page.goto(page_url)
        result: dict[str, Any] = await page.evaluate(RELAY_CALL, [ice, seconds])
        return result
    finally:
        await page.close()


async def test_minted_credentials_relay_media_through_coturn(
    browser: Browser, seed_page_url: str, coturn: dict[str, Any]
) -> None:
    ice = [turn_credentials(str(coturn["secret"]), str(coturn["url"]), user="alice", ttl=300)]
    result = await relay_call(browser, seed_page_url, ice, seconds=15)
    assert result["pair"] == ["relay", "relay"], result
    assert result["frames"] > 10, result


async def test_wrong_or_expired_credentials_are_refused_by_coturn(
    browser: Browser, seed_page_url: str, coturn: dict[str, Any]
) -> None:
    wrong = [turn_credentials("not-the-secret", str(coturn["url"]), ttl=300)]
    expired = [turn_credentials(str(coturn["secret"]), str(coturn["url"]), ttl=1, now=1_000_000_000)]
    for ice in (wrong, expired):
        result = await relay_call(browser, seed_page_url, ice, seconds=4)
        assert result["frames"] == 0 and result["pair"] is None, result
        assert 401 in result["errors"], result  # TURN's "Unauthorized": what the widget turns into words

// The simulcast encodings the SFU publisher offers (js/room/sfu_feeds.js): smallest layer
// first with rid order "lmh" for Janus, each layer's own bitrate cap and size.  Why smallest
// first (Chrome's per-layer encoders let the smallest layer overshoot its cap ~6x when the
// layers are listed largest first): tests/e2e/test_sfu_bitrates.py measures it.

import { test } from "node:test";
import assert from "node:assert/strict";
import { simulcastEncodings, RID_ORDER } from "../room/sfu_feeds.js";

test("the layers go smallest first, and Janus is told so", () => {
  const encodings = simulcastEncodings({ width: 320, height: 180 });
  assert.deepEqual(encodings.map((e) => e.rid), ["l", "m", "h"]);
  assert.equal(RID_ORDER, encodings.map((e) => e.rid).join(""), "rid_order names the rids in the order offered");
  const scales = encodings.map((e) => /** @type {number} */ (e.scaleResolutionDownBy));
  assert.deepEqual(scales, [4, 2, 1]);
  assert.deepEqual(scales, [...scales].sort((a, b) => b - a), "each layer at least as big as the one before");
});

test("each layer has its own cap, rising with its size: 100, 300 and 900 kbps", () => {
  const encodings = simulcastEncodings({ width: 640, height: 360 });
  assert.deepEqual(encodings.map((e) => e.maxBitrate), [100_000, 300_000, 900_000]);
  assert.ok(encodings.every((e) => e.active === true));
  assert.ok(encodings.every((e) => !("maxFramerate" in e)), "every layer at the camera's frame rate");
});

test("sizes are explicit when the camera's size is known, in the same order as the rids", () => {
  const sized = (/** @type {{width?: number, height?: number}} */ size) =>
    simulcastEncodings(size).map((e) => /** @type {any} */ (e).scaleResolutionDownTo);
  assert.deepEqual(sized({ width: 320, height: 180 }), [
    { maxWidth: 80, maxHeight: 45 },
    { maxWidth: 160, maxHeight: 90 },
    { maxWidth: 320, maxHeight: 180 },
  ]);
  assert.deepEqual(sized({ width: 640, height: 360 })[0], { maxWidth: 160, maxHeight: 90 });
  assert.deepEqual(sized({ width: 2, height: 1 })[0], { maxWidth: 1, maxHeight: 1 }, "never 0 pixels");
  assert.deepEqual(sized({}), [undefined, undefined, undefined], "unknown size: the scale factors alone");
  assert.deepEqual(sized({ width: 320 }), [undefined, undefined, undefined]);
});

test("each call builds fresh objects (janus.js and setParameters may keep or change them)", () => {
  const a = simulcastEncodings({ width: 320, height: 180 });
  const b = simulcastEncodings({ width: 320, height: 180 });
  assert.notEqual(a[0], b[0]);
  a[0].maxBitrate = 1;
  /** @type {any} */ (a[1]).scaleResolutionDownTo.maxWidth = 1;
  assert.equal(b[0].maxBitrate, 100_000);
  assert.equal(/** @type {any} */ (simulcastEncodings({ width: 320, height: 180 })[1]).scaleResolutionDownTo.maxWidth, 160);
});

// The room's grid in one view: a tile per member (video, name, mute and camera badges, the
// active speaker outlined, quality on hover), ours first; who is ringing; the invitation
// bar; and the room controls (join box, leave).  Views only display the phone's RoomClient
// and call its actions, like the rest of js/ui/.

import { TO_PAGE_KIND } from "../messages.js";
import { h, button, playVideo } from "./dom.js";

/** @typedef {import("../registry.js").ModelContext} ModelContext */
/** @typedef {{name: string, key: string, state: string, audio: boolean, video: boolean, speaking: boolean, quality: string}} Participant */

/** Columns for `count` tiles: 1, 2, 2x2, 3x2, 3x3, 4x4 ... (as square as the count allows). @param {number} count */
export function gridColumns(count) {
  return Math.max(1, Math.ceil(Math.sqrt(Math.max(1, count))));
}

/** What hovering a tile says about its member. @param {Participant} p */
export function tileTitle(p) {
  const parts = [p.name, p.state];
  if (p.quality) parts.push(`quality ${p.quality}`);
  if (!p.audio) parts.push("muted");
  if (!p.video) parts.push("camera off");
  return parts.join(" · ");
}

/**
 * One tile: its video keeps playing across updates (only the stream it shows is swapped).
 * @param {string} key
 * @param {boolean} local
 */
function makeTile(key, local) {
  const tile = h("div", "nbcall-tile");
  tile.dataset.key = key;
  const video = h("video", "nbcall-tile-video");
  video.autoplay = true;
  video.playsInline = true;
  video.muted = local; // never play our own microphone back
  const label = h("div", "nbcall-tile-label");
  const name = h("span", "nbcall-tile-name");
  const mutedBadge = h("span", "nbcall-badge nbcall-badge-muted", "muted");
  const cameraBadge = h("span", "nbcall-badge nbcall-badge-camera", "camera off");
  label.append(name, mutedBadge, cameraBadge);
  tile.append(video, label);
  return { tile, video, name, mutedBadge, cameraBadge, shown: /** @type {MediaStream | null} */ (null) };
}

/** @typedef {ReturnType<typeof makeTile>} Tile */

/**
 * @param {{context: ModelContext, audible: () => boolean}} args  audible: this view plays the room's sound
 * @returns {{el: HTMLElement, update: () => void, destroy: () => void}}
 */
export function renderGrid({ context, audible }) {
  const { phone, act } = context;
  const room = phone.room;
  const el = h("div", "nbcall-room");
  const title = h("div", "nbcall-room-title");
  const grid = h("div", "nbcall-grid");
  // Everyone but us, ringing invitees included: who is here, who is still being called.
  const people = h("ul", "nbcall-room-people");
  const leaveBtn = button("Leave", "nbcall-leave", () => act(TO_PAGE_KIND.LEAVE, room.leave()));
  el.append(title, grid, people, leaveBtn);

  /** @type {Map<string, Tile>} */
  const tiles = new Map();
  // Each tile's size decides the SFU layer it asks for (small tile, small layer).
  const sizes = new ResizeObserver((entries) => {
    for (const entry of entries) {
      const key = /** @type {HTMLElement} */ (entry.target).dataset.key || "";
      const { width, height } = entry.contentRect;
      if (key && key !== phone.key && typeof room.setTileSize === "function") room.setTileSize(key, width, height);
    }
  });

  /** @param {Tile} tile @param {MediaStream | null} stream */
  const show = (tile, stream) => {
    if (tile.shown === stream) return;
    tile.shown = stream;
    tile.video.srcObject = stream;
    if (stream) playVideo(tile.video, null);
  };

  const update = () => {
    el.hidden = !room.name;
    if (!room.name) {
      for (const tile of tiles.values()) tile.video.srcObject = null;
      tiles.forEach((tile) => sizes.unobserve(tile.tile));
      tiles.clear();
      grid.replaceChildren();
      return;
    }
    /** @type {Participant[]} */
    const everyone = room.participants();
    const present = everyone.filter((p) => p.state !== "ringing");
    title.textContent = `Room ${room.name} · ${present.length + 1} in the room · ${room.topology}`;
    el.dataset.topology = room.topology;
    const wanted = [phone.key || "me", ...present.map((p) => p.key)];
    for (const [key, tile] of tiles) {
      if (!wanted.includes(key)) {
        sizes.unobserve(tile.tile);
        tile.video.srcObject = null;
        tiles.delete(key);
      }
    }
    const mine = tiles.get(wanted[0]) || makeTile(wanted[0], true);
    tiles.set(wanted[0], mine);
    mine.name.textContent = `${phone.user} (you)`;
    mine.tile.classList.add("nbcall-tile-local");
    show(mine, room.localStream);
    for (const p of present) {
      let tile = tiles.get(p.key);
      if (!tile) {
        tile = makeTile(p.key, false);
        tiles.set(p.key, tile);
        sizes.observe(tile.tile);
      }
      tile.tile.dataset.name = p.name;
      tile.tile.dataset.state = p.state;
      tile.tile.title = tileTitle(p);
      tile.tile.classList.toggle("nbcall-speaking", !!p.speaking);
      tile.name.textContent = p.name;
      tile.mutedBadge.hidden = p.audio;
      tile.cameraBadge.hidden = p.video;
      tile.video.muted = !audible();
      show(tile, room.stream(p.key) || null);
    }
    grid.style.gridTemplateColumns = `repeat(${gridColumns(wanted.length)}, minmax(0, 1fr))`;
    grid.replaceChildren(...wanted.map((key) => /** @type {Tile} */ (tiles.get(key)).tile));
    const signature = JSON.stringify(everyone.map((p) => [p.name, p.state, p.audio, p.video]));
    if (people.dataset.signature !== signature) {
      people.dataset.signature = signature;
      people.replaceChildren(
        ...everyone.map((p) => {
          const item = h("li", "nbcall-room-person", `${p.name} — ${p.state === "ringing" ? "ringing…" : p.state}`);
          item.dataset.name = p.name;
          item.dataset.state = p.state;
          item.title = tileTitle(p);
          return item;
        }),
      );
    }
  };

  const off = room.events.on("change", update);
  update();
  return {
    el,
    update,
    destroy: () => {
      off();
      sizes.disconnect();
      for (const tile of tiles.values()) tile.video.srcObject = null;
      el.remove();
    },
  };
}

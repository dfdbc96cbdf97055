// Small DOM helpers of the views.

/**
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {string} [className]
 * @param {string} [text]
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

/**
 * @param {string} label
 * @param {string} className  added to nbcall-button
 * @param {(event: MouseEvent) => void} onClick
 */
export function button(label, className, onClick) {
  const b = h("button", `nbcall-button ${className}`, label);
  b.type = "button";
  b.addEventListener("click", onClick);
  return b;
}

/**
 * Play a <video>; when autoplay with sound is refused (no user gesture yet), play it muted
 * and show `unmuteButton`.
 * @param {HTMLVideoElement} video
 * @param {HTMLElement | null} unmuteButton
 */
export function playVideo(video, unmuteButton) {
  video.play().catch((err) => {
    if (err && err.name === "NotAllowedError" && !video.muted) {
      video.muted = true;
      if (unmuteButton) unmuteButton.hidden = false;
      video.play().catch(() => {});
    }
  });
}

// The player beside the transcript: the sent audio from a blob URL; the word or segment being heard
// is highlighted, and a click (or Enter) on one seeks the player there and plays.

// Times are compared with this slack, so a seek to a cue's start shows that cue, not the one before.
const SLACK_S = 0.001;

/** One stretch of the transcript that knows its time: a word, a segment or a segment's table row. */
export function markCue(element, start, end) {
  element.classList.add("cue");
  element.dataset.start = String(start);
  element.dataset.end = String(end);
  element.tabIndex = -1;
  element.setAttribute("role", "button");
  return element;
}

const NEXT_KEYS = new Set(["ArrowRight", "ArrowDown"]);
const PREVIOUS_KEYS = new Set(["ArrowLeft", "ArrowUp"]);

/**
 * The <audio> element and the cue lists that follow it. Each watched container holds one list;
 * the list is one tab stop (a roving tabindex): arrows move along it, Enter or Space plays from there.
 */
export class Player {
  constructor(audio) {
    this.audio = audio;
    this.url = null;
    this.lists = new Map(); // container -> {cues: [{element, start, end}], current, scroller}
    this.frame = 0;
    const show = () => this.highlight(this.audio.currentTime);
    for (const type of ["timeupdate", "seeking", "seeked", "loadedmetadata", "emptied"]) {
      audio.addEventListener(type, show);
    }
    audio.addEventListener("play", () => this.track());
  }

  /** Play `blob` (the uploaded file or the recording); the previous blob URL is released. */
  load(blob) {
    this.unload();
    this.url = URL.createObjectURL(blob);
    this.audio.src = this.url;
    this.audio.hidden = false;
  }

  unload() {
    this.audio.pause();
    this.audio.removeAttribute("src");
    this.audio.load();
    this.audio.hidden = true;
    if (this.url) URL.revokeObjectURL(this.url);
    this.url = null;
  }

  /** Clicks and keys on `container`'s cues; while playing, `scroller` (a scroll box) keeps the heard one in view. */
  watch(container, { scroller = null } = {}) {
    this.lists.set(container, { cues: [], current: -1, scroller });
    container.addEventListener("click", (event) => {
      const element = event.target.closest(".cue");
      if (element && container.contains(element)) this.playFrom(container, element);
    });
    container.addEventListener("keydown", (event) => this.key(container, event));
  }

  /** The cues now in `container`, in time order (the caller built them with markCue). */
  setCues(container, elements) {
    const list = this.lists.get(container);
    list.cues = elements.map((element) => ({
      element,
      start: Number(element.dataset.start),
      end: Number(element.dataset.end),
    }));
    list.current = -1;
    if (list.cues.length) list.cues[0].element.tabIndex = 0;
    this.highlight(this.audio.currentTime);
  }

  playFrom(container, element) {
    this.focusCue(container, element, false);
    if (!this.url) return;
    this.audio.currentTime = Number(element.dataset.start);
    this.highlight(this.audio.currentTime);
    this.audio.play().catch(() => {
      /* the browser refused to play (no gesture, or no audio output): the seek still holds */
    });
  }

  key(container, event) {
    const element = event.target.closest(".cue");
    if (!element || !container.contains(element)) return;
    const { cues } = this.lists.get(container);
    const at = cues.findIndex((c) => c.element === element);
    let to = -1;
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      this.playFrom(container, element);
      return;
    }
    if (NEXT_KEYS.has(event.key)) to = Math.min(cues.length - 1, at + 1);
    else if (PREVIOUS_KEYS.has(event.key)) to = Math.max(0, at - 1);
    else if (event.key === "Home") to = 0;
    else if (event.key === "End") to = cues.length - 1;
    if (to < 0) return;
    event.preventDefault();
    this.focusCue(container, cues[to].element, true);
  }

  /** Move the list's one tab stop to `element`, and focus it when asked. */
  focusCue(container, element, focus) {
    for (const cue of this.lists.get(container).cues) cue.element.tabIndex = cue.element === element ? 0 : -1;
    if (focus) element.focus();
  }

  /** Mark, in every list, the cue whose [start, end) holds `time`; none in a gap. */
  highlight(time) {
    const t = Number(time) + SLACK_S;
    for (const list of this.lists.values()) {
      const index = this.url ? find(list.cues, t) : -1;
      if (index === list.current) continue;
      if (list.current >= 0 && list.cues[list.current]) {
        const old = list.cues[list.current].element;
        old.classList.remove("current");
        old.removeAttribute("aria-current");
      }
      list.current = index;
      if (index < 0) continue;
      const element = list.cues[index].element;
      element.classList.add("current");
      element.setAttribute("aria-current", "time");
      if (list.scroller && !this.audio.paused) reveal(list.scroller, element);
    }
  }

  /** timeupdate comes four times a second, too seldom for words: follow every frame while playing. */
  track() {
    cancelAnimationFrame(this.frame);
    const step = () => {
      this.highlight(this.audio.currentTime);
      if (!this.audio.paused && !this.audio.ended) this.frame = requestAnimationFrame(step);
    };
    this.frame = requestAnimationFrame(step);
  }
}

/** Scroll `box` (only: never the page under the reader) so that `element` shows, a third down. */
function reveal(box, element) {
  const outer = box.getBoundingClientRect();
  const inner = element.getBoundingClientRect();
  if (inner.top < outer.top || inner.bottom > outer.bottom) {
    box.scrollTop += inner.top - outer.top - box.clientHeight / 3;
  }
}

/** The index of the last cue starting at or before `t`, if `t` is before its end; else -1. */
function find(cues, t) {
  let low = 0;
  let high = cues.length - 1;
  let found = -1;
  while (low <= high) {
    const middle = (low + high) >> 1;
    if (cues[middle].start <= t) {
      found = middle;
      low = middle + 1;
    } else high = middle - 1;
  }
  return found >= 0 && t < cues[found].end + SLACK_S ? found : -1;
}

// The transcript of an answer with times: words or segments as cues for the player, and speakers,
// each with its colour (in order of first appearance, .speaker-0 to .speaker-7 in style.css).
import { shortTime } from "./captions.js";
import { markCue } from "./player.js";

const SPEAKER_COLOURS = 8;

/** Each speaker's colour index, in order of first appearance (labels A, B, … or known names). */
export function speakerColours(segments) {
  const colours = new Map();
  for (const s of segments) {
    if (s.speaker && !colours.has(s.speaker)) colours.set(s.speaker, colours.size % SPEAKER_COLOURS);
  }
  return colours;
}

function speakerLabel(name, colour) {
  const label = document.createElement("span");
  label.className = `speaker-label speaker-${colour}`;
  label.textContent = name;
  return label;
}

function cueSpan(text, start, end) {
  const span = document.createElement("span");
  span.textContent = text;
  return markCue(span, start, end);
}

/** Spans for `items` ({text, start, end}) with a space between; returns [nodes, cues]. */
function spaced(items) {
  const nodes = [];
  const cues = [];
  items.forEach((item, i) => {
    if (i) nodes.push(document.createTextNode(" "));
    const span = cueSpan(item.text, item.start, item.end);
    nodes.push(span);
    cues.push(span);
  });
  return [nodes, cues];
}

/** One paragraph per speaker turn: the speaker's label, then its segments. */
function turns(segments, colours) {
  const paragraphs = [];
  const cues = [];
  let paragraph = null;
  let speaker = null;
  for (const s of segments) {
    if (!paragraph || s.speaker !== speaker) {
      speaker = s.speaker;
      paragraph = document.createElement("p");
      paragraph.className = `turn speaker-${colours.get(speaker) ?? 0}`;
      paragraph.dataset.speaker = speaker;
      paragraph.append(speakerLabel(speaker, colours.get(speaker) ?? 0), " ");
      paragraphs.push(paragraph);
    } else paragraph.append(" ");
    const span = cueSpan(s.text.trim(), s.start, s.end);
    paragraph.append(span);
    cues.push(span);
  }
  return [paragraphs, cues];
}

/**
 * The transcript's nodes and its cues: speaker turns when the segments have speakers, else the
 * words when the answer has them, else the segments.
 */
export function transcriptView(segments, words, colours) {
  const spoken = segments.filter((s) => String(s.text || "").trim());
  if (colours.size) return turns(spoken, colours);
  if (words.length) return spaced(words.map((w) => ({ text: w.word.trim(), start: w.start, end: w.end })));
  return spaced(spoken.map((s) => ({ text: s.text.trim(), start: s.start, end: s.end })));
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

/** The segment table's rows, each a cue; with a speaker column when the answer has speakers. */
export function segmentRows(segments, colours) {
  return segments.map((s, i) => {
    const tr = markCue(document.createElement("tr"), s.start, s.end);
    tr.append(cell(String(i + 1)), cell(shortTime(s.start), "time"), cell(shortTime(s.end), "time"));
    if (colours.size) {
      const colour = colours.get(s.speaker) ?? 0;
      tr.classList.add(`speaker-${colour}`);
      tr.dataset.speaker = s.speaker || "";
      const who = cell("", "speaker");
      if (s.speaker) who.append(speakerLabel(s.speaker, colour));
      tr.append(who);
    }
    tr.append(cell(s.text.trim()));
    return tr;
  });
}

/** The word table's rows, each a cue. */
export function wordRows(words) {
  return words.map((w) => {
    const tr = markCue(document.createElement("tr"), w.start, w.end);
    tr.append(cell(w.word.trim()), cell(shortTime(w.start), "time"), cell(shortTime(w.end), "time"));
    return tr;
  });
}

// Subtitles built in the browser from verbose_json or diarized_json segments: SRT, WebVTT and clock times.

export function clock(seconds, decimal = ".") {
  let millis = Math.max(0, Math.round(Number(seconds) * 1000));
  const hours = Math.floor(millis / 3_600_000);
  millis -= hours * 3_600_000;
  const minutes = Math.floor(millis / 60_000);
  millis -= minutes * 60_000;
  const secs = Math.floor(millis / 1000);
  millis -= secs * 1000;
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(hours)}:${pad(minutes)}:${pad(secs)}${decimal}${pad(millis, 3)}`;
}

/** A short time for tables: 3.25 -> "0:03.25". */
export function shortTime(seconds) {
  const s = Math.max(0, Number(seconds));
  const minutes = Math.floor(s / 60);
  return `${minutes}:${(s - minutes * 60).toFixed(2).padStart(5, "0")}`;
}

function cues(segments) {
  return (segments || []).filter((s) => String(s.text || "").trim());
}

/** SRT has no voice markup: a speaker's label leads the cue's text, as `A: text`. */
export function toSrt(segments) {
  return cues(segments)
    .map((s, i) => {
      const text = s.speaker ? `${s.speaker}: ${s.text.trim()}` : s.text.trim();
      return `${i + 1}\n${clock(s.start, ",")} --> ${clock(s.end, ",")}\n${text}\n`;
    })
    .join("\n");
}

// WebVTT cue text is markup: these three must be escaped, in the text and in a voice's name.
const VTT_ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;" };
const vttEscape = (text) => String(text).replace(/[&<>]/g, (c) => VTT_ESCAPES[c]);

/** WebVTT names the speaker with its voice tag: `<v A>text`. */
export function toVtt(segments) {
  const blocks = cues(segments).map((s) => {
    const text = vttEscape(s.text.trim());
    const voiced = s.speaker ? `<v ${vttEscape(s.speaker)}>${text}` : text;
    return `${clock(s.start)} --> ${clock(s.end)}\n${voiced}\n`;
  });
  return "WEBVTT\n\n" + blocks.join("\n");
}

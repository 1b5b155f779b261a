// Subtitles built in the browser from verbose_json segments: SRT, WebVTT and clock times.

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

export function toSrt(segments) {
  return cues(segments)
    .map((s, i) => `${i + 1}\n${clock(s.start, ",")} --> ${clock(s.end, ",")}\n${s.text.trim()}\n`)
    .join("\n");
}

export function toVtt(segments) {
  const blocks = cues(segments).map((s) => `${clock(s.start)} --> ${clock(s.end)}\n${s.text.trim()}\n`);
  return "WEBVTT\n\n" + blocks.join("\n");
}

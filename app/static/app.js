// The try-it page: settings, file uploads (streamed or with timestamps), the microphone, results.
import { toSrt, toVtt } from "./captions.js";
import { MicSession, RealtimeRefused } from "./mic.js";
import { Player } from "./player.js";
import { segmentRows, speakerColours, transcriptView, wordRows } from "./transcript.js";

const KEY_STORAGE = "speech-gateway.api-key";
const $ = (id) => document.getElementById(id);

const ui = {
  apiKey: $("api-key"),
  model: $("model"),
  language: $("language"),
  task: $("task"),
  format: $("response-format"),
  words: $("word-timestamps"),
  speakers: $("speakers"),
  file: $("file"),
  sendFile: $("send-file"),
  cancelFile: $("cancel-file"),
  micStart: $("mic-start"),
  micStop: $("mic-stop"),
  listening: $("listening"),
  status: $("status"),
  error: $("error"),
  busy: $("busy"),
  transcript: $("transcript"),
  audio: $("player"),
  playerHint: $("player-hint"),
  speakerHead: $("speaker-head"),
  formattedBox: $("formatted-box"),
  formattedName: $("formatted-name"),
  formatted: $("formatted"),
  copy: $("copy"),
  downloadTxt: $("download-txt"),
  downloadSrt: $("download-srt"),
  downloadVtt: $("download-vtt"),
  segmentsBox: $("segments-box"),
  segments: document.querySelector("#segments tbody"),
  wordsBox: $("words-box"),
  wordRows: document.querySelector("#words tbody"),
};

// What the result buttons act on: the text, the segments and words when known, the body as asked.
let result = { text: "", segments: [], words: [], formatted: "", format: "text" };
let upload = null; // AbortController of the request in flight
let mic = null;
const player = new Player(ui.audio);
player.watch(ui.transcript, { scroller: ui.transcript });
player.watch(ui.segments);
player.watch(ui.wordRows, { scroller: ui.wordsBox });

/* ---------- status and errors ---------- */

function setStatus(message) {
  ui.status.textContent = message;
}

let errorFrom = ""; // what showed the current error: "models", or "" for an action of the user

function showError(message, from = "") {
  ui.error.textContent = message;
  ui.error.hidden = !message;
  errorFrom = message ? from : "";
}

function setBusy(on) {
  ui.busy.hidden = !on;
  ui.transcript.setAttribute("aria-busy", on ? "true" : "false");
}

/** The OpenAI error envelope's message, or the body's text, or the status line. */
async function errorMessage(response) {
  let message = "";
  try {
    const text = await response.text();
    try {
      const body = JSON.parse(text);
      message = (body && body.error && body.error.message) || "";
    } catch {
      message = text.slice(0, 300);
    }
  } catch {
    /* the body is gone; the status says enough */
  }
  return explain(response.status, message, response.headers.get("Retry-After"));
}

function explain(status, message, retryAfter) {
  if (status === 401 || status === 403) {
    return `The server refused the API key (${status}): ${message || "unauthorized"} Enter a valid key in the API key field.`;
  }
  if (status === 429 || status === 503) {
    const wait = retryAfter ? ` Try again in ${retryAfter} s.` : " Try again shortly.";
    return `The server is busy (${status}).${wait}${message ? ` (${message})` : ""}`;
  }
  if (status === 413) return `The file is too large (413): ${message}`;
  if (status >= 400 && status < 500) return `The request was refused (${status}): ${message || "bad request"}`;
  return `The server failed (${status}): ${message || "internal error"}`;
}

function networkMessage(error) {
  return `Could not reach the server (${error && error.message ? error.message : "network error"}). Check that it is running and try again.`;
}

/* ---------- settings ---------- */

function apiKey() {
  return ui.apiKey.value.trim();
}

function headers() {
  const key = apiKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

let modelsAsked = 0;

async function loadModels() {
  // Only the newest answer counts: a slow answer to an older key must not overwrite it.
  const asked = ++modelsAsked;
  const stale = () => asked !== modelsAsked;
  let response;
  try {
    response = await fetch("/v1/models", { headers: headers() });
  } catch (error) {
    if (!stale()) showError(networkMessage(error), "models");
    return;
  }
  if (!response.ok) {
    const message = await errorMessage(response);
    if (!stale()) showError(message, "models");
    return;
  }
  const body = await response.json();
  if (stale()) return;
  const previous = ui.model.value;
  ui.model.replaceChildren(
    ...(body.data || []).map((card) => {
      const option = document.createElement("option");
      option.value = option.textContent = card.id;
      return option;
    }),
  );
  if (previous && [...ui.model.options].some((o) => o.value === previous)) ui.model.value = previous;
  ui.model.dataset.loaded = "true";
  if (errorFrom === "models") showError(""); // the list's own earlier failure, not a transcription's
}

/* ---------- results ---------- */

function clearResult() {
  result = { text: "", segments: [], words: [], formatted: "", format: ui.format.value };
  ui.transcript.replaceChildren();
  ui.segments.replaceChildren();
  ui.wordRows.replaceChildren();
  player.setCues(ui.transcript, []);
  player.setCues(ui.segments, []);
  player.setCues(ui.wordRows, []);
  ui.playerHint.hidden = true;
  ui.segmentsBox.hidden = ui.wordsBox.hidden = ui.formattedBox.hidden = true;
  updateButtons();
}

function updateButtons() {
  const hasText = Boolean(result.text.trim() || result.formatted.trim());
  const hasSegments = result.segments.some((s) => String(s.text || "").trim());
  ui.copy.disabled = ui.downloadTxt.disabled = !hasText;
  ui.downloadSrt.disabled = ui.downloadVtt.disabled = !hasSegments;
}

/** The transcript, segments and words of an answer with times, as cues for the player. */
function showTimed(segments, words) {
  const colours = speakerColours(segments);
  const [nodes, cues] = transcriptView(segments, words, colours);
  ui.transcript.replaceChildren(...nodes);
  player.setCues(ui.transcript, cues);
  const rows = segmentRows(segments, colours);
  ui.speakerHead.hidden = colours.size === 0;
  ui.segments.replaceChildren(...rows);
  player.setCues(ui.segments, rows);
  ui.segmentsBox.hidden = segments.length === 0;
  const wordCues = wordRows(words);
  ui.wordRows.replaceChildren(...wordCues);
  player.setCues(ui.wordRows, wordCues);
  ui.wordsBox.hidden = words.length === 0;
  ui.playerHint.hidden = cues.length === 0;
}

function showFormatted(format, body) {
  result.formatted = body;
  result.format = format;
  ui.formattedName.textContent = format;
  ui.formatted.textContent = body;
  ui.formattedBox.hidden = format === "text" || !body;
}

/** The body OpenAI would have sent for `format`, built from a verbose_json or diarized_json answer. */
function render(format, verbose) {
  switch (format) {
    case "json":
      return JSON.stringify({ text: verbose.text, usage: verbose.usage }, null, 2);
    case "verbose_json":
    case "diarized_json":
      return JSON.stringify(verbose, null, 2);
    case "srt":
      return toSrt(verbose.segments);
    case "vtt":
      return toVtt(verbose.segments);
    default:
      return verbose.text;
  }
}

/* ---------- files ---------- */

/** Speakers (diarized_json) are for transcriptions (a translation asking for them is the server's to refuse). */
function wantsSpeakers() {
  return ui.format.value === "diarized_json" || (ui.speakers.checked && ui.task.value !== "translate");
}

function wantsTimestamps() {
  return wantsSpeakers() || ui.words.checked || ["verbose_json", "srt", "vtt"].includes(ui.format.value);
}

function syncOptions() {
  if (wantsSpeakers()) ui.words.checked = false;
  ui.words.disabled = wantsSpeakers();
  ui.speakers.disabled = ui.task.value === "translate" || ui.words.checked;
}

function uploadForm() {
  const form = new FormData();
  form.append("file", ui.file.files[0]);
  form.append("model", ui.model.value);
  const language = ui.language.value.trim();
  if (language) form.append("language", language);
  return form;
}

/** The models list, loaded if it is not yet; false (its error shown) when there is none. */
async function haveModel() {
  if (!ui.model.value) await loadModels();
  return Boolean(ui.model.value);
}

async function sendFile() {
  if (!ui.file.files.length || !(await haveModel())) return;
  showError("");
  clearResult();
  const endpoint = ui.task.value === "translate" ? "/v1/audio/translations" : "/v1/audio/transcriptions";
  const format = ui.format.value;
  const detailed = wantsTimestamps();
  const form = uploadForm();
  if (wantsSpeakers()) {
    form.append("response_format", "diarized_json");
    form.append("chunking_strategy", "auto"); // OpenAI asks for it above 30 s
  } else if (detailed) {
    form.append("response_format", "verbose_json");
    form.append("timestamp_granularities[]", "segment");
    if (ui.words.checked) form.append("timestamp_granularities[]", "word");
  } else {
    form.append("response_format", "json");
    form.append("stream", "true");
  }
  player.load(ui.file.files[0]);
  upload = new AbortController();
  ui.sendFile.disabled = true;
  ui.cancelFile.disabled = false;
  setBusy(true);
  setStatus(detailed ? "Transcribing with timestamps…" : "Transcribing…");
  const started = performance.now();
  try {
    const response = await fetch(endpoint, { method: "POST", body: form, headers: headers(), signal: upload.signal });
    if (!response.ok) {
      showError(await errorMessage(response));
      setStatus("");
      return;
    }
    if (detailed) {
      const verbose = await response.json();
      result.text = verbose.text || "";
      result.segments = verbose.segments || [];
      result.words = verbose.words || [];
      showTimed(result.segments, result.words);
      showFormatted(format, render(format, verbose));
    } else {
      const done = await readStream(response);
      if (done) {
        result.text = done.text || "";
        ui.transcript.textContent = result.text.trim();
        showFormatted(format, format === "json" ? JSON.stringify({ text: done.text, usage: done.usage }, null, 2) : result.text);
      }
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    setStatus(`Done in ${seconds} s.`);
  } catch (error) {
    if (error.name === "AbortError") setStatus("Cancelled.");
    else {
      showError(networkMessage(error));
      setStatus("");
    }
  } finally {
    upload = null;
    setBusy(false);
    ui.cancelFile.disabled = true;
    ui.sendFile.disabled = !ui.file.files.length;
    updateButtons();
  }
}

/** Server-sent events through the body reader: deltas shown as they come; returns the done event. */
async function readStream(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let done = null;
  let text = "";
  const handle = (payload) => {
    let event;
    try {
      event = JSON.parse(payload);
    } catch {
      return;
    }
    if (event.error) {
      showError(explain(400, event.error.message));
      return;
    }
    if (event.type === "transcript.text.delta") {
      text += event.delta;
      ui.transcript.textContent = text.trimStart();
      result.text = text;
    } else if (event.type === "transcript.text.done") {
      done = event;
    }
  };
  for (;;) {
    const { value, done: finished } = await reader.read();
    if (value) buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, "");
      const data = block
        .split(/\r?\n/)
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).replace(/^ /, ""))
        .join("\n");
      if (data && data !== "[DONE]") handle(data);
    }
    if (finished) break;
  }
  return done;
}

/* ---------- microphone ---------- */

const LISTENING_TEXT = {
  off: "Microphone off",
  connecting: "Connecting…",
  on: "Listening",
  speech: "Speech detected",
  finishing: "Finishing the last turn…",
};

function setListening(state) {
  ui.listening.dataset.state = state;
  ui.listening.textContent = LISTENING_TEXT[state] || state;
}

function showItems(items) {
  ui.transcript.replaceChildren(
    ...items.map((item) => {
      const p = document.createElement("p");
      p.dataset.itemId = item.id;
      p.dataset.final = item.final ? "true" : "false";
      p.className = item.final ? "final" : "partial";
      p.textContent = item.text.trim() || "…";
      return p;
    }),
  );
  result.text = mic ? mic.text() : "";
  result.segments = [];
  result.words = [];
  updateButtons();
}

async function startMic() {
  if (mic || !(await haveModel())) return;
  showError("");
  clearResult();
  player.unload();
  ui.micStart.disabled = true;
  setListening("connecting");
  const session = new MicSession({
    model: ui.model.value,
    language: ui.language.value.trim(),
    apiKey: apiKey(),
    onItems: showItems,
    onListening: setListening,
    onError: (message, error) => showError(realtimeMessage(message, error)),
    onClosed: ({ code, reason, expected }) => {
      // An error event usually came first and says more than the close code.
      if (!expected && ui.error.hidden) {
        showError(`The realtime connection closed (${code}${reason ? `: ${reason}` : ""}).`);
      }
      finishMic();
    },
  });
  mic = session;
  try {
    await session.start();
    ui.micStop.disabled = false;
    setStatus("Recording. Speak, pause between sentences, then press Stop.");
  } catch (error) {
    mic = null;
    ui.micStart.disabled = false;
    setListening("off");
    setStatus("");
    // A refusal the server explained (an error event) stays; otherwise say what failed.
    if (ui.error.hidden) showError(await micFailure(error));
  }
}

function realtimeMessage(message, error) {
  const code = error && error.code;
  if (code === "invalid_api_key" || code === "missing_api_key") {
    return `The server refused the API key: ${message} Enter a valid key in the API key field.`;
  }
  if (error && error.type === "rate_limit_error") return `The server is busy: ${message}`;
  return `Realtime: ${message}`;
}

async function micFailure(error) {
  if (error instanceof RealtimeRefused) {
    // The browser hides why a WebSocket was refused; the models list tells a key error apart.
    try {
      const response = await fetch("/v1/models", { headers: headers() });
      if (!response.ok) return await errorMessage(response);
    } catch (fetchError) {
      return networkMessage(fetchError);
    }
    return `The realtime connection was refused${error.reason ? `: ${error.reason}` : ""}. The server may be busy or not offer /v1/realtime.`;
  }
  if (error && (error.name === "NotAllowedError" || error.name === "SecurityError")) {
    return "Microphone access was denied. Allow it in the browser to record.";
  }
  if (error && error.name === "NotFoundError") return "No microphone was found.";
  return `Could not start recording: ${error && error.message ? error.message : error}`;
}

async function stopMic() {
  if (!mic) return;
  ui.micStop.disabled = true;
  setStatus("Finishing…");
  await mic.stop();
  finishMic();
  setStatus("Recording stopped.");
}

function finishMic() {
  if (!mic) return;
  result.text = mic.text();
  const recording = mic.recording();
  if (recording) player.load(recording);
  mic = null;
  ui.micStart.disabled = false;
  ui.micStop.disabled = true;
  updateButtons();
}

/* ---------- copy and download ---------- */

function resultBody() {
  return result.format === "text" || !result.formatted ? result.text.trim() : result.formatted;
}

async function copyResult() {
  const text = resultBody();
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = document.createElement("textarea");
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  setStatus("Copied.");
}

function download(extension, body, type) {
  const url = URL.createObjectURL(new Blob([body], { type }));
  const link = document.createElement("a");
  link.href = url;
  link.download = `transcript.${extension}`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/* ---------- wiring ---------- */

ui.apiKey.value = localStorage.getItem(KEY_STORAGE) || "";
ui.apiKey.addEventListener("change", () => {
  const key = apiKey();
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
  loadModels();
});
ui.file.addEventListener("change", () => {
  ui.sendFile.disabled = !ui.file.files.length || Boolean(upload);
});
ui.sendFile.addEventListener("click", sendFile);
for (const control of [ui.task, ui.format, ui.words, ui.speakers]) control.addEventListener("change", syncOptions);
syncOptions();
ui.cancelFile.addEventListener("click", () => upload && upload.abort());
ui.micStart.addEventListener("click", startMic);
ui.micStop.addEventListener("click", stopMic);
ui.copy.addEventListener("click", copyResult);
ui.downloadTxt.addEventListener("click", () => download("txt", result.text.trim() + "\n", "text/plain"));
ui.downloadSrt.addEventListener("click", () => download("srt", toSrt(result.segments), "application/x-subrip"));
ui.downloadVtt.addEventListener("click", () => download("vtt", toVtt(result.segments), "text/vtt"));
document.getElementById("settings").addEventListener("submit", (event) => event.preventDefault());

loadModels();
document.body.dataset.ready = "true";

// The microphone: 24 kHz mono PCM16 to the Realtime WebSocket, transcripts back per item.

export const PCM_RATE = 24000;
const SEND_EVERY_MS = 100;
const FINISH_TIMEOUT_MS = 30000;
// The recording kept for the page's player: an hour of 24 kHz PCM16 is 173 MB; beyond that, none.
const KEEP_SECONDS = 3600;

/** Block-averaging resampler from the device's rate to 24 kHz, float32 in, PCM16 out; keeps state across blocks. */
export class Resampler {
  constructor(fromRate, toRate = PCM_RATE) {
    this.step = fromRate / toRate;
    this.phase = 0;
    this.sum = 0;
    this.count = 0;
    this.last = 0;
  }

  push(input) {
    const out = new Int16Array(Math.ceil(input.length / this.step) + 2);
    let n = 0;
    for (let i = 0; i < input.length; i++) {
      this.sum += input[i];
      this.count += 1;
      this.phase += 1;
      while (this.phase >= this.step) {
        this.phase -= this.step;
        if (this.count) {
          this.last = this.sum / this.count;
          this.sum = 0;
          this.count = 0;
        }
        const v = Math.max(-1, Math.min(1, this.last));
        out[n++] = v < 0 ? v * 0x8000 : v * 0x7fff;
      }
    }
    return out.subarray(0, n);
  }
}

export function base64OfPcm(chunks) {
  let total = 0;
  for (const c of chunks) total += c.length;
  const bytes = new Uint8Array(total * 2);
  const view = new DataView(bytes.buffer);
  let offset = 0;
  for (const c of chunks) {
    for (let i = 0; i < c.length; i++, offset += 2) view.setInt16(offset, c[i], true);
  }
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** The 44-byte header of a mono PCM16 WAV file of `samples` samples at 24 kHz. */
export function wavHeader(samples) {
  const view = new DataView(new ArrayBuffer(44));
  const text = (at, s) => [...s].forEach((c, i) => view.setUint8(at + i, c.charCodeAt(0)));
  text(0, "RIFF");
  view.setUint32(4, 36 + samples * 2, true);
  text(8, "WAVEfmt ");
  view.setUint32(16, 16, true); // the fmt chunk's size
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, 1, true); // mono
  view.setUint32(24, PCM_RATE, true);
  view.setUint32(28, PCM_RATE * 2, true); // bytes per second
  view.setUint16(32, 2, true); // bytes per frame
  view.setUint16(34, 16, true); // bits per sample
  text(36, "data");
  view.setUint32(40, samples * 2, true);
  return view.buffer;
}

export function realtimeUrl(location) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/v1/realtime?intent=transcription`;
}

/**
 * One recording: opens the socket, configures the session, streams audio, and collects
 * transcripts per item. Callbacks: onItems(items), onListening(state), onError(message, error), onClosed(info).
 */
export class MicSession {
  constructor({ model, language, apiKey, onItems, onListening, onError, onClosed }) {
    this.model = model;
    this.language = language;
    this.apiKey = apiKey;
    this.onItems = onItems || (() => {});
    this.onListening = onListening || (() => {});
    this.onError = onError || (() => {});
    this.onClosed = onClosed || (() => {});
    this.items = new Map(); // item_id -> {id, text, final}
    this.pending = new Set(); // committed items not yet completed
    this.turn = "idle"; // idle | speech | stopped (speech ended, commit not seen yet)
    this.awaitingCommit = false;
    this.stopping = false;
    this.chunks = [];
    this.kept = []; // every chunk sent, for recording()
    this.keptSamples = 0;
    this.waiters = [];
  }

  async start() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw new Error("This browser cannot record here (microphone access needs https or localhost).");
    }
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
    try {
      await this.connect();
      this.sendSessionUpdate();
      await this.startAudio();
    } catch (error) {
      this.releaseAudio();
      if (this.ws) this.ws.close();
      throw error;
    }
    this.timer = setInterval(() => this.flush(), SEND_EVERY_MS);
    this.onListening("on");
  }

  connect() {
    const protocols = ["realtime"];
    if (this.apiKey) protocols.push("openai-insecure-api-key." + this.apiKey);
    return new Promise((resolve, reject) => {
      let opened = false;
      const ws = new WebSocket(realtimeUrl(window.location), protocols);
      this.ws = ws;
      ws.onopen = () => {
        opened = true;
        resolve();
      };
      ws.onmessage = (event) => this.receive(event.data);
      ws.onerror = () => {
        if (!opened) reject(new RealtimeRefused());
      };
      ws.onclose = (event) => {
        if (!opened) {
          reject(new RealtimeRefused(event.reason));
          return;
        }
        this.closed = true;
        clearInterval(this.timer);
        this.releaseAudio();
        this.wake();
        this.onListening("off");
        this.onClosed({ code: event.code, reason: event.reason, expected: this.stopping });
      };
    });
  }

  send(event) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(event));
  }

  sendSessionUpdate() {
    const transcription = { model: this.model };
    if (this.language) transcription.language = this.language;
    this.send({
      type: "session.update",
      session: {
        type: "transcription",
        audio: {
          input: {
            format: { type: "audio/pcm", rate: PCM_RATE },
            transcription,
            turn_detection: { type: "server_vad", threshold: 0.5, prefix_padding_ms: 300, silence_duration_ms: 500 },
          },
        },
      },
    });
  }

  async startAudio() {
    const Context = window.AudioContext || window.webkitAudioContext;
    try {
      this.context = new Context({ sampleRate: PCM_RATE });
    } catch {
      this.context = new Context();
    }
    if (this.context.state === "suspended") await this.context.resume();
    const resampler = new Resampler(this.context.sampleRate, PCM_RATE);
    const take = (block) => {
      if (this.stopping) return;
      const pcm = resampler.push(block);
      this.chunks.push(pcm);
      this.keep(pcm);
    };
    this.source = this.context.createMediaStreamSource(this.stream);
    if (this.context.audioWorklet) {
      await this.context.audioWorklet.addModule("/static/pcm-worklet.js");
      this.node = new AudioWorkletNode(this.context, "pcm-tap", { numberOfInputs: 1, numberOfOutputs: 0 });
      this.node.port.onmessage = (event) => take(event.data);
      this.source.connect(this.node);
    } else {
      // Older browsers: ScriptProcessor, which must reach the destination to run (it outputs silence).
      this.node = this.context.createScriptProcessor(4096, 1, 1);
      this.node.onaudioprocess = (event) => take(event.inputBuffer.getChannelData(0));
      this.source.connect(this.node);
      this.node.connect(this.context.destination);
    }
  }

  keep(pcm) {
    this.keptSamples += pcm.length;
    if (this.keptSamples <= KEEP_SECONDS * PCM_RATE) this.kept.push(pcm);
    else this.kept = []; // too long to keep in the page
  }

  /** What was recorded, as a WAV file (24 kHz mono PCM16), or null when nothing (or too much) was. */
  recording() {
    if (!this.kept.length) return null;
    return new Blob([wavHeader(this.keptSamples), ...this.kept], { type: "audio/wav" });
  }

  flush() {
    if (!this.chunks.length) return;
    const chunks = this.chunks;
    this.chunks = [];
    this.send({ type: "input_audio_buffer.append", audio: base64OfPcm(chunks) });
  }

  receive(data) {
    let event;
    try {
      event = JSON.parse(data);
    } catch {
      return;
    }
    const id = event.item_id;
    switch (event.type) {
      case "input_audio_buffer.speech_started":
        this.turn = "speech";
        this.onListening("speech");
        break;
      case "input_audio_buffer.speech_stopped":
        this.turn = "stopped";
        this.onListening(this.stopping ? "off" : "on");
        break;
      case "input_audio_buffer.committed":
        this.turn = "idle";
        this.awaitingCommit = false;
        if (id) {
          this.item(id);
          this.pending.add(id);
        }
        break;
      case "conversation.item.input_audio_transcription.delta":
        if (id) {
          const item = this.item(id);
          if (!item.final) item.text += event.delta || "";
          this.pending.add(id);
          this.onItems(this.list());
        }
        break;
      case "conversation.item.input_audio_transcription.completed":
        if (id) {
          const item = this.item(id);
          item.text = event.transcript || "";
          item.final = true;
          this.pending.delete(id);
          this.onItems(this.list());
        }
        break;
      case "conversation.item.input_audio_transcription.failed":
        if (id) this.pending.delete(id);
        this.onError((event.error && event.error.message) || "The transcription of a turn failed.", event.error);
        break;
      case "error":
        if (this.stopping) this.awaitingCommit = false;
        this.onError((event.error && event.error.message) || "The server reported an error.", event.error);
        break;
      default:
        break;
    }
    this.wake();
  }

  item(id) {
    if (!this.items.has(id)) this.items.set(id, { id, text: "", final: false });
    return this.items.get(id);
  }

  list() {
    return [...this.items.values()];
  }

  text() {
    return this.list()
      .map((item) => item.text.trim())
      .filter(Boolean)
      .join("\n");
  }

  wake() {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  async waitUntil(done, timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    while (!done() && !this.closed && Date.now() < deadline) {
      await new Promise((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, Math.min(250, Math.max(0, deadline - Date.now())));
      });
    }
  }

  releaseAudio() {
    if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
    if (this.node) this.node.disconnect();
    if (this.source) this.source.disconnect();
    if (this.context && this.context.state !== "closed") this.context.close();
    this.stream = this.node = this.source = this.context = null;
  }

  /** Stop recording; commit the open turn, wait for every committed turn's transcript, close. */
  async stop() {
    if (this.stopping) return;
    clearInterval(this.timer);
    this.flush();
    this.stopping = true;
    this.releaseAudio();
    this.onListening("finishing");
    if (this.turn === "speech") {
      this.send({ type: "input_audio_buffer.commit" });
      this.awaitingCommit = true;
    } else if (this.turn === "stopped") {
      this.awaitingCommit = true; // the server commits the turn it just ended
    }
    await this.waitUntil(() => !this.awaitingCommit && this.pending.size === 0, FINISH_TIMEOUT_MS);
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000, "done");
    this.onListening("off");
  }
}

export class RealtimeRefused extends Error {
  constructor(reason) {
    super(reason || "The realtime connection was refused.");
    this.name = "RealtimeRefused";
    this.reason = reason || "";
  }
}

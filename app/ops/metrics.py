"""Prometheus metrics of one app: requests, audio processed, real-time factor, queue depths."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from models.stages import StageClock

RTF_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
STAGE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
PASS_COUNT_BUCKETS = (0, 1, 2, 3, 4, 6, 8, 12, 16, 32, 64, 128)
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


class Metrics:
    """Each app owns its registry, so several apps (tests) never clash."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        r = self.registry
        self.requests = Counter(
            "speech_gateway_requests", "HTTP requests by route and status", ["route", "status"], registry=r
        )
        self.latency = Histogram(
            "speech_gateway_request_duration_seconds",
            "HTTP request duration",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.audio_seconds = Counter(
            "speech_gateway_audio_seconds", "Seconds of audio transcribed or translated", ["task"], registry=r
        )
        self.rtf = Histogram(
            "speech_gateway_real_time_factor",
            "Processing seconds per second of audio (lower is faster)",
            ["task"],
            buckets=RTF_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge("speech_gateway_requests_in_flight", "Audio requests being processed", registry=r)
        self.waiting = Gauge("speech_gateway_requests_waiting", "Audio requests waiting for a slot", registry=r)
        self.realtime_sessions = Gauge(
            "speech_gateway_realtime_sessions", "Realtime WebSocket sessions open", registry=r
        )
        self.engine_requests = Gauge(
            "speech_gateway_engine_requests", "Engine requests not yet finished (the engine's queue)", registry=r
        )
        self.audio_in_flight = Gauge(
            "speech_gateway_audio_seconds_in_flight", "Seconds of audio admitted and not yet done", registry=r
        )
        self.audio_waiting = Gauge(
            "speech_gateway_audio_seconds_waiting", "Seconds of audio waiting for the audio budget", registry=r
        )

        self.shared_windows = Counter(
            "speech_gateway_shared_windows", "Engine windows shared by clips of several requests", registry=r
        )
        self.shared_pieces = Counter(
            "speech_gateway_shared_pieces",
            "Clips that rode in a shared window, by outcome (kept its segments, or read again, in halves or alone)",
            ["outcome"],
            registry=r,
        )

        self.stage_seconds = Histogram(
            "speech_gateway_stage_seconds",
            "Seconds of a request's wall time spent in each stage (overlaps given to one stage)",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.engine_pass_seconds = Histogram(
            "speech_gateway_engine_pass_seconds",
            "Duration of each engine pass, by kind (passes of one request overlap)",
            ["kind"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.engine_passes = Histogram(
            "speech_gateway_engine_passes_per_request",
            "Engine passes a request caused (shared windows count once per rider)",
            buckets=PASS_COUNT_BUCKETS,
            registry=r,
        )

    def observe_stages(self, clock: StageClock, exclusive: dict[str, float]) -> None:
        """A finished request's stages (`exclusive`: seconds per stage, from the clock); requests
        that reached no stage (health, metrics) are skipped."""
        if not clock.intervals:
            return
        for name, seconds in exclusive.items():
            self.stage_seconds.labels(name).observe(seconds)
        for kind, interval in clock.passes:
            self.engine_pass_seconds.labels(kind).observe(interval.seconds)
        self.engine_passes.observe(len(clock.passes))

    def observe_sharing(self, riders: int, read_again: int) -> None:
        self.shared_windows.inc()
        self.shared_pieces.labels("kept").inc(riders - read_again)
        self.shared_pieces.labels("read_again").inc(read_again)

    def observe_audio(self, task: str, audio_s: float, processing_s: float) -> None:
        self.audio_seconds.labels(task).inc(audio_s)
        if audio_s > 0:
            self.rtf.labels(task).observe(processing_s / audio_s)

    def watch(self, in_flight: Callable[[], float], waiting: Callable[[], float], engine: Callable[[], float]) -> None:
        """Gauges read live values when scraped."""
        self.in_flight.set_function(in_flight)
        self.waiting.set_function(waiting)
        self.engine_requests.set_function(engine)

    def watch_audio(self, in_flight: Callable[[], float], waiting: Callable[[], float]) -> None:
        """The audio budget's gauges, read live when scraped."""
        self.audio_in_flight.set_function(in_flight)
        self.audio_waiting.set_function(waiting)

    def render(self) -> bytes:
        return generate_latest(self.registry)

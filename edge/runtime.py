"""The edge at work: cameras -> tracks -> gait windows to the matcher, line crossings and
decisions to billing through the durable queue.

Vision runs on one thread per camera (OpenCV and ONNX Runtime release the GIL); the links
run on the asyncio loop. Nothing a camera sees waits for the network: events are written
to the queue first; while the matcher is unreachable windows are decided against the hot
cache of frequent customers (kept sealed on disk, refreshed while the link is up), and only
dropped (and counted) when there is no usable cache."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import cv2
import grpc
import numpy as np
import structlog
from google.protobuf import timestamp_pb2

from edge.adapters.billing_link import EventForwarder
from edge.adapters.event_queue import EventQueue
from edge.adapters.hot_cache import HotCacheKeeper
from edge.adapters.matcher_link import MatcherSession
from edge.adapters.video_buffer import VideoBuffer
from edge.domain.floor import FloorCalibration, ShopperFusion
from edge.domain.offline import CacheUnusable, OfflineIdentifier
from edge.domain.windows import CutWindow, WindowCutter, WindowSpec
from edge.domain.zones import Line, foot_point
from edge.vision.pose import LandmarkModel, PoseDetector
from edge.vision.tracker import PersonTracker, TrackerConfig
from gait.body import CameraModel, measure
from gait.walk import Walk
from gaitpay.billing.v1 import billing_pb2
from gaitpay.matcher.v1 import matcher_pb2
from matcher.domain.camera_state import held_back
from matcher.domain.identification import Decision, State
from matcher.domain.windows import MalformedWindow, TrackKey, Window
from mesh.client import open_channel
from mesh.config import Settings
from mesh.server import cancel_and_wait

log = structlog.get_logger("gaitpay.edge")

FINAL = (matcher_pb2.DECISION_STATE_IDENTIFIED, matcher_pb2.DECISION_STATE_STRANGER)


@dataclass(frozen=True)
class CameraConfig:
    camera_id: str
    source: str  # a video file, an rtsp:// or http:// stream, or a local camera index ("0")
    entry: Line | None = None
    exit: Line | None = None
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    realtime: bool = False  # pace a file at its own frame rate, as a live camera would
    # Where the camera looks on the floor plan; calibrated cameras see one shopper as one.
    floor: FloorCalibration | None = None
    # Named lines inside the store (an aisle's mouth): each crossing is a ZONE event.
    zones: tuple[Line, ...] = ()


@dataclass(frozen=True)
class BodyMeter:
    """Takes the body measures of a calibrated camera's windows (gait.body.measure), with the
    camera its floor calibration implies for frames of this size."""

    size: tuple[int, int]
    camera: CameraModel | None  # None: the calibration holds no camera, nothing is measured
    why_not: str = ""  # when camera is None

    @staticmethod
    def of(camera: CameraConfig, width: int, height: int) -> "BodyMeter":
        assert camera.floor is not None
        try:
            return BodyMeter((width, height), camera.floor.camera(width, height))
        except ValueError as exc:
            log.warning("edge.no_body_measures", camera=camera.camera_id, reason=str(exc))
            return BodyMeter((width, height), None, f"the floor calibration holds no camera: {exc}")

    def measured(self, window: CutWindow, fps: float) -> CutWindow:
        if self.camera is None:
            return window
        result = measure(Walk(window.keypoints[:, :17].astype(np.float32), fps), self.camera)
        return window if result is None else replace(window, body=result.values)


def open_source(source: str) -> cv2.VideoCapture:
    capture = cv2.VideoCapture(int(source)) if source.isdigit() else cv2.VideoCapture(source)
    if not capture.isOpened():
        raise ValueError(f"cannot open video source {source!r}: not a readable file, stream or camera index")
    return capture


@dataclass
class CameraReport:
    camera_id: str
    frames: int = 0
    seconds: float = 0.0
    tracks: int = 0
    windows: int = 0
    crossings: dict[str, int] = field(default_factory=dict)
    active_tracks: int = 0  # people in view at the last frame
    started: float = field(default_factory=time.perf_counter)
    stopped: str = ""  # why the camera stopped, once it has
    windows_with_body_measures: int = 0
    body_measures_off: str = ""  # why the camera takes none ("" when it does)

    @property
    def fps(self) -> float:
        seconds = self.seconds or time.perf_counter() - self.started  # live while it runs
        return self.frames / seconds if seconds else 0.0


@dataclass
class EdgeReport:
    cameras: list[CameraReport] = field(default_factory=list)
    events_queued: int = 0
    windows_sent: int = 0
    windows_identified_offline: int = 0  # decided against the hot cache, the matcher unreachable
    windows_dropped_offline: int = 0  # the matcher unreachable and no usable hot cache
    hot_cache_customers: int = 0
    tracks_merged_across_cameras: int = 0
    decisions: dict[str, str] = field(default_factory=dict)  # track id -> state (and customer)
    queue_depth: int = 0
    billing_link_failures: int = 0


def timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


class EdgeRuntime:
    def __init__(self, settings: Settings, cameras: list[CameraConfig], queue_path: Path, *,
                 billing_address: str | None = None, matcher_address: str | None = None,
                 window: WindowSpec | None = None, threads: int | None = None,
                 on_event: Callable[[str], None] | None = None, offline: bool = True,
                 hot_cache_refresh_s: float = 600.0, video: VideoBuffer | None = None) -> None:
        self.settings = settings
        self.cameras = cameras
        self.queue = EventQueue(queue_path)
        self.window = window or WindowSpec()
        self.run_id = uuid.uuid4().hex[:8]
        self.report = EdgeReport()
        self._billing_address = billing_address
        self._matcher_address = matcher_address
        self._threads = threads
        self._say = on_event or (lambda _line: None)
        self._decided: set[str] = set()
        # Offline identification: the hot cache lives beside the queue, in the edge's state.
        self._keeper = HotCacheKeeper(queue_path.parent, settings.store_id) if offline else None
        self._offline: OfflineIdentifier | None = None
        self._hot_cache_refresh_s = hot_cache_refresh_s
        self._fusion = ShopperFusion(prefix=self.run_id)
        self._t0 = time.time()
        self._video = video  # the dispute buffer, when the store keeps one
        self._sequences: dict[tuple[str, str], int] = {}  # (camera, shopper) -> next window sequence
        self._zone_crossings: dict[tuple[str, str], int] = {}  # (shopper, zone) -> crossings so far

    # -- events -----------------------------------------------------------------------------

    def _event(self, kind: int, camera_id: str, track_id: str, at: float, occurrence: str = "", **extra) -> None:
        tag = f"{self.settings.store_id}|{camera_id}|{track_id}|{kind}" + (f"|{occurrence}" if occurrence else "")
        event_id = hashlib.sha256(tag.encode()).hexdigest()[:32]  # the same observation -> the same id
        event = billing_pb2.StoreEvent(event_id=event_id, kind=kind, store_id=self.settings.store_id,
                                       camera_id=camera_id, track_id=track_id, occurred_at=timestamp(at), **extra)
        if self.queue.put(event):
            self.report.events_queued += 1
            self._say(f"{billing_pb2.StoreEventKind.Name(kind).removeprefix('STORE_EVENT_KIND_').lower()} "
                      f"{camera_id}/{track_id}" + (f" customer {extra['customer_id']}" if extra.get("customer_id") else ""))

    def _on_decision(self, decision: matcher_pb2.TrackDecision, offline: bool = False) -> None:
        track = decision.track.track_id
        if decision.state not in FINAL or track in self._decided:
            return
        self._decided.add(track)
        state = matcher_pb2.DecisionState.Name(decision.state).removeprefix("DECISION_STATE_").lower()
        named = decision.customer_id or decision.probable_customer_id
        self.report.decisions[track] = state + (f" {named}" if named else "") + (" (offline)" if offline else "")
        self._say(f"decision {decision.track.camera_id}/{track}: {self.report.decisions[track]}")
        if named:
            self._event(billing_pb2.STORE_EVENT_KIND_IDENTIFIED, decision.track.camera_id, track, time.time(),
                        customer_id=named, identification_confidence=decision.confidence,
                        false_match_probability=decision.false_match_probability, identified_at_edge=offline)

    # -- vision (one thread per camera) -----------------------------------------------------

    def _camera(self, camera: CameraConfig, capture: cv2.VideoCapture, post: Callable[[tuple], None],
                stop: threading.Event) -> None:
        report = CameraReport(camera.camera_id)
        self.report.cameras.append(report)
        started = report.started
        tracker: PersonTracker | None = None
        holder = [capture]  # a live source that is reopened replaces it
        try:
            fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
            tracker = PersonTracker(PoseDetector(threads=self._threads), LandmarkModel(threads=self._threads),
                                    fps, camera.tracker)
            self._follow(camera, holder, tracker, fps, report, post, stop, started)
            report.stopped = "stopped" if stop.is_set() else "the source ended"
        except Exception as exc:
            report.stopped = f"failed: {exc}"
            raise
        finally:
            if self._video is not None:
                self._video.close(camera.camera_id)
            report.seconds = time.perf_counter() - started
            report.tracks = len(tracker.close()) if tracker else 0
            holder[0].release()
            post(("done", camera.camera_id))

    @staticmethod
    def _reconnect(camera: CameraConfig, holder: list[cv2.VideoCapture], report: CameraReport,
                   stop: threading.Event) -> bool:
        """A live source (stream or camera) that stops delivering is reopened, 1 s then up to
        30 s apart, until it delivers or the edge stops; a file that ends has ended."""
        if Path(camera.source).is_file():
            return False
        holder[0].release()
        wait = 1.0
        while not stop.wait(wait):
            report.stopped = f"reconnecting to {camera.source} (retry every {wait:.0f} s)"
            log.warning("camera.reconnecting", camera=camera.camera_id, wait_s=wait)
            try:
                holder[0] = open_source(camera.source)
            except ValueError:
                wait = min(30.0, wait * 2)
                continue
            report.stopped = ""
            return True
        return False

    def _follow(self, camera: CameraConfig, holder: list[cv2.VideoCapture], tracker: PersonTracker, fps: float,
                report: CameraReport, post: Callable[[tuple], None], stop: threading.Event, started: float) -> None:
        cutters: dict[int, WindowCutter] = {}
        feet: dict[int, np.ndarray] = {}
        last_seen: dict[int, int] = {}
        lines = [line for line in (camera.entry, camera.exit) if line is not None] + list(camera.zones)
        measures: BodyMeter | None = None
        file_clock = not camera.realtime and Path(camera.source).is_file()
        while not stop.is_set():
            ok, image = holder[0].read()
            if not ok:
                if self._reconnect(camera, holder, report, stop):
                    continue
                return
            height, width = image.shape[:2]
            if camera.floor is None:
                report.body_measures_off = "not calibrated (no floor calibration)"
            elif measures is None or measures.size != (width, height):
                measures = BodyMeter.of(camera, width, height)
                report.body_measures_off = measures.why_not
            # A file played as fast as the box goes keeps its own clock (its frames' times from
            # the runtime's start), so its events and the cameras' moments stay in step.
            now = self._t0 + report.frames / fps if file_clock else time.time()
            if self._video is not None:
                self._video.write(camera.camera_id, image, now, fps)
            people = tracker.update(image)
            report.active_tracks = len(people)
            for person in people:
                local = str(person.track_id)
                point = foot_point(person.keypoints, width, height)
                floor = camera.floor.to_floor(point) if camera.floor is not None and point is not None else None
                post(("seen", camera.camera_id, local, floor, now))  # before anything that names the track
                last_seen[person.track_id] = report.frames
                cutter = cutters.setdefault(person.track_id, WindowCutter(fps, self.window))
                for window in cutter.add(report.frames, person.keypoints):
                    if measures is not None:
                        window = measures.measured(window, fps)
                        report.windows_with_body_measures += window.body is not None
                    report.windows += 1
                    post(("window", camera.camera_id, local, window, fps))
                if point is not None:
                    before = feet.get(person.track_id)
                    for line in lines:
                        if before is not None and line.crossed(before, point):
                            report.crossings[line.name] = report.crossings.get(line.name, 0) + 1
                            post(("crossing", camera.camera_id, local, line.name, now))
                    feet[person.track_id] = point
            for track, frame in list(last_seen.items()):
                if report.frames - frame > fps:  # out of view for a second: this camera lost them
                    post(("ended", camera.camera_id, str(track)))
                    for kept in (last_seen, cutters, feet):
                        kept.pop(track, None)
            report.frames += 1
            if camera.realtime:
                lag = report.frames / fps - (time.perf_counter() - started)
                if lag > 0:
                    time.sleep(lag)

    # -- the loop ---------------------------------------------------------------------------

    async def run(self, *, flush_s: float = 30.0, serve: bool = False) -> EdgeReport:
        """Until every source ends (a file) or forever (a live camera). A source that can't be
        opened raises ValueError before anything starts. `serve`: the service's way, where the
        links (queue to billing, hot cache) stay up after the cameras end, until cancelled."""
        captures = [open_source(c.source) for c in self.cameras]
        self._t0 = time.time()
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[tuple] = asyncio.Queue()
        stop_vision = threading.Event()
        stop_links = asyncio.Event()
        forwarder = EventForwarder(self.settings, self.queue, address=self._billing_address)
        forward_task = asyncio.create_task(forwarder.run(stop_links, flush_s=flush_s))
        link = MatcherSession(self.settings, self._matcher_address, self._on_decision)
        refresher = asyncio.create_task(self._keep_hot_cache()) if self._keeper is not None else None

        def post(item: tuple) -> None:
            loop.call_soon_threadsafe(inbox.put_nowait, item)

        threads = [threading.Thread(target=self._camera, args=(c, capture, post, stop_vision), daemon=True,
                                    name=f"camera-{c.camera_id}") for c, capture in zip(self.cameras, captures)]
        for thread in threads:
            thread.start()
        running = len(threads)
        try:
            while running:
                item = await inbox.get()
                if item[0] == "done":
                    running -= 1
                elif item[0] == "seen":
                    _, camera_id, local, floor, at = item
                    self._fusion.shopper(camera_id, local, floor, at)
                    self.report.tracks_merged_across_cameras = self._fusion.merged
                elif item[0] == "ended":
                    self._fusion.ended(item[1], item[2])
                    self._prune()
                elif item[0] == "crossing":
                    _, camera_id, local, line, at = item
                    shopper = self._fusion.of_track(camera_id, local)
                    if line in ("entry", "exit"):
                        kind = billing_pb2.STORE_EVENT_KIND_ENTRY if line == "entry" \
                            else billing_pb2.STORE_EVENT_KIND_EXIT
                        self._event(kind, camera_id, shopper, at)
                    else:  # a zone: every crossing counts, so each is its own event
                        key = (shopper, line)
                        self._zone_crossings[key] = self._zone_crossings.get(key, 0) + 1
                        self._event(billing_pb2.STORE_EVENT_KIND_ZONE, camera_id, shopper, at,
                                    occurrence=f"{line}#{self._zone_crossings[key]}", zone=line)
                elif item[0] == "window":
                    _, camera_id, local, window, fps = item
                    track_id = self._fusion.of_track(camera_id, local)
                    # Sequences count per (camera, shopper): a shopper's windows from two of a
                    # camera's tracks (lost and found again) must not reuse a number.
                    key = (camera_id, track_id)
                    window = replace(window, sequence=self._sequences.get(key, 0))
                    self._sequences[key] = window.sequence + 1
                    if await link.send(self.settings.store_id, camera_id, track_id, window, fps):
                        self.report.windows_sent += 1
                    elif await self._identify_offline(camera_id, track_id, window, fps):
                        self.report.windows_identified_offline += 1
                    else:
                        self.report.windows_dropped_offline += 1
            if serve:
                await asyncio.Event().wait()
        finally:
            stop_vision.set()
            if refresher is not None:
                await cancel_and_wait(refresher)
            await link.close()
            stop_links.set()
            await forward_task
            await forwarder.close()
            self.report.queue_depth = self.queue.depth()
            self.report.billing_link_failures = forwarder.failures
        return self.report

    def close(self) -> None:
        self.queue.close()

    @property
    def hot_cache(self):  # type: ignore[no-untyped-def]
        """The hot cache in use (edge.domain.offline.HotCache), or None."""
        return self._offline.cache if self._offline is not None else None

    def _prune(self, keep: int = 10_000) -> None:
        """Per-shopper state of shoppers the fusion has forgotten, on a box that runs for weeks."""
        if len(self._sequences) > keep:
            self._sequences = {k: v for k, v in self._sequences.items() if self._fusion.known(k[1])}
        if len(self._zone_crossings) > keep:
            self._zone_crossings = {k: v for k, v in self._zone_crossings.items() if self._fusion.known(k[0])}
        if len(self._decided) > keep:
            self._decided = {t for t in self._decided if self._fusion.known(t)}

    # -- offline identification -------------------------------------------------------------

    def _use_cache(self, cache) -> None:  # type: ignore[no-untyped-def]
        if self._offline is None:
            from matcher.adapters import gait_model

            model = gait_model.gait_model(threads=self._threads)
            adapt = self.settings.adapts_cameras
            self._offline = OfflineIdentifier(model.embed, model.names, gait_model.score_model(model.version),
                                              gait_model.body_model() if self.settings.body_measures else None,
                                              project=model.project if adapt else None,
                                              adaptation=model.camera_statistics() if adapt else None)
        try:
            self._offline.use(cache)
        except CacheUnusable as exc:
            log.warning("hot_cache.unusable", reason=str(exc))
            return
        for snap, why in self._offline.cameras_refused:
            log.warning("hot_cache.camera_refused", camera_id=snap.camera_id, why=why)
        self.report.hot_cache_customers = cache.customers
        held = held_back(self._offline.drift)
        self._say(f"hot cache: {cache.customers} customers, {len(cache.cameras.drift)} cameras as the matcher "
                  f"judged them" + (f" ({held} held back)" if held else ""))

    async def _keep_hot_cache(self) -> None:
        """The saved cache at once, then a fresh one while the matcher answers: every
        hot_cache_refresh_s, or a minute after a failed fetch."""
        assert self._keeper is not None
        saved = await asyncio.to_thread(self._keeper.load_saved)
        if saved is not None:
            await asyncio.to_thread(self._use_cache, saved)
        channel = open_channel(self.settings, identity="edge", service="matcher", address=self._matcher_address)
        try:
            while True:
                try:
                    cache = await self._keeper.fetch(channel, self.settings.default_deadline_s)
                except (grpc.aio.AioRpcError, ValueError, OSError) as exc:  # unreachable, a box that won't open, disk
                    log.info("hot_cache.fetch_failed", error=str(exc)[:200])
                    await asyncio.sleep(min(60.0, self._hot_cache_refresh_s))
                    continue
                await asyncio.to_thread(self._use_cache, cache)
                await asyncio.sleep(self._hot_cache_refresh_s)
        finally:
            await channel.close()

    async def _identify_offline(self, camera_id: str, track_id: str, window: CutWindow, fps: float) -> bool:
        if self._offline is None:
            return False
        track = TrackKey(self.settings.store_id, camera_id, track_id)
        probe = Window(track, window.sequence, window.keypoints[:, :17].astype(np.float32), fps, None, window.quality,
                       window.body)
        try:
            decision = await asyncio.to_thread(self._offline.observe, probe)
        except (CacheUnusable, MalformedWindow):
            return False
        self._on_decision(_track_decision(decision), offline=True)
        return True


_DECISION_STATES = {State.PENDING: matcher_pb2.DECISION_STATE_PENDING,
                    State.IDENTIFIED: matcher_pb2.DECISION_STATE_IDENTIFIED,
                    State.STRANGER: matcher_pb2.DECISION_STATE_STRANGER}


def _track_decision(decision: Decision) -> matcher_pb2.TrackDecision:
    """An offline decision in the shape the matcher's come in, so both take one path."""
    return matcher_pb2.TrackDecision(
        track=matcher_pb2.TrackRef(store_id=decision.track.store_id, camera_id=decision.track.camera_id,
                                   track_id=decision.track.track_id),
        window_sequence=decision.window_sequence, state=_DECISION_STATES[decision.state],
        customer_id=decision.customer_id, confidence=decision.confidence,
        false_match_probability=decision.false_match_probability, windows_used=decision.windows_used,
        reason=decision.reason + " (offline, against the hot cache)",
        probable_customer_id=decision.probable_customer_id)

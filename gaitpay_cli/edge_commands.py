"""`gaitpay edge ...`: the vision part alone on a file, and the whole edge against the stack."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from gait.walk import BONES

console = Console()
err = Console(stderr=True)
edge_app = typer.Typer(help="The store's edge box: video to pose tracks, and the link to the mesh.",
                       no_args_is_help=True)


def draw_people(image: np.ndarray, people: list, colours: dict[int, tuple[int, int, int]]) -> np.ndarray:
    """The skeletons and track ids drawn on a copy of the frame."""
    import cv2

    out = image.copy()
    for person in people:
        colour = colours.setdefault(person.track_id, tuple(int(c) for c in np.random.default_rng(person.track_id).integers(60, 255, 3)))
        k = person.keypoints
        for a, b in BONES:
            if k[a, 2] > 0.3 and k[b, 2] > 0.3:
                cv2.line(out, (int(k[a, 0]), int(k[a, 1])), (int(k[b, 0]), int(k[b, 1])), colour, 2, cv2.LINE_AA)
        for x, y, c in k:
            if c > 0.3:
                cv2.circle(out, (int(x), int(y)), 3, colour, -1, cv2.LINE_AA)
        x0, y0 = int(person.box[0]), int(person.box[1])
        cv2.putText(out, f"#{person.track_id}", (x0, max(12, y0 - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.6, colour, 2)
    return out


@edge_app.command("extract")
def extract(
    source: str = typer.Option(..., "--source", help="Video file, rtsp:// or http:// stream, or camera index."),
    out: Path = typer.Option(..., "--out", help="npz to write track_<id> [T, 17, 3], feet_<id>, frames_<id> and fps."),
    overlay: Optional[Path] = typer.Option(None, "--overlay", help="Folder for frames with the skeletons drawn."),
    overlay_every: int = typer.Option(10, min=1, help="Write every Nth frame to --overlay."),
    min_frames: int = typer.Option(10, min=1, help="Tracks shorter than this are left out."),
    tile: float = typer.Option(0.5, min=0.0, max=1.0, help="Detector tile side as a fraction of the frame height "
                               "(0: whole frame only; smaller finds smaller people, at more cost)."),
    max_frames: int = typer.Option(0, min=0, help="Stop after this many frames (0: the whole source)."),
) -> None:
    """Run detection, tracking and pose on a video alone and save each track's keypoints."""
    import cv2
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from edge.runtime import open_source
    from edge.vision.pose import LandmarkModel, PoseDetector
    from edge.vision.tracker import PersonTracker, TrackerConfig, track_arrays

    try:
        capture = open_source(source)
    except ValueError as exc:
        err.print(f"[red]gaitpay edge extract:[/red] {exc}")
        raise typer.Exit(2) from None
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    if max_frames:
        total = min(total or max_frames, max_frames)
    tracker = PersonTracker(PoseDetector(), LandmarkModel(), fps, TrackerConfig(tile_fraction=tile))
    if overlay:
        overlay.mkdir(parents=True, exist_ok=True)
    colours: dict[int, tuple[int, int, int]] = {}
    frames, decode_s = 0, 0.0
    started = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} frames"),
                  TimeElapsedColumn(), console=err) as progress:
        task = progress.add_task("tracking", total=total)
        while not max_frames or frames < max_frames:
            t0 = time.perf_counter()
            ok, image = capture.read()
            decode_s += time.perf_counter() - t0
            if not ok:
                break
            people = tracker.update(image)
            if overlay and frames % overlay_every == 0:
                cv2.imwrite(str(overlay / f"frame_{frames:06d}.jpg"), draw_people(image, people, colours))
            frames += 1
            progress.update(task, completed=frames)
    elapsed = time.perf_counter() - started
    capture.release()
    tracks = [t for t in tracker.close() if len(t.frames) >= min_frames]
    arrays = track_arrays(tracks)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, fps=np.float32(fps), **arrays)
    table = Table(title=f"{source}: {frames} frames, {len(tracks)} tracks of >= {min_frames} frames")
    for column in ("track", "frames", "first", "last", "mean confidence"):
        table.add_column(column)
    for t in tracks:
        points = np.stack(t.keypoints)
        table.add_row(str(t.track_id), str(len(t.frames)), str(t.frames[0]), str(t.frames[-1]),
                      f"{points[:, 5:17, 2].mean():.2f}")
    console.print(table)
    stages = {"decode": decode_s, **tracker.timings}
    console.print(f"{frames / elapsed:.1f} frames/s ("
                  + ", ".join(f"{k} {v / max(frames, 1) * 1000:.1f} ms" for k, v in stages.items()) + " per frame)")
    console.print(f"wrote {out}" + (f" and overlays in {overlay}" if overlay else ""))


@edge_app.command("run")
def run(
    source: Optional[str] = typer.Option(None, "--source", help="Video file, rtsp:// or http:// stream, or camera "
                                         "index (one camera; or give --cameras)."),
    cameras_file: Optional[Path] = typer.Option(None, "--cameras", help="TOML file of several cameras, with lines "
                                                "and floor calibration (docs/edge.md)."),
    camera_id: str = typer.Option("entrance", help="This camera's id."),
    entry_line: Optional[str] = typer.Option(None, help="Entry line x0,y0,x1,y1 in 0..1; fires when the feet cross it "
                                             "from the right-hand side of x0,y0->x1,y1 to the left."),
    exit_line: Optional[str] = typer.Option(None, help="Exit line, same form."),
    queue: Optional[Path] = typer.Option(None, help="The durable event queue (default: the edge's state folder, "
                                         "GAITPAY_EDGE_STATE_DIR or HOME/edge); the hot cache is kept beside it."),
    realtime: bool = typer.Option(False, help="Pace a file at its own frame rate, as a camera would."),
    tile: float = typer.Option(0.5, min=0.0, max=1.0, help="Detector tile side as a fraction of the frame height."),
) -> None:
    """Run the edge on a camera (or a video file as if it were one), or on the cameras of a
    cameras file, against the running stack: windows to the matcher (against the hot cache
    while it is unreachable), entry/exit and identifications to billing through the queue."""
    from edge.adapters import camera_file, video_buffer
    from edge.domain.zones import Line
    from edge.runtime import CameraConfig, EdgeRuntime
    from edge.vision.tracker import TrackerConfig
    from gaitpay_cli.admin_commands import service_address
    from gaitpay_cli.main import _settings

    if (source is None) == (cameras_file is None):
        err.print("[red]gaitpay edge run:[/red] give one of --source (one camera) or --cameras (a cameras file)")
        raise typer.Exit(2)
    try:
        if cameras_file is not None:
            cameras = camera_file.load(cameras_file)
        else:
            lines = {name: Line.parse(name, text) if text else None
                     for name, text in (("entry", entry_line), ("exit", exit_line))}
            cameras = [CameraConfig(camera_id, str(source), lines["entry"], lines["exit"],
                                    TrackerConfig(tile_fraction=tile), realtime)]
    except ValueError as exc:
        err.print(f"[red]gaitpay edge run:[/red] {exc}")
        raise typer.Exit(2) from None
    settings = _settings()
    queue = queue or settings.edge_state / "queue.sqlite3"
    queue.parent.mkdir(parents=True, exist_ok=True)
    runtime = EdgeRuntime(settings, cameras, queue, billing_address=service_address(settings, "billing"),
                          matcher_address=service_address(settings, "matcher"),
                          hot_cache_refresh_s=settings.edge_hot_cache_refresh_s,
                          video=video_buffer.from_settings(settings), on_event=lambda line: console.print(line))
    try:
        report = asyncio.run(runtime.run())
    except ValueError as exc:
        err.print(f"[red]gaitpay edge run:[/red] {exc}")
        raise typer.Exit(2) from None
    finally:
        runtime.close()
    for cam in report.cameras:
        console.print(f"camera {cam.camera_id}: {cam.frames} frames at {cam.fps:.1f} frames/s, {cam.tracks} tracks, "
                      f"{cam.windows} windows, crossings {cam.crossings or 'none'}")
    console.print(f"events queued {report.events_queued}, still queued {report.queue_depth}; windows sent "
                  f"{report.windows_sent}, decided at the edge against the hot cache ({report.hot_cache_customers} "
                  f"customers) {report.windows_identified_offline}, dropped (matcher unreachable, no usable cache) "
                  f"{report.windows_dropped_offline}; tracks merged across cameras "
                  f"{report.tracks_merged_across_cameras}")
    if report.queue_depth:
        console.print(f"[yellow]{report.queue_depth} events stay in {queue} and go out on the next start[/yellow]")


@edge_app.command("status")
def status() -> None:
    """The running edge service's cameras, link, hot cache and queue (GetEdgeStatus, as an operator)."""
    import grpc

    from gaitpay.edge.v1 import edge_pb2, edge_pb2_grpc
    from gaitpay_cli.admin_commands import service_address
    from gaitpay_cli.main import _settings
    from mesh.client import open_sync_channel

    settings = _settings()
    channel = open_sync_channel(settings, identity="operator", service="edge",
                                address=service_address(settings, "edge"))
    try:
        reply = edge_pb2_grpc.EdgeServiceStub(channel).GetEdgeStatus(edge_pb2.GetEdgeStatusRequest(),
                                                                     timeout=settings.default_deadline_s)
    except grpc.RpcError as exc:
        err.print(f"[red]gaitpay edge status:[/red] {exc.code().name}: {exc.details()}")
        raise typer.Exit(1) from None
    finally:
        channel.close()
    link = edge_pb2.LinkState.Name(reply.link).removeprefix("LINK_STATE_").lower()
    console.print(f"store {reply.store_id}: link {link}, {reply.queued_events} events queued for billing, "
                  f"{reply.tracks_merged_across_cameras} tracks merged across cameras")
    if reply.HasField("hot_cache"):
        cache = reply.hot_cache
        expires = cache.expires_at.ToDatetime().isoformat() + "Z" if cache.customers else "-"
        console.print(f"hot cache: {cache.customers} customers, expires {expires}, "
                      f"{cache.windows_identified_offline} windows decided offline")
    table = Table(title="cameras" if reply.cameras else "no cameras run in this edge process (GAITPAY_EDGE_CAMERAS)")
    for column in ("camera", "source", "frames", "frames/s", "people in view", "windows (with body measures)",
                   "state"):
        table.add_column(column)
    for c in reply.cameras:
        windows = f"{c.windows} ({c.body_measures_off or c.windows_with_body_measures})"
        table.add_row(c.camera_id, c.source, str(c.frames), f"{c.frames_per_second:.1f}", str(c.active_tracks),
                      windows, c.stopped or "running")
    console.print(table)


@edge_app.command("clip")
def clip(
    camera: str = typer.Option(..., "--camera", help="The camera's id."),
    start: datetime = typer.Option(..., "--from", help="Start, ISO 8601 (UTC unless it names a zone), e.g. a "
                                   "session's entered_at."),
    end: datetime = typer.Option(..., "--to", help="End, ISO 8601, e.g. the session's exited_at."),
    out: Path = typer.Option(..., "--out", help="The MP4 to write."),
) -> None:
    """Cut a clip from the dispute buffer on this edge box (GAITPAY_EDGE_VIDEO_RETENTION_H).
    The video stays on the box; only what a person with access to it exports leaves."""
    from edge.adapters.video_buffer import BufferPolicy, VideoBuffer
    from gaitpay_cli.main import _settings

    settings = _settings()

    def unix(moment: datetime) -> float:
        return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()

    if unix(end) <= unix(start):
        err.print("[red]gaitpay edge clip:[/red] --to must come after --from")
        raise typer.Exit(2)
    buffer = VideoBuffer(settings.edge_state / "video", BufferPolicy(retention_s=0))
    kept = buffer.segments(camera)
    if not kept:
        err.print(f"[red]gaitpay edge clip:[/red] no video kept for camera {camera!r} in {buffer.folder}")
        raise typer.Exit(1)
    frames = buffer.clip(camera, unix(start), unix(end), out)
    if not frames:
        first, last = kept[0].start, kept[-1].start
        err.print(f"[red]gaitpay edge clip:[/red] nothing kept between those times; camera {camera!r} has video "
                  f"from {datetime.fromtimestamp(first, timezone.utc).isoformat()} to about "
                  f"{datetime.fromtimestamp(last, timezone.utc).isoformat()} (plus one segment)")
        raise typer.Exit(1)
    console.print(f"wrote {out}: {frames} frames")

"""The edge against the local stack, from a real video as if it were a camera: the walker is
streamed to the matcher, decided, and reported to billing as entry and exit; the billing
link is cut mid-stream and the edge restarted, and nothing is lost or duplicated."""

from __future__ import annotations

import asyncio
import socket
import threading

import numpy as np
import pytest

from edge.domain.zones import Line
from edge.runtime import CameraConfig, EdgeRuntime
from gaitpay.billing.v1 import billing_pb2, billing_pb2_grpc
from gaitpay_cli.real_videos import sports2d_demo

pytestmark = pytest.mark.stack


class CuttableLink:
    """A TCP relay on 127.0.0.1 in front of a service: `cut()` drops every connection and
    refuses new ones, as a store's uplink failing; `restore()` brings it back."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self._target = (host, int(port))
        self._up = threading.Event()
        self._up.set()
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._up.is_set():
                client.close()
                continue
            upstream = socket.create_connection(self._target, timeout=5)
            self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        self._up.clear()
        for s in self._sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._sockets.clear()

    def restore(self) -> None:
        self._up.set()

    def close(self) -> None:
        self.cut()
        self._listener.close()


def test_a_walker_on_video_reaches_billing_once_through_a_cut_and_a_restart(local_stack, tmp_path) -> None:
    settings = local_stack.settings()
    link = CuttableLink(local_stack.rows["billing"]["address"])
    queue_path = tmp_path / "edge-queue.sqlite3"
    said: list[str] = []

    def on_event(line: str) -> None:
        said.append(line)
        if line.startswith("entry"):
            link.cut()  # the uplink fails right as the walker comes in

    # She walks right to left: in across x = 0.75 of the frame, out across x = 0.25.
    camera = CameraConfig("entrance", str(sports2d_demo()), entry=Line.parse("entry", "0.75,1,0.75,0"),
                          exit=Line.parse("exit", "0.25,1,0.25,0"))
    runtime = EdgeRuntime(settings, [camera], queue_path, billing_address=link.address,
                          matcher_address=local_stack.rows["matcher"]["address"], on_event=on_event)
    try:
        report = asyncio.run(runtime.run(flush_s=1.0))
    finally:
        runtime.close()
    entries = [s for s in said if s.startswith("entry")]
    exits = [s for s in said if s.startswith("exit")]
    assert len(entries) == 1 and len(exits) == 1, said
    walker = entries[0].split()[1].split("/")[1]
    assert exits[0].split()[1].endswith(walker), "entry and exit belong to one track"
    assert report.windows_sent >= 3, "the walker's gait windows were streamed to the matcher"
    assert walker in report.decisions, f"the matcher decided the walker's track: {report.decisions}"
    assert report.billing_link_failures > 0
    assert report.queue_depth >= 2, "the events seen during the cut stay queued when the edge stops"

    # The edge restarts with the link back: it sends what it kept, in order, once.
    link.restore()
    restarted = EdgeRuntime(settings, [], queue_path, billing_address=link.address,
                            matcher_address=local_stack.rows["matcher"]["address"])
    try:
        again = asyncio.run(restarted.run())
        history = restarted.queue.history()
    finally:
        restarted.close()
        link.close()
    assert again.queue_depth == 0
    walker_events = [(kind, dup, session) for _, kind, dup, session in history if session]
    kinds = [kind for kind, _, _ in walker_events]
    assert kinds.count(billing_pb2.STORE_EVENT_KIND_ENTRY) == 1
    assert kinds.count(billing_pb2.STORE_EVENT_KIND_EXIT) == 1
    assert len({e[0] for e in history}) == len(history) == report.events_queued
    sessions = {session for _, _, session in walker_events}
    assert len(sessions) == 1, "every event of the walker landed in one session"

    stub = billing_pb2_grpc.BillingServiceStub(local_stack.channel("billing"))
    session = stub.GetSession(billing_pb2.GetSessionRequest(store_id=settings.store_id, session_id=sessions.pop()),
                              timeout=10).session
    assert session.entered_at.seconds > 0 and session.exited_at.seconds > 0
    # Not enrolled: she is a stranger, never charged; the exit sends the session to staff.
    assert session.state == billing_pb2.SESSION_STATE_STAFF_CHECKOUT
    assert not session.customer_id and not session.payment_id


def test_an_unreadable_source_is_a_clear_error(local_stack, tmp_path) -> None:
    done = local_stack.cli("edge", "run", "--source", str(tmp_path / "missing.mp4"))
    assert done.returncode == 2
    assert "cannot open video source" in done.stderr
    bad_line = local_stack.cli("edge", "run", "--source", "x.mp4", "--entry-line", "0,0,2,2")
    assert bad_line.returncode == 2 and "entry line" in bad_line.stderr
    neither = local_stack.cli("edge", "run")
    assert neither.returncode == 2 and "give one of --source" in neither.stderr
    bad_file = tmp_path / "cameras.toml"
    bad_file.write_text('[[camera]]\nid = "door"\nsource = "x.mp4"\nexit_line = "1,1,1,1"\n')
    refused = local_stack.cli("edge", "run", "--cameras", str(bad_file))
    assert refused.returncode == 2 and "camera door: exit line must join two different points" in refused.stderr


def test_edge_status_says_the_link_is_up_and_no_cameras_run_in_the_service(local_stack) -> None:
    done = local_stack.cli("edge", "status")
    assert done.returncode == 0, done.stderr
    assert "link online" in done.stdout and "no cameras run in this edge process" in done.stdout



def test_with_the_matcher_out_of_reach_an_enrolled_walker_is_identified_from_the_hot_cache(local_stack, tmp_path) -> None:
    """She enrols (two walks cut from her own clip: the mechanism is under test here, not the
    model's accuracy), the edge fetches the store's hot cache, and the uplink to the matcher
    fails before she walks in. Her windows are decided at the edge against the cache, and the
    identification reaches billing with her entry and exit."""
    import uuid

    from gaitpay.identity.v1 import identity_pb2, identity_pb2_grpc
    from test_edge_video import _track
    from edge.vision.tracker import TrackerConfig

    settings = local_stack.settings()
    tracks, _, _ = _track(sports2d_demo(), TrackerConfig())
    walker = max(tracks, key=lambda t: np.ptp([k[15:17, 0].mean() for k in t.keypoints]))  # the one who walks across
    keypoints = np.stack(walker.keypoints)[:, :17].astype(np.float32)
    half = len(keypoints) // 2
    with local_stack.channel("identity") as channel:
        stub = identity_pb2_grpc.IdentityServiceStub(channel)
        consent = identity_pb2.Consent(policy_version="2026-11", purposes=["gait_identification", "payment"],
                                       retention_days=365, jurisdiction="IN-DPDP")
        consent.given_at.GetCurrentTime()
        customer = stub.CreateCustomer(identity_pb2.CreateCustomerRequest(
            request_id=str(uuid.uuid4()), display_name="Sports2D Walker",
            phone_e164=f"+9197{uuid.uuid4().int % 10**8:08d}", consent=consent), timeout=30).customer
        walks = []
        for part in (keypoints[:half], keypoints[half:]):
            walk = identity_pb2.Walk(source="app")
            walk.keypoints.frames, walk.keypoints.joints, walk.keypoints.fps = len(part), 17, 30.0
            walk.keypoints.xyc.extend(part.ravel().tolist())
            walks.append(walk)
        stub.EnrollWalks(identity_pb2.EnrollWalksRequest(request_id=str(uuid.uuid4()), customer_id=customer.customer_id,
                                                         walks=walks, store_ids=[settings.store_id]), timeout=60)

    uplink = CuttableLink(local_stack.rows["matcher"]["address"])
    said: list[str] = []

    def on_event(line: str) -> None:
        said.append(line)
        if line.startswith("hot cache"):
            uplink.cut()  # the cache is in hand; now the matcher is out of reach

    camera = CameraConfig("entrance", str(sports2d_demo()), entry=Line.parse("entry", "0.75,1,0.75,0"),
                          exit=Line.parse("exit", "0.25,1,0.25,0"))
    runtime = EdgeRuntime(settings, [camera], tmp_path / "queue.sqlite3",
                          billing_address=local_stack.rows["billing"]["address"], matcher_address=uplink.address,
                          on_event=on_event)
    try:
        report = asyncio.run(runtime.run(flush_s=5.0))
        history = runtime.queue.history()
    finally:
        runtime.close()
        uplink.close()
    assert report.hot_cache_customers >= 1
    assert report.windows_sent == 0 and report.windows_identified_offline >= 2, report
    (entry,) = [s for s in said if s.startswith("entry")]
    her_track = entry.split()[1].split("/")[1]
    assert report.decisions[her_track] == f"identified {customer.customer_id} (offline)", report.decisions
    assert all(d.endswith("(offline)") for d in report.decisions.values()), "every decision was made at the edge"
    assert any(s.startswith("identified") and customer.customer_id in s for s in said), said
    assert report.queue_depth == 0
    sessions = {session for _, kind, _, session in history if kind == billing_pb2.STORE_EVENT_KIND_IDENTIFIED}
    assert len(sessions) == 1
    stub = billing_pb2_grpc.BillingServiceStub(local_stack.channel("billing"))
    session = stub.GetSession(billing_pb2.GetSessionRequest(store_id=settings.store_id, session_id=sessions.pop()),
                              timeout=10).session
    assert session.customer_id == customer.customer_id and session.exited_at.seconds > 0

    # The matcher never saw this identification: billing put it in identity's audit trail.
    import json
    import time

    import psycopg

    dsn = json.loads((local_stack.home / "stack.json").read_text())["env"]["GAITPAY_POSTGRES_DSN"]
    deadline, rows = time.monotonic() + 20, []
    while not rows and time.monotonic() < deadline:
        time.sleep(0.3)
        with psycopg.connect(dsn) as conn:
            rows = conn.execute("SELECT actor, attributes FROM identity.audit_log WHERE action = 'identification' "
                                "AND customer_id = %s", (customer.customer_id,)).fetchall()
    assert len(rows) == 1, rows
    actor, attributes = rows[0]
    assert actor == "billing" and attributes["decided_at"] == "edge (offline)" and attributes["track_id"] == her_track

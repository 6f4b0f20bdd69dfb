"""The matcher inside the stack `gaitpay up` starts: synthetic customers enrolled, their walks
and strangers' walks streamed as real keypoints through the edge's link, decisions back."""

from __future__ import annotations

import uuid

import pytest

from edge.adapters.matcher_link import MatcherLink, keypoint_window
from gait.synth.dataset import people, walks_of
from gaitpay.identity.v1 import identity_pb2, identity_pb2_grpc
from gaitpay.matcher.v1 import matcher_pb2
from test_identity_stack import consent, walk_message

pytestmark = pytest.mark.stack
ENROLLED, STRANGERS, ENROL_WALKS, VISIT_WINDOWS = 6, 6, 4, 12
IDENTIFIED = matcher_pb2.DECISION_STATE_IDENTIFIED


async def visit(settings, track: str, walks) -> list[matcher_pb2.TrackDecision]:
    link = MatcherLink(settings)
    link.open()
    for seq, walk in enumerate(walks):
        await link.send(keypoint_window("store-e2e", "entrance", track, seq, walk.keypoints[:, :17], walk.fps))
    await link.finish()
    replies = [r async for r in link.responses()]
    await link.close()
    assert all(r.WhichOneof("result") == "decision" for r in replies), replies
    return [r.decision for r in replies]


async def test_enrolled_walkers_and_strangers_through_the_stack(local_stack) -> None:
    persons = people(ENROLLED + STRANGERS, seed=4242)
    walks, labels = walks_of(persons, ENROL_WALKS + VISIT_WINDOWS, seed=4243)
    by_person = {p: [w for w, lab in zip(walks, labels) if lab == p] for p in range(len(persons))}
    customers = {}
    with local_stack.channel("identity") as channel:  # enrolled the way the app enrols them
        stub = identity_pb2_grpc.IdentityServiceStub(channel)
        for p in range(ENROLLED):
            customer = stub.CreateCustomer(identity_pb2.CreateCustomerRequest(
                request_id=str(uuid.uuid4()), display_name=f"Walker {p}", consent=consent()), timeout=30).customer
            enrolled = stub.EnrollWalks(identity_pb2.EnrollWalksRequest(
                request_id=str(uuid.uuid4()), customer_id=customer.customer_id, store_ids=["store-e2e"],
                walks=[walk_message(w) for w in by_person[p][:ENROL_WALKS]]), timeout=60)
            assert enrolled.accepted >= 1
            customers[p] = customer.customer_id

    settings = local_stack.settings()
    # The enrolment walks themselves, replayed: the matcher must name their owner (through the
    # template transform identity applied and the matcher applies to queries).
    replay = await visit(settings, "replay", by_person[0][:ENROL_WALKS])
    assert replay[0].state == matcher_pb2.DECISION_STATE_PENDING  # one window never decides
    assert replay[-1].state == IDENTIFIED and replay[-1].customer_id == customers[0]
    assert replay[-1].false_match_probability <= 1e-4

    outcomes = {}
    for p in range(len(persons)):  # fresh walks of customers and of strangers
        decisions = await visit(settings, f"visit-{p}", by_person[p][ENROL_WALKS:])
        for d in decisions:  # never the wrong person, at any window
            assert d.state != IDENTIFIED or (p in customers and d.customer_id == customers[p]), (p, d)
        outcomes[p] = decisions[-1].state
    strangers = [outcomes[p] for p in range(ENROLLED, len(persons))]
    assert IDENTIFIED not in strangers
    # Every visit ends decided (identified or sent to staff as a stranger) within the window budget.
    assert all(state != matcher_pb2.DECISION_STATE_PENDING for state in outcomes.values())
    print(f"identified {sum(outcomes[p] == IDENTIFIED for p in customers)}/{ENROLLED} enrolled visits, "
          f"0/{STRANGERS} strangers")

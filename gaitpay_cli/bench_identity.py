"""`gaitpay bench identity`: enrolment latency through a running stack (create a customer,
enrol walks), beside a GetCustomer read measured in the same run as the baseline."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import numpy as np

from gaitpay.identity.v1 import identity_pb2, identity_pb2_grpc
from gaitpay_cli.walk_messages import walk_message


@dataclass(frozen=True)
class Latencies:
    name: str
    seconds: list[float]

    def pct(self, q: float) -> float:
        return float(np.percentile(self.seconds, q)) * 1e3


def run(channel, customers: int, walks_per_customer: int, progress=lambda i: None) -> list[Latencies]:  # type: ignore[no-untyped-def]
    from gait.synth.dataset import people, walks_of

    stub = identity_pb2_grpc.IdentityServiceStub(channel)
    walks, labels = walks_of(people(customers, seed=31337), walks_per_customer, seed=31338)
    create_s, enrol_s, read_s = [], [], []
    for i in range(customers):
        consent = identity_pb2.Consent(policy_version="bench", purposes=["gait_identification"], retention_days=30,
                                       jurisdiction="IN-DPDP")
        consent.given_at.GetCurrentTime()
        t0 = time.perf_counter()
        customer = stub.CreateCustomer(identity_pb2.CreateCustomerRequest(
            request_id=str(uuid.uuid4()), display_name=f"Bench {i}", consent=consent), timeout=30).customer
        create_s.append(time.perf_counter() - t0)
        request = identity_pb2.EnrollWalksRequest(request_id=str(uuid.uuid4()), customer_id=customer.customer_id)
        request.walks.extend(walk_message(w, source="bench") for w, lab in zip(walks, labels) if lab == i)
        t0 = time.perf_counter()
        stub.EnrollWalks(request, timeout=60)
        enrol_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        stub.GetCustomer(identity_pb2.GetCustomerRequest(customer_id=customer.customer_id), timeout=30)
        read_s.append(time.perf_counter() - t0)
        progress(i + 1)
    return [Latencies("CreateCustomer", create_s), Latencies(f"EnrollWalks ({walks_per_customer} walks)", enrol_s),
            Latencies("GetCustomer (baseline)", read_s)]

"""Schemathesis hooks for the gateway fuzz run (tests/test_gateway_stack.py): the store in
every path is one the fuzzing key may use, so requests reach the services behind the
gateway instead of stopping at the tenant check (which has its own tests)."""

import os

import schemathesis


@schemathesis.hook
def map_path_parameters(ctx, path_parameters):  # type: ignore[no-untyped-def]
    if path_parameters and "store_id" in path_parameters:
        path_parameters["store_id"] = os.environ["GAITPAY_FUZZ_STORE"]
    return path_parameters

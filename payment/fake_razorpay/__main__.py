"""python -m payment.fake_razorpay --port P --key-id ID --key-secret SECRET (127.0.0.1 only)."""

import argparse

from aiohttp import web

from payment.fake_razorpay.server import FakeRazorpay

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--key-id", required=True)
parser.add_argument("--key-secret", required=True)
args = parser.parse_args()
web.run_app(FakeRazorpay(args.key_id, args.key_secret).app(), host="127.0.0.1", port=args.port, print=None)

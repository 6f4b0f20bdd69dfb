"""Run localstripe bound to 127.0.0.1 only (its own CLI binds every interface)."""

import argparse

from aiohttp import web
from localstripe.server import app

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--port", type=int, required=True)
args = parser.parse_args()
web.run_app(app, host="127.0.0.1", port=args.port, print=None)

"""Run localstripe bound to 127.0.0.1 only (its own CLI binds every interface).

localstripe pickles its whole store to the fixed path /tmp/localstripe.pickle on every
change: two stacks on one machine would overwrite each other, and the write grows with the
store (seconds per charge after a few thousand objects). Here the store goes to the stack's
own --state file, written at most once a second, and is loaded from it at start."""

import argparse
import asyncio
import pickle
from pathlib import Path

from aiohttp import web
from localstripe import resources
from localstripe.server import app

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--state", type=Path, required=True, help="pickle file holding localstripe's objects")
args = parser.parse_args()

_pending: list[asyncio.Handle] = []


def _write() -> None:
    _pending.clear()
    tmp = args.state.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        pickle.dump(dict(resources.store), f, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(args.state)


def _dump_soon(self: resources.Store) -> None:
    if not _pending:
        _pending.append(asyncio.get_event_loop().call_later(1.0, _write))


resources.Store.dump_to_disk = _dump_soon  # type: ignore[method-assign]
if args.state.exists():
    with open(args.state, "rb") as f:
        dict.update(resources.store, pickle.load(f))
web.run_app(app, host="127.0.0.1", port=args.port, print=None)

"""`python -m matcher` serves; `python -m matcher migrate` only brings the template collection to
this version's schema and exits (the Kubernetes init container)."""

import sys

from matcher.bootstrap import main, migrate
from mesh import config

USAGE = "usage: python -m matcher [migrate]"

if __name__ == "__main__":
    args = sys.argv[1:]
    if not args:
        main()
    elif args in (["-h"], ["--help"]):
        print(f"{USAGE}\n\n{__doc__}")
    elif args == ["migrate"]:
        from matcher.adapters.milvus_index import TemplateIndexError
        from mesh.errors import Unavailable

        try:
            migrate(config.load())
        except (config.ConfigError, Unavailable, TemplateIndexError) as exc:  # one line, not a traceback
            sys.exit(f"matcher migrate: {exc}")
    else:
        print(f"{USAGE}\nunknown arguments: {' '.join(args)}", file=sys.stderr)
        sys.exit(2)

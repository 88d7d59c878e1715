"""``edge-screen bundle verify|install|rollback|status``: the device's side of signed updates.

Every refusal exits 1 with one line that names the file or the check; usage errors exit 2.
Needs ``cryptography`` (``pip install 'edge-screen[updates]'``) to check signatures.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from .errors import EdgeScreenError
from .files import load_keys, verify_directory
from .store import BundleStore
from .trust import Expectations
from .version import __version__


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edge-screen bundle", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="verb", required=True)
    trust = {"action": "append", "required": True, "metavar": "PUBLIC_KEY",
             "help": "a trusted public key (PEM); repeat for several (key rotation)"}
    v = sub.add_parser("verify", help="check a bundle's signature and every file")
    v.add_argument("bundle", metavar="BUNDLE_DIR")
    v.add_argument("--trust", **trust)  # type: ignore[arg-type]
    i = sub.add_parser("install", help="verify, self-test and activate a bundle atomically")
    i.add_argument("bundle", metavar="BUNDLE_DIR")
    i.add_argument("--store", required=True, metavar="STORE")
    i.add_argument("--trust", **trust)  # type: ignore[arg-type]
    i.add_argument("--force", action="store_true", help="install an older or equal version")
    i.add_argument("--reason", help="why (required with --force; written to the store's log)")
    r = sub.add_parser("rollback", help="make the previous bundle active again")
    r.add_argument("--store", required=True, metavar="STORE")
    r.add_argument("--reason", default="", help="written to the store's log")
    s = sub.add_parser("status", help="the active and the previous bundle")
    s.add_argument("--store", required=True, metavar="STORE")
    s.add_argument("--json", action="store_true")
    return p


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    if args.verb == "install" and args.force and not args.reason:
        print("edge-screen bundle install: --force needs --reason", file=sys.stderr)
        return 2
    try:
        if args.verb == "verify":
            expect = Expectations(__version__, datetime.now(UTC))
            m = verify_directory(Path(args.bundle), load_keys(args.trust), expect)
            print(f"verified: {args.bundle}: bundle {m.bundle_version}, {len(m.files())} files")
        elif args.verb == "install":
            done = BundleStore(args.store).install(
                args.bundle, load_keys(args.trust), __version__,
                force_reason=args.reason if args.force else None)
            print(f"installed: bundle {done.bundle_version} is active in {args.store}")
        elif args.verb == "rollback":
            back = BundleStore(args.store).rollback(args.reason)
            print(f"rolled back: bundle {back.bundle_version} is active in {args.store}")
        else:
            status = BundleStore(args.store).status()
            if args.json:
                print(json.dumps(status.to_dict()))
            else:
                for name, which in (("active", status.active), ("previous", status.previous)):
                    print(f"{name}: {which.bundle_version if which else '-'}")
    except (EdgeScreenError, ImportError) as exc:
        print(f"edge-screen bundle {args.verb}: refused: {exc}", file=sys.stderr)
        return 1
    return 0

"""``dfabench view RUN_DIR|leaderboard/ [RUN_DIR ...]``: the local sample viewer (127.0.0.1 only)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("targets", nargs="+", metavar="RUN_DIR|leaderboard/",
                        help="run folders or leaderboard entries (two or more: shown side by side), or leaderboard/")
    parser.add_argument("--bench", help="the benchmark folder (images, reference masks); default: the recorded one")
    parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default 8765; 0: any free one)")
    parser.add_argument("--ratings", default="ratings.csv",
                        help="CSV the hand ratings are appended to (sample_id, criterion, score)")


def run(args: argparse.Namespace) -> int:
    from dfabench.view import Catalogue, make_server

    catalogue = Catalogue([Path(t) for t in args.targets], Path(args.bench) if args.bench else None)
    server = make_server(catalogue, Path(args.ratings), args.port)
    host, port = server.server_address[:2]
    print(f"dfabench view: http://{host}:{port}/  ({len(catalogue.runs)} runs; Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0

"""The `attestnet` command line: agent, attest, verify, demo, bench, collateral."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

import attestnet
from attestnet.cli.agent import add_agent_parser, add_attest_parser
from attestnet.cli.bench import add_bench_parser
from attestnet.cli.bench_formats import add_bench_formats_parser
from attestnet.cli.demo import add_demo_parser
from attestnet.cli.verify import add_collateral_parser, add_verify_parser
from attestnet.errors import AttestnetError, ConfigError, MalformedEvidence, VerificationError

__all__ = ["build_parser", "main"]

logger = logging.getLogger("attestnet.cli")

EXIT_FAILED = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """An argument parser that reports a usage mistake in one line, not the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}; see '{self.prog} --help'\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="attestnet",
        description="Attested TLS and remote-attestation evidence verification.",
    )
    parser.add_argument("--version", action="version", version=f"attestnet {attestnet.__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log more: -v for progress, -vv for protocol details",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_agent_parser(subparsers)
    add_attest_parser(subparsers)
    add_demo_parser(subparsers)
    add_bench_parser(subparsers)
    add_bench_formats_parser(subparsers)
    add_verify_parser(subparsers)
    add_collateral_parser(subparsers)
    return parser


def _configure_logging(verbosity: int) -> None:
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    if verbosity < 2:
        # The tpm2-tss C library logs expected misses (an absent NV index while
        # looking for the EK certificate) as errors on stderr; -vv shows them.
        os.environ.setdefault("TSS2_LOG", "all+NONE")
    level_name = os.environ.get("ATTESTNET_LOG_LEVEL")
    if level_name:
        level = logging.getLevelName(level_name.upper())
        if not isinstance(level, int):
            level = logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    try:
        code: int = args.handler(args)
    except ConfigError as exc:
        print(f"attestnet {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (VerificationError, MalformedEvidence) as exc:
        print(f"attestnet {args.command}: failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except AttestnetError as exc:
        print(f"attestnet {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"attestnet {args.command}: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())

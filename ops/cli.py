"""`python -m ops <command> --stack <stack>`: day-2 commands for a deployed stack.

Exit status: 0 done, 1 check-env found a missing or placeholder variable or compare found a value
shared by two environments, 2 a user mistake or a
refused operation (unknown stack or secret, nothing to roll back, an AWS error), in one line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from ops import compare, connection, draft, due, envcheck, failover, leaked, put, restart, secrets, state_backend
from ops.aws import secretsmanager
from ops.stack import REPO, OpsError, Stack, check_stack_name, load_stack, stack_account_id, stack_file


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    common.add_argument("--project-dir", type=Path, default=REPO, help=argparse.SUPPRESS)
    common.add_argument("--config-file", type=Path, default=None,
                        help="a stack config file other than Pulumi.<stack>.yaml (e.g. an example's)")
    aws = argparse.ArgumentParser(add_help=False)
    aws.add_argument("--endpoint-url", default=None,
                     help="Secrets Manager endpoint (tests, an emulator); default AWS_ENDPOINT_URL or AWS")
    fmt = argparse.ArgumentParser(add_help=False)
    fmt.add_argument("--format", choices=("text", "json"), default="text")

    parser = argparse.ArgumentParser(prog="python -m ops", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("list", parents=[common, aws, fmt],
                        help="every catalog secret: version stages, rotation dates, missing in AWS (never values)")
    rotate = commands.add_parser("rotate", parents=[common, aws], help="RotateSecret now (rotation configured only)")
    rotate.add_argument("secret", help="catalog name (redis) or full name (filot/staging/redis)")
    rotate.add_argument("--leaked", action="store_true",
                        help="the value leaked: rotate as often as needed (twice where the previous credential stays "
                             "valid) or replace a value made once, then restart the consumers that read it at start")
    rotate.add_argument("--wait", type=float, default=None,
                        help=f"with --leaked: seconds to wait for each rotation to complete "
                             f"(default {leaked.WAIT_SECONDS:g})")
    rotate.add_argument("--yes", action="store_true", help="with --leaked: confirm in production without asking")
    rotate.add_argument("--no-restart", action="store_true",
                        help="with --leaked: do not restart the consumers that read the secret only at start")
    rollback = commands.add_parser("rollback", parents=[common, aws],
                                   help="move AWSCURRENT back to the AWSPREVIOUS version")
    rollback.add_argument("secret", help="catalog name (redis) or full name (filot/staging/redis)")
    rollback.add_argument("--yes", action="store_true", help="confirm a production rollback without asking")
    rollback.add_argument("--force", action="store_true",
                          help="roll back a database or Redis credential whose old password you restored yourself")
    rollback.add_argument("--no-restart", action="store_true",
                          help="do not restart the consumers that read the secret only at start (consumption)")
    clear = commands.add_parser("clear-pending", parents=[common, aws],
                                help="remove a stale AWSPENDING (a failed rotation) that blocks RotateSecret")
    clear.add_argument("secret", help="catalog name (redis) or full name (filot/staging/redis)")
    clear.add_argument("--yes", action="store_true", help="confirm in production without asking")
    compare_ = commands.add_parser("compare", parents=[common, aws],
                                   help="does any secret value equal the same secret's value in another stack")
    compare_.add_argument("--other", required=True, help="the other stack (e.g. staging)")
    compare_.add_argument("--other-config-file", type=Path, default=None,
                          help="the other stack's config file, if not Pulumi.<other>.yaml")
    compare_.add_argument("--other-endpoint-url", default=None, help=argparse.SUPPRESS)
    due_ = commands.add_parser("due", parents=[common, aws, fmt],
                               help="secrets rotated by hand on a period, values put by ops not put yet: exit 1 if "
                                    "any is overdue or not put")
    due_.add_argument("--warn-days", type=int, default=due.DEFAULT_WARN_DAYS,
                      help=f"report as due this many days before the date (default {due.DEFAULT_WARN_DAYS})")
    check_env = commands.add_parser("check-env", parents=[common, fmt],
                                    help="is every catalog variable set (and not a placeholder) in an environment")
    check_env.add_argument("--env-file", type=Path, default=None, help="a dotenv file instead of this process's env")
    draft.add_parser(commands)
    state_backend.add_parser(commands)
    failover.add_parser(commands)
    connection.add_parser(commands, [common, aws])
    put.add_parser(commands, [common, aws])
    return parser


def _prompt(stdin: TextIO, err: TextIO) -> Callable[[str], str | None]:
    """A typed confirmation on an interactive terminal; None when there is none (CI)."""

    def ask(question: str) -> str | None:
        try:
            interactive = stdin.isatty()
        except (AttributeError, ValueError):
            interactive = False
        if not interactive:
            return None
        err.write(question)
        err.flush()
        return stdin.readline()

    return ask


def _changed_then_restarted(args: argparse.Namespace, stack: Stack, out: TextIO, err: TextIO,
                            change: Callable[[], dt.datetime | None]) -> int:
    """Change the secret, then restart its consumers that read it only at start (unless --no-restart): 1 if one
    could not be restarted. The consumers are read first, so that a mistake in the stack file stops the command
    before the change; `change` returns when the old value stopped being current (else: when it started)."""
    targets = [] if args.no_restart else restart.targets_of(
        stack, stack.resolve(args.secret)[0], args.project_dir.resolve(), args.config_file)
    started = dt.datetime.now(dt.UTC)
    changed_at = change() or started
    if args.no_restart:
        return 0
    return 1 if restart.restart(stack, targets, changed_at, out, err, endpoint_url=args.endpoint_url) else 0


def main(argv: list[str] | None = None, out: TextIO | None = None, err: TextIO | None = None,
         stdin: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    stdin = stdin or sys.stdin
    args = _parser().parse_args(argv)
    try:
        check_stack_name(args.stack)  # before it names a file: Pulumi.<stack>.yaml
        if args.command == "draft":  # there is no stack yet: the draft makes its config
            return draft.main(args, out)
        if args.command == "failover":  # the replica region's client, never the primary's
            project = Path(args.project_dir).resolve() if args.project_dir else REPO
            config_file = Path(args.config_file) if args.config_file else None
            stack = load_stack(args.stack, project, config_file)
            document = stack_file(args.stack, project, config_file)
            return failover.main(args, stack, document, stack_account_id(args.stack, project, config_file), out,
                                 _prompt(stdin, err))
        if args.command == "bootstrap-state":  # S3 and KMS, not Secrets Manager
            project = Path(args.project_dir).resolve() if args.project_dir else REPO
            config_file = Path(args.config_file) if args.config_file else None
            stack = load_stack(args.stack, project, config_file)
            return state_backend.main(args, stack, stack_account_id(args.stack, project, config_file), out)
        stack = load_stack(args.stack, args.project_dir.resolve(), args.config_file)
        if args.command == "check-env":
            if args.env_file is not None:
                environ, source = envcheck.read_env_file(args.env_file), str(args.env_file)
            else:
                environ, source = dict(os.environ), "the process environment"
            results = envcheck.check(stack, environ)
            if args.format == "json":
                json.dump(envcheck.to_json(stack, results, source), out, indent=2)
                out.write("\n")
            else:
                envcheck.render(stack, results, source, out)
            return 1 if envcheck.failed(results) else 0
        client = secretsmanager(stack, args.endpoint_url)
        if args.command == "list":
            states = secrets.list_states(stack, client)
            if args.format == "json":
                json.dump(secrets.list_json(stack, states), out, indent=2)
                out.write("\n")
            else:
                secrets.render_list(stack, states, out)
        elif args.command == "due":
            if args.warn_days < 0:
                raise OpsError(f"--warn-days must be 0 or more (got {args.warn_days})")
            items = due.report(stack, client, args.warn_days)
            if args.format == "json":
                json.dump(due.to_json(stack.name, items), out, indent=2)
                out.write("\n")
            else:
                due.render(stack.name, items, out)
            return 1 if due.failed(items) else 0
        elif args.command == "put":
            put.put(stack, client, args.secret, args.key, stdin, out, err, yes=args.yes, confirm=_prompt(stdin, err))
        elif args.command == "check-connection":
            logins = connection.check(stack, client, args.secret)
            connection.render(stack, logins, out)
            return 1 if connection.failed(logins) else 0
        elif args.command == "rotate" and args.leaked:
            leaked.check_name(args.secret)
            wait = leaked.WAIT_SECONDS if args.wait is None else args.wait
            return _changed_then_restarted(args, stack, out, err, lambda: leaked.rotate_leaked(
                stack, client, args.secret, out, err, yes=args.yes, confirm=_prompt(stdin, err), timeout=wait,
                endpoint_url=args.endpoint_url, restarting=not args.no_restart).retired_at)
        elif args.command == "rotate":
            if args.wait is not None or args.yes or args.no_restart:
                raise OpsError("--wait, --yes and --no-restart apply to `rotate --leaked` only")
            secrets.rotate(stack, client, args.secret, out)
        elif args.command == "compare":
            other = load_stack(args.other, args.project_dir.resolve(), args.other_config_file)
            other_client = secretsmanager(other, args.other_endpoint_url or args.endpoint_url)
            findings = compare.compare(stack, other, client, other_client)
            compare.render(stack, other, findings, out)
            return 1 if any(f.result == "SAME" for f in findings) else 0
        elif args.command == "clear-pending":
            secrets.clear_pending(stack, client, args.secret, out, err, yes=args.yes, confirm=_prompt(stdin, err))
        elif args.command == "rollback":
            # UpdateSecretVersionStage sends no RotationSucceeded event: restart here what a rotation would.
            return _changed_then_restarted(args, stack, out, err, lambda: secrets.rollback(
                stack, client, args.secret, out, err, yes=args.yes, confirm=_prompt(stdin, err), force=args.force))
    except OpsError as exc:
        err.write(f"error: {exc}\n")
        return 2
    return 0

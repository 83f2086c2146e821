"""The files `ops` reads and writes on the user's behalf: bounded reads, names proven to be names, no followed links.

Reading: an input (`--env-file`, `--compose`) is a regular file of at most INPUT_MAX_BYTES after its
symbolic links are resolved; a FIFO, a device, a directory, or a file under /proc or /sys (which report a
size of 0 and are made as they are read, /proc/self/environ among them) is refused with one line.

Names: the draft copies names into its output, never other text. A name is what the grammar of
environment variables allows (NAME, at most NAME_MAX characters) and does not look like a key itself
(32+ hex digits, a JWT, a PEM block, or 20+ characters at 4+ bits of entropy per character): a token
pasted where a name belongs is dropped and counted, never echoed.

Writing: a file is created with O_EXCL (or, with --force, written next to its place and renamed over
it), never through a symbolic link, and only inside the output directory.
"""

from __future__ import annotations

import collections
import json
import math
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ops.stack import OpsError

INPUT_MAX_BYTES = 1024 * 1024
"""Largest dotenv or compose file read (1 MiB: a .env of 20,000 variables is about 400 KB)."""
NAME_MAX = 128
"""Longest variable, service or secret name copied from an input."""
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
"""The grammar of an environment variable's name (POSIX portable names; what a shell can export)."""
COMPOSE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
"""A compose service or secret name (compose-spec: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`)."""
PSEUDO_FILESYSTEMS = ("/proc", "/sys")
KEY_LIKE = re.compile(
    r"\$2[aby]?\$\d\d\$|-----BEGIN |^eyJ[A-Za-z0-9_-]+\.|(?<![0-9a-fA-F])[0-9a-fA-F]{32,}(?![0-9a-fA-F])")
"""A bcrypt hash, a PEM block, a JWT or 32+ hex digits (`openssl rand -hex`): secret material."""


def shown(text: object) -> str:
    """A path or prefix the user gave, as messages and the draft's comments show it: on one line."""
    text = str(text)
    return text if text.isprintable() else json.dumps(text)[1:-1]


def bits_per_char(word: str) -> float:
    """Shannon entropy of a word: 4 bits or more over 20 characters is a key or token, not a setting."""
    counts = collections.Counter(word)
    return -sum(c / len(word) * math.log2(c / len(word)) for c in counts.values())


def looks_like_key(text: str) -> bool:
    """Secret material by its shape, whatever it is called."""
    return bool(KEY_LIKE.search(text)) or (len(text) >= 20 and bits_per_char(text) >= 4.0)


def is_name(text: object, grammar: re.Pattern[str] = NAME) -> bool:
    """Text the draft may copy: a short name of `grammar` that does not look like a key."""
    return (isinstance(text, str) and 0 < len(text) <= NAME_MAX and grammar.fullmatch(text) is not None
            and not looks_like_key(text))


@dataclass
class Skipped:
    """Lines or entries of the inputs that were not names: counted per file, never shown."""

    where: dict[str, list[int]] = field(default_factory=dict)
    """File -> line numbers (0 when an entry has no line, e.g. in a compose file)."""

    def add(self, path: Path | str, line: int = 0) -> None:
        self.where.setdefault(str(path), []).append(line)

    def lines(self) -> list[str]:
        """One sentence per file: how many were skipped and (the first few) line numbers."""
        found = []
        for path, numbers in self.where.items():
            known = sorted({n for n in numbers if n})
            at = f" (line {', '.join(map(str, known[:10]))}{', ...' if len(known) > 10 else ''})" if known else ""
            found.append(f"{len(numbers)} line(s) or entries skipped in {shown(path)}{at}: not NAME=value with a "
                         "variable name, or a name that looks like a key; nothing of them was copied")
        return found


def read_input(path: Path, what: str = "file") -> str:
    """The text of a regular file of at most INPUT_MAX_BYTES (symbolic links resolved), as UTF-8."""
    try:
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "a symbolic link loop"
        raise OpsError(f"{shown(path)}: cannot read the {what} ({reason})") from None
    if any(str(resolved) == fs or str(resolved).startswith(fs + "/") for fs in PSEUDO_FILESYSTEMS):
        raise OpsError(f"{shown(path)}: is under /proc or /sys, not a file on disk: give the {what} itself")
    try:
        # O_NONBLOCK: opening a FIFO swapped in after the check must not wait for a writer.
        fd = os.open(resolved, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise OpsError(f"{shown(path)}: cannot read the {what} ({exc.strerror})") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise OpsError(f"{shown(path)}: is not a regular file (a directory, FIFO, socket or device): give the {what} "
                       "itself")
    with os.fdopen(fd, "rb") as handle:
        if info.st_size > INPUT_MAX_BYTES:
            raise OpsError(f"{shown(path)}: is larger than {INPUT_MAX_BYTES:,} bytes (the {what} size limit)")
        raw = handle.read(INPUT_MAX_BYTES + 1)
    if len(raw) > INPUT_MAX_BYTES:
        raise OpsError(f"{shown(path)}: is larger than {INPUT_MAX_BYTES:,} bytes (the {what} size limit)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise OpsError(f"{shown(path)}: the {what} is not UTF-8 text (byte {exc.start})") from None


def check_target(out_dir: Path, target: Path, force: bool) -> None:
    """Refuse, before anything is written, a target that is a link, escapes `out_dir`, or exists without force."""
    if target.is_symlink():
        raise OpsError(f"{shown(target)}: is a symbolic link; the draft never writes through one (remove it)")
    if target.exists() and not target.is_file():
        raise OpsError(f"{shown(target)}: exists and is not a regular file")
    if target.exists() and not force:
        raise OpsError(f"{shown(target)} exists: move it away or pass --force to overwrite it")
    # Every existing directory between out_dir and the file must resolve inside out_dir.
    root = out_dir.resolve()
    parent = target.parent
    while True:
        if parent.exists() and not parent.resolve().is_relative_to(root):
            raise OpsError(f"{shown(target)}: its directory {shown(parent)} leads outside --out {shown(out_dir)} (a "
                           "symbolic link)")
        if parent == out_dir or parent == parent.parent:
            break
        parent = parent.parent


def write_new(target: Path, text: str, force: bool) -> None:
    """Write `text` to `target` without following a symbolic link; replace only with `force`."""
    data = text.encode("utf-8")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    if not force:
        try:
            fd = os.open(target, flags, 0o644)
        except FileExistsError:
            raise OpsError(f"{shown(target)} exists: move it away or pass --force to overwrite it") from None
        except OSError as exc:
            raise OpsError(f"{shown(target)}: cannot write the file ({exc.strerror})") from None
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return
    # With --force: a new file beside the old one, renamed over it (a rename replaces a link, never its target).
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(temporary, flags, 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, target)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise OpsError(f"{shown(target)}: cannot write the file ({exc.strerror})") from None

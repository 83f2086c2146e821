"""`python -m bench.draft_scaling`: how `ops draft` scales with the number of variables in a .env.

Prints, for 5,000, 10,000 and 20,000 `APP_*` variables (one JSON secret of that many keys, the worst
case for grouping): the draft's own work (read, group, render) in CPU seconds, and the whole command
(which also writes the catalog and loads it back with components/catalog/) in wall seconds, with the
ratio to the smallest size. Linear work doubles with the size; quadratic work quadruples. Nothing here
passes or fails on time.
"""

from __future__ import annotations

import io
import tempfile
import time
from pathlib import Path

SIZES = (5_000, 10_000, 20_000)


def measure(size: int, root: Path) -> tuple[float, float]:
    from ops import draft
    from ops.cli import main
    from ops.inputs import Skipped

    env = root / f"{size}.env"
    env.write_text("".join(f"APP_VAR{i}=\n" for i in range(size)))
    started = time.process_time()
    variables = draft.read_dotenv(env, Skipped())
    request = draft.Request(stack="staging", environment="staging", app="shop", owner=None, region=None,
                            account_id=None, catalog_path="catalog.yaml", out_dir=root / f"out{size}",
                            env_files=[env], compose_files=[], prefix=None, read_keys=False, force=False)
    app, drafts = draft.build(request, variables, {}, [])
    draft.render_catalog(request, app, drafts, [str(env)])
    own = time.process_time() - started
    started = time.monotonic()
    code = main(["draft", "--stack", "staging", "--app", "shop", "--env-file", str(env), "--out",
                 str(root / f"cmd{size}")], out=io.StringIO(), err=io.StringIO())
    assert code == 0
    return own, time.monotonic() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rows = [(size, *measure(size, Path(tmp))) for size in SIZES]
    base = rows[0]
    print(f"{'variables':>10}  {'draft CPU s':>11}  {'ratio':>5}  {'command s':>9}  {'ratio':>5}")
    for size, own, whole in rows:
        print(f"{size:>10,}  {own:>11.2f}  {own / base[1]:>5.1f}  {whole:>9.1f}  {whole / base[2]:>5.1f}")


if __name__ == "__main__":
    main()

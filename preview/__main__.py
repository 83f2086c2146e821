import time

STARTED = time.perf_counter()  # before the imports: `--timings` counts them in the load phase

import sys  # noqa: E402

from preview.cli import main  # noqa: E402

sys.exit(main(started=STARTED, exiting=True))
